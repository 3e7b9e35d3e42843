import { describe, expect, it } from 'vitest';
import { CORPUS_DIR, loadCorpus } from '../../test/support/corpus.js';
import { isEngineError } from '../errors.js';
import { type Delimiters, type Hl7Message, parse, unescape } from '../hl7/index.js';
import { convertMessage } from '../mapping/conversion.js';
import { MappingCatalog } from '../mapping/mapping-catalog.js';
import { Deidentifier } from './deidentifier.js';
import {
  type ComponentRule,
  DATA_TYPES,
  type FieldRule,
  OBX_VALUE_RULES,
  SEGMENT_POLICY,
  type ValueRule,
} from './policy.js';
import { isNumberLikeResult, parseHl7Date } from './values.js';

/**
 * The whole public corpus (CORPUS_DIR) through one export's Deidentifier, checked by a scanner that
 * collects the Safe Harbor identifiers of each ORIGINAL message by itself — walking the policy's field
 * table (so it knows which values are names, addresses, dates, phone numbers, identifiers, free text)
 * plus independent patterns over the raw text (SSN, phone, e-mail, URL) — and looks for them in the
 * de-identified text.
 *
 * Matching rule, to stay clear of values too short or common to mean anything ('M', '1', 'USA'):
 * - names: each word of four letters or more must not be a word of the output;
 * - other values (identifiers, street lines, cities, free text, phone numbers, ZIPs, county codes):
 *   values of four characters or more must not be a value of the output, and those of eight or more must
 *   not occur inside any output value either; phone numbers are also compared as digit strings (seven or
 *   more) with the output's numbers;
 * - dates finer than a year: their digits down to the day must not start any number in the output, and no
 *   output value outside OBX-5 may be a date finer than a year;
 * - a value that the original also carries in a field the policy keeps (a code's display, a facility's
 *   name) is not counted: it is not there as an identifier.
 */

const corpus = loadCorpus();
const catalog = MappingCatalog.load();

type Kind =
  | 'name'
  | 'address'
  | 'zip'
  | 'date'
  | 'telecom'
  | 'identifier'
  | 'free text'
  | 'other'
  | 'z-segment';

interface Identifier {
  readonly kind: Kind;
  readonly value: string;
  readonly where: string;
}

interface Scan {
  readonly identifiers: Identifier[];
  /** Lower-cased values and words of the fields the policy keeps as they are. */
  readonly keptValues: Set<string>;
  readonly keptWords: Set<string>;
}

const words = (s: string) => s.toLowerCase().match(/\p{L}{4,}/gu) ?? [];
const parts = (s: string, sep: string) => (sep === '' ? [s] : s.split(sep));

/** The scanner: the identifiers of one original message, by the policy's own field table. */
function scanOriginal(message: Hl7Message): Scan {
  const d = message.delimiters;
  const scan: Scan = { identifiers: [], keptValues: new Set(), keptWords: new Set() };
  for (const seg of message.segments()) {
    const z = seg.name.startsWith('Z');
    for (let f = 1; f <= seg.fieldCount; f++) {
      if (seg.isLiteralField(f)) continue;
      const raw = seg.getRaw(f);
      if (raw === '') continue;
      let rule: FieldRule = SEGMENT_POLICY[seg.name]?.[f] ?? 'scan';
      if (rule === 'obx-value') rule = OBX_VALUE_RULES[seg.getValue(2).trim().toUpperCase()] ?? 'text';
      const where = `${seg.name}-${f}`;
      for (const rep of parts(raw, d.repetition)) {
        parts(rep, d.component).forEach((comp, c) => {
          const compRule: ComponentRule =
            rule in DATA_TYPES
              ? ((DATA_TYPES as Record<string, Record<number, ComponentRule>>)[rule]?.[c + 1] ?? 'scan')
              : (rule as ValueRule);
          parts(comp, d.subcomponent).forEach((sub, k) => {
            const value = unescape(sub, d).trim();
            if (value === '' || value === '""') return;
            const valueRule = typeof compRule === 'string' ? compRule : (compRule.sub[k + 1] ?? 'scan');
            const kind = z ? 'z-segment' : kindOf(rule, valueRule, value);
            if (kind) scan.identifiers.push({ kind, value, where });
            else if (valueRule === 'keep' || rule === 'keep') {
              scan.keptValues.add(value.toLowerCase());
              for (const w of words(value)) scan.keptWords.add(w);
            }
          });
        });
      }
    }
  }
  // Independent of the table: patterns over the whole original text.
  for (const [kind, re] of PATTERNS) {
    for (const m of message.text.matchAll(re)) scan.identifiers.push({ kind, value: m[0], where: 'pattern' });
  }
  return scan;
}

