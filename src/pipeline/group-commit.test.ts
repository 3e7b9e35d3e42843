import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { readRecordBytes } from '../archive/archive-files.js';
import { KeyRing } from '../archive/keyring.js';
import { LocalKeyProvider } from '../archive/local-key-provider.js';
import { RawArchive } from '../archive/raw-archive.js';
import { EngineError } from '../errors.js';
import { parse, readMshHeader } from '../hl7/index.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import { MessageRepo } from '../store/message-repo.js';
import { migrate } from '../store/migrations.js';
import { PgDb } from '../store/pg-db.js';
import { type DuplicatePolicyMs, GroupCommit, type GroupCommitOptions, senderOf } from './group-commit.js';
import type { ReceivedMessage, Stored, Verdict } from './message-sink.js';

// Synthetic data only. The patient name is distinctive so that a leak into an error is detectable.
const PATIENT = 'Zqxtestpatient^Wilhelmina^Q';
const DAY = 86_400_000;
const BASE = Date.parse('2026-01-05T10:00:00.000Z');

function hl7(controlId: string, opts: { mrn?: string; obx?: string; sender?: string } = {}): string {
  return [
    `MSH|^~\\&|${opts.sender ?? 'LABAPP'}|LABFAC|HL7E|HOSP|20260105100000||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE`,
    `PID|1||${opts.mrn ?? 'MRN-1001'}^^^HOSP^MR||${PATIENT}||19800101|F`,
    'OBR|1|PL-1|FL-1|GLU^Glucose^L',
    `OBX|1|NM|GLU^Glucose^L||${opts.obx ?? '98'}|mg/dL|70-99|N|||F`,
  ].join('\r');
}

function received(channel: string, text: string, receivedAt = new Date(BASE)): ReceivedMessage {
  return {
    channel,
    raw: Buffer.from(text, 'utf8'),
    charset: { hl7Name: '', encoding: 'utf8' },
    header: readMshHeader(text),
    message: parse(text),
    receivedAt,
    connectionId: 'conn-test-1',
  };
}

const accept = (partition = 0): Verdict => ({ outcome: 'accept', ackCode: 'AA', partition });
const rejectType = (): Verdict => ({
  outcome: 'reject',
  ackCode: 'AR',
  partition: 0,
  error: new EngineError('INTAKE_REJECTED_TYPE', {}, { segment: 'MSH', segmentIndex: 1, field: 9 }),
});

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err,
  );
}

interface Harness {
  gc: GroupCommit;
  batches: { size: number; stored: number; duplicates: number }[];
  committed: { id: string; partition: number }[];
  /** The raw bytes handed over with each committed id (for processing's handoff). */
  raws: Map<string, Buffer>;
  pressure: boolean[];
  failures: unknown[];
}

let tdb: TestDatabase;
let db: PgDb;
let repo: MessageRepo;
let dir: string;
let provider: LocalKeyProvider;
let keyring: KeyRing;
let archive: RawArchive;
const open: GroupCommit[] = [];

function harness(opts: Partial<GroupCommitOptions> & { policy?: DuplicatePolicyMs } = {}): Harness {
  const h: Omit<Harness, 'gc'> = {
    batches: [],
    committed: [],
    raws: new Map(),
    pressure: [],
    failures: [],
  };
  const { policy, ...rest } = opts;
  const gc = new GroupCommit({
    repo,
    archive,
    duplicatePolicy: () => policy ?? { windowMs: DAY, onCollision: 'process' },
    maxBatch: 500,
    highWater: 10_000,
    maxPending: 20_000,
    // Far above anything this test waits for: the sweeper must never answer for a slow machine.
    commitTimeoutMs: 120_000,
    onCommitted: (ms) => {
      for (const { id, partition, raw } of ms) {
        h.committed.push({ id, partition });
        h.raws.set(id, raw);
      }
    },
    onPressure: (high) => h.pressure.push(high),
    onBatch: ({ size, stored, duplicates }) => h.batches.push({ size, stored, duplicates }),
    onFailure: (err) => h.failures.push(err),
    ...rest,
  });
  open.push(gc);
  return { gc, ...h };
}

