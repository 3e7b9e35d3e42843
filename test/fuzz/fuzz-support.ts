/**
 * Shared pieces of the fuzz and property tests: reproducible fast-check settings, the "only EngineError,
 * never message content in its text" contract check, HL7-ish input generators, corpus mutations, random
 * paths and a naive reference reader to compare the lazy parser against.
 *
 * Reproducible by default (fixed seed). Explore locally with e.g. `FUZZ_SEED=123 FUZZ_RUNS=20000`.
 */
import fc from 'fast-check';
import { EngineError, ERRORS } from '../../src/errors.js';
import type { Delimiters } from '../../src/hl7/delimiters.js';
import { unescape } from '../../src/hl7/escape.js';

function envInt(name: string): number | undefined {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  return n;
}

export const FUZZ_SEED: number = envInt('FUZZ_SEED') ?? 0x5eed_17;
/** When set, every property runs this many times instead of its default. */
export const FUZZ_RUNS: number | undefined = envInt('FUZZ_RUNS');

/** Per-test timeout: vitest's default for the fixed runs, an hour when FUZZ_RUNS asks for more. */
export const FUZZ_TIMEOUT: number = FUZZ_RUNS === undefined ? 30_000 : 3_600_000;

/** fast-check parameters: the fixed (or FUZZ_SEED) seed and the default or FUZZ_RUNS run count. */
export function fuzzParams(defaultRuns: number): { seed: number; numRuns: number } {
  return { seed: FUZZ_SEED, numRuns: FUZZ_RUNS ?? defaultRuns };
}

// ---------------------------------------------------------------------------------------------------
// The error contract

export type Outcome<T> = { ok: true; value: T } | { ok: false; error: EngineError };

/** Runs fn; an EngineError is an outcome, anything else thrown fails the property (with its cause). */
export function attempt<T>(label: string, fn: () => T): Outcome<T> {
  try {
    return { ok: true, value: fn() };
  } catch (e) {
    if (e instanceof EngineError) return { ok: false, error: e };
    const what = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    throw new Error(`${label} threw a non-EngineError (${what})`, { cause: e });
  }
}

const NUMBER_OR_CODE = '(?:\\d+|\\?)';
/** formatLocation's grammar with a real segment id (or '?'). */
const LOCATION = '(?:[A-Z][A-Z0-9]{2}|\\?)(?:@\\d+)?(?:-\\d+)?(?:\\(\\d+\\))?(?:-\\d+)?(?:-\\d+)?';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const templateRegexes = new Map<string, RegExp>();

/** The registry template of a code, its placeholders filled with numbers (or a location). */
export function templateRegex(code: keyof typeof ERRORS): RegExp {
  let re = templateRegexes.get(code);
  if (!re) {
    const source = ERRORS[code].message
      .split(/(\{\w+\})/)
      .map((part) =>
        part === '{location}' ? LOCATION : /^\{\w+\}$/.test(part) ? NUMBER_OR_CODE : escapeRegExp(part),
      )
      .join('');
    re = new RegExp(`^${source}$`);
    templateRegexes.set(code, re);
  }
  return re;
}

/** Every line of the input except MSH lines: the content an error text must never repeat. */
export function nonMshContent(input: string): string {
  return input
    .split(/[\r\n]/)
    .filter((line) => !line.replace(/^[\s\uFEFF]+/, '').startsWith('MSH'))
    .join('\n');
}

/**
 * PHI safety of an EngineError raised for `input`: its details are numbers, its location names a segment
 * id at most, and its text is the registry template filled with numbers — or, failing that, at least
 * repeats no 6+ character run of the input's non-MSH content.
 */
export function assertPhiSafe(err: EngineError, input: string): void {
  for (const [key, value] of Object.entries(err.details)) {
    if (value !== undefined && typeof value !== 'number')
      throw new Error(`EngineError ${err.code} carries a non-numeric detail '${key}'`);
  }
  const seg = err.location?.segment;
  if (seg !== undefined && !/^[A-Z][A-Z0-9]{2}$/.test(seg))
    throw new Error(`EngineError ${err.code} location names a segment that is not a segment id`);
  if (templateRegex(err.code).test(err.message)) return;
  const content = nonMshContent(input);
  for (let i = 0; i + 6 <= err.message.length; i++) {
    const run = err.message.slice(i, i + 6);
    if (content.includes(run))
      throw new Error(
        `EngineError ${err.code} text is not its template and repeats input content ${JSON.stringify(run)}`,
      );
  }
}

