import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TLSSocket } from 'node:tls';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { testChannel } from '../../test/support/channel-config.js';
import { makeTestPki, type TestPki } from '../../test/support/mllp-pki.js';
import type { FhirTlsConfig } from '../channels/channel-config.js';
import { Destination, errorClass } from './destination.js';
import { FhirDestinationClient, type FhirDestinationConfig } from './fhir-client.js';

// Outbound HTTPS to a local FHIR server whose certificate the test CA signed (issue 7, "What must show":
// works with the test CA, fails on a wrong one). MLLP destinations over TLS, right and wrong CA, are
// covered in mllp-forwarder.test.ts ("over TLS").

const BUNDLE = JSON.stringify({ resourceType: 'Bundle', type: 'transaction', entry: [] });
const RESPONSE = JSON.stringify({ resourceType: 'Bundle', type: 'transaction-response', entry: [] });

interface Seen {
  readonly path: string;
  /** CN of the client certificate the request came with, if any. */
  readonly clientCN: string | undefined;
  readonly authorization: string | undefined;
}

let pki: TestPki;
let dir: string;
beforeAll(() => {
  pki = makeTestPki();
  dir = mkdtempSync(join(tmpdir(), 'fhir-tls-'));
  mkdirSync(join(dir, 'certs'));
  for (const [name, pem] of Object.entries({
    'ca.pem': pki.ca,
    'other-ca.pem': pki.otherCa,
    'client.pem': pki.clientCert,
    'client.key': pki.clientKey,
  })) {
    writeFileSync(join(dir, 'certs', name), pem);
  }
});
afterAll(() => {
  pki.cleanup();
  rmSync(dir, { recursive: true, force: true });
});

const closers: Array<() => unknown> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/**
 * A real HTTPS server on a free loopback port: POST /fhir answers a transaction-response, POST /token
 * an OAuth2 token, /hang never answers. `mtls` makes it demand a client certificate from the test CA.
 */