async function rowsOf(channel: string) {
  const { rows } = await db.query<{
    id: string;
    channel: string;
    sender: string;
    control_id: string;
    message_type: string;
    version: string;
    status: string;
    ack_code: string;
    error_code: string | null;
    partition: number;
    collision_of: string | null;
    duplicate_count: number;
    content_sha256: Buffer;
    byte_length: number;
    data_key_id: string;
    archive_file: string;
    archive_offset: number;
    archive_length: number;
    connection_id: string;
    received_at: Date;
  }>('SELECT * FROM messages WHERE channel = $1 ORDER BY seq', [channel]);
  return rows;
}

async function readBack(row: Awaited<ReturnType<typeof rowsOf>>[number]): Promise<Buffer> {
  return archive.read({
    channel: row.channel,
    messageId: row.id,
    sha256: row.content_sha256,
    location: { file: row.archive_file, offset: row.archive_offset, length: row.archive_length },
  });
}

beforeAll(async () => {
  tdb = await createTestDatabase('group_commit');
  db = new PgDb({ connectionString: tdb.url });
  await migrate(db);
  repo = new MessageRepo(db);
  dir = await mkdtemp(join(tmpdir(), 'hl7e-group-commit-'));
  provider = await LocalKeyProvider.open(join(dir, 'keys', 'master-keys.json'));
  keyring = new KeyRing({
    provider,
    repo: new DataKeyRepo(db),
    maxAgeMs: DAY,
    maxRecords: 1_000_000,
    cacheMs: 60_000,
  });
  archive = new RawArchive(join(dir, 'raw-archive'), keyring, 'gctest');
});

