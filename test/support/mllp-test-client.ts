import net from 'node:net';
import tls from 'node:tls';
import { controlIds } from './mllp-ack.js';

/**
 * A raw MLLP peer for transport tests: writes whatever bytes a test wants (split, coalesced, broken) and
 * collects the frames that come back. Its framing is deliberately naive and independent of src/mllp.
 */
export class TestMllpClient {
  readonly socket: net.Socket;
  readonly frames: Buffer[] = [];
  /** Settles when the socket closes. */
  readonly closed: Promise<void>;
  /** Set when the peer ended or reset the connection. */
  error: Error | undefined;
  #received = Buffer.alloc(0);
  #waiters: Array<() => void> = [];

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.#received = Buffer.concat([this.#received, chunk]);
      for (let end = this.#received.indexOf(0x1c); end !== -1; end = this.#received.indexOf(0x1c)) {
        const start = this.#received.indexOf(0x0b);
        this.frames.push(Buffer.from(this.#received.subarray(start + 1, end)));
        this.#received = this.#received.subarray(end + (this.#received[end + 1] === 0x0d ? 2 : 1));
      }
      this.#wake();
    });
    socket.on('error', (err) => {
      this.error = err;
    });
    this.closed = new Promise((resolve) =>
      socket.once('close', () => {
        this.#wake();
        resolve();
      }),
    );
  }

  static connect(port: number, host = '127.0.0.1'): Promise<TestMllpClient> {
    return TestMllpClient.#open(net.connect({ port, host }), 'connect');
  }

  static connectTls(
    port: number,
    options: tls.ConnectionOptions,
    host = '127.0.0.1',
  ): Promise<TestMllpClient> {
    return TestMllpClient.#open(tls.connect({ port, host, ...options }), 'secureConnect');
  }

  static #open(socket: net.Socket, ready: string): Promise<TestMllpClient> {
    const client = new TestMllpClient(socket);
    return new Promise((resolve, reject) => {
      socket.once(ready, () => resolve(client));
      socket.once('error', reject);
      socket.once('close', () => reject(client.error ?? new Error('closed before connecting')));
    });
  }

  write(bytes: Buffer | string): void {
    this.socket.write(bytes);
  }

  /** Resolves once `count` frames in all have arrived; rejects if the connection closes first. */
  async waitForFrames(count: number): Promise<Buffer[]> {
    while (this.frames.length < count) {
      if (this.socket.destroyed) throw new Error(`closed after ${this.frames.length} of ${count} frames`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    return this.frames.slice(0, count);
  }

  destroy(): void {
    this.socket.destroy();
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w();
  }
}

/** A synthetic ADT message with a given control id (MSH-10); nothing patient-like. */
export function testMessage(controlId: string, extraSegments = ''): string {
  return (
    `MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240102030405||ADT^A01^ADT_A01|${controlId}|P|2.5.1\r` +
    `EVN|A01|20240102030405\rPID|1||TEST${controlId}^^^TEST^MR||Testperson^Alpha\r${extraSegments}`
  );
}

/** Wraps bytes in an MLLP frame without using the code under test. */
export function frame(payload: string | Buffer): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, 'utf8') : payload;
  return Buffer.concat([Buffer.from([0x0b]), body, Buffer.from([0x1c, 0x0d])]);
}

/** Sends the messages in order over one connection; resolves with each ACK's MSA-1 by its MSA-2. */
export async function sendForAcks(
  port: number,
  messages: readonly string[],
): Promise<Record<string, string>> {
  const client = await TestMllpClient.connect(port);
  try {
    client.write(Buffer.concat(messages.map((m) => frame(m))));
    const acks = await client.waitForFrames(messages.length);
    return Object.fromEntries(acks.map((a) => [controlIds(a).msa2, controlIds(a).msa1]));
  } finally {
    client.destroy();
  }
}
