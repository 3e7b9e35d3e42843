import { compileFhirPath, type Setter } from './fhir-path.js';
import type { IdentitySpec, MessageMapSpec } from './mapping-files.js';
import type { CompiledCondition, FieldRule } from './rule-compiler.js';

/** One `resources:` entry of a message map, compiled. */
export interface CompiledEntry {
  readonly index: number;
  readonly name: string;
  readonly segment: string;
  readonly resourceType: string;
  readonly rules: readonly FieldRule[];
  readonly merge: string | undefined;
  readonly into: readonly { name: string; rules: readonly FieldRule[] }[] | undefined;
  readonly at: Setter | undefined;
  readonly refs: readonly { name: string; set: Setter }[];
  readonly link: readonly { name: string; set: Setter }[];
  readonly identity: IdentitySpec;
  readonly request: 'update' | 'create';
  readonly when: CompiledCondition | undefined;
  /** Only when the parent is one of these segments ([]: only without a parent); undefined: always. */
  readonly parent: ReadonlySet<string> | undefined;
}

/** A message map ready to run: entries by segment, parent rules, what is deliberately not mapped. */
export interface CompiledMessageMap {
  readonly name: string;
  readonly accepts: readonly string[];
  /** SHA-256 over every file this map uses: changes whenever the output could. */
  readonly version: string;
  readonly entries: ReadonlyMap<string, readonly CompiledEntry[]>;
  /** Per segment name: where its parent is looked for (the first entry with `within` decides). */
  readonly parents: ReadonlyMap<string, { within: readonly string[]; stopAt: readonly string[] }>;
  readonly ignoredFields: ReadonlySet<string>;
  readonly ignoredSegments: ReadonlySet<string>;
}

export interface MessageMapEnvironment {
  segmentMap(name: string, key: string): { resourceType: string; rules: FieldRule[] } | undefined;
  condition(spec: unknown, key: string): CompiledCondition | undefined;
  problem(key: string, message: string): void;
  /** Called last, once every file the map uses has been seen. */
  version(): string;
}

export function compileMessageMap(
  name: string,
  spec: MessageMapSpec,
  env: MessageMapEnvironment,
): CompiledMessageMap {
  const entries = new Map<string, CompiledEntry[]>();
  const parents = new Map<string, { within: readonly string[]; stopAt: readonly string[] }>();
  const names = new Set((spec.resources ?? []).map((e) => e.name).filter(Boolean));
  (spec.resources ?? []).forEach((e, index) => {
    const key = `resources.${index}`;
    const mapNames = e.maps ?? (e.map ? [e.map] : []);
    if (mapNames.length === 0 && !e.into) env.problem(key, 'an entry needs map, maps or into');
    const rules: FieldRule[] = [];
    let resourceType = '';
    for (const m of mapNames) {
      const sm = env.segmentMap(m, `${key}.map`);
      if (!sm) continue;
      if (sm.resourceType && !resourceType) resourceType = sm.resourceType;
      rules.push(...sm.rules);
    }
    const into = e.into
      ? Object.entries(e.into).map(([target, m]) => ({
          name: target,
          rules: env.segmentMap(m, `${key}.into.${target}`)?.rules ?? [],
        }))
      : undefined;
    const setter = (path: string, k: string): Setter => {
      try {
        return compileFhirPath(path);
      } catch {
        env.problem(k, 'not a valid FHIR path');
        return () => {};
      }
    };
    const refs = Object.entries(e.refs ?? {}).map(([path, target]) => {
      if (!names.has(target)) env.problem(`${key}.refs.${path}`, `no entry is named ${target}`);
      return { name: target, set: setter(path, `${key}.refs.${path}`) };
    });
    const link = Object.entries(e.link ?? {}).map(([target, path]) => {
      if (!names.has(target)) env.problem(`${key}.link.${target}`, `no entry is named ${target}`);
      return { name: target, set: setter(path, `${key}.link.${target}`) };
    });
    if (e.merge !== undefined && !names.has(e.merge))
      env.problem(`${key}.merge`, `no entry is named ${e.merge}`);
    if ((e.merge !== undefined || e.into !== undefined) && e.within === undefined)
      env.problem(`${key}.within`, 'merge and into need within (where the parent is)');
    if (e.within && !parents.has(e.segment))
      parents.set(e.segment, { within: e.within, stopAt: e.stopAt ?? [] });
    if (e.parent !== undefined && e.within === undefined)
      env.problem(`${key}.parent`, 'parent needs within (where the parent is looked for)');
    const list = entries.get(e.segment) ?? [];
    list.push({
      index,
      name: e.name ?? e.merge ?? `${e.segment.toLowerCase()}${index}`,
      segment: e.segment,
      resourceType: resourceType.split('.')[0] ?? '',
      rules,
      merge: e.merge,
      into,
      at: e.at === undefined ? undefined : setter(e.at, `${key}.at`),
      refs,
      link,
      identity: e.identity ?? 'identifier',
      request: e.request ?? 'update',
      when: e.when === undefined ? undefined : env.condition(e.when, `${key}.when`),
      parent: e.parent === undefined ? undefined : new Set(e.parent),
    });
    entries.set(e.segment, list);
  });
  const ignoredFields = new Set<string>();
  const ignoredSegments = new Set<string>();
  for (const item of spec.ignore ?? []) {
    if (/^[A-Z][A-Z0-9]{2}$/.test(item)) ignoredSegments.add(item);
    else if (/^[A-Z][A-Z0-9]{2}-\d+$/.test(item)) ignoredFields.add(item);
    else env.problem('ignore', `${item} is neither a segment (ZPD) nor a field (PID-1)`);
  }
  return {
    name,
    accepts: spec.accepts ?? [],
    version: env.version(),
    entries,
    parents,
    ignoredFields,
    ignoredSegments,
  };
}
