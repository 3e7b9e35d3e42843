import type { V2Element } from './v2-element.js';
import type { Vocabularies } from './vocabulary.js';

/**
 * What a built-in converter (src/mapping/primitives/) sees besides its element. Converters are pure:
 * no I/O, no clock, no randomness — the same message gives the same Bundle.
 */
export interface ConvertContext {
  readonly vocabulary: Vocabularies;
  /**
   * The UTC offset (`+05:00`, `-04:00`, `Z`) to give a local date-time that carries none: MSH-7's zone
   * when MSH-7 has one, else the channel's `timezone` at that date and time.
   */
  zoneFor(year: number, month: number, day: number, hour: number, minute: number): string;
  /** Field n (first repetition) of the segment being mapped: OBX-5's converter reads OBX-2 and OBX-6. */
  field(n: number): V2Element;
  /** Every repetition of the field being read (a TX result in several repetitions is one text). */
  repetitions(): V2Element[];
  /** Reports the element being converted as invalid for `dataType` (left out of the output, listed in the report). */
  invalid(dataType: string): void;
}

/** A built-in converter: returns the FHIR value, or undefined to set nothing. */
export type Converter = (el: V2Element, ctx: ConvertContext) => unknown;