const PATTERNS: readonly [Kind, RegExp][] = [
  ['identifier', /\b\d{3}-\d{2}-\d{4}\b/g],
  ['telecom', /\(\d{3}\)\s?\d{3}-\d{4}|\b\d{3}[-.]\d{3}[-.]\d{4}\b/g],
  ['telecom', /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g],
  ['other', /\bhttps?:\/\/[^\s|^~&\\]+/gi],
];

function kindOf(field: FieldRule, rule: ValueRule, value: string): Kind | undefined {
  const type = field === 'XAD' || field === 'LA2' ? 'address' : field === 'XTN' ? 'telecom' : undefined;
  switch (rule) {
    case 'name':
      return type === 'address' ? 'address' : 'name';
    case 'text':
      return type ?? 'free text';
    case 'result':
      return isNumberLikeResult(value) ? undefined : 'free text';
    case 'id':
      return 'identifier';
    case 'zip':
      return 'zip';
    case 'date':
    case 'birthdate':
      return parseHl7Date(value)?.month !== undefined ? 'date' : undefined;
    case 'remove':
      return type ?? 'other';
    default:
      return undefined;
  }
}

interface Output {
  readonly values: Set<string>;
  readonly words: Set<string>;
  readonly text: string;
  readonly numbers: string[];
  /** Dates finer than a year outside OBX-5 (where a number may look like one). */
  readonly fineDates: string[];
}

function readOutput(text: string): Output {
  const m = parse(text);
  const d = m.delimiters;
  const values = new Set<string>();
  const fineDates: string[] = [];
  const decoded: string[] = [];
  for (const seg of m.segments()) {
    for (let f = 1; f <= seg.fieldCount; f++) {
      if (seg.isLiteralField(f)) continue;
      for (const v of primitives(seg.getRaw(f), d)) {
        values.add(v.toLowerCase());
        decoded.push(v);
        // Six-digit codes (SNOMED 140004) parse as YYYYMM too: only plausible years count.
        const date = parseHl7Date(v);
        if (
          date?.month !== undefined &&
          date.year >= 1850 &&
          date.year <= 2100 &&
          !(seg.name === 'OBX' && f === 5)
        ) {
          fineDates.push(`${seg.name}-${f}: ${v}`);
        }
      }
    }
  }
  // One value a line: a match must lie within a value, not across two neighbours.
  const all = decoded.join('\n').toLowerCase();
  return { values, words: new Set(words(all)), text: all, numbers: all.match(/\d+/g) ?? [], fineDates };
}

function primitives(raw: string, d: Delimiters): string[] {
  return parts(raw, d.repetition)
    .flatMap((r) => parts(r, d.component))
    .flatMap((c) => parts(c, d.subcomponent))
    .map((s) => unescape(s, d).trim())
    .filter((s) => s !== '');
}

/** What of the original's identifiers the output still shows. */
function leaks(scan: Scan, out: Output): string[] {
  const found: string[] = [];
  for (const id of scan.identifiers) {
    const v = id.value.toLowerCase();
    const say = () => found.push(`${id.kind} at ${id.where}: ${id.value}`);
    if (id.kind === 'name') {
      if (words(v).some((w) => out.words.has(w) && !scan.keptWords.has(w))) say();
      continue;
    }
    if (id.kind === 'date') {
      const digits = v.replace(/\D/g, '').slice(0, 8);
      if (out.numbers.some((n) => n.startsWith(digits))) say();
      continue;
    }
    if (v.length < 4 || scan.keptValues.has(v) || [...scan.keptValues].some((k) => k.includes(v))) continue;
    if (out.values.has(v) || (v.length >= 8 && out.text.includes(v))) say();
    const digits = v.replace(/\D/g, '');
    if (id.kind === 'telecom' && digits.length >= 7 && out.numbers.includes(digits)) say();
  }
  return found;
}

/** The corpus, de-identified by one export. */
const deid = new Deidentifier({ key: Buffer.alloc(32, 42) });
const results = corpus.map((c) => {
  const original = parse(c.text);
  return { c, original, text: deid.deidentify(original) };
});

