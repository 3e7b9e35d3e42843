import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBackends, type TestStore } from '../../test/support/store-backends.js';
import { EngineError } from '../errors.js';
import type { Db } from './db.js';
import { DeliveryRepo } from './delivery-repo.js';
import { newMessageId } from './message-id.js';
import { MessageRepo, type NewMessage } from './message-repo.js';
import { MIGRATIONS, migrate } from './migrations.js';

const KEY_ID = 'dk_message_repo_test';
const BASE = Date.parse('2026-01-05T10:00:00.123Z');
const at = (offsetMs: number) => new Date(BASE + offsetMs);

let counter = 0;
/** A complete row with every column set; overrides pick what a test is about. */
function row(overrides: Partial<NewMessage> = {}): NewMessage {
  counter += 1;
  const receivedAt = overrides.receivedAt ?? at(counter);
  const sha256 = createHash('sha256').update(`synthetic message ${counter}`).digest();
  return {
    id: newMessageId(receivedAt.getTime()),
    channel: 'lab',
    sender: 'LABAPP|LABFAC',
    controlId: `CTL-${counter}`,
    messageType: 'ORU^R01',
    version: '2.5.1',
    receivedAt,
    connectionId: `conn-${counter}`,
    status: 'received',
    ackCode: 'AA',
    errorCode: null,
    partition: 0,
    collisionOf: null,
    sha256,
    byteLength: 100 + counter,
    dataKeyId: KEY_ID,
    archiveFile: `lab/2026-01-05.w1.h7a`,
    archiveOffset: counter * 1000,
    archiveLength: 500 + counter,
    ...overrides,
  };
}

