import type { Delimiters } from './delimiters.js';
import { type UnescapeOptions, unescape } from './escape.js';

/**
 * One segment, split only as far as it is read. Field positions are found on the first field access;
 * repetitions, components and subcomponents are never split into arrays for reading — `nthPart` walks
 * the field text with indexOf and slices out just the part asked for.
 *
 * Numbering is HL7's: fields from 1, and in MSH the field separator itself is MSH-1 and the encoding
 * characters MSH-2 (v2.5.1 §2.14.9), so MSH field n is the (n-1)-th separated chunk.
 */
export class Segment {
  readonly name: string;
  #raw: string;
  #seps: number[] | undefined;
  /** Field texts sliced so far (index k-1 for chunk k); dropped with #seps on every edit. */
  #chunks: (string | undefined)[] | undefined;
  readonly #d: Delimiters;
  readonly #isHeader: boolean;
  readonly #onEdit: (() => void) | undefined;

  /** @internal built by Hl7Message */
  constructor(raw: string, name: string, d: Delimiters, onEdit?: () => void) {
    this.#raw = raw;
    this.name = name;
    this.#d = d;
    // MSH, FHS and BHS all carry the separator as field 1 and the encoding characters as field 2.
    this.#isHeader = name === 'MSH' || name === 'FHS' || name === 'BHS';
    this.#onEdit = onEdit;
  }

  /** The segment's wire text, without its terminator. */
  get raw(): string {
    return this.#raw;
  }

  get delimiters(): Delimiters {
    return this.#d;
  }

  #separators(): number[] {
    let seps = this.#seps;
    if (seps === undefined) {
      seps = [];
      const raw = this.#raw;
      const f = this.#d.field;
      let p = raw.indexOf(f, this.name.length);
      while (p !== -1) {
        seps.push(p);
        p = raw.indexOf(f, p + 1);
      }
      this.#seps = seps;
    }
    return seps;
  }

  /** Number of fields present (trailing empty fields included when their separators are). */
  get fieldCount(): number {
    const n = this.#separators().length;
    return this.#isHeader ? n + 1 : n;
  }

  /** Raw text of field n with all its repetitions; '' when absent. Field 0 is the segment name. */
  getRaw(field: number): string {
    if (field === 0) return this.name;
    if (this.#isHeader) {
      if (field === 1) return this.#d.field;
      return this.#chunk(field - 1);
    }
    return this.#chunk(field);
  }

  #chunk(k: number): string {
    // Fields are read again and again once a segment is mapped (several rules per field): slice each once.
    let chunks = this.#chunks;
    if (chunks === undefined) {
      const seps = this.#separators();
      chunks = new Array(seps.length);
      this.#chunks = chunks;
    }
    let v = chunks[k - 1];
    if (v === undefined) {
      const seps = this.#separators();
      const start = seps[k - 1];
      if (start === undefined) return '';
      const end = seps[k];
      v = end === undefined ? this.#raw.slice(start + 1) : this.#raw.slice(start + 1, end);
      chunks[k - 1] = v;
    }
    return v;
  }

  /** True for MSH-1/MSH-2 (and FHS/BHS), whose text is delimiters, not data to split or unescape. */
  isLiteralField(field: number): boolean {
    return this.#isHeader && (field === 1 || field === 2);
  }

  /**
   * Raw text of one part. `repetition`, `component`, `subcomponent` are 1-based; undefined means
   * "the whole" at that level. Returns undefined when the part is absent.
   */
  getPartRaw(
    field: number,
    repetition?: number,
    component?: number,
    subcomponent?: number,
  ): string | undefined {
    const whole = this.getRaw(field);
    if (field === 0 || this.isLiteralField(field)) {
      return repetition === undefined && component === undefined ? whole : undefined;
    }
    if (whole === '') {
      return repetition === undefined && component === undefined && field <= this.fieldCount ? '' : undefined;
    }
    const d = this.#d;
    let value: string | undefined = whole;
    if (repetition !== undefined || component !== undefined) {
      value = nthPart(value, d.repetition, repetition ?? 1);
    }
    if (value !== undefined && component !== undefined) value = nthPart(value, d.component, component);
    if (value !== undefined && subcomponent !== undefined)
      value = nthPart(value, d.subcomponent, subcomponent);
    return value;
  }

  /**
   * The decoded primitive at a position: defaults to the first repetition, component and subcomponent,
   * as HAPI's Terser does, so `PID-5` reads the family name. '' when absent.
   */
  getValue(
    field: number,
    repetition = 1,
    component = 1,
    subcomponent = 1,
    options?: UnescapeOptions,
  ): string {
    if (field === 0 || this.isLiteralField(field)) return this.getRaw(field);
    const whole = this.getRaw(field);
    if (whole === '') return '';
    const d = this.#d;
    const rep = nthPart(whole, d.repetition, repetition);
    if (rep === undefined) return '';
    const comp = nthPart(rep, d.component, component);
    if (comp === undefined) return '';
    const sub = nthPart(comp, d.subcomponent, subcomponent);
    if (sub === undefined || sub === '') return '';
    return unescape(sub, d, options);
  }

  /** Number of repetitions of field n (0 when empty). */
  repetitionCount(field: number): number {
    const whole = this.getRaw(field);
    if (whole === '') return 0;
    if (this.isLiteralField(field)) return 1;
    return countParts(whole, this.#d.repetition);
  }

  /** Replaces the raw text of field n (already encoded), padding with empty fields as needed. */
  setRaw(field: number, rawValue: string): void {
    if (field < 1 || this.isLiteralField(field)) throw new RangeError('field is not writable');
    const d = this.#d;
    const parts = this.#raw.split(d.field);
    // parts[0] is the name; for header segments parts[1] is MSH-2 and MSH field n is parts[n-1].
    const index = this.#isHeader ? field - 1 : field;
    while (parts.length <= index) parts.push('');
    parts[index] = rawValue;
    this.#raw = parts.join(d.field);
    this.#seps = undefined;
    this.#chunks = undefined;
    this.#onEdit?.();
  }
}

/** The n-th (1-based) part of s split by sep, or undefined when s has fewer parts. */
export function nthPart(s: string, sep: string, n: number): string | undefined {
  // An old sender's MSH-2 may define no subcomponent (or escape) character: then nothing splits.
  if (sep === '') return n === 1 ? s : undefined;
  let start = 0;
  for (let i = 1; i < n; i++) {
    const p = s.indexOf(sep, start);
    if (p === -1) return undefined;
    start = p + 1;
  }
  const end = s.indexOf(sep, start);
  if (end === -1) return start === 0 ? s : s.slice(start);
  return s.slice(start, end);
}

export function countParts(s: string, sep: string): number {
  if (sep === '') return 1;
  let n = 1;
  let p = s.indexOf(sep);
  while (p !== -1) {
    n++;
    p = s.indexOf(sep, p + 1);
  }
  return n;
}

/** Replaces the n-th (1-based) part of s split by sep, padding with empty parts. */
export function replacePart(s: string, sep: string, n: number, value: string): string {
  // No separator defined (a short MSH-2): the whole text is part 1 and there is no part 2.
  if (sep === '') return n === 1 ? value : s;
  const parts = s === '' ? [''] : s.split(sep);
  while (parts.length < n) parts.push('');
  parts[n - 1] = value;
  return parts.join(sep);
}
