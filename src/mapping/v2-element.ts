import type { Delimiters } from '../hl7/delimiters.js';
import { type UnescapeOptions, unescape } from '../hl7/escape.js';
import { nthPart } from '../hl7/segment.js';

/**
 * One HL7 v2 element as a mapping rule reads it: a field repetition, a component or a subcomponent,
 * still in wire form. `part(n)` goes one level down (a repetition splits on `^`, a component on `&`),
 * so the same data-type map reads CX as a field and HD inside CX-4 as a component.
 */
export class V2Element {
  readonly raw: string;
  /** 0: field repetition (parts split on the component separator), 1: component (on the subcomponent separator), 2: subcomponent. */
  readonly level: 0 | 1 | 2;
  readonly delimiters: Delimiters;
  readonly options: UnescapeOptions | undefined;
  /** The parts one level down, split on first use: converters read several components of one element. */
  #parts: string[] | undefined;

  constructor(raw: string, level: 0 | 1 | 2, delimiters: Delimiters, options?: UnescapeOptions) {
    this.raw = raw;
    this.level = level;
    this.delimiters = delimiters;
    this.options = options;
  }

  /** True when the element carries nothing (the HL7 explicit null `""` counts as data: see isNull). */
  get isEmpty(): boolean {
    return this.raw === '';
  }

  /** The HL7 explicit null `""` (v2.5.1 §2.5.3: the receiver shall delete the value). */
  get isNull(): boolean {
    return this.raw === '""';
  }

  /** The n-th (1-based) part one level down; an empty element when absent. A subcomponent has only part 1. */
  part(n: number): V2Element {
    if (this.level === 2) return n === 1 ? this : new V2Element('', 2, this.delimiters, this.options);
    return new V2Element(this.partRaw(n), (this.level + 1) as 1 | 2, this.delimiters, this.options);
  }

  /** The wire text of part n ('' when absent), without making an element of it. */
  partRaw(n: number): string {
    if (this.level === 2) return n === 1 ? this.raw : '';
    let parts = this.#parts;
    if (parts === undefined) {
      const sep = this.level === 0 ? this.delimiters.component : this.delimiters.subcomponent;
      parts = sep === '' || this.raw === '' ? [this.raw] : this.raw.split(sep);
      this.#parts = parts;
    }
    return parts[n - 1] ?? '';
  }

  /** The decoded text of part n (`el.text(2)` of a CWE is its display text); '' when absent. */
  text(n?: number): string {
    if (n === undefined) return this.value();
    const raw = this.partRaw(n);
    if (raw === '' || raw === '""') return '';
    const d = this.delimiters;
    // Part n of a repetition is a component: its text is its first subcomponent.
    const first = this.level === 0 ? (nthPart(raw, d.subcomponent, 1) ?? '') : raw;
    return first === '' ? '' : unescape(first, d, this.options);
  }

  /**
   * The decoded primitive: the first component's first subcomponent, as HAPI's Terser reads an
   * element with no position given. '' for an empty element and for `""`.
   */
  value(): string {
    let raw = this.raw;
    if (raw === '' || raw === '""') return '';
    const d = this.delimiters;
    if (this.level === 0) raw = nthPart(raw, d.component, 1) ?? '';
    if (this.level <= 1) raw = nthPart(raw, d.subcomponent, 1) ?? '';
    return raw === '' ? '' : unescape(raw, d, this.options);
  }

  /** The whole element decoded, delimiters kept as they are (a TX/FT value that contains `^`). */
  fullText(): string {
    return this.raw === '""' ? '' : unescape(this.raw, this.delimiters, this.options);
  }
}
