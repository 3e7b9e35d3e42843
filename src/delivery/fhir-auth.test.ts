import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeJwt, decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { okTransaction, TestFhirServer } from '../../test/support/fhir-server.js';
import type { Bundle } from '../fhir/fhir-types.js';
import {
  AuthError,
  createAuthProvider,
  OAUTH2_POLICY,
  readSecret,
  type SmartAlgorithm,
} from './fhir-auth.js';
import { FhirDestinationClient } from './fhir-client.js';

const SECRET = 'S3cr3t-value-never-shown';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hl7e-auth-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<AuthError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return err as AuthError;
}

describe('readSecret', () => {
  it('reads an environment variable', async () => {
    expect(await readSecret({ env: 'PW' }, { PW: SECRET })).toBe(SECRET);
  });
  it('reads a file without its trailing newline', async () => {
    const file = join(dir, 'pw');
    await writeFile(file, `${SECRET}\n`);
    expect(await readSecret({ file }, {})).toBe(SECRET);
  });
  it('names the variable or file, never a value, when it cannot read', async () => {
    const e1 = await errorOf(readSecret({ env: 'NOPE' }, {}));
    expect(e1.reason).toBe('secret');
    expect(e1.message).toContain('NOPE');
    const e2 = await errorOf(readSecret({ file: join(dir, 'missing') }, {}));
    expect(e2.message).toContain('ENOENT');
    const empty = join(dir, 'empty');
    await writeFile(empty, '\n');
    expect((await errorOf(readSecret({ file: empty }, {}))).message).toContain('empty');
  });
});

describe('static credentials', () => {
  it('basic: base64 of user:password from the environment', async () => {
    const p = createAuthProvider(
      { type: 'basic', username: 'engine', password: { env: 'FHIR_PW' } },
      { env: { FHIR_PW: SECRET } },
    );
    expect(await p.authorization()).toBe(`Basic ${Buffer.from(`engine:${SECRET}`).toString('base64')}`);
  });
  it('bearer: token from a file, re-read after invalidate (a rotated mounted secret)', async () => {
    const file = join(dir, 'token');
    await writeFile(file, 'tok-1\n');
    const p = createAuthProvider({ type: 'bearer', token: { file } });
    const first = await p.authorization();
    expect(first).toBe('Bearer tok-1');
    await writeFile(file, 'tok-2\n');
    expect(await p.authorization()).toBe('Bearer tok-1');
    p.invalidate('Bearer something-else');
    expect(await p.authorization()).toBe('Bearer tok-1');
    p.invalidate(first);
    expect(await p.authorization()).toBe('Bearer tok-2');
  });
  it('none: no header', async () => {
    expect(await createAuthProvider({ type: 'none' }).authorization()).toBeUndefined();
  });
});

