import type tls from 'node:tls';
import { EngineError, isEngineError } from '../errors.js';
import { decodeHl7 } from '../hl7/charset.js';
import { type AckCode, type Hl7Message, parse, readMshHeader, unescape } from '../hl7/index.js';
import { MllpSender, type MllpSenderEvent } from '../mllp/index.js';
import type { DeliveryOutcome } from './delivery-outcome.js';

export interface MllpForwarderConfig {
  host: string;
  port: number;
  /** How long to wait for the peer's ACK before the outcome is `retry` / `ack-timeout`. */
  ackTimeoutMs: number;
  /** Already resolved (CA, client certificate and key as buffers, servername, minVersion …). */
  tls?: tls.ConnectionOptions;
  /** @defaultValue 10_000 (MllpSender's) */
  connectTimeoutMs?: number;
}

export interface MllpForwarderOptions {
  /** Counts and codes for logs; never message content. */
  onEvent?: (event: MllpSenderEvent) => void;
}

/**
 * What each MSA-1 means for the delivery (HL7 v2.5.1 §2.9.2 and table 0008; policy as data). AE/CE: the
 * peer could not process the message now, so it may succeed later. AR/CR: the peer refuses it (bad
 * message type, version, processing id) and repeating the same bytes cannot change that.
 */
export const MLLP_ACK_OUTCOMES = {
  AA: 'delivered',
  CA: 'delivered',
  AE: 'nak',
  CE: 'nak',
  AR: 'rejected',
  CR: 'rejected',
} as const satisfies Record<AckCode, 'delivered' | 'nak' | 'rejected'>;

/**
 * Forwards raw HL7 v2 messages to an MLLP destination over MllpSender's kept-open connection and turns
 * each answer into a DeliveryOutcome: nothing the peer or the network does is thrown.
 */
export class MllpForwarder {
  readonly #config: MllpForwarderConfig;
  readonly #onEvent: ((event: MllpSenderEvent) => void) | undefined;
  #sender: MllpSender;
  /**
   * Forwards run one at a time here too (not only in the sender), so the sender can be replaced between
   * two of them without a queued send failing with MLLP_SENDER_CLOSED.
   */
  #tail: Promise<unknown> = Promise.resolve();
  #closing: Promise<void> | undefined;

  constructor(config: MllpForwarderConfig, opts: MllpForwarderOptions = {}) {
    this.#config = config;
    this.#onEvent = opts.onEvent;
    this.#sender = this.#newSender();
  }

  /** Whether a connection to the peer is open right now. */
  get connected(): boolean {
    return this.#sender.connected;
  }

  /**
   * Sends `raw` (the message as received) and classifies the peer's answer.
   * @throws EngineError HL7_* when `raw` has no readable MSH (checked before anything is sent), or
   *   MLLP_SENDER_CLOSED after `close()`.
   */
  async forward(raw: Buffer): Promise<DeliveryOutcome> {
    if (this.#closing) throw new EngineError('MLLP_SENDER_CLOSED');
    const run = this.#tail.then(() => this.#forward(raw));
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Lets the forward in flight finish, fails those not started, closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.#sender.close();
      await this.#tail;
    })();
    return this.#closing;
  }

  async #forward(raw: Buffer): Promise<DeliveryOutcome> {
    const sent = readOutgoing(raw);
    let ack: Buffer;
    try {
      ack = await this.#sender.send(raw);
    } catch (err) {
      if (isEngineError(err, 'MLLP_ACK_TIMEOUT')) return { kind: 'retry', reason: 'ack-timeout' };
      if (
        isEngineError(err, 'MLLP_NOT_CONNECTED') ||
        isEngineError(err, 'MLLP_CONNECTION_CLOSED') ||
        // An oversize answer: the sender has dropped the connection; nothing usable came back.
        isEngineError(err, 'MLLP_FRAME_TOO_LARGE')
      ) {
        return { kind: 'retry', reason: 'network' };
      }
      throw err; // MLLP_SENDER_CLOSED (our own shutdown) or a bug: not the peer's doing
    }
    const answer = readAck(ack, sent.charset);
    if (answer === undefined || answer.controlId !== sent.controlId) {
      // Not an ACK for this message: a peer that answers garbage, or a stream out of step (an extra
      // frame, such as an application ACK after the commit ACK, taken for this message's answer). The
      // sender cannot tell; it saw one frame per send. Keeping the connection would pair every later
      // ACK with the wrong message, so it is replaced, and the message goes out again like after a
      // network fault: the peer never acknowledged it.
      await this.#replaceSender();
      return { kind: 'retry', reason: 'network' };
    }
    const { code, text } = answer;
    switch (MLLP_ACK_OUTCOMES[code]) {
      case 'delivered':
        return { kind: 'delivered', status: 0, body: text, ackCode: code };
      case 'nak':
        return { kind: 'retry', reason: 'nak', ackCode: code, body: text };
      case 'rejected':
        return { kind: 'rejected', status: 0, body: text, ackCode: code };
    }
  }

  #newSender(): MllpSender {
    const { host, port, tls, ackTimeoutMs, connectTimeoutMs } = this.#config;
    return new MllpSender({
      host,
      port,
      ackTimeoutMs,
      ...(tls ? { tls } : {}),
      ...(connectTimeoutMs === undefined ? {} : { connectTimeoutMs }),
      ...(this.#onEvent ? { onEvent: this.#onEvent } : {}),
    });
  }

  /** Drops the connection by swapping in a fresh sender (MllpSender has no public "drop"). */
  async #replaceSender(): Promise<void> {
    if (this.#closing) return; // close() is already ending this sender
    const old = this.#sender;
    this.#sender = this.#newSender();
    await old.close();
  }
}

