/**
 * The engine's HL7 v2 library: a lazy, escape-aware parser for any encoding characters, an encoder,
 * ACK/NAK building, batches and MSH-18 character sets. Pure: no I/O. See docs/hl7-api.md.
 */

export {
  type AckCode,
  type AckError,
  type AckMode,
  type AckOptions,
  type AckOutcome,
  ackCode,
  ackModeFor,
  buildAck,
  buildRejectForUnreadable,
  commitAckWanted,
  compareVersion,
} from './ack-builder.js';
export { type Hl7Batch, isBatch, parseBatch } from './batch.js';
export { newControlId } from './control-id.js';
export { formatHl7Timestamp } from './datetime.js';
export { DEFAULT_DELIMITERS, type Delimiters, encodingCharacters, readDelimiters } from './delimiters.js';
export { escape, type UnescapeOptions, unescape } from './escape.js';
export { Hl7Message, type ParseOptions, parse } from './message.js';
export { type MshHeader, messageType, readMshHeader } from './msh-header.js';
export { compilePath, formatPath, type Hl7Path } from './path.js';
export { Segment } from './segment.js';
