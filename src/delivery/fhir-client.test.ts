import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  created,
  HANG,
  okTransaction,
  operationOutcome,
  RESET,
  type Script,
  TestFhirServer,
  tooManyRequests,
  unavailable,
} from '../../test/support/fhir-server.js';
import type { Bundle } from '../fhir/fhir-types.js';
import type { DeliveryOutcome } from './delivery-outcome.js';
import { createAuthProvider } from './fhir-auth.js';
import { FhirDestinationClient, type FhirDestinationConfig } from './fhir-client.js';

const SECRET = 'S3cr3t-value-never-shown';
const PATIENT = 'urn:uuid:11111111-1111-4111-8111-111111111111';
const ENCOUNTER = 'urn:uuid:22222222-2222-4222-8222-222222222222';
const OBSERVATION = 'urn:uuid:33333333-3333-4333-8333-333333333333';

const bundle: Bundle = {
  resourceType: 'Bundle',
  type: 'transaction',
  identifier: { value: 'MSG00001' },
  entry: [
    {
      fullUrl: PATIENT,
      resource: { resourceType: 'Patient', identifier: [{ system: 'urn:mrn', value: '123' }] },
      request: { method: 'PUT', url: 'Patient?identifier=urn%3Amrn%7C123' },
    },
    {
      fullUrl: ENCOUNTER,
      resource: { resourceType: 'Encounter', subject: { reference: PATIENT } },
      request: { method: 'POST', url: 'Encounter', ifNoneExist: 'identifier=urn%3Avisit%7C9' },
    },
    {
      fullUrl: OBSERVATION,
      resource: {
        resourceType: 'Observation',
        subject: { reference: PATIENT },
        encounter: { reference: ENCOUNTER },
      },
      request: { method: 'PUT', url: 'Observation?identifier=urn%3Aobx%7C1' },
    },
  ],
};

const servers: TestFhirServer[] = [];
let dir: string | undefined;
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
  if (dir) await rm(dir, { recursive: true, force: true });
  dir = undefined;
});

async function serve(script: Script, token?: ConstructorParameters<typeof TestFhirServer>[1]) {
  const s = await new TestFhirServer(script, token).start();
  servers.push(s);
  return s;
}

function client(server: TestFhirServer, extra: Partial<FhirDestinationConfig> = {}, env = {}) {
  const config: FhirDestinationConfig = {
    baseUrl: `${server.baseUrl}/`,
    mode: 'transaction',
    timeoutMs: 5000,
    ...extra,
  };
  return new FhirDestinationClient(config, {
    auth: createAuthProvider(config.auth ?? { type: 'none' }, { env }),
  });
}

describe('transaction mode', () => {
  it('POSTs the Bundle as application/fhir+json to the base and stores the response', async () => {
    const server = await serve([okTransaction(3)]);
    const out = await client(server, { headers: { 'x-tenant': 'north' } }).deliver(bundle);
    expect(out).toMatchObject({ kind: 'delivered', status: 200 });
    expect(JSON.parse((out as { body: string }).body)).toMatchObject({ type: 'transaction-response' });
    const [req] = server.requests;
    expect(req).toMatchObject({ method: 'POST', url: '/fhir' });
    expect(req?.headers['content-type']).toBe('application/fhir+json');
    expect(req?.headers.accept).toBe('application/fhir+json');
    expect(req?.headers['x-tenant']).toBe('north');
    expect(req?.headers.authorization).toBeUndefined();
    expect(JSON.parse(req?.body ?? '')).toEqual(bundle);
  });

  it('a 503 burst retries, then delivers', async () => {
    const server = await serve([unavailable(), unavailable(), okTransaction()]);
    const c = client(server);
    expect(await c.deliver(bundle)).toEqual({ kind: 'retry', reason: 'status', status: 503 });
    expect(await c.deliver(bundle)).toEqual({ kind: 'retry', reason: 'status', status: 503 });
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered', status: 200 });
  });

  it('honours Retry-After in seconds and as an HTTP-date, capped by the caller', async () => {
    const at = new Date(Date.now() + 20_000).toUTCString();
    const server = await serve([tooManyRequests('7'), unavailable(at), tooManyRequests('86400')]);
    const c = client(server);
    expect(await c.deliver(bundle)).toEqual({
      kind: 'retry',
      reason: 'status',
      status: 429,
      retryAfterMs: 7000,
    });
    const dated = await c.deliver(bundle);
    expect(dated).toMatchObject({ kind: 'retry', reason: 'status', status: 503 });
    const ms = (dated as { retryAfterMs: number }).retryAfterMs;
    expect(ms).toBeGreaterThan(15_000);
    expect(ms).toBeLessThanOrEqual(20_000);
    expect(await c.deliver(bundle, { maxRetryAfterMs: 60_000 })).toMatchObject({ retryAfterMs: 60_000 });
  });

  it('a server that hangs past the timeout is retry/timeout', async () => {
    const server = await serve([HANG]);
    const started = Date.now();
    expect(await client(server).deliver(bundle, { timeoutMs: 200 })).toEqual({
      kind: 'retry',
      reason: 'timeout',
    });
    expect(Date.now() - started).toBeLessThan(3000);
  });

  it('a reset connection and a refused one are retry/network', async () => {
    const server = await serve([RESET]);
    expect(await client(server).deliver(bundle)).toEqual({ kind: 'retry', reason: 'network' });
    const refused = new FhirDestinationClient({
      baseUrl: 'http://127.0.0.1:1/fhir',
      mode: 'transaction',
      timeoutMs: 2000,
    });
    expect(await refused.deliver(bundle)).toEqual({ kind: 'retry', reason: 'network' });
  });

  it('a 400 is rejected with the OperationOutcome kept', async () => {
    const server = await serve([operationOutcome(400, 'Patient.birthDate: invalid date')]);
    const out = await client(server).deliver(bundle);
    expect(out).toMatchObject({ kind: 'rejected', status: 400 });
    const oo = JSON.parse((out as { body: string }).body);
    expect(oo.resourceType).toBe('OperationOutcome');
    expect(oo.issue[0].diagnostics).toBe('Patient.birthDate: invalid date');
  });

  it('does not follow redirects (the Authorization header would go with them)', async () => {
    const server = await serve([{ status: 307, headers: { location: 'http://127.0.0.1:1/elsewhere' } }]);
    expect(await client(server).deliver(bundle)).toMatchObject({ kind: 'rejected', status: 307 });
    expect(server.requests).toHaveLength(1);
  });
});