describe.each(storeBackends)('MessageRepo on $name', (backend) => {
  let store: TestStore;
  let db: Db;
  let repo: MessageRepo;
  let deliveries: DeliveryRepo;

  const maxSeq = async (): Promise<number> => {
    const { rows } = await db.query<{ s: number | null }>('SELECT max(seq) AS s FROM messages');
    return rows[0]?.s ?? 0;
  };

  beforeAll(async () => {
    store = await backend.open('message_repo', { dataKeyId: KEY_ID });
    db = store.db;
    repo = new MessageRepo(db);
    deliveries = new DeliveryRepo(db);
  });

  afterAll(() => store?.close());

  it('opens on the expected engine and migrates idempotently', async () => {
    expect(db.kind).toBe(backend.name);
    expect(store.migrated).toEqual(MIGRATIONS.map((m) => m.version));
    expect(await migrate(db)).toEqual([]);
    expect(await migrate(db)).toEqual([]);
    const { rows } = await db.query<{ version: number; name: string }>(
      'SELECT version, name FROM schema_migrations ORDER BY version',
    );
    expect(rows).toEqual(MIGRATIONS.map((m) => ({ version: m.version, name: m.name })));
  });

  it('insertMany round-trips every column with normalised types', async () => {
    const first = row({ archiveOffset: 5_000_000_123, partition: 7 });
    const second = row({
      status: 'rejected',
      ackCode: 'AR',
      errorCode: 'INTAKE_DUPLICATE_COLLISION',
      collisionOf: first.id,
      controlId: first.controlId,
      connectionId: 'conn-other',
      partition: 0,
    });
    const before = await maxSeq();
    await repo.insertMany([first, second]);

    const { rows } = await db.query<Record<string, unknown>>(
      'SELECT * FROM messages WHERE id = ANY($1::uuid[]) ORDER BY seq',
      [[first.id, second.id]],
    );
    expect(rows).toHaveLength(2);
    for (const [i, r] of [first, second].entries()) {
      const got = rows[i]!;
      expect(got).toMatchObject({
        id: r.id,
        channel: r.channel,
        sender: r.sender,
        control_id: r.controlId,
        message_type: r.messageType,
        version: r.version,
        connection_id: r.connectionId,
        status: r.status,
        ack_code: r.ackCode,
        error_code: r.errorCode,
        partition: r.partition,
        collision_of: r.collisionOf,
        duplicate_count: 0,
        last_duplicate_at: null,
        byte_length: r.byteLength,
        data_key_id: r.dataKeyId,
        archive_file: r.archiveFile,
        archive_offset: r.archiveOffset,
        archive_length: r.archiveLength,
        processed_at: null,
        last_error_code: null,
        last_error_at: null,
      });
      expect(Buffer.isBuffer(got.content_sha256)).toBe(true);
      expect((got.content_sha256 as Buffer).equals(r.sha256)).toBe(true);
      expect(got.received_at).toBeInstanceOf(Date);
      expect((got.received_at as Date).getTime()).toBe(r.receivedAt.getTime());
      expect(got.updated_at).toBeInstanceOf(Date);
      expect(typeof got.seq).toBe('number');
      expect(got.seq as number).toBeGreaterThan(before);
    }
    // int8 beyond 2^32 comes back as an exact number, not a string.
    expect(rows[0]!.archive_offset).toBe(5_000_000_123);
    expect(rows[1]!.seq as number).toBeGreaterThan(rows[0]!.seq as number);

    const stored = await repo.get(first.id);
    expect(stored).toEqual({
      id: first.id,
      seq: rows[0]!.seq,
      channel: 'lab',
      sender: 'LABAPP|LABFAC',
      control_id: first.controlId,
      message_type: 'ORU^R01',
      status: 'received',
      partition: 7,
      received_at: first.receivedAt,
      content_sha256: first.sha256,
      data_key_id: KEY_ID,
      archive_file: first.archiveFile,
      archive_offset: 5_000_000_123,
      archive_length: first.archiveLength,
    });
    expect(Buffer.isBuffer(stored!.content_sha256)).toBe(true);
    expect(await repo.get(newMessageId())).toBeUndefined();
  });

  it('insertMany of nothing is a no-op, and a failing batch inserts nothing', async () => {
    const count = async () =>
      (await db.query<{ n: number }>('SELECT count(*)::int AS n FROM messages')).rows[0]!.n;
    const n0 = await count();
    await repo.insertMany([]);
    expect(await count()).toBe(n0);

    // The second row names an unknown data key: the single statement fails as a whole.
    const good = row();
    const bad = row({ dataKeyId: 'dk_missing' });
    const err = await repo.insertMany([good, bad]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('STORE_QUERY_FAILED');
    expect((err as EngineError).details.sqlstate).toBe('23503');
    expect(await count()).toBe(n0);
    expect(await repo.get(good.id)).toBeUndefined();
  });

  it('findPrior finds an earlier (channel, sender, MSH-10) inside the window only', async () => {
    const prior = row({ channel: 'adt', sender: 'REG|HOSP', controlId: 'DUP-1', receivedAt: at(60_000) });
    const otherSender = row({
      channel: 'adt',
      sender: 'REG|CLINIC',
      controlId: 'DUP-1',
      receivedAt: at(60_000),
    });
    const otherChannel = row({
      channel: 'lab',
      sender: 'REG|HOSP',
      controlId: 'DUP-1',
      receivedAt: at(60_000),
    });
    await repo.insertMany([prior, otherSender, otherChannel]);

    const key = { channel: 'adt', sender: 'REG|HOSP', controlId: 'DUP-1' };
    const inside = await repo.findPrior([{ ...key, since: at(0) }]);
    expect(inside).toHaveLength(1);
    expect(inside[0]).toEqual({
      id: prior.id,
      channel: 'adt',
      sender: 'REG|HOSP',
      control_id: 'DUP-1',
      content_sha256: prior.sha256,
      status: 'received',
      ack_code: 'AA',
      error_code: null,
      received_at: prior.receivedAt,
    });
    expect(Buffer.isBuffer(inside[0]!.content_sha256)).toBe(true);

    // The window start is inclusive.
    expect((await repo.findPrior([{ ...key, since: at(60_000) }])).map((p) => p.id)).toEqual([prior.id]);
    // Outside the window: nothing.
    expect(await repo.findPrior([{ ...key, since: at(60_001) }])).toEqual([]);
    // Unknown control id: nothing.
    expect(await repo.findPrior([{ ...key, controlId: 'DUP-2', since: at(0) }])).toEqual([]);
    expect(await repo.findPrior([])).toEqual([]);

    // Several keys in one call, each with its own window, in arrival order.
    const many = await repo.findPrior([
      { channel: 'lab', sender: 'REG|HOSP', controlId: 'DUP-1', since: at(0) },
      { channel: 'adt', sender: 'REG|CLINIC', controlId: 'DUP-1', since: at(120_000) },
      { ...key, since: at(0) },
    ]);
    expect(many.map((p) => p.id)).toEqual([prior.id, otherChannel.id]);
  });

  it('noteDuplicates counts every occurrence, repeated ids included', async () => {
    const a = row();
    const b = row();
    const c = row();
    await repo.insertMany([a, b, c]);
    const when = at(3_600_000);
    await repo.noteDuplicates([a.id, b.id, a.id], when);
    await repo.noteDuplicates([a.id], at(3_600_500));
    await repo.noteDuplicates([], at(7_200_000));

    const { rows } = await db.query<{ id: string; duplicate_count: number; last_duplicate_at: Date | null }>(
      'SELECT id, duplicate_count, last_duplicate_at FROM messages WHERE id = ANY($1::uuid[])',
      [[a.id, b.id, c.id]],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    expect(byId.get(a.id)).toEqual({ id: a.id, duplicate_count: 3, last_duplicate_at: at(3_600_500) });
    expect(byId.get(b.id)).toEqual({ id: b.id, duplicate_count: 1, last_duplicate_at: when });
    expect(byId.get(c.id)).toEqual({ id: c.id, duplicate_count: 0, last_duplicate_at: null });
  });

  it('unfinishedInPartition returns received messages of one partition in seq order', async () => {
    const P = 101;
    const rows = [
      row({ partition: P }),
      row({ partition: P + 1 }),
      row({ partition: P, status: 'rejected', ackCode: 'AR', errorCode: 'INTAKE_REJECTED_TYPE' }),
      row({ partition: P }),
      row({ partition: P }),
    ];
    // Inserted one by one so that seq follows this order.
    for (const r of rows) await repo.insertMany([r]);
    const [r0, , , r3, r4] = rows as [NewMessage, NewMessage, NewMessage, NewMessage, NewMessage];
    const seqOf = async (id: string) => (await repo.get(id))!.seq;

    const all = await repo.unfinishedInPartition(P, 0, 100);
    expect(all.map((m) => m.id)).toEqual([r0.id, r3.id, r4.id]);
    expect(all.every((m) => m.status === 'received' && m.partition === P)).toBe(true);
    const seqs = all.map((m) => m.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);

    expect((await repo.unfinishedInPartition(P, await seqOf(r0.id), 100)).map((m) => m.id)).toEqual([
      r3.id,
      r4.id,
    ]);
    expect((await repo.unfinishedInPartition(P, 0, 1)).map((m) => m.id)).toEqual([r0.id]);
    expect(await repo.unfinishedInPartition(P + 50, 0, 100)).toEqual([]);

    // Inside a transaction (as the processor calls it).
    const inTx = await db.transaction((tx) => repo.unfinishedInPartition(P, 0, 100, tx));
    expect(inTx.map((m) => m.id)).toEqual([r0.id, r3.id, r4.id]);
  });

  it('unfinishedAfter pages through received messages by seq, before a cut-off time', async () => {
    const after = await maxSeq();
    const rows = [
      row({ partition: 3, receivedAt: at(10_000) }),
      row({ partition: 4, receivedAt: at(10_001), status: 'rejected', ackCode: 'AR' }),
      row({ partition: 5, receivedAt: at(10_002) }),
      row({ partition: 6, receivedAt: at(20_000) }),
    ];
    for (const r of rows) await repo.insertMany([r]);
    const [a, , c, d] = rows as [NewMessage, NewMessage, NewMessage, NewMessage];

    const page = await repo.unfinishedAfter(after, 100, at(15_000));
    expect(page.map((m) => ({ id: m.id, partition: m.partition }))).toEqual([
      { id: a.id, partition: 3 },
      { id: c.id, partition: 5 },
    ]);
    expect(typeof page[0]!.seq).toBe('number');
    expect(page[1]!.seq).toBeGreaterThan(page[0]!.seq);

    // Keyset pagination: one at a time.
    const p1 = await repo.unfinishedAfter(after, 1, at(15_000));
    expect(p1.map((m) => m.id)).toEqual([a.id]);
    const p2 = await repo.unfinishedAfter(p1[0]!.seq, 1, at(15_000));
    expect(p2.map((m) => m.id)).toEqual([c.id]);
    expect(await repo.unfinishedAfter(p2[0]!.seq, 1, at(15_000))).toEqual([]);

    // A later cut-off includes the later message; received_at < cut-off is strict.
    expect((await repo.unfinishedAfter(after, 100, at(20_001))).map((m) => m.id)).toEqual([a.id, c.id, d.id]);
    expect((await repo.unfinishedAfter(after, 100, at(20_000))).map((m) => m.id)).toEqual([a.id, c.id]);
  });

  it('markProcessed moves received → processed once, with its event and pending deliveries', async () => {
    const m = row({ partition: 202 });
    await repo.insertMany([m]);
    const before = new Date(Date.now() - 60_000);

    const ids = await db.transaction(async (tx) => {
      expect(await repo.markProcessed(tx, m.id, 'processed', { segments: 4, destinations: 2 })).toBe(true);
      const refs = await deliveries.createPendingMany(tx, [
        { messageId: m.id, channel: m.channel, seq: 1, destinations: ['fhir-main', 'mllp-forward'] },
      ]);
      return refs.map((r) => r.id);
    });
    expect(ids).toHaveLength(2);

    const { rows } = await db.query<{ status: string; processed_at: Date | null }>(
      'SELECT status, processed_at FROM messages WHERE id = $1',
      [m.id],
    );
    expect(rows[0]!.status).toBe('processed');
    expect(rows[0]!.processed_at).toBeInstanceOf(Date);
    expect(rows[0]!.processed_at!.getTime()).toBeGreaterThan(before.getTime());

    const events = await db.query<{ event: string; detail: unknown }>(
      'SELECT event, detail FROM message_events WHERE message_id = $1 ORDER BY id',
      [m.id],
    );
    expect(events.rows).toEqual([{ event: 'processed', detail: { segments: 4, destinations: 2 } }]);

    const d = await db.query<{ id: string; destination: string; status: string; attempts: number }>(
      'SELECT id, destination, status, attempts FROM deliveries WHERE message_id = $1 ORDER BY destination',
      [m.id],
    );
    expect(
      d.rows.map((r) => ({ destination: r.destination, status: r.status, attempts: r.attempts })),
    ).toEqual([
      { destination: 'fhir-main', status: 'pending', attempts: 0 },
      { destination: 'mllp-forward', status: 'pending', attempts: 0 },
    ]);
    expect(new Set(d.rows.map((r) => r.id))).toEqual(new Set(ids));

    // The reconciler sees them as pending (ordered by id, keyset from the nil uuid).
    const pending = (
      await deliveries.pendingAfter(
        '00000000-0000-0000-0000-000000000000',
        1000,
        new Date(Date.now() + 60_000),
      )
    ).map((r) => r.id);
    expect(pending).toEqual(expect.arrayContaining(ids));
    expect([...pending].sort()).toEqual(pending);
    // …but not when asked for deliveries created before they were.
    const older = await deliveries.pendingAfter('00000000-0000-0000-0000-000000000000', 1000, before);
    expect(older.filter((r) => ids.includes(r.id))).toEqual([]);
    // The keyset cursor skips ids at or below it.
    const [lowest] = [...ids].sort();
    expect(
      (await deliveries.pendingAfter(lowest!, 1000, new Date(Date.now() + 60_000))).map((r) => r.id),
    ).not.toContain(lowest);

    // A second worker with the same message changes nothing.
    expect(await db.transaction((tx) => repo.markProcessed(tx, m.id, 'failed', { again: true }))).toBe(false);
    expect((await repo.get(m.id))!.status).toBe('processed');
    expect((await db.query('SELECT 1 FROM message_events WHERE message_id = $1', [m.id])).rowCount).toBe(1);
    expect(await repo.unfinishedInPartition(202, 0, 10)).toEqual([]);
    expect(
      await db.transaction((tx) =>
        deliveries.createPendingMany(tx, [{ messageId: m.id, channel: m.channel, seq: 1, destinations: [] }]),
      ),
    ).toEqual([]);
  });

  it('markProcessed and its deliveries roll back together', async () => {
    const m = row({ partition: 203 });
    await repo.insertMany([m]);
    const err = await db
      .transaction(async (tx) => {
        await repo.markProcessed(tx, m.id, 'processed', {});
        await deliveries.createPendingMany(tx, [
          { messageId: m.id, channel: m.channel, seq: 1, destinations: ['fhir-main'] },
        ]);
        throw new Error('fail after the writes');
      })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect((err as Error).message).toBe('fail after the writes');
    expect((await repo.get(m.id))!.status).toBe('received');
    expect((await db.query('SELECT 1 FROM deliveries WHERE message_id = $1', [m.id])).rowCount).toBe(0);
    expect((await db.query('SELECT 1 FROM message_events WHERE message_id = $1', [m.id])).rowCount).toBe(0);
    expect((await repo.unfinishedInPartition(203, 0, 10)).map((x) => x.id)).toEqual([m.id]);
  });

  it('a failed message records its error code and is no longer unfinished', async () => {
    const m = row({ partition: 204 });
    await repo.insertMany([m]);
    await db.transaction(async (tx) => {
      expect(await repo.markProcessed(tx, m.id, 'failed', { error: 'ARCHIVE_DECRYPT_FAILED' })).toBe(true);
      await repo.noteError(tx, m.id, 'ARCHIVE_DECRYPT_FAILED');
    });
    const { rows } = await db.query<{
      status: string;
      last_error_code: string | null;
      last_error_at: Date | null;
      processed_at: Date | null;
    }>('SELECT status, last_error_code, last_error_at, processed_at FROM messages WHERE id = $1', [m.id]);
    expect(rows[0]!.status).toBe('failed');
    expect(rows[0]!.last_error_code).toBe('ARCHIVE_DECRYPT_FAILED');
    expect(rows[0]!.last_error_at).toBeInstanceOf(Date);
    expect(rows[0]!.processed_at).toBeInstanceOf(Date);
    const events = await db.query<{ event: string; detail: unknown }>(
      'SELECT event, detail FROM message_events WHERE message_id = $1',
      [m.id],
    );
    expect(events.rows).toEqual([{ event: 'failed', detail: { error: 'ARCHIVE_DECRYPT_FAILED' } }]);
    expect(await repo.unfinishedInPartition(204, 0, 10)).toEqual([]);

    // noteError also works outside processing (a later error overwrites the code).
    await repo.noteError(db, m.id, 'KEY_UNKNOWN');
    const again = await db.query<{ last_error_code: string }>(
      'SELECT last_error_code FROM messages WHERE id = $1',
      [m.id],
    );
    expect(again.rows[0]!.last_error_code).toBe('KEY_UNKNOWN');
  });
});
