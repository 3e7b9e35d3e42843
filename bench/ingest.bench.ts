/**
 * Ingest benchmark: the real daemon (`dist/cli/main.js start`, spawned through test/support/engine-process)
 * on this machine's Postgres (a fresh database) and Redis (a unique queue prefix), driven by N concurrent
 * MLLP connections (the engine's own MllpSender), each sending one message and waiting for its ACK before
 * the next, as MLLP senders do. Durable commit: the daemon ACKs only after its group commit has
 * fdatasync'ed the encrypted archive and committed the row in Postgres (fsync and synchronous_commit as
 * the server is configured; this benchmark changes no server setting).
 *
 * Runs, each --warmup s (not counted) + --seconds s (measured):
 *   - open-loop paced runs at each of --rates msg/s: connection i of N sends its k-th message at
 *     t0 + (k·N + i)/rate. When that time comes while the connection still waits for its previous ACK,
 *     the send goes out as soon as the ACK arrives (counted in "sends delayed"), and later sends keep the
 *     original schedule, so the achieved rate shows what the engine sustained;
 *   - a closed-loop run last (every connection sends again as soon as its ACK arrives): the maximum with
 *     N connections. It runs last so the processing backlog it may leave cannot disturb the paced runs.
 * Between runs the benchmark waits (up to --settle s) for the processing workers to empty the backlog.
 *
 * Latency: from handing the message to the sender (written at once: the connection is idle) to its ACK,
 * performance.now(), counted for ACKs received inside the measured window. CPU: /proc/<pid>/stat of the
 * daemon, of the Postgres cluster serving 127.0.0.1:5432 (postmaster + its children) and of the Redis
 * server on the queue URL; process.cpuUsage() for this load generator; /proc/stat for the whole machine,
 * its interrupt + softirq time (loopback TCP is largely processed there) and "other" = machine busy − all
 * of these, with the busiest other processes named (the machine may be shared). "ACKs/burst": ACKs that
 * arrived < 0.5 ms after the previous one form a burst — a rough, low estimate of the group-commit batch
 * size seen from outside (the daemon does not log batches; with N closed-loop connections a batch can
 * never hold more than N messages).
 *
 * Afterwards: every AA must be a stored row (count and MSH-10 set compared; exit 1 if not), and the
 * benchmark waits up to --drain s for processing to finish, reporting processing throughput.
 *
 *   npm run bench:ingest                      # builds, then runs with the defaults
 *   npx tsx bench/ingest.bench.ts --senders 32 --rates 1000,3000 --seconds 10 --warmup 2
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import pg from 'pg';
import { isEngineError } from '../src/errors.js';
import { MllpSender } from '../src/mllp/index.js';
import { EngineProcess } from '../test/support/engine-process.js';
import { ADMIN_URL, createTestDatabase, type TestDatabase } from '../test/support/postgres.js';
import { freePort } from '../test/support/private-services.js';
import {
  deleteKeysMatching,
  postmasterPid,
  redisServerPid,
  reportBenchFailure,
  stopDaemon,
  deathWatch as watchDaemon,
} from './support/bench-daemon.js';
import {
  type CpuReport,
  type CpuSnapshot,
  cpuBetween as cpuBetweenFor,
  cpuSnapshot,
  type Roles,
} from './support/proc-cpu.js';
import { fmt, inc, markdown, mean, percentile } from './support/report-format.js';
import { hl7Now, type Patient, readAck, SyntheticHl7 } from './support/synthetic-hl7.js';

// ---------------------------------------------------------------------------------------------------------
// Arguments

const { values: args } = parseArgs({
  options: {
    senders: { type: 'string', default: '64' },
    rates: { type: 'string', default: '500,1000,2000,3000' },
    seconds: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '2' },
    settle: { type: 'string', default: '20' },
    drain: { type: 'string', default: '30' },
    'no-closed': { type: 'boolean', default: false },
    profile: { type: 'string' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: tsx bench/ingest.bench.ts [--senders 64] [--rates 500,1000,2000,3000] [--seconds 10] [--warmup 2]\n' +
      '                                 [--settle 20] [--drain 30] [--no-closed] [--redis-url URL]\n' +
      "                                 [--profile DIR]  (writes the daemon's V8 CPU profile to DIR)\n" +
      'Postgres: HL7E_TEST_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres); a fresh database is\n' +
      'created and dropped. Needs a build (npm run build): npm run bench:ingest does both.',
  );
  process.exit(0);
}

function positive(name: string, text: string | undefined, min = 1): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number ≥ ${min}`);
    process.exit(2);
  }
  return n;
}
const SENDERS = Math.floor(positive('senders', args.senders));
const SECONDS = positive('seconds', args.seconds, 0.5);
const WARMUP = positive('warmup', args.warmup, 0);
const SETTLE = positive('settle', args.settle, 0);
const DRAIN = positive('drain', args.drain, 0);
const RATES = (args.rates ?? '')
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)
  .map((s) => positive('rates', s));
const REDIS_URL = args['redis-url'] ?? 'redis://127.0.0.1:6379';
/** Bound on one run: its own length plus generous time for the last ACKs and the senders' timeouts. */
const RUN_TIMEOUT_MS = (WARMUP + SECONDS) * 1000 + 45_000;
const ACK_TIMEOUT_MS = 15_000;
const BURST_GAP_MS = 0.5;
const IDLE_SECONDS = 3;

