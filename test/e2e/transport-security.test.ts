import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadChannelFile } from '../../src/channels/channel-loader.js';
import { readEnv } from '../../src/config/env.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { createLogger } from '../../src/observability/logger.js';
import { controlIds } from '../support/mllp-ack.js';
import { makeTestPki, type TestPki } from '../support/mllp-pki.js';
import { frame, testMessage } from '../support/mllp-test-client.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { dropQueueKeys } from '../support/redis.js';

// A channel file drives the listener's transport security end to end: the daemon (in process, on the
// real Redis and a fresh Postgres database) reads the TLS files relative to the channel file, serves
// only the allowlisted client certificate, limits connections per peer, and logs each refusal without
// message content.

let pki: TestPki;
let dir: string;
let daemon: Daemon;
let database: TestDatabase;
let port: number;
const prefix = `transport-${process.pid}-${Date.now()}`;
const lines: Array<Record<string, unknown>> = [];

beforeAll(async () => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'hl7e-transport-'));
  const channels = join(dir, 'channels');
  mkdirSync(join(channels, 'tls'), { recursive: true });
  writeFileSync(join(channels, 'tls', 'server.pem'), pki.serverCert);
  writeFileSync(join(channels, 'tls', 'server.key'), pki.serverKey);
  writeFileSync(join(channels, 'tls', 'clients-ca.pem'), pki.ca);
  writeFileSync(
    join(channels, 'secure.yaml'),
    [
      'name: secure',
      'source:',
      '  mllp:',
      '    port: 0',
      '    maxConnectionsPerPeer: 2',
      '    tls:',
      '      cert: tls/server.pem',
      '      key: tls/server.key',
      '      ca: tls/clients-ca.pem',
      '      requireClientCert: true',
      '      allowClients:',
      `        fingerprints: ['${new X509Certificate(pki.clientCert).fingerprint256}']`,
      '',
    ].join('\n'),
  );
  const logStream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line.startsWith('{')) lines.push(JSON.parse(line));
      done();
    },
  });
  database = await createTestDatabase('transport');
  daemon = new Daemon({
    env: readEnv({
      HL7E_DATABASE_URL: database.url,
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_CHANNELS_DIR: channels,
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_QUEUE_PREFIX: prefix,
      HL7E_ROLES_FILE: join(dir, 'roles.yaml'),
      HL7E_CONVERT_WORKERS: '0',
      HL7E_PARTITIONS: '2',
    }),
    logger: createLogger({ level: 'info' }, logStream),
  });
  await daemon.start();
  port = daemon.addresses.find((a) => a.channel === 'secure')!.port;
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  await database?.drop();
  await dropQueueKeys(prefix);
  pki?.cleanup();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, 30_000);

/** One TLS connection sending one message; resolves with the MSA-1 of its ACK, or '' when refused. */
function send(options: tls.ConnectionOptions, id: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = tls.connect({ port, host: '127.0.0.1', ca: pki.ca, servername: 'localhost', ...options });
    let data = Buffer.alloc(0);
    socket.on('error', () => {});
    socket.on('secureConnect', () => socket.write(frame(testMessage(id))));
    socket.on('data', (chunk: Buffer) => {
      data = Buffer.concat([data, chunk]);
      const end = data.indexOf(0x1c);
      if (end !== -1) {
        resolve(controlIds(data.subarray(1, end)).msa1 ?? '');
        socket.end();
      }
    });
    socket.once('close', () => resolve(''));
  });
}

const client = () => ({ key: pki.clientKey, cert: pki.clientCert });
const logged = (msg: string) => lines.filter((l) => l.msg === msg);

