/**
 * The engine's HL7 v2 library: a lazy, escape-aware parser for any encoding characters, an encoder,
 * ACK/NAK building, batches and MSH-18 character sets. Pure: no I/O. See docs/hl7-api.md.
 */
export { parse, Hl7Message, type ParseOptions } from './message.js';
export { Segment } from './segment.js';
export { compilePath, formatPath, type Hl7Path } from './path.js';
export { escape, unescape, type UnescapeOptions } from './escape.js';
export { DEFAULT_DELIMITERS, readDelimiters, encodingCharacters, type Delimiters } from './delimiters.js';
export { readMshHeader, messageType, type MshHeader } from './msh-header.js';
export {
  buildAck,
  buildRejectForUnreadable,
  ackModeFor,
  ackCode,
  commitAckWanted,
  compareVersion,
  type AckCode,
  type AckMode,
  type AckOutcome,
  type AckOptions,
  type AckError,
} from './ack-builder.js';
export { parseBatch, isBatch, type Hl7Batch } from './batch.js';
export { formatHl7Timestamp } from './datetime.js';
export { newControlId } from './control-id.js';
