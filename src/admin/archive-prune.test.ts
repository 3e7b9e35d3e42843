import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { AuditLog } from '../observability/audit-log.js';
import { ArchiveUsageRepo } from '../store/archive-usage-repo.js';
import { AuditRepo } from '../store/audit-repo.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import type { Db } from '../store/db.js';
import { DeliveryRepo } from '../store/delivery-repo.js';
import { newMessageId } from '../store/message-id.js';
import { MessageRepo } from '../store/message-repo.js';
import { type OpenedStore, openStore } from '../store/open-store.js';
import { type PruneReport, pruneArchive } from './archive-prune.js';

// Prune against a real store (Postgres and the embedded PGlite) and a real archive directory: which
// files go, which stay because a message in them is still in flight, what the store and the audit
// trail say afterwards.

const backends = [
  {
    name: 'postgres',
    async open(dataDir: string) {
      const tdb = await createTestDatabase('archive_prune');
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

const NOW = new Date('2026-03-01T12:00:00Z');
const DAY = 86_400_000;
const KEY_ID = 'dk_archive_prune_test';

/** What each test message is: its file, its status, and its deliveries' statuses. */
type Fixture = [file: string, status: string, deliveries: string[]];
const FIXTURES: Fixture[] = [
  ['lab/2026-01-05.w1.h7a', 'delivered', ['delivered']],
  ['lab/2026-01-05.w1.h7a', 'failed', ['failed']], // dead-lettered
  ['lab/2026-01-05.w1.h7a', 'rejected', []], // NAKed at intake
  ['lab/2026-01-05.w2.h7a', 'processed', []], // filtered out: no destination
  ['lab/2026-01-05.w2.h7a', 'processed', ['delivered', 'delivered']],
  ['lab/2026-01-06.w1.h7a', 'delivered', ['delivered']],
  ['lab/2026-01-06.w1.h7a', 'processed', ['pending', 'delivered']], // retrying
  ['lab/2026-01-07.w1.h7a', 'received', []], // not processed yet
  ['lab/2026-01-08.w1.h7a', 'failed', ['held']], // waiting for an operator
  ['lab/2026-01-09.w1.h7a', 'failed', ['pending']], // dead letter being replayed
  ['adt/2026-01-05.w1.h7a', 'delivered', []],
  ['lab/2026-02-28.w1.h7a', 'delivered', []], // too recent
];
const STRAY = 'adt/2026-01-04.w9.h7a'; // records whose intake commit failed: no row points at them

describe.each(backends)('pruneArchive on $name', (backend) => {
  let dataDir: string;
  let archiveDir: string;
  let store: OpenedStore;
  let drop: () => Promise<void> = async () => {};
  let db: Db;
  let audit: AuditLog;
  const ids = new Map<string, string[]>();

  const run = (olderThanDays: number, dryRun: boolean, channel?: string): Promise<PruneReport> =>
    pruneArchive(
      { archiveDir, usage: new ArchiveUsageRepo(db), audit, now: () => NOW },
      {
        operator: 'alice',
        olderThanMs: olderThanDays * DAY,
        dryRun,
        reason: 'retention RP-7',
        ...(channel ? { channel } : {}),
      },
    );

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), `hl7e-prune-${backend.name}-`));
    archiveDir = join(dataDir, 'archive');
    ({ store, drop } = await backend.open(dataDir));
    db = store.db;
    audit = new AuditLog(new AuditRepo(db), () => NOW);
    await new DataKeyRepo(db).insert({
      id: KEY_ID,
      provider: 'local',
      masterKeyId: 'lmk-0001-test',
      wrappedKey: randomBytes(60),
    });
    const messages = new MessageRepo(db);
    const deliveries = new DeliveryRepo(db);
    for (const [i, [file, status, dests]] of FIXTURES.entries()) {
      const day = file.split('/')[1]?.slice(0, 10) as string;
      const receivedAt = new Date(`${day}T10:00:00.000Z`);
      const id = newMessageId(receivedAt.getTime() + i);
      ids.set(file, [...(ids.get(file) ?? []), id]);
      await messages.insertMany([
        {
          id,
          channel: file.split('/')[0] as string,
          sender: 'LIS|LAB',
          controlId: `C${i}`,
          messageType: 'ORU^R01',
          version: '2.5.1',
          receivedAt,
          connectionId: 'c1',
          status: status === 'rejected' ? 'rejected' : 'received',
          ackCode: status === 'rejected' ? 'AR' : 'AA',
          errorCode: null,
          partition: 0,
          collisionOf: null,
          sha256: createHash('sha256').update(`m${i}`).digest(),
          byteLength: 100,
          dataKeyId: KEY_ID,
          archiveFile: file,
          archiveOffset: i * 200,
          archiveLength: 200,
        },
      ]);
      await db.query('UPDATE messages SET status = $2 WHERE id = $1', [id, status]);
      const { rows } = await db.query<{ seq: number }>('SELECT seq FROM messages WHERE id = $1', [id]);
      const refs = await db.transaction((tx) =>
        deliveries.createPendingMany(tx, [
          {
            messageId: id,
            channel: 'lab',
            seq: rows[0]?.seq as number,
            destinations: dests.map((_, k) => `dest${k}`),
          },
        ]),
      );
      for (const [k, ref] of refs.entries()) {
        await db.query('UPDATE deliveries SET status = $2 WHERE id = $1', [ref.id, dests[k]]);
      }
    }
    for (const file of [...new Set([...FIXTURES.map((f) => f[0]), STRAY])]) {
      mkdirSync(join(archiveDir, file, '..'), { recursive: true });
      writeFileSync(join(archiveDir, file), randomBytes(1000));
    }
  }, 60_000);

  afterAll(async () => {
    await store?.close();
    await drop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const pruned = async (file: string): Promise<(Date | null)[]> => {
    const { rows } = await db.query<{ archive_pruned_at: Date | null }>(
      'SELECT archive_pruned_at FROM messages WHERE archive_file = $1 ORDER BY seq',
      [file],
    );
    return rows.map((r) => r.archive_pruned_at);
  };

  it('refuses a cutoff within the last day: that day’s files may still be written', async () => {
    await expect(run(0.5, true)).rejects.toThrow(/at least 1d/);
  });

  it('dry run: lists what would go and what stays in flight, and changes nothing', async () => {
    const r = await run(30, true);
    expect(r).toMatchObject({ cutoff: '2026-01-30T12:00:00.000Z', dryRun: true, channel: null, failed: [] });
    expect(r.files).toEqual([
      { file: STRAY, day: '2026-01-04', bytes: 1000, messages: 0 },
      { file: 'adt/2026-01-05.w1.h7a', day: '2026-01-05', bytes: 1000, messages: 1 },
      { file: 'lab/2026-01-05.w1.h7a', day: '2026-01-05', bytes: 1000, messages: 3 },
      { file: 'lab/2026-01-05.w2.h7a', day: '2026-01-05', bytes: 1000, messages: 2 },
    ]);
    expect(r.kept.map((k) => [k.file, k.messages, k.unfinished])).toEqual([
      ['lab/2026-01-06.w1.h7a', 2, 1],
      ['lab/2026-01-07.w1.h7a', 1, 1],
      ['lab/2026-01-08.w1.h7a', 1, 1],
      ['lab/2026-01-09.w1.h7a', 1, 1],
    ]);
    expect(r.totals).toEqual({ files: 4, bytes: 4000, messages: 6 });
    for (const f of r.files) expect(existsSync(join(archiveDir, f.file))).toBe(true);
    expect(await pruned('lab/2026-01-05.w1.h7a')).toEqual([null, null, null]);
    expect(await new AuditRepo(db).list()).toEqual([]);
  });

  it('one channel only', async () => {
    const r = await run(30, true, 'adt');
    expect(r.files.map((f) => f.file)).toEqual([STRAY, 'adt/2026-01-05.w1.h7a']);
    expect(r.kept).toEqual([]);
  });

  it('removes the finished files, marks their messages pruned, keeps the rest, and audits it', async () => {
    const r = await run(30, false);
    expect(r.totals).toEqual({ files: 4, bytes: 4000, messages: 6 });
    expect(r.kept).toHaveLength(4);
    for (const f of r.files) expect(existsSync(join(archiveDir, f.file)), f.file).toBe(false);
    for (const k of r.kept) expect(existsSync(join(archiveDir, k.file)), k.file).toBe(true);
    expect(existsSync(join(archiveDir, 'lab/2026-02-28.w1.h7a'))).toBe(true);

    expect(await pruned('lab/2026-01-05.w1.h7a')).toEqual([NOW, NOW, NOW]);
    expect(await pruned('lab/2026-01-05.w2.h7a')).toEqual([NOW, NOW]);
    expect(await pruned('lab/2026-01-06.w1.h7a')).toEqual([null, null]);
    const one = ids.get('lab/2026-01-05.w1.h7a')?.[0] as string;
    expect(await new ArchiveUsageRepo(db).prunedAt(one)).toEqual(NOW);

    const rows = await new AuditRepo(db).list();
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      actor: 'alice',
      action: 'archive.prune',
      target: 'archive files of days before 2026-01-30T12:00:00.000Z',
      reason: 'retention RP-7',
      outcome: 'pruned 4 files, 4000 bytes, 6 messages; 4 kept (in flight)',
    });
    expect((await audit.verify()).firstBreak).toBeNull();
  });

  it('a kept file goes once its last message finishes; a rerun finds nothing else', async () => {
    await db.query(`UPDATE deliveries SET status = 'delivered' WHERE message_id = ANY($1::uuid[])`, [
      ids.get('lab/2026-01-06.w1.h7a'),
    ]);
    const r = await run(30, false);
    expect(r.files.map((f) => f.file)).toEqual(['lab/2026-01-06.w1.h7a']);
    expect(r.kept.map((k) => k.file)).toEqual([
      'lab/2026-01-07.w1.h7a',
      'lab/2026-01-08.w1.h7a',
      'lab/2026-01-09.w1.h7a',
    ]);
    expect(await pruned('lab/2026-01-06.w1.h7a')).toEqual([NOW, NOW]);
  });

  it('re-checks under lock: a file whose message went back in flight after the look is not marked', async () => {
    const usage = new ArchiveUsageRepo(db);
    const file = 'lab/2026-01-09.w1.h7a';
    await db.query(`UPDATE deliveries SET status = 'failed' WHERE message_id = ANY($1::uuid[])`, [
      ids.get(file),
    ]);
    expect((await usage.usage('2026-01-09', [file])).get(file)).toEqual({ messages: 1, unfinished: 0 });
    // A replay re-enqueues it between prune's look and its mark.
    await db.query(`UPDATE deliveries SET status = 'pending' WHERE message_id = ANY($1::uuid[])`, [
      ids.get(file),
    ]);
    const marked = await usage.markPruned('2026-01-09', [file], NOW);
    expect(marked.get(file)).toEqual({ messages: 1, unfinished: 1 });
    expect(await pruned(file)).toEqual([null]);
  });
});
