import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { AUDIT_MIN_MS, type RetentionPolicy } from '../config/retention-config.js';
import { AuditLog } from '../observability/audit-log.js';
import { AuditRepo } from '../store/audit-repo.js';
import { migrate } from '../store/migrations.js';
import { PgDb } from '../store/pg-db.js';
import { RetentionRepo } from '../store/retention-repo.js';
import type { RetentionReport } from './retention.js';
import { RetentionSchedule } from './retention-schedule.js';

// Several engines share one Postgres: the scheduled prune runs in one of them at a time (advisory
// lock) and once per interval (the claimed run), whichever engine's timer fires first.

const DAY = 86_400_000;
const POLICY: RetentionPolicy = {
  raw: 30 * DAY,
  mapped: 30 * DAY,
  metadata: 60 * DAY,
  audit: AUDIT_MIN_MS,
  schedule: true,
  intervalMs: DAY,
  file: undefined,
  warnings: [],
};

describe('RetentionSchedule on Postgres', () => {
  let tdb: TestDatabase;
  let db: PgDb;
  let dir: string;
  let now = new Date('2026-06-01T12:00:00Z');
  const schedules: RetentionSchedule[] = [];

  /** One engine's schedule; what it ran and what it skipped. */
  const engine = (holder: string, onRun?: (r: RetentionReport) => void) => {
    const ran: RetentionReport[] = [];
    const skipped: string[] = [];
    const errors: unknown[] = [];
    const schedule = new RetentionSchedule({
      deps: {
        db,
        archiveDir: join(dir, 'archive'),
        audit: new AuditLog(new AuditRepo(db), () => now),
        now: () => now,
      },
      repo: new RetentionRepo(db),
      policy: POLICY,
      holder,
      firstDelayMs: 0,
      onRun: (r) => {
        ran.push(r);
        onRun?.(r);
      },
      onSkip: (reason) => skipped.push(reason),
      onError: (err) => errors.push(err),
    });
    schedules.push(schedule);
    return { schedule, ran, skipped, errors };
  };

  beforeAll(async () => {
    tdb = await createTestDatabase('retention_schedule');
    db = new PgDb({ connectionString: tdb.url });
    await migrate(db);
    dir = mkdtempSync(join(tmpdir(), 'hl7e-retention-schedule-'));
  }, 60_000);

  afterAll(async () => {
    for (const s of schedules) await s.stop();
    await db?.close();
    await tdb?.drop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs once per interval across engines, and never two at a time', async () => {
    const a = engine('engine-a:1');
    const b = engine('engine-b:2');

    expect(await a.schedule.runNow()).toMatchObject({ at: now.toISOString(), failed: [] });
    expect(await b.schedule.runNow()).toBeUndefined();
    expect(b.skipped).toEqual(['recent']);

    // Another engine is mid-run: this one does not wait for it, it skips.
    now = new Date(now.getTime() + DAY);
    let release = () => {};
    const held = new Promise<void>((r) => {
      release = r;
    });
    let locked = () => {};
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const holder = db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock(727400)');
      locked();
      await held;
    });
    await isLocked;
    expect(await b.schedule.runNow()).toBeUndefined();
    expect(b.skipped).toEqual(['recent', 'locked']);
    release();
    await holder;

    expect(await b.schedule.runNow()).toMatchObject({ at: now.toISOString() });
    const { rows } = await db.query<{ holder: string; finished_at: Date | null }>(
      'SELECT holder, finished_at FROM retention_runs',
    );
    expect(rows).toEqual([{ holder: 'engine-b:2', finished_at: now }]);
    const runs = await new AuditRepo(db).list({ action: 'retention.prune' });
    expect(runs.map((r) => r.actor)).toEqual(['engine', 'engine']);
    expect([a.errors, b.errors]).toEqual([[], []]);
  });

  it('start runs the first pass by itself; stop is safe twice and ends it', async () => {
    now = new Date(now.getTime() + DAY);
    let first: (r: RetentionReport) => void = () => {};
    const ran = new Promise<RetentionReport>((r) => {
      first = r;
    });
    const c = engine('engine-c:3', first);
    c.schedule.start();
    c.schedule.start();
    expect((await ran).at).toBe(now.toISOString());
    await c.schedule.stop();
    await c.schedule.stop();
    now = new Date(now.getTime() + DAY);
    expect(await c.schedule.runNow()).toBeUndefined();
    expect(c.ran).toHaveLength(1);
  });
});
