import type { EngineError } from '../errors.js';
import type { CharsetInfo } from '../hl7/charset.js';
import type { Hl7Message, MshHeader } from '../hl7/index.js';

/** A framed message that passed intake checks, handed to the sink that must make it durable. */
export interface ReceivedMessage {
  readonly channel: string;
  /** The bytes exactly as received, for the archive. */
  readonly raw: Buffer;
  readonly charset: CharsetInfo;
  readonly header: MshHeader;
  /** Undefined when the body did not parse (the message is stored as rejected). */
  readonly message: Hl7Message | undefined;
  readonly receivedAt: Date;
  readonly connectionId: string;
}

/** What intake decided before storage: accept, or reject with the error its NAK reports. */
export interface Verdict {
  readonly outcome: 'accept' | 'reject';
  readonly error?: EngineError;
  /** The acknowledgment code this verdict is sent as (AA/CA/AR/CR): kept to re-ACK duplicates. */
  readonly ackCode: string;
  readonly partition: number;
}

/** What storage decided: the outcome to acknowledge (a duplicate gets its first outcome). */
export interface Stored {
  /** Undefined only for a reject that could not be stored (it is answered AR/CR regardless). */
  readonly messageId: string | undefined;
  readonly outcome: 'accept' | 'reject';
  readonly error?: EngineError;
  readonly duplicateOf?: string;
  readonly collisionOf?: string;
}

/**
 * Where framed messages go to become durable (DESIGN rule 1): `store` resolves once the raw message
 * and its row are committed, with the outcome to acknowledge — a duplicate's is its first outcome.
 * A rejection (storage down, overloaded, timed out) turns into AE/CE so that the sender retries.
 */
export interface MessageSink {
  store(message: ReceivedMessage, verdict: Verdict): Promise<Stored>;
}