describe('authentication', () => {
  it('basic with the password from a file, bearer from the environment', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hl7e-client-'));
    const file = join(dir, 'pw');
    await writeFile(file, `${SECRET}\n`);
    const server = await serve([okTransaction()]);
    await client(server, { auth: { type: 'basic', username: 'engine', password: { file } } }).deliver(bundle);
    await client(server, { auth: { type: 'bearer', token: { env: 'TOK' } } }, { TOK: SECRET }).deliver(
      bundle,
    );
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      `Basic ${Buffer.from(`engine:${SECRET}`).toString('base64')}`,
      `Bearer ${SECRET}`,
    ]);
  });

  /** The FHIR side accepts only the newest token issued. */
  function acceptsNewestToken(server: () => TestFhirServer): Script {
    return (req) =>
      req.headers.authorization === `Bearer token-${server().tokensIssued}`
        ? okTransaction()
        : { status: 401, body: { resourceType: 'OperationOutcome', issue: [] } };
  }

  const oauth = (server: TestFhirServer) =>
    ({
      type: 'oauth2-client-credentials',
      tokenUrl: server.tokenUrl,
      clientId: 'engine',
      clientSecret: { env: 'CLIENT_SECRET' },
      scopes: ['system/*.write'],
    }) as const;

  it('oauth2: the token is reused across deliveries and renewed after it expires', async () => {
    let clock = 5_000_000;
    const server: TestFhirServer = await serve(
      acceptsNewestToken(() => server),
      { clientId: 'engine', clientSecret: SECRET, expiresIn: 60 },
    );
    const config: FhirDestinationConfig = {
      baseUrl: server.baseUrl,
      mode: 'transaction',
      timeoutMs: 5000,
      auth: oauth(server),
    };
    const c = new FhirDestinationClient(config, {
      auth: createAuthProvider(config.auth!, { env: { CLIENT_SECRET: SECRET }, now: () => clock }),
    });
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(server.tokensIssued).toBe(1);
    clock += 60_000;
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(server.tokensIssued).toBe(2);
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it('oauth2: a 401 renews the token once and repeats the request once', async () => {
    let revoked = false;
    const server: TestFhirServer = await serve(
      (req) =>
        revoked && req.headers.authorization === 'Bearer token-1' ? { status: 401 } : okTransaction(),
      { clientId: 'engine', clientSecret: SECRET },
    );
    const c = client(server, { auth: oauth(server) }, { CLIENT_SECRET: SECRET });
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    revoked = true;
    expect(await c.deliver(bundle)).toMatchObject({ kind: 'delivered' });
    expect(server.tokensIssued).toBe(2);
    expect(server.requests.map((r) => r.headers.authorization)).toEqual([
      'Bearer token-1',
      'Bearer token-1',
      'Bearer token-2',
    ]);
  });

  it('oauth2: a 401 that persists after renewal is retry/auth after exactly two requests', async () => {
    const server = await serve([{ status: 401 }], { clientId: 'engine', clientSecret: SECRET });
    const out = await client(server, { auth: oauth(server) }, { CLIENT_SECRET: SECRET }).deliver(bundle);
    expect(out).toEqual({ kind: 'retry', reason: 'auth', status: 401 });
    expect(server.requests).toHaveLength(2);
    expect(server.tokensIssued).toBe(2);
  });

  it('a refused client secret or a missing variable is retry/auth, and no outcome shows a secret', async () => {
    const server = await serve([okTransaction()], { clientId: 'engine', clientSecret: 'other' });
    const outcomes: DeliveryOutcome[] = [];
    outcomes.push(await client(server, { auth: oauth(server) }, { CLIENT_SECRET: SECRET }).deliver(bundle));
    expect(outcomes[0]).toEqual({ kind: 'retry', reason: 'auth', status: 401 });
    outcomes.push(await client(server, { auth: oauth(server) }, {}).deliver(bundle));
    expect(outcomes[1]).toEqual({ kind: 'retry', reason: 'auth' });
    expect(server.requests).toHaveLength(0);

    // A static bearer token refused twice (re-read once in between), then 403, reset and hang.
    const fhir = await serve([{ status: 401 }, { status: 401 }, operationOutcome(403, 'no'), RESET, HANG]);
    const c = client(fhir, { auth: { type: 'bearer', token: { env: 'T' } } }, { T: SECRET });
    for (let i = 0; i < 4; i++) outcomes.push(await c.deliver(bundle, { timeoutMs: 300 }));
    expect(outcomes.slice(2).map((o) => [o.kind, 'reason' in o ? o.reason : o.status])).toEqual([
      ['retry', 'auth'],
      ['rejected', 403],
      ['retry', 'network'],
      ['retry', 'timeout'],
    ]);
    expect(fhir.requests.every((r) => r.headers.authorization === `Bearer ${SECRET}`)).toBe(true);
    for (const o of outcomes) expect(JSON.stringify(o)).not.toContain(SECRET);
  });
});

