/**
 * Delivery benchmark: end-to-end messages/s from MLLP in to FHIR out, and how the backlog drains after
 * an outage of the FHIR server.
 *
 * The real daemon (`dist/cli/main.js start` through test/support/engine-process) on Postgres
 * (HL7E_DATABASE_URL if set, else a fresh database on HL7E_TEST_PG_URL's server, dropped afterwards) and
 * Redis (a unique queue prefix), one channel with one FHIR destination (transaction mode, the engine's
 * default retry and breaker policy unless --concurrency / --open-ms say otherwise) pointing at a local
 * endpoint (support/fhir-endpoint.ts: a child process, see there why) that answers every transaction
 * 200 and records each Bundle's identifier.value (= MSH-10) with its arrival time. Traffic: synthetic
 * ORU^R01 over --patients patients (PID-3 is the channel's strict ordering key), --senders MLLP
 * connections (the engine's MllpSender, one message outstanding each, as MLLP senders do).
 *
 * Phases:
 *   1. steady, paced: connection i sends its k-th message at t0 + (k·N + i)/rate (a late ACK delays that
 *      send, later ones keep the schedule); --warmup s not counted, then --duration s measured. Then the
 *      benchmark waits (up to --drain s) until every message ACKed AA has reached the endpoint.
 *   2. steady, closed loop (--closed): every connection sends again as soon as its ACK arrives. Inbound
 *      then outruns delivery, so this shows the most each side does while both run; it leaves a backlog.
 *   3. outage (unless --skip-outage): paced traffic at --outage-rate; after --warmup s the endpoint closes
 *      (connections refused) for --outage-minutes; then it listens again and traffic goes on until every
 *      message ACKed before it came back has been delivered (or --drain s passed), then stops.
 *
 * Measured: AA/s in; delivered/s out (requests the endpoint answered 2xx); end-to-end latency from handing
 * the message to the sender to its first arrival at the endpoint (process.hrtime in both processes: one
 * monotonic clock); duplicates (arrivals of a control id after its first); per-key order violations (a
 * message arriving before an earlier message of its patient, "earlier" being the store's seq, the
 * engine's arrival order); CPU per process from /proc (support/proc-cpu.ts). To show where time goes:
 * the stages of each delivered message from the store's timestamps (processing, waiting for a delivery
 * worker, the attempt), the daemon's Postgres connections per pool from pg_stat_activity (busy, idle in
 * transaction) and the destination queue's BullMQ job counts. In the outage: the ACK rate per second,
 * the breaker's log lines, the store's backlog, delivery attempts by error class, and the drain.
 * Exit 1 if a check fails: a duplicate, an order violation, a dead-lettered or held delivery, or an
 * ACKed message not delivered by the end of the waits.
 *
 *   npm run bench:deliver                          # builds, then runs with the defaults
 *   npx tsx bench/deliver.bench.ts --duration 15 --outage-minutes 0.25 [--json] [--profile DIR]
 */
import { type ChildProcess, fork } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { CHANNEL_DEFAULTS } from '../src/channels/channel-config.js';
import { readEnv } from '../src/config/env.js';
import { isEngineError } from '../src/errors.js';
import { MllpSender } from '../src/mllp/index.js';
import { EngineProcess } from '../test/support/engine-process.js';
import { ADMIN_URL, createTestDatabase } from '../test/support/postgres.js';
import {
  deleteKeysMatching,
  postmasterPid,
  redisServerPid,
  reportBenchFailure,
  stopDaemon,
  deathWatch as watchDaemon,
} from './support/bench-daemon.js';
import type { EndpointAnswer, EndpointCommand, EndpointRequest } from './support/fhir-endpoint.js';
import { type CpuReport, type CpuSnapshot, cpuBetween, cpuSnapshot, type Roles } from './support/proc-cpu.js';
import { fmt, inc, markdown, mean, percentile } from './support/report-format.js';
import { hl7Now, readAck, SyntheticHl7 } from './support/synthetic-hl7.js';

// ---------------------------------------------------------------------------------------------------------
// Arguments

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '30' },
    warmup: { type: 'string', default: '5' },
    rate: { type: 'string', default: '50' },
    senders: { type: 'string', default: '32' },
    patients: { type: 'string', default: '1000' },
    closed: { type: 'boolean', default: false },
    'outage-minutes': { type: 'string', default: '1' },
    'outage-rate': { type: 'string' },
    'skip-outage': { type: 'boolean', default: false },
    drain: { type: 'string', default: '300' },
    concurrency: { type: 'string' },
    'open-ms': { type: 'string' },
    json: { type: 'boolean', default: false },
    profile: { type: 'string' },
    'redis-url': { type: 'string', default: 'redis://127.0.0.1:6379' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: tsx bench/deliver.bench.ts [--duration 30] [--warmup 5] [--rate 50] [--senders 32] [--patients 1000]\n' +
      '                                  [--closed] [--outage-minutes 1] [--outage-rate R] [--skip-outage]\n' +
      '                                  [--drain 300] [--concurrency N] [--open-ms MS] [--json] [--redis-url URL]\n' +
      "                                  [--profile DIR]  (writes the daemon's V8 CPU profile to DIR)\n" +
      '--duration: measured seconds of each steady run; --rate: paced msg/s of the steady run; --closed adds a\n' +
      'closed-loop run; --outage-minutes may be fractional (0.25); --outage-rate defaults to --rate; --drain:\n' +
      "longest wait for deliveries to catch up; --concurrency / --open-ms: the destination's (engine defaults\n" +
      'otherwise); --json: only the JSON line on stdout (the summary goes to stderr).\n' +
      'Postgres: HL7E_DATABASE_URL if set (used as is), else a fresh database on HL7E_TEST_PG_URL (default\n' +
      'postgres://postgres@127.0.0.1:5432/postgres), dropped afterwards. Needs a build: npm run bench:deliver does both.',
  );
  process.exit(0);
}

function number(name: string, text: string | undefined, min: number): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n < min) {
    console.error(`--${name} must be a number ≥ ${min}`);
    process.exit(2);
  }
  return n;
}
const DURATION = number('duration', args.duration, 1);
const WARMUP = number('warmup', args.warmup, 0);
const RATE = number('rate', args.rate, 1);
const SENDERS = Math.floor(number('senders', args.senders, 1));
const PATIENTS = Math.floor(number('patients', args.patients, 1));
const OUTAGE_MS = number('outage-minutes', args['outage-minutes'], 0.01) * 60_000;
const OUTAGE_RATE = args['outage-rate'] === undefined ? RATE : number('outage-rate', args['outage-rate'], 1);
const DRAIN_MS = number('drain', args.drain, 1) * 1000;
const CONCURRENCY =
  args.concurrency === undefined ? undefined : Math.floor(number('concurrency', args.concurrency, 1));
const OPEN_MS =
  args['open-ms'] === undefined ? undefined : Math.floor(number('open-ms', args['open-ms'], 100));
const REDIS_URL = args['redis-url'] ?? 'redis://127.0.0.1:6379';
const ACK_TIMEOUT_MS = 15_000;
const IDLE_SECONDS = 3;
const CHANNEL = `deliver-bench-${randomBytes(3).toString('hex')}`;
const DESTINATION = 'ehr';

/** The human summary: stdout, or stderr when stdout carries only the JSON line. */
const log = (line = '') => (args.json ? console.error(line) : console.log(line));
const progress = (text: string) => process.stderr.write(text);

