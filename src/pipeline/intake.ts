import { type ChannelConfig, compileAccept } from '../channels/channel-config.js';
import { EngineError, isEngineError } from '../errors.js';
import { type CharsetInfo, decodeHl7, encodeHl7, resolveCharset } from '../hl7/charset.js';
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

/** A framed message that passed intake checks, handed to the sink that must make it durable. */
export interface ReceivedMessage {
  readonly channel: string;
  /** The bytes exactly as received, for the archive. */
  readonly raw: Buffer;
  readonly charset: CharsetInfo;
  readonly header: MshHeader;
  readonly message: Hl7Message;
  readonly receivedAt: Date;
  readonly connectionId: string;
}

/**
 * Where accepted messages go. `accept` resolves only once the message is safe (DESIGN rule 1: the ACK
 * is sent after it resolves); a rejection turns into AE/CE so that the sender retries.
 */
export interface MessageSink {
  accept(message: ReceivedMessage): Promise<void>;
}

/** What intake decided for one frame: the ACK bytes to send (undefined: MSH-15 asks for none). */
export interface IntakeResult {
  ack: Buffer | undefined;
  outcome: AckOutcome;
  /** Engine error code behind a non-accept outcome, for logs and metrics. */
  code?: string;
}

/**
 * Turns one MLLP frame into an ACK: decode (MSH-18), read MSH, parse, check the channel's accepted
 * types, hand to the sink, then acknowledge in the message's charset. Never throws: every failure
 * becomes AR/CR (bad input: the sender must not resend it unchanged) or AE/CE (our side failed: resend).
 */
export function createIntake(channel: ChannelConfig, sink: MessageSink) {
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
      return unreadable(err, configuredMode, charset);
    }
    const mode = ackModeFor(header, configuredMode);
    const answer = (outcome: AckOutcome, error?: EngineError): IntakeResult => {
      const result: IntakeResult = { outcome, ack: undefined };
      if (error) result.code = error.code;
      if (commitAckWanted(header, mode, outcome)) {
        result.ack = encodeHl7(buildAck(header, { outcome, mode, ...(error ? { error } : {}) }), charset);
      }
      return result;
    };
    let message: Hl7Message;
    try {
      message = parse(text);
    } catch (err) {
      return answer('reject', asEngineError(err, 'HL7_NOT_A_MESSAGE'));
    }
    if (!accepts(header.messageCode, header.triggerEvent)) {
      return answer(
        'reject',
        new EngineError('INTAKE_REJECTED_TYPE', {}, { segment: 'MSH', segmentIndex: 1, field: 9 }),
      );
    }
    try {
      await sink.accept({ channel: channel.name, raw, charset, header, message, receivedAt, connectionId });
    } catch (err) {
      return answer('error', asEngineError(err, 'INTAKE_UNAVAILABLE'));
    }
    return answer('accept');
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
  return {
    outcome: 'reject',
    code: error.code,
    ack: encodeHl7(buildRejectForUnreadable(error, mode), charset),
  };
}

function asEngineError(err: unknown, code: 'HL7_NOT_A_MESSAGE' | 'INTAKE_UNAVAILABLE'): EngineError {
  // Anything that is not one of ours is reported by code only: its text could quote the input.
  return isEngineError(err) ? err : new EngineError(code, {}, undefined, { cause: err });
}
