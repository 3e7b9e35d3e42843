import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/archive/keyring.js';
import { RawArchive } from '../../src/archive/raw-archive.js';
import { readEnv } from '../../src/config/env.js';
import { openKeyProvider } from '../../src/daemon/key-provider-factory.js';
import { DataKeyRepo } from '../../src/store/data-key-repo.js';
import { DeliveryRepo } from '../../src/store/delivery-repo.js';
import { newMessageId } from '../../src/store/message-id.js';
import { MessageRepo } from '../../src/store/message-repo.js';
import { PgDb } from '../../src/store/pg-db.js';
import { startEngine } from '../support/engine-fixture.js';
import { CLI, type EngineProcess } from '../support/engine-process.js';
import { newSendLog, sendAllResending, syntheticAdt } from '../support/resending-sender.js';

// The audit trail and archive retention as on-call uses them: the real daemon (its own Postgres
// database, Redis prefix and directories) and the built CLI as a process, with HL7E_OPERATOR naming
// who acts and a roles file that makes alice an admin and carol an analyst.
const execCli = promisify(execFile);
const DAY = 86_400_000;

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

describe('hl7e audit and hl7e archive prune against the running engine', () => {
  let dir: string;
  let env: Readonly<Record<string, string>>;
  let databaseUrl: string;
  let db: pg.Pool;
  let engine: EngineProcess;

  const cli = async (operator: string, ...args: string[]): Promise<Run> => {
    try {
      const { stdout, stderr } = await execCli(process.execPath, [CLI, ...args], {
        env: { ...process.env, ...env, HL7E_OPERATOR: operator, NO_COLOR: '1' },
      });
      return { stdout, stderr, code: 0 };
    } catch (err) {
      const e = err as { stdout: string; stderr: string; code: number };
      return { stdout: e.stdout, stderr: e.stderr, code: e.code };
    }
  };

  const auditRows = async () =>
    (
      await db.query<{ seq: number; actor: string; action: string; reason: string | null; outcome: string }>(
        'SELECT seq::int, actor, action, reason, outcome FROM audit_events ORDER BY seq',
      )
    ).rows;

  beforeAll(async () => {
    const run = await startEngine({
      label: 'oncall-audit',
      channels: { adt: 'name: adt\nsource:\n  mllp: { port: 0, host: 127.0.0.1 }\n' },
      files: { 'roles.yaml': 'operators:\n  alice: [admin]\n  carol: [analyst]\n' },
    });
    cleanups.push(() => run.stop());
    ({ dir, env, databaseUrl, engine, db } = run);

    // Today's traffic, through MLLP: its file is too recent for any prune.
    const log = newSendLog();
    await sendAllResending(
      run.ports.adt,
      [0, 1, 2].map((i) => ({ controlId: `TODAY${i}`, text: syntheticAdt(`TODAY${i}`, i, i) })),
      log,
    );
    expect(log.accepted.size).toBe(3);
  }, 120_000);

  describe('audit', () => {
    it('records what people do, with operator and reason; a status call is not recorded', async () => {
      // 0 or 1 (something needs attention): answered, not refused, and not an audited access.
      expect([0, 1]).toContain((await cli('alice', 'status')).code);
      expect(await auditRows()).toEqual([]);

      const first = await cli('alice', 'audit', 'verify', '--reason', 'INC-100 weekly check');
      expect(first).toMatchObject({ code: 0, stdout: 'audit chain intact: 0 entries\n' });

      // carol is an analyst: the audit trail is not hers to read, and the refusal is itself recorded.
      const denied = await cli('carol', 'audit', 'list');
      expect(denied.code).toBe(4);
      expect(denied.stderr).toContain('FORBIDDEN: operator carol may not audit.list (roles: analyst)');

      expect(await auditRows()).toEqual([
        { seq: 1, actor: 'alice', action: 'audit.verify', reason: 'INC-100 weekly check', outcome: 'ok' },
        { seq: 2, actor: 'carol', action: 'access.denied', reason: null, outcome: 'denied' },
      ]);

      const list = await cli('alice', 'audit', 'list', '--since', '1h');
      expect(list.code).toBe(0);
      const lines = list.stdout.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^SEQ\s+AT\s+OPERATOR\s+ACTION\s+OUTCOME\s+TARGET\s+REASON$/);
      expect(lines[2]).toMatch(
        /^1\s+\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\s+alice\s+audit\.verify\s+ok\s+0 entries\s+INC-100 weekly check$/,
      );
      expect(lines[3]).toMatch(/^2\s+\S+\s+carol\s+access\.denied\s+denied\s+audit\.list \/audit\s+-$/);

      const json = JSON.parse((await cli('alice', 'audit', 'list', '--operator', 'carol', '--json')).stdout);
      expect(json).toMatchObject({
        entries: [{ seq: 2, actor: 'carol', action: 'access.denied', target: 'audit.list /audit' }],
        next: null,
      });
      expect(json.entries[0].hash).toMatch(/^[0-9a-f]{16}$/);

      const paged = JSON.parse((await cli('alice', 'audit', 'list', '--limit', '1', '--json')).stdout);
      expect(paged).toMatchObject({ entries: [{ seq: 1 }], next: 1 });
      const page2 = JSON.parse(
        (await cli('alice', 'audit', 'list', '--limit', '1', '--after', '1', '--json')).stdout,
      );
      expect(page2.entries.map((e: { seq: number }) => e.seq)).toEqual([2]);

      expect((await cli('alice', 'audit', 'list', '--since', 'yesterday')).code).toBe(2);
    }, 180_000);

    it('verify: intact → exit 0 with the head; an altered row → exit 1 at that seq; a deleted row → the link after it', async () => {
      const ok = await cli('alice', 'audit', 'verify');
      expect(ok.code).toBe(0);
      const { rows } = await db.query<{ hash: Buffer }>('SELECT hash FROM audit_events WHERE seq = 2');
      expect(ok.stdout).toBe(
        `audit chain intact: 2 entries, head seq 2 hash ${(rows[0] as { hash: Buffer }).hash.toString('hex')}\n`,
      );

      // Someone with database access rewrites why they did something.
      await db.query(`UPDATE audit_events SET reason = 'routine' WHERE seq = 1`);
      const altered = await cli('alice', 'audit', 'verify');
      expect(altered.code).toBe(1);
      expect(altered.stdout).toMatch(/^audit chain broken at seq 1 \(hash\): .*altered after it was written/);
      const json = JSON.parse((await cli('alice', 'audit', 'verify', '--json')).stdout);
      expect(json).toEqual({ checked: 1, ok: false, firstBreak: { seq: 1, problem: 'hash' }, head: null });

      await db.query(`UPDATE audit_events SET reason = 'INC-100 weekly check' WHERE seq = 1`);
      expect((await cli('alice', 'audit', 'verify')).code).toBe(0);

      // …or removes the record of a refusal.
      await db.query('DELETE FROM audit_events WHERE seq = 2');
      const deleted = await cli('alice', 'audit', 'verify');
      expect(deleted.code).toBe(1);
      expect(deleted.stdout).toMatch(
        /^audit chain broken at seq 3 \(link\): .*deleted or one was inserted; entries up to seq 1 are intact/,
      );

      // Every verification is in the trail, with what it found.
      const verifies = (await auditRows()).filter((r) => r.action === 'audit.verify').map((r) => r.outcome);
      expect(verifies).toEqual([
        'ok',
        'ok',
        'broken at seq 1 (hash)',
        'broken at seq 1 (hash)',
        'ok',
        'broken at seq 3 (link)',
      ]);
    }, 180_000);
  });

  describe('archive prune', () => {
    const ids: Record<'doneA' | 'doneB' | 'finishedInKept' | 'held', string> = {
      doneA: '',
      doneB: '',
      finishedInKept: '',
      held: '',
    };
    /** The two old archive files, by how many days ago their messages arrived. */
    const oldFile: Record<40 | 41, string> = { 40: '', 41: '' };
    const files = () =>
      readdirSync(join(dir, 'archive', 'adt'))
        .map((f) => `adt/${f}`)
        .sort();

    beforeAll(async () => {
      // Messages received 40 and 41 days ago, written as intake writes them (same archive, keys and
      // rows) but with their receive time chosen: the archive names files by the time received.
      const e = readEnv({ ...process.env, ...env });
      const store = new PgDb({ connectionString: databaseUrl, max: 2 });
      const provider = await openKeyProvider(e);
      const keyring = new KeyRing({
        provider,
        repo: new DataKeyRepo(store),
        maxAgeMs: e.dataKeyMaxAgeMs,
        maxRecords: e.dataKeyMaxRecords,
        cacheMs: e.dataKeyCacheMs,
      });
      const archive = new RawArchive(e.archiveDir, keyring, 'old0test');
      try {
        const old = [
          { key: 'doneA', daysAgo: 40, status: 'delivered', delivery: 'delivered' },
          { key: 'doneB', daysAgo: 40, status: 'processed', delivery: null },
          { key: 'finishedInKept', daysAgo: 41, status: 'delivered', delivery: 'delivered' },
          { key: 'held', daysAgo: 41, status: 'processed', delivery: 'held' },
        ] as const;
        for (const [i, m] of old.entries()) {
          const receivedAt = new Date(Date.now() - m.daysAgo * DAY);
          const id = newMessageId(receivedAt.getTime());
          ids[m.key] = id;
          const raw = Buffer.from(syntheticAdt(`OLD${i}`, i, i));
          const [rec] = await archive.write([{ channel: 'adt', messageId: id, receivedAt, raw }]);
          if (!rec) throw new Error('not archived');
          oldFile[m.daysAgo] = rec.location.file;
          await store.transaction(async (tx) => {
            await new MessageRepo(tx).insertMany([
              {
                id,
                channel: 'adt',
                sender: 'REG|HOSP',
                controlId: `OLD${i}`,
                messageType: 'ADT^A01',
                version: '2.5.1',
                receivedAt,
                connectionId: 'old',
                status: 'received',
                ackCode: 'AA',
                errorCode: null,
                partition: 0,
                collisionOf: null,
                sha256: createHash('sha256').update(raw).digest(),
                byteLength: raw.length,
                dataKeyId: rec.keyId,
                archiveFile: rec.location.file,
                archiveOffset: rec.location.offset,
                archiveLength: rec.location.length,
              },
            ]);
            // In the same transaction, so the reconciler never sees them unprocessed.
            const { rows } = await tx.query<{ seq: number }>(
              `UPDATE messages SET status = $2, processed_at = now() WHERE id = $1 RETURNING seq`,
              [id, m.status],
            );
            if (m.delivery) {
              const [ref] = await new DeliveryRepo(store).createPendingMany(tx, [
                {
                  messageId: id,
                  channel: 'adt',
                  seq: (rows[0] as { seq: number }).seq,
                  destinations: ['ehr'],
                },
              ]);
              await tx.query('UPDATE deliveries SET status = $2 WHERE id = $1', [ref?.id, m.delivery]);
            }
          });
        }
      } finally {
        await archive.close();
        await keyring.close();
        await provider.close();
        await store.close();
      }
    }, 60_000);

    it('dry run lists the old finished file and the one kept for a message in flight; removes nothing', async () => {
      const before = files();
      expect(before).toHaveLength(3); // today's (the engine's) and the two old days'
      const dry = await cli('alice', 'archive', 'prune', '--older-than', '30d', '--dry-run');
      expect(dry.code).toBe(0);
      const out = dry.stdout;
      expect(out).toMatch(/^dry run: archive files of days before \S+ \(older than 30d\)\n/);
      const day40 = oldFile[40].slice(4, 14);
      expect(out).toMatch(new RegExp(`\\n${oldFile[40]}\\s+${day40}\\s+[\\d.]+ (B|KiB)\\s+2\\n`));
      expect(out).toMatch(/\nwould remove 1 file, [\d.]+ (B|KiB), 2 messages\n/);
      expect(out).toContain(
        `kept 1 file holding messages still in flight:\n  ${oldFile[41]}  1 of 2 messages in flight\n`,
      );
      expect(files()).toEqual(before);

      const json = JSON.parse(
        (await cli('alice', 'archive', 'prune', '--older-than', '30d', '--dry-run', '--json')).stdout,
      );
      expect(json.totals).toMatchObject({ files: 1, messages: 2 });
      expect(json.totals.bytes).toBeGreaterThan(0);
      // An age under a day could catch a file a writer is still appending to.
      expect((await cli('alice', 'archive', 'prune', '--older-than', '2h', '--dry-run')).code).toBe(2);
      // Pruning is an admin's: carol is refused, and that is recorded.
      const denied = await cli('carol', 'archive', 'prune', '--older-than', '30d', '--dry-run');
      expect(denied.code).toBe(4);
      expect((await auditRows()).at(-1)).toMatchObject({ actor: 'carol', action: 'access.denied' });
    }, 180_000);

    it('prunes the file, marks its messages, keeps the one in flight; raw reads answer "pruned"', async () => {
      const before = await cli(
        'alice',
        'messages',
        'show',
        ids.doneA,
        '--raw',
        '--reason',
        'INC-200 before prune',
      );
      expect(before.code).toBe(0);
      expect(before.stdout).toContain('OLD0');

      const run = await cli('alice', 'archive', 'prune', '--older-than', '30d', '--reason', 'retention RP-7');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        /\nremoved 1 file, [\d.]+ (B|KiB), 2 messages \(the messages are marked pruned\)\n/,
      );
      expect(files()).not.toContain(oldFile[40]);
      expect(files()).toContain(oldFile[41]);
      expect(files()).toHaveLength(2);

      const { rows } = await db.query<{ id: string; pruned: boolean }>(
        'SELECT id, archive_pruned_at IS NOT NULL AS pruned FROM messages WHERE id = ANY($1::uuid[])',
        [Object.values(ids)],
      );
      expect(Object.fromEntries(rows.map((r) => [r.id, r.pruned]))).toEqual({
        [ids.doneA]: true,
        [ids.doneB]: true,
        [ids.finishedInKept]: false,
        [ids.held]: false,
      });
      expect((await auditRows()).at(-1)).toMatchObject({
        actor: 'alice',
        action: 'archive.prune',
        reason: 'retention RP-7',
        outcome: expect.stringMatching(/^pruned 1 files, \d+ bytes, 2 messages; 1 kept \(in flight\)$/),
      });

      const gone = await cli(
        'alice',
        'messages',
        'show',
        ids.doneA,
        '--raw',
        '--reason',
        'INC-200 after prune',
      );
      expect(gone.code).toBe(1);
      expect(gone.stderr).toMatch(/ARCHIVE_PRUNED: .*pruned/);
      expect(gone.stderr).not.toContain('OLD0');
      // The message in the kept file still reads.
      const kept = await cli('alice', 'messages', 'show', ids.held, '--raw', '--reason', 'INC-200 kept');
      expect(kept.code).toBe(0);
      expect(kept.stdout).toContain('OLD3');

      expect((await cli('alice', 'audit', 'verify')).code).toBe(1); // still the deleted row of before
    }, 180_000);

    it('with the engine stopped, prunes with the store directly, under the same roles and audit', async () => {
      expect(await engine.kill('SIGTERM')).toBe(0);
      await db.query(`UPDATE deliveries SET status = 'delivered' WHERE message_id = $1`, [ids.held]);

      const denied = await cli('carol', 'archive', 'prune', '--older-than', '30d');
      expect(denied.code).toBe(4);
      expect(denied.stderr).toContain('operator carol may not archive.prune');

      const run = await cli('alice', 'archive', 'prune', '--older-than', '30d', '--reason', 'retention RP-7');
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/\nremoved 1 file, [\d.]+ (B|KiB), 2 messages/);
      expect(files()).toHaveLength(1);
      expect(existsSync(join(dir, 'archive', oldFile[41]))).toBe(false);
      expect((await auditRows()).slice(-2)).toMatchObject([
        { actor: 'carol', action: 'access.denied', outcome: 'denied' },
        {
          actor: 'alice',
          action: 'archive.prune',
          reason: 'retention RP-7',
          outcome: expect.stringMatching(/^pruned 1 files, \d+ bytes, 2 messages$/),
        },
      ]);
    }, 180_000);
  });
});