/** attempt() plus the PHI check on a failure. */
export function attemptSafely<T>(label: string, input: string, fn: () => T): Outcome<T> {
  const out = attempt(label, fn);
  if (!out.ok) assertPhiSafe(out.error, input);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Generators

/** Printable ASCII that is neither alphanumeric nor space: what encoding characters are drawn from. */
export const PUNCTUATION: readonly string[] = [...'!"#$%&\'()*+,-./:;<=>?@[\\]^_`{|}~'];

/** Random delimiter sets: 5 distinct punctuation characters, with or without a v2.7 truncation char. */
export const delimitersArb: fc.Arbitrary<Delimiters> = fc
  .tuple(fc.shuffledSubarray(PUNCTUATION as string[], { minLength: 6, maxLength: 6 }), fc.boolean())
  .map(([c, withTruncation]) => ({
    field: c[0]!,
    component: c[1]!,
    repetition: c[2]!,
    escape: c[3]!,
    subcomponent: c[4]!,
    truncation: withTruncation ? c[5]! : '',
  }));

export const bytesAsText: fc.Arbitrary<string> = fc
  .tuple(fc.uint8Array({ maxLength: 3000 }), fc.constantFrom<BufferEncoding>('latin1', 'utf8'))
  .map(([bytes, enc]) => Buffer.from(bytes).toString(enc));

/** Escape-ish and structure-ish fragments written with the default delimiters. */
export const fragmentArb: fc.Arbitrary<string> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '\\',
      '\\\\',
      '\\X',
      '\\X41\\',
      '\\XC3A9\\',
      '\\XE9\\',
      '\\X0D\\',
      '\\X0A\\',
      '\\X4',
      '\\XZZ\\',
      '\\.br\\',
      '\\.br',
      '\\.sp2\\',
      '\\.sp\\',
      '\\.sk3\\',
      '\\.sp99999999999999999999\\',
      '\\.in+4\\',
      '\\.ce\\',
      '\\H\\',
      '\\N\\',
      '\\Zlocal\\',
      '\\C2842\\',
      '\\M2442\\',
      '\\E\\',
      '\\F\\',
      '\\S\\',
      '\\T\\',
      '\\R\\',
      '\\P\\',
      '|',
      '^',
      '~',
      '&',
      '#',
      '||||',
      '^^^^',
      '~~~',
      '&&&',
      '\r',
      '\n',
      '\r\n',
      '\n\r',
      '""',
      'MSH|^~\\&|',
      'MSH|',
      'MSH',
      'FHS|^~\\&|',
      'BHS|^~\\&|',
      'BTS|1',
      'FTS|1',
      '\rMSH|^~\\&|A|B\r',
      '\rBTS|7\r',
      '\rPID|1||123^^^MRN||DOE^JANE\r',
      '\rZZ1|',
      '\rpid|',
      '\r   \r',
      '\uFEFF',
      '\u0000',
      '\u00A0',
      '\u2028',
      '😀',
      '\uD800',
      '\uDC00',
      'é',
      '\x0B\x1C',
    ),
  },
  { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 16 }).map((b) => Buffer.from(b).toString('latin1')) },
);

const segmentNameArb = fc.oneof(
  {
    weight: 12,
    arbitrary: fc.constantFrom(
      'PID',
      'OBX',
      'OBR',
      'NTE',
      'PV1',
      'EVN',
      'ZZ1',
      'MSH',
      'FHS',
      'BHS',
      'BTS',
      'FTS',
      'MSA',
      'ERR',
    ),
  },
  {
    weight: 1,
    arbitrary: fc.string({ unit: fc.constantFrom(...'ABCXYZ019az_ '), minLength: 0, maxLength: 4 }),
  },
);

/**
 * Message-shaped text with random encoding characters (valid and not): an MSH with 1..6 punctuation
 * characters as MSH-1/2, then segments whose fields are tokens mixing text, that message's delimiters and
 * escape sequences written with its escape character, joined by random terminators.
 */
