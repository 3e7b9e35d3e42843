/** One difference between two JSON values; `undefined` on a side means the element is absent there. */
export interface JsonChange {
  /** `entry[0].resource.gender`; `` for the root. */
  readonly path: string;
  readonly expected: unknown;
  readonly actual: unknown;
}

/**
 * Structural difference of two JSON values (objects key by key, arrays index by index), in document order:
 * the leaves that differ, or the whole subtree where one side is absent or of another type.
 */
export function diffJson(expected: unknown, actual: unknown, path = ''): JsonChange[] {
  if (Object.is(expected, actual)) return [];
  if (Array.isArray(expected) && Array.isArray(actual)) {
    const out: JsonChange[] = [];
    for (let i = 0; i < Math.max(expected.length, actual.length); i++) {
      out.push(...diffJson(expected[i], actual[i], `${path}[${i}]`));
    }
    return out;
  }
  if (isObject(expected) && isObject(actual)) {
    const out: JsonChange[] = [];
    const keys = [...Object.keys(expected)];
    for (const k of Object.keys(actual)) if (!(k in expected)) keys.push(k);
    for (const k of keys) out.push(...diffJson(expected[k], actual[k], joinKey(path, k)));
    return out;
  }
  return [{ path, expected, actual }];
}

/** `entry[0].resource.gender: - "female" + "male"`; values as JSON, long ones shortened. */
export function formatChange(c: JsonChange, maxValue = 100): string {
  const show = (v: unknown) => (v === undefined ? '(absent)' : shorten(JSON.stringify(v), maxValue));
  return `${c.path || '(root)'}: - ${show(c.expected)} + ${show(c.actual)}`;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function joinKey(path: string, key: string): string {
  if (/^[A-Za-z_$][\w$]*$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
