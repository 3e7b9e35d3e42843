import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { EngineError } from '../errors.js';
import { frameMessage, type GarbageReason, MllpFramer } from './mllp-framer.js';
import { errorCode } from './mllp-listener-events.js';

export interface MllpSenderOptions {
  host: string;
  port: number;
  /** Connect over TLS with these options (CA, client certificate, servername, minVersion …). */
  tls?: tls.ConnectionOptions;
  /** @defaultValue 30_000 */
  ackTimeoutMs?: number;
  /** @defaultValue 10_000 */
  connectTimeoutMs?: number;
  /** Largest ACK accepted. @defaultValue 1 MiB */
  maxAckBytes?: number;
  /** Delay before reconnecting after a lost connection or failed attempt, doubling each time. */
  reconnect?: {
    /** @defaultValue 200 */
    initialDelayMs?: number;
    /** @defaultValue 10_000 */
    maxDelayMs?: number;
  };
  /** Counts and codes for logs; never message content. */
  onEvent?(event: MllpSenderEvent): void;
}

export type MllpSenderEvent =
  | { type: 'connect'; attempt: number }
  | { type: 'disconnect'; code?: string }
  | { type: 'ack-timeout'; timeoutMs: number }
  /** A frame arrived while no ACK was awaited: the stream is out of step, so the connection is dropped. */
  | { type: 'unexpected-frame'; bytes: number }
  | { type: 'garbage'; bytes: number; reason: GarbageReason };

interface Waiter {
  /** The connection the message went out on: only a frame from it can be its ACK. */
  socket: net.Socket;
  resolve(ack: Buffer): void;
  reject(err: EngineError): void;
}

/**
 * Sends HL7 messages over one kept-open MLLP connection and resolves with each ACK (unframed). Sends are
 * serialised: one message is outstanding at a time, in call order, as HL7 v2.5.1 Appendix C has the
 * sender wait for each ACK. The connection is opened on the first send and re-opened, after an
 * exponentially growing delay, on the send that follows a loss. Any doubt about which message an
 * incoming frame answers (ACK timeout, unexpected frame) drops the connection, so a late ACK can never
 * be taken for the next message's.
 */
export class MllpSender {
  readonly #opts: MllpSenderOptions;
  readonly #abort = new AbortController();
  #tail: Promise<unknown> = Promise.resolve();
  #socket: net.Socket | undefined;
  #waiter: Waiter | undefined;
  /** Consecutive connection losses or failed attempts; the backoff exponent. */
  #failures = 0;
  #attempts = 0;
  #closing: Promise<void> | undefined;

  constructor(options: MllpSenderOptions) {
    this.#opts = options;
  }

  /** Whether a connection is open right now. */
  get connected(): boolean {
    return this.#socket !== undefined;
  }