export const randomMessageArb: fc.Arbitrary<string> = fc
  .tuple(
    fc.oneof(
      { weight: 8, arbitrary: fc.shuffledSubarray(PUNCTUATION as string[], { minLength: 4, maxLength: 6 }) },
      { weight: 1, arbitrary: fc.shuffledSubarray(PUNCTUATION as string[], { minLength: 1, maxLength: 8 }) },
    ),
    fc.array(
      fc.tuple(
        segmentNameArb,
        fc.array(fc.array(fc.nat(), { maxLength: 8 }), { maxLength: 12 }),
        fc.constantFrom('\r', '\r', '\n', '\r\n', '\n\r', '\r\r'),
      ),
      { maxLength: 12 },
    ),
    fc.array(fc.string({ unit: 'binary', maxLength: 6 }), { minLength: 1, maxLength: 8 }),
    fc.boolean(),
  )
  .map(([chars, segments, words, leadingWhitespace]) => {
    const field = chars[0]!;
    const enc = chars.slice(1).join('');
    const e = chars[3] ?? '\\';
    const seqs = ['F', 'S', 'T', 'R', 'E', 'P', 'H', 'N', 'X41', 'XC3A9', '.br', '.sp3', 'Zx', ''].map(
      (s) => `${e}${s}${e}`,
    );
    const pool = [...chars, ...seqs, e, `${e}X`, ...words, '""', ' '];
    const token = (n: number) => pool[n % pool.length]!;
    let out = `${leadingWhitespace ? ' \uFEFF\r\n' : ''}MSH${field}${enc}${field}APP${field}FAC`;
    for (const [name, fields, term] of segments) {
      out += term + name;
      for (const f of fields) out += field + f.map(token).join('');
    }
    return out;
  });

// ---------------------------------------------------------------------------------------------------
// Corpus mutations

export type Mutation =
  | { kind: 'delete'; at: number; len: number }
  | { kind: 'insert'; at: number; text: string }
  | { kind: 'replace'; at: number; text: string }
  | { kind: 'truncate'; at: number }
  | { kind: 'duplicateSegment'; seg: number; to: number }
  | { kind: 'dropSegment'; seg: number }
  | { kind: 'swapChars'; a: string; b: string }
  | { kind: 'hugeField'; seg: number; ch: string; count: number }
  | { kind: 'encodingChars'; header: string; translate: boolean }
  | { kind: 'terminators'; to: string }
  | { kind: 'byteNoise'; at: number; bytes: Uint8Array };

const UNUSUAL_HEADERS = [
  '|^~\\&#',
  '|#$*@',
  '#$*@!',
  '|^~\\&',
  '|^~&',
  '|^~\\',
  '|^~',
  '|^',
  '|^^~\\&',
  '|^~\\&#!',
  '| ~\\&',
  '|A~\\&',
  '\t^~\\&',
  '\u00A6^~\\&',
  '|^~\\&\u00A7',
  '|',
  '',
  '|^~\\&|',
  '.^~\\&',
  '^|~\\&',
];

const mutationChoices = (withHugeFields: boolean) => [
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), len: fc.nat(40) }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), text: fragmentArb }),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('replace' as const), at: fc.nat(), text: fragmentArb }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('duplicateSegment' as const), seg: fc.nat(), to: fc.nat() }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('dropSegment' as const), seg: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('swapChars' as const),
      a: fc.constantFrom('|', '^', '~', '\\', '&', '\r', '\n'),
      b: fc.constantFrom('|', '^', '~', '\\', '&', '#', '\r', '\n', 'A'),
    }),
  },
  {
    weight: withHugeFields ? 1 : 0, // fc.oneof skips weight-0 entries
    arbitrary: fc.record({
      kind: fc.constant('hugeField' as const),
      seg: fc.nat(),
      ch: fc.constantFrom('^', '~', '&', '\\', '|', 'A', '\\E', '\\X41'),
      count: fc.constantFrom(1_000, 100_000),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('encodingChars' as const),
      header: fc.oneof(
        fc.constantFrom(...UNUSUAL_HEADERS),
        fc.shuffledSubarray(PUNCTUATION as string[], { minLength: 1, maxLength: 7 }).map((c) => c.join('')),
      ),
      translate: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('terminators' as const),
      to: fc.constantFrom('\r', '\n', '\r\n', '\n\r', '\r\r'),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('byteNoise' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ minLength: 1, maxLength: 8 }),
    }),
  },
];