describe('oauth2 client credentials', () => {
  const server = new TestFhirServer([], { clientId: 'engine', clientSecret: SECRET, expiresIn: 3600 });
  beforeAll(() => server.start());
  afterAll(() => server.close());
  afterEach(() => {
    server.tokenRequests.length = 0;
    server.tokensIssued = 0;
    server.token = { clientId: 'engine', clientSecret: SECRET, expiresIn: 3600 };
  });
  const config = () =>
    ({
      type: 'oauth2-client-credentials',
      tokenUrl: server.tokenUrl,
      clientId: 'engine',
      clientSecret: { env: 'CLIENT_SECRET' },
      scopes: ['system/Patient.write', 'system/Observation.write'],
    }) as const;

  it('posts the form grant and caches the token until it is due', async () => {
    let clock = 1_000_000;
    const p = createAuthProvider(config(), { env: { CLIENT_SECRET: SECRET }, now: () => clock });
    expect(await p.authorization()).toBe('Bearer token-1');
    expect(await p.authorization()).toBe('Bearer token-1');
    expect(server.tokensIssued).toBe(1);
    const form = new URLSearchParams(server.tokenRequests[0]?.body);
    expect(Object.fromEntries(form)).toEqual({
      grant_type: 'client_credentials',
      client_id: 'engine',
      client_secret: SECRET,
      scope: 'system/Patient.write system/Observation.write',
    });
    clock += 3600_000 - OAUTH2_POLICY.expiryMarginMs - 1;
    expect(await p.authorization()).toBe('Bearer token-1');
    clock += 2;
    expect(await p.authorization()).toBe('Bearer token-2');
    expect(server.tokensIssued).toBe(2);
  });

  it('keeps one token request in flight for concurrent callers', async () => {
    const p = createAuthProvider(config(), { env: { CLIENT_SECRET: SECRET } });
    const got = await Promise.all(Array.from({ length: 10 }, () => p.authorization()));
    expect(new Set(got)).toEqual(new Set(['Bearer token-1']));
    expect(server.tokenRequests).toHaveLength(1);
  });

  it('invalidate fetches a new token once, however many callers saw the old one refused', async () => {
    const p = createAuthProvider(config(), { env: { CLIENT_SECRET: SECRET } });
    const old = await p.authorization();
    p.invalidate(old);
    p.invalidate(old);
    expect(await p.authorization()).toBe('Bearer token-2');
    p.invalidate(old);
    expect(await p.authorization()).toBe('Bearer token-2');
    expect(server.tokensIssued).toBe(2);
  });

  it('a refused client secret is an AuthError with the status and without the secret', async () => {
    server.token = { clientId: 'engine', clientSecret: 'another' };
    const p = createAuthProvider(config(), { env: { CLIENT_SECRET: SECRET } });
    const err = await errorOf(p.authorization());
    expect(err).toMatchObject({ reason: 'status', status: 401 });
    expect(JSON.stringify({ ...err, message: err.message, stack: err.stack })).not.toContain(SECRET);
  });

  it('an unreachable token endpoint is a network AuthError', async () => {
    const p = createAuthProvider(
      { ...config(), tokenUrl: 'http://127.0.0.1:1/token' },
      { env: { CLIENT_SECRET: SECRET } },
    );
    expect(await errorOf(p.authorization())).toMatchObject({ reason: 'network' });
  });
});