  /**
   * @throws EngineError MLLP_ACK_TIMEOUT, MLLP_CONNECTION_CLOSED, MLLP_NOT_CONNECTED,
   *   MLLP_FRAME_TOO_LARGE (the ACK) or MLLP_SENDER_CLOSED.
   */
  send(payload: Buffer | string): Promise<Buffer> {
    if (this.#closing) return Promise.reject(new EngineError('MLLP_SENDER_CLOSED'));
    const framed = frameMessage(payload); // a copy: the caller may reuse its buffer at once
    const run = this.#tail.then(() => this.#exchange(framed));
    this.#tail = run.catch(() => {});
    return run;
  }

  /** Lets the send in flight finish, rejects those not started, then closes the connection. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#abort.abort(); // cuts a reconnect delay short
      await this.#tail;
      const socket = this.#socket;
      if (!socket) return;
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.end(() => socket.destroy());
      await closed;
    })();
    return this.#closing;
  }

  async #exchange(framed: Buffer): Promise<Buffer> {
    if (this.#closing) throw new EngineError('MLLP_SENDER_CLOSED');
    const socket = this.#socket ?? (await this.#connect());
    const timeoutMs = this.#opts.ackTimeoutMs ?? 30_000;
    return new Promise<Buffer>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        this.#emit({ type: 'ack-timeout', timeoutMs });
        reject(new EngineError('MLLP_ACK_TIMEOUT', { timeoutMs }));
        this.#drop(socket);
      }, timeoutMs);
      this.#waiter = {
        socket,
        resolve: (ack) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          this.#failures = 0;
          resolve(ack);
        },
        reject: (err) => {
          clearTimeout(timer);
          this.#waiter = undefined;
          reject(err);
        },
      };
      socket.write(framed);
    });
  }

  async #connect(): Promise<net.Socket> {
    const { initialDelayMs = 200, maxDelayMs = 10_000 } = this.#opts.reconnect ?? {};
    if (this.#failures > 0) {
      const delay = Math.min(initialDelayMs * 2 ** (this.#failures - 1), maxDelayMs);
      await sleep(delay, undefined, { signal: this.#abort.signal }).catch(() => {});
      if (this.#closing) throw new EngineError('MLLP_SENDER_CLOSED');
    }
    this.#attempts++;
    let socket: net.Socket;
    try {
      socket = await this.#open();
    } catch (err) {
      this.#failures++;
      throw new EngineError('MLLP_NOT_CONNECTED', {}, undefined, { cause: err });
    }
    this.#emit({ type: 'connect', attempt: this.#attempts });
    this.#adopt(socket);
    return socket;
  }

  #open(): Promise<net.Socket> {
    const { host, port, tls: tlsOptions, connectTimeoutMs = 10_000 } = this.#opts;
    return new Promise((resolve, reject) => {
      const socket = tlsOptions ? tls.connect({ ...tlsOptions, host, port }) : net.connect({ host, port });
      const fail = (err: Error) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const timer = setTimeout(
        () => fail(new Error(`no connection within ${connectTimeoutMs} ms`)),
        connectTimeoutMs,
      );
      socket.once('error', fail);
      socket.once(tlsOptions ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        socket.off('error', fail);
        resolve(socket);
      });
    });
  }

  /** Wires a fresh connection: its ACK framing and what its loss means for the send in flight. */
  #adopt(socket: net.Socket): void {
    this.#socket = socket;
    socket.setNoDelay(true);
    let lastError: string | undefined;
    const framer = new MllpFramer({
      maxFrameBytes: this.#opts.maxAckBytes ?? 1024 * 1024,
      onFrame: (frame) => {
        if (this.#waiter?.socket === socket) {
          this.#waiter.resolve(frame);
          return;
        }
        this.#emit({ type: 'unexpected-frame', bytes: frame.length });
        this.#drop(socket);
      },
      onOversize: () => {
        if (this.#waiter?.socket === socket) {
          this.#waiter.reject(new EngineError('MLLP_FRAME_TOO_LARGE', { limit: framer.maxFrameBytes }));
        }
        this.#drop(socket);
      },
      onGarbage: (bytes, reason) => this.#emit({ type: 'garbage', bytes, reason }),
    });
    socket.on('data', (chunk: Buffer) => {
      if (!socket.destroyed) framer.push(chunk);
    });
    socket.on('error', (err) => {
      lastError = errorCode(err);
    });
    // The peer ended its side: no ACK can come any more, so the next send must not use this connection.
    socket.on('end', () => this.#drop(socket));
    socket.on('close', () => {
      this.#drop(socket);
      this.#emit(lastError ? { type: 'disconnect', code: lastError } : { type: 'disconnect' });
      if (this.#waiter?.socket === socket) {
        this.#waiter.reject(new EngineError('MLLP_CONNECTION_CLOSED', lastError ? { code: lastError } : {}));
      }
    });
  }

  /**
   * Stops using a connection at once (not on its later 'close' event, which may come after the next send
   * started) and counts the loss for the reconnect delay.
   */
  #drop(socket: net.Socket): void {
    if (this.#socket !== socket) return;
    this.#socket = undefined;
    if (!this.#closing) this.#failures++;
    socket.destroy();
  }

  #emit(event: MllpSenderEvent): void {
    try {
      this.#opts.onEvent?.(event);
    } catch {
      // A faulty logging hook must not break the transport.
    }
  }
}
