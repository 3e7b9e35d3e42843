import { EngineError } from '../errors.js';
import { type Delimiters, readDelimiters } from './delimiters.js';
import { unescape } from './escape.js';
import { nthPart } from './segment.js';

/**
 * The MSH fields the engine needs before (or instead of) a full parse: to route, to check duplicates and
 * to build an ACK even when the rest of the message is broken (HAPI's pre-parser idea). Values that are
 * echoed into an ACK are kept raw (as encoded on the wire) so components and escapes survive the echo.
 */
export interface MshHeader {
  readonly delimiters: Delimiters;
  /** MSH-3..MSH-6, raw (HD with components). */
  readonly sendingApplication: string;
  readonly sendingFacility: string;
  readonly receivingApplication: string;
  readonly receivingFacility: string;
  /** MSH-7, raw. */
  readonly dateTime: string;
  /** MSH-9 components, decoded: e.g. 'ORU', 'R01', 'ORU_R01'. */
  readonly messageCode: string;
  readonly triggerEvent: string;
  readonly messageStructure: string;
  /** MSH-10 raw, exactly as the sender wrote it: MSA-2 must echo it unchanged. */
  readonly controlId: string;
  /** MSH-11-1, e.g. 'P', 'T', 'D'. */
  readonly processingId: string;
  /** MSH-12-1, e.g. '2.5.1'. */
  readonly version: string;
  /** MSH-15 and MSH-16 (HL7 table 0155: AL, NE, ER, SU), '' when empty. */
  readonly acceptAckType: string;
  readonly applicationAckType: string;
  /** MSH-18 first repetition, raw (e.g. 'UNICODE UTF-8'); '' when empty. */
  readonly charset: string;
}

/**
 * Reads MSH from the start of a message's text (after an optional BOM or whitespace) without looking
 * past the first segment terminator. Throws HL7_EMPTY / HL7_NO_MSH / HL7_BAD_ENCODING_CHARS.
 */
export function readMshHeader(text: string): MshHeader {
  let pos = 0;
  while (pos < text.length && /[\s\uFEFF]/.test(text[pos]!)) pos++;
  if (pos >= text.length) throw new EngineError('HL7_EMPTY');
  if (!text.startsWith('MSH', pos)) throw new EngineError('HL7_NO_MSH', {}, { segmentIndex: 1 });
  const d = readDelimiters(text, pos);
  let end = pos;
  while (end < text.length && text[end] !== '\r' && text[end] !== '\n') end++;
  const fields = text.slice(pos, end).split(d.field);
  // fields[0] = 'MSH', fields[1] = MSH-2; MSH-n is fields[n-1].
  const f = (n: number): string => fields[n - 1] ?? '';
  const first = (n: number, sep: string): string => nthPart(f(n), sep, 1) ?? '';
  const msh9 = f(9);
  const part = (i: number): string => unescape(nthPart(msh9, d.component, i) ?? '', d);
  return {
    delimiters: d,
    sendingApplication: f(3),
    sendingFacility: f(4),
    receivingApplication: f(5),
    receivingFacility: f(6),
    dateTime: f(7),
    messageCode: part(1),
    triggerEvent: part(2),
    messageStructure: part(3),
    controlId: f(10),
    processingId: first(11, d.component),
    version: nthPart(first(12, d.repetition), d.component, 1) ?? '',
    acceptAckType: f(15),
    applicationAckType: f(16),
    charset: first(18, d.repetition),
  };
}

/** 'ORU^R01' style type of a header, for routing and display. */
export function messageType(h: MshHeader): string {
  return h.triggerEvent ? `${h.messageCode}^${h.triggerEvent}` : h.messageCode;
}
