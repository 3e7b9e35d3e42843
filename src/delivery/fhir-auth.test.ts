import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestFhirServer } from '../../test/support/fhir-server.js';
import { AuthError, createAuthProvider, OAUTH2_POLICY, readSecret } from './fhir-auth.js';

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
