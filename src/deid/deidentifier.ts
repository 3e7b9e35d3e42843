import { type Delimiters, escape, type Hl7Message, parse, type Segment, unescape } from '../hl7/index.js';
import {
  AGE_CODES,
  type ComponentMap,
  type ComponentRule,
  DATA_TYPES,
  type FieldRule,
  MARKER,
  OBX_VALUE_RULES,
  SEGMENT_POLICY,
  type ValueRule,
  YEAR_UNITS,
} from './policy.js';
import { Pseudonymizer } from './pseudonymizer.js';
import {
  ageInYears,
  type HL7DateParts,
  hasIdentifierPattern,
  isFullHl7Date,
  isNumberLikeResult,
  isPrecisionCode,
  nameWords,
  parseHl7Date,
  zip3,
} from './values.js';

export interface DeidentifyOptions {
  /** The export's pseudonym key: at least 32 random bytes, made for one export and never stored. */
  readonly key: Uint8Array;
  /** Z-segments to keep (their fields are scanned like any unlisted field); every other one is removed. */
  readonly keepSegments?: readonly string[];
  /** Written into a non-empty MSH-18: the charset of the text the export is written in. */
  readonly charset?: string;
  /** The reference time for ages when MSH-7 holds no date. Default: now. */
  readonly now?: () => Date;
}

/** Rules applied to a whole repetition (field level) or a whole component (component level). */
const WHOLE = new Set<ValueRule>(['text', 'name', 'remove', 'zip']);

/** Rules whose values are identifiers to hunt elsewhere (dates are caught as dates). */
const COLLECTED = new Set<ValueRule>(['remove', 'text', 'name', 'id', 'zip']);

/** What the first pass found in one message: values that must not show anywhere in the output. */
interface Found {
  /** Exact values (lower-cased, trimmed, four characters or more). */
  readonly values: Set<string>;
  /** Words of names and places. */
  readonly words: Set<string>;
}

/**
 * HIPAA Safe Harbor de-identification of HL7 v2 messages, driven by the policy table in policy.ts.
 * One instance serves one export: its pseudonyms are stable within it and unrelated to any other's.
 *
 * Each message is read twice: first to collect the identifiers the policy names (so that the same values
 * can be caught where a sender put them in an unexpected field), then to write the de-identified text.
 * Output segments end in `\r` (v2.5.1 §2.8), in the message's own delimiters and escapes.
 */
export class Deidentifier {
  readonly #pseudonyms: Pseudonymizer;
  readonly #keep: ReadonlySet<string>;
  readonly #charset: string | undefined;
  readonly #now: () => Date;

  constructor(opts: DeidentifyOptions) {
    this.#pseudonyms = new Pseudonymizer(opts.key);
    this.#keep = new Set((opts.keepSegments ?? []).map((s) => s.toUpperCase()));
    this.#charset = opts.charset;
    this.#now = opts.now ?? (() => new Date());
  }

