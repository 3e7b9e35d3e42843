import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { AuditRepo } from '../store/audit-repo.js';
import type { Db } from '../store/db.js';
import { migrate } from '../store/migrations.js';
import { PgDb } from '../store/pg-db.js';
import { PgliteDb } from '../store/pglite-db.js';
import { AuditLog } from './audit-log.js';

// The hash chain on a real store: verify, then retention cutting the chain's head — what remains must
// still verify from the anchor, and tampering must still be caught afterwards.

const backends = [
  {
    name: 'postgres',
    async open() {
      const tdb = await createTestDatabase('audit_log');
      const db = new PgDb({ connectionString: tdb.url });
      const close = async () => {
        await db.close();
        await tdb.drop();
      };
      return { db, close };
    },
  },
  {
    name: 'pglite',
    async open() {
      const db = await PgliteDb.open();
      return { db, close: () => db.close() };
    },
  },
];

const T0 = Date.parse('2020-01-01T00:00:00Z');
const DAY = 86_400_000;

describe.each(backends)('AuditLog on $name', (backend) => {
  let db: Db;
  let close: () => Promise<void>;
  let t = T0;
  let log: AuditLog;

  beforeAll(async () => {
    ({ db, close } = await backend.open());
    await migrate(db);
    log = new AuditLog(new AuditRepo(db), () => new Date(t));
  }, 60_000);
  afterAll(() => close?.());

  /** Ten entries, one a day from T0. */
  beforeEach(async () => {
    await db.query('DELETE FROM audit_events');
    for (let i = 0; i < 10; i++) {
      t = T0 + i * DAY;
      await log.record({
        actor: 'alice',
        action: 'messages.reveal',
        target: `m${i}`,
        reason: 'INC-1',
        outcome: 'allowed',
      });
    }
    t = T0 + 100 * DAY;
  });

  const seqs = async () =>
    (await db.query<{ seq: number }>('SELECT seq FROM audit_events ORDER BY seq')).rows.map((r) => r.seq);

  it('verifies an intact chain and names the first altered row', async () => {
    expect((await log.verify()).firstBreak).toBeNull();
    const [, second] = await seqs();
    await db.query(`UPDATE audit_events SET outcome = 'denied' WHERE seq = $1`, [second]);
    expect((await log.verify()).firstBreak).toEqual({ seq: second, problem: 'hash' });
  });

  it('a pruned head leaves an anchor from which the rest still verifies', async () => {
    const before = await seqs();
    const done = await log.prune(new Date(T0 + 4 * DAY), 'engine');
    expect(done).toEqual({ entries: 4, throughSeq: before[3] });

    const rows = await new AuditRepo(db).list();
    expect(rows.map((r) => r.target?.slice(0, 2))).toEqual(['m4', 'm5', 'm6', 'm7', 'm8', 'm9', 'au']);
    const anchor = rows.at(-1);
    expect(anchor).toMatchObject({ actor: 'engine', action: 'audit.prune', outcome: 'pruned 4 entries' });
    expect(anchor?.target).toMatch(
      new RegExp(`^audit entries through seq ${before[3]}; the chain continues from [0-9a-f]{64}$`),
    );
    // The first remaining row still points at the removed one.
    expect(rows[0]?.prevHash).not.toBeNull();

    const v = await log.verify();
    expect(v).toMatchObject({ checked: 7, firstBreak: null });
    expect(v.head?.seq).toBe(anchor?.seq);

    // A second prune moves the anchor on; the older anchor row may go with the head.
    t = T0 + 200 * DAY;
    expect(await log.prune(new Date(T0 + 150 * DAY), 'engine')).toEqual({
      entries: 7,
      throughSeq: anchor?.seq,
    });
    expect(await log.verify()).toMatchObject({ checked: 1, firstBreak: null });
  });

  it('nothing old enough: no anchor, nothing removed', async () => {
    expect(await log.prune(new Date(T0 - DAY), 'engine')).toBeNull();
    expect(await seqs()).toHaveLength(10);
  });

  it('still catches tampering after a prune: an altered row, rows cut past the anchor, a forged anchor', async () => {
    await log.prune(new Date(T0 + 4 * DAY), 'engine');
    const remaining = await seqs();
    const [first, second] = remaining;

    await db.query(`UPDATE audit_events SET reason = 'none' WHERE seq = $1`, [second]);
    expect((await log.verify()).firstBreak).toEqual({ seq: second, problem: 'hash' });
    await db.query(`UPDATE audit_events SET reason = 'INC-1' WHERE seq = $1`, [second]);
    expect((await log.verify()).firstBreak).toBeNull();

    // Someone removes more of the head than retention did: the new first row does not link to the anchor.
    await db.query('DELETE FROM audit_events WHERE seq = $1', [first]);
    expect((await log.verify()).firstBreak).toEqual({ seq: second, problem: 'link' });

    // …and pointing the anchor at the row they removed breaks the anchor row's own hash.
    const { rows } = await db.query<{ hash: Buffer }>(
      'SELECT prev_hash AS hash FROM audit_events WHERE seq = $1',
      [second],
    );
    const anchorSeq = remaining.at(-1) as number;
    await db.query('UPDATE audit_events SET target = $2 WHERE seq = $1', [
      anchorSeq,
      `audit entries through seq ${first}; the chain continues from ${rows[0]?.hash.toString('hex')}`,
    ]);
    expect((await log.verify()).firstBreak).toEqual({ seq: anchorSeq, problem: 'hash' });
  });

  it('a head cut without any anchor is a broken link', async () => {
    const [first, second] = await seqs();
    await db.query('DELETE FROM audit_events WHERE seq = $1', [first]);
    expect((await log.verify()).firstBreak).toEqual({ seq: second, problem: 'link' });
  });
});
