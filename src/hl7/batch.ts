import { EngineError } from '../errors.js';
import { readDelimiters } from './delimiters.js';
import { type Hl7Message, type ParseOptions, parse } from './message.js';
import { Segment } from './segment.js';

/**
 * HL7 batch protocol (v2.5.1 §2.10.3): `[FHS { BHS { MSH... } BTS } FTS]`. The envelope segments are
 * taken off and each message is parsed from its own slice of the input, so every message's raw text is
 * byte for byte what the sender wrote.
 */
export interface Hl7Batch {
  /** FHS / BHS segments when present (their fields are read like MSH's: FHS-1 separator, FHS-2 encoding chars). */
  fileHeader: Segment | undefined;
  batchHeaders: Segment[];
  messages: Hl7Message[];
  /** Message counts the trailers declare (BTS-1 per batch, FTS-1 = number of batches); undefined when absent. */
  declaredMessageCount: number | undefined;
  declaredBatchCount: number | undefined;
  /** True when a BTS-1 / FTS-1 count disagrees with what the batch holds: a sign of a truncated transfer. */
  countMismatch: boolean;
}

const ENVELOPE = new Set(['FHS', 'BHS', 'BTS', 'FTS']);

export function parseBatch(text: string, options: ParseOptions = {}): Hl7Batch {
  const start = text.search(/(FHS|BHS|MSH)/);
  if (
    start === -1 ||
    text
      .slice(0, start)
      .trim()
      .replace(/\uFEFF/g, '') !== ''
  ) {
    throw new EngineError(text.trim() === '' ? 'HL7_EMPTY' : 'HL7_NO_MSH', {}, { segmentIndex: 1 });
  }
  const d = readDelimiters(text, start);
  const messages: Hl7Message[] = [];
  const batchHeaders: Segment[] = [];
  let fileHeader: Segment | undefined;
  let declaredMessageCount: number | undefined;
  let declaredBatchCount: number | undefined;
  let messagesInBatch = 0;
  let countMismatch = false;
  let msgStart = -1;
  let segIndex = 0;
  const flush = (end: number) => {
    if (msgStart === -1) return;
    messages.push(parse(text.slice(msgStart, end), options));
    messagesInBatch++;
    msgStart = -1;
  };
  const re = /[^\r\n]+(\r\n|\r|\n)?/g;
  re.lastIndex = start;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    segIndex++;
    const line = m[0].replace(/[\r\n]+$/, '');
    const name = line.slice(0, 3);
    if (name === 'MSH') {
      flush(m.index);
      msgStart = m.index;
      continue;
    }
    if (!ENVELOPE.has(name)) {
      if (msgStart === -1)
        throw new EngineError('HL7_BAD_BATCH', { segmentIndex: segIndex }, { segmentIndex: segIndex });
      continue;
    }
    flush(m.index);
    const seg = new Segment(line, name, d);
    if (name === 'FHS') {
      if (fileHeader || messages.length > 0)
        throw new EngineError(
          'HL7_BAD_BATCH',
          { segmentIndex: segIndex },
          { segment: name, segmentIndex: segIndex },
        );
      fileHeader = seg;
    } else if (name === 'BHS') {
      batchHeaders.push(seg);
      messagesInBatch = 0;
    } else if (name === 'BTS') {
      const declared = toCount(seg.getValue(1));
      if (declared !== undefined) {
        declaredMessageCount = (declaredMessageCount ?? 0) + declared;
        if (declared !== messagesInBatch) countMismatch = true;
      }
    } else {
      declaredBatchCount = toCount(seg.getValue(1));
      if (declaredBatchCount !== undefined && declaredBatchCount !== batchHeaders.length)
        countMismatch = true;
    }
  }
  flush(text.length);
  return { fileHeader, batchHeaders, messages, declaredMessageCount, declaredBatchCount, countMismatch };
}

/** True when the text starts with a batch or file header rather than a single message. */
export function isBatch(text: string): boolean {
  const t = text.replace(/^[\s\uFEFF]+/, '');
  return t.startsWith('FHS') || t.startsWith('BHS');
}

function toCount(v: string): number | undefined {
  if (v === '') return undefined;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}
