import { EngineError } from '../errors.js';

/**
 * The encoding characters of one message, read from MSH-1 and MSH-2 (HL7 v2.5 §2.5.4, v2.7 §2.5.4 adds
 * the truncation character as a fifth MSH-2 character). Nothing in the engine assumes `|^~\&`.
 */
export interface Delimiters {
  readonly field: string;
  readonly component: string;
  readonly repetition: string;
  readonly escape: string;
  readonly subcomponent: string;
  /** v2.7+ truncation character (conventionally `#`), or '' when MSH-2 has only four characters. */
  readonly truncation: string;
}

export const DEFAULT_DELIMITERS: Delimiters = Object.freeze({
  field: '|',
  component: '^',
  repetition: '~',
  escape: '\\',
  subcomponent: '&',
  truncation: '',
});

const SEGMENT_BREAKS = new Set(['\r', '\n']);

/**
 * Reads MSH-1/MSH-2 (or FHS/BHS, which carry the same two fields) starting at `offset`.
 * The escape character may legitimately be absent in very old senders' MSH-2 (`^~&`): we accept 3..5
 * characters as long as they are distinct, printable and not segment breaks.
 */
export function readDelimiters(text: string, offset = 0): Delimiters {
  const field = text[offset + 3];
  if (field === undefined || SEGMENT_BREAKS.has(field) || isAlnum(field)) {
    throw new EngineError('HL7_BAD_ENCODING_CHARS', {}, { segment: 'MSH', segmentIndex: 1, field: 1 });
  }
  let end = offset + 4;
  while (end < text.length && text[end] !== field && !SEGMENT_BREAKS.has(text[end]!)) end++;
  const chars = text.slice(offset + 4, end);
  const seen = new Set<string>([field]);
  for (const c of chars) {
    if (seen.has(c) || isAlnum(c) || c === ' ') {
      throw new EngineError('HL7_BAD_ENCODING_CHARS', {}, { segment: 'MSH', segmentIndex: 1, field: 2 });
    }
    seen.add(c);
  }
  if (chars.length < 2 || chars.length > 5) {
    throw new EngineError('HL7_BAD_ENCODING_CHARS', {}, { segment: 'MSH', segmentIndex: 1, field: 2 });
  }
  // Order per MSH-2: component, repetition, escape, subcomponent, truncation.
  return {
    field,
    component: chars[0]!,
    repetition: chars[1]!,
    escape: chars[2] ?? '',
    subcomponent: chars[3] ?? '',
    truncation: chars[4] ?? '',
  };
}

/** MSH-2 as it is written: the encoding characters after the field separator. */
export function encodingCharacters(d: Delimiters): string {
  return d.component + d.repetition + d.escape + d.subcomponent + d.truncation;
}

function isAlnum(c: string): boolean {
  const code = c.charCodeAt(0);
  return (code >= 48 && code <= 57) || (code >= 65 && code <= 90) || (code >= 97 && code <= 122);
}
