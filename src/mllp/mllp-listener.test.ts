import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import tls from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { ackFor, controlIds } from '../../test/support/mllp-ack.js';
import { makeTestPki, type TestPki } from '../../test/support/mllp-pki.js';
import { frame, TestMllpClient, testMessage } from '../../test/support/mllp-test-client.js';
import type { ConnectionInfo } from './mllp-connection.js';
import { MllpListener, type MllpListenerOptions } from './mllp-listener.js';
import type { MllpListenerEvent } from './mllp-listener-events.js';

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A listener on a free port whose handler answers AA; every event it reports is kept. */
async function start(options: Partial<MllpListenerOptions> = {}) {
  const events: MllpListenerEvent[] = [];
  const listener = new MllpListener({
    port: 0,
    handler: async (f) => ackFor(f),
    onHandlerError: () => undefined,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const { port } = await listener.listen();
  cleanups.push(() => listener.close());
  const ofType = <T extends MllpListenerEvent['type']>(type: T) =>
    events.filter((e): e is Extract<MllpListenerEvent, { type: T }> => e.type === type);
  return { listener, port, events, ofType };
}

async function connect(port: number, host?: string): Promise<TestMllpClient> {
  const client = await TestMllpClient.connect(port, host);
  cleanups.push(() => client.destroy());
  return client;
}

/** The MSA-2 of each ACK: which message each one answers. */
const answered = (acks: Buffer[]) => acks.map((a) => controlIds(a).msa2);

/** A promise released by hand, to hold a handler in flight. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { open, opened };
}

describe('MllpListener framing over a real socket', () => {
  it('answers one message with its ACK', async () => {
    const { port } = await start();
    const client = await connect(port);
    client.write(frame(testMessage('M1')));
    const [ack] = await client.waitForFrames(1);
    expect(controlIds(ack!)).toMatchObject({ msa1: 'AA', msa2: 'M1' });
  });

  it('reads a two-frame stream split at every byte offset across two writes', async () => {
    const received: string[] = [];
    const { port } = await start({
      handler: async (f) => {
        received.push(f.toString());
        return ackFor(f);
      },
    });
    const stream = Buffer.concat([frame(testMessage('S1')), frame(testMessage('S2'))]);
    // Several offsets at a time, each on its own connection; a pause between the writes makes the
    // server see (most of) them as separate reads.
    const offsets = Array.from({ length: stream.length + 1 }, (_, i) => i);
    for (let i = 0; i < offsets.length; i += 25) {
      await Promise.all(
        offsets.slice(i, i + 25).map(async (at) => {
          const client = await connect(port);
          client.write(stream.subarray(0, at));
          await sleep(2);
          client.write(stream.subarray(at));
          expect(answered(await client.waitForFrames(2)), `split at ${at}`).toEqual(['S1', 'S2']);
          client.destroy();
        }),
      );
    }
    expect(received.filter((m) => m === testMessage('S1'))).toHaveLength(offsets.length);
    expect(received.filter((m) => m === testMessage('S2'))).toHaveLength(offsets.length);
  });

  it('answers several frames that arrive in one write, in order', async () => {
    const { port } = await start();
    const client = await connect(port);
    const ids = Array.from({ length: 20 }, (_, i) => `C${i}`);
    client.write(Buffer.concat(ids.map((id) => frame(testMessage(id)))));
    expect(answered(await client.waitForFrames(20))).toEqual(ids);
  });

  it('skips garbage before VT, takes FS without CR, drops a frame cut by VT', async () => {
    const handled: string[] = [];
    const { port, ofType } = await start({
      handler: async (f) => {
        handled.push(controlIds(f).msh10);
        return ackFor(f);
      },
    });
    const client = await connect(port);
    const noCr = frame(testMessage('G2')).subarray(0, -1);
    const cut = frame(testMessage('CUT')).subarray(0, 40);
    client.write(
      Buffer.concat([Buffer.from('noise'), frame(testMessage('G1')), noCr, cut, frame(testMessage('G3'))]),
    );
    expect(answered(await client.waitForFrames(3))).toEqual(['G1', 'G2', 'G3']);
    expect(handled).toEqual(['G1', 'G2', 'G3']);
    expect(ofType('garbage').map((e) => [e.bytes, e.reason])).toEqual([
      [5, 'before-start'],
      [40, 'interrupted'],
    ]);
    expect(client.socket.destroyed).toBe(false);
  });

  it('hands an empty frame to the handler as an empty payload', async () => {
    const frames: Buffer[] = [];
    const { port } = await start({
      handler: async (f) => {
        frames.push(f);
        return 'MSA|AR|';
      },
    });
    const client = await connect(port);
    client.write(Buffer.from([0x0b, 0x1c, 0x0d]));
    expect((await client.waitForFrames(1))[0]!.toString()).toBe('MSA|AR|');
    expect(frames).toEqual([Buffer.alloc(0)]);
  });

  it('NAKs an oversize frame once from its first bytes, after the earlier ACKs, then closes', async () => {
    const heads: Buffer[] = [];
    const handled: string[] = [];
    const { port, ofType } = await start({
      maxMessageBytes: 1024,
      handler: async (f) => {
        handled.push(controlIds(f).msh10);
        return ackFor(f);
      },
      onOversize: (head) => {
        heads.push(head);
        return `MSA|AR|${controlIds(head).msh10}\r`;
      },
    });
    const client = await connect(port);
    client.write(frame(testMessage('BEFORE')));
    const big = testMessage('BIG', `NTE|1||${'x'.repeat(200_000)}\r`);
    // Sent in pieces, then far more than the limit after it: the server drops it all unbuffered.
    const bigFrame = frame(big);
    for (let at = 0; at < bigFrame.length; at += 16_384) client.write(bigFrame.subarray(at, at + 16_384));
    client.write(frame(testMessage('AFTER')));
    for (let i = 0; i < 64; i++) client.write(Buffer.alloc(64 * 1024, 0x41));
    await client.closed;
    expect(client.frames).toHaveLength(2);
    expect(controlIds(client.frames[0]!).msa2).toBe('BEFORE');
    expect(client.frames[1]!.toString()).toBe('MSA|AR|BIG\r');
    expect(handled).toEqual(['BEFORE']);
    expect(heads).toHaveLength(1);
    expect(heads[0]!.length).toBe(1024);
    expect(heads[0]!.toString().startsWith('MSH|')).toBe(true);
    expect(ofType('oversize')).toEqual([expect.objectContaining({ limit: 1024 })]);
  });
});

describe('MllpListener ordering and backpressure', () => {
  it('writes ACKs in arrival order and runs one handler at a time per connection, however slow', async () => {
    let running = 0;
    let maxRunning = 0;
    const { port } = await start({
      maxPendingFrames: 100,
      handler: async (f) => {
        running++;
        maxRunning = Math.max(maxRunning, running);
        const n = Number(controlIds(f).msh10.slice(1));
        await sleep(20 - n); // later messages finish faster when run in parallel
        running--;
        return ackFor(f);
      },
    });
    const client = await connect(port);
    const ids = Array.from({ length: 20 }, (_, i) => `O${i}`);
    client.write(Buffer.concat(ids.map((id) => frame(testMessage(id)))));
    expect(answered(await client.waitForFrames(20))).toEqual(ids);
    expect(maxRunning).toBe(1);
  });

  it('pauses reading while maxPendingFrames frames await their ACK, and resumes after', async () => {
    const hold = gate();
    let calls = 0;
    const { port, ofType } = await start({
      maxPendingFrames: 4,
      handler: async (f) => {
        calls++;
        await hold.opened;
        return ackFor(f);
      },
    });
    const client = await connect(port);
    const ids = Array.from({ length: 50 }, (_, i) => `P${i}`);
    for (const id of ids) client.write(frame(testMessage(id)));
    await vi.waitFor(() =>
      expect(ofType('paused')).toEqual([expect.objectContaining({ reason: 'pending-frames' })]),
    );
    expect(calls).toBe(1);
    hold.open();
    expect(answered(await client.waitForFrames(50))).toEqual(ids);
    expect(ofType('resumed').length).toBeGreaterThan(0);
  });

  it('pauses reading while ACKs wait in the write buffer, until it drains', async () => {
    // Node writes to the kernel at once while it can, so the peer must stop reading long enough for
    // the loopback buffers (a few MiB) to fill before write() reports backpressure.
    const bigAck = Buffer.concat([Buffer.from('MSA|AA|X\r'), Buffer.alloc(1024 * 1024, 0x42)]);
    const { port, ofType } = await start({ maxPendingFrames: 64, handler: async () => bigAck });
    const client = await connect(port);
    client.socket.pause();
    for (let i = 0; i < 24; i++) client.write(frame(testMessage(`W${i}`)));
    await vi.waitFor(() => expect(ofType('paused').some((e) => e.reason === 'write-buffer')).toBe(true));
    client.socket.resume();
    const acks = await client.waitForFrames(24);
    expect(acks.every((a) => a.equals(bigAck))).toBe(true);
    await vi.waitFor(() => expect(ofType('resumed').length).toBeGreaterThan(0));
  });

  it('serves 200 concurrent connections sending 5 messages each, every ACK matching', async () => {
    const { port, listener } = await start();
    const results = await Promise.all(
      Array.from({ length: 200 }, async (_, c) => {
        const client = await connect(port);
        const got: string[] = [];
        for (let m = 0; m < 5; m++) {
          client.write(frame(testMessage(`K${c}-${m}`)));
          got.push(controlIds((await client.waitForFrames(m + 1))[m]!).msa2!);
        }
        return got;
      }),
    );
    expect(results).toEqual(
      Array.from({ length: 200 }, (_, c) => Array.from({ length: 5 }, (_, m) => `K${c}-${m}`)),
    );
    expect(listener.connectionCount).toBe(200);
  });
});

describe('MllpListener connections', () => {
  it('closes a connection idle for idleTimeoutMs', async () => {
    const { port, ofType } = await start({ idleTimeoutMs: 150 });
    const client = await connect(port);
    await client.closed;
    expect(ofType('idle-timeout')).toHaveLength(1);
  });

  it('does not count a slow handler as idleness', async () => {
    const { port, ofType } = await start({
      idleTimeoutMs: 100,
      handler: async (f) => {
        await sleep(300);
        return ackFor(f);
      },
    });
    const client = await connect(port);
    client.write(frame(testMessage('SLOW')));
    expect(answered(await client.waitForFrames(1))).toEqual(['SLOW']);
    await client.closed; // and then idles out
    expect(ofType('idle-timeout')).toHaveLength(1);
  });

  it('refuses peers outside allowFrom before reading anything', async () => {
    let calls = 0;
    const { port, ofType } = await start({
      allowFrom: ['10.0.0.0/8'],
      handler: async (f) => {
        calls++;
        return ackFor(f);
      },
    });
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.write(frame(testMessage('NOPE')));
    await new Promise((resolve) => socket.once('close', resolve));
    expect(calls).toBe(0);
    expect(ofType('refused')).toEqual([{ type: 'refused', remoteAddress: '127.0.0.1', reason: 'allowlist' }]);
    expect(ofType('connection')).toEqual([]);
  });

  it('matches IPv6 peers and IPv4-mapped IPv6 peers against allowFrom', async () => {
    const v6 = await start({ host: '::1', allowFrom: ['::1/128'] });
    const served = await connect(v6.port, '::1');
    served.write(frame(testMessage('V6')));
    expect(answered(await served.waitForFrames(1))).toEqual(['V6']);

    const v6only = await start({ host: '::1', allowFrom: ['127.0.0.0/8'] });
    const refused = net.connect(v6only.port, '::1').on('error', () => {});
    await new Promise((resolve) => refused.once('close', resolve));
    expect(v6only.ofType('refused')).toEqual([
      expect.objectContaining({ remoteAddress: '::1', reason: 'allowlist' }),
    ]);

    // A dual-stack listener sees an IPv4 client as ::ffff:127.0.0.1.
    const dual = await start({ host: '::', allowFrom: ['127.0.0.0/8'] });
    const mapped = await connect(dual.port, '127.0.0.1');
    mapped.write(frame(testMessage('MAPPED')));
    expect(answered(await mapped.waitForFrames(1))).toEqual(['MAPPED']);
    expect(dual.ofType('connection')[0]?.remoteAddress).toBe('::ffff:127.0.0.1');
  });

  it('refuses connections beyond maxConnections', async () => {
    const { port, ofType } = await start({ maxConnections: 2 });
    const a = await connect(port);
    const b = await connect(port);
    const c = net.connect(port, '127.0.0.1').on('error', () => {});
    await new Promise((resolve) => c.once('close', resolve));
    expect(ofType('refused')).toEqual([expect.objectContaining({ reason: 'max-connections' })]);
    for (const client of [a, b]) {
      client.write(frame(testMessage('OK')));
      expect(answered(await client.waitForFrames(1))).toEqual(['OK']);
    }
  });

  it('answers a handler failure with the NAK from onHandlerError and keeps the connection', async () => {
    const { port, ofType } = await start({
      handler: async (f) => {
        if (controlIds(f).msh10 === 'BAD') throw new TypeError('boom with content Testperson');
        return ackFor(f);
      },
      onHandlerError: (_err, f) => `MSA|AE|${controlIds(f).msh10}\r`,
    });
    const client = await connect(port);
    client.write(Buffer.concat([frame(testMessage('BAD')), frame(testMessage('GOOD'))]));
    const acks = await client.waitForFrames(2);
    expect(acks.map((a) => controlIds(a).msa1)).toEqual(['AE', 'AA']);
    expect(answered(acks)).toEqual(['BAD', 'GOOD']);
    expect(ofType('handler-error')).toEqual([expect.objectContaining({ code: 'TypeError' })]);
  });

  it('closes the connection when onHandlerError builds no NAK, and survives a throwing hook', async () => {
    const { port, listener } = await start({
      handler: async () => {
        throw new Error('store down');
      },
      onHandlerError: () => {
        throw new Error('the hook itself fails');
      },
      onEvent: () => {
        throw new Error('and so does logging');
      },
    });
    const client = await connect(port);
    client.write(Buffer.concat([frame(testMessage('X1')), frame(testMessage('X2'))]));
    await client.closed;
    expect(client.frames).toEqual([]);
    await listener.close();
  });

  it('sends nothing when the handler asks for no ACK, and answers the next message', async () => {
    const { port, ofType } = await start({
      handler: async (f) => (controlIds(f).msh10 === 'NE' ? undefined : ackFor(f)),
    });
    const client = await connect(port);
    client.write(Buffer.concat([frame(testMessage('NE')), frame(testMessage('NEXT'))]));
    expect(answered(await client.waitForFrames(1))).toEqual(['NEXT']);
    expect(ofType('no-ack')).toHaveLength(1);
  });

  it('still answers a peer that half-closes after its last message', async () => {
    const { port } = await start();
    const client = await connect(port);
    client.socket.end(frame(testMessage('HALF')));
    await client.closed;
    expect(answered(client.frames)).toEqual(['HALF']);
  });

  it('survives a peer that resets while its message is being handled', async () => {
    const hold = gate();
    const { port, ofType } = await start({
      handler: async (f) => {
        await hold.opened;
        return ackFor(f);
      },
    });
    const client = await connect(port);
    client.write(frame(testMessage('GONE')));
    await vi.waitFor(() => expect(ofType('frame')).toHaveLength(1));
    client.socket.resetAndDestroy();
    await vi.waitFor(() => expect(ofType('disconnect')).toHaveLength(1));
    hold.open();
    const next = await connect(port);
    next.write(frame(testMessage('NEXT')));
    expect(answered(await next.waitForFrames(1))).toEqual(['NEXT']);
  });

  it('close() waits for the handler in flight, delivers its ACK, refuses new peers, safe twice', async () => {
    const hold = gate();
    const { port, listener } = await start({
      handler: async (f) => {
        await hold.opened;
        return ackFor(f);
      },
    });
    const busy = await connect(port);
    const idle = await connect(port);
    busy.write(frame(testMessage('INFLIGHT')));
    await vi.waitFor(() => expect(listener.connectionCount).toBe(2));
    await sleep(20);
    let closed = false;
    const closing = listener.close().then(() => {
      closed = true;
    });
    await idle.closed;
    await sleep(50);
    expect(closed).toBe(false);
    await expect(TestMllpClient.connect(port)).rejects.toThrow();
    hold.open();
    await closing;
    await listener.close();
    expect(answered(busy.frames)).toEqual(['INFLIGHT']);
  });

  it('rejects listen() when the port is taken', async () => {
    const { port } = await start();
    const second = new MllpListener({
      port,
      handler: async (f) => ackFor(f),
      onHandlerError: () => undefined,
    });
    await expect(second.listen()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await second.close();
  });

  it('reports ids, counts and codes in its events, never message content', async () => {
    const { port, events } = await start({
      handler: async (f) => {
        if (controlIds(f).msh10 === 'E2') throw new Error('Testperson failed');
        return ackFor(f);
      },
      onHandlerError: () => 'MSA|AE|\r',
      maxMessageBytes: 2048,
      onOversize: () => undefined,
    });
    const client = await connect(port);
    client.write(
      Buffer.concat([
        Buffer.from('Testperson junk'),
        frame(testMessage('E1')),
        frame(testMessage('E2')),
        frame(testMessage('E3', `NTE|1||${'Testperson'.repeat(500)}\r`)),
      ]),
    );
    await client.closed;
    await vi.waitFor(() => expect(events.at(-1)?.type).toBe('disconnect'));
    const text = JSON.stringify(events);
    expect(events.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'connection',
        'garbage',
        'frame',
        'ack',
        'handler-error',
        'oversize',
        'disconnect',
      ]),
    );
    for (const phi of ['Testperson', 'TESTE1', 'SENDAPP', 'Alpha']) expect(text).not.toContain(phi);
  });
});

describe('MllpListener over TLS', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.cleanup());

  const tlsClient = async (port: number, options: tls.ConnectionOptions) => {
    const client = await TestMllpClient.connectTls(port, { ca: pki.ca, servername: 'localhost', ...options });
    cleanups.push(() => client.destroy());
    return client;
  };

  it('serves TLS 1.2 and 1.3 clients that trust its CA', async () => {
    const infos: ConnectionInfo[] = [];
    const { port } = await start({
      tls: { key: pki.serverKey, cert: pki.serverCert },
      handler: async (f, conn) => {
        infos.push(conn);
        return ackFor(f);
      },
    });
    for (const version of ['TLSv1.2', 'TLSv1.3'] as const) {
      const client = await tlsClient(port, { minVersion: version, maxVersion: version });
      expect((client.socket as tls.TLSSocket).getProtocol()).toBe(version);
      client.write(frame(testMessage(version)));
      expect(answered(await client.waitForFrames(1))).toEqual([version]);
    }
    expect(infos.map((i) => i.tlsAuthorized)).toEqual([false, false]); // no client certificate asked for
  });

  it('still answers a TLS peer that half-closes after its last message', async () => {
    const { port } = await start({ tls: { key: pki.serverKey, cert: pki.serverCert } });
    const client = await tlsClient(port, {});
    client.socket.end(frame(testMessage('TLSHALF')));
    await client.closed;
    expect(answered(client.frames)).toEqual(['TLSHALF']);
  });

  it.each([
    ['TLSv1', undefined],
    ['TLSv1.1', undefined],
    // A caller outside the channel schema asking for TLS 1.0 still gets TLS 1.2 as the floor.
    ['TLSv1', 'TLSv1'],
  ] as const)('refuses a %s client (listener minVersion %s)', async (version, asked) => {
    const { port, ofType } = await start({
      tls: { key: pki.serverKey, cert: pki.serverCert, ...(asked ? { minVersion: asked as never } : {}) },
    });
    // SECLEVEL=0 lets this OpenSSL speak TLS 1.0/1.1 at all, so the refusal is the server's.
    const attempt = TestMllpClient.connectTls(port, {
      ca: pki.ca,
      servername: 'localhost',
      minVersion: version,
      maxVersion: version,
      ciphers: 'DEFAULT@SECLEVEL=0',
    });
    await expect(attempt).rejects.toThrow();
    await vi.waitFor(() => expect(ofType('tls-error')).toHaveLength(1));
    expect(ofType('tls-error')[0]!.code).toMatch(/VERSION|PROTOCOL/);
    expect(ofType('connection')).toEqual([]);
  });

  it('refuses a TLS peer outside allowFrom without a handshake', async () => {
    const { port, ofType } = await start({
      tls: { key: pki.serverKey, cert: pki.serverCert },
      allowFrom: ['10.0.0.0/8'],
    });
    await expect(TestMllpClient.connectTls(port, { ca: pki.ca, servername: 'localhost' })).rejects.toThrow();
    expect(ofType('refused')).toEqual([expect.objectContaining({ reason: 'allowlist' })]);
    expect(ofType('tls-error')).toEqual([]);
  });

  it('close() does not wait for a peer stalled in its TLS handshake', async () => {
    const { port, listener } = await start({ tls: { key: pki.serverKey, cert: pki.serverCert } });
    const stalled = net.connect(port, '127.0.0.1').on('error', () => {});
    cleanups.push(() => stalled.destroy());
    await vi.waitFor(() => expect(listener.connectionCount).toBe(1));
    await listener.close();
    expect(listener.connectionCount).toBe(0);
  });

  describe('with requestCert', () => {
    const mtls = () =>
      start({
        tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true },
        handler: async (f, conn) =>
          Buffer.concat([ackFor(f), Buffer.from(`NTE|${conn.peerCertificateFingerprint256}\r`)]),
      });

    it('serves a client whose certificate the CA signed, and names it by fingerprint', async () => {
      const { port } = await mtls();
      const client = await tlsClient(port, { key: pki.clientKey, cert: pki.clientCert });
      client.write(frame(testMessage('MTLS')));
      const [ack] = await client.waitForFrames(1);
      expect(controlIds(ack!).msa2).toBe('MTLS');
      expect(ack!.toString()).toContain(`NTE|${new X509Certificate(pki.clientCert).fingerprint256}`);
    });

    it.each([
      ['no certificate', {}],
      ['a certificate from another CA', { stranger: true }],
    ])('refuses a client with %s', async (_name, how) => {
      let calls = 0;
      const { port, ofType } = await start({
        tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, requestCert: true },
        handler: async (f) => {
          calls++;
          return ackFor(f);
        },
      });
      const options: tls.ConnectionOptions =
        'stranger' in how ? { key: pki.strangerKey, cert: pki.strangerCert } : {};
      // Under TLS 1.3 the client may finish its side of the handshake before the server's refusal.
      const socket = tls.connect({
        port,
        host: '127.0.0.1',
        ca: pki.ca,
        servername: 'localhost',
        ...options,
      });
      socket.on('error', () => {});
      socket.on('secureConnect', () => socket.write(frame(testMessage('NOCERT'))));
      let data = 0;
      socket.on('data', (chunk: Buffer) => {
        data += chunk.length;
      });
      await new Promise((resolve) => socket.once('close', resolve));
      expect(calls).toBe(0);
      expect(data).toBe(0);
      expect(ofType('connection')).toEqual([]);
      await vi.waitFor(() => expect(ofType('tls-error')).toHaveLength(1));
    });
  });
});

describe('MllpListener client-certificate allowlist (mTLS)', () => {
  let pki: TestPki;
  beforeAll(() => {
    pki = makeTestPki();
  });
  afterAll(() => pki.cleanup());

  const fingerprint = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

  /** A listener with `allowClients` whose handler counts what it is handed. */
  async function mtls(allowClients: { subjects?: string[]; fingerprints?: string[] }) {
    const handled: string[] = [];
    const started = await start({
      tls: { key: pki.serverKey, cert: pki.serverCert, ca: pki.ca, allowClients },
      handler: async (f) => {
        handled.push(controlIds(f).msh10);
        return ackFor(f);
      },
    });
    return { ...started, handled };
  }

  /**
   * Connects with `options`, sends one message once the client's side of the handshake is done, and
   * resolves with the bytes that came back when the connection closes (or after the first ACK).
   */
  function tryOnce(
    port: number,
    options: tls.ConnectionOptions,
  ): Promise<{ acks: Array<string | undefined> }> {
    return new Promise((resolve) => {
      const socket = tls.connect({
        port,
        host: '127.0.0.1',
        ca: pki.ca,
        servername: 'localhost',
        ...options,
      });
      cleanups.push(() => socket.destroy());
      let data = Buffer.alloc(0);
      socket.on('error', () => {});
      socket.on('secureConnect', () => socket.write(frame(testMessage('TRY'))));
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        if (data.includes(0x1c)) socket.end();
      });
      socket.once('close', () =>
        resolve({ acks: data.length ? answered([data.subarray(1, data.indexOf(0x1c))]) : [] }),
      );
    });
  }

  const client = () => ({ key: pki.clientKey, cert: pki.clientCert });
  const otherClient = () => ({ key: pki.otherClientKey, cert: pki.otherClientCert });

  it('serves a listed fingerprint (any case, colons or none) and refuses another client of the same CA', async () => {
    const listed = fingerprint(pki.clientCert).replaceAll(':', '').toLowerCase();
    const { port, handled, ofType } = await mtls({ fingerprints: [listed] });
    expect(await tryOnce(port, client())).toEqual({ acks: ['TRY'] });
    expect(await tryOnce(port, otherClient())).toEqual({ acks: [] });
    expect(handled).toEqual(['TRY']);
    await vi.waitFor(() => expect(ofType('client-refused')).toHaveLength(1));
    expect(ofType('client-refused')[0]).toEqual({
      type: 'client-refused',
      remoteAddress: '127.0.0.1',
      fingerprint256: fingerprint(pki.otherClientCert),
      subjectCN: 'other client',
    });
    expect(ofType('connection')).toHaveLength(1);
  });

  it('serves a listed subject CN and refuses another', async () => {
    const { port, handled, ofType } = await mtls({ subjects: ['mllp test client'] });
    expect(await tryOnce(port, client())).toEqual({ acks: ['TRY'] });
    expect(await tryOnce(port, otherClient())).toEqual({ acks: [] });
    expect(handled).toEqual(['TRY']);
    await vi.waitFor(() => expect(ofType('client-refused')).toHaveLength(1));
  });

  it.each([
    ['no certificate', () => ({})],
    ['a certificate from another CA', () => ({ key: pki.strangerKey, cert: pki.strangerCert })],
  ])('asks for a certificate by itself and refuses a client with %s', async (_name, options) => {
    const { port, handled, ofType } = await mtls({ subjects: ['mllp test client', 'stranger'] });
    expect(await tryOnce(port, options())).toEqual({ acks: [] });
    expect(handled).toEqual([]);
    await vi.waitFor(() => expect(ofType('tls-error')).toHaveLength(1));
    expect(ofType('connection')).toEqual([]);
  });

  it('refuses to start without a CA to verify client certificates against, or with an empty list', () => {
    const base = { port: 0, handler: async () => undefined, onHandlerError: () => undefined };
    const tlsBase = { key: pki.serverKey, cert: pki.serverCert };
    expect(() => new MllpListener({ ...base, tls: { ...tlsBase, requestCert: true } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(
      () => new MllpListener({ ...base, tls: { ...tlsBase, allowClients: { subjects: ['x'] } } }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
    expect(() => new MllpListener({ ...base, tls: { ...tlsBase, ca: pki.ca, allowClients: {} } })).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
    expect(
      () =>
        new MllpListener({
          ...base,
          tls: { ...tlsBase, ca: pki.ca, allowClients: { fingerprints: ['AB:CD'] } },
        }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('MllpListener maxConnectionsPerPeer', () => {
  /** A plain socket from `localAddress`, resolved once connected. */
  async function from(port: number, localAddress: string): Promise<net.Socket> {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress });
    cleanups.push(() => socket.destroy());
    socket.on('error', () => {});
    await new Promise((resolve) => socket.once('connect', resolve));
    return socket;
  }

  /** Sends one message and resolves with the control id its ACK answers ('' when closed instead). */
  function ask(socket: net.Socket, id: string): Promise<string> {
    return new Promise((resolve) => {
      let data = Buffer.alloc(0);
      socket.on('data', (chunk: Buffer) => {
        data = Buffer.concat([data, chunk]);
        const end = data.indexOf(0x1c);
        if (end !== -1) resolve(controlIds(data.subarray(1, end)).msa2 ?? '');
      });
      socket.once('close', () => resolve(''));
      socket.write(frame(testMessage(id)));
    });
  }

  it('refuses the connection beyond the limit from one address, not from another; a closed one frees its slot', async () => {
    const { port, ofType, listener } = await start({ maxConnectionsPerPeer: 2, maxConnections: 10 });
    const a = await from(port, '127.0.0.1');
    const b = await from(port, '127.0.0.1');
    await vi.waitFor(() => expect(listener.connectionCount).toBe(2));
    const third = await from(port, '127.0.0.1');
    expect(await ask(third, 'THIRD')).toBe('');
    expect(ofType('refused')).toEqual([
      { type: 'refused', remoteAddress: '127.0.0.1', reason: 'max-connections-per-peer' },
    ]);
    // Another peer (the whole of 127.0.0.0/8 is loopback on Linux) has its own allowance.
    const elsewhere = await from(port, '127.0.0.2');
    expect(await ask(elsewhere, 'OTHER')).toBe('OTHER');
    expect(await ask(a, 'A')).toBe('A');
    expect(await ask(b, 'B')).toBe('B');
    a.destroy();
    await vi.waitFor(() => expect(listener.connectionCount).toBe(2));
    const again = await from(port, '127.0.0.1');
    expect(await ask(again, 'AGAIN')).toBe('AGAIN');
    expect(ofType('refused')).toHaveLength(1);
  });
});
