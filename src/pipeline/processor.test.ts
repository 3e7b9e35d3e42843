import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testChannel } from '../../test/support/channel-config.js';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { KeyRing } from '../archive/keyring.js';
import { LocalKeyProvider } from '../archive/local-key-provider.js';
import { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import { EngineError } from '../errors.js';
import { parse, readMshHeader } from '../hl7/index.js';
import { MappingCatalog } from '../mapping/mapping-catalog.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import type { Queryable } from '../store/db.js';
import { DeliveryRepo } from '../store/delivery-repo.js';
import { MessageRepo, type StoredMessage } from '../store/message-repo.js';
import { type OpenedStore, openStore } from '../store/open-store.js';
import { PgDb } from '../store/pg-db.js';
import { GroupCommit } from './group-commit.js';
import { InlineConverter } from './message-converter.js';
import type { ReceivedMessage } from './message-sink.js';
import { Processor } from './processor.js';
import { RawHandoff } from './raw-handoff.js';

// Synthetic data only.
const DAY = 86_400_000;
const BASE = Date.parse('2026-01-05T10:00:00.000Z');

let controlSeq = 0;
function hl7(controlId: string, mrn: string): string {
  return [
    `MSH|^~\\&|LABAPP|LABFAC|HL7E|HOSP|20260105100000||ORU^R01^ORU_R01|${controlId}|P|2.5.1|||AL|NE`,
    `PID|1||${mrn}^^^HOSP^MR||Zqxprocessor^Test^Q||19800101|F`,
    'OBR|1|PL-1|FL-1|GLU^Glucose^L',
    'OBX|1|NM|GLU^Glucose^L||98|mg/dL|70-99|N|||F',
  ].join('\r');
}

function received(channel: string, text: string): ReceivedMessage {
  return {
    channel,
    raw: Buffer.from(text, 'utf8'),
    charset: { hl7Name: '', encoding: 'utf8' },
    header: readMshHeader(text),
    message: parse(text),
    receivedAt: new Date(BASE),
    connectionId: 'conn-processor-test',
  };
}

/** The shipped mappings: processing converts every message it processes. */
const catalog = MappingCatalog.load();

function channel(name: string, destinations: readonly string[]): ChannelConfig {
  return testChannel(
    name,
    destinations.map((d) => ({ name: d })),
  );
}

const TWO = ['fhir-a', 'mllp-b'] as const;
const ONE = ['fhir-only'] as const;

let tdb: TestDatabase;
let store: OpenedStore;
let dir: string;
let provider: LocalKeyProvider;
let keyring: KeyRing;
let archive: RawArchive;
let gc: GroupCommit;
/** Raw bytes of every committed message, as intake hands them over. */
const raws = new Map<string, Buffer>();
const cleanups: (() => Promise<unknown>)[] = [];

function makeGroupCommit(repo: MessageRepo): GroupCommit {
  return new GroupCommit({
    repo,
    archive,
    duplicatePolicy: () => ({ windowMs: DAY, onCollision: 'process' }),
    maxBatch: 500,
    highWater: 10_000,
    maxPending: 20_000,
    commitTimeoutMs: 120_000,
    onCommitted: (ms) => {
      for (const { id, raw } of ms) raws.set(id, raw);
    },
    onPressure: () => {},
  });
}

/** Stores `n` messages of `channelName` in `partition` through the group commit; ids in seq order. */
async function storeMessages(channelName: string, partition: number, n: number): Promise<string[]> {
  const results = await Promise.all(
    Array.from({ length: n }, () => {
      controlSeq += 1;
      const text = hl7(`P-${controlSeq}`, `MRN-${controlSeq}`);
      return gc.store(received(channelName, text), { outcome: 'accept', ackCode: 'AA', partition });
    }),
  );
  for (const r of results) expect(r.outcome).toBe('accept');
  const ids = results.map((r) => r.messageId as string);
  return (await rowsOf(ids)).map((r) => r.id);
}

async function rowsOf(ids: readonly string[]) {
  const { rows } = await store.db.query<{
    id: string;
    seq: number;
    status: string;
    partition: number;
    last_error_code: string | null;
    processed_at: Date | null;
    archive_file: string;
  }>(
    `SELECT id, seq, status, partition, last_error_code, processed_at, archive_file
       FROM messages WHERE id = ANY($1::uuid[]) ORDER BY seq`,
    [ids],
  );
  return rows;
}

async function eventsOf(ids: readonly string[]) {
  const { rows } = await store.db.query<{ message_id: string; event: string }>(
    'SELECT message_id, event FROM message_events WHERE message_id = ANY($1::uuid[]) ORDER BY id',
    [ids],
  );
  return rows;
}

async function deliveriesOf(ids: readonly string[]) {
  const { rows } = await store.db.query<{
    id: string;
    message_id: string;
    destination: string;
    status: string;
  }>('SELECT id, message_id, destination, status FROM deliveries WHERE message_id = ANY($1::uuid[])', [ids]);
  return rows;
}

interface Rig {
  p: Processor;
  enqueued: string[][];
  processed: { id: string; outcome: string; code: string | undefined }[];
}

function rig(
  opts: { channels?: ChannelConfig[]; handoff?: RawHandoff; db?: PgDb; archive?: RawArchive } = {},
): Rig {
  const db = opts.db ?? store.workDb;
  const enqueued: string[][] = [];
  const processed: Rig['processed'] = [];
  const channels = opts.channels ?? [
    channel('p_two', TWO),
    channel('p_one', ONE),
    channel('p_handoff', ONE),
    channel('p_mismatch', ONE),
    channel('p_mismatch_gone', ONE),
    channel('p_known', TWO),
  ];
  const p = new Processor({
    db,
    messages: new MessageRepo(db),
    deliveries: new DeliveryRepo(db),
    archive: opts.archive ?? archive,
    channels: new Map(channels.map((c) => [c.name, c])),
    converter: new InlineConverter(new Map(channels.map((c) => [c.name, c])), catalog),
    enqueueDeliveries: async (refs) => {
      enqueued.push(refs.map((r) => r.id));
    },
    ...(opts.handoff ? { handoff: opts.handoff } : {}),
    onProcessed: (m: StoredMessage, outcome, code) => processed.push({ id: m.id, outcome, code }),
  });
  return { p, enqueued, processed };
}

async function rejection(p: Promise<unknown>): Promise<unknown> {
  return p.then(
    (v) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(v)}`);
    },
    (err: unknown) => err,
  );
}

beforeAll(async () => {
  tdb = await createTestDatabase('processor');
  dir = await mkdtemp(join(tmpdir(), 'hl7e-processor-'));
  store = await openStore({ databaseUrl: tdb.url, dataDir: dir });
  provider = await LocalKeyProvider.open(join(dir, 'keys', 'master-keys.json'));
  keyring = new KeyRing({
    provider,
    repo: new DataKeyRepo(store.db),
    maxAgeMs: DAY,
    maxRecords: 1_000_000,
    cacheMs: 60_000,
  });
  archive = new RawArchive(join(dir, 'raw-archive'), keyring, 'proctest');
  gc = makeGroupCommit(new MessageRepo(store.db));
});

afterAll(async () => {
  await gc?.close();
  for (const c of cleanups) await c().catch(() => {});
  await archive?.close();
  await keyring?.close();
  await provider?.close();
  await store?.close();
  await tdb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

// Partitions are global to the store, so every test works in partitions of its own.
describe('Processor.processPartition', () => {
  it('drains every received message of the partition in seq order, once', async () => {
    const ids = await storeMessages('p_two', 1, 12);
    const { p, enqueued, processed } = rig();

    expect(await p.processPartition(1, ids.at(-1) as string)).toBe(12);

    const rows = await rowsOf(ids);
    expect(rows.map((r) => r.status)).toEqual(ids.map(() => 'processed'));
    expect(rows.every((r) => r.processed_at instanceof Date && r.last_error_code === null)).toBe(true);
    // The message history records one 'processed' event per message, written in arrival (seq) order.
    const events = await eventsOf(ids);
    expect(events).toEqual(ids.map((id) => ({ message_id: id, event: 'processed' })));
    expect(processed).toEqual(ids.map((id) => ({ id, outcome: 'processed', code: undefined })));

    // One pending delivery per destination per message.
    const deliveries = await deliveriesOf(ids);
    expect(deliveries).toHaveLength(24);
    expect(deliveries.every((d) => d.status === 'pending')).toBe(true);
    for (const id of ids) {
      expect(
        deliveries
          .filter((d) => d.message_id === id)
          .map((d) => d.destination)
          .sort(),
      ).toEqual([...TWO]);
    }
    // The queue is told about exactly the deliveries created.
    expect(enqueued.flat().sort()).toEqual(deliveries.map((d) => d.id).sort());

    // Exactly once: neither this processor nor a fresh one (no floor) finds anything left.
    expect(await p.processPartition(1, ids[0] as string)).toBe(0);
    expect(await rig().p.processPartition(1, ids[0] as string)).toBe(0);
    expect(await eventsOf(ids)).toHaveLength(12);
    expect(await deliveriesOf(ids)).toHaveLength(24);
    expect(enqueued.flat()).toHaveLength(24);
  });

  it('processes more than one batch (64) of a partition in one call', async () => {
    const ids = await storeMessages('p_one', 2, 150);
    const { p, enqueued } = rig();

    expect(await p.processPartition(2, ids.at(-1) as string)).toBe(150);

    const rows = await rowsOf(ids);
    expect(rows.filter((r) => r.status === 'processed')).toHaveLength(150);
    const events = await eventsOf(ids);
    expect(events.map((e) => e.message_id)).toEqual(ids);
    expect(events.every((e) => e.event === 'processed')).toBe(true);
    const deliveries = await deliveriesOf(ids);
    expect(deliveries).toHaveLength(150);
    expect(new Set(deliveries.map((d) => d.message_id)).size).toBe(150);
    expect(deliveries.every((d) => d.destination === 'fhir-only' && d.status === 'pending')).toBe(true);
    expect(enqueued.flat().sort()).toEqual(deliveries.map((d) => d.id).sort());
    // Internally batched: more than one enqueue call, none larger than a step's batch.
    expect(enqueued.length).toBeGreaterThan(1);
    expect(Math.max(...enqueued.map((e) => e.length))).toBeLessThanOrEqual(64);

    expect(await p.processPartition(2, ids[0] as string)).toBe(0);
    expect(await eventsOf(ids)).toHaveLength(150);
  });

  it('leaves the messages of other partitions alone', async () => {
    const mine = await storeMessages('p_two', 3, 4);
    const other = await storeMessages('p_two', 4, 3);
    const { p } = rig();

    expect(await p.processPartition(3, mine.at(-1) as string)).toBe(4);

    expect((await rowsOf(mine)).map((r) => r.status)).toEqual([
      'processed',
      'processed',
      'processed',
      'processed',
    ]);
    expect((await rowsOf(other)).map((r) => r.status)).toEqual(['received', 'received', 'received']);
    expect(await eventsOf(other)).toEqual([]);
    expect(await deliveriesOf(other)).toEqual([]);

    // The other partition is drained by its own call.
    expect(await p.processPartition(4, other[0] as string)).toBe(3);
    expect((await rowsOf(other)).map((r) => r.status)).toEqual(['processed', 'processed', 'processed']);
  });

  it('uses the handoff bytes: processing succeeds with the archive file gone', async () => {
    const ids = await storeMessages('p_handoff', 5, 3);
    const rows = await rowsOf(ids);
    const file = rows[0]?.archive_file as string;
    expect(rows.every((r) => r.archive_file === file)).toBe(true);
    const handoff = new RawHandoff(1_048_576);
    for (const id of ids) handoff.put(id, raws.get(id) as Buffer);

    await rm(join(archive.dir, file));
    // The archive really cannot serve these any more.
    const probe = await rejection(
      archive.read({
        channel: 'p_handoff',
        messageId: ids[0] as string,
        location: { file, offset: 0, length: 1 },
      }),
    );
    expect((probe as EngineError).code).toBe('ARCHIVE_READ_FAILED');

    const { p, processed } = rig({ handoff });
    expect(await p.processPartition(5, ids.at(-1) as string)).toBe(3);
    expect((await rowsOf(ids)).map((r) => [r.status, r.last_error_code])).toEqual(
      ids.map(() => ['processed', null]),
    );
    expect(processed.map((x) => x.outcome)).toEqual(['processed', 'processed', 'processed']);
    expect(await deliveriesOf(ids)).toHaveLength(3);
    // Taken, so no longer held.
    expect(handoff.size).toBe(0);
  });

  it('reads the archive when the handoff bytes do not match the stored digest', async () => {
    const ids = await storeMessages('p_mismatch', 6, 2);
    const handoff = new RawHandoff(1_048_576);
    for (const id of ids) handoff.put(id, Buffer.from(`MSH|^~\\&|FORGED|||||||${id}`));
    const { p } = rig({ handoff });

    expect(await p.processPartition(6, ids.at(-1) as string)).toBe(2);
    expect((await rowsOf(ids)).map((r) => r.status)).toEqual(['processed', 'processed']);
    expect(handoff.size).toBe(0);

    // And with the archive gone, the same mismatch is a read failure: the wrong bytes were not used.
    const [gone] = await storeMessages('p_mismatch_gone', 7, 1);
    const handoff2 = new RawHandoff(1_048_576);
    handoff2.put(gone as string, Buffer.from('MSH|^~\\&|FORGED'));
    const [row] = await rowsOf([gone as string]);
    await rm(join(archive.dir, row?.archive_file as string));
    const r2 = rig({ handoff: handoff2 });
    expect(await r2.p.processPartition(7, gone as string)).toBe(1);
    expect((await rowsOf([gone as string])).map((r) => [r.status, r.last_error_code])).toEqual([
      ['failed', 'ARCHIVE_READ_FAILED'],
    ]);
    expect(await deliveriesOf([gone as string])).toEqual([]);
    expect(r2.processed).toEqual([{ id: gone, outcome: 'failed', code: 'ARCHIVE_READ_FAILED' }]);
  });

  it('marks a message of an unknown channel failed and goes on with the partition', async () => {
    const [orphan] = await storeMessages('p_not_configured', 8, 1);
    const [next] = await storeMessages('p_known', 8, 1);
    const ids = [orphan as string, next as string];
    const { p, processed, enqueued } = rig();

    expect(await p.processPartition(8, next as string)).toBe(2);

    expect((await rowsOf(ids)).map((r) => [r.id, r.status, r.last_error_code])).toEqual([
      [orphan, 'failed', 'PIPELINE_CHANNEL_UNKNOWN'],
      [next, 'processed', null],
    ]);
    expect(await eventsOf(ids)).toEqual([
      { message_id: orphan, event: 'failed' },
      { message_id: next, event: 'processed' },
    ]);
    const deliveries = await deliveriesOf(ids);
    expect(deliveries.map((d) => d.message_id)).toEqual([next, next]);
    expect(enqueued.flat().sort()).toEqual(deliveries.map((d) => d.id).sort());
    expect(processed).toEqual([
      { id: orphan, outcome: 'failed', code: 'PIPELINE_CHANNEL_UNKNOWN' },
      { id: next, outcome: 'processed', code: undefined },
    ]);
    // A failed message is finished too: nothing is picked up again.
    expect(await p.processPartition(8, orphan as string)).toBe(0);
  });

  it('rolls the whole step back on a retryable failure (key store unreachable) and keeps the order', async () => {
    const ids = await storeMessages('p_two', 9, 3);
    // A reader whose keyring cannot reach the data-key table: decrypting throws STORE_UNAVAILABLE.
    const deadDb = new PgDb({ connectionString: tdb.url, max: 1 });
    await deadDb.close();
    const coldKeys = new KeyRing({
      provider,
      repo: new DataKeyRepo(deadDb),
      maxAgeMs: DAY,
      maxRecords: 1_000_000,
      cacheMs: 60_000,
    });
    const coldArchive = new RawArchive(archive.dir, coldKeys, 'coldreader');
    cleanups.push(
      () => coldArchive.close(),
      () => coldKeys.close(),
    );
    // The first message is in the handoff (no key needed); the others must come from the archive.
    const handoff = new RawHandoff(1_048_576);
    handoff.put(ids[0] as string, raws.get(ids[0] as string) as Buffer);
    const cold = rig({ archive: coldArchive, handoff });

    const err = await rejection(cold.p.processPartition(9, ids.at(-1) as string));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('STORE_UNAVAILABLE');
    expect((err as EngineError).retryable).toBe(true);

    // Nothing of the step took effect: not even the message whose bytes were at hand.
    expect((await rowsOf(ids)).map((r) => r.status)).toEqual(['received', 'received', 'received']);
    expect(await eventsOf(ids)).toEqual([]);
    expect(await deliveriesOf(ids)).toEqual([]);
    expect(cold.enqueued).toEqual([]);
    expect(cold.processed).toEqual([]);

    // The retry (a working reader) processes all three, in order.
    const warm = rig();
    expect(await warm.p.processPartition(9, ids.at(-1) as string)).toBe(3);
    expect((await eventsOf(ids)).map((e) => e.message_id)).toEqual(ids);
    expect(await deliveriesOf(ids)).toHaveLength(6);
  });

  it('rejects with a STORE_* error when its database is unreachable, leaving the message received', async () => {
    const [id] = await storeMessages('p_one', 10, 1);
    const deadDb = new PgDb({ connectionString: tdb.url, max: 1 });
    await deadDb.close();
    const dead = rig({ db: deadDb });

    const err = await rejection(dead.p.processPartition(10, id as string));
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toMatch(/^STORE_/);
    expect((err as EngineError).retryable).toBe(true);
    expect((await rowsOf([id as string])).map((r) => r.status)).toEqual(['received']);
    expect(dead.enqueued).toEqual([]);

    expect(await rig().p.processPartition(10, id as string)).toBe(1);
    expect((await rowsOf([id as string])).map((r) => r.status)).toEqual(['processed']);
  });

  it('picks up messages stored after a drain, and after rescan()', async () => {
    const { p } = rig();
    const first = await storeMessages('p_one', 11, 2);
    expect(await p.processPartition(11, first.at(-1) as string)).toBe(2);

    const [later] = await storeMessages('p_one', 11, 1);
    expect(await p.processPartition(11, later as string)).toBe(1);
    expect((await rowsOf([later as string])).map((r) => r.status)).toEqual(['processed']);

    p.rescan();
    expect(await p.processPartition(11, later as string)).toBe(0);
    const [afterRescan] = await storeMessages('p_one', 11, 1);
    expect(await p.processPartition(11, afterRescan as string)).toBe(1);

    const all = [...first, later as string, afterRescan as string];
    expect((await rowsOf(all)).map((r) => r.status)).toEqual(all.map(() => 'processed'));
    expect((await eventsOf(all)).map((e) => e.message_id)).toEqual(all);
  });

  it('after rescan() finds a message that committed late with a lower seq (another engine process)', async () => {
    const { p } = rig();
    // Another process's intake: its INSERT takes a seq now but commits only later.
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    let ready: (tx: Queryable) => void = () => {};
    const txReady = new Promise<Queryable>((r) => {
      ready = r;
    });
    const txDone = store.db.transaction(async (tx) => {
      ready(tx);
      await gate;
    });
    const slowGc = makeGroupCommit(new MessageRepo(await txReady));
    let early: string;
    try {
      controlSeq += 1;
      const stored = await slowGc.store(received('p_one', hl7(`P-${controlSeq}`, 'MRN-LATE')), {
        outcome: 'accept',
        ackCode: 'AA',
        partition: 12,
      });
      early = stored.messageId as string;
      await slowGc.close();

      const [fast] = await storeMessages('p_one', 12, 1);
      expect(await p.processPartition(12, fast as string)).toBe(1);
    } finally {
      release();
      await txDone;
    }
    const [row] = await rowsOf([early]);
    expect(row?.status).toBe('received');

    // Below this processor's floor until a rescan (the reconciler's pass) widens the next drain.
    expect(await p.processPartition(12, early)).toBe(0);
    p.rescan();
    expect(await p.processPartition(12, early)).toBe(1);
    expect((await rowsOf([early])).map((r) => r.status)).toEqual(['processed']);
    expect(await deliveriesOf([early])).toHaveLength(1);
  });
});