afterAll(async () => {
  for (const gc of open) await gc.close();
  await archive?.close();
  await keyring?.close();
  await provider?.close();
  await db?.close();
  await tdb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('GroupCommit', () => {
  it('commits concurrent messages in batches; each is a row and a readable encrypted record', async () => {
    const h = harness({ maxBatch: 16 });
    const inputs = Array.from({ length: 60 }, (_, i) =>
      received('gc_batch', hl7(`B-${i}`, { mrn: `MRN-${i}`, obx: String(60 + i) }), new Date(BASE + i)),
    );
    const results = await Promise.all(inputs.map((m, i) => h.gc.store(m, accept(i % 4))));
    await h.gc.close();

    // Batched: the first batch holds everything queued in the same turn, capped at maxBatch.
    expect(h.batches.reduce((n, b) => n + b.size, 0)).toBe(60);
    expect(Math.max(...h.batches.map((b) => b.size))).toBe(16);
    expect(h.batches.length).toBeLessThan(60);
    expect(h.batches.every((b) => b.size <= 16 && b.stored === b.size && b.duplicates === 0)).toBe(true);
    expect(h.failures).toEqual([]);

    for (const r of results) {
      expect(r.outcome).toBe('accept');
      expect(r.messageId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
      expect(r.duplicateOf).toBeUndefined();
      expect(r.collisionOf).toBeUndefined();
      expect(r.error).toBeUndefined();
    }
    const ids = results.map((r) => r.messageId!);
    expect(new Set(ids).size).toBe(60);

    const rows = await rowsOf('gc_batch');
    expect(rows).toHaveLength(60);
    const byId = new Map(rows.map((r) => [r.id, r]));
    for (const [i, m] of inputs.entries()) {
      const row = byId.get(ids[i]!)!;
      expect(row).toMatchObject({
        channel: 'gc_batch',
        sender: 'LABAPP|LABFAC',
        control_id: `B-${i}`,
        message_type: 'ORU^R01',
        version: '2.5.1',
        status: 'received',
        ack_code: 'AA',
        error_code: null,
        partition: i % 4,
        collision_of: null,
        byte_length: m.raw.length,
        connection_id: 'conn-test-1',
      });
      expect(row.received_at.getTime()).toBe(m.receivedAt.getTime());
      expect(row.data_key_id).toMatch(/^dk_[0-9a-f]{32}$/);
      expect(row.archive_file).toBe('gc_batch/2026-01-05.gctest.h7a');
      expect((await readBack(row)).equals(m.raw)).toBe(true);
      expect(h.raws.get(row.id)?.equals(m.raw)).toBe(true);
    }
    // Only ciphertext on disk: the archive record does not contain the patient's name.
    const firstRecord = await readRecordBytes(archive.dir, {
      file: rows[0]!.archive_file,
      offset: rows[0]!.archive_offset,
      length: rows[0]!.archive_length,
    });
    expect(firstRecord.includes(Buffer.from('Zqxtestpatient'))).toBe(false);

    // onCommitted got exactly the accepted messages, with their partitions.
    expect([...h.committed].sort((a, b) => a.id.localeCompare(b.id))).toEqual(
      ids.map((id, i) => ({ id, partition: i % 4 })).sort((a, b) => a.id.localeCompare(b.id)),
    );
  });

  it('answers a resend within the window as a duplicate with the first outcome and stores no new row', async () => {
    const h = harness({ policy: { windowMs: 60_000, onCollision: 'process' } });
    const text = hl7('D-1');
    const first = await h.gc.store(received('gc_dup', text, new Date(BASE)), accept(2));
    expect(first.outcome).toBe('accept');
    const again = await h.gc.store(received('gc_dup', text, new Date(BASE + 30_000)), accept(2));
    expect(again).toEqual({ messageId: first.messageId, outcome: 'accept', duplicateOf: first.messageId });

    // Another sender with the same MSH-10 and bytes is not a duplicate.
    const otherSender = await h.gc.store(
      received('gc_dup', hl7('D-1', { sender: 'OTHERAPP' }), new Date(BASE + 30_000)),
      accept(2),
    );
    expect(otherSender.duplicateOf).toBeUndefined();
    expect(otherSender.messageId).not.toBe(first.messageId);

    // Outside the window the same message is new again.
    const late = await h.gc.store(received('gc_dup', text, new Date(BASE + 60_001)), accept(2));
    expect(late.duplicateOf).toBeUndefined();
    expect(late.collisionOf).toBeUndefined();
    expect(late.messageId).not.toBe(first.messageId);
    await h.gc.close();

    const rows = await rowsOf('gc_dup');
    expect(rows.map((r) => r.id)).toEqual([first.messageId, otherSender.messageId, late.messageId]);
    expect(rows[0]!.duplicate_count).toBe(1);
    expect(rows[0]!.sender).toBe(senderOf(received('gc_dup', text)));
    expect(h.committed.map((c) => c.id)).toEqual([first.messageId, otherSender.messageId, late.messageId]);
    expect(h.batches.map((b) => b.duplicates)).toEqual([0, 1, 0, 0]);
  });

  it('resolves twins inside one batch as one stored message and a duplicate of it', async () => {
    const h = harness();
    const text = hl7('T-1');
    const [a, b] = await Promise.all([
      h.gc.store(received('gc_twin', text), accept(1)),
      h.gc.store(received('gc_twin', text, new Date(BASE + 1)), accept(1)),
    ]);
    await h.gc.close();
    expect(a!.duplicateOf).toBeUndefined();
    expect(b).toEqual({ messageId: a!.messageId, outcome: 'accept', duplicateOf: a!.messageId });
    const rows = await rowsOf('gc_twin');
    expect(rows.map((r) => r.id)).toEqual([a!.messageId]);
    expect(rows[0]!.duplicate_count).toBe(1);
    expect(h.committed).toEqual([{ id: a!.messageId, partition: 1 }]);
    expect(h.batches).toEqual([{ size: 2, stored: 1, duplicates: 1 }]);
  });

  it('answers a duplicate of a rejected message with the same rejection', async () => {
    const h = harness();
    const text = hl7('R-1');
    const first = await h.gc.store(received('gc_dup_reject', text), rejectType());
    expect(first.outcome).toBe('reject');
    expect(first.error?.code).toBe('INTAKE_REJECTED_TYPE');
    const again = await h.gc.store(received('gc_dup_reject', text, new Date(BASE + 5)), rejectType());
    await h.gc.close();
    expect(again.outcome).toBe('reject');
    expect(again.duplicateOf).toBe(first.messageId);
    expect(again.messageId).toBe(first.messageId);
    expect(again.error).toBeInstanceOf(EngineError);
    expect(again.error?.code).toBe('INTAKE_REJECTED_TYPE');
    const rows = await rowsOf('gc_dup_reject');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'rejected', ack_code: 'AR', error_code: 'INTAKE_REJECTED_TYPE' });
    // A rejected message is stored but never handed to processing.
    expect(h.committed).toEqual([]);
  });

  it('with onCollision process, the same MSH-10 with other content is stored and marked as a collision', async () => {
    const h = harness({ policy: { windowMs: DAY, onCollision: 'process' } });
    const first = await h.gc.store(received('gc_coll_p', hl7('C-1', { obx: '98' })), accept(3));
    const second = await h.gc.store(
      received('gc_coll_p', hl7('C-1', { obx: '140' }), new Date(BASE + 1_000)),
      accept(3),
    );
    await h.gc.close();
    expect(second.outcome).toBe('accept');
    expect(second.collisionOf).toBe(first.messageId);
    expect(second.duplicateOf).toBeUndefined();
    expect(second.messageId).not.toBe(first.messageId);
    const rows = await rowsOf('gc_coll_p');
    expect(rows.map((r) => [r.id, r.status, r.collision_of])).toEqual([
      [first.messageId, 'received', null],
      [second.messageId, 'received', first.messageId],
    ]);
    expect(h.committed.map((c) => c.id)).toEqual([first.messageId, second.messageId]);
  });

  it('with onCollision reject, the colliding message is stored as rejected and answered AR', async () => {
    const h = harness({ policy: { windowMs: DAY, onCollision: 'reject' } });
    const first = await h.gc.store(received('gc_coll_r', hl7('C-2', { obx: '98' })), accept(0));
    const second = await h.gc.store(
      received('gc_coll_r', hl7('C-2', { obx: '141' }), new Date(BASE + 1_000)),
      accept(0),
    );
    await h.gc.close();
    expect(first.outcome).toBe('accept');
    expect(second.outcome).toBe('reject');
    expect(second.collisionOf).toBe(first.messageId);
    expect(second.error).toBeInstanceOf(EngineError);
    expect(second.error?.code).toBe('INTAKE_DUPLICATE_COLLISION');
    expect(second.error?.location).toEqual({ segment: 'MSH', segmentIndex: 1, field: 10 });
    expect(second.messageId).toBeDefined();
    const rows = await rowsOf('gc_coll_r');
    expect(rows[1]).toMatchObject({
      id: second.messageId,
      status: 'rejected',
      ack_code: 'AR',
      error_code: 'INTAKE_DUPLICATE_COLLISION',
      collision_of: first.messageId,
    });
    expect(h.committed.map((c) => c.id)).toEqual([first.messageId]);
  });

  it('rejects at once with INTAKE_OVERLOADED past maxPending, and still commits what it took', async () => {
    const h = harness({ maxPending: 3 });
    const taken = [0, 1, 2].map((i) => h.gc.store(received('gc_overload', hl7(`O-${i}`)), accept()));
    expect(h.gc.backlog).toBe(3);
    const err = await rejection(h.gc.store(received('gc_overload', hl7('O-3')), accept()));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('INTAKE_OVERLOADED');
    expect((err as EngineError).retryable).toBe(true);
    const results = await Promise.all(taken);
    await h.gc.close();
    expect(results.every((r) => r.outcome === 'accept' && r.messageId)).toBe(true);
    const rows = await rowsOf('gc_overload');
    expect(rows.map((r) => r.control_id)).toEqual(['O-0', 'O-1', 'O-2']);
  });

  it('signals backpressure at highWater and releases it once the backlog has drained', async () => {
    const h = harness({ highWater: 4 });
    const pending: Promise<Stored>[] = [];
    for (let i = 0; i < 3; i++) pending.push(h.gc.store(received('gc_pressure', hl7(`P-${i}`)), accept()));
    expect(h.pressure).toEqual([]);
    pending.push(h.gc.store(received('gc_pressure', hl7('P-3')), accept()));
    expect(h.pressure).toEqual([true]);
    for (let i = 4; i < 8; i++) pending.push(h.gc.store(received('gc_pressure', hl7(`P-${i}`)), accept()));
    expect(h.pressure).toEqual([true]);
    await Promise.all(pending);
    await h.gc.close();
    expect(h.pressure).toEqual([true, false]);
    expect(h.gc.backlog).toBe(0);
    expect(await rowsOf('gc_pressure')).toHaveLength(8);
  });

  it('refuses new messages after close()', async () => {
    const h = harness();
    await h.gc.close();
    await h.gc.close();
    const err = await rejection(h.gc.store(received('gc_closed', hl7('X-1')), accept()));
    expect((err as EngineError).code).toBe('INTAKE_UNAVAILABLE');
    expect(await rowsOf('gc_closed')).toEqual([]);
  });
});

describe('GroupCommit when the store fails', () => {
  /** The error must say nothing about the message: not its text, not the patient. */
  function expectNoContent(err: unknown): void {
    const texts = [String((err as Error).message), JSON.stringify(err)];
    let cause = (err as Error).cause;
    while (cause instanceof Error) {
      texts.push(cause.message, JSON.stringify(cause));
      cause = cause.cause;
    }
    for (const t of texts) {
      expect(t).not.toContain('Zqxtestpatient');
      expect(t).not.toContain('Wilhelmina');
      expect(t).not.toContain('MRN-');
    }
  }

  it('rejects every accept of a batch whose INSERT fails, with a fixed retryable error', async () => {
    // Only this test's channel is refused, so the shared database stays usable for the other tests.
    await db.query(
      `ALTER TABLE messages ADD CONSTRAINT gc_test_refuse CHECK (channel <> 'gc_insert_fails') NOT VALID`,
    );
    try {
      const h = harness();
      const results = await Promise.allSettled([
        h.gc.store(received('gc_insert_fails', hl7('F-1')), accept()),
        h.gc.store(received('gc_insert_fails', hl7('F-2')), accept()),
        h.gc.store(received('gc_insert_fails', hl7('F-3')), rejectType()),
      ]);
      await h.gc.close();

      const [a, b, c] = results;
      for (const r of [a, b]) {
        expect(r!.status).toBe('rejected');
        const err = (r as PromiseRejectedResult).reason as EngineError;
        expect(err).toBeInstanceOf(EngineError);
        expect(err.code).toBe('INTAKE_UNAVAILABLE');
        expect(err.retryable).toBe(true);
        // The store's own error is kept as the cause, by code (for logs), not as content.
        expect(err.cause).toBeInstanceOf(EngineError);
        expect((err.cause as EngineError).code).toBe('STORE_QUERY_FAILED');
        expect((err.cause as EngineError).details.sqlstate).toBe('23514');
        expectNoContent(err);
      }
      // A reject is answered as a reject even when it could not be stored.
      expect(c!.status).toBe('fulfilled');
      const rej = (c as PromiseFulfilledResult<Stored>).value;
      expect(rej.outcome).toBe('reject');
      expect(rej.messageId).toBeUndefined();
      expect(rej.error?.code).toBe('INTAKE_REJECTED_TYPE');

      expect(await rowsOf('gc_insert_fails')).toEqual([]);
      expect(h.committed).toEqual([]);
      expect(h.batches).toEqual([]);
      expect(h.failures).toHaveLength(1);
    } finally {
      await db.query('ALTER TABLE messages DROP CONSTRAINT gc_test_refuse');
    }
  });

  it('rejects when the store is unreachable (closed pool) and nothing is committed', async () => {
    const deadDb = new PgDb({ connectionString: tdb.url, max: 1 });
    await deadDb.close();
    const h = harness({ repo: new MessageRepo(deadDb) });
    const results = await Promise.allSettled([
      h.gc.store(received('gc_store_down', hl7('U-1')), accept()),
      h.gc.store(received('gc_store_down', hl7('U-2')), accept()),
    ]);
    await h.gc.close();
    for (const r of results) {
      expect(r.status).toBe('rejected');
      const err = (r as PromiseRejectedResult).reason as EngineError;
      expect(err).toBeInstanceOf(EngineError);
      expect(err.code).toBe('INTAKE_UNAVAILABLE');
      expect((err.cause as EngineError).code).toBe('STORE_UNAVAILABLE');
      expectNoContent(err);
    }
    expect(h.committed).toEqual([]);
    expect(h.failures).toHaveLength(1);
    expect(await rowsOf('gc_store_down')).toEqual([]);
  });

  it('keeps working for later batches once the store is back', async () => {
    const h = harness();
    await db.query(
      `ALTER TABLE messages ADD CONSTRAINT gc_test_refuse2 CHECK (channel <> 'gc_recover') NOT VALID`,
    );
    let err: unknown;
    try {
      err = await rejection(h.gc.store(received('gc_recover', hl7('V-1')), accept()));
    } finally {
      await db.query('ALTER TABLE messages DROP CONSTRAINT gc_test_refuse2');
    }
    expect((err as EngineError).code).toBe('INTAKE_UNAVAILABLE');
    // The sender retries the same message: now it is stored, and it is not a duplicate of anything.
    const ok = await h.gc.store(received('gc_recover', hl7('V-1'), new Date(BASE + 1)), accept());
    await h.gc.close();
    expect(ok.outcome).toBe('accept');
    expect(ok.duplicateOf).toBeUndefined();
    const rows = await rowsOf('gc_recover');
    expect(rows.map((r) => r.id)).toEqual([ok.messageId]);
    expect(h.committed.map((c) => c.id)).toEqual([ok.messageId]);
  });
});
