import { type ChannelConfig, compileAccept } from '../channels/channel-config.js';
import { EngineError, isEngineError } from '../errors.js';
import { type CharsetInfo, decodeHl7, encodeHl7, resolveCharset } from '../hl7/charset.js';
import { newControlId } from '../hl7/control-id.js';
import {
  type AckMode,
  type AckOutcome,
  ackModeFor,
  buildAck,
  buildRejectForUnreadable,
  commitAckWanted,
  type Hl7Message,
  type MshHeader,
  parse,
  readMshHeader,
} from '../hl7/index.js';
import type { MessageSink, Stored, Verdict } from './message-sink.js';
import { partitionFor } from './ordering.js';

/** What intake decided for one frame: the ACK bytes to send (undefined: MSH-15 asks for none). */
export interface IntakeResult {
  ack: Buffer | undefined;
  outcome: AckOutcome;
  /** Engine error code behind a non-accept outcome, for logs and metrics. */
  code?: string;
  /** The stored message this frame is (or, for a duplicate, repeats); absent when nothing was stored. */
  messageId?: string;
  duplicate?: boolean;
  collision?: boolean;
  /**
   * A NAK's own MSH-10: the correlation id the peer can quote. The engine logs it with the error code,
   * so a NAK's cause is found without the NAK (or the log) carrying any message content.
   */
  correlationId?: string;
}

export interface IntakeOptions {
  /** Ordering partitions (HL7E_PARTITIONS): the partition is fixed at intake and stored. */
  partitions: number;
}

/**
 * Turns one MLLP frame into an ACK: decode (MSH-18), read MSH, parse, check the channel's accepted
 * types, hand to the sink, then acknowledge in the message's charset. Never throws: every failure
 * becomes AR/CR (bad input: the sender must not resend it unchanged) or AE/CE (our side failed: resend).
 */
export function createIntake(channel: ChannelConfig, sink: MessageSink, opts: IntakeOptions) {
  const accepts = compileAccept(channel.accept);
  const configuredMode: AckMode = channel.ack.mode;
  const fallback = resolveCharset(channel.charset);

  return async function intake(raw: Buffer, connectionId: string): Promise<IntakeResult> {
    const receivedAt = new Date();
    let charset = fallback;
    let text: string;
    let header: MshHeader;
    try {
      ({ text, charset } = decodeHl7(raw, channel.charset));
      header = readMshHeader(text);
    } catch (err) {
      // No readable MSH: no sender or control id to store it under. Logged by code, answered AR/CR.
      return unreadable(err, configuredMode, charset);
    }
    const mode = ackModeFor(header, configuredMode);
    const answer = (
      outcome: AckOutcome,
      error?: EngineError,
      extra: Partial<IntakeResult> = {},
    ): IntakeResult => {
      const result: IntakeResult = { outcome, ack: undefined, ...extra };
      if (error) result.code = error.code;
      if (outcome !== 'accept') result.correlationId = newControlId();
      if (commitAckWanted(header, mode, outcome)) {
        const ack = buildAck(header, {
          outcome,
          mode,
          ...(error ? { error } : {}),
          ...(result.correlationId ? { controlId: result.correlationId } : {}),
        });
        result.ack = encodeHl7(ack, charset);
      }
      return result;
    };
    const ackCode = (outcome: 'accept' | 'reject') =>
      `${mode === 'enhanced' ? 'C' : 'A'}${outcome === 'accept' ? 'A' : 'R'}`;
    let message: Hl7Message | undefined;
    let verdict: Verdict;
    try {
      message = parse(text);
      verdict = accepts(header.messageCode, header.triggerEvent)
        ? {
            outcome: 'accept',
            ackCode: ackCode('accept'),
            partition: partitionFor(channel.name, channel.ordering, message, opts.partitions),
          }
        : {
            outcome: 'reject',
            ackCode: ackCode('reject'),
            partition: 0,
            error: new EngineError('INTAKE_REJECTED_TYPE', {}, { segment: 'MSH', segmentIndex: 1, field: 9 }),
          };
    } catch (err) {
      message = undefined;
      verdict = {
        outcome: 'reject',
        ackCode: ackCode('reject'),
        partition: 0,
        error: asEngineError(err, 'HL7_NOT_A_MESSAGE'),
      };
    }
    let stored: Stored;
    try {
      stored = await sink.store(
        { channel: channel.name, raw, charset, header, message, receivedAt, connectionId },
        verdict,
      );
    } catch (err) {
      return answer('error', asEngineError(err, 'INTAKE_UNAVAILABLE'));
    }
    return answer(stored.outcome, stored.error, {
      ...(stored.messageId ? { messageId: stored.messageId } : {}),
      ...(stored.duplicateOf ? { duplicate: true } : {}),
      ...(stored.collisionOf ? { collision: true } : {}),
    });
  };
}

/**
 * The NAK for a frame too large to take: built from its first bytes when they hold a readable MSH
 * (so MSA-2 names the message), otherwise a generic reject. The connection is closed after it.
 */
export function oversizeNak(head: Buffer, channel: ChannelConfig, limit: number): Buffer {
  const error = new EngineError('MLLP_FRAME_TOO_LARGE', { limit });
  const fallback = resolveCharset(channel.charset);
  try {
    const { text, charset } = decodeHl7(head, channel.charset);
    const header = readMshHeader(text);
    return encodeHl7(
      buildAck(header, { outcome: 'reject', mode: ackModeFor(header, channel.ack.mode), error }),
      charset,
    );
  } catch {
    return encodeHl7(buildRejectForUnreadable(error, channel.ack.mode), fallback);
  }
}

function unreadable(err: unknown, mode: AckMode, charset: CharsetInfo): IntakeResult {
  const error = asEngineError(err, 'HL7_NOT_A_MESSAGE');
  const correlationId = newControlId();
  return {
    outcome: 'reject',
    code: error.code,
    correlationId,
    ack: encodeHl7(buildRejectForUnreadable(error, mode, correlationId), charset),
  };
}

function asEngineError(err: unknown, code: 'HL7_NOT_A_MESSAGE' | 'INTAKE_UNAVAILABLE'): EngineError {
  // Anything that is not one of ours is reported by code only: its text could quote the input.
  return isEngineError(err) ? err : new EngineError(code, {}, undefined, { cause: err });
}