describe('a channel with mTLS allowlist and per-peer limit', () => {
  it('serves the allowlisted client certificate', async () => {
    expect(await send(client(), 'OK1')).toBe('AA');
  });

  it('refuses a certificate of the same CA not on the list, logging its fingerprint and CN only', async () => {
    expect(await send({ key: pki.otherClientKey, cert: pki.otherClientCert }, 'NOTLISTED')).toBe('');
    await vi.waitFor(() => expect(logged('connection refused').length).toBeGreaterThan(0));
    expect(logged('connection refused')).toContainEqual(
      expect.objectContaining({
        channel: 'secure',
        type: 'client-refused',
        fingerprint256: new X509Certificate(pki.otherClientCert).fingerprint256,
        subjectCN: 'other client',
      }),
    );
  });

  it('refuses a client without a certificate, and one from another CA, at the handshake', async () => {
    const before = logged('TLS handshake failed').length;
    expect(await send({}, 'NOCERT')).toBe('');
    expect(await send({ key: pki.strangerKey, cert: pki.strangerCert }, 'STRANGER')).toBe('');
    await vi.waitFor(() => expect(logged('TLS handshake failed').length).toBe(before + 2));
  });

  it('refuses a third connection from the same address while two are open', async () => {
    const open = await Promise.all(
      [1, 2].map(
        () =>
          new Promise<tls.TLSSocket>((resolve) => {
            const s = tls.connect({
              port,
              host: '127.0.0.1',
              ca: pki.ca,
              servername: 'localhost',
              ...client(),
            });
            s.on('error', () => {});
            s.once('secureConnect', () => resolve(s));
          }),
      ),
    );
    const third = net.connect(port, '127.0.0.1').on('error', () => {});
    await new Promise((resolve) => third.once('close', resolve));
    expect(logged('connection refused')).toContainEqual(
      expect.objectContaining({ reason: 'max-connections-per-peer', remoteAddress: '127.0.0.1' }),
    );
    for (const s of open) s.destroy();
  });

  it('logs no message content', () => {
    const text = JSON.stringify(lines);
    for (const phi of ['Testperson', 'TESTOK1', 'TESTNOTLISTED', 'SENDAPP']) expect(text).not.toContain(phi);
  });
});

describe('the channel schema for transport security', () => {
  /** Loads a channel written as YAML lines; returns the problems' keys, or the channel. */
  function load(name: string, body: string[]) {
    const file = join(dir, `${name}.yaml`);
    writeFileSync(file, [`name: ${name}`, ...body, ''].join('\n'));
    const result = loadChannelFile(file);
    return 'problems' in result ? { problems: result.problems.map((p) => p.key) } : result.channel;
  }
  const mllpTls = (...lines: string[]) => [
    'source:',
    '  mllp:',
    '    port: 0',
    '    tls:',
    '      cert: a.pem',
    '      key: a.key',
    ...lines.map((l) => `      ${l}`),
  ];

  it('takes allowClients, maxConnectionsPerPeer and fhir.tls, with defaults filled in', () => {
    const channel = load('ok', [
      ...mllpTls('ca: ca.pem', `allowClients: { subjects: [lis-01], fingerprints: ['${'ab'.repeat(32)}'] }`),
      '    maxConnectionsPerPeer: 3',
      'destinations:',
      '  - name: ehr',
      '    fhir:',
      '      baseUrl: https://ehr.example.org/fhir',
      `      tls: { ca: ehr-ca.pem, pins: ['${'AB:'.repeat(31)}AB'] }`,
    ]);
    expect(channel).toMatchObject({
      source: {
        mllp: {
          maxConnectionsPerPeer: 3,
          tls: { minVersion: 'TLSv1.2', allowClients: { subjects: ['lis-01'] } },
        },
      },
      destinations: [{ fhir: { tls: { ca: 'ehr-ca.pem', minVersion: 'TLSv1.2' } } }],
    });
  });

  it.each([
    ['allowClients without ca', mllpTls('allowClients: { subjects: [lis-01] }')],
    ['requireClientCert without ca', mllpTls('requireClientCert: true')],
    ['TLS 1.1 as minVersion', mllpTls('minVersion: TLSv1.1')],
    ['a fingerprint that is not SHA-256', mllpTls('ca: ca.pem', 'allowClients: { fingerprints: [ab12] }')],
    [
      'fhir.tls on an http:// baseUrl',
      [
        'source: { mllp: { port: 0 } }',
        'destinations:',
        '  - name: ehr',
        '    fhir: { baseUrl: http://ehr.example.org/fhir, tls: { ca: ca.pem } }',
      ],
    ],
  ])('refuses %s', (_name, body) => {
    expect(load('bad', body)).toMatchObject({ problems: [expect.any(String)] });
  });
});
