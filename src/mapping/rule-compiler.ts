import { unescape } from '../hl7/escape.js';
import { nthPart, type Segment } from '../hl7/segment.js';
import type { Converter } from './converter.js';
import { compileFhirPath, type Setter } from './fhir-path.js';
import type { RuleSpec } from './mapping-files.js';
import type { ConditionSource, MappingRun } from './mapping-run.js';
import { V2Element } from './v2-element.js';

/** A compiled data-type map (or built-in converter): element in, FHIR value out (undefined: nothing). */
export type ElementConverter = (el: V2Element, run: MappingRun) => unknown;

/** A compiled condition over what the current rule can see. */
export type CompiledCondition = (read: ConditionSource) => boolean;

/** Everything the rule compiler needs from the catalog; a failed lookup reports and returns undefined. */
export interface RuleEnvironment {
  converter(type: string, key: string): ElementConverter | undefined;
  hasVocabulary(table: string, key: string): boolean;
  condition(spec: unknown, key: string): CompiledCondition | undefined;
  problem(key: string, message: string): void;
}

/** A segment map's rule: reads a field of the current segment into the target. */
export type FieldRule = (seg: Segment, target: Record<string, unknown>, run: MappingRun) => void;
/** A data-type map's rule: reads a component of the element into the target; true when it set data. */
export type ComponentRule = (el: V2Element, target: Record<string, unknown>, run: MappingRun) => boolean;

/** Reads the value of an element the way a rule without `type` asks: text, or through a vocabulary. */
function compileValue(rule: RuleSpec, env: RuleEnvironment, key: string): ElementConverter | undefined {
  if (rule.type !== undefined) return env.converter(rule.type, `${key}.type`);
  const table = rule.vocabulary;
  if (table === undefined) {
    return (el) => {
      // Padding is not data: senders pad fixed-width values with spaces, and a lone space is no value.
      const text = el.value().trim();
      return text === '' ? undefined : text;
    };
  }
  if (!env.hasVocabulary(table, `${key}.vocabulary`)) return undefined;
  const as = rule.as ?? 'code';
  return (el, run) => {
    const text = el.value().trim();
    if (text === '') return undefined;
    const hit = run.vocabulary.lookup(table, text);
    if (hit === undefined) run.unknownCode(table);
    else if (hit.code === '') return undefined; // known, and deliberately nothing in FHIR
    if (as === 'code') return hit?.code;
    // Built field by field: object spread is several times slower on this path (per coded field).
    const coding: { system?: string; code: string; display?: string } = hit
      ? { code: hit.code }
      : { code: text };
    if (hit?.system) coding.system = hit.system;
    if (hit?.display) coding.display = hit.display;
    return as === 'coding' ? coding : { coding: [coding] };
  };
}

/** The constant a rule assigns, copied per use so that no two resources share one object. */
function constant(value: unknown): () => unknown {
  if (value === null || typeof value !== 'object') return () => value;
  const json = JSON.stringify(value);
  return () => JSON.parse(json) as unknown;
}

/** What every rule compiles first: where it writes and when it applies; undefined after a problem. */
function compileTarget(
  rule: RuleSpec,
  env: RuleEnvironment,
  key: string,
): { set: Setter; when: CompiledCondition | undefined } | undefined {
  let set: Setter;
  try {
    set = compileFhirPath(rule.to);
  } catch {
    env.problem(`${key}.to`, 'not a valid FHIR path');
    return undefined;
  }
  const when = rule.when === undefined ? undefined : env.condition(rule.when, `${key}.when`);
  if (rule.when !== undefined && when === undefined) return undefined;
  return { set, when };
}

/** A rule with `resource:` makes its value a resource of its own and writes a reference; undefined: nothing. */
function asSideReference(value: unknown, resourceType: string | undefined, run: MappingRun): unknown {
  if (resourceType === undefined) return value;
  if (typeof value !== 'object' || value === null || Object.keys(value).length === 0) return undefined;
  return run.sideResource(resourceType, value as Record<string, unknown>);
}

