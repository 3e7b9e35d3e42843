import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { KmsTestServer } from '../../test/support/kms-server.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import { migrate } from '../store/migrations.js';
import { PgDb } from '../store/pg-db.js';
import { PgliteDb } from '../store/pglite-db.js';
import { AwsKmsProvider } from './aws-kms-provider.js';
import { open, recordAad, seal } from './envelope.js';
import type { KeyContext, KeyProvider, WrappedKey } from './key-provider.js';
import { KeyRing, type KeyRingOptions } from './keyring.js';
import { LocalKeyProvider } from './local-key-provider.js';

/** Delegates to a real provider and counts what the ring asks of it. */
class CountingProvider implements KeyProvider {
  readonly calls = { generate: 0, decrypt: 0, rewrap: 0, current: 0 };
  constructor(readonly inner: KeyProvider) {}
  get name() {
    return this.inner.name;
  }
  generateDataKey(context: KeyContext) {
    this.calls.generate += 1;
    return this.inner.generateDataKey(context);
  }
  decryptDataKey(wrapped: WrappedKey, context: KeyContext) {
    this.calls.decrypt += 1;
    return this.inner.decryptDataKey(wrapped, context);
  }
  rewrapDataKey(wrapped: WrappedKey, context: KeyContext) {
    this.calls.rewrap += 1;
    return this.inner.rewrapDataKey(wrapped, context);
  }
  rotateMasterKey() {
    return this.inner.rotateMasterKey();
  }
  currentMasterKeyId() {
    this.calls.current += 1;
    return this.inner.currentMasterKeyId();
  }
  close() {
    return this.inner.close();
  }
}

class Clock {
  t = 1_700_000_000_000;
  readonly now = (): number => this.t;
}

const credentials = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret-not-real' };
const DAY = 86_400_000;

