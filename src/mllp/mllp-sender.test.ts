import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ackFor, controlIds } from '../../test/support/mllp-ack.js';
import { makeTestPki, type TestPki } from '../../test/support/mllp-pki.js';
import { testMessage } from '../../test/support/mllp-test-client.js';
import { isEngineError } from '../errors.js';
import { MllpListener, type MllpListenerOptions } from './mllp-listener.js';
import type { MllpListenerEvent } from './mllp-listener-events.js';
import { MllpSender, type MllpSenderEvent, type MllpSenderOptions } from './mllp-sender.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startListener(options: Partial<MllpListenerOptions> = {}) {
  const events: MllpListenerEvent[] = [];
  const handled: string[] = [];
  const listener = new MllpListener({
    port: 0,
    handler: async (f) => {
      handled.push(controlIds(f).msh10);
      return ackFor(f);
    },
    onHandlerError: () => undefined,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const { port } = await listener.listen();
  cleanups.push(() => listener.close());
  const connections = () => events.filter((e) => e.type === 'connection').length;
  return { listener, port, events, handled, connections };
}

function sender(options: Partial<MllpSenderOptions> & { port: number }) {
  const events: MllpSenderEvent[] = [];
  const s = new MllpSender({ host: '127.0.0.1', onEvent: (e) => events.push(e), ...options });
  cleanups.push(() => s.close());
  return { sender: s, events };
}

/** A port with nothing listening on it (just freed). */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** What an awaited promise rejected with. */
async function rejection(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('MllpSender', () => {
  it('sends several messages over one kept-open connection and resolves each with its own ACK', async () => {
    const { port, connections, handled } = await startListener();
    const { sender: s } = sender({ port });
    for (const id of ['A1', 'A2', 'A3', 'A4', 'A5']) {
      const ack = await s.send(testMessage(id));
      expect(controlIds(ack)).toMatchObject({ msa1: 'AA', msa2: id });
    }
    expect(handled).toEqual(['A1', 'A2', 'A3', 'A4', 'A5']);
    expect(connections()).toBe(1);
    expect(s.connected).toBe(true);
  });

  it('serialises concurrent sends: one outstanding at a time, in call order', async () => {
    let outstanding = 0;
    let maxOutstanding = 0;
    const { port, handled } = await startListener({
      maxPendingFrames: 100,
      onEvent: (e) => {
        if (e.type === 'frame') maxOutstanding = Math.max(maxOutstanding, ++outstanding);
        if (e.type === 'ack') outstanding--;
      },
      handler: async (f) => {
        handled.push(controlIds(f).msh10);
        await sleep(5);
        return ackFor(f);
      },
    });
    const { sender: s } = sender({ port });
    const ids = Array.from({ length: 10 }, (_, i) => `Q${i}`);
    const acks = await Promise.all(ids.map((id) => s.send(Buffer.from(testMessage(id)))));
    expect(acks.map((a) => controlIds(a).msa2)).toEqual(ids);
    expect(handled).toEqual(ids);
    expect(maxOutstanding).toBe(1);
  });

  it('times out with MLLP_ACK_TIMEOUT and drops the connection: no late ACK for the next send', async () => {
    let releaseLate!: () => void;
    const late = new Promise<void>((resolve) => {
      releaseLate = resolve;
    });
    const { port, connections, events } = await startListener({
      handler: async (f) => {
        if (controlIds(f).msh10 === 'LATE') await late;
        return ackFor(f);
      },
    });
    const { sender: s, events: senderEvents } = sender({
      port,
      ackTimeoutMs: 200,
      reconnect: { initialDelayMs: 10 },
    });
    const err = await rejection(s.send(testMessage('LATE')));
    expect(isEngineError(err, 'MLLP_ACK_TIMEOUT')).toBe(true);
    expect((err as Error).message).toBe('no ACK within 200 ms');
    expect(s.connected).toBe(false);
    releaseLate(); // the listener now answers LATE on the connection that was dropped
    const ack = await s.send(testMessage('NEXT'));
    expect(controlIds(ack).msa2).toBe('NEXT');
    expect(connections()).toBe(2);
    expect(senderEvents.map((e) => e.type)).toContain('ack-timeout');
    expect(events.filter((e) => e.type === 'frame')).toHaveLength(2);
  });

  it('reconnects after the server restarts on the same port', async () => {
    const first = await startListener();
    const { sender: s, events } = sender({ port: first.port, reconnect: { initialDelayMs: 20 } });
    expect(controlIds(await s.send(testMessage('R1'))).msa2).toBe('R1');
    await first.listener.close();
    const second = await startListener({ port: first.port });
    expect(controlIds(await s.send(testMessage('R2'))).msa2).toBe('R2');
    expect(second.handled).toEqual(['R2']);
    expect(events.filter((e) => e.type === 'connect')).toHaveLength(2);
  });

  it('rejects with MLLP_NOT_CONNECTED while nothing listens, then connects once something does', async () => {
    const port = await freePort();
    const { sender: s } = sender({ port, reconnect: { initialDelayMs: 10, maxDelayMs: 50 } });
    for (let i = 0; i < 3; i++) {
      const err = await rejection(s.send(testMessage('DOWN')));
      expect(isEngineError(err, 'MLLP_NOT_CONNECTED')).toBe(true);
      expect((err as Error).message).not.toContain('DOWN');
    }
    const up = await startListener({ port });
    expect(controlIds(await s.send(testMessage('UP'))).msa2).toBe('UP');
    expect(up.handled).toEqual(['UP']);
  });

  it('rejects with MLLP_CONNECTION_CLOSED when the peer closes while the ACK is awaited', async () => {
    const server = net.createServer((socket) => socket.once('data', () => socket.destroy()));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise((resolve) => server.close(resolve)));
    const { sender: s } = sender({ port: (server.address() as net.AddressInfo).port });
    expect(isEngineError(await rejection(s.send(testMessage('CUT'))), 'MLLP_CONNECTION_CLOSED')).toBe(true);
  });

  it('drops the connection when a frame arrives that answers nothing', async () => {
    // A peer that answers every message twice: the second frame can belong to no message.
    const { port, connections } = await startListener({
      handler: async (f) => Buffer.concat([ackFor(f), Buffer.from('\x1c\r\x0bMSA|AA|AGAIN\r')]),
    });
    const { sender: s, events } = sender({ port });
    expect(controlIds(await s.send(testMessage('TWICE'))).msa2).toBe('TWICE');
    await vi.waitFor(() => expect(events).toContainEqual({ type: 'unexpected-frame', bytes: 13 }));
    expect(s.connected).toBe(false);
    expect(controlIds(await s.send(testMessage('AFTER'))).msa2).toBe('AFTER');
    expect(connections()).toBe(2);
  });

  it('rejects an ACK over maxAckBytes with MLLP_FRAME_TOO_LARGE', async () => {
    const { port } = await startListener({
      handler: async (f) => Buffer.concat([ackFor(f), Buffer.alloc(4096, 0x41)]),
    });
    const { sender: s } = sender({ port, maxAckBytes: 1024 });
    const err = await rejection(s.send(testMessage('HUGE')));
    expect(isEngineError(err, 'MLLP_FRAME_TOO_LARGE')).toBe(true);
  });

  it('rejects with MLLP_NOT_CONNECTED when the connection cannot be set up in time', async () => {
    // A plain TCP server that never answers a TLS ClientHello.
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    });
    const { sender: s } = sender({
      port: (server.address() as net.AddressInfo).port,
      tls: {},
      connectTimeoutMs: 150,
    });
    expect(isEngineError(await rejection(s.send(testMessage('SLOW'))), 'MLLP_NOT_CONNECTED')).toBe(true);
  });

  it('lets the send in flight finish on close(), rejects later sends, and closes safely twice', async () => {
    const { port, listener } = await startListener({
      handler: async (f) => {
        await sleep(50);
        return ackFor(f);
      },
    });
    const { sender: s } = sender({ port });
    const inFlight = s.send(testMessage('LAST'));
    await sleep(10);
    const closing = s.close();
    const refused = await rejection(s.send(testMessage('AFTER')));
    expect(isEngineError(refused, 'MLLP_SENDER_CLOSED')).toBe(true);
    expect(controlIds(await inFlight).msa2).toBe('LAST');
    await closing;
    await s.close();
    expect(s.connected).toBe(false);
    await vi.waitFor(() => expect(listener.connectionCount).toBe(0));
  });

  describe('over TLS', () => {
    let pki: TestPki;
    beforeAll(() => {
      pki = makeTestPki();
    });
    afterAll(() => pki.cleanup());

    it('sends over mutual TLS', async () => {
      const { port } = await startListener({
        tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true },
      });
      const { sender: s } = sender({
        port,
        tls: {
          ca: pki.ca,
          key: pki.clientKey,
          cert: pki.clientCert,
          servername: 'localhost',
          minVersion: 'TLSv1.2',
        },
      });
      expect(controlIds(await s.send(testMessage('T1'))).msa2).toBe('T1');
      expect(controlIds(await s.send(testMessage('T2'))).msa2).toBe('T2');
    });

    it('fails to connect to a server its CA did not sign', async () => {
      const { port } = await startListener({ tls: { key: pki.strangerKey, cert: pki.strangerCert } });
      const { sender: s } = sender({ port, tls: { ca: pki.ca, servername: 'localhost' } });
      expect(isEngineError(await rejection(s.send(testMessage('X'))), 'MLLP_NOT_CONNECTED')).toBe(true);
    });
  });
});
