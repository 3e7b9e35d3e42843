import { readdirSync, readFileSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { decodeHl7 } from '../../src/hl7/charset.js';
import { type Hl7Message, parse, type Segment } from '../../src/hl7/index.js';
import type { CorpusMessage } from './corpus.js';

/**
 * The PHI of test messages, as values to search the engine's logs, queues, tables and outputs for (the
 * PHI-leak test, issue 7). Values are read with the engine's own parser from the positions that carry
 * names, identifiers, birth dates, addresses, phones and free text (POSITIONS), then the ones too
 * generic to be evidence of a leak are dropped — by rules written down here (judge), never by looking
 * at what the engine wrote.
 *
 * Matching is on tokens: a value and a haystack are both cut into runs of letters and digits,
 * lower-cased, and a value is found where its whole token sequence stands in the haystack. So `Smith`
 * is found in `"family":"SMITH"` and `SMITH^JOHN` but not in `Smithfield`; `(555)555-2004` in
 * `555-555-2004`; and a record number `123456` not inside a timestamp `1740000123456`.
 */

export const PHI_KINDS = ['name', 'identifier', 'birthDate', 'address', 'phone', 'freeText'] as const;
export type PhiKind = (typeof PHI_KINDS)[number];

export interface Needle {
  /** The value as found (decoded), for reports. */
  readonly value: string;
  /** What is matched: its lower-cased letter/digit runs, in order. */
  readonly tokens: readonly string[];
  readonly kind: PhiKind;
  /** Where it was first found: corpus message id and HL7 position. */
  readonly where: string;
}

/** Why a value read from a PHI position is not searched for. */
export const DROP_REASONS = {
  short:
    'too short to be evidence (names, streets, cities < 4 characters; identifiers < 5, or < 6 digits when only digits; phones < 7 digits; free text < 3 words or 12 characters)',
  generic:
    'every word is a common word or a word of the engine’s own text (code, mappings, channels, queue library)',
  inClear:
    'stored in clear by design: a control id (MSH-10) or a system name (MSH-3..6) of some corpus message',
  engineText: 'a free-text run that also stands in the engine’s own text',
  notADate: 'a birth date without day precision',
} as const;
export type DropReason = keyof typeof DROP_REASONS;

export interface PhiExtraction {
  /** Distinct values to search for (one per token sequence, the first finding kept). */
  readonly needles: readonly Needle[];
  readonly byKind: Readonly<Record<PhiKind, number>>;
  /** Distinct values read from PHI positions, before filtering. */
  readonly candidates: number;
  readonly dropped: Readonly<Record<DropReason, number>>;
  /** Corpus messages the engine's parser could not read: none of their values are searched for. */
  readonly unreadable: readonly string[];
}

/** Lower-cased runs of letters and digits: the form values and haystacks are compared in. */
export function tokensOf(text: string): string[] {
  return text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
}

/**
 * English words that fill name, city and street fields of sample data without naming anyone ("Test",
 * "Patient", "Baby", "Unknown") or that any text may hold. Only words of four letters or more matter:
 * shorter ones are dropped by length.
 */
export const COMMON_WORDS: ReadonlySet<string> = new Set(
  `test testing tester sample example demo dummy fake none null unknown other patient person people
  baby babyboy babygirl infant newborn child children adult male female mother father sister brother
  daughter husband wife spouse parent guardian self friend family given middle name first last
  doctor nurse physician provider staff admin user system hospital clinic medical center centre
  health care general memorial community county state city town village street road avenue lane
  drive court place suite floor room north south east west main second third home work
  office business mobile phone cell email address unit apartment house building mail box
  one two three four five six seven eight nine ten eleven twelve enter refer attend admit discharge
  inpatient outpatient emergency primary secondary default temp temporary insurance group plan
  company private public`.split(/\s+/),
);

/**
 * Words of the engine's own text: what it could write about itself (log messages, error texts, metric
 * names, mapping and vocabulary files, channel files) and what BullMQ and prom-client write beside it.
 * Code comments are left out: they are never output. `extra` adds the test's own names (channels,
 * destinations) and paths.
 */
export function engineText(root: string, extra: readonly string[] = []): string {
  const parts: string[] = [hostname(), ...extra];
  const add = (dir: string, keep: (file: string) => boolean, strip: boolean) => {
    for (const file of walk(join(root, dir))) {
      if (!keep(file)) continue;
      const text = readFileSync(file, 'utf8');
      parts.push(strip ? stripComments(text) : text);
    }
  };
  add('src', (f) => /\.(ts|json)$/.test(f) && !f.endsWith('.test.ts'), true);
  add('mappings', (f) => /\.(ya?ml|csv|json)$/.test(f), false);
  // Channel files only: the *.tests folders beside them hold messages.
  add('channels', (f) => /\.ya?ml$/.test(f) && !f.includes('.tests/'), false);
  add('node_modules/bullmq/dist/esm', (f) => f.endsWith('.js'), true);
  add('node_modules/prom-client/lib', (f) => f.endsWith('.js'), true);
  return parts.join('\n');
}

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) yield* walk(path);
    else yield path;
  }
}