describe('SMART backend services', () => {
  interface KeyPair {
    readonly pem: string;
    readonly jwk: JWK;
  }
  /** A fresh key pair: the PEM PKCS#8 private key for the engine, the public JWK for the server. */
  async function keyPair(alg: SmartAlgorithm, kid: string): Promise<KeyPair> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    return { pem: await exportPKCS8(privateKey), jwk: { ...(await exportJWK(publicKey)), kid, alg } };
  }
  const keys: Record<SmartAlgorithm, KeyPair> = {} as Record<SmartAlgorithm, KeyPair>;
  const kid = (alg: SmartAlgorithm) => `engine-${alg}`;
  const registered = () => ({ clientId: 'engine', jwks: { keys: [keys.RS384.jwk, keys.ES384.jwk] } });

  const server = new TestFhirServer();
  beforeAll(async () => {
    keys.RS384 = await keyPair('RS384', kid('RS384'));
    keys.ES384 = await keyPair('ES384', kid('ES384'));
    server.token = registered();
    await server.start();
  });
  afterAll(() => server.close());
  afterEach(() => {
    server.tokenRequests.length = 0;
    server.requests.length = 0;
    server.tokensIssued = 0;
    server.token = registered();
    server.script = [okTransaction()];
  });

  const config = (alg?: SmartAlgorithm) =>
    ({
      type: 'smart-backend-services',
      tokenUrl: server.tokenUrl,
      clientId: 'engine',
      privateKey: { env: 'SMART_KEY' },
      keyId: kid(alg ?? 'RS384'),
      ...(alg ? { algorithm: alg } : {}),
      scopes: ['system/Patient.write', 'system/Observation.write'],
    }) as const;
  const assertionOf = (i: number) =>
    new URLSearchParams(server.tokenRequests[i]?.body).get('client_assertion') ?? '';

  it.each([
    ['RS384', undefined],
    ['ES384', 'ES384'],
  ] as const)('%s: the server verifies the signed assertion and issues a token', async (alg, named) => {
    const at = Date.now();
    const p = createAuthProvider(config(named), { env: { SMART_KEY: keys[alg].pem }, now: () => at });
    expect(await p.authorization()).toBe('Bearer token-1');
    const form = Object.fromEntries(new URLSearchParams(server.tokenRequests[0]?.body));
    // SMART's request has no client_id or secret: the assertion is the client's authentication.
    expect(form).toEqual({
      grant_type: 'client_credentials',
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: expect.any(String),
      scope: 'system/Patient.write system/Observation.write',
    });
    expect(decodeProtectedHeader(assertionOf(0))).toEqual({ alg, kid: kid(alg), typ: 'JWT' });
    expect(decodeJwt(assertionOf(0))).toEqual({
      iss: 'engine',
      sub: 'engine',
      aud: server.tokenUrl,
      exp: Math.floor((at + OAUTH2_POLICY.assertionLifetimeMs) / 1000),
      jti: expect.stringMatching(/^[0-9a-f-]{36}$/),
    });
  });

  it('reuses the token; a 401 from the FHIR server gets a new one through a new assertion', async () => {
    let revoked = false;
    server.script = (req) =>
      revoked && req.headers.authorization === 'Bearer token-1' ? { status: 401 } : okTransaction();
    const auth = createAuthProvider(config('ES384'), { env: { SMART_KEY: keys.ES384.pem } });
    const c = new FhirDestinationClient(
      { baseUrl: server.baseUrl, mode: 'transaction', timeoutMs: 5000 },
      { auth },
    );
    const bundle: Bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      identifier: { value: 'M1' },
      entry: [],
    };
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(server.tokenRequests).toHaveLength(1);
    revoked = true;
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-2',
    ]);
    expect(server.tokenRequests).toHaveLength(2);
    expect(decodeJwt(assertionOf(1)).jti).not.toBe(decodeJwt(assertionOf(0)).jti);
  });

  it('a key the server does not hold is refused: a status AuthError without key material', async () => {
    const stranger = await keyPair('RS384', kid('RS384'));
    const p = createAuthProvider(config(), { env: { SMART_KEY: stranger.pem } });
    const err = await errorOf(p.authorization());
    expect(err).toMatchObject({ reason: 'status', status: 401 });
    expect(server.tokensIssued).toBe(0);
    const shown = JSON.stringify({ ...err, message: err.message, stack: err.stack });
    expect(shown).not.toContain(stranger.pem.split('\n')[1]);
  });

  it('an unreadable or unfit key is a secret AuthError naming its source, not its content', async () => {
    const missing = await errorOf(createAuthProvider(config(), { env: {} }).authorization());
    expect(missing).toMatchObject({ reason: 'secret' });
    expect(missing.message).toContain('SMART_KEY');
    // An ES384 key where RS384 is configured, and a file that holds something else.
    const wrongAlg = await errorOf(
      createAuthProvider(config(), { env: { SMART_KEY: keys.ES384.pem } }).authorization(),
    );
    expect(wrongAlg).toMatchObject({ reason: 'secret' });
    expect(wrongAlg.message).toContain('environment variable SMART_KEY');
    expect(wrongAlg.message).not.toContain(keys.ES384.pem.split('\n')[1]);
    const file = join(dir, 'not-a-key.pem');
    await writeFile(file, `${SECRET}\n`);
    const notKey = await errorOf(createAuthProvider({ ...config(), privateKey: { file } }).authorization());
    expect(notKey).toMatchObject({ reason: 'secret' });
    expect(notKey.message).toContain(file);
    expect(notKey.message).not.toContain(SECRET);
    expect(server.tokenRequests).toHaveLength(0);
  });
});
