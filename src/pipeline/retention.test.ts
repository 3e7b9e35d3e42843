import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { sealBody } from '../archive/delivery-bodies.js';
import { KeyRing } from '../archive/keyring.js';
import { LocalKeyProvider } from '../archive/local-key-provider.js';
import { RawArchive } from '../archive/raw-archive.js';
import { AUDIT_MIN_MS } from '../config/retention-config.js';
import { EngineError } from '../errors.js';
import { AuditLog } from '../observability/audit-log.js';
import { AuditRepo } from '../store/audit-repo.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import type { Db } from '../store/db.js';
import { DeliveryRepo } from '../store/delivery-repo.js';
import { newMessageId } from '../store/message-id.js';
import { MessageRepo } from '../store/message-repo.js';
import { type OpenedStore, openStore } from '../store/open-store.js';
import { type RetentionReport, runRetention } from './retention.js';

// Retention against a real store (Postgres and PGlite), a real archive and a real keyring. Times are
// set on the rows (received_at, body and key stamps) the way days of traffic would have left them, and
// each run gets its own `now`: a message per class of fate, and the keys those days were sealed under.

const backends = [
  {
    name: 'postgres',
    async open(dataDir: string) {
      const tdb = await createTestDatabase('retention');
      return { store: await openStore({ databaseUrl: tdb.url, dataDir }), drop: () => tdb.drop() };
    },
  },
  {
    name: 'pglite',
    async open(dataDir: string) {
      return { store: await openStore({ databaseUrl: undefined, dataDir }), drop: async () => {} };
    },
  },
];

const DAY = 86_400_000;
const NOW = new Date('2026-06-01T12:00:00Z');
const daysAgo = (d: number) => new Date(Date.UTC(2026, 5, 1) - d * DAY + 10 * 3_600_000);
const POLICY = { raw: 30 * DAY, mapped: 50 * DAY, metadata: 60 * DAY, audit: AUDIT_MIN_MS };
const ORDER_SECRET = 'ks_delivery_order_v1';