export function compileFieldRule(rule: RuleSpec, env: RuleEnvironment, key: string): FieldRule | undefined {
  const target = compileTarget(rule, env, key);
  if (!target) return undefined;
  const { set, when } = target;
  const from = rule.from;
  if (from === undefined) {
    const make = constant(rule.value);
    return (_seg, target, run) => {
      if (when && !when(run.segmentSource())) return;
      set(target, make());
    };
  }
  const every = rule.to.endsWith('[]');
  const component = rule.component;
  const hasConstant = rule.value !== undefined;
  const make = constant(rule.value);
  const convert = hasConstant ? undefined : compileValue(rule, env, key);
  if (!hasConstant && convert === undefined) return undefined;
  const resourceType = rule.resource;
  const plainText = !hasConstant && rule.type === undefined && rule.vocabulary === undefined && !resourceType;
  const apply = (rep: string, target: Record<string, unknown>, run: MappingRun): void => {
    if (plainText) {
      // The commonest field rule (an id, a code, a date as text): read without making an element.
      const text = repetitionText(rep, component ?? 1, run).trim();
      if (text !== '') set(target, text);
      return;
    }
    let el = new V2Element(rep, 0, run.message.delimiters, run.message.options);
    if (component !== undefined) el = el.part(component);
    if (el.isEmpty || el.isNull) return;
    const value = asSideReference(
      hasConstant ? make() : (convert as ElementConverter)(el, run),
      resourceType,
      run,
    );
    if (value !== undefined) set(target, value);
  };
  return (seg, target, run) => {
    const whole = seg.getRaw(from);
    if (whole === '' || seg.isLiteralField(from)) return;
    if (when && !when(run.segmentSource())) return;
    run.fieldNo = from;
    run.consume(from, every);
    const sep = run.message.delimiters.repetition;
    if (!every) {
      apply(firstRepetition(whole, sep), target, run);
      return;
    }
    for (const rep of whole.split(sep)) apply(rep, target, run);
  };
}

export function compileComponentRule(
  rule: RuleSpec,
  env: RuleEnvironment,
  key: string,
): ComponentRule | undefined {
  const compiled = compileTarget(rule, env, key);
  if (!compiled) return undefined;
  const { set, when } = compiled;
  const from = rule.from;
  const make = constant(rule.value);
  if (from === undefined && (rule.type !== undefined || rule.vocabulary !== undefined)) {
    // No component: the converter reads the whole element (XTN's value is assembled from several).
    const whole = compileValue(rule, env, key);
    if (whole === undefined) return undefined;
    const wholeResource = rule.resource;
    return (el, target, run) => {
      if (when && !when(elementSource(el, run))) return false;
      const value = asSideReference(whole(el, run), wholeResource, run);
      if (value === undefined) return false;
      set(target, value);
      return true;
    };
  }
  if (from === undefined) {
    return (el, target, run) => {
      if (when && !when(elementSource(el, run))) return false;
      set(target, make());
      return false;
    };
  }
  const hasConstant = rule.value !== undefined;
  if (!hasConstant && rule.type === undefined && rule.vocabulary === undefined && !when && !rule.resource) {
    // The commonest rule (a name part, an id, a city): the component's text, read without an element.
    return (el, target) => {
      const text = el.text(from).trim();
      if (text === '') return false;
      set(target, text);
      return true;
    };
  }
  const convert = hasConstant ? undefined : compileValue(rule, env, key);
  if (!hasConstant && convert === undefined) return undefined;
  const resourceType = rule.resource;
  return (el, target, run) => {
    const raw = el.partRaw(from);
    if (raw === '' || raw === '""') return false;
    if (when && !when(elementSource(el, run))) return false;
    const value = asSideReference(
      hasConstant ? make() : (convert as ElementConverter)(el.part(from), run),
      resourceType,
      run,
    );
    if (value === undefined) return false;
    set(target, value);
    return true;
  };
}

/** A data-type map as one converter: an object with what its rules set, or undefined when none set data. */
export function datatypeConverter(rules: readonly ComponentRule[]): ElementConverter {
  return (el, run) => {
    const out: Record<string, unknown> = {};
    let any = false;
    for (const rule of rules) if (rule(el, out, run)) any = true;
    return any ? out : undefined;
  };
}

/** A built-in converter wrapped to the compiled form. */
export function builtinConverter(fn: Converter): ElementConverter {
  return (el, run) => fn(el, run);
}

/** The decoded text of one component's first subcomponent of a field repetition ('' for `""`). */
function repetitionText(rep: string, component: number, run: MappingRun): string {
  if (rep === '' || rep === '""') return '';
  const d = run.message.delimiters;
  const comp = nthPart(rep, d.component, component);
  if (comp === undefined || comp === '' || comp === '""') return '';
  const sub = nthPart(comp, d.subcomponent, 1) ?? '';
  return sub === '' ? '' : unescape(sub, d, run.message.options);
}

function firstRepetition(whole: string, sep: string): string {
  const i = whole.indexOf(sep);
  return i === -1 ? whole : whole.slice(0, i);
}

/** Conditions in a data-type map: `component: n` reads this element's component n. */
function elementSource(el: V2Element, run: MappingRun): ConditionSource {
  return {
    values: (path) => run.message.getAll(path),
    component: (n) => [el.part(n).value()],
  };
}
