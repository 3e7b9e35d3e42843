import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { frameMessage, MllpFramer } from './mllp-framer.js';
import { errorCode, type MllpListenerEvent } from './mllp-listener-events.js';

/** Who is on the other end of one accepted connection. */
export interface ConnectionInfo {
  /** Random per connection: what logs and the store use to correlate a connection's messages. */
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** TLS only: whether the peer's certificate was verified against the configured CA. */
  readonly tlsAuthorized?: boolean;
  /** TLS only, when the peer presented a certificate: its SHA-256 fingerprint (`AB:CD:…`). */
  readonly peerCertificateFingerprint256?: string;
}

/** An unframed ACK payload; strings are sent UTF-8 encoded. */
export type MllpAck = Buffer | string;

export interface MllpConnectionHooks {
  maxMessageBytes: number;
  idleTimeoutMs: number;
  maxPendingFrames: number;
  handler(frame: Buffer, conn: ConnectionInfo): Promise<MllpAck | undefined>;
  onHandlerError(err: unknown, frame: Buffer, conn: ConnectionInfo): MllpAck | undefined;
  onOversize(head: Buffer, conn: ConnectionInfo): MllpAck | undefined;
  emit(event: MllpListenerEvent): void;
}

type QueueItem = { kind: 'frame'; frame: Buffer } | { kind: 'oversize'; head: Buffer };

/**
 * How long a connection we ended may stay open while we keep reading (and dropping) what the peer still
 * sends. Closing with unread input makes the kernel send RST, which can destroy a NAK in flight.
 */
const LINGER_MS = 5_000;

/**
 * One accepted MLLP connection: frames are handled strictly one at a time in arrival order, so ACKs go
 * back in the order the messages came (HL7 v2.5.1 Appendix C: the sender waits for each ACK). Reading
 * pauses while too many frames wait for their ACK or the socket's write buffer is full.
 */
export class MllpConnection {
  readonly info: ConnectionInfo;
  /** Settles once the socket is closed and no handler of this connection is running. */
  readonly done: Promise<void>;
  readonly #socket: Socket | TLSSocket;
  readonly #hooks: MllpConnectionHooks;
  readonly #framer: MllpFramer;
  readonly #queue: QueueItem[] = [];
  #resolveDone!: () => void;
  /** Frames queued or being handled. */
  #pending = 0;
  #running = false;
  /** No new frames are taken (closing, oversize, failed handler); input is still read and dropped. */
  #stopping = false;
  #ending = false;
  #closed = false;
  #peerEnded = false;
  #paused = false;
  #waitingDrain = false;
  /** The listener's owner asked every connection to stop reading (storage is behind). */
  #held = false;
  #frames = 0;
  #acks = 0;
  #dropped = 0;
  #linger: NodeJS.Timeout | undefined;

