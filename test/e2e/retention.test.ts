import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KeyRing } from '../../src/archive/keyring.js';
import { RawArchive } from '../../src/archive/raw-archive.js';
import { readEnv } from '../../src/config/env.js';
import { openKeyProvider } from '../../src/daemon/key-provider-factory.js';
import { DataKeyRepo } from '../../src/store/data-key-repo.js';
import { newMessageId } from '../../src/store/message-id.js';
import { MessageRepo } from '../../src/store/message-repo.js';
import { PgDb } from '../../src/store/pg-db.js';
import { type RunningEngine, startEngine } from '../support/engine-fixture.js';
import { CLI, EngineProcess, type LogEntry } from '../support/engine-process.js';
import { syntheticAdt } from '../support/resending-sender.js';

// The scheduled prune in the real daemon: a message received 100 days ago (written as intake writes
// it, with its receive time chosen) is pruned by the default policy without anyone asking, its day's
// data key is shredded, and the audit trail says so and still verifies.
const execCli = promisify(execFile);
const DAY = 86_400_000;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

describe('scheduled retention in the daemon', () => {
  let run: RunningEngine<'adt'>;
  let messageId: string;
  let keyId: string;

  const cli = async (...args: string[]) => {
    try {
      const { stdout } = await execCli(process.execPath, [CLI, ...args], {
        env: { ...process.env, ...run.env, HL7E_OPERATOR: 'alice', NO_COLOR: '1' },
      });
      return { stdout, code: 0 };
    } catch (err) {
      const e = err as { stdout: string; stderr: string; code: number };
      return { stdout: e.stdout + e.stderr, code: e.code };
    }
  };

  beforeAll(async () => {
    run = await startEngine({
      label: 'retention',
      channels: { adt: 'name: adt\nsource:\n  mllp: { port: 0, host: 127.0.0.1 }\n' },
      // Every few seconds instead of daily, so the test sees a run after its data is in place.
      env: { HL7E_RETENTION_INTERVAL_MS: '2000' },
    });
    cleanups.push(() => run.stop());

    const e = readEnv({ ...process.env, ...run.env });
    const store = new PgDb({ connectionString: run.databaseUrl, max: 2 });
    const provider = await openKeyProvider(e);
    const keyring = new KeyRing({
      provider,
      repo: new DataKeyRepo(store),
      maxAgeMs: DAY,
      maxRecords: 10,
      cacheMs: DAY,
    });
    const archive = new RawArchive(e.archiveDir, keyring, 'old0test');
    try {
      const receivedAt = new Date(Date.now() - 100 * DAY);
      messageId = newMessageId(receivedAt.getTime());
      const raw = Buffer.from(syntheticAdt('OLD0', 1, 1));
      await store.transaction(async (tx) => {
        // Holding the retention lock: a run must not find the record before its row (a stray to remove).
        await tx.query('SELECT pg_advisory_xact_lock(727400)');
        const [rec] = await archive.write([{ channel: 'adt', messageId, receivedAt, raw }]);
        if (!rec) throw new Error('not archived');
        keyId = rec.keyId;
        await keyring.rotateDataKey(); // retires the old day's key
        await new MessageRepo(tx).insertMany([
          {
            id: messageId,
            channel: 'adt',
            sender: 'REG|HOSP',
            controlId: 'OLD0',
            messageType: 'ADT^A08',
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
        await tx.query(`UPDATE messages SET status = 'processed', processed_at = now() WHERE id = $1`, [
          messageId,
        ]);
        // The key of that day, as the daily rotation would have left it.
        await tx.query('UPDATE data_keys SET created_at = $2, retired_at = $3 WHERE id = $1', [
          keyId,
          new Date(receivedAt.getTime() - DAY / 2).toISOString(),
          new Date(receivedAt.getTime() + DAY / 2).toISOString(),
        ]);
      });
    } finally {
      await archive.close();
      await keyring.close();
      await provider.close();
      await store.close();
    }
  }, 120_000);

  const pruneRun = async (): Promise<LogEntry> => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const hit = run.engine.entries.find(
        (x) => x.msg === 'retention prune' && (x.rawArchive as { files: number } | null)?.files === 1,
      );
      if (hit) return hit;
      if (Date.now() > deadline)
        throw new Error(`no retention run pruned the old file:\n${run.engine.output}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  it('prunes the old day, shreds its key, logs counts only and audits it', async () => {
    const policy = run.engine.entries.find((x) => x.msg === 'retention policy');
    expect(policy).toMatchObject({
      retention: { rawArchive: '90d', mapped: '90d', metadata: '1y', audit: '6y' },
      schedule: true,
    });

    const entry = await pruneRun();
    expect(entry).toMatchObject({
      rawArchive: { files: 1, messages: 1, keptFiles: 0, notRemoved: 0 },
      mapped: { bodies: 0 },
      metadata: { messages: 0 },
      audit: { entries: 0 },
      keys: { destroyed: 1 },
      failed: [],
    });

    const { rows } = await run.db.query<{ pruned: boolean; destroyed: boolean; len: number }>(
      `SELECT m.archive_pruned_at IS NOT NULL AS pruned, k.destroyed_at IS NOT NULL AS destroyed,
              length(k.wrapped_key) AS len
         FROM messages m JOIN data_keys k ON k.id = m.data_key_id WHERE m.id = $1`,
      [messageId],
    );
    // The row outlives its content (metadata: 1y) and says it was pruned; the key has no bytes left.
    expect(rows).toEqual([{ pruned: true, destroyed: true, len: 0 }]);

    const list = JSON.parse((await cli('audit', 'list', '--action', 'retention.prune', '--json')).stdout);
    expect(list.entries[0]).toMatchObject({ actor: 'engine', action: 'retention.prune' });
    expect(list.entries[0].outcome).toMatch(/^raw: 1 files, 1 messages; .*keys: 1 destroyed/);
    expect(await cli('audit', 'verify')).toMatchObject({ code: 0 });
  });

  it('the next run finds nothing left to prune', async () => {
    const runs = () => run.engine.entries.filter((x) => x.msg === 'retention prune').length;
    const seen = runs();
    const deadline = Date.now() + 30_000;
    while (runs() === seen) {
      if (Date.now() > deadline) throw new Error('no second retention run');
      await new Promise((r) => setTimeout(r, 100));
    }
    const last = run.engine.entries.filter((x) => x.msg === 'retention prune').at(-1);
    expect(last).toMatchObject({ rawArchive: { files: 0 }, keys: { destroyed: 0 }, failed: [] });
  });
});

describe('retention configuration', () => {
  it('refuses to start on an audit retention below six years, saying why', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7e-retention-config-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    mkdirSync(join(dir, 'channels'));
    writeFileSync(
      join(dir, 'channels', 'adt.yaml'),
      'name: adt\nsource:\n  mllp: { port: 0, host: 127.0.0.1 }\n',
    );
    writeFileSync(join(dir, 'retention.yaml'), 'raw: 30d\naudit: 1y\n');
    const engine = new EngineProcess(join(dir, 'channels'), {
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_MAPPINGS_DIR: join(dir, 'mappings'),
      HL7E_ROLES_FILE: join(dir, 'roles.yaml'),
      HL7E_RETENTION_FILE: join(dir, 'retention.yaml'),
    });
    expect(await engine.exited).not.toBe(0);
    expect(engine.output).toContain(
      'retention: audit (1y) is below 6y, the HIPAA §164.316(b)(2) minimum; set allowShortAudit: true to mean it',
    );
  }, 60_000);
});