describe('KeyRing on Postgres', () => {
  let tdb: TestDatabase;
  let db: PgDb;
  let repo: DataKeyRepo;
  let dir: string;
  let keyFile: string;
  const kms = new KmsTestServer({ credentials });
  let kmsEndpoint: string;
  const closers: Array<{ close(): Promise<void> }> = [];

  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    closers.push(x);
    return x;
  };

  const localProvider = async (file = keyFile) =>
    track(new CountingProvider(await LocalKeyProvider.open(file)));

  const kmsProvider = () => {
    const key = kms.createKey();
    return track(
      new CountingProvider(
        new AwsKmsProvider({ keyId: key.keyId, endpoint: kmsEndpoint, region: 'us-east-1', credentials }),
      ),
    );
  };

  const ring = (provider: KeyProvider, opts: Partial<KeyRingOptions> = {}) =>
    track(new KeyRing({ provider, repo, maxAgeMs: DAY, maxRecords: 1_000_000, cacheMs: 60_000, ...opts }));

  beforeAll(async () => {
    tdb = await createTestDatabase('keyring');
    db = new PgDb({ connectionString: tdb.url });
    await migrate(db);
    repo = new DataKeyRepo(db);
    dir = await mkdtemp(join(tmpdir(), 'hl7e-keyring-'));
    keyFile = join(dir, 'master-keys.json');
    ({ endpoint: kmsEndpoint } = await kms.start());
  });

  beforeEach(async () => {
    await db.query('DELETE FROM data_keys');
  });

  afterAll(async () => {
    for (const c of closers.reverse()) await c.close();
    await db?.close();
    await tdb?.drop();
    await kms.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('rotates after maxRecords records, retiring the old key', async () => {
    const provider = await localProvider();
    const r = ring(provider, { maxRecords: 3 });
    const ids: string[] = [];
    for (let i = 0; i < 7; i++) ids.push((await r.encryptionKey()).id);
    const [a, b, c] = [ids[0]!, ids[3]!, ids[6]!];
    expect(ids).toEqual([a, a, a, b, b, b, c]);
    expect(new Set([a, b, c]).size).toBe(3);
    expect(a).toMatch(/^dk_[0-9a-f]{32}$/);
    expect(provider.calls.generate).toBe(3);
    const stored = await repo.list();
    expect(stored.map((k) => k.id).sort()).toEqual([a, b, c].sort());
    const retired = Object.fromEntries(stored.map((k) => [k.id, k.retiredAt !== null]));
    expect(retired).toEqual({ [a]: true, [b]: true, [c]: false });
    expect(stored.every((k) => k.provider === 'local')).toBe(true);
  });

  it('rotates when the key reaches maxAgeMs (injected clock)', async () => {
    const clock = new Clock();
    const r = ring(await localProvider(), { maxAgeMs: 1_000, now: clock.now });
    const first = (await r.encryptionKey()).id;
    clock.t += 999;
    expect((await r.encryptionKey()).id).toBe(first);
    clock.t += 1;
    const second = (await r.encryptionKey()).id;
    expect(second).not.toBe(first);
    clock.t += 500;
    expect((await r.encryptionKey()).id).toBe(second);
  });

  it('rotates the data key after the master key changed, checking at most every masterCheckMs', async () => {
    const file = join(dir, 'master-change.json');
    const provider = await localProvider(file);
    const clock = new Clock();
    const r = ring(provider, { masterCheckMs: 5_000, now: clock.now });
    const first = await r.encryptionKey();
    for (let i = 0; i < 100; i++) await r.encryptionKey();
    expect(provider.calls.current).toBe(0); // not per record

    // The CLI rotates the master key in another process (another instance on the same file).
    const cli = track(await LocalKeyProvider.open(file));
    const { masterKeyId } = await cli.rotateMasterKey();
    clock.t += 4_999;
    expect((await r.encryptionKey()).id).toBe(first.id);
    expect(provider.calls.current).toBe(0);
    clock.t += 1;
    expect((await r.encryptionKey()).id).toBe(first.id); // starts the check; this record keeps the old key
    expect(await r.checkMasterKey()).toBe(true);
    expect(provider.calls.current).toBe(1);
    const next = await r.encryptionKey();
    expect(next.id).not.toBe(first.id);
    expect((await repo.get(next.id))?.masterKeyId).toBe(masterKeyId);
    expect((await repo.get(first.id))?.retiredAt).not.toBeNull();
  });

  it('shares one generation among concurrent callers during a rotation', async () => {
    const clock = new Clock();
    const provider = await localProvider();
    const r = ring(provider, { maxAgeMs: 1_000, now: clock.now });
    const initial = await Promise.all(Array.from({ length: 20 }, () => r.encryptionKey()));
    expect(new Set(initial.map((k) => k.id)).size).toBe(1);
    expect(provider.calls.generate).toBe(1);

    clock.t += 1_000; // due
    const during = await Promise.all(Array.from({ length: 50 }, () => r.encryptionKey()));
    expect(provider.calls.generate).toBe(2);
    expect(new Set(during.map((k) => k.id)).size).toBe(1);
    expect(during[0]!.id).not.toBe(initial[0]!.id);
    expect(await repo.list()).toHaveLength(2);

    // rotateDataKey while callers wait shares the same generation too.
    const [forced, ...others] = await Promise.all([
      r.rotateDataKey(),
      ...Array.from({ length: 10 }, () => r.encryptionKey()),
    ]);
    expect(provider.calls.generate).toBe(3);
    expect(others.every((k) => k.id === forced!.id)).toBe(true);
  });

  it('serves decryption keys from memory and re-decrypts through KMS after cacheMs unused', async () => {
    const provider = kmsProvider();
    const clock = new Clock();
    const writer = ring(provider, { maxRecords: 1, now: clock.now });
    const a = await writer.encryptionKey();
    const b = await writer.encryptionKey();
    const aKey = Buffer.from(a.key);
    const bKey = Buffer.from(b.key);

    const reader = ring(provider, { cacheMs: 10_000, now: clock.now });
    const decryptsBefore = kms.calls.Decrypt ?? 0;
    const concurrent = await Promise.all(Array.from({ length: 10 }, () => reader.decryptionKey(a.id)));
    expect(concurrent.every((k) => k.equals(aKey))).toBe(true);
    expect((kms.calls.Decrypt ?? 0) - decryptsBefore).toBe(1); // one shared load
    const held = concurrent[0]!;

    clock.t += 9_000;
    expect((await reader.decryptionKey(a.id)).equals(aKey)).toBe(true); // refreshes its last use
    expect((await reader.decryptionKey(b.id)).equals(bKey)).toBe(true);
    expect((kms.calls.Decrypt ?? 0) - decryptsBefore).toBe(2);
    clock.t += 9_000;
    expect((await reader.decryptionKey(a.id)).equals(aKey)).toBe(true);
    expect((kms.calls.Decrypt ?? 0) - decryptsBefore).toBe(2);

    clock.t += 10_001; // both unused for longer than cacheMs
    expect(held.equals(Buffer.alloc(32))).toBe(false);
    expect((await reader.decryptionKey(a.id)).equals(aKey)).toBe(true);
    expect(held.equals(Buffer.alloc(32))).toBe(true); // the evicted copy was zeroed
    expect((kms.calls.Decrypt ?? 0) - decryptsBefore).toBe(3);
    expect(provider.calls.decrypt).toBe(3);
  });

  it('answers the current key from memory and KEY_UNKNOWN for an id not in the store', async () => {
    const provider = await localProvider();
    const r = ring(provider);
    const cur = await r.encryptionKey();
    expect((await r.decryptionKey(cur.id)).equals(cur.key)).toBe(true);
    expect(provider.calls.decrypt).toBe(0);
    await expect(r.decryptionKey('dk_missing')).rejects.toMatchObject({
      code: 'KEY_UNKNOWN',
      details: { keyId: 'dk_missing' },
    });
  });

  it('stores data keys only wrapped', async () => {
    for (const provider of [await localProvider(), kmsProvider()]) {
      const r = ring(provider, { maxRecords: 2 });
      const plain: Buffer[] = [];
      for (let i = 0; i < 8; i++) plain.push(Buffer.from((await r.encryptionKey()).key));
      const { rows } = await db.query<Record<string, unknown>>('SELECT * FROM data_keys');
      expect(rows.length).toBeGreaterThanOrEqual(4);
      const atRest = Buffer.concat(
        rows.flatMap((row) =>
          Object.values(row).map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v), 'utf8'))),
        ),
      );
      for (const key of plain) {
        expect(atRest.includes(key)).toBe(false);
        expect(atRest.includes(Buffer.from(key.toString('hex')))).toBe(false);
        expect(atRest.includes(Buffer.from(key.toString('base64')))).toBe(false);
      }
      for (const row of rows) expect((row.wrapped_key as Buffer).length).toBeGreaterThan(32);
    }
  });

  it('rewrapAll moves every key to the new master key and everything still decrypts (local file)', async () => {
    const file = join(dir, 'rewrap.json');
    await rewrapScenario(await localProvider(file), () => LocalKeyProvider.open(file).then(track));
  });

  it('rewrapAll moves every key to the new key material and everything still decrypts (KMS)', async () => {
    const provider = kmsProvider();
    await rewrapScenario(provider, async () => provider);
    const stored = await repo.list();
    expect(stored.every((k) => k.masterKeyId.includes('#'))).toBe(true);
  });

  async function rewrapScenario(provider: CountingProvider, rotator: () => Promise<KeyProvider>) {
    const writer = ring(provider, { maxRecords: 1 });
    const records: Array<{ keyId: string; messageId: string; sealed: ReturnType<typeof seal> }> = [];
    for (let i = 0; i < 5; i++) {
      const { id, key } = await writer.encryptionKey();
      const messageId = `0190c3a2-5b7e-7c1d-9a4f-3e2b1c0d9e8${i}`;
      records.push({
        keyId: id,
        messageId,
        sealed: seal(key, Buffer.from(`MSH|record ${i}`), recordAad('lab', messageId)),
      });
    }
    const oldMaster = await provider.currentMasterKeyId();
    const { masterKeyId } = await (await rotator()).rotateMasterKey();
    expect(masterKeyId).not.toBe(oldMaster);

    expect(await writer.rewrapAll()).toEqual({ rewrapped: 5, total: 5 });
    const stored = await repo.list();
    expect(stored.every((k) => k.masterKeyId === masterKeyId)).toBe(true);
    expect(await writer.rewrapAll()).toEqual({ rewrapped: 0, total: 5 });

    // A fresh ring (nothing cached) reads every record back through the rewrapped keys.
    const reader = ring(provider);
    for (const [i, r] of records.entries()) {
      const key = await reader.decryptionKey(r.keyId);
      expect(open(key, r.sealed, recordAad('lab', r.messageId), `rec${i}`).toString()).toBe(
        `MSH|record ${i}`,
      );
    }
    expect(provider.calls.rewrap).toBe(5);
  }

  it('zeroes every key it holds on close and refuses use afterwards', async () => {
    const r = ring(await localProvider(), { maxRecords: 1 });
    const first = await r.encryptionKey();
    const second = await r.encryptionKey(); // first moves to the decryption cache
    const cached = await r.decryptionKey(first.id);
    await r.close();
    expect(cached.equals(Buffer.alloc(32))).toBe(true);
    expect(second.key.equals(Buffer.alloc(32))).toBe(true);
    await expect(r.encryptionKey()).rejects.toMatchObject({ code: 'KEY_PROVIDER_REFUSED' });
    await r.close();
  });

  it('surfaces a KMS outage during rotation as KEY_PROVIDER_UNAVAILABLE to every waiting caller', async () => {
    const key = kms.createKey();
    const provider = track(
      new AwsKmsProvider({
        keyId: key.keyId,
        endpoint: kmsEndpoint,
        region: 'us-east-1',
        credentials,
        maxAttempts: 1,
        deadlineMs: 1_000,
      }),
    );
    const r = ring(provider);
    kms.fail('http500');
    try {
      const results = await Promise.allSettled(Array.from({ length: 5 }, () => r.encryptionKey()));
      expect(results.every((x) => x.status === 'rejected')).toBe(true);
      for (const x of results) {
        expect((x as PromiseRejectedResult).reason).toMatchObject({ code: 'KEY_PROVIDER_UNAVAILABLE' });
      }
    } finally {
      kms.fail('none');
    }
    expect((await r.encryptionKey()).key).toHaveLength(32); // and recovers
  });
});