/** Block comments and line comments (not `://` in URLs). Rough, but only ever removes text. */
function stripComments(code: string): string {
  return code.replace(/\/\*[\s\S]*?\*\//g, ' ').replace(/(^|[^:\\])\/\/.*$/gm, '$1');
}

/** How values of one data type are read from a field repetition. */
type Reader = (seg: Segment, field: number, rep: number) => Array<[value: string, part: string]>;

const comp = (seg: Segment, f: number, r: number, c: number, s = 1) => seg.getValue(f, r, c, s);

const READERS = {
  /** XPN: family (FN-1 surname), given, second given. */
  XPN: (seg, f, r) => [
    [comp(seg, f, r, 1), '1'],
    [comp(seg, f, r, 2), '2'],
    [comp(seg, f, r, 3), '3'],
  ],
  /** XCN: family (2, FN-1 surname), given (3), second given (4). */
  XCN: (seg, f, r) => [
    [comp(seg, f, r, 2), '2'],
    [comp(seg, f, r, 3), '3'],
    [comp(seg, f, r, 4), '4'],
  ],
  /** NDL: its first component is a CNN in subcomponents: family (2), given (3), second given (4). */
  NDL: (seg, f, r) => [
    [comp(seg, f, r, 1, 2), '1-2'],
    [comp(seg, f, r, 1, 3), '1-3'],
    [comp(seg, f, r, 1, 4), '1-4'],
  ],
  /** CX, DLN, ST: the id itself. */
  ID: (seg, f, r) => [[comp(seg, f, r, 1), '1']],
  /** XAD: street (SAD-1), other designation, city. */
  XAD: (seg, f, r) => [
    [comp(seg, f, r, 1), '1'],
    [comp(seg, f, r, 2), '2'],
    [comp(seg, f, r, 3), '3'],
  ],
  /** XTN: as written (1), email (4), area code + local number (6, 7), unformatted (12). */
  XTN: (seg, f, r) => {
    const area = comp(seg, f, r, 6);
    const local = comp(seg, f, r, 7);
    return [
      [comp(seg, f, r, 1), '1'],
      [comp(seg, f, r, 4), '4'],
      [area && local ? `${area} ${local}` : '', '6+7'],
      [local, '7'],
      [comp(seg, f, r, 12), '12'],
    ];
  },
  /** TS/DTM: the date-time (first component). */
  TS: (seg, f, r) => [[comp(seg, f, r, 1), '1']],
  /** FT/TX/ST: the whole text of the repetition. */
  TEXT: (seg, f, r) => [[seg.getValue(f, r, 1, 1), '']],
} satisfies Record<string, Reader>;
type DataType = keyof typeof READERS;

/** The PHI positions (v2.5.1 field numbers; earlier versions number these fields the same). */
const POSITIONS: ReadonlyArray<{
  segment: string;
  fields: readonly number[];
  type: DataType;
  kind: PhiKind;
}> = [
  // Patient, mother's maiden, alias; prior name (MRG); next of kin; guarantor; insured.
  { segment: 'PID', fields: [5, 6, 9], type: 'XPN', kind: 'name' },
  { segment: 'MRG', fields: [7], type: 'XPN', kind: 'name' },
  { segment: 'NK1', fields: [2], type: 'XPN', kind: 'name' },
  { segment: 'GT1', fields: [3], type: 'XPN', kind: 'name' },
  { segment: 'IN1', fields: [16], type: 'XPN', kind: 'name' },
  // Providers and staff.
  { segment: 'PV1', fields: [7, 8, 9, 17, 52], type: 'XCN', kind: 'name' },
  { segment: 'PD1', fields: [4], type: 'XCN', kind: 'name' },
  { segment: 'EVN', fields: [5], type: 'XCN', kind: 'name' },
  { segment: 'ORC', fields: [10, 11, 12, 19], type: 'XCN', kind: 'name' },
  { segment: 'OBR', fields: [10, 16, 28], type: 'XCN', kind: 'name' },
  { segment: 'OBR', fields: [32, 33, 34, 35], type: 'NDL', kind: 'name' },
  { segment: 'OBX', fields: [16], type: 'XCN', kind: 'name' },
  { segment: 'TXA', fields: [5, 9, 10, 11, 22, 23], type: 'XCN', kind: 'name' },
  { segment: 'ROL', fields: [4], type: 'XCN', kind: 'name' },
  { segment: 'PRT', fields: [5], type: 'XCN', kind: 'name' },
  { segment: 'PR1', fields: [8, 12], type: 'XCN', kind: 'name' },
  { segment: 'DG1', fields: [16], type: 'XCN', kind: 'name' },
  { segment: 'RXA', fields: [10], type: 'XCN', kind: 'name' },
  { segment: 'AIP', fields: [3], type: 'XCN', kind: 'name' },
  // Patient identifiers: internal, external, alternate, account, SSN, driver's licence; visit number;
  // the merged patient's identifiers.
  { segment: 'PID', fields: [2, 3, 4, 18, 19, 20, 21], type: 'ID', kind: 'identifier' },
  { segment: 'PV1', fields: [19, 50], type: 'ID', kind: 'identifier' },
  { segment: 'MRG', fields: [1, 2, 3, 4, 5, 6], type: 'ID', kind: 'identifier' },
  // Other people's identifiers: next of kin's SSN, guarantor number and SSN, insured's policy and id.
  { segment: 'NK1', fields: [37], type: 'ID', kind: 'identifier' },
  { segment: 'GT1', fields: [2, 12], type: 'ID', kind: 'identifier' },
  { segment: 'IN1', fields: [36, 49], type: 'ID', kind: 'identifier' },
  // Numbers that single out the patient's orders, specimens, documents and appointments (Safe Harbor
  // "any other unique identifying number"): placer, filler and group numbers, accession and specimen
  // ids, document numbers, appointment ids.
  { segment: 'ORC', fields: [2, 3, 4], type: 'ID', kind: 'identifier' },
  { segment: 'OBR', fields: [2, 3], type: 'ID', kind: 'identifier' },
  { segment: 'SPM', fields: [2, 3], type: 'ID', kind: 'identifier' },
  { segment: 'TXA', fields: [12, 14, 15], type: 'ID', kind: 'identifier' },
  { segment: 'SCH', fields: [1, 2], type: 'ID', kind: 'identifier' },
  // Birth dates: patient, next of kin, guarantor, insured.
  { segment: 'PID', fields: [7], type: 'TS', kind: 'birthDate' },
  { segment: 'NK1', fields: [16], type: 'TS', kind: 'birthDate' },
  { segment: 'GT1', fields: [8], type: 'TS', kind: 'birthDate' },
  { segment: 'IN1', fields: [18], type: 'TS', kind: 'birthDate' },
  // Addresses.
  { segment: 'PID', fields: [11], type: 'XAD', kind: 'address' },
  { segment: 'NK1', fields: [4], type: 'XAD', kind: 'address' },
  { segment: 'GT1', fields: [5], type: 'XAD', kind: 'address' },
  { segment: 'IN1', fields: [19], type: 'XAD', kind: 'address' },
  // Phones and emails.
  { segment: 'PID', fields: [13, 14], type: 'XTN', kind: 'phone' },
  { segment: 'NK1', fields: [5, 6], type: 'XTN', kind: 'phone' },
  { segment: 'GT1', fields: [6, 7], type: 'XTN', kind: 'phone' },
  { segment: 'ORC', fields: [14], type: 'XTN', kind: 'phone' },
  { segment: 'OBR', fields: [17], type: 'XTN', kind: 'phone' },
  // Free text: notes and comments (NTE after any segment), relevant clinical information.
  { segment: 'NTE', fields: [3], type: 'TEXT', kind: 'freeText' },
  { segment: 'OBR', fields: [13], type: 'TEXT', kind: 'freeText' },
];

/** OBX-5 is free text only when OBX-2 says so. */
const TEXT_VALUE_TYPES = new Set(['TX', 'FT', 'ST']);
/** Free text shorter than this is a code or a flag more often than a sentence. */
const MIN_TEXT_CHARS = 12;
/** Free text is searched as runs of at most this many words, so a truncated copy is found too. */
const TEXT_WINDOW = 8;
const MIN_TEXT_WORDS = 3;

export interface Finding {
  readonly value: string;
  readonly kind: PhiKind;
  readonly where: string;
}

/** Every value at a PHI position of one message, unfiltered. */
export function findingsOf(message: Hl7Message, id: string): Finding[] {
  const out: Finding[] = [];
  const counts = new Map<string, number>();
  for (const seg of message.segments()) {
    const n = (counts.get(seg.name) ?? 0) + 1;
    counts.set(seg.name, n);
    const at = (field: number, rep: number, part: string) =>
      `${id} ${seg.name}[${n}]-${field}(${rep})${part ? `-${part}` : ''}`;
    const read = (field: number, type: DataType, kind: PhiKind) => {
      for (let r = 1; r <= seg.repetitionCount(field); r++) {
        for (const [value, part] of READERS[type](seg, field, r)) {
          if (value.trim() !== '') out.push({ value, kind, where: at(field, r, part) });
        }
      }
    };
    for (const p of POSITIONS) {
      if (p.segment === seg.name) for (const f of p.fields) read(f, p.type, p.kind);
    }
    if (seg.name === 'OBX' && TEXT_VALUE_TYPES.has(seg.getValue(2))) read(5, 'TEXT', 'freeText');
  }
  return out;
}

/** Values the engine keeps in clear on purpose (admin-context: ids, senders), as token strings. */
function inClearValues(messages: readonly Hl7Message[]): Set<string> {
  const out = new Set<string>();
  for (const m of messages) {
    const msh = m.segment('MSH');
    if (!msh) continue;
    for (const f of [3, 4, 5, 6, 10]) {
      out.add(tokensOf(msh.getRaw(f)).join(' '));
      for (let c = 1; c <= 3; c++) out.add(tokensOf(msh.getValue(f, 1, c)).join(' '));
    }
  }
  out.delete('');
  return out;
}

/** One way a value may be written: its tokens, and how it reads in a report. */
export interface Form {
  readonly tokens: string[];
  readonly display: string;
}

/** The forms a value is searched in, or why it is not searched for. */
export type Judged = { forms: Form[] } | { dropped: DropReason };

export interface PhiFilter {
  /** Lower-cased words not to count as evidence (COMMON_WORDS ∪ the engine's own words). */
  readonly generic: ReadonlySet<string>;
  /** The engine's own text as one token string (' a b c '), for free-text runs. */
  readonly engineTokens: string;
  readonly inClear: ReadonlySet<string>;
}

const isNumber = (t: string) => /^\p{N}+$/u.test(t);
const hasLetter = (t: string) => /\p{L}/u.test(t);

/**
 * The rules, per kind:
 * - names, cities, streets: at least 4 characters; dropped when every word is generic (a common word or
 *   a word the engine itself writes: "Test Patient", "Hospital", "Home"). Numbers in a street count as
 *   specific ("1000 Main St" stays).
 * - identifiers: at least 5 characters, 6 digits when only digits (shorter ones stand in counts,
 *   ports and sizes); dropped when they are a control id or a system name, which are stored in clear.
 * - birth dates: at least day precision; searched as written (19610203, 196102031200) and as
 *   1961-02-03 (FHIR birthDate).
 * - phones and emails: at least 7 digits (an email: at least one specific word); searched as written,
 *   as digits only, and as area code + local number.
 * - free text: each line cut into runs of up to 8 words; a run is searched when it has at least 3 words
 *   and 12 characters and does not stand in the engine's own text.
 */
export function judge(f: Finding, filter: PhiFilter): Judged {
  const as = form(f.value.trim());
  const tokens = as.tokens;
  const letters = tokens.join('').length;
  const allGeneric = tokens.every((t) => hasLetter(t) && filter.generic.has(t));
  switch (f.kind) {
    case 'name':
    case 'address': {
      if (tokens.length === 0 || f.value.trim().length < 4 || Math.max(...tokens.map((t) => t.length)) < 3)
        return { dropped: 'short' };
      if (tokens.every(isNumber)) return { dropped: 'short' };
      if (allGeneric) return { dropped: 'generic' };
      if (filter.inClear.has(tokens.join(' '))) return { dropped: 'inClear' };
      return { forms: [as] };
    }
    case 'identifier': {
      if (letters < 5 || (tokens.every(isNumber) && letters < 6)) return { dropped: 'short' };
      if (filter.inClear.has(tokens.join(' '))) return { dropped: 'inClear' };
      if (allGeneric) return { dropped: 'generic' };
      return { forms: [as] };
    }
    case 'birthDate': {
      const m = /^(\d{4})(\d{2})(\d{2})/.exec(f.value.trim());
      if (!m || Number(m[2]) < 1 || Number(m[2]) > 12 || Number(m[3]) < 1 || Number(m[3]) > 31)
        return { dropped: 'notADate' };
      const [, y, mo, d] = m as unknown as [string, string, string, string];
      return {
        forms: unique([as, { tokens: [`${y}${mo}${d}`], display: `${y}${mo}${d}` }, form(`${y}-${mo}-${d}`)]),
      };
    }
    case 'phone': {
      if (f.value.includes('@')) {
        if (allGeneric) return { dropped: 'generic' };
        return letters < 6 ? { dropped: 'short' } : { forms: [as] };
      }
      const digits = f.value.replace(/\D/g, '');
      if (digits.length < 7) return { dropped: 'short' };
      return { forms: unique([as, form(digits)]) };
    }
    case 'freeText':
      // Cut into runs by textRuns(); a run arrives here whole.
      if (tokens.length < MIN_TEXT_WORDS || f.value.length < MIN_TEXT_CHARS) return { dropped: 'short' };
      if (filter.engineTokens.includes(` ${tokens.join(' ')} `)) return { dropped: 'engineText' };
      return { forms: [as] };
  }
}

const form = (display: string): Form => ({ tokens: tokensOf(display), display });

function unique(forms: Form[]): Form[] {
  const seen = new Set<string>();
  return forms.filter((f) => {
    const k = f.tokens.join(' ');
    if (seen.has(k)) return false;
    seen.add(k);
    return true;
  });
}

/**
 * Free text as runs of at most TEXT_WINDOW words: per line, windows from the start every TEXT_WINDOW
 * words plus one ending at the line's end, so a copy of a whole line or of any 2 × TEXT_WINDOW
 * consecutive words contains at least one run.
 */
export function textRuns(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split(/[\r\n]+/)) {
    const words = line.split(/\s+/).filter((w) => tokensOf(w).length > 0);
    if (words.length <= TEXT_WINDOW) {
      if (words.length > 0) out.push(words.join(' '));
      continue;
    }
    for (let i = 0; i + TEXT_WINDOW <= words.length; i += TEXT_WINDOW) {
      out.push(words.slice(i, i + TEXT_WINDOW).join(' '));
    }
    if (words.length % TEXT_WINDOW !== 0) out.push(words.slice(-TEXT_WINDOW).join(' '));
  }
  return out;
}

