import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineProcess } from '../support/engine-process.js';
import { KmsTestServer } from '../support/kms-server.js';
import {
  freePort,
  type PrivatePostgres,
  type PrivateRedis,
  startPrivatePostgres,
  startPrivateRedis,
} from '../support/private-services.js';
import { newSendLog, type SendLog, sendAllResending, syntheticAdt } from '../support/resending-sender.js';

// DESIGN rules 1-3 against the real daemon process, with private Postgres and Redis servers that this
// file may kill, stop and flush without disturbing the shared ones other test files use in parallel.
// Keys come from AWS KMS — the real @aws-sdk/client-kms in the daemon talking to a local KMS endpoint.

/** The whole scenario set for one queue backend (HL7E_QUEUE). */
export function durableIntakeSuite(queue: 'redis' | 'postgres'): void {
  let pgServer: PrivatePostgres;
  let redisServer: PrivateRedis;
  let kms: KmsTestServer;
  let dir: string;
  let port: number;
  let env: Record<string, string>;
  let db: pg.Pool;
  const engines: EngineProcess[] = [];

  const CHANNEL = 'adt';
  const PATIENTS = 60;

  beforeAll(async () => {
    [pgServer, redisServer] = await Promise.all([startPrivatePostgres(), startPrivateRedis()]);
    kms = new KmsTestServer();
    const key = kms.createKey({ alias: 'hl7e-archive' });
    const { endpoint } = await kms.start();
    dir = mkdtempSync(join(tmpdir(), 'hl7e-durable-'));
    port = await freePort();
    writeFileSync(
      join(dir, `${CHANNEL}.yaml`),
      [
        `name: ${CHANNEL}`,
        'source:',
        `  mllp: { port: ${port}, host: 127.0.0.1 }`,
        'accept: [ADT^A*]',
        'destinations:',
        '  - name: ehr',
        '    fhir: { baseUrl: http://127.0.0.1:9/fhir }',
        '',
      ].join('\n'),
    );
    env = {
      HL7E_DATABASE_URL: pgServer.url,
      HL7E_REDIS_URL: redisServer.url,
      HL7E_DATA_DIR: join(dir, 'data'),
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_QUEUE_PREFIX: 'durable',
      HL7E_QUEUE: queue,
      HL7E_PARTITIONS: '8',
      HL7E_RECONCILE_INTERVAL_MS: '1000',
      HL7E_KMS_KEY_ID: key.arn,
      HL7E_KMS_ENDPOINT: endpoint,
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'AKIDTESTTEST',
      AWS_SECRET_ACCESS_KEY: 'test-secret',
      HL7E_INTAKE_COMMIT_TIMEOUT_MS: '5000',
    };
    db = new pg.Pool({ connectionString: pgServer.url, max: 2 });
    db.on('error', () => {});
  }, 60_000);

  afterAll(async () => {
    await Promise.all(engines.map((e) => e.kill('SIGKILL')));
    await db?.end();
    await kms?.close();
    await redisServer?.stop();
    await pgServer?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  async function startEngine(): Promise<EngineProcess> {
    const engine = new EngineProcess(dir, env);
    engines.push(engine);
    await engine.listening([CHANNEL]);
    return engine;
  }

  /** `count` messages spread over `connections` lists; patients cycle so each patient has many in order. */
  function batch(prefix: string, count: number, connections: number) {
    const lists: { controlId: string; text: string }[][] = Array.from({ length: connections }, () => []);
    for (let i = 0; i < count; i++) {
      const controlId = `${prefix}${String(i).padStart(5, '0')}`;
      // A patient's messages all go over one connection, so "arrival order" per patient is well defined.
      const patient = i % PATIENTS;
      lists[patient % connections]?.push({ controlId, text: syntheticAdt(controlId, patient, i) });
    }
    return lists;
  }

  async function until(
    what: string,
    check: () => Promise<boolean> | boolean,
    timeoutMs = 60_000,
  ): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!(await check())) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  async function unfinished(prefix: string): Promise<number> {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM messages WHERE control_id LIKE $1 AND status = 'received'`,
      [`${prefix}%`],
    );
    return rows[0]?.n ?? -1;
  }

  /** The checks every scenario ends with: stored once, processed once, in order per patient. */
  async function expectStoredAndProcessedOnce(prefix: string, total: number, log: SendLog): Promise<void> {
    await until(`${prefix} processing`, async () => (await unfinished(prefix)) === 0);
    const { rows } = await db.query<{ control_id: string; rows: number; processed: number }>(
      `SELECT m.control_id, count(DISTINCT m.id)::int AS rows,
            count(e.id) FILTER (WHERE e.event = 'processed')::int AS processed
       FROM messages m LEFT JOIN message_events e ON e.message_id = m.id
      WHERE m.control_id LIKE $1 GROUP BY m.control_id`,
      [`${prefix}%`],
    );
    const byId = new Map(rows.map((r) => [r.control_id, r]));
    // Every message the sender saw AA for is stored …
    for (const id of log.accepted) expect(byId.get(id), id).toBeDefined();
    expect(log.accepted.size).toBe(total);
    // … exactly once (a resend of a message committed before its ACK was lost is a duplicate, not a row) …
    expect(rows.filter((r) => r.rows !== 1)).toEqual([]);
    expect(rows.length).toBe(total);
    // … and processed exactly once.
    expect(rows.filter((r) => r.processed !== 1)).toEqual([]);
    // Per partition (hence per patient), processing order is arrival order.
    const order = await db.query<{ partition: number; seq: number }>(
      `SELECT m.partition, m.seq::int AS seq FROM message_events e JOIN messages m ON m.id = e.message_id
      WHERE e.event = 'processed' AND m.control_id LIKE $1 ORDER BY e.id`,
      [`${prefix}%`],
    );
    const last = new Map<number, number>();
    const outOfOrder = order.rows.filter((r) => {
      const before = last.get(r.partition) ?? -1;
      last.set(r.partition, r.seq);
      return r.seq < before;
    });
    expect(outOfOrder).toEqual([]);
  }

  describe(`durable intake against the real daemon (queue: ${queue})`, () => {
    it('SIGKILL mid-stream: every AA message is stored and processed exactly once, in order', async () => {
      let engine = await startEngine();
      const log = newSendLog();
      let acks = 0;
      const senders = batch('K', 2000, 4).map((list) =>
        sendAllResending(port, list, log, { onAck: () => void acks++, ackTimeoutMs: 10_000 }),
      );
      await until('600 ACKs', () => acks >= 600);
      await engine.kill('SIGKILL');
      const ackedAtKill = log.accepted.size;
      engine = await startEngine();
      await Promise.all(senders);
      expect(ackedAtKill).toBeGreaterThan(500);
      expect(ackedAtKill).toBeLessThan(2000);
      expect(log.failures).toBeGreaterThan(0); // the kill really cut connections mid-stream
      await expectStoredAndProcessedOnce('K', 2000, log);
      expect(
        engine.entries.some(
          (e) => e.msg === 'reconciler re-enqueued unfinished messages' || e.msg === 'listening',
        ),
      ).toBe(true);
    }, 180_000);

    it.runIf(queue === 'redis')(
      'Redis FLUSHALL mid-stream: every message still completes (later drains and the reconciler)',
      async () => {
        const log = newSendLog();
        let acks = 0;
        const senders = batch('F', 1000, 4).map((list) =>
          sendAllResending(port, list, log, { onAck: () => void acks++ }),
        );
        await until('300 ACKs', () => acks >= 300);
        const redis = new Redis(redisServer.url);
        await redis.flushall();
        await redis.quit();
        await Promise.all(senders);
        // Jobs lost with the flush are covered by any later job of their partition (a job drains its
        // partition) and, for partitions that got no later message, by the reconciler's next pass.
        await expectStoredAndProcessedOnce('F', 1000, log);
        expect((engines.at(-1) as EngineProcess).proc.exitCode).toBeNull();
      },
      120_000,
    );

    it('Postgres stopped mid-stream: AE/CE instead of AA, no hang, and intake recovers by itself', async () => {
      const log = newSendLog();
      let acks = 0;
      let stoppedAt = 0;
      let restartedAt = 0;
      const senders = batch('P', 600, 4).map((list) =>
        sendAllResending(port, list, log, {
          onAck: () => void acks++,
          retryDelayMs: 200,
          ackTimeoutMs: 15_000,
        }),
      );
      await until('150 ACKs', () => acks >= 150);
      await pgServer.stopServer();
      stoppedAt = Date.now();
      await new Promise((r) => setTimeout(r, 3_000));
      await pgServer.startServer();
      restartedAt = Date.now();
      await Promise.all(senders);
      const during = log.codes.filter((c) => c.at > stoppedAt + 100 && c.at < restartedAt);
      // While Postgres was down, answers kept coming (no hang) and none of them was AA.
      expect(during.length).toBeGreaterThan(0);
      expect(during.filter((c) => c.code === 'AA')).toEqual([]);
      expect(during.every((c) => c.code === 'AE')).toBe(true);
      expect(Math.max(...log.codes.map((c) => c.ms))).toBeLessThan(15_000);
      // No transport failures: every message got an answer rather than a timeout or a dropped connection.
      expect(log.failures).toBe(0);
      await expectStoredAndProcessedOnce('P', 600, log);
      // The outage was survived by the same process, not by a crash and restart.
      expect((engines.at(-1) as EngineProcess).proc.exitCode).toBeNull();
    }, 120_000);

    it('leaves no plaintext in the archive, Redis, the logs or the database', async () => {
      // Names, identifiers and addresses of the messages sent above (see syntheticAdt).
      const secrets = ['Zyxwvname', 'Qponfirst', 'MRNX000', 'Qqqstreet', 'Springfield', '19700101'];
      const archiveDir = join(dir, 'archive', CHANNEL);
      const files = readdirSync(archiveDir);
      expect(files.length).toBeGreaterThan(0);
      const archive = Buffer.concat(files.map((f) => readFileSync(join(archiveDir, f))));
      expect(archive.length).toBeGreaterThan(2000 * 200);

      const redis = new Redis(redisServer.url);
      const dumped: string[] = [];
      for (const key of await redis.keys('*')) {
        const type = await redis.type(key);
        dumped.push(key);
        if (type === 'string') dumped.push((await redis.get(key)) ?? '');
        else if (type === 'hash') dumped.push(JSON.stringify(await redis.hgetall(key)));
        else if (type === 'list') dumped.push(JSON.stringify(await redis.lrange(key, 0, -1)));
        else if (type === 'set') dumped.push(JSON.stringify(await redis.smembers(key)));
        else if (type === 'zset') dumped.push(JSON.stringify(await redis.zrange(key, 0, -1)));
        else if (type === 'stream') dumped.push(JSON.stringify(await redis.xrange(key, '-', '+')));
      }
      await redis.quit();
      // With HL7E_QUEUE=postgres nothing may be in Redis; the queue tables are in the pg_dump below.
      if (queue === 'redis') expect(dumped.length).toBeGreaterThan(0);
      else expect(dumped).toEqual([]);

      const sqlDump = execFileSync('pg_dump', ['--data-only', pgServer.url], {
        maxBuffer: 256 << 20,
      }).toString();
      if (queue === 'postgres') expect(sqlDump).toMatch(/COPY bullmq\./);
      expect(sqlDump).toContain('K00042'); // control ids are stored in clear: they are not PHI
      const logs = engines.map((e) => e.output).join('\n');

      for (const secret of secrets) {
        expect(archive.includes(Buffer.from(secret)), `archive contains ${secret}`).toBe(false);
        expect(dumped.join('\n').includes(secret), `redis contains ${secret}`).toBe(false);
        expect(logs.includes(secret), `logs contain ${secret}`).toBe(false);
        expect(sqlDump.includes(secret), `database contains ${secret}`).toBe(false);
      }
      // The data keys at rest are KMS ciphertext blobs, not 32-byte keys.
      const keys = await db.query<{ provider: string; n: number }>(
        'SELECT provider, length(wrapped_key)::int AS n FROM data_keys',
      );
      expect(keys.rows.length).toBeGreaterThan(0);
      for (const k of keys.rows) {
        expect(k.provider).toBe('aws-kms');
        expect(k.n).toBeGreaterThan(32);
      }
      expect(kms.calls.GenerateDataKey ?? 0).toBeGreaterThan(0);
    }, 60_000);
  });
}