const CR = 0x0d;
const LF = 0x0a;

/**
 * MSH-10 (unescaped) and MSH-18 of the outgoing message, from its first segment only: a full parse per
 * delivery attempt would be wasted work. In every 8-bit charset HL7 uses, `MSH` and the segment
 * terminator are single ASCII bytes that no multi-byte sequence contains, so the segment can be cut
 * from the bytes before decoding; MSH-18 is inside it. The 16/32-bit Unicode forms (rare over MLLP) are
 * decoded whole. The field separator is MSH's 4th character (readMshHeader).
 * @throws EngineError HL7_EMPTY / HL7_NO_MSH / HL7_BAD_ENCODING_CHARS
 */
function readOutgoing(raw: Buffer): { controlId: string; charset: string } {
  let start = 0;
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) start = 3; // UTF-8 BOM
  while (start < raw.length && (raw[start] === CR || raw[start] === LF || raw[start] === 0x20)) start++;
  let head = raw;
  if (raw[start] === 0x4d && raw[start + 1] === 0x53 && raw[start + 2] === 0x48) {
    let end = start;
    while (end < raw.length && raw[end] !== CR && raw[end] !== LF) end++;
    head = raw.subarray(0, end);
  }
  const header = readMshHeader(decode(head).text);
  return { controlId: unescape(header.controlId, header.delimiters), charset: header.charset };
}

/** The ACK's MSA-1 and MSA-2 (unescaped) and its text; undefined for an answer that is no ACK. */
function readAck(
  ack: Buffer,
  fallbackCharset: string,
): { code: AckCode; controlId: string; text: string } | undefined {
  // An ACK with an empty MSH-18 is most likely in the charset of the message it answers.
  const { text } = decode(ack, fallbackCharset || undefined);
  let message: Hl7Message;
  try {
    message = parse(text);
  } catch {
    return undefined;
  }
  if (message.segment('MSA') === undefined) return undefined;
  const code = message.get('MSA-1');
  if (!Object.hasOwn(MLLP_ACK_OUTCOMES, code)) return undefined;
  return {
    code: code as AckCode,
    controlId: unescape(message.getRaw('MSA-2') ?? '', message.delimiters),
    text,
  };
}

/**
 * Text per MSH-18 (src/hl7/charset.ts). A name the engine cannot decode falls back to Latin-1, which keeps
 * every byte: MSH-10, MSA-1 and MSA-2 are ASCII in practice, so the exchange can still be judged.
 */
function decode(raw: Buffer, fallback?: string): { text: string } {
  try {
    return decodeHl7(raw, fallback);
  } catch {
    return { text: raw.toString('latin1') };
  }
}