/** One monotonic clock shared with the endpoint child (CLOCK_MONOTONIC), in ms. */
const now = (): number => Number(process.hrtime.bigint()) / 1e6;
const sleepUntil = (t: number) => sleep(Math.max(0, t - now()));

// ---------------------------------------------------------------------------------------------------------
// Traffic: synthetic ORU^R01 (support/synthetic-hl7.ts), unique MSH-10, the patient drawn at random.

const synthetic = new SyntheticHl7(0xde11, PATIENTS);
const RUN_TAG = randomBytes(3).toString('hex').toUpperCase();
let controlSeq = 0;

function nextMessage(): { text: string; controlId: string; patient: number } {
  controlSeq += 1;
  const controlId = `D${RUN_TAG}${controlSeq.toString(36).toUpperCase().padStart(7, '0')}`;
  const patient = Math.floor(synthetic.rand() * PATIENTS);
  const text = synthetic.oruR01(controlId, synthetic.patients[patient]!, hl7Now());
  return { text, controlId, patient };
}

/** Byte sizes of a sample from the generator (its control ids are never sent). */
function sizeSummary(n: number): { min: number; max: number; mean: number } {
  const xs = Array.from({ length: n }, () => Buffer.byteLength(nextMessage().text));
  controlSeq = 0;
  return { min: Math.min(...xs), max: Math.max(...xs), mean: Math.round(mean(xs)) };
}

interface Sent {
  readonly controlId: string;
  readonly patient: number;
  readonly sentAt: number;
  /** NaN until answered (or failed). */
  ackAt: number;
  /** AA, another MSA-1, `wrong MSA-2`, or the send's error code; '' while waiting. */
  code: string;
}

interface Plan {
  /** Paced msg/s over all connections; undefined: closed loop. */
  readonly rate: number | undefined;
  readonly t0: number;
  /** Whether a send due at `at` is no longer to be made. */
  readonly stop: (at: number) => boolean;
}

class Traffic {
  readonly sent = new Map<string, Sent>();
  /** Paced sends whose time passed while their connection still waited for an ACK. */
  late = 0;
  constructor(private readonly senders: readonly MllpSender[]) {}

  async run(plan: Plan, abort: () => boolean): Promise<void> {
    await Promise.all(this.senders.map((s, i) => this.#connection(s, i, plan, abort)));
  }

  async #connection(sender: MllpSender, i: number, plan: Plan, abort: () => boolean): Promise<void> {
    if (plan.rate === undefined) {
      while (!abort() && !plan.stop(now())) await this.#sendOne(sender);
      return;
    }
    const interval = 1000 / plan.rate;
    for (let k = 0; !abort(); k++) {
      const at = plan.t0 + (k * this.senders.length + i) * interval;
      if (plan.stop(at) || plan.stop(now())) return;
      const t = now();
      if (t < at) await sleep(at - t);
      else if (k > 0) this.late++;
      await this.#sendOne(sender);
    }
  }

  async #sendOne(sender: MllpSender): Promise<void> {
    const { text, controlId, patient } = nextMessage();
    const s: Sent = { controlId, patient, sentAt: now(), ackAt: Number.NaN, code: '' };
    this.sent.set(controlId, s);
    try {
      const { code, ref } = readAck(await sender.send(text));
      s.ackAt = now();
      s.code = ref === controlId ? code : 'wrong MSA-2';
    } catch (err) {
      s.ackAt = now();
      s.code = isEngineError(err) ? err.code : err instanceof Error ? err.name : 'error';
      await sleep(20); // the sender reconnects with its own backoff; do not spin
    }
  }

