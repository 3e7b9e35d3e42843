import { EngineError } from '../errors.js';
import type { Hl7Message } from './message.js';
import { compilePath, formatPath } from './path.js';

/**
 * The condition language of channel `filter` and mapping `when` (docs/mapping.md "Conditions").
 *
 * A leaf reads the values at a path and tests them; a path that names every repetition or occurrence
 * (`OBX-3-1`, `PID-3`) holds when ANY of its values passes, so `not` over such a leaf means "none does".
 * Empty values count as absent: `exists: true` needs one non-empty value, and `equals`/`in`/`matches`
 * test only non-empty values. `equals`/`in` compare decoded strings exactly (quote numbers in YAML:
 * `equals: '01'`). `matches` is a JavaScript regular expression without flags and not anchored
 * (write `^…$`). In a data-type map `component: n` (1-based) stands in for `path`.
 */
export type ConditionSpec = ConditionLeaf | ConditionAll | ConditionAny | ConditionNot;

export type ConditionLeaf = ({ readonly path: string } | { readonly component: number }) &
  (
    | { readonly equals: string }
    | { readonly in: readonly string[] }
    | { readonly matches: string }
    | { readonly exists: boolean }
  );
export interface ConditionAll {
  readonly all: readonly ConditionSpec[];
}
export interface ConditionAny {
  readonly any: readonly ConditionSpec[];
}
export interface ConditionNot {
  readonly not: ConditionSpec;
}

/**
 * Where a compiled condition gets its values. `values` receives the path in canonical form
 * (`formatPath`: upper case, `SEG[occ]-field(rep)-comp-sub`), so a mapping reader can tell a path into
 * its own segment and read the current occurrence instead. `component` serves `component: n` leaves
 * in data-type maps; a reader without it reads no values there.
 */
export interface ConditionReader {
  values(path: string): readonly string[];
  component?(n: number): readonly string[];
}

export type CompiledCondition = (reader: ConditionReader) => boolean;

/** Why a condition does not compile. Texts name the key, never the value: values may be copied from messages. */
export type ConditionProblem = 'shape' | 'unknown-key' | 'type' | 'path' | 'regex';

/**
 * A condition that does not compile. `at` is the key path inside the spec (`['any', '0', 'matches']`)
 * so a loader can point at the YAML line; nothing of the spec's values is kept (no `cause` either:
 * a SyntaxError from RegExp quotes the pattern).
 */
export class ConditionError extends EngineError {
  readonly problem: ConditionProblem;
  readonly at: readonly string[];
  constructor(problem: ConditionProblem, at: readonly string[]) {
    super('CONFIG_INVALID', { detail: `condition ${problem} at ${at.length ? at.join('.') : '(root)'}` });
    this.problem = problem;
    this.at = at;
  }
}

const TARGETS = ['path', 'component'] as const;
const TESTS = ['equals', 'in', 'matches', 'exists'] as const;
const COMBINATORS = ['all', 'any', 'not'] as const;
const KEYS: ReadonlySet<string> = new Set([...TARGETS, ...TESTS, ...COMBINATORS]);
const NONE: readonly string[] = [];

/** Compiles a condition once (STYLE habit 3): paths checked, regexes built, closures returned. */
export function compileCondition(spec: ConditionSpec): CompiledCondition {
  return compile(spec, []);
}

/** A reader over a whole message: every occurrence and repetition a path names (`Hl7Message.getAll`). */
export function messageReader(msg: Hl7Message): ConditionReader {
  return { values: (path) => msg.getAll(path) };
}

function compile(spec: unknown, at: readonly string[]): CompiledCondition {
  if (spec === null || typeof spec !== 'object' || Array.isArray(spec)) throw new ConditionError('type', at);
  const keys = Object.keys(spec);
  const o = spec as Record<string, unknown>;
  const unknown = keys.find((k) => !KEYS.has(k));
  if (unknown !== undefined) throw new ConditionError('unknown-key', [...at, unknown]);
  const kinds = keys.filter((k) => (TARGETS as readonly string[]).includes(k) || isCombinator(k));
  if (kinds.length !== 1) throw new ConditionError('shape', at);
  const kind = kinds[0]!;
  if (isCombinator(kind)) {
    if (keys.length !== 1) throw new ConditionError('shape', at);
    return compileCombinator(kind, o[kind], [...at, kind]);
  }
  const tests = keys.filter((k) => (TESTS as readonly string[]).includes(k));
  if (tests.length !== 1) throw new ConditionError('shape', at);
  const read = compileTarget(kind as 'path' | 'component', o[kind], [...at, kind]);
  const test = tests[0] as (typeof TESTS)[number];
  return compileTest(test, o[test], read, [...at, test]);
}

function isCombinator(k: string): k is (typeof COMBINATORS)[number] {
  return (COMBINATORS as readonly string[]).includes(k);
}

function compileCombinator(
  kind: (typeof COMBINATORS)[number],
  arg: unknown,
  at: readonly string[],
): CompiledCondition {
  if (kind === 'not') {
    const inner = compile(arg, at);
    return (r) => !inner(r);
  }
  if (!Array.isArray(arg)) throw new ConditionError('type', at);
  if (arg.length === 0) throw new ConditionError('shape', at);
  const parts = arg.map((c, i) => compile(c, [...at, String(i)]));
  if (parts.length === 1) return parts[0]!;
  return kind === 'all'
    ? (r) => {
        for (const p of parts) if (!p(r)) return false;
        return true;
      }
    : (r) => {
        for (const p of parts) if (p(r)) return true;
        return false;
      };
}

type Read = (r: ConditionReader) => readonly string[];

