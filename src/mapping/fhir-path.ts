import { EngineError } from '../errors.js';

/**
 * A rule's `to` path compiled into a setter, once at load time (STYLE habit 3).
 *
 *   a.b.c               nested elements, created as needed; the last one is overwritten
 *   name[]              at the end: append; in the middle: the element the last append made (or a new one)
 *   name[+]             in the middle: always a new element (a `link` that wraps its reference: diagnosis[+].condition)
 *   extension[url=X].v  find the array item whose `url` is X, or append `{ url: X }`
 *   .                   merge the value (an object) into the target itself
 */
export type Setter = (target: Record<string, unknown>, value: unknown) => void;

type Step =
  | { kind: 'prop'; name: string }
  | { kind: 'array'; name: string }
  | { kind: 'new'; name: string }
  | { kind: 'keyed'; name: string; key: string; value: string };

const STEP_RE = /^([A-Za-z_][A-Za-z0-9_]*)(?:\[(?:\+|([A-Za-z_][A-Za-z0-9_]*)=([^\]]+))?\])?$/;

export function compileFhirPath(path: string): Setter {
  if (path === '.') {
    return (target, value) => {
      if (value && typeof value === 'object' && !Array.isArray(value)) Object.assign(target, value);
    };
  }
  const steps = splitPath(path).map((part): Step => {
    const m = STEP_RE.exec(part);
    if (!m) throw new EngineError('MAPPING_INVALID', { name: 'path', detail: 'bad FHIR path step' });
    const name = m[1] as string;
    if (m[2] !== undefined) return { kind: 'keyed', name, key: m[2], value: m[3] as string };
    if (part.endsWith('[+]')) return { kind: 'new', name };
    return part.endsWith('[]') ? { kind: 'array', name } : { kind: 'prop', name };
  });
  const last = steps.length - 1;
  return (target, value) => {
    let node: Record<string, unknown> = target;
    for (let i = 0; i < last; i++) node = descend(node, steps[i] as Step);
    const step = steps[last] as Step;
    if (step.kind === 'prop') node[step.name] = value;
    else if (step.kind === 'array' || step.kind === 'new') {
      const arr = (node[step.name] as unknown[] | undefined) ?? [];
      arr.push(value);
      node[step.name] = arr;
    } else {
      // `extension[url=X]` as the last step: the value is merged into the keyed item.
      const item = keyedItem(node, step);
      if (value && typeof value === 'object') Object.assign(item, value);
    }
  };
}

/** Splits on dots that are not inside `[...]` (a keyed step's value may be a URL with dots). */
function splitPath(path: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '[') depth++;
    else if (c === ']') depth--;
    else if (c === '.' && depth === 0) {
      out.push(path.slice(start, i));
      start = i + 1;
    }
  }
  out.push(path.slice(start));
  return out;
}

function descend(node: Record<string, unknown>, step: Step): Record<string, unknown> {
  if (step.kind === 'prop') {
    let next = node[step.name] as Record<string, unknown> | undefined;
    if (next === undefined || typeof next !== 'object') {
      next = {};
      node[step.name] = next;
    }
    return next;
  }
  if (step.kind === 'keyed') return keyedItem(node, step);
  let arr = node[step.name] as Record<string, unknown>[] | undefined;
  if (!Array.isArray(arr)) {
    arr = [];
    node[step.name] = arr;
  }
  if (step.kind === 'new') {
    const item: Record<string, unknown> = {};
    arr.push(item);
    return item;
  }
  let lastItem = arr[arr.length - 1];
  if (lastItem === undefined || typeof lastItem !== 'object') {
    lastItem = {};
    arr.push(lastItem);
  }
  return lastItem;
}

function keyedItem(
  node: Record<string, unknown>,
  step: { name: string; key: string; value: string },
): Record<string, unknown> {
  let arr = node[step.name] as Record<string, unknown>[] | undefined;
  if (!Array.isArray(arr)) {
    arr = [];
    node[step.name] = arr;
  }
  let item = arr.find((x) => x && x[step.key] === step.value);
  if (!item) {
    item = { [step.key]: step.value };
    arr.push(item);
  }
  return item;
}
