import type { AddressInfo } from 'node:net';
import net from 'node:net';
import { type Hl7MessageEvent, Hl7Server } from '@medplum/hl7';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { controlIds } from '../../test/support/mllp-ack.js';
import { makeTestPki, type TestPki } from '../../test/support/mllp-pki.js';
import { testMessage } from '../../test/support/mllp-test-client.js';
import { isEngineError } from '../errors.js';
import type { MllpSenderEvent } from '../mllp/index.js';
import {
  type MllpAck,
  MllpListener,
  type MllpListenerEvent,
  type MllpListenerOptions,
} from '../mllp/index.js';
import { MllpForwarder, type MllpForwarderConfig } from './mllp-forwarder.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An ACK written by hand (independent of the engine's ACK builder), answering `msa2`. */
function ackText(code: string, msa2: string, extra = ''): string {
  return (
    `MSH|^~\\&|RECVAPP|RECVFAC|SENDAPP|SENDFAC|20240102030406||ACK^A01^ACK|ACK${msa2}|P|2.5.1\r` +
    `MSA|${code}|${msa2}${extra}\r`
  );
}

/** A real MLLP peer (the engine's listener) whose handler answers each frame with `answer(frame)`. */
async function startPeer(
  answer: (frame: Buffer) => MllpAck | Promise<MllpAck>,
  options: Partial<MllpListenerOptions> = {},
) {
  const events: MllpListenerEvent[] = [];
  const received: Buffer[] = [];
  const listener = new MllpListener({
    port: 0,
    handler: async (frame) => {
      received.push(frame);
      return answer(frame);
    },
    onHandlerError: () => undefined,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const { port } = await listener.listen();
  cleanups.push(() => listener.close());
  const connections = () => events.filter((e) => e.type === 'connection').length;
  return { listener, port, received, connections };
}

/** A peer that answers every message with `code` for its own MSH-10. */
const answering = (code: string) => (frame: Buffer) => ackText(code, controlIds(frame).msh10);

function forwarder(config: Partial<MllpForwarderConfig> & { port: number }) {
  const events: MllpSenderEvent[] = [];
  const f = new MllpForwarder(
    { host: '127.0.0.1', ackTimeoutMs: 5_000, ...config },
    { onEvent: (e) => events.push(e) },
  );
  cleanups.push(() => f.close());
  return { forwarder: f, events };
}

const msg = (id: string) => Buffer.from(testMessage(id));

/** A port with nothing listening on it (just freed). */
async function freePort(): Promise<number> {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('MllpForwarder', () => {
  it('AA → delivered, with the ACK as body; the message goes out byte for byte', async () => {
    const peer = await startPeer(answering('AA'));
    const { forwarder: f, events } = forwarder({ port: peer.port });
    const raw = msg('D1');
    expect(await f.forward(raw)).toEqual({
      kind: 'delivered',
      status: 0,
      body: ackText('AA', 'D1'),
      ackCode: 'AA',
    });
    expect(peer.received).toEqual([raw]);
    expect(f.connected).toBe(true);
    expect(events.map((e) => e.type)).toEqual(['connect']);
  });

  it('AE then AA: retry (nak) then delivered over the same kept-open connection', async () => {
    let calls = 0;
    const peer = await startPeer((frame) => ackText(calls++ === 0 ? 'AE' : 'AA', controlIds(frame).msh10));
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(msg('N1'))).toEqual({
      kind: 'retry',
      reason: 'nak',
      ackCode: 'AE',
      body: ackText('AE', 'N1'),
    });
    expect(await f.forward(msg('N1'))).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
    expect(peer.connections()).toBe(1);
    expect(peer.received.map((r) => controlIds(r).msh10)).toEqual(['N1', 'N1']);
  });

  it('AR → rejected', async () => {
    const peer = await startPeer(answering('AR'));
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(msg('R1'))).toEqual({
      kind: 'rejected',
      status: 0,
      body: ackText('AR', 'R1'),
      ackCode: 'AR',
    });
  });

  it.each([
    ['CA', 'delivered'],
    ['CE', 'retry'],
    ['CR', 'rejected'],
  ] as const)('enhanced-mode %s → %s', async (code, kind) => {
    const peer = await startPeer(answering(code));
    const { forwarder: f } = forwarder({ port: peer.port });
    const outcome = await f.forward(msg('E1'));
    expect(outcome).toMatchObject({ kind, ackCode: code, body: ackText(code, 'E1') });
    if (outcome.kind === 'retry') expect(outcome.reason).toBe('nak');
  });

  it('a peer that stops answering → retry (ack-timeout); the next forward works on a new connection', async () => {
    let release!: () => void;
    const silence = new Promise<void>((resolve) => {
      release = resolve;
    });
    const peer = await startPeer(async (frame) => {
      const id = controlIds(frame).msh10;
      if (id === 'SILENT') await silence;
      return ackText('AA', id);
    });
    cleanups.push(() => release()); // runs before the listener's close, which waits for its handlers
    const { forwarder: f, events } = forwarder({ port: peer.port, ackTimeoutMs: 300 });
    expect(await f.forward(msg('SILENT'))).toEqual({ kind: 'retry', reason: 'ack-timeout' });
    expect(f.connected).toBe(false);
    expect(await f.forward(msg('NEXT'))).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
    expect(peer.connections()).toBe(2);
    expect(events.map((e) => e.type)).toContain('ack-timeout');
  });

  it('peer down → retry (network); once it is up → delivered', async () => {
    const port = await freePort();
    const { forwarder: f } = forwarder({ port });
    expect(await f.forward(msg('U1'))).toEqual({ kind: 'retry', reason: 'network' });
    expect(f.connected).toBe(false);
    const peer = await startPeer(answering('AA'), { port });
    expect(await f.forward(msg('U1'))).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
    expect(peer.received).toHaveLength(1);
  });

  it('a peer that closes the connection instead of answering → retry (network)', async () => {
    // A handler that throws and no NAK from onHandlerError: the listener closes the connection.
    const peer = await startPeer(() => {
      throw new Error('peer fault');
    });
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(msg('C1'))).toEqual({ kind: 'retry', reason: 'network' });
  });

  it('an ACK naming another control id → retry (network); the connection is replaced', async () => {
    const peer = await startPeer((frame) => {
      const id = controlIds(frame).msh10;
      return ackText('AA', id === 'W1' ? 'SOMEONE-ELSE' : id);
    });
    const { forwarder: f } = forwarder({ port: peer.port });
    // Sent together: the second waits for the first, then goes out on a fresh connection.
    const [wrong, next] = await Promise.all([f.forward(msg('W1')), f.forward(msg('W2'))]);
    expect(wrong).toEqual({ kind: 'retry', reason: 'network' });
    expect(next).toMatchObject({ kind: 'delivered', ackCode: 'AA', body: ackText('AA', 'W2') });
    expect(peer.connections()).toBe(2);
  });

  it.each([
    ['not HL7 at all', 'hello'],
    ['no MSA segment', 'MSH|^~\\&|RECVAPP|RECVFAC|SENDAPP|SENDFAC|20240102030406||ACK|X1|P|2.5.1\r'],
    ['an MSA-1 outside table 0008', ackText('OK', 'G1')],
  ])('an answer with %s → retry (network)', async (_name, answer) => {
    const peer = await startPeer(() => answer);
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(msg('G1'))).toEqual({ kind: 'retry', reason: 'network' });
  });

  it('reads MSH-10 with the field separator the message declares', async () => {
    const raw = Buffer.from(
      'MSH#^~\\&#SENDAPP#SENDFAC#RECVAPP#RECVFAC#20240102030405##ADT^A01#HASH-7#P#2.5.1\rPID#1##TEST7\r',
    );
    const peer = await startPeer(() => ackText('AA', 'HASH-7'));
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(raw)).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
    expect(peer.received).toEqual([raw]);
  });

  it('decodes the ACK per its MSH-18', async () => {
    const header =
      'MSH|^~\\&|SENDAPP|SENDFAC|RECVAPP|RECVFAC|20240102030405||ADT^A01|L1|P|2.5.1||||||8859/1\r';
    const ack = `${header.replace('ADT^A01|L1', 'ACK^A01^ACK|AL1')}MSA|AE|L1|Prüfung später\r`;
    const peer = await startPeer(() => Buffer.from(ack, 'latin1'));
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(Buffer.from(`${header}PID|1||TESTL1\r`, 'latin1'))).toEqual({
      kind: 'retry',
      reason: 'nak',
      ackCode: 'AE',
      body: ack,
    });
  });

  it('throws for an outgoing message without MSH, before connecting', async () => {
    const peer = await startPeer(answering('AA'));
    const { forwarder: f } = forwarder({ port: peer.port });
    const err = await f.forward(Buffer.from('PID|1||TEST1\r')).catch((e: unknown) => e);
    expect(isEngineError(err, 'HL7_NO_MSH')).toBe(true);
    expect(peer.connections()).toBe(0);
    expect(await f.forward(msg('OK1'))).toMatchObject({ kind: 'delivered' });
  });

  it('close() is idempotent; forwarding afterwards fails with MLLP_SENDER_CLOSED', async () => {
    const peer = await startPeer(answering('AA'));
    const { forwarder: f } = forwarder({ port: peer.port });
    expect(await f.forward(msg('Z1'))).toMatchObject({ kind: 'delivered' });
    await Promise.all([f.close(), f.close()]);
    expect(f.connected).toBe(false);
    const err = await f.forward(msg('Z2')).catch((e: unknown) => e);
    expect(isEngineError(err, 'MLLP_SENDER_CLOSED')).toBe(true);
  });

  it('works against a third-party peer (@medplum/hl7 Hl7Server)', async () => {
    const server = new Hl7Server((connection) => {
      connection.addEventListener('message', ({ message }: Hl7MessageEvent) =>
        connection.send(message.buildAck()),
      );
    });
    server.start(0);
    const listening = server.server;
    if (!listening) throw new Error('Hl7Server did not create its server');
    await new Promise((resolve) => listening.once('listening', resolve));
    cleanups.push(() => server.stop({ forceDrainTimeoutMs: 1_000 }));
    const { port } = listening.address() as AddressInfo;
    const { forwarder: f } = forwarder({ port });
    for (const id of ['M1', 'M2']) {
      const outcome = await f.forward(msg(id));
      expect(outcome).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
      expect(controlIds(outcome.kind === 'delivered' ? outcome.body : '').msa2).toBe(id);
    }
  });

  describe('over TLS', () => {
    let pki: TestPki;
    beforeAll(() => {
      pki = makeTestPki();
    });
    afterAll(() => pki.cleanup());

    it('delivers to a peer whose certificate chains to the configured CA', async () => {
      const peer = await startPeer(answering('AA'), { tls: { key: pki.serverKey, cert: pki.serverCert } });
      const { forwarder: f } = forwarder({
        port: peer.port,
        tls: { ca: pki.ca, servername: 'localhost', minVersion: 'TLSv1.2' },
      });
      expect(await f.forward(msg('T1'))).toMatchObject({ kind: 'delivered', ackCode: 'AA' });
      expect(peer.received).toHaveLength(1);
    });

    it('without that CA the peer is not trusted → retry (network), nothing sent', async () => {
      const peer = await startPeer(answering('AA'), { tls: { key: pki.serverKey, cert: pki.serverCert } });
      const { forwarder: f } = forwarder({ port: peer.port, tls: { servername: 'localhost' } });
      expect(await f.forward(msg('T2'))).toEqual({ kind: 'retry', reason: 'network' });
      expect(peer.received).toHaveLength(0);
    });
  });
});