  /** The de-identified text of one message. Throws the parser's EngineError (no content) when it does not parse. */
  deidentify(input: string | Hl7Message): string {
    const message = typeof input === 'string' ? parse(input) : input;
    const d = message.delimiters;
    const segments = message.segments().filter((s) => !s.name.startsWith('Z') || this.#keep.has(s.name));
    const found: Found = { values: new Set(), words: new Set() };
    const collect = (rule: ValueRule, raw: string): string => {
      collectValue(rule, raw, d, found);
      return raw;
    };
    for (const seg of segments) forEachField(seg, (_f, rule, raw) => mapField(rule, raw, d, collect));

    const at = referenceDate(message.get('MSH-7'), this.#now);
    const transform = (rule: ValueRule, raw: string): string => this.#value(rule, raw, d, found, at);
    const out: string[] = [];
    for (const seg of segments) {
      const fields: string[] = [];
      forEachField(seg, (f, rule, raw) => {
        let value = mapField(rule, raw, d, transform);
        if (seg.name === 'OBX' && f === 5) value = groupAge(seg, raw, value, d);
        if (f === 18 && seg.name === 'MSH' && raw !== '' && this.#charset !== undefined) {
          value = escape(this.#charset, d);
        }
        fields.push(value);
      });
      out.push(buildSegment(seg, fields, d));
    }
    return `${out.join('\r')}\r`;
  }

  #value(rule: ValueRule, raw: string, d: Delimiters, found: Found, at: HL7DateParts): string {
    if (raw === '' || raw === '""' || rule === 'keep') return raw;
    const text = unescape(raw, d).trim();
    switch (rule) {
      case 'remove':
        return '';
      case 'text':
      case 'name':
        return text === '' ? '' : MARKER;
      case 'id':
        return text === '' ? raw : escape(this.#pseudonyms.of(text), d);
      case 'date':
        return yearOf(text, raw);
      case 'birthdate': {
        const birth = parseHl7Date(text);
        if (birth && ageInYears(birth, at) > 89) return String(at.year - 90).padStart(4, '0');
        return yearOf(text, raw);
      }
      case 'zip':
        return zip3(text);
      case 'result':
        return isNumberLikeResult(text) ? raw : MARKER;
      case 'region':
        if (/^[\p{L} .'-]*$/u.test(text) && !repeatsIdentifier(text, found)) return raw;
        return '';
      case 'scan':
        if (isFullHl7Date(text)) return text.slice(0, 4);
        if (hasIdentifierPattern(text) || repeatsIdentifier(text, found)) return MARKER;
        return raw;
      default:
        return rule satisfies never;
    }
  }
}

/** Calls `fn` for every field of a segment with its rule (literal MSH-1/2 are kept as they are). */
function forEachField(seg: Segment, fn: (field: number, rule: FieldRule, raw: string) => void): void {
  const policy = SEGMENT_POLICY[seg.name];
  const obxRule = seg.name === 'OBX' ? obxValueRule(seg) : undefined;
  for (let f = 1; f <= seg.fieldCount; f++) {
    if (seg.isLiteralField(f)) {
      fn(f, 'keep', seg.getRaw(f));
      continue;
    }
    const rule = policy?.[f] ?? 'scan';
    fn(f, rule === 'obx-value' ? (obxRule ?? 'text') : rule, seg.getRaw(f));
  }
}

/** OBX-5's rule from OBX-2; a missing or unknown value type is free text. */
function obxValueRule(seg: Segment): FieldRule {
  const type = seg.getValue(2).trim().toUpperCase();
  return OBX_VALUE_RULES[type] ?? 'text';
}

/**
 * Applies a field rule: `keep` to the field as is, `text`/`name`/`remove` to each whole repetition, a
 * data type's map or any other value rule to each component (and, where the map says, subcomponent).
 */
function mapField(
  rule: FieldRule,
  raw: string,
  d: Delimiters,
  visit: (rule: ValueRule, raw: string) => string,
): string {
  if (raw === '' || rule === 'keep') return raw;
  if (rule === 'obx-value') throw new RangeError('obx-value is resolved per segment');
  const reps = split(raw, d.repetition);
  if (isValueRule(rule) && WHOLE.has(rule)) {
    const out = reps.map((rep) => visit(rule, rep));
    return out.every((r) => r === '') ? '' : out.join(d.repetition);
  }
  const map: ComponentMap | undefined = isValueRule(rule) ? undefined : DATA_TYPES[rule];
  return reps
    .map((rep) => {
      if (rep === '""') return rep;
      return split(rep, d.component)
        .map((comp, i) => mapComponent(map ? (map[i + 1] ?? 'scan') : (rule as ValueRule), comp, d, visit))
        .join(d.component);
    })
    .join(d.repetition);
}

function mapComponent(
  rule: ComponentRule,
  comp: string,
  d: Delimiters,
  visit: (rule: ValueRule, raw: string) => string,
): string {
  if (comp === '') return comp;
  if (typeof rule === 'string' && WHOLE.has(rule)) return visit(rule, comp);
  return split(comp, d.subcomponent)
    .map((sub, k) => visit(typeof rule === 'string' ? rule : (rule.sub[k + 1] ?? 'scan'), sub))
    .join(d.subcomponent);
}

function isValueRule(rule: FieldRule): rule is ValueRule {
  return !(rule in DATA_TYPES) && rule !== 'obx-value';
}

/** A part split by a delimiter; a delimiter the message does not define (old MSH-2) splits nothing. */
function split(s: string, sep: string): string[] {
  return sep === '' ? [s] : s.split(sep);
}

function collectValue(rule: ValueRule, raw: string, d: Delimiters, found: Found): void {
  if (!COLLECTED.has(rule)) return;
  // A whole repetition or component may hold several parts: each is a value of its own.
  for (const part of parts(raw, d)) {
    const text = unescape(part, d).trim().toLowerCase();
    if (text.length >= 4 && text !== '""') found.values.add(text);
    if (rule === 'name') for (const w of nameWords(text)) found.words.add(w);
  }
}

function parts(raw: string, d: Delimiters): string[] {
  let out = [raw];
  for (const sep of [d.repetition, d.component, d.subcomponent]) {
    if (sep !== '') out = out.flatMap((p) => p.split(sep));
  }
  return out;
}

function repeatsIdentifier(text: string, found: Found): boolean {
  const lower = text.toLowerCase();
  if (lower.length >= 4 && found.values.has(lower)) return true;
  return nameWords(lower).some((w) => found.words.has(w));
}

/** A date's year (`2026`, valid DTM/DT/TS precision); a TS precision code stays; anything else goes. */
function yearOf(text: string, raw: string): string {
  if (parseHl7Date(text)) return text.slice(0, 4);
  return isPrecisionCode(text) ? raw : '';
}

/** MSH-7's date, else now: the time at which ages are reckoned. */
function referenceDate(msh7: string, now: () => Date): HL7DateParts {
  const parsed = parseHl7Date(msh7);
  if (parsed) return parsed;
  const t = now();
  return { year: t.getUTCFullYear(), month: t.getUTCMonth() + 1, day: t.getUTCDate() };
}

/** An age observation over 89 years becomes 90 (Safe Harbor: "90 or older"). */
function groupAge(seg: Segment, raw: string, value: string, d: Delimiters): string {
  if (seg.getValue(2).trim().toUpperCase() !== 'NM') return value;
  if (!AGE_CODES.has(seg.getValue(3).trim())) return value;
  if (!YEAR_UNITS.has(seg.getValue(6).trim().toLowerCase())) return value;
  const age = Number(unescape(raw, d).trim());
  return Number.isFinite(age) && age > 89 ? '90' : value;
}

/** The segment's wire text from its (new) fields: MSH-1 is the field separator itself. */
function buildSegment(seg: Segment, fields: readonly string[], d: Delimiters): string {
  const body = seg.isLiteralField(1) ? fields.slice(1) : fields;
  return seg.name + body.map((f) => d.field + f).join('');
}