async function serve(opts: { mtls?: boolean; maxVersion?: 'TLSv1.2' } = {}) {
  const seen: Seen[] = [];
  const server = https.createServer(
    {
      key: pki.serverKey,
      cert: pki.serverCert,
      ...(opts.maxVersion ? { maxVersion: opts.maxVersion } : {}),
      ...(opts.mtls ? { ca: pki.ca, requestCert: true, rejectUnauthorized: true } : {}),
    },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        const peer = (req.socket as TLSSocket).getPeerCertificate();
        seen.push({
          path: req.url ?? '',
          clientCN: typeof peer?.subject?.CN === 'string' ? peer.subject.CN : undefined,
          authorization: req.headers.authorization,
        });
        if (req.url === '/hang') return;
        if (req.url === '/token') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ access_token: 'tok-1', token_type: 'bearer', expires_in: 300 }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/fhir+json' });
        res.end(RESPONSE);
      });
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(resolve);
      }),
  );
  const origin = `https://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { seen, origin };
}

function client(
  origin: string,
  tls: Partial<FhirTlsConfig> | undefined,
  extra: Partial<FhirDestinationConfig> = {},
) {
  const c = new FhirDestinationClient(
    {
      baseUrl: `${origin}/fhir`,
      mode: 'transaction',
      timeoutMs: 5000,
      ...(tls ? { tls: { minVersion: 'TLSv1.2', ...tls } } : {}),
      ...extra,
    },
    { baseDir: dir },
  );
  closers.push(() => c.close());
  return c;
}

const fingerprint = (pem: Buffer) => new X509Certificate(pem).fingerprint256;

describe('FHIR destination over HTTPS with fhir.tls', () => {
  it('delivers with ca set to the test CA (a path relative to the channel folder)', async () => {
    const { origin, seen } = await serve();
    expect(await client(origin, { ca: 'certs/ca.pem' }).deliver(BUNDLE)).toEqual({
      kind: 'delivered',
      status: 200,
      body: RESPONSE,
    });
    expect(seen.map((s) => s.path)).toEqual(['/fhir']);
  });

  it('fails with a wrong CA: retry (network), the TLS code visible as the error class, nothing sent', async () => {
    const { origin, seen } = await serve();
    const out = await client(origin, { ca: 'certs/other-ca.pem' }).deliver(BUNDLE);
    expect(out).toEqual({ kind: 'retry', reason: 'network', tlsError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
    expect(errorClass(out)).toBe('tls_UNABLE_TO_VERIFY_LEAF_SIGNATURE');
    expect(seen).toEqual([]);
  });

  it('without fhir.tls (fetch, system CAs) the test CA is not trusted either, and says so', async () => {
    const { origin, seen } = await serve();
    expect(await client(origin, undefined).deliver(BUNDLE)).toEqual({
      kind: 'retry',
      reason: 'network',
      tlsError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    expect(seen).toEqual([]);
  });

  it('delivers when a pin names the server certificate (any case, colons or none), refuses otherwise', async () => {
    const { origin, seen } = await serve();
    const pin = fingerprint(pki.serverCert).replaceAll(':', '').toLowerCase();
    expect(await client(origin, { ca: 'certs/ca.pem', pins: [pin] }).deliver(BUNDLE)).toMatchObject({
      kind: 'delivered',
    });
    // Signed by the trusted CA and valid for the host, but not the pinned certificate.
    const wrong = await client(origin, { ca: 'certs/ca.pem', pins: [fingerprint(pki.clientCert)] }).deliver(
      BUNDLE,
    );
    expect(wrong).toEqual({ kind: 'retry', reason: 'network', tlsError: 'CERT_PIN_MISMATCH' });
    expect(errorClass(wrong)).toBe('tls_CERT_PIN_MISMATCH');
    expect(seen).toHaveLength(1);
  });

  it('checks the host name (servername) after the CA', async () => {
    const { origin } = await serve();
    expect(
      await client(origin, { ca: 'certs/ca.pem', servername: 'ehr.example.org' }).deliver(BUNDLE),
    ).toEqual({
      kind: 'retry',
      reason: 'network',
      tlsError: 'ERR_TLS_CERT_ALTNAME_INVALID',
    });
    expect(
      await client(origin, { ca: 'certs/ca.pem', servername: 'localhost' }).deliver(BUNDLE),
    ).toMatchObject({
      kind: 'delivered',
    });
  });

  it('presents the client certificate to a server that requires mTLS; without it the handshake fails', async () => {
    const { origin, seen } = await serve({ mtls: true });
    const withCert = { ca: 'certs/ca.pem', cert: 'certs/client.pem', key: 'certs/client.key' };
    expect(await client(origin, withCert).deliver(BUNDLE)).toMatchObject({ kind: 'delivered' });
    expect(seen).toEqual([{ path: '/fhir', clientCN: 'mllp test client', authorization: undefined }]);
    const without = await client(origin, { ca: 'certs/ca.pem' }).deliver(BUNDLE);
    expect(without).toMatchObject({ kind: 'retry', reason: 'network' });
    expect((without as { tlsError?: string }).tlsError).toMatch(/^ERR_SSL_/);
    expect(seen).toHaveLength(1);
  });

  it('minVersion TLSv1.3 refuses a server that stops at TLS 1.2', async () => {
    const { origin, seen } = await serve({ maxVersion: 'TLSv1.2' });
    const out = await client(origin, { ca: 'certs/ca.pem', minVersion: 'TLSv1.3' }).deliver(BUNDLE);
    expect(out).toMatchObject({ kind: 'retry', reason: 'network' });
    // OpenSSL reports a version alert as EPROTO; it is still classed TLS (it came mid-handshake).
    expect((out as { tlsError?: string }).tlsError).toMatch(/^(ERR_SSL_|EPROTO$)/);
    expect(seen).toEqual([]);
  });

  it('keeps the timeout classification: a server that never answers is retry (timeout)', async () => {
    const { origin } = await serve();
    const c = client(origin, { ca: 'certs/ca.pem' }, { baseUrl: `${origin}/hang` });
    // conditional-put sends to base/<url>; transaction mode POSTs to the base itself, here /hang.
    expect(await c.deliver(BUNDLE, { timeoutMs: 300 })).toEqual({ kind: 'retry', reason: 'timeout' });
  });

  it('refuses fhir.tls with an http:// baseUrl rather than sending in the clear', () => {
    expect(
      () =>
        new FhirDestinationClient({
          baseUrl: 'http://127.0.0.1:1/fhir',
          mode: 'transaction',
          timeoutMs: 1000,
          tls: { minVersion: 'TLSv1.2' },
        }),
    ).toThrow(expect.objectContaining({ code: 'CONFIG_INVALID' }));
  });
});

describe('OAuth2 token requests and fhir.tls', () => {
  const oauth = (tokenUrl: string) => ({
    auth: {
      type: 'oauth2-client-credentials' as const,
      tokenUrl,
      clientId: 'hl7e',
      clientSecret: { env: 'HL7E_TLS_TEST_SECRET' },
    },
  });
  beforeAll(() => {
    process.env.HL7E_TLS_TEST_SECRET = 'not-shown';
  });
  afterAll(() => {
    delete process.env.HL7E_TLS_TEST_SECRET;
  });

  it('a token URL on the FHIR origin goes through the same CA and client certificate', async () => {
    const { origin, seen } = await serve({ mtls: true });
    const tls = { ca: 'certs/ca.pem', cert: 'certs/client.pem', key: 'certs/client.key' };
    expect(await client(origin, tls, oauth(`${origin}/token`)).deliver(BUNDLE)).toMatchObject({
      kind: 'delivered',
    });
    expect(seen).toEqual([
      { path: '/token', clientCN: 'mllp test client', authorization: undefined },
      { path: '/fhir', clientCN: 'mllp test client', authorization: 'Bearer tok-1' },
    ]);
  });

  it('a token URL on another origin is verified against the system CAs, not the destination CA', async () => {
    const fhir = await serve();
    const authServer = await serve();
    const out = await client(
      fhir.origin,
      { ca: 'certs/ca.pem' },
      oauth(`${authServer.origin}/token`),
    ).deliver(BUNDLE);
    // The test CA is not a system CA: the token request fails, so the delivery waits for credentials.
    expect(out).toEqual({ kind: 'retry', reason: 'auth' });
    expect(authServer.seen).toEqual([]);
    expect(fhir.seen).toEqual([]);
  });
});

describe('a channel destination with fhir.tls', () => {
  const channelWith = (tls: FhirTlsConfig, baseUrl: string) => ({
    ...testChannel('tls-out', [
      { name: 'ehr', fhir: { baseUrl, mode: 'transaction', timeoutMs: 5000, tls } },
    ]),
    file: join(dir, 'tls-out.yaml'),
  });

  it('resolves the PEM paths against the channel file and shows a TLS failure in its status', async () => {
    const { origin } = await serve();
    const good = channelWith({ ca: 'certs/ca.pem', minVersion: 'TLSv1.2' }, `${origin}/fhir`);
    const ok = new Destination(good, good.destinations[0]!);
    closers.push(() => ok.close());
    expect(await ok.attempt({ kind: 'bundle', body: BUNDLE })).toMatchObject({
      kind: 'answered',
      outcome: { kind: 'delivered' },
    });

    const bad = channelWith({ ca: 'certs/other-ca.pem', minVersion: 'TLSv1.2' }, `${origin}/fhir`);
    const failing = new Destination(bad, bad.destinations[0]!);
    closers.push(() => failing.close());
    await failing.attempt({ kind: 'bundle', body: BUNDLE });
    expect(failing.snapshot()).toMatchObject({
      lastErrorClass: 'tls_UNABLE_TO_VERIFY_LEAF_SIGNATURE',
      retried: 1,
    });
  });
});