/** Builds the filter from the engine's own text (engineText()) and the corpus' in-clear values. */
export function phiFilter(messages: readonly Hl7Message[], ownText: string): PhiFilter {
  const own = tokensOf(ownText);
  return {
    generic: new Set([...COMMON_WORDS, ...own.filter(hasLetter)]),
    engineTokens: ` ${own.join(' ')} `,
    inClear: inClearValues(messages),
  };
}

/**
 * The needles of a corpus: every value at a PHI position of every message, parsed as the engine parses
 * what it receives (bytes decoded per MSH-18), filtered by `judge`.
 */
export function extractPhi(corpus: readonly CorpusMessage[], ownText: string): PhiExtraction {
  const parsed: { id: string; message: Hl7Message }[] = [];
  const unreadable: string[] = [];
  for (const c of corpus) {
    try {
      parsed.push({ id: c.id, message: parse(decodeHl7(Buffer.from(c.text, 'utf8')).text) });
    } catch {
      unreadable.push(c.id);
    }
  }
  const filter = phiFilter(
    parsed.map((p) => p.message),
    ownText,
  );
  const byTokens = new Map<string, Needle>();
  const seen = new Set<string>();
  const dropped = Object.fromEntries(Object.keys(DROP_REASONS).map((k) => [k, 0])) as Record<
    DropReason,
    number
  >;
  for (const { id, message } of parsed) {
    for (const found of findingsOf(message, id)) {
      const values = found.kind === 'freeText' ? textRuns(found.value) : [found.value];
      for (const value of values) {
        const key = `${found.kind}\u0000${tokensOf(value).join(' ')}`;
        if (seen.has(key)) continue;
        seen.add(key);
        const verdict = judge({ ...found, value }, filter);
        if ('dropped' in verdict) {
          dropped[verdict.dropped]++;
          continue;
        }
        for (const { tokens, display } of verdict.forms) {
          const k = tokens.join(' ');
          if (!byTokens.has(k))
            byTokens.set(k, { value: display, tokens, kind: found.kind, where: found.where });
        }
      }
    }
  }
  const needles = [...byTokens.values()];
  const byKind = Object.fromEntries(
    PHI_KINDS.map((k) => [k, needles.filter((n) => n.kind === k).length]),
  ) as Record<PhiKind, number>;
  return { needles, byKind, candidates: seen.size, dropped, unreadable };
}