/** Every mutation kind, huge fields (up to 100k characters) included. */
export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(...mutationChoices(true));
/** The same without huge fields: for loops that run many thousands of times. */
export const smallMutationArb: fc.Arbitrary<Mutation> = fc.oneof(...mutationChoices(false));

/** Segments with their terminators, so joining them gives the text back. */
export function splitLines(text: string): string[] {
  return text.match(/[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$/g) ?? [];
}

export function applyMutation(text: string, m: Mutation): string {
  const at = (n: number) => n % (text.length + 1);
  switch (m.kind) {
    case 'delete': {
      const p = at(m.at);
      return text.slice(0, p) + text.slice(p + m.len);
    }
    case 'insert': {
      const p = at(m.at);
      return text.slice(0, p) + m.text + text.slice(p);
    }
    case 'replace': {
      const p = at(m.at);
      return text.slice(0, p) + m.text + text.slice(p + m.text.length);
    }
    case 'truncate':
      return text.slice(0, at(m.at));
    case 'duplicateSegment': {
      const lines = splitLines(text);
      if (lines.length === 0) return text;
      const seg = lines[m.seg % lines.length]!;
      lines.splice(m.to % (lines.length + 1), 0, /[\r\n]$/.test(seg) ? seg : `${seg}\r`);
      return lines.join('');
    }
    case 'dropSegment': {
      const lines = splitLines(text);
      if (lines.length === 0) return text;
      lines.splice(m.seg % lines.length, 1);
      return lines.join('');
    }
    case 'swapChars':
      return [...text].map((c) => (c === m.a ? m.b : c === m.b ? m.a : c)).join('');
    case 'hugeField': {
      const lines = splitLines(text);
      if (lines.length === 0) return text;
      const i = m.seg % lines.length;
      const line = lines[i]!;
      const body = line.replace(/[\r\n]+$/, '');
      lines[i] = `${body}|${m.ch.repeat(Math.ceil(m.count / m.ch.length))}${line.slice(body.length)}`;
      return lines.join('');
    }
    case 'encodingChars': {
      const start = text.indexOf('MSH');
      if (start === -1) return text;
      const oldSep = text[start + 3] ?? '';
      let end = start + 4;
      while (end < text.length && text[end] !== oldSep && text[end] !== '\r' && text[end] !== '\n') end++;
      const oldChars = oldSep + text.slice(start + 4, end);
      let rest = text.slice(end);
      if (m.translate && oldChars.length > 0) {
        const map = new Map<string, string>();
        for (let i = 0; i < oldChars.length && i < m.header.length; i++) map.set(oldChars[i]!, m.header[i]!);
        rest = [...rest].map((c) => map.get(c) ?? c).join('');
      }
      return `${text.slice(0, start)}MSH${m.header}${rest}`;
    }
    case 'terminators':
      return text.replace(/\r\n|\r|\n/g, m.to);
    case 'byteNoise': {
      const bytes = Buffer.from(text, 'utf8');
      const p = m.at % (bytes.length + 1);
      return Buffer.concat([bytes.subarray(0, p), m.bytes, bytes.subarray(p)]).toString('utf8');
    }
  }
}

/** A corpus message index and 1..6 mutations, applied in order. */
export function mutatedCorpusArb(
  corpus: readonly { text: string }[],
  mutations: fc.Arbitrary<Mutation> = mutationArb,
): fc.Arbitrary<string> {
  return fc
    .tuple(fc.nat(corpus.length - 1), fc.array(mutations, { minLength: 1, maxLength: 6 }))
    .map(([i, mutations]) => mutations.reduce(applyMutation, corpus[i]!.text));
}

// ---------------------------------------------------------------------------------------------------
// Paths and the reference reader

export interface PathSpec {
  seg: number;
  occ: number | undefined;
  field: number | undefined;
  rep: number | undefined;
  comp: number | undefined;
  sub: number | undefined;
  dot: boolean;
}

export const pathSpecArb: fc.Arbitrary<PathSpec> = fc.record({
  seg: fc.nat(),
  occ: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  field: fc.option(fc.integer({ min: 0, max: 30 }), { nil: undefined, freq: 8 }),
  rep: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  comp: fc.option(fc.integer({ min: 1, max: 8 }), { nil: undefined, freq: 3 }),
  sub: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
  dot: fc.boolean(),
});

export interface ResolvedPath {
  segment: string;
  occurrence: number | undefined;
  field: number | undefined;
  repetition: number | undefined;
  component: number | undefined;
  subcomponent: number | undefined;
}

/** A valid path string over one of the given segment names, and what it means. */
export function buildPath(names: readonly string[], s: PathSpec): { path: string; p: ResolvedPath } {
  const segment = names[s.seg % names.length]!;
  const field = s.field;
  const hasParts = field !== undefined && field !== 0;
  const p: ResolvedPath = {
    segment,
    occurrence: s.occ,
    field,
    repetition: hasParts ? s.rep : undefined,
    component: hasParts ? s.comp : undefined,
    subcomponent: hasParts && s.comp !== undefined ? s.sub : undefined,
  };
  const sep = s.dot ? '.' : '-';
  let path = segment;
  if (p.occurrence !== undefined) path += `[${p.occurrence}]`;
  if (p.field !== undefined) path += `${sep}${p.field}`;
  if (p.repetition !== undefined) path += `(${p.repetition})`;
  if (p.component !== undefined) path += `${sep}${p.component}`;
  if (p.subcomponent !== undefined) path += `${sep}${p.subcomponent}`;
  return { path, p };
}

/** The segments parse() sees, done the obvious way: leading BOM/whitespace off, split on CR and LF, blanks dropped. */
export function referenceSegments(text: string): string[] {
  let pos = 0;
  while (pos < text.length && [0xfeff, 13, 10, 32, 9].includes(text.charCodeAt(pos))) pos++;
  return text
    .slice(pos)
    .split(/[\r\n]/)
    .filter((s) => s !== '');
}

function nth(s: string, sep: string, n: number): string | undefined {
  if (sep === '') return n === 1 ? s : undefined;
  return s.split(sep)[n - 1];
}

const HEADERS = new Set(['MSH', 'FHS', 'BHS']);

interface RefField {
  seg: string | undefined;
  whole: string;
  fieldCount: number;
  literal: boolean;
}

function referenceField(segs: readonly string[], d: Delimiters, p: ResolvedPath): RefField {
  const seg = segs.filter((s) => s.slice(0, 3) === p.segment)[(p.occurrence ?? 1) - 1];
  if (seg === undefined || p.field === undefined) return { seg, whole: '', fieldCount: 0, literal: false };
  const header = HEADERS.has(p.segment);
  const parts = seg.split(d.field);
  const fieldCount = header ? parts.length : parts.length - 1;
  if (p.field === 0) return { seg, whole: p.segment, fieldCount, literal: true };
  if (header && p.field === 1) return { seg, whole: d.field, fieldCount, literal: true };
  if (header && p.field === 2) return { seg, whole: parts[1] ?? '', fieldCount, literal: true };
  return { seg, whole: (header ? parts[p.field - 1] : parts[p.field]) ?? '', fieldCount, literal: false };
}

/** What `get(path)` should return, computed with split(). */
export function referenceGet(segs: readonly string[], d: Delimiters, p: ResolvedPath): string {
  const f = referenceField(segs, d, p);
  if (f.seg === undefined) return '';
  if (p.field === undefined) return f.seg;
  if (f.literal) return f.whole;
  if (f.whole === '') return '';
  const rep = nth(f.whole, d.repetition, p.repetition ?? 1);
  const comp = rep === undefined ? undefined : nth(rep, d.component, p.component ?? 1);
  const sub = comp === undefined ? undefined : nth(comp, d.subcomponent, p.subcomponent ?? 1);
  return sub === undefined || sub === '' ? '' : unescape(sub, d);
}

/** What `getRaw(path)` should return, computed with split(). */
export function referenceGetRaw(segs: readonly string[], d: Delimiters, p: ResolvedPath): string | undefined {
  const f = referenceField(segs, d, p);
  if (f.seg === undefined) return undefined;
  if (p.field === undefined) return f.seg;
  const whole = p.repetition === undefined && p.component === undefined;
  if (f.literal) return whole ? f.whole : undefined;
  if (f.whole === '') return whole && p.field <= f.fieldCount ? '' : undefined;
  let v: string | undefined = f.whole;
  if (!whole) v = nth(v, d.repetition, p.repetition ?? 1);
  if (v !== undefined && p.component !== undefined) v = nth(v, d.component, p.component);
  if (v !== undefined && p.subcomponent !== undefined) v = nth(v, d.subcomponent, p.subcomponent);
  return v;
}