// ---------------------------------------------------------------------------------------------------------
// Synthetic messages (no real patient data, support/synthetic-hl7.ts): ADT^A01 and ORU^R01 alternating,
// unique MSH-10, PID-3 drawn from PATIENTS synthetic patients so ordering partitions are exercised.

const PATIENTS = 1000;
const synthetic = new SyntheticHl7(0x4c37, PATIENTS);
const rand = synthetic.rand;
const patients = synthetic.patients;

const RUN_TAG = randomBytes(3).toString('hex').toUpperCase();
let controlSeq = 0;

function nextMessage(): { text: string; controlId: string; type: 'ADT^A01' | 'ORU^R01' } {
  controlSeq += 1;
  const controlId = `B${RUN_TAG}${controlSeq.toString(36).toUpperCase().padStart(7, '0')}`;
  const p = patients[Math.floor(rand() * PATIENTS)] as Patient;
  const ts = hl7Now();
  return controlSeq % 2 === 0
    ? { text: synthetic.adtA01(controlId, p, ts, controlSeq), controlId, type: 'ADT^A01' }
    : { text: synthetic.oruR01(controlId, p, ts), controlId, type: 'ORU^R01' };
}

/** Byte sizes of a sample from the generator, per message type (the sample's control ids are not sent). */
function sizeSummary(n: number): string {
  const by = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const m = nextMessage();
    const list = by.get(m.type) ?? [];
    list.push(Buffer.byteLength(m.text));
    by.set(m.type, list);
  }
  controlSeq = 0;
  return [...by]
    .map(([type, xs]) => `${type} ${Math.min(...xs)}–${Math.max(...xs)} B (mean ${Math.round(mean(xs))})`)
    .join(', ');
}

// ---------------------------------------------------------------------------------------------------------
// Runs

interface RunStats {
  label: string;
  offered: number | undefined;
  latencies: number[];
  ackTimes: number[];
  aa: number;
  nonAa: Map<string, number>;
  errors: Map<string, number>;
  /** Paced runs: sends whose scheduled time passed while their connection still waited for an ACK. */
  delayed: number;
  scheduled: number;
  lags: number[];
  backlogAtStart: number;
  backlogAtEnd: number;
  processed: number;
  cpu?: CpuReport;
  walSyncs?: number;
  xacts?: number;
}

function burstMean(times: readonly number[]): number {
  if (times.length === 0) return Number.NaN;
  const sorted = Float64Array.from(times).sort();
  let bursts = 1;
  for (let i = 1; i < sorted.length; i++) {
    if ((sorted[i] as number) - (sorted[i - 1] as number) >= BURST_GAP_MS) bursts++;
  }
  return sorted.length / bursts;
}