describe.each(backends)('runRetention on $name', (backend) => {
  let dataDir: string;
  let archiveDir: string;
  let store: OpenedStore;
  let drop: () => Promise<void> = async () => {};
  let db: Db;
  let provider: LocalKeyProvider;
  let ring: KeyRing;
  let archive: RawArchive;
  let audit: AuditLog;
  let clock = NOW;
  /** Message name → id, and day (days before NOW) → the data key sealed that day. */
  const ids: Record<string, string> = {};
  const keyOf: Record<number, string> = {};
  const files: Record<number, string> = {};
  const reads: Record<string, Parameters<RawArchive['read']>[0]> = {};

  /** One message received `day` days before NOW, with one delivery ending in `outcome` (request + response kept). */
  const receive = async (
    name: string,
    day: number,
    outcome: 'delivered' | 'held' | null,
    collisionOf: string | null = null,
  ) => {
    const receivedAt = daysAgo(day);
    const id = newMessageId(receivedAt.getTime());
    const raw = Buffer.from(`MSH|^~\\&|LIS|LAB|EHR|HOSP|${day}||ORU^R01|${name}|P|2.5.1\r`);
    const [rec] = await archive.write([{ channel: 'lab', messageId: id, receivedAt, raw }]);
    if (!rec) throw new Error('archive write returned nothing');
    keyOf[day] = rec.keyId;
    files[day] = rec.location.file;
    const sha256 = createHash('sha256').update(raw).digest();
    reads[name] = { channel: 'lab', messageId: id, location: rec.location, sha256 };
    await new MessageRepo(db).insertMany([
      {
        id,
        channel: 'lab',
        sender: 'LIS|LAB',
        controlId: name,
        messageType: 'ORU^R01',
        version: '2.5.1',
        receivedAt,
        connectionId: 'c1',
        status: 'received',
        ackCode: 'AA',
        errorCode: null,
        partition: 0,
        collisionOf,
        sha256,
        byteLength: raw.length,
        dataKeyId: rec.keyId,
        archiveFile: rec.location.file,
        archiveOffset: rec.location.offset,
        archiveLength: rec.location.length,
      },
    ]);
    ids[name] = id;
    await db.query(`INSERT INTO message_events (message_id, at, event) VALUES ($1, $2, 'received')`, [
      id,
      receivedAt.toISOString(),
    ]);
    if (!outcome) return;
    await db.query(`UPDATE messages SET status = 'processed' WHERE id = $1`, [id]);
    const { rows } = await db.query<{ seq: number }>('SELECT seq FROM messages WHERE id = $1', [id]);
    const deliveries = new DeliveryRepo(db);
    const [ref] = await db.transaction((tx) =>
      deliveries.createPendingMany(tx, [
        { messageId: id, channel: 'lab', seq: rows[0]?.seq as number, destinations: ['ehr'] },
      ]),
    );
    const deliveryId = ref?.id as string;
    const bodies = [
      await sealBody(ring, { deliveryId, attempt: 1, kind: 'request' }, `{"bundle":"${name}"}`),
      await sealBody(ring, { deliveryId, attempt: 1, kind: 'response' }, '{"ok":true}'),
    ];
    await deliveries.recordAttempt({
      deliveryId,
      messageId: id,
      attempt: 1,
      startedAt: receivedAt,
      outcome,
      errorClass: outcome === 'held' ? 'http_409' : null,
      statusCode: outcome === 'held' ? 409 : 200,
      ackCode: null,
      retryAfterMs: null,
      nextAttemptAt: null,
      bodies,
    });
    await db.query('UPDATE delivery_bodies SET created_at = $2 WHERE delivery_id = $1', [
      deliveryId,
      new Date(receivedAt.getTime() + 60_000).toISOString(),
    ]);
  };

  /** The keyring rotates daily: a fresh key for each simulated day, stamped with that day's times. */
  const day = async (d: number, messages: () => Promise<void>) => {
    await ring.rotateDataKey();
    await messages();
    const start = new Date(Date.UTC(2026, 5, 1) - d * DAY);
    await db.query('UPDATE data_keys SET created_at = $2, retired_at = $3 WHERE id = $1', [
      keyOf[d],
      start.toISOString(),
      d > 2 ? new Date(start.getTime() + DAY).toISOString() : null,
    ]);
  };

  const run = (now: Date): Promise<RetentionReport> => {
    clock = now;
    return runRetention({ db, archiveDir, audit, keys: ring, now: () => now, batchSize: 2 }, POLICY);
  };

  const keyRow = async (id: string) =>
    (
      await db.query<{ destroyed_at: Date | null; len: number }>(
        'SELECT destroyed_at, length(wrapped_key) AS len FROM data_keys WHERE id = $1',
        [id],
      )
    ).rows[0];
  const count = async (sql: string, params: unknown[] = []) =>
    (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${sql}`, params)).rows[0]?.n;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), `hl7e-retention-${backend.name}-`));
    archiveDir = join(dataDir, 'archive');
    ({ store, drop } = await backend.open(dataDir));
    db = store.db;
    provider = await LocalKeyProvider.open(join(dataDir, 'master-key.json'));
    const keyRing = () =>
      new KeyRing({
        provider,
        repo: new DataKeyRepo(db),
        maxAgeMs: DAY,
        maxRecords: 1_000_000,
        cacheMs: 60_000,
      });
    ring = keyRing();
    archive = new RawArchive(archiveDir, ring, 'w1');
    audit = new AuditLog(new AuditRepo(db), () => clock);

    await ring.namedSecret(ORDER_SECRET);
    await db.query(`UPDATE data_keys SET created_at = $2 WHERE id = $1`, [
      ORDER_SECRET,
      daysAgo(400).toISOString(),
    ]);
    // Seven years ago an operator looked at something; a year ago too.
    clock = new Date(NOW.getTime() - 7 * 366 * DAY);
    for (const who of ['alice', 'bob', 'carol']) {
      await audit.record({
        actor: who,
        action: 'messages.reveal',
        target: 'm',
        reason: 'INC-1',
        outcome: 'allowed',
      });
    }
    clock = new Date(NOW.getTime() - 366 * DAY);
    await audit.record({ actor: 'dave', action: 'replay', target: 'm', reason: 'INC-2', outcome: 'allowed' });

    // 90 days ago: past every content retention and past metadata.
    await day(90, async () => {
      await receive('a', 90, 'delivered');
      await receive('b', 90, 'delivered');
    });
    // 45 days ago: raw past retention; its bodies (mapped: 50d) not yet; metadata stays.
    await day(45, async () => {
      await receive('c', 45, 'delivered');
      await receive('d', 45, null);
      await db.query(`UPDATE messages SET status = 'processed' WHERE id = $1`, [ids.d]); // filtered out
    });
    // 40 days ago: a delivery held for an operator keeps its file, and so its key, alive. `i` repeats
    // b's control id with other content: a collision that points at b.
    await day(40, async () => {
      await receive('e', 40, 'held');
      await receive('i', 40, 'delivered', ids.b);
    });
    // Two days ago: recent traffic, under the key in use now.
    await day(2, async () => {
      await receive('f', 2, 'delivered');
    });
  }, 60_000);

  afterAll(async () => {
    await ring?.close();
    await provider?.close();
    await store?.close();
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('prunes each class by its own retention, shreds only keys nothing kept is under, audits it', async () => {
    // A backup of the archive taken before the prune.
    const backupDir = join(dataDir, 'backup');
    const copy = join(backupDir, files[90] as string);
    mkdirSync(dirname(copy), { recursive: true });
    copyFileSync(join(archiveDir, files[90] as string), copy);
    expect((await new RawArchive(backupDir, ring, 'b1').read(reads.a!)).toString()).toContain('|a|');

    const r = await run(NOW);

    expect(r).toEqual({
      at: NOW.toISOString(),
      raw: { files: 2, bytes: expect.any(Number), messages: 4, keptFiles: 1, notRemoved: 0 },
      mapped: { bodies: 4 }, // a's and b's; c's are 45 days old, mapped keeps 50
      // a only: b is still pointed at by the collision i, which stays.
      metadata: { messages: 1, events: 1, deliveries: 1, attempts: 1, bodies: 0 },
      audit: { entries: 3 },
      keys: { destroyed: 1, inUse: 2 },
      failed: [],
      stopped: false,
    });
    expect(existsSync(join(archiveDir, files[90] as string))).toBe(false);
    expect(existsSync(join(archiveDir, files[45] as string))).toBe(false);
    expect(existsSync(join(archiveDir, files[40] as string))).toBe(true);
    expect(await count('messages WHERE id = $1', [ids.a])).toBe(0);
    expect(
      await count('messages WHERE id = ANY($1::uuid[]) AND archive_pruned_at IS NOT NULL', [
        [ids.b, ids.c, ids.d],
      ]),
    ).toBe(3);
    expect(await count('delivery_bodies')).toBe(2 + 2 + 2 + 2); // c, e, i, f

    // The 90-day key is gone for good; the others hold something kept; the ordering secret is never touched.
    expect(await keyRow(keyOf[90] as string)).toEqual({ destroyed_at: NOW, len: 0 });
    expect((await keyRow(keyOf[45] as string))?.destroyed_at).toBeNull(); // c's bodies
    expect((await keyRow(keyOf[40] as string))?.destroyed_at).toBeNull(); // e is held
    expect((await keyRow(keyOf[2] as string))?.destroyed_at).toBeNull();
    expect(await keyRow(ORDER_SECRET)).toMatchObject({ destroyed_at: null, len: 60 });

    // The backup copy of a pruned file: its records name a destroyed key.
    const restored = new KeyRing({
      provider,
      repo: new DataKeyRepo(db),
      maxAgeMs: DAY,
      maxRecords: 10,
      cacheMs: 60_000,
    });
    try {
      const err = await new RawArchive(backupDir, restored, 'b2').read(reads.a!).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineError);
      expect(err).toMatchObject({ code: 'KEY_DESTROYED', details: { keyId: keyOf[90] } });
      expect((err as Error).message).toBe(
        `data key ${keyOf[90]} was destroyed by retention (crypto-shredding): its records cannot be decrypted`,
      );
      // This process forgot it too, and a master-key rotation does not bring it back.
      await expect(ring.decryptionKey(keyOf[90] as string)).rejects.toMatchObject({ code: 'KEY_DESTROYED' });
      await provider.rotateMasterKey();
      const { rewrapped, total } = await restored.rewrapAll();
      expect([rewrapped, total]).toEqual([total - 1, total]);
      expect((await keyRow(keyOf[90] as string))?.len).toBe(0);
    } finally {
      await restored.close();
    }

    // Kept records still read.
    expect((await archive.read(reads.e!)).toString()).toContain('|e|');

    const rows = await new AuditRepo(db).list();
    expect(rows.map((x) => [x.actor, x.action])).toEqual([
      ['dave', 'replay'],
      ['engine', 'archive.prune'],
      ['engine', 'audit.prune'],
      ['engine', 'retention.prune'],
    ]);
    expect(rows.at(-1)).toMatchObject({
      target: 'retention policy: raw 30d, mapped 50d, metadata 60d, audit 6y',
      outcome:
        'raw: 2 files, 4 messages, 1 files kept in flight; mapped: 4 bodies; metadata: 1 messages, 1 deliveries, 1 attempts, 1 events, 0 bodies; audit: 3 entries; keys: 1 destroyed, 2 still in use',
    });
    expect(await audit.verify()).toMatchObject({ checked: 4, firstBreak: null });
  });

  it('ten days later: the bodies past mapped go, and then their key', async () => {
    const later = new Date(NOW.getTime() + 10 * DAY);
    const r = await run(later);
    expect(r).toMatchObject({
      raw: { files: 0, messages: 0, keptFiles: 1 },
      mapped: { bodies: 4 }, // c's, and i's: 40 days old now; e's stay with its held delivery
      metadata: { messages: 0 },
      audit: { entries: 0 },
      keys: { destroyed: 1, inUse: 1 },
      failed: [],
    });
    expect((await keyRow(keyOf[45] as string))?.destroyed_at).toEqual(later);
    // One held message keeps its whole day's key.
    expect((await keyRow(keyOf[40] as string))?.destroyed_at).toBeNull();
    expect(await count('messages WHERE id = $1', [ids.b])).toBe(1);
    expect((await audit.verify()).firstBreak).toBeNull();
  });

  it('classes kept forever are left alone; the run is still audited', async () => {
    const forever = Number.POSITIVE_INFINITY;
    const later = new Date(NOW.getTime() + 400 * DAY);
    clock = later;
    const before = await count('messages');
    const r = await runRetention(
      { db, archiveDir, audit, now: () => later },
      { raw: forever, mapped: forever, metadata: forever, audit: forever },
    );
    expect(r).toMatchObject({ raw: null, mapped: null, metadata: null, audit: null, keys: null, failed: [] });
    expect(existsSync(join(archiveDir, files[40] as string))).toBe(true);
    expect(await count('messages')).toBe(before);
    expect((await new AuditRepo(db).list()).at(-1)).toMatchObject({
      target: 'retention policy: raw never, mapped never, metadata never, audit never',
      outcome: 'raw: kept; mapped: kept; metadata: kept; audit: kept; keys: kept',
    });
  });
});