describe(`de-identified corpus (${CORPUS_DIR})`, () => {
  it.each(results.map((r) => [r.c.id, r] as const))('%s: no Safe Harbor identifier left', (_id, r) => {
    const scan = scanOriginal(r.original);
    const out = readOutput(r.text);
    expect(leaks(scan, out)).toEqual([]);
    expect(out.fineDates).toEqual([]);
    for (const [kind, re] of PATTERNS) expect(r.text.match(re), kind).toBeNull();
  });

  it('finds identifiers of every kind in the originals (the scanner is not looking at nothing)', () => {
    const counts = new Map<Kind, number>();
    for (const r of results) {
      for (const id of scanOriginal(r.original).identifiers)
        counts.set(id.kind, (counts.get(id.kind) ?? 0) + 1);
    }
    for (const kind of ['name', 'address', 'zip', 'date', 'telecom', 'identifier', 'free text'] as const) {
      expect(counts.get(kind) ?? 0, kind).toBeGreaterThan(10);
    }
    expect(counts.get('z-segment') ?? 0).toBeGreaterThan(0);
  });

  it('keeps the structure: the same segments (but Z-segments) with the same number of fields', () => {
    for (const r of results) {
      const out = parse(r.text);
      const kept = r.original.segments().filter((s) => !s.name.startsWith('Z'));
      expect(
        out.segments().map((s) => `${s.name}/${s.fieldCount}`),
        r.c.id,
      ).toEqual(kept.map((s) => `${s.name}/${s.fieldCount}`));
      expect(out.getRaw('MSH-9'), r.c.id).toBe(r.original.getRaw('MSH-9'));
    }
  });

  it('shows no one older than 90 at the time of the message', () => {
    for (const r of results) {
      const out = parse(r.text);
      const born = parseHl7Date(out.get('PID-7'));
      const at = parseHl7Date(out.get('MSH-7'));
      if (born && at) expect(at.year - born.year, r.c.id).toBeLessThanOrEqual(90);
    }
  });

  it('gives an identifier the same pseudonym in every message of the export', () => {
    const byOriginal = new Map<string, Set<string>>();
    for (const r of results) {
      const out = parse(r.text);
      r.original.getAll('PID-3').forEach((mrn, i) => {
        if (mrn.trim() === '') return;
        const set = byOriginal.get(mrn) ?? new Set();
        set.add(out.getAll('PID-3')[i] ?? '');
        byOriginal.set(mrn, set);
      });
    }
    expect([...byOriginal.values()].filter((s) => s.size > 1)).toEqual([]);
    expect([...byOriginal.keys()].some((k) => [...(byOriginal.get(k) ?? [])].includes(k))).toBe(false);
  });
});

describe('the de-identified corpus converts to FHIR with the same codes and values', () => {
  const convertible = results.filter((r) => bundleOf(r.original) !== undefined);

  it('covers the mapped message types', () => {
    const types = new Set(convertible.map((r) => r.original.get('MSH-9-1')));
    expect([...types].sort()).toEqual(expect.arrayContaining(['ADT', 'ORM', 'ORU']));
    expect(convertible.length).toBeGreaterThan(50);
  });

  it.each(convertible.map((r) => [r.c.id, r] as const))('%s', (_id, r) => {
    const before = bundleOf(r.original);
    const after = bundleOf(parse(r.text));
    expect(after).toBeDefined();
    expect(clinicalFacts(after)).toEqual(clinicalFacts(before));
    // People without an id are told apart by name only; with every name REDACTED the mapping may merge
    // them (two id-less practitioners become one), so people are not counted.
    expect(resourceCounts(after)).toEqual(resourceCounts(before));
  });
});

function bundleOf(message: Hl7Message): unknown {
  try {
    return convertMessage(message, { catalog, rawSha256: '0'.repeat(64) }).bundle;
  } catch (err) {
    if (isEngineError(err) && err.code === 'MAPPING_NONE') return undefined;
    throw err;
  }
}

type Json = Record<string, unknown>;

function resourcesOf(bundle: unknown): Json[] {
  return (((bundle as Json)?.entry as Json[] | undefined) ?? []).map((e) => e.resource as Json);
}

/**
 * Per clinical resource (Observation, Condition, Procedure, DiagnosticReport, AllergyIntolerance): every
 * coding's system and code, anywhere in it, and every valueQuantity; sorted, as a multiset.
 */
function clinicalFacts(bundle: unknown): string[] {
  const out: string[] = [];
  for (const r of resourcesOf(bundle)) {
    const type = r.resourceType as string;
    if (!CLINICAL.has(type)) continue;
    const codings: string[] = [];
    collectCodings(r, codings);
    out.push(`${type} ${codings.sort().join(' ')}`);
    const q = r.valueQuantity as Json | undefined;
    if (q) out.push(`${type} quantity ${q.value} ${q.unit ?? ''} ${q.system ?? ''}|${q.code ?? ''}`);
  }
  return out.sort();
}

const CLINICAL = new Set(['Observation', 'Condition', 'Procedure', 'DiagnosticReport', 'AllergyIntolerance']);

function collectCodings(node: unknown, out: string[]): void {
  if (Array.isArray(node)) for (const x of node) collectCodings(x, out);
  else if (node && typeof node === 'object') {
    for (const [k, v] of Object.entries(node)) {
      if (k === 'coding' && Array.isArray(v)) {
        for (const c of v as Json[]) out.push(`${c.system ?? ''}|${c.code ?? ''}`);
      } else collectCodings(v, out);
    }
  }
}

const PEOPLE = new Set(['Practitioner', 'RelatedPerson', 'Person']);

function resourceCounts(bundle: unknown): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of resourcesOf(bundle)) {
    const type = r.resourceType as string;
    if (!PEOPLE.has(type)) counts[type] = (counts[type] ?? 0) + 1;
  }
  return counts;
}