async function main(): Promise<number> {
  const log = (line = '') => console.log(line);
  let db: TestDatabase | undefined;
  let engine: EngineProcess | undefined;
  let client: pg.Client | undefined;
  let redis: Redis | undefined;
  const senders: MllpSender[] = [];
  const root = mkdtempSync(join(tmpdir(), 'hl7e-ingest-bench-'));
  const prefix = `hl7e_bench_${randomBytes(4).toString('hex')}`;
  let stopping = false;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    console.error('interrupted: cleaning up');
  };
  // `on`, not `once`: Ctrl-C reaches this process twice (from the terminal and relayed by tsx).
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // --- setup -----------------------------------------------------------------------------------------
    db = await createTestDatabase('bench');
    client = new pg.Client({ connectionString: db.url });
    await client.connect();
    const settings = await client.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'server_version')`,
    );
    const pgSettings = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
    const postmaster = await postmasterPid(client);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: true });
    await redis.connect();
    const redisPid = await redisServerPid(redis);

    const dataDir = join(root, 'data');
    const archiveDir = join(root, 'archive');
    const channelsDir = join(root, 'channels');
    mkdirSync(dataDir);
    mkdirSync(channelsDir);
    const port = await freePort();
    writeFileSync(
      join(channelsDir, 'bench.yaml'),
      `name: bench\nsource:\n  mllp:\n    port: ${port}\n    host: 127.0.0.1\ndestinations: []\n`,
    );
    engine = new EngineProcess(
      channelsDir,
      {
        HL7E_DATABASE_URL: db.url,
        HL7E_DATA_DIR: dataDir,
        HL7E_ARCHIVE_DIR: archiveDir,
        HL7E_QUEUE_PREFIX: prefix,
        HL7E_REDIS_URL: REDIS_URL,
        HL7E_LOG_LEVEL: 'info',
      },
      args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [],
    );
    const eng = engine;
    const deathWatch = watchDaemon(eng, () => stopping);
    const ports = await Promise.race([eng.listening(['bench']), deathWatch]);
    const daemonPid = eng.proc.pid as number;

    const sizes = sizeSummary(2000);

    log(`# hl7e ingest benchmark`);
    log();
    log(
      `node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'} ×${cpus().length}; daemon pid ${daemonPid}, ` +
        `Postgres ${pgSettings.server_version} (postmaster ${postmaster ?? '?'}; fsync=${pgSettings.fsync}, ` +
        `synchronous_commit=${pgSettings.synchronous_commit}, wal_sync_method=${pgSettings.wal_sync_method}), ` +
        `Redis pid ${redisPid ?? '?'}`,
    );
    log(
      `database ${db.name}, queue prefix ${prefix}, channel bench on 127.0.0.1:${ports.bench}, ` +
        `${SENDERS} MLLP connections (MllpSender, one message outstanding each)`,
    );
    log(
      `messages: ADT^A01 / ORU^R01 alternating, ${PATIENTS} synthetic patients (PID-3); ${sizes}; ` +
        `each run ${WARMUP} s warm-up + ${SECONDS} s measured`,
    );
    log(
      `machine load average before the runs: ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} ` +
        `(other work on the machine shows in the "other" CPU column)`,
    );
    log();

    for (let i = 0; i < SENDERS; i++) {
      senders.push(
        new MllpSender({ host: '127.0.0.1', port: ports.bench as number, ackTimeoutMs: ACK_TIMEOUT_MS }),
      );
    }

    // Every control id acknowledged AA, and those answered otherwise, over the whole benchmark.
    const acked = new Set<string>();
    let nakedTotal = 0;
    let errorsTotal = 0;

    const countBacklog = async () =>
      Number(
        (await client!.query<{ n: string }>(`SELECT count(*) AS n FROM messages WHERE status = 'received'`))
          .rows[0]?.n ?? 0,
      );
    const pgCounters = async () => {
      const r = await client!.query<{ wal_sync: string; xact: string }>(
        `SELECT (SELECT wal_sync FROM pg_stat_wal) AS wal_sync,
                (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()) AS xact`,
      );
      return { walSync: Number(r.rows[0]?.wal_sync ?? 0), xact: Number(r.rows[0]?.xact ?? 0) };
    };

    const roles: Roles = { daemon: daemonPid, postmaster, redis: redisPid };
    const snapshot = cpuSnapshot;
    const cpuBetween = (x: CpuSnapshot, y: CpuSnapshot) => cpuBetweenFor(x, y, roles);

    /** Waits until the processing backlog is empty or `seconds` passed; returns the backlog left. */
    const settle = async (seconds: number): Promise<number> => {
      const deadline = performance.now() + seconds * 1000;
      for (;;) {
        const n = await countBacklog();
        if (n === 0 || interrupted || performance.now() >= deadline) return n;
        await Promise.race([sleep(250), deathWatch]);
      }
    };

    const runOnce = async (label: string, rate: number | undefined): Promise<RunStats> => {
      const stats: RunStats = {
        label,
        offered: rate,
        latencies: [],
        ackTimes: [],
        aa: 0,
        nonAa: new Map(),
        errors: new Map(),
        delayed: 0,
        scheduled: 0,
        lags: [],
        backlogAtStart: await countBacklog(),
        backlogAtEnd: 0,
        processed: 0,
      };
      const t0 = performance.now();
      const windowStart = t0 + WARMUP * 1000;
      const windowEnd = windowStart + SECONDS * 1000;
      let before: CpuSnapshot | undefined;
      let after: CpuSnapshot | undefined;
      let pgBefore: { walSync: number; xact: number } | undefined;
      let wallStart = 0;
      let wallEnd = 0;
      const cpuStart = setTimeout(() => {
        before = snapshot();
        wallStart = Date.now();
        pgCounters().then(
          (c) => {
            pgBefore = c;
          },
          () => {},
        );
      }, windowStart - t0);
      const cpuEnd = setTimeout(() => {
        after = snapshot();
        wallEnd = Date.now();
      }, windowEnd - t0);

      const sendOne = async (sender: MllpSender): Promise<void> => {
        const { text, controlId } = nextMessage();
        const start = performance.now();
        try {
          const ack = await sender.send(text);
          const end = performance.now();
          const { code, ref } = readAck(ack);
          const ok = code === 'AA' && ref === controlId;
          if (ok) acked.add(controlId);
          else nakedTotal++;
          if (end >= windowStart && end < windowEnd) {
            stats.latencies.push(end - start);
            stats.ackTimes.push(end);
            if (ok) stats.aa++;
            else inc(stats.nonAa, ref === controlId ? code : `${code}(wrong MSA-2)`);
          }
        } catch (err) {
          errorsTotal++;
          const end = performance.now();
          if (end >= windowStart && end < windowEnd)
            inc(stats.errors, isEngineError(err) ? err.code : err instanceof Error ? err.name : 'error');
          await sleep(20); // the sender reconnects with its own backoff; do not spin
        }
      };

      const closedLoop = async (sender: MllpSender) => {
        while (performance.now() < windowEnd && !interrupted && !stopping) await sendOne(sender);
      };
      const paced = async (sender: MllpSender, i: number, perSecond: number) => {
        const interval = 1000 / perSecond;
        for (let k = 0; !interrupted && !stopping; k++) {
          const at = t0 + (k * SENDERS + i) * interval;
          // Sends scheduled after the window are not made, nor are overdue ones once the window closed.
          if (at >= windowEnd || performance.now() >= windowEnd) return;
          const now = performance.now();
          // Counted by when the send actually goes out, so a connection catching up is counted too.
          const counted = Math.max(now, at) >= windowStart;
          if (now < at) await sleep(at - now);
          else if (k > 0 && counted) {
            // The previous ACK came after this send's time: the connection was busy.
            stats.delayed++;
            stats.lags.push(now - at);
          }
          if (counted) stats.scheduled++;
          await sendOne(sender);
        }
      };

      const work = Promise.all(
        senders.map((s, i) => (rate === undefined ? closedLoop(s) : paced(s, i, rate))),
      );
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`run ${label} did not finish within ${RUN_TIMEOUT_MS} ms`)),
          RUN_TIMEOUT_MS,
        );
      });
      try {
        await Promise.race([work, deathWatch, timeout]);
      } finally {
        clearTimeout(timer);
        clearTimeout(cpuStart);
        clearTimeout(cpuEnd);
      }
      if (before && after) stats.cpu = cpuBetween(before, after);
      const pgAfter = await pgCounters();
      if (pgBefore && before && after) {
        // pg_stat_* counters are flushed by backends with a delay of up to a second or so: approximate.
        const secs = (performance.now() - before.at) / 1000;
        stats.walSyncs = (pgAfter.walSync - pgBefore.walSync) / secs;
        stats.xacts = (pgAfter.xact - pgBefore.xact) / secs;
      }
      if (wallStart && wallEnd) {
        const r = await client!.query<{ n: string }>(
          'SELECT count(*) AS n FROM messages WHERE processed_at >= $1 AND processed_at < $2',
          [new Date(wallStart).toISOString(), new Date(wallEnd).toISOString()],
        );
        stats.processed = Number(r.rows[0]?.n ?? 0);
      }
      stats.backlogAtEnd = await countBacklog();
      return stats;
    };

    // --- idle baseline: what the daemon, Postgres and Redis burn with no traffic (pollers, timers) -------
    const idleBefore = snapshot();
    await Promise.race([sleep(IDLE_SECONDS * 1000), deathWatch]);
    const idleCpu = cpuBetween(idleBefore, snapshot());

    // --- runs ------------------------------------------------------------------------------------------
    const plan: { label: string; rate: number | undefined }[] = [
      ...RATES.map((r) => ({ label: `paced ${fmt(r)}/s`, rate: r })),
      ...(args['no-closed'] ? [] : [{ label: 'closed loop (max)', rate: undefined }]),
    ];
    const results: RunStats[] = [];
    const benchStart = Date.now();
    for (const [i, step] of plan.entries()) {
      if (interrupted) break;
      if (i > 0) await settle(SETTLE);
      process.stderr.write(`run ${i + 1}/${plan.length}: ${step.label} … `);
      const r = await runOnce(step.label, step.rate);
      const p99 = percentile(Float64Array.from(r.latencies).sort(), 0.99);
      process.stderr.write(`${fmt(r.aa / SECONDS)} AA/s, p99 ${fmt(p99, 2)} ms\n`);
      results.push(r);
    }
    const runsEnd = Date.now();
    for (const s of senders) await s.close().catch(() => {});

    // --- processing catch-up ---------------------------------------------------------------------------
    const drainStart = Date.now();
    const processedBeforeDrain = Number(
      (await client.query<{ n: string }>(`SELECT count(*) AS n FROM messages WHERE status <> 'received'`))
        .rows[0]?.n ?? 0,
    );
    const drainBefore = snapshot();
    const drainCounters = await pgCounters();
    const backlogBeforeDrain = await countBacklog();
    const left = await settle(DRAIN);
    const drainEnd = Date.now();
    const drainAfter = snapshot();
    const drainPg = await pgCounters();
    const counts = await client.query<{ status: string; n: string }>(
      'SELECT status, count(*) AS n FROM messages GROUP BY status ORDER BY status',
    );
    const byStatus = Object.fromEntries(counts.rows.map((r) => [r.status, Number(r.n)]));
    const stored = Object.values(byStatus).reduce((a, b) => a + b, 0);
    const processedTotal = stored - (byStatus.received ?? 0);
    const span = await client.query<{ first: Date | null; last: Date | null }>(
      `SELECT min(processed_at) AS first, max(processed_at) AS last FROM messages WHERE processed_at IS NOT NULL`,
    );
    const storedIds = new Set(
      (await client.query<{ control_id: string }>('SELECT control_id FROM messages')).rows.map(
        (r) => r.control_id,
      ),
    );
    const missing = [...acked].filter((id) => !storedIds.has(id));
    const extra = [...storedIds].filter((id) => !acked.has(id));

    // --- report ----------------------------------------------------------------------------------------
    const latencyRows = [
      [
        'run',
        'offered msg/s',
        'AA msg/s',
        'AA',
        'non-AA',
        'errors',
        'p50 ms',
        'p90 ms',
        'p99 ms',
        'max ms',
        'sends delayed (conn busy)',
        'ACKs/burst',
      ],
    ];
    for (const r of results) {
      const sorted = Float64Array.from(r.latencies).sort();
      const nonAa = [...r.nonAa].map(([k, v]) => `${k} ${v}`).join(', ') || '0';
      const errors = [...r.errors].map(([k, v]) => `${k} ${v}`).join(', ') || '0';
      const lagSorted = Float64Array.from(r.lags).sort();
      latencyRows.push([
        r.label,
        r.offered === undefined ? `closed, ${SENDERS} conns` : fmt(r.offered),
        fmt(r.aa / SECONDS),
        fmt(r.aa),
        nonAa,
        errors,
        fmt(percentile(sorted, 0.5), 2),
        fmt(percentile(sorted, 0.9), 2),
        fmt(percentile(sorted, 0.99), 2),
        fmt(sorted.at(-1) ?? Number.NaN, 2),
        r.offered === undefined
          ? 'n/a'
          : `${fmt((100 * r.delayed) / Math.max(1, r.scheduled), 1)}%` +
            (r.delayed > 0 ? ` (lag p99 ${fmt(percentile(lagSorted, 0.99), 1)} ms)` : ''),
        fmt(burstMean(r.ackTimes), 1),
      ]);
    }
    const cpuRows = [
      [
        'run',
        'daemon',
        'load gen',
        'Postgres (cluster)',
        'Redis',
        'irq+softirq',
        'other (busiest)',
        'machine busy',
        'iowait',
        'steal',
        'PG commits/s',
        'WAL fsyncs/s',
        'processed msg/s',
        'backlog start → end',
      ],
    ];
    const pct = (n: number | undefined) => (n === undefined ? '–' : `${fmt(n)}%`);
    const cpuCells = (c: CpuReport | undefined) => [
      pct(c?.daemon),
      pct(c?.generator),
      pct(c?.postgres),
      pct(c?.redis),
      pct(c?.irq),
      c ? `${fmt(c.other)}%${c.top ? ` (${c.top})` : ''}` : '–',
      c ? `${fmt(c.machineBusy)}% of ${cpus().length * 100}%` : '–',
      pct(c?.iowait),
      pct(c?.steal),
    ];
    cpuRows.push([`idle, no traffic (${IDLE_SECONDS} s)`, ...cpuCells(idleCpu), '', '', '', '']);
    for (const r of results) {
      const c = r.cpu;
      cpuRows.push([
        r.label,
        ...cpuCells(c),
        fmt(r.xacts ?? Number.NaN),
        fmt(r.walSyncs ?? Number.NaN),
        fmt(r.processed / SECONDS),
        `${fmt(r.backlogAtStart)} → ${fmt(r.backlogAtEnd)}`,
      ]);
    }
    const drainedSecs = (drainAfter.at - drainBefore.at) / 1000;
    if (backlogBeforeDrain - left > 0 && drainedSecs >= 0.5) {
      // No traffic, only the processing workers: what processing alone costs per message.
      cpuRows.push([
        'drain after the runs (processing only)',
        ...cpuCells(cpuBetween(drainBefore, drainAfter)),
        fmt((drainPg.xact - drainCounters.xact) / drainedSecs),
        fmt((drainPg.walSync - drainCounters.walSync) / drainedSecs),
        fmt((backlogBeforeDrain - left) / drainedSecs),
        `${fmt(backlogBeforeDrain)} → ${fmt(left)}`,
      ]);
    }
    log('## ACK throughput and latency (measured window only)');
    log();
    log(markdown(latencyRows));
    log();
    log('## CPU (% of one core, measured window) and processing');
    log();
    log(markdown(cpuRows));
    log();

    const closed = results.find((r) => r.offered === undefined);
    const at1000 = results.find((r) => r.offered === 1000);
    log('## Goals');
    log();
    if (closed) {
      const v = closed.aa / SECONDS;
      log(
        `- acknowledged with durable commit, closed loop with ${SENDERS} connections: ${fmt(v)} msg/s — ` +
          `goal ≥ 3,000: ${v >= 3000 ? 'met' : 'NOT met'}`,
      );
    }
    const best = Math.max(...results.map((r) => r.aa / SECONDS));
    log(`- best AA msg/s over all runs: ${fmt(best)}`);
    if (at1000) {
      const p99 = percentile(Float64Array.from(at1000.latencies).sort(), 0.99);
      const achieved = at1000.aa / SECONDS;
      log(
        `- ACK p99 at offered 1,000 msg/s: ${fmt(p99, 2)} ms (achieved ${fmt(achieved)} msg/s) — goal < 20 ms: ` +
          `${p99 < 20 && achieved >= 990 ? 'met' : 'NOT met'}`,
      );
    }
    log();

    log('## Store check and processing');
    log();
    log(
      `- messages acknowledged AA over the whole benchmark (warm-ups and run tails included): ${fmt(acked.size)}; ` +
        `answered otherwise: ${fmt(nakedTotal)}; send errors: ${fmt(errorsTotal)}`,
    );
    log(
      `- rows in messages: ${fmt(stored)} (${Object.entries(byStatus)
        .map(([k, v]) => `${k} ${fmt(v)}`)
        .join(
          ', ',
        )}); AA'd but not stored: ${fmt(missing.length)}; stored but not AA'd: ${fmt(extra.length)}`,
    );
    const storeOk = stored === acked.size && missing.length === 0;
    log(`- stored == AA: ${storeOk ? 'yes' : 'NO'}`);
    const runsSecs = (runsEnd - benchStart) / 1000;
    const drainSecs = (drainEnd - drainStart) / 1000;
    log(
      `- processed during the runs: ${fmt(processedBeforeDrain)} in ${fmt(runsSecs, 1)} s ` +
        `(${fmt(processedBeforeDrain / runsSecs)} msg/s, settle pauses between runs included)`,
    );
    log(
      `- processed after the runs: ${fmt(processedTotal - processedBeforeDrain)} in ${fmt(drainSecs, 1)} s ` +
        `(${drainSecs > 0 ? fmt((processedTotal - processedBeforeDrain) / drainSecs) : '–'} msg/s); ` +
        `still unprocessed after waiting up to ${DRAIN} s: ${fmt(left)}`,
    );
    const first = span.rows[0]?.first;
    const last = span.rows[0]?.last;
    if (first && last) {
      log(
        `- processed_at spans ${fmt((last.getTime() - first.getTime()) / 1000, 1)} s for ${fmt(processedTotal)} ` +
          `messages (${fmt(processedTotal / Math.max(0.001, (last.getTime() - first.getTime()) / 1000))} msg/s overall)`,
      );
    }
    log();
    const byMsg = new Map<string, number>();
    for (const e of eng.entries)
      if (e.level >= 30) inc(byMsg, `${e.level >= 50 ? 'ERROR' : e.level >= 40 ? 'WARN' : 'info'} ${e.msg}`);
    const batchLines = eng.entries.filter((e) => /batch|commit/i.test(e.msg)).length;
    log(
      `daemon log: ${eng.entries.length} lines — ${[...byMsg].map(([k, v]) => `${k} ×${v}`).join('; ')}; ` +
        `lines about group-commit batches: ${batchLines}`,
    );
    return interrupted ? 130 : storeOk ? 0 : 1;
  } catch (err) {
    reportBenchFailure(err, interrupted, engine);
    return 1;
  } finally {
    stopping = true;
    for (const s of senders) await s.close().catch(() => {});
    await stopDaemon(engine);
    await client?.end().catch(() => {});
    if (redis) {
      try {
        const deleted = await deleteKeysMatching(redis, `*${prefix}*`);
        console.error(`cleanup: ${deleted} Redis keys matching *${prefix}* deleted`);
      } catch (err) {
        console.error(`cleanup: Redis keys with prefix ${prefix} not deleted: ${String(err)}`);
      }
      redis.disconnect();
    }
    if (db) {
      await db.drop().then(
        () => console.error(`cleanup: database ${db?.name} dropped`),
        (err: unknown) => console.error(`cleanup: database ${db?.name} not dropped: ${String(err)}`),
      );
    }
    rmSync(root, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

console.error(`Postgres admin URL ${ADMIN_URL}; Redis ${REDIS_URL}`);
process.exitCode = await main();
