import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, EngineProcess } from '../support/engine-process.js';
import { createTestDatabase, type TestDatabase } from '../support/postgres.js';
import { freePort } from '../support/private-services.js';
import { newSendLog, sendAllResending, syntheticAdt } from '../support/resending-sender.js';

// `hl7e archive verify` and `hl7e keys rotate` as an operator runs them: the built CLI as a process,
// against what the real daemon wrote — on the embedded store (engine stopped) and on Postgres (running).
const execCli = promisify(execFile);

async function cli(
  env: Record<string, string>,
  ...args: string[]
): Promise<{ stdout: string; code: number }> {
  try {
    const { stdout } = await execCli(process.execPath, [CLI, ...args], { env: { ...process.env, ...env } });
    return { stdout, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout + e.stderr, code: e.code };
  }
}

function channelDir(dir: string, port: number): string {
  const channels = join(dir, 'channels');
  rmSync(channels, { recursive: true, force: true });
  mkdirSync(channels, { recursive: true });
  writeFileSync(
    join(channels, 'adt.yaml'),
    `name: adt\nsource:\n  mllp: { port: ${port}, host: 127.0.0.1 }\n`,
  );
  return channels;
}

async function send(port: number, prefix: string, count: number): Promise<void> {
  const log = newSendLog();
  const messages = Array.from({ length: count }, (_, i) => {
    const controlId = `${prefix}${i}`;
    return { controlId, text: syntheticAdt(controlId, i % 7, i) };
  });
  await sendAllResending(port, messages, log);
  expect(log.accepted.size).toBe(count);
}

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('hl7e archive verify / keys rotate on the embedded store', () => {
  let dir: string;
  let env: Record<string, string>;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'hl7e-archive-cli-'));
    dirs.push(dir);
    env = {
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_QUEUE_PREFIX: `archive-cli-${process.pid}`,
    };
    const port = await freePort();
    const engine = new EngineProcess(channelDir(dir, port), env);
    await engine.listening(['adt']);
    await send(port, 'V', 20);
    // While the engine holds the embedded store, offline commands refuse instead of corrupting it.
    const busy = await cli(env, 'archive', 'verify');
    expect(busy.code).toBe(1);
    expect(busy.stdout).toMatch(/in use by a running engine \(pid \d+\)/);
    expect(await engine.kill('SIGTERM')).toBe(0);
  }, 60_000);

  it('verifies every record, rotates the master key, and still verifies', async () => {
    const first = await cli(env, 'archive', 'verify');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain('archive verify: 20 records in 1 file');
    expect(first.stdout).toMatch(/ok\s+20\n/);

    const rotated = await cli(env, 'keys', 'rotate');
    expect(rotated.code).toBe(0);
    expect(rotated.stdout).toMatch(/master key rotated: lmk-0002-/);
    // The archive's data key and the delivery ordering-key secret, both kept wrapped in data_keys.
    expect(rotated.stdout).toContain('data keys re-wrapped: 2 of 2');
    const keyFile = JSON.parse(readFileSync(join(dir, 'data', 'master-key.json'), 'utf8')) as {
      keys: unknown[];
    };
    expect(keyFile.keys).toHaveLength(2);
    expect(statSync(join(dir, 'data', 'master-key.json')).mode & 0o777).toBe(0o600);

    const json = await cli(env, 'archive', 'verify', '--json');
    expect(JSON.parse(json.stdout)).toMatchObject({
      records: 20,
      ok: 20,
      failed: [],
      unreferenced: 0,
      tornTails: 0,
    });
  }, 60_000);

  it('reports a tampered record by message id and code, and exits 1', async () => {
    const adt = join(dir, 'archive', 'adt');
    const file = join(adt, readdirSync(adt)[0] as string);
    const bytes = readFileSync(file);
    bytes[bytes.length - 1] = (bytes[bytes.length - 1] as number) ^ 0x01; // last ciphertext byte
    writeFileSync(file, bytes);
    const r = await cli(env, 'archive', 'verify');
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/ok\s+19\n/);
    expect(r.stdout).toMatch(/[0-9a-f-]{36} {2}ARCHIVE_DECRYPT_FAILED {2}adt\/\S+\.h7a@\d+/);
  }, 60_000);
});

describe('hl7e keys rotate on Postgres while the engine runs', () => {
  let db: TestDatabase;
  let pool: pg.Pool;

  beforeAll(async () => {
    db = await createTestDatabase('keys_rotate');
    pool = new pg.Pool({ connectionString: db.url, max: 1 });
  });
  afterAll(async () => {
    await pool?.end();
    await db?.drop();
  });

  it('rotates with no downtime: new records use a data key under the new master key, old ones stay readable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hl7e-rotate-'));
    dirs.push(dir);
    const env = {
      HL7E_DATABASE_URL: db.url,
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_QUEUE_PREFIX: `rotate-${process.pid}`,
    };
    const port = await freePort();
    const engine = new EngineProcess(channelDir(dir, port), env);
    try {
      await engine.listening(['adt']);
      await send(port, 'R1-', 10);
      const rotated = await cli(env, 'keys', 'rotate');
      expect(rotated.code).toBe(0);
      const newMaster = /master key rotated: (\S+)/.exec(rotated.stdout)?.[1];
      expect(newMaster).toBeDefined();
      // The engine checks the master key every few seconds; keep sending meanwhile — nothing stops.
      const deadline = Date.now() + 20_000;
      let i = 0;
      for (;;) {
        await send(port, `R2-${i++}-`, 5);
        const { rows } = await pool.query<{ master_key_id: string }>(
          `SELECT d.master_key_id FROM messages m JOIN data_keys d ON d.id = m.data_key_id
            ORDER BY m.seq DESC LIMIT 1`,
        );
        if (rows[0]?.master_key_id === newMaster) break;
        if (Date.now() > deadline) throw new Error('the engine never switched to the new master key');
        await new Promise((r) => setTimeout(r, 500));
      }
      const verify = await cli(env, 'archive', 'verify', '--json');
      const report = JSON.parse(verify.stdout) as { records: number; ok: number; failed: unknown[] };
      expect(verify.code).toBe(0);
      expect(report.records).toBe(10 + 5 * i);
      expect(report.ok).toBe(report.records);
      const keys = await pool.query<{ n: number }>(
        'SELECT count(DISTINCT master_key_id)::int AS n FROM data_keys',
      );
      expect(keys.rows[0]?.n).toBe(1); // the old data key was re-wrapped under the new master key too
    } finally {
      await engine.kill('SIGTERM');
    }
  }, 90_000);
});