describe('KeyRing on PGlite (in memory)', () => {
  let db: PgliteDb;
  let dir: string;

  beforeAll(async () => {
    db = await PgliteDb.open();
    await migrate(db);
    dir = await mkdtemp(join(tmpdir(), 'hl7e-keyring-pglite-'));
  });

  afterAll(async () => {
    await db?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('encrypts, rotates, rewraps and decrypts with wrapped keys in the embedded store', async () => {
    const repo = new DataKeyRepo(db);
    const provider = await LocalKeyProvider.open(join(dir, 'keys.json'));
    const writer = new KeyRing({ provider, repo, maxAgeMs: DAY, maxRecords: 2, cacheMs: 1_000 });
    const messageId = '0190c3a2-5b7e-7c1d-9a4f-3e2b1c0d9e8f';
    const sealed: Array<{ id: string; s: ReturnType<typeof seal> }> = [];
    for (let i = 0; i < 5; i++) {
      const { id, key } = await writer.encryptionKey();
      sealed.push({ id, s: seal(key, Buffer.from(`record ${i}`), recordAad('adt', messageId)) });
    }
    expect(new Set(sealed.map((x) => x.id)).size).toBe(3);
    const stored = await repo.list();
    expect(stored).toHaveLength(3);
    expect(stored.every((k) => Buffer.isBuffer(k.wrappedKey) && k.wrappedKey.length === 60)).toBe(true);

    await provider.rotateMasterKey();
    expect(await writer.rewrapAll()).toEqual({ rewrapped: 3, total: 3 });

    const reader = new KeyRing({ provider, repo, maxAgeMs: DAY, maxRecords: 2, cacheMs: 1_000 });
    for (const [i, x] of sealed.entries()) {
      const key = await reader.decryptionKey(x.id);
      expect(open(key, x.s, recordAad('adt', messageId), `r${i}`).toString()).toBe(`record ${i}`);
    }
    await reader.close();
    await writer.close();
    await provider.close();
  });
});