function compileTarget(kind: 'path' | 'component', arg: unknown, at: readonly string[]): Read {
  if (kind === 'component') {
    if (typeof arg !== 'number' || !Number.isInteger(arg) || arg < 1) throw new ConditionError('type', at);
    return (r) => (r.component ? r.component(arg) : NONE);
  }
  if (typeof arg !== 'string') throw new ConditionError('type', at);
  let canonical: string;
  try {
    canonical = formatPath(compilePath(arg));
  } catch {
    throw new ConditionError('path', at);
  }
  return (r) => r.values(canonical);
}

function compileTest(
  test: (typeof TESTS)[number],
  arg: unknown,
  read: Read,
  at: readonly string[],
): CompiledCondition {
  switch (test) {
    case 'equals': {
      if (typeof arg !== 'string' || arg === '') throw new ConditionError('type', at);
      return (r) => read(r).includes(arg);
    }
    case 'in': {
      if (!Array.isArray(arg) || arg.length === 0) throw new ConditionError('type', at);
      arg.forEach((v, i) => {
        if (typeof v !== 'string' || v === '') throw new ConditionError('type', [...at, String(i)]);
      });
      const set = new Set<string>(arg as string[]);
      return (r) => {
        for (const v of read(r)) if (set.has(v)) return true;
        return false;
      };
    }
    case 'matches': {
      if (typeof arg !== 'string') throw new ConditionError('type', at);
      let re: RegExp;
      try {
        re = new RegExp(arg);
      } catch {
        throw new ConditionError('regex', at);
      }
      return (r) => {
        for (const v of read(r)) if (v !== '' && re.test(v)) return true;
        return false;
      };
    }
    case 'exists': {
      if (typeof arg !== 'boolean') throw new ConditionError('type', at);
      const present = (r: ConditionReader) => {
        for (const v of read(r)) if (v !== '') return true;
        return false;
      };
      return arg ? present : (r) => !present(r);
    }
    default:
      return test satisfies never;
  }
}

const DESCRIPTIONS = {
  condition:
    'A condition: {path, equals|in|matches|exists}, or all/any/not of conditions. A path naming several repetitions or segments holds when any value passes; empty values count as absent.',
  path: 'HL7 field path (SEG[occurrence]-field(repetition)-component-subcomponent, 1-based), e.g. MSH-11-1, PID-3(1)-5, OBX-3-1.',
  component: 'Component of the current value (data-type maps only), 1-based; stands in for path.',
  equals: 'Holds when a value is exactly this decoded text (quote numbers: "01").',
  in: 'Holds when a value is one of these decoded texts.',
  matches: 'JavaScript regular expression (no flags, not anchored: write ^…$) a value must match.',
  exists: 'true: the path has a non-empty value; false: it has none.',
  all: 'Holds when every condition in the list holds.',
  any: 'Holds when at least one condition in the list holds.',
  not: 'Holds when the condition does not.',
} as const;

/**
 * The JSON Schema of a condition, for embedding under `$defs`/`definitions` of a host schema:
 * `selfRef` is where the host puts it (`#/$defs/condition`), used for the nested conditions.
 * `component: true` allows `component` leaves (data-type maps). The schema checks the shape (one of
 * the forms, closed key sets, string values); `compileCondition` checks paths and regexes.
 */
export function conditionSchema(selfRef: string, options: { component?: boolean } = {}): JsonSchemaObject {
  const targets = options.component ? TARGETS : (['path'] as const);
  const ref = { $ref: selfRef };
  const properties: Record<string, JsonSchemaObject> = {
    path: { type: 'string', minLength: 1, description: DESCRIPTIONS.path },
    ...(options.component
      ? { component: { type: 'integer', minimum: 1, description: DESCRIPTIONS.component } }
      : {}),
    equals: { type: 'string', minLength: 1, description: DESCRIPTIONS.equals },
    in: {
      type: 'array',
      minItems: 1,
      items: { type: 'string', minLength: 1 },
      description: DESCRIPTIONS.in,
    },
    matches: { type: 'string', description: DESCRIPTIONS.matches },
    exists: { type: 'boolean', description: DESCRIPTIONS.exists },
    all: { type: 'array', minItems: 1, items: ref, description: DESCRIPTIONS.all },
    any: { type: 'array', minItems: 1, items: ref, description: DESCRIPTIONS.any },
    not: { ...ref, description: DESCRIPTIONS.not },
  };
  // Each form is a closed key set, all of whose keys must be present (only these names, at least this
  // many): the forms are disjoint, so `oneOf` means "exactly this form". (`required` here would trip
  // ajv's strictRequired, which does not see the parent's `properties`.)
  const forms = [
    ...targets.flatMap((t) => TESTS.map((test) => [t, test])),
    ...COMBINATORS.map((c) => [c]),
  ].map((keys) => ({ propertyNames: { enum: keys }, minProperties: keys.length }));
  return {
    type: 'object',
    description: DESCRIPTIONS.condition,
    additionalProperties: false,
    properties,
    oneOf: forms,
  };
}

export type JsonSchemaObject = { readonly [key: string]: unknown };

/** The channel `filter` condition (path leaves only), embedded as `$defs.condition`. */
export const CONDITION_SCHEMA: JsonSchemaObject = conditionSchema('#/$defs/condition');

export function isConditionError(err: unknown): err is ConditionError {
  return err instanceof ConditionError;
}

/** What a person reads for each condition problem (file and key are added by the loader). */
export const CONDITION_MESSAGES: Readonly<Record<ConditionProblem, string>> = {
  shape: 'a condition is one of: path with equals, in, matches or exists; all; any; not',
  'unknown-key': 'unknown key',
  type: 'invalid value',
  path: 'invalid field path',
  regex: 'invalid regular expression',
};