  /** Messages the engine took responsibility for (ACK AA) before `t`. */
  *ackedBefore(t: number): Generator<Sent> {
    for (const s of this.sent.values()) if (s.code === 'AA' && s.ackAt < t) yield s;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The FHIR endpoint child and what arrived there

class Endpoint {
  /** Control id → time of its first arrival. */
  readonly first = new Map<string, number>();
  /** Control id → position of its first arrival among all arrivals (the order the endpoint saw). */
  readonly firstIndex = new Map<string, number>();
  /** Control id → arrivals after the first. */
  readonly extra = new Map<string, number>();
  /** Arrival times of every request answered 2xx, in arrival order. */
  readonly times: number[] = [];
  unattributed = 0;
  connections = 0;
  readonly #pending = new Map<number, (a: EndpointAnswer & { error?: string }) => void>();
  #next = 1;

  private constructor(
    readonly proc: ChildProcess,
    readonly port: number,
  ) {
    proc.on('message', (m: EndpointAnswer & { error?: string }) => {
      const done = this.#pending.get(m.id);
      this.#pending.delete(m.id);
      done?.(m);
    });
    // An endpoint that died answers nothing: fail the waits instead of hanging.
    proc.once('exit', (code, signal) => {
      for (const done of this.#pending.values()) done({ id: 0, at: 0, error: `exited (${code ?? signal})` });
      this.#pending.clear();
    });
  }

  static async start(): Promise<Endpoint> {
    const proc = fork(new URL('./support/fhir-endpoint.ts', import.meta.url).pathname, [], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    const port = await new Promise<number>((resolve, reject) => {
      proc.once('message', (m: { type?: string; port?: number }) =>
        m.type === 'ready' && m.port ? resolve(m.port) : reject(new Error('endpoint did not start')),
      );
      proc.once('exit', (code) => reject(new Error(`endpoint exited (${code}) at start`)));
    });
    return new Endpoint(proc, port);
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}/fhir`;
  }

  request(cmd: EndpointRequest): Promise<EndpointAnswer> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, (a) =>
        a.error === undefined ? resolve(a) : reject(new Error(`endpoint ${cmd.cmd}: ${a.error}`)),
      );
      this.proc.send({ ...cmd, id } as EndpointCommand);
    });
  }

  /** Fetches the arrivals recorded since the last poll. */
  async poll(): Promise<void> {
    const a = await this.request({ cmd: 'arrivals', from: this.times.length });
    const ids = a.ids ?? [];
    const times = a.times ?? [];
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i] as string;
      const t = times[i] as number;
      if (this.first.has(id)) this.extra.set(id, (this.extra.get(id) ?? 0) + 1);
      else {
        this.first.set(id, t);
        this.firstIndex.set(id, this.times.length);
      }
      this.times.push(t);
    }
    this.unattributed = a.unattributed ?? this.unattributed;
    this.connections = a.connections ?? this.connections;
  }

  /** Requests answered 2xx in [a, b). */
  countBetween(a: number, b: number): number {
    let n = 0;
    for (const t of this.times) if (t >= a && t < b) n++;
    return n;
  }

  get duplicates(): number {
    let n = 0;
    for (const x of this.extra.values()) n += x;
    return n;
  }
}

// ---------------------------------------------------------------------------------------------------------
// The daemon's store connections, sampled from pg_stat_activity: how busy each of its pools is

interface PoolUse {
  /** application_name the daemon gives the pool's connections. */
  readonly pool: string;
  readonly connections: number;
  /** Mean connections not idle: running a query, or held in an open transaction. */
  readonly meanBusy: number;
  /** Share of samples in which every connection of the pool was busy (callers then queue for one). */
  readonly allBusy: number;
  /** Mean connections idle in transaction: held open while the daemon does something else. */
  readonly meanIdleInTransaction: number;
}

/** The destination's BullMQ queue: jobs waiting for a worker, running, delayed (backoff, or parked behind
 * an earlier delivery of their ordering key). */
interface QueueDepth {
  readonly waiting: { mean: number; max: number };
  readonly active: { mean: number; max: number };
  readonly delayed: { mean: number; max: number };
}

const BENCH_APP = 'deliver-bench';

/**
 * Samples, until stop(), the daemon's store connections every ~100 ms (on its own connection; this
 * benchmark's connections are left out) and the delivery queue's job counts every ~500 ms.
 */
class WindowSampler {
  readonly #samples: { pool: string; open: number; busy: number; iit: number }[][] = [];
  readonly #queue: { waiting: number; active: number; delayed: number }[] = [];
  #running = true;
  readonly #done: Promise<void>;

  constructor(
    private readonly client: pg.Client,
    private readonly queue: Queue | undefined,
  ) {
    this.#done = this.#loop();
  }

  async #loop(): Promise<void> {
    for (let i = 0; this.#running; i++) {
      if (this.queue && i % 5 === 0) {
        const c = await this.queue
          .getJobCounts('waiting', 'prioritized', 'active', 'delayed')
          .catch(() => undefined); // a missed sample, not a failed benchmark
        if (c) {
          this.#queue.push({
            waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
            active: c.active ?? 0,
            delayed: c.delayed ?? 0,
          });
        }
      }
      const r = await this.client.query<{ pool: string; open: number; busy: number; iit: number }>(
        `SELECT application_name AS pool, count(*)::int AS open,
                count(*) FILTER (WHERE state <> 'idle')::int AS busy,
                count(*) FILTER (WHERE state LIKE 'idle in transaction%')::int AS iit
           FROM pg_stat_activity
          WHERE datname = current_database() AND backend_type = 'client backend'
            AND application_name <> $1 AND pid <> pg_backend_pid()
          GROUP BY 1`,
        [BENCH_APP],
      );
      this.#samples.push(r.rows);
      await sleep(100);
    }
  }

  async stop(): Promise<{ pools: PoolUse[]; queue: QueueDepth | undefined }> {
    this.#running = false;
    await this.#done;
    return { pools: this.#pools(), queue: this.#depth() };
  }

  #depth(): QueueDepth | undefined {
    if (this.#queue.length === 0) return undefined;
    const stat = (xs: number[]) => ({ mean: mean(xs), max: Math.max(...xs) });
    return {
      waiting: stat(this.#queue.map((q) => q.waiting)),
      active: stat(this.#queue.map((q) => q.active)),
      delayed: stat(this.#queue.map((q) => q.delayed)),
    };
  }

  #pools(): PoolUse[] {
    const pools = new Set(this.#samples.flatMap((s) => s.map((r) => r.pool)));
    return [...pools].sort().map((pool) => {
      const rows = this.#samples.map((s) => s.find((r) => r.pool === pool));
      const connections = Math.max(...rows.map((r) => r?.open ?? 0));
      return {
        pool,
        connections,
        meanBusy: mean(rows.map((r) => r?.busy ?? 0)),
        allBusy: rows.filter((r) => r && r.busy === connections).length / Math.max(1, rows.length),
        meanIdleInTransaction: mean(rows.map((r) => r?.iit ?? 0)),
      };
    });
  }
}

// ---------------------------------------------------------------------------------------------------------
// Windows: every figure of a phase comes from the sends, the arrivals and /proc within its window

interface WindowStats {
  label: string;
  offered: number | undefined;
  seconds: number;
  aa: number;
  aaPerSec: number;
  nonAa: Record<string, number>;
  ackMs: { p50: number; p99: number; max: number };
  deliveredPerSec: number;
  /** Sent in the window: first arrival − send. */
  e2eMs: { p50: number; p95: number; p99: number; max: number; count: number };
  /** AA'd messages sent in the window that never arrived (by the end of the wait after it). */
  notDelivered: number;
  duplicates: number;
  late: number;
  cpu: CpuReport | undefined;
  /** Per whole second of the window: AAs received, requests answered 2xx. */
  aaSeries: number[];
  deliveredSeries: number[];
  /** Where the time went, from the store's timestamps (steady runs only). */
  stages?: Stages;
  /** The daemon's store connections and the delivery queue during the window. */
  pools?: PoolUse[];
  queue?: QueueDepth;
}

/** p50/p95 in ms of each stage a delivered message went through, from the store's timestamps. */
interface Stages {
  /** Deliveries whose first attempt delivered, of messages received in the window. */
  count: number;
  /** received_at → processed_at: the processing step (its gather wait included). */
  processing: { p50: number; p95: number };
  /** processed_at → first attempt started: waiting for a delivery worker (and behind earlier ones of the key). */
  waiting: { p50: number; p95: number };
  /** first attempt started → finished: payload rebuilt, POSTed, answer recorded. */
  attempt: { p50: number; p95: number };
}

function windowStats(
  label: string,
  offered: number | undefined,
  a: number,
  b: number,
  traffic: Traffic,
  endpoint: Endpoint,
  cpu: CpuReport | undefined,
  late: number,
): WindowStats {
  const seconds = (b - a) / 1000;
  const ack: number[] = [];
  const e2e: number[] = [];
  const nonAa = new Map<string, number>();
  let notDelivered = 0;
  let duplicates = 0;
  for (const s of traffic.sent.values()) {
    if (s.ackAt >= a && s.ackAt < b) {
      if (s.code === 'AA') ack.push(s.ackAt - s.sentAt);
      else inc(nonAa, s.code);
    }
    if (s.sentAt >= a && s.sentAt < b && s.code === 'AA') {
      const at = endpoint.first.get(s.controlId);
      if (at === undefined) notDelivered++;
      else e2e.push(at - s.sentAt);
      duplicates += endpoint.extra.get(s.controlId) ?? 0;
    }
  }
  const ackSorted = Float64Array.from(ack).sort();
  const e2eSorted = Float64Array.from(e2e).sort();
  const aaTimes: number[] = [];
  for (const s of traffic.sent.values()) if (s.code === 'AA') aaTimes.push(s.ackAt);
  return {
    label,
    offered,
    seconds,
    aa: ack.length,
    aaPerSec: ack.length / seconds,
    nonAa: Object.fromEntries(nonAa),
    ackMs: {
      p50: percentile(ackSorted, 0.5),
      p99: percentile(ackSorted, 0.99),
      max: ackSorted.at(-1) ?? Number.NaN,
    },
    deliveredPerSec: endpoint.countBetween(a, b) / seconds,
    e2eMs: {
      p50: percentile(e2eSorted, 0.5),
      p95: percentile(e2eSorted, 0.95),
      p99: percentile(e2eSorted, 0.99),
      max: e2eSorted.at(-1) ?? Number.NaN,
      count: e2e.length,
    },
    notDelivered,
    duplicates,
    late,
    cpu,
    aaSeries: perSecond(aaTimes, a, b),
    deliveredSeries: perSecond(endpoint.times, a, b),
  };
}

/** Counts per whole second of [a, b) of the given times (a partial last second is left out). */
function perSecond(times: Iterable<number>, a: number, b: number): number[] {
  const out = new Array<number>(Math.max(0, Math.floor((b - a) / 1000))).fill(0);
  for (const t of times) {
    const i = Math.floor((t - a) / 1000);
    if (t >= a && i < out.length) out[i] = (out[i] as number) + 1;
  }
  return out;
}

/** The series as text, in buckets of `size` seconds (mean per second), for the summary. */
function series(xs: readonly number[], size: number): string {
  const out: string[] = [];
  for (let i = 0; i < xs.length; i += size) out.push(fmt(mean(xs.slice(i, i + size))));
  return out.join(' ');
}

/** Messages whose first arrival came before an earlier (store seq) message of the same patient. */
function orderViolations(
  seqs: ReadonlyMap<string, number>,
  traffic: Traffic,
  endpoint: Endpoint,
): { violations: number; keys: number; checked: number } {
  const byKey = new Map<number, { seq: number; index: number }[]>();
  for (const [id, seq] of seqs) {
    const s = traffic.sent.get(id);
    const index = endpoint.firstIndex.get(id);
    if (!s || index === undefined) continue;
    const list = byKey.get(s.patient) ?? [];
    list.push({ seq, index });
    byKey.set(s.patient, list);
  }
  let violations = 0;
  let checked = 0;
  for (const list of byKey.values()) {
    list.sort((x, y) => x.seq - y.seq);
    let latest = -1;
    for (const m of list) {
      checked++;
      if (m.index < latest) violations++;
      latest = Math.max(latest, m.index);
    }
  }
  return { violations, keys: byKey.size, checked };
}

const round = (n: number, d = 1) => (Number.isFinite(n) ? Math.round(n * 10 ** d) / 10 ** d : null);
const loadAverage = () => readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);

// ---------------------------------------------------------------------------------------------------------

async function main(): Promise<number> {
  let db: { url: string; name: string; drop?: () => Promise<void> } | undefined;
  let engine: EngineProcess | undefined;
  let endpoint: Endpoint | undefined;
  let client: pg.Client | undefined;
  let redis: Redis | undefined;
  const senders: MllpSender[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  const root = mkdtempSync(join(tmpdir(), 'hl7e-deliver-bench-'));
  const prefix = `hl7e_dbench_${randomBytes(4).toString('hex')}`;
  let stopping = false;
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    console.error('interrupted: cleaning up');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  try {
    // --- setup -----------------------------------------------------------------------------------------
    const loadBefore = loadAverage();
    if (process.env.HL7E_DATABASE_URL) {
      const url = process.env.HL7E_DATABASE_URL;
      db = { url, name: new URL(url).pathname.slice(1) || '(default)' };
    } else {
      db = await createTestDatabase('deliver_bench');
    }
    client = new pg.Client({ connectionString: db.url, application_name: BENCH_APP });
    await client.connect();
    const samplerClient = new pg.Client({ connectionString: db.url, application_name: BENCH_APP });
    await samplerClient.connect();
    closers.push(() => samplerClient.end());
    const settings = await client.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings
        WHERE name IN ('fsync', 'synchronous_commit', 'server_version')`,
    );
    const pgSettings = Object.fromEntries(settings.rows.map((r) => [r.name, r.setting]));
    const postmaster = await postmasterPid(client);
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 2, lazyConnect: true });
    await redis.connect();
    const redisPid = await redisServerPid(redis);
    endpoint = await Endpoint.start();
    const ep = endpoint;

    const channelsDir = join(root, 'channels');
    const mappingsDir = join(root, 'mappings'); // empty: only the shipped maps, whatever the cwd holds
    mkdirSync(channelsDir);
    mkdirSync(mappingsDir);
    const defaults = CHANNEL_DEFAULTS.destination;
    const destination = {
      concurrency: CONCURRENCY ?? defaults.fhirConcurrency,
      retry: defaults.retry,
      circuitBreaker: { ...defaults.circuitBreaker, ...(OPEN_MS === undefined ? {} : { openMs: OPEN_MS }) },
    };
    writeFileSync(
      join(channelsDir, 'bench.yaml'),
      [
        `name: ${CHANNEL}`,
        'source:',
        '  mllp: { port: 0, host: 127.0.0.1 }',
        'accept: [ORU^R01]',
        'destinations:',
        `  - name: ${DESTINATION}`,
        `    fhir: { baseUrl: '${ep.baseUrl}' }`,
        ...(CONCURRENCY === undefined ? [] : [`    concurrency: ${CONCURRENCY}`]),
        ...(OPEN_MS === undefined ? [] : [`    circuitBreaker: { openMs: ${OPEN_MS} }`]),
        '',
      ].join('\n'),
    );
    const engineEnv = {
      HL7E_DATABASE_URL: db.url,
      HL7E_DATA_DIR: join(root, 'data'),
      HL7E_ARCHIVE_DIR: join(root, 'archive'),
      HL7E_MAPPINGS_DIR: mappingsDir,
      HL7E_QUEUE_PREFIX: prefix,
      HL7E_REDIS_URL: REDIS_URL,
      HL7E_LOG_LEVEL: 'info',
    };
    // What the daemon will read, through the engine's own reader: the defaults are not restated here.
    const effective = readEnv({ ...process.env, ...engineEnv });
    engine = new EngineProcess(
      channelsDir,
      engineEnv,
      args.profile ? ['--cpu-prof', `--cpu-prof-dir=${args.profile}`] : [],
    );
    const eng = engine;
    const deathWatch = watchDaemon(eng, () => stopping);
    const ports = await Promise.race([eng.listening([CHANNEL]), deathWatch]);
    const mllpPort = ports[CHANNEL] as number;
    // The destination's queue as pipeline/work-queues.ts names it (deliverQueueName), read with BullMQ's
    // own counts; when the name no longer matches, the queue columns are left out rather than wrong.
    const queueName = `${prefix}-deliver-${CHANNEL}-${DESTINATION}`;
    let deliverQueue: Queue | undefined;
    if ((await redis.exists(`bull:${queueName}:meta`)) === 1) {
      const queueRedis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
      deliverQueue = new Queue(queueName, { connection: queueRedis });
      const q = deliverQueue;
      closers.push(async () => {
        await q.close();
        queueRedis.disconnect();
      });
    } else {
      log(`(delivery queue ${queueName} not found: its job counts are not sampled)`);
    }
    const sample = () => new WindowSampler(samplerClient, deliverQueue);
    const daemonPid = eng.proc.pid as number;
    const roles: Roles = {
      daemon: daemonPid,
      postmaster,
      redis: redisPid,
      extra: { endpoint: ep.proc.pid as number },
    };
    const cpuOf = (a: CpuSnapshot, b: CpuSnapshot) => cpuBetween(a, b, roles);
    const wait = (ms: number) => Promise.race([sleep(ms), deathWatch]);

    const sizes = sizeSummary(2000);
    log('# hl7e delivery benchmark: MLLP in → FHIR out');
    log();
    log(
      `node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'} ×${cpus().length}; load average before: ` +
        `${loadBefore.join(' ')} (the machine may be shared: see "other" in the CPU table)`,
    );
    log(
      `daemon pid ${daemonPid} (partitions ${effective.partitions}, process gather ${effective.processGatherMs} ms, ` +
        `convert workers ${effective.convertWorkers}, reconcile every ${effective.reconcileIntervalMs} ms); ` +
        `Postgres ${pgSettings.server_version} (fsync=${pgSettings.fsync}, synchronous_commit=` +
        `${pgSettings.synchronous_commit}), database ${db.name}; Redis pid ${redisPid ?? '?'}, prefix ${prefix}; ` +
        `FHIR endpoint: child process pid ${ep.proc.pid} at ${ep.baseUrl}`,
    );
    log(
      `channel ${CHANNEL} on 127.0.0.1:${mllpPort}, ordering PID-3(1) strict → destination ${DESTINATION} ` +
        `(FHIR transaction; concurrency ${destination.concurrency}, retry ${JSON.stringify(destination.retry)}, ` +
        `circuitBreaker ${JSON.stringify(destination.circuitBreaker)})`,
    );
    log(
      `traffic: ORU^R01 ${sizes.min}–${sizes.max} B (mean ${sizes.mean}) over ${PATIENTS} synthetic patients, ` +
        `${SENDERS} MLLP connections (one message outstanding each)`,
    );
    log();

    for (let i = 0; i < SENDERS; i++) {
      senders.push(new MllpSender({ host: '127.0.0.1', port: mllpPort, ackTimeoutMs: ACK_TIMEOUT_MS }));
    }
    const traffic = new Traffic(senders);
    const aborted = () => interrupted || stopping;

    const storeBacklog = async () => {
      const r = await client!.query<{ pending: string; held: string; unprocessed: string }>(
        `SELECT (SELECT count(*) FROM deliveries WHERE channel = $1 AND status = 'pending') AS pending,
                (SELECT count(*) FROM deliveries WHERE channel = $1 AND status = 'held') AS held,
                (SELECT count(*) FROM messages WHERE channel = $1 AND status = 'received') AS unprocessed`,
        [CHANNEL],
      );
      const row = r.rows[0];
      return {
        pending: Number(row?.pending ?? 0),
        held: Number(row?.held ?? 0),
        unprocessed: Number(row?.unprocessed ?? 0),
      };
    };

    /** AA'd before `t` and not yet arrived. */
    const undelivered = (t = Number.POSITIVE_INFINITY) => {
      let n = 0;
      for (const s of traffic.ackedBefore(t)) if (!ep.first.has(s.controlId)) n++;
      return n;
    };

    /** Waits until every AA'd message has arrived, or `ms` passed; returns how many are still missing. */
    const settle = async (ms: number): Promise<number> => {
      const deadline = now() + ms;
      for (;;) {
        await ep.poll();
        const left = undelivered();
        if (left === 0 || interrupted || now() >= deadline) return left;
        await wait(200);
      }
    };

    const stagesBetween = async (fromWall: number, toWall: number): Promise<Stages> => {
      const r = await client!.query<{
        n: string;
        processing: number[];
        waiting: number[];
        attempt: number[];
      }>(
        `SELECT count(*) AS n,
                percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP
                  (ORDER BY extract(epoch FROM m.processed_at - m.received_at) * 1000) AS processing,
                percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP
                  (ORDER BY extract(epoch FROM a.started_at - m.processed_at) * 1000) AS waiting,
                percentile_cont(ARRAY[0.5, 0.95]) WITHIN GROUP
                  (ORDER BY extract(epoch FROM a.finished_at - a.started_at) * 1000) AS attempt
           FROM messages m
           JOIN deliveries d ON d.message_id = m.id
           JOIN delivery_attempts a ON a.delivery_id = d.id AND a.attempt = 1 AND a.outcome = 'delivered'
          WHERE m.channel = $1 AND m.received_at >= $2 AND m.received_at < $3`,
        [CHANNEL, new Date(fromWall).toISOString(), new Date(toWall).toISOString()],
      );
      const row = r.rows[0];
      const pair = (xs: number[] | null | undefined) => ({
        p50: xs?.[0] ?? Number.NaN,
        p95: xs?.[1] ?? Number.NaN,
      });
      return {
        count: Number(row?.n ?? 0),
        processing: pair(row?.processing),
        waiting: pair(row?.waiting),
        attempt: pair(row?.attempt),
      };
    };

    // --- idle baseline: what the daemon, Postgres and Redis burn with no traffic (pollers, timers) -------
    const idleBefore = cpuSnapshot();
    await wait(IDLE_SECONDS * 1000);
    const idleCpu = cpuOf(idleBefore, cpuSnapshot());

    // --- steady runs -----------------------------------------------------------------------------------
    const steady: WindowStats[] = [];
    const steadyRun = async (label: string, rate: number | undefined) => {
      progress(`${label}: ${WARMUP} s warm-up + ${DURATION} s … `);
      const t0 = now();
      const a = t0 + WARMUP * 1000;
      const b = a + DURATION * 1000;
      const run = traffic.run({ rate, t0, stop: (at) => at >= b }, aborted);
      await Promise.race([sleepUntil(a), deathWatch]);
      const before = cpuSnapshot();
      const wallA = Date.now();
      const lateBefore = traffic.late;
      const sampler = sample();
      await Promise.race([sleepUntil(b), deathWatch]);
      const after = cpuSnapshot();
      const sampled = await sampler.stop();
      const wallB = Date.now();
      const late = traffic.late - lateBefore;
      await Promise.race([run, deathWatch]);
      const left = await settle(DRAIN_MS);
      const w = windowStats(label, rate, a, b, traffic, ep, cpuOf(before, after), late);
      w.stages = await stagesBetween(wallA, wallB);
      w.pools = sampled.pools;
      w.queue = sampled.queue;
      steady.push(w);
      progress(
        `${fmt(w.aaPerSec)} AA/s, ${fmt(w.deliveredPerSec)} delivered/s, e2e p99 ${fmt(w.e2eMs.p99)} ms` +
          `${left > 0 ? `; ${left} still undelivered after ${DRAIN_MS / 1000} s` : ''}\n`,
      );
    };
    await steadyRun(`steady paced ${fmt(RATE)}/s`, RATE);
    if (args.closed && !interrupted) await steadyRun('steady closed loop', undefined);

    // --- outage ----------------------------------------------------------------------------------------
    let outage: Record<string, unknown> | undefined;
    const outageLines: string[] = [];
    if (!args['skip-outage'] && !interrupted) {
      progress(
        `outage: ${fmt(OUTAGE_MS / 1000, 1)} s endpoint down at ${fmt(OUTAGE_RATE)} msg/s, then drain … `,
      );
      const t0 = now();
      let drained = false;
      const run = traffic.run({ rate: OUTAGE_RATE, t0, stop: () => drained }, aborted);
      await Promise.race([sleepUntil(t0 + WARMUP * 1000), deathWatch]);
      const cpuDown0 = cpuSnapshot();
      const lateDown0 = traffic.late;
      const downWall = Date.now();
      const down = await ep.request({ cmd: 'down' });
      const downAt = down.at;
      const downSampler = sample();
      await Promise.race([sleepUntil(downAt + OUTAGE_MS), deathWatch]);
      const cpuDown1 = cpuSnapshot();
      const downSampled = await downSampler.stop();
      const lateDown1 = traffic.late;
      const backlogStore = await storeBacklog();
      await ep.poll();
      const upWall = Date.now();
      const up = await ep.request({ cmd: 'up' });
      const upAt = up.at;
      const drainSampler = sample();
      // The outage backlog: everything ACKed while the endpoint was away, or before and not yet delivered.
      const backlogIds: string[] = [];
      for (const s of traffic.ackedBefore(upAt)) if (!ep.first.has(s.controlId)) backlogIds.push(s.controlId);
      const drainDeadline = upAt + DRAIN_MS;
      let leftAtDeadline = backlogIds.length;
      while (!interrupted) {
        await ep.poll();
        leftAtDeadline = backlogIds.filter((id) => !ep.first.has(id)).length;
        if (leftAtDeadline === 0 || now() >= drainDeadline) break;
        await wait(100);
      }
      const drainEndPoll = now();
      const complete = leftAtDeadline === 0;
      const drainSampled = await drainSampler.stop();
      drained = true;
      await Promise.race([run, deathWatch]);
      const cpuDrain = cpuSnapshot();
      const left = await settle(DRAIN_MS);

      // Exact times from the arrivals, not the poll. Not drained while traffic went on: when the rest
      // arrived once it had stopped (if it did).
      const arrivedBacklog = backlogIds.map((id) => ep.first.get(id)).filter((t) => t !== undefined);
      const lastBacklogAt =
        arrivedBacklog.length === backlogIds.length
          ? (arrivedBacklog as number[]).reduce((m, t) => Math.max(m, t), upAt)
          : Number.NaN;
      const drainedAt = complete ? lastBacklogAt : Number.NaN;
      const firstAfterUp = ep.times.find((t) => t >= upAt) ?? Number.NaN;
      const drainSecs = (drainedAt - upAt) / 1000;
      const activeSecs = (drainedAt - firstAfterUp) / 1000;
      const during = windowStats(
        'outage: endpoint down',
        OUTAGE_RATE,
        downAt,
        downAt + OUTAGE_MS,
        traffic,
        ep,
        cpuOf(cpuDown0, cpuDown1),
        lateDown1 - lateDown0,
      );
      const drainEnd = complete ? drainedAt : drainEndPoll;
      const drainWin = windowStats(
        'outage: drain',
        OUTAGE_RATE,
        upAt,
        drainEnd,
        traffic,
        ep,
        cpuOf(cpuDown1, cpuDrain),
        0,
      );
      const aaSeries = during.aaSeries;
      const deliveredSeries = drainWin.deliveredSeries;
      // Everything delivered from the first delivery after up until the backlog was through, new traffic too.
      const grossEnd = complete ? drainedAt : drainEndPoll;
      const grossRate = ep.countBetween(firstAfterUp, grossEnd) / ((grossEnd - firstAfterUp) / 1000);
      const breakerLines = eng.entries.filter(
        (e) => e.msg === 'circuit breaker opened' || e.msg === 'circuit breaker closed',
      );
      const opened = breakerLines.filter(
        (e) => e.msg === 'circuit breaker opened' && Number(e.time) >= downWall,
      );
      const closed = breakerLines.filter(
        (e) => e.msg === 'circuit breaker closed' && Number(e.time) >= upWall,
      );
      const attempts = await client.query<{ outcome: string; error_class: string | null; n: string }>(
        `SELECT a.outcome, a.error_class, count(*) AS n
           FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
          WHERE d.channel = $1 AND a.started_at >= $2 AND a.started_at < $3
          GROUP BY 1, 2 ORDER BY 3 DESC`,
        [CHANNEL, new Date(downWall).toISOString(), new Date(upWall).toISOString()],
      );
      const attemptsWhileDown = Object.fromEntries(
        attempts.rows.map((r) => [`${r.outcome}${r.error_class ? ` ${r.error_class}` : ''}`, Number(r.n)]),
      );
      const steadyRef = steady[0];
      const minAa = aaSeries.length > 0 ? Math.min(...aaSeries) : Number.NaN;
      outage = {
        minutes: OUTAGE_MS / 60_000,
        offeredPerSec: OUTAGE_RATE,
        inbound: {
          aaPerSec: round(during.aaPerSec),
          slowestSecondAa: minAa,
          nonAa: during.nonAa,
          ackMs: {
            p50: round(during.ackMs.p50, 2),
            p99: round(during.ackMs.p99, 2),
            max: round(during.ackMs.max, 2),
          },
          late: during.late,
        },
        endpointDown: { connectionsClosedAfterMs: round((down.idleAt ?? downAt) - downAt) },
        breaker: {
          opened: opened.length,
          firstOpenedAfterDownMs: opened[0] ? Number(opened[0].time) - downWall : null,
          closed: closed.length,
          closedAfterUpMs: closed[0] ? Number(closed[0].time) - upWall : null,
        },
        attemptsWhileDown,
        backlogAtUp: {
          undelivered: backlogIds.length,
          storePending: backlogStore.pending,
          storeHeld: backlogStore.held,
          storeUnprocessed: backlogStore.unprocessed,
        },
        firstDeliveryAfterUpMs: round(firstAfterUp - upAt),
        drained: complete,
        leftAtDrainLimit: leftAtDeadline,
        drainSeconds: round(drainSecs, 2),
        backlogCompleteAfterSeconds: round((lastBacklogAt - upAt) / 1000, 2),
        drainRatePerSec: round(backlogIds.length / drainSecs),
        drainRateFromFirstDeliveryPerSec: round(backlogIds.length / activeSecs),
        deliveredPerSecFromFirstDelivery: round(grossRate),
        inboundDuringDrain: { aaPerSec: round(drainWin.aaPerSec), ackP99Ms: round(drainWin.ackMs.p99, 2) },
        leftUndeliveredAfterWait: left,
      };
      progress(
        complete
          ? `backlog ${backlogIds.length} drained in ${fmt(drainSecs, 1)} s\n`
          : `backlog ${backlogIds.length} NOT drained within ${DRAIN_MS / 1000} s\n`,
      );

      const nonAaText =
        Object.entries(during.nonAa)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ') || '0';
      outageLines.push(
        `## Outage: endpoint refusing connections for ${fmt(OUTAGE_MS / 1000, 1)} s, traffic paced at ${fmt(OUTAGE_RATE)} msg/s`,
        '',
        `- inbound while down: ${fmt(during.aaPerSec, 1)} AA/s (offered ${fmt(OUTAGE_RATE)}; slowest whole second ` +
          `${fmt(minAa)} AA; answered otherwise / send errors: ${nonAaText}); ACK p50 ${fmt(during.ackMs.p50, 2)} ms, ` +
          `p99 ${fmt(during.ackMs.p99, 2)} ms` +
          (steadyRef ? ` (steady: ${fmt(steadyRef.ackMs.p50, 2)} / ${fmt(steadyRef.ackMs.p99, 2)} ms)` : ''),
        `- circuit breaker (daemon log): opened ×${opened.length}` +
          (opened[0]
            ? `, first ${fmt((Number(opened[0].time) - downWall) / 1000, 2)} s after the endpoint went down`
            : '') +
          `; closed ×${closed.length}` +
          (closed[0] ? `, ${fmt((Number(closed[0].time) - upWall) / 1000, 2)} s after it came back` : ''),
        `- delivery attempts started while down: ${
          Object.entries(attemptsWhileDown)
            .map(([k, v]) => `${k} ×${v}`)
            .join(', ') || 'none'
        }`,
        `- backlog when the endpoint came back: ${fmt(backlogIds.length)} messages ACKed, not delivered ` +
          `(store: ${fmt(backlogStore.pending)} deliveries pending, ${fmt(backlogStore.held)} held, ` +
          `${fmt(backlogStore.unprocessed)} messages not yet processed)`,
        `- after it came back: first delivery after ${fmt((firstAfterUp - upAt) / 1000, 2)} s; ` +
          (complete
            ? `backlog delivered after ${fmt(drainSecs, 2)} s: ${fmt(backlogIds.length / drainSecs)} msg/s over ` +
              `the whole wait, ${fmt(backlogIds.length / activeSecs)} msg/s from the first delivery; `
            : `backlog NOT delivered within ${DRAIN_MS / 1000} s while traffic went on (${fmt(leftAtDeadline)} ` +
              `left); with traffic stopped it was ${Number.isFinite(lastBacklogAt) ? `complete ${fmt((lastBacklogAt - upAt) / 1000, 1)} s after up` : 'still not complete'}; `) +
          `all deliveries (new traffic too) from the first delivery ${complete ? 'until the backlog was through' : 'to the limit'}: ${fmt(grossRate)}/s`,
        `- delivered per second after it came back${deliveredSeries.length > 60 ? ' (5 s means)' : ''}: ` +
          series(deliveredSeries, deliveredSeries.length > 60 ? 5 : 1),
        `- inbound during the drain: ${fmt(drainWin.aaPerSec, 1)} AA/s, ACK p99 ${fmt(drainWin.ackMs.p99, 2)} ms`,
        '',
      );
      Object.assign(during, downSampled);
      Object.assign(drainWin, drainSampled);
      steady.push(during, drainWin);
    }

    // --- totals and checks -----------------------------------------------------------------------------
    stopping = true;
    for (const s of senders) await s.close().catch(() => {});
    await ep.poll();
    const seqRows = await client.query<{ control_id: string; seq: string }>(
      'SELECT control_id, seq FROM messages WHERE channel = $1',
      [CHANNEL],
    );
    const seqs = new Map(seqRows.rows.map((r) => [r.control_id, Number(r.seq)]));
    const order = orderViolations(seqs, traffic, ep);
    const acked = [...traffic.ackedBefore(Number.POSITIVE_INFINITY)];
    const ackedIds = new Set(acked.map((s) => s.controlId));
    const missing = acked.filter((s) => !ep.first.has(s.controlId)).length;
    const unexpected = [...ep.first.keys()].filter((id) => !ackedIds.has(id)).length;
    const nonAaTotal = new Map<string, number>();
    for (const s of traffic.sent.values()) if (s.code !== 'AA') inc(nonAaTotal, s.code || 'unanswered');
    const deliveries = Object.fromEntries(
      (
        await client.query<{ status: string; n: string }>(
          'SELECT status, count(*) AS n FROM deliveries WHERE channel = $1 GROUP BY 1 ORDER BY 1',
          [CHANNEL],
        )
      ).rows.map((r) => [r.status, Number(r.n)]),
    );
    const messages = Object.fromEntries(
      (
        await client.query<{ status: string; n: string }>(
          'SELECT status, count(*) AS n FROM messages WHERE channel = $1 GROUP BY 1 ORDER BY 1',
          [CHANNEL],
        )
      ).rows.map((r) => [r.status, Number(r.n)]),
    );
    const loadAfter = loadAverage();

    // --- report ----------------------------------------------------------------------------------------
    const rows = [
      [
        'phase',
        'offered msg/s',
        'AA msg/s',
        'ACK p50 ms',
        'ACK p99 ms',
        'delivered msg/s (2xx)',
        'e2e p50 ms',
        'e2e p95 ms',
        'e2e p99 ms',
        'e2e max ms',
        'not delivered',
        'dupl.',
        'sends late',
      ],
    ];
    for (const w of steady) {
      const e2e = w.label.startsWith('outage');
      rows.push([
        `${w.label} (${fmt(w.seconds, 1)} s)`,
        w.offered === undefined ? `closed, ${SENDERS} conns` : fmt(w.offered),
        fmt(w.aaPerSec),
        fmt(w.ackMs.p50, 2),
        fmt(w.ackMs.p99, 2),
        fmt(w.deliveredPerSec),
        e2e ? 'n/a' : fmt(w.e2eMs.p50),
        e2e ? 'n/a' : fmt(w.e2eMs.p95),
        e2e ? 'n/a' : fmt(w.e2eMs.p99),
        e2e ? 'n/a' : fmt(w.e2eMs.max),
        fmt(w.notDelivered),
        fmt(w.duplicates),
        w.offered === undefined ? 'n/a' : fmt(w.late),
      ]);
    }
    const pct = (n: number | undefined) => (n === undefined ? '–' : `${fmt(n)}%`);
    const cpuRows = [
      [
        'phase',
        'daemon',
        'FHIR endpoint',
        'load gen',
        'Postgres',
        'Redis',
        'irq+softirq',
        'other (busiest)',
        'machine busy',
        'iowait',
        'steal',
      ],
    ];
    for (const [label, c] of [
      [`idle, no traffic (${IDLE_SECONDS} s)`, idleCpu] as const,
      ...steady.map((w) => [w.label, w.cpu] as const),
    ]) {
      cpuRows.push([
        label,
        pct(c?.daemon),
        pct(c?.extra.endpoint),
        pct(c?.generator),
        pct(c?.postgres),
        pct(c?.redis),
        pct(c?.irq),
        c ? `${fmt(c.other)}%${c.top ? ` (${c.top})` : ''}` : '–',
        c ? `${fmt(c.machineBusy)}% of ${cpus().length * 100}%` : '–',
        pct(c?.iowait),
        pct(c?.steal),
      ]);
    }
    log('## Throughput and latency (measured windows; e2e = send → first arrival at the FHIR endpoint)');
    log();
    log(markdown(rows));
    log();
    const staged = steady.filter((w) => w.stages);
    if (staged.length > 0) {
      const ms = (x: { p50: number; p95: number }) => `${fmt(x.p50)} / ${fmt(x.p95)}`;
      log('## Where the time went (store timestamps; p50 / p95 ms; messages received in the window)');
      log();
      log(
        markdown([
          [
            'phase',
            'delivered at 1st attempt',
            'processing (received → processed)',
            'waiting for a delivery worker (processed → attempt)',
            'attempt (build, POST, record)',
          ],
          ...staged.map((w) => {
            const st = w.stages as Stages;
            return [w.label, fmt(st.count), ms(st.processing), ms(st.waiting), ms(st.attempt)];
          }),
        ]),
      );
      log();
    }
    const pooled = steady.filter((w) => w.pools && w.pools.length > 0);
    if (pooled.length > 0) {
      log("## The daemon's store connections (pg_stat_activity every 100 ms, by application_name)");
      log();
      log(
        markdown([
          [
            'phase',
            'pool',
            'connections',
            'mean busy',
            'all busy (% of samples)',
            'mean idle in transaction',
          ],
          ...pooled.flatMap((w) =>
            (w.pools as PoolUse[]).map((p) => [
              w.label,
              p.pool,
              fmt(p.connections),
              fmt(p.meanBusy, 1),
              `${fmt(100 * p.allBusy)}%`,
              fmt(p.meanIdleInTransaction, 1),
            ]),
          ),
        ]),
      );
      log();
    }
    const queued = steady.filter((w) => w.queue);
    if (queued.length > 0) {
      const mm = (x: { mean: number; max: number }) => `${fmt(x.mean)} / ${fmt(x.max)}`;
      log("## The destination's delivery queue (BullMQ job counts every 0.5 s; mean / max)");
      log();
      log(
        markdown([
          ['phase', 'waiting for a worker', 'running', 'delayed (backoff, or parked behind their key)'],
          ...queued.map((w) => {
            const q = w.queue as QueueDepth;
            return [w.label, mm(q.waiting), mm(q.active), mm(q.delayed)];
          }),
        ]),
      );
      log();
    }
    log('## CPU (% of one core over each window)');
    log();
    log(markdown(cpuRows));
    log();
    for (const line of outageLines) log(line);
    const nonAaText = [...nonAaTotal].map(([k, v]) => `${k} ${v}`).join(', ') || '0';
    const failed = (deliveries.failed ?? 0) + (deliveries.held ?? 0);
    const dups = ep.duplicates;
    log('## Totals and checks');
    log();
    log(
      `- ACKed AA: ${fmt(acked.length)}; answered otherwise / send errors: ${nonAaText}; FHIR requests answered ` +
        `2xx: ${fmt(ep.times.length)} over ${fmt(ep.connections)} TCP connections; unattributed requests: ${fmt(ep.unattributed)}`,
    );
    log(
      `- delivered (distinct control ids): ${fmt(ep.first.size)}; ACKed but never delivered: ${fmt(missing)}; ` +
        `delivered without an AA: ${fmt(unexpected)}; duplicates: ${fmt(dups)} (must be 0)`,
    );
    log(
      `- per-key order violations: ${fmt(order.violations)} (must be 0; ${fmt(order.checked)} deliveries over ` +
        `${fmt(order.keys)} patients checked against the store's seq)`,
    );
    log(
      `- store: deliveries ${
        Object.entries(deliveries)
          .map(([k, v]) => `${k} ${fmt(v)}`)
          .join(', ') || 'none'
      }; ` +
        `messages ${
          Object.entries(messages)
            .map(([k, v]) => `${k} ${fmt(v)}`)
            .join(', ') || 'none'
        }`,
    );
    const byMsg = new Map<string, number>();
    for (const e of eng.entries)
      if (e.level >= 30) inc(byMsg, `${e.level >= 50 ? 'ERROR' : e.level >= 40 ? 'WARN' : 'info'} ${e.msg}`);
    log(`- daemon log: ${eng.entries.length} lines — ${[...byMsg].map(([k, v]) => `${k} ×${v}`).join('; ')}`);
    log(`- load average after: ${loadAfter.join(' ')}`);
    const checks = {
      'no duplicates': dups === 0,
      'no order violations': order.violations === 0,
      'nothing dead-lettered or held': failed === 0,
      [`every AA'd message delivered within the waits (--drain ${DRAIN_MS / 1000} s)`]: missing === 0,
    };
    const ok = Object.values(checks).every(Boolean);
    log(
      `- checks: ${ok ? 'passed' : 'FAILED'} (${Object.entries(checks)
        .map(([k, v]) => `${k}: ${v ? 'yes' : 'NO'}`)
        .join('; ')})`,
    );
    log();

    const cpuJson = (c: CpuReport | undefined) =>
      c
        ? {
            daemon: round(c.daemon),
            endpoint: round(c.extra.endpoint ?? Number.NaN),
            loadGen: round(c.generator),
            postgres: round(c.postgres),
            redis: round(c.redis),
            irq: round(c.irq),
            other: round(c.other),
            machineBusy: round(c.machineBusy),
          }
        : null;
    const windowJson = (w: WindowStats) => ({
      phase: w.label,
      seconds: round(w.seconds, 2),
      offeredPerSec: w.offered ?? null,
      aaPerSec: round(w.aaPerSec),
      nonAa: w.nonAa,
      ackMs: { p50: round(w.ackMs.p50, 2), p99: round(w.ackMs.p99, 2), max: round(w.ackMs.max, 2) },
      deliveredPerSec: round(w.deliveredPerSec),
      e2eMs: w.label.startsWith('outage')
        ? null
        : {
            p50: round(w.e2eMs.p50),
            p95: round(w.e2eMs.p95),
            p99: round(w.e2eMs.p99),
            max: round(w.e2eMs.max),
          },
      notDelivered: w.notDelivered,
      duplicates: w.duplicates,
      sendsLate: w.late,
      aaPerSecond: w.aaSeries,
      deliveredPerSecond: w.deliveredSeries,
      stagesMs: w.stages
        ? {
            count: w.stages.count,
            processing: { p50: round(w.stages.processing.p50), p95: round(w.stages.processing.p95) },
            waiting: { p50: round(w.stages.waiting.p50), p95: round(w.stages.waiting.p95) },
            attempt: { p50: round(w.stages.attempt.p50), p95: round(w.stages.attempt.p95) },
          }
        : null,
      storeConnections: (w.pools ?? []).map((p) => ({
        pool: p.pool,
        connections: p.connections,
        meanBusy: round(p.meanBusy, 2),
        allBusyShare: round(p.allBusy, 3),
        meanIdleInTransaction: round(p.meanIdleInTransaction, 2),
      })),
      deliveryQueue: w.queue
        ? {
            waiting: { mean: round(w.queue.waiting.mean), max: w.queue.waiting.max },
            active: { mean: round(w.queue.active.mean), max: w.queue.active.max },
            delayed: { mean: round(w.queue.delayed.mean), max: w.queue.delayed.max },
          }
        : null,
      cpuPercent: cpuJson(w.cpu),
    });
    const json = {
      bench: 'deliver',
      at: new Date().toISOString(),
      machine: {
        cpu: cpus()[0]?.model ?? '?',
        cores: cpus().length,
        node: process.version,
        loadBefore,
        loadAfter,
      },
      config: {
        senders: SENDERS,
        patients: PATIENTS,
        rate: RATE,
        closed: args.closed,
        duration: DURATION,
        warmup: WARMUP,
        outageMinutes: args['skip-outage'] ? null : OUTAGE_MS / 60_000,
        outageRate: OUTAGE_RATE,
        destination,
        engine: {
          partitions: effective.partitions,
          processGatherMs: effective.processGatherMs,
          convertWorkers: effective.convertWorkers,
        },
        postgres: pgSettings,
        messageBytes: sizes,
      },
      idleCpuPercent: cpuJson(idleCpu),
      phases: steady.filter((w) => !w.label.startsWith('outage')).map(windowJson),
      outage: outage
        ? {
            ...outage,
            windows: steady.filter((w) => w.label.startsWith('outage')).map(windowJson),
          }
        : null,
      totals: {
        acked: acked.length,
        nonAa: Object.fromEntries(nonAaTotal),
        requests2xx: ep.times.length,
        delivered: ep.first.size,
        missing,
        unexpected,
        duplicates: dups,
        orderViolations: order.violations,
        unattributed: ep.unattributed,
        deliveries,
        messages,
      },
      checks,
      ok,
    };
    console.log(JSON.stringify(json));
    return interrupted ? 130 : ok ? 0 : 1;
  } catch (err) {
    reportBenchFailure(err, interrupted, engine);
    return 1;
  } finally {
    stopping = true;
    for (const s of senders) await s.close().catch(() => {});
    await stopDaemon(engine);
    if (endpoint && endpoint.proc.exitCode === null) {
      const exited = new Promise((r) => endpoint?.proc.once('exit', r));
      endpoint.proc.kill('SIGTERM');
      await exited;
    }
    await client?.end().catch(() => {});
    for (const close of closers) await close().catch(() => {});
    if (redis) {
      try {
        const deleted = await deleteKeysMatching(redis, `*${prefix}*`);
        console.error(`cleanup: ${deleted} Redis keys matching *${prefix}* deleted`);
      } catch (err) {
        console.error(`cleanup: Redis keys with prefix ${prefix} not deleted: ${String(err)}`);
      }
      redis.disconnect();
    }
    if (db?.drop) {
      await db.drop().then(
        () => console.error(`cleanup: database ${db?.name} dropped`),
        (err: unknown) => console.error(`cleanup: database ${db?.name} not dropped: ${String(err)}`),
      );
    } else if (db) {
      console.error(
        `cleanup: database ${db.name} (HL7E_DATABASE_URL) kept; the run's rows have channel ${CHANNEL}`,
      );
    }
    rmSync(root, { recursive: true, force: true });
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

console.error(
  `Postgres ${process.env.HL7E_DATABASE_URL ? 'HL7E_DATABASE_URL' : `admin URL ${ADMIN_URL}`}; Redis ${REDIS_URL}`,
);
process.exitCode = await main();