  constructor(socket: Socket | TLSSocket, info: ConnectionInfo, hooks: MllpConnectionHooks) {
    this.#socket = socket;
    this.info = info;
    this.#hooks = hooks;
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
    this.#framer = new MllpFramer({
      maxFrameBytes: hooks.maxMessageBytes,
      onFrame: (frame) => this.#onFrame(frame),
      onOversize: (head, total) => this.#onOversize(head, total),
      onGarbage: (bytes, reason) => this.#emit({ type: 'garbage', connectionId: info.id, bytes, reason }),
    });
    socket.setNoDelay(true);
    if (hooks.idleTimeoutMs > 0) socket.setTimeout(hooks.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => this.#framer.push(chunk));
    socket.on('end', () => this.#onPeerEnd());
    socket.on('timeout', () => this.#onTimeout());
    socket.on('error', (err) =>
      this.#emit({ type: 'socket-error', connectionId: info.id, code: errorCode(err) }),
    );
    socket.on('close', () => this.#onClose());
  }

  /** Frames queued or being handled right now. */
  get pendingFrames(): number {
    return this.#pending;
  }

  /** Stops (true) or restarts (false) reading for backpressure from downstream; frames in hand still run. */
  hold(held: boolean): void {
    this.#held = held;
    this.#updateFlow();
  }

  /** Listener closing: take no new frames, answer those already received, then end the connection. */
  shutdown(): void {
    this.#stopTaking();
    if (!this.#running && this.#queue.length === 0) this.#end();
  }

  #onFrame(frame: Buffer): void {
    if (this.#stopping) {
      this.#dropped++;
      return;
    }
    this.#frames++;
    this.#emit({ type: 'frame', connectionId: this.info.id, bytes: frame.length });
    this.#enqueue({ kind: 'frame', frame });
  }

  #onOversize(head: Buffer, total: number): void {
    this.#emit({
      type: 'oversize',
      connectionId: this.info.id,
      bytes: total,
      limit: this.#hooks.maxMessageBytes,
    });
    if (this.#stopping) return;
    // The NAK goes out after the ACKs of earlier frames, then the connection closes: whatever follows
    // an oversized frame on this stream cannot be trusted to be framed as the sender meant.
    this.#enqueue({ kind: 'oversize', head });
    this.#stopTaking();
  }

  #enqueue(item: QueueItem): void {
    this.#queue.push(item);
    this.#pending++;
    this.#updateFlow();
    void this.#pump();
  }

  async #pump(): Promise<void> {
    if (this.#running) return;
    this.#running = true;
    try {
      for (let item = this.#queue.shift(); item && !this.#closed; item = this.#queue.shift()) {
        const keepOpen =
          item.kind === 'frame' ? await this.#handle(item.frame) : this.#rejectOversize(item.head);
        this.#pending--;
        if (!keepOpen) {
          this.#stopTaking();
          this.#pending -= this.#queue.length;
          this.#queue.length = 0;
        }
        this.#updateFlow();
      }
    } finally {
      this.#running = false;
    }
    if (this.#closed) this.#resolveDone();
    else if (this.#stopping || this.#peerEnded) this.#end();
  }

  /** Runs the handler; false when the connection must close (handler failed and no NAK was built). */
  async #handle(frame: Buffer): Promise<boolean> {
    let ack: MllpAck | undefined;
    try {
      ack = await this.#hooks.handler(frame, this.info);
    } catch (err) {
      this.#emit({ type: 'handler-error', connectionId: this.info.id, code: errorCode(err) });
      try {
        ack = this.#hooks.onHandlerError(err, frame, this.info);
      } catch {
        ack = undefined;
      }
      if (ack === undefined) return false;
    }
    if (ack === undefined) this.#emit({ type: 'no-ack', connectionId: this.info.id });
    else this.#write(ack);
    return true;
  }

  #rejectOversize(head: Buffer): false {
    let nak: MllpAck | undefined;
    try {
      nak = this.#hooks.onOversize(head, this.info);
    } catch {
      nak = undefined;
    }
    if (nak !== undefined) this.#write(nak);
    return false;
  }

  #write(ack: MllpAck): void {
    const socket = this.#socket;
    if (this.#closed || socket.destroyed || socket.writableEnded) return; // the peer is gone: nobody to tell
    const framed = frameMessage(ack);
    this.#acks++;
    this.#emit({ type: 'ack', connectionId: this.info.id, bytes: framed.length - 3 });
    if (!socket.write(framed) && !this.#waitingDrain) {
      this.#waitingDrain = true;
      socket.once('drain', () => {
        this.#waitingDrain = false;
        this.#updateFlow();
      });
    }
  }

  /** Pauses reading while the peer is ahead of us; while stopping, input is read and dropped instead. */
  #updateFlow(): void {
    if (this.#closed) return;
    const tooMany = this.#pending >= this.#hooks.maxPendingFrames;
    const pause = !this.#stopping && (tooMany || this.#waitingDrain || this.#held);
    if (pause && !this.#paused) {
      this.#paused = true;
      this.#socket.pause();
      const reason = this.#held ? 'backpressure' : tooMany ? 'pending-frames' : 'write-buffer';
      this.#emit({ type: 'paused', connectionId: this.info.id, reason });
    } else if (!pause && this.#paused) {
      this.#paused = false;
      this.#socket.resume();
      this.#emit({ type: 'resumed', connectionId: this.info.id });
    }
  }

  #stopTaking(): void {
    this.#stopping = true;
    this.#updateFlow();
  }

  #onPeerEnd(): void {
    this.#peerEnded = true;
    this.#framer.end();
    // allowHalfOpen: the peer may half-close after its last message and still read the ACK.
    if (!this.#running && this.#queue.length === 0) this.#end();
  }

  #onTimeout(): void {
    if (this.#ending) {
      this.#socket.destroy();
      return;
    }
    if (this.#pending > 0) return; // our handler is slow, the peer is not idle
    this.#emit({ type: 'idle-timeout', connectionId: this.info.id });
    this.#stopTaking();
    this.#end();
  }

  /** Ends our side gracefully, reading until the peer closes too or the linger time is up. */
  #end(): void {
    if (this.#ending || this.#closed) return;
    this.#ending = true;
    this.#stopTaking();
    this.#socket.end();
    this.#linger = setTimeout(() => this.#socket.destroy(), LINGER_MS);
    this.#linger.unref();
  }

  #onClose(): void {
    this.#closed = true;
    if (this.#linger) clearTimeout(this.#linger);
    this.#pending -= this.#queue.length;
    this.#queue.length = 0; // never handled: their ACK could not be delivered, the sender will resend
    if (this.#dropped > 0) this.#emit({ type: 'dropped', connectionId: this.info.id, frames: this.#dropped });
    this.#emit({ type: 'disconnect', connectionId: this.info.id, frames: this.#frames, acks: this.#acks });
    if (!this.#running) this.#resolveDone();
  }

  #emit(event: MllpListenerEvent): void {
    try {
      this.#hooks.emit(event);
    } catch {
      // A faulty logging hook must not break the transport.
    }
  }
}