describe('conditional-put mode', () => {
  it('sends each entry in order, conditional headers set, urn:uuid references rewritten', async () => {
    const ids = ['pat-1', 'enc-1', 'obs-1'];
    const types = ['Patient', 'Encounter', 'Observation'];
    const server = await serve((_req, i) => created(types[i] ?? '?', ids[i] ?? '?'));
    const out = await client(server, { mode: 'conditional-put', headers: { 'x-tenant': 'n' } }).deliver(
      bundle,
    );
    expect(out).toMatchObject({ kind: 'delivered', status: 201 });
    expect(server.requests.map((r) => `${r.method} ${r.url}`)).toEqual([
      'PUT /fhir/Patient?identifier=urn%3Amrn%7C123',
      'POST /fhir/Encounter',
      'PUT /fhir/Observation?identifier=urn%3Aobx%7C1',
    ]);
    expect(server.requests[1]?.headers['if-none-exist']).toBe('identifier=urn%3Avisit%7C9');
    expect(server.requests.every((r) => r.headers['content-type'] === 'application/fhir+json')).toBe(true);
    expect(server.requests.every((r) => r.headers['x-tenant'] === 'n')).toBe(true);
    expect(JSON.parse(server.requests[1]?.body ?? '').subject).toEqual({ reference: 'Patient/pat-1' });
    expect(JSON.parse(server.requests[2]?.body ?? '')).toMatchObject({
      subject: { reference: 'Patient/pat-1' },
      encounter: { reference: 'Encounter/enc-1' },
    });
    const summary = JSON.parse((out as { body: string }).body);
    expect(summary.type).toBe('batch-response');
    expect(summary.entry.map((e: { response: { location: string } }) => e.response.location)).toEqual([
      'Patient/pat-1/_history/1',
      'Encounter/enc-1/_history/1',
      'Observation/obs-1/_history/1',
    ]);
  });

  it('stops at the first failing entry and classifies the delivery by it', async () => {
    const rejecting = await serve([created('Patient', 'p'), operationOutcome(422, 'bad encounter')]);
    const out = await client(rejecting, { mode: 'conditional-put' }).deliver(bundle);
    expect(out).toMatchObject({ kind: 'rejected', status: 422, entryIndex: 1 });
    expect((out as { body: string }).body).toContain('bad encounter');
    expect(rejecting.requests).toHaveLength(2);

    const busy = await serve([created('Patient', 'p'), created('Encounter', 'e'), unavailable('2')]);
    expect(await client(busy, { mode: 'conditional-put' }).deliver(bundle)).toEqual({
      kind: 'retry',
      reason: 'status',
      status: 503,
      retryAfterMs: 2000,
      entryIndex: 2,
    });
    expect(busy.requests).toHaveLength(3);
  });
});
