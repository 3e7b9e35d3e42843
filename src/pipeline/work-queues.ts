import { setTimeout as sleep } from 'node:timers/promises';
import {
  createPostgresBackend,
  DelayedError,
  type Job,
  type JobsOptions,
  Queue,
  runMigrations,
  Worker,
  withBackend,
} from 'bullmq';
import type { RedisOptions } from 'ioredis';
import type { RetryPolicy } from '../channels/channel-config.js';
import { EngineError } from '../errors.js';
import type { DeliveryRef } from '../store/delivery-repo.js';
import { createQueuePool } from '../store/queue-pool.js';
import { bullPrefix, connectRedis, type RedisTarget } from './redis-target.js';

export interface WorkQueuesOptions {
  backend: 'redis' | 'postgres';
  redisUrl: string;
  /** Sentinels naming the master (HL7E_REDIS_SENTINELS); then the URL only gives credentials and db. */
  redisSentinels?: readonly { host: string; port: number }[];
  /** The master's name at the Sentinels (HL7E_REDIS_SENTINEL_NAME). @defaultValue 'mymaster' */
  redisSentinelName?: string;
  /** Seed nodes of a Redis Cluster (HL7E_REDIS_CLUSTER); then the URL only gives credentials. */
  redisCluster?: readonly { host: string; port: number }[];
  /** Required for the postgres backend. */
  databaseUrl?: string;
  /** Namespace in every queue name, so several engines (or tests) share one Redis/Postgres. */
  prefix: string;
  partitions: number;
  /** How long a processing job lets its partition gather before draining it (HL7E_PROCESS_GATHER_MS). */
  processGatherMs: number;
  /** One delivery queue per channel destination. */
  destinations?: readonly DeliveryQueueSpec[];
}

export interface DeliveryQueueSpec {
  readonly channel: string;
  readonly destination: string;
  readonly retry: RetryPolicy;
  /** Jobs in flight at once per engine process. */
  readonly concurrency: number;
  /** Longest one delivery may take (its timeout): the job lock must outlive it. */
  readonly maxDurationMs: number;
}

/** What a delivery job came to (pipeline/delivery-step.ts decides; this file maps it onto BullMQ). */
export type DeliverVerdict =
  /** Finished, or nothing to do: the job completes. */
  | { readonly kind: 'done' }
  /** Try again after delayMs: BullMQ's backoff (one attempt used). */
  | { readonly kind: 'retry'; readonly delayMs: number }
  /** The job moved itself to delayed (DeliverJobContext.park): it waits without using an attempt. */
  | { readonly kind: 'parked' }
  /** The destination cannot take anything for `ms` (breaker open): the whole queue waits, no attempt used. */
  | { readonly kind: 'paused'; readonly ms: number };

export interface DeliverJobContext {
  readonly deliveryId: string;
  readonly channel: string;
  readonly destination: string;
  /** Attempts BullMQ has counted as failed so far. */
  readonly attemptsMade: number;
  /** Moves this job to delayed for `ms`; the handler then answers { kind: 'parked' }. */
  park(ms: number): Promise<void>;
}

export type DeliverHandler = (job: DeliverJobContext) => Promise<DeliverVerdict>;

/** Carries the delivery step's chosen delay to the custom backoff (BullMQ hands it the thrown error). */
class RetryLater extends Error {
  override readonly name = 'RetryLater';
  constructor(readonly delayMs: number) {
    super('delivery attempt failed; retried after its backoff');
  }
}

/** The custom backoff type of delivery jobs: the delay the delivery step computed (retry-policy.ts). */
const DELIVERY_BACKOFF = 'hl7e-delivery';

/** Job payloads are ids only (DESIGN rule 2): the message itself is read from the store and archive. */
export interface ProcessJob {
  messageId: string;
}
export interface DeliverJob {
  deliveryId: string;
}

type MakeWorker = (
  name: string,
  fn: (job: Job, token?: string) => Promise<void>,
  extra?: { concurrency?: number; lockDuration?: number; backoffStrategy?: BackoffStrategy },
) => Worker;

type BackoffStrategy = (attemptsMade: number, type?: string, err?: Error) => number;

export type ProcessHandler = (partition: number, messageId: string) => Promise<void>;

/** How long a not-yet-started wake-up job covers newer messages of its partition (wakeProcessing). */
const COALESCE_MS = 2_000;

/** Where BullMQ's PostgreSQL backend keeps its tables, apart from the engine's own. */
const QUEUE_SCHEMA = 'bullmq';

const JOB_DEFAULTS: JobsOptions = {
  attempts: 8,
  backoff: { type: 'exponential', delay: 500 },
  // Finished jobs leave the queue: the store keeps the history. A later re-enqueue of the same id is
  // harmless because processing takes effect only on a message still in state `received`.
  removeOnComplete: true,
  removeOnFail: true,
};

// A job whose worker died is handed out again after lockDuration: short, because jobs take milliseconds.
const WORKER_TIMING = { lockDuration: 10_000, stalledInterval: 5_000, maxStalledCount: 1_000 };

/**
 * BullMQ queues (DESIGN: pipeline/ is the only owner of bullmq/ioredis): one processing queue per
 * ordering partition, each with global concurrency 1 so a partition is worked by one job at a time
 * across every engine process (BullMQ's free global concurrency, no paid "groups"), and one delivery
 * queue. Backend: Redis (default) or BullMQ's own PostgreSQL backend.
 */
export class WorkQueues {
  readonly #opts: WorkQueuesOptions;
  readonly #processQueues: Queue<ProcessJob>[];
  /** `channel/destination` → its delivery queue. */
  readonly #deliverQueues = new Map<string, { queue: Queue<DeliverJob>; spec: DeliveryQueueSpec }>();
  readonly #workers: Worker[] = [];
  readonly #close: () => Promise<void>;
  readonly #makeWorker: MakeWorker;
  /** Partition → when this process enqueued its not-yet-started wake-up job. */
  readonly #waking = new Map<number, number>();
  /** Partition → newest message that arrived while its wake-up job was waiting. */
  readonly #dirty = new Map<number, string>();
  readonly #sweeper: NodeJS.Timeout;

  private constructor(
    opts: WorkQueuesOptions,
    make: <T>(name: string) => Queue<T>,
    makeWorker: MakeWorker,
    close: () => Promise<void>,
  ) {
    this.#opts = opts;
    this.#processQueues = Array.from({ length: opts.partitions }, (_, p) =>
      make<ProcessJob>(processQueueName(opts.prefix, p)),
    );
    for (const spec of opts.destinations ?? []) {
      this.#deliverQueues.set(destinationKey(spec), {
        queue: make<DeliverJob>(deliverQueueName(opts.prefix, spec)),
        spec,
      });
    }
    this.#makeWorker = makeWorker;
    this.#close = close;
    this.#sweeper = setInterval(() => this.#sweepWakeups(), COALESCE_MS / 2);
    this.#sweeper.unref();
  }

  /** Connects (failing fast with QUEUE_UNAVAILABLE if the backend cannot be reached) and sets up queues. */
  static async connect(opts: WorkQueuesOptions): Promise<WorkQueues> {
    if (opts.backend === 'postgres') return WorkQueues.#connectPostgres(opts);
    const target: RedisTarget = opts.redisCluster
      ? { url: opts.redisUrl, cluster: opts.redisCluster }
      : opts.redisSentinels
        ? { url: opts.redisUrl, sentinels: opts.redisSentinels, name: opts.redisSentinelName ?? 'mymaster' }
        : { url: opts.redisUrl };
    const prefix = bullPrefix(target, opts.prefix);
    await probeRedis(target);
    const base: RedisOptions = { maxRetriesPerRequest: null, connectionName: `${opts.prefix}-engine` };
    const shared = connectRedis(target, base);
    // The producer fails fast while Redis is away instead of queueing commands in memory: intake has
    // already ACKed from the store, and the reconciler enqueues whatever could not be enqueued.
    const producer = connectRedis(target, {
      ...base,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
    });
    shared.on('error', () => {});
    producer.on('error', () => {});
    const q = new WorkQueues(
      opts,
      <T>(name: string) =>
        new Queue<T>(name, {
          connection: producer,
          defaultJobOptions: JOB_DEFAULTS,
          ...(prefix ? { prefix } : {}),
        }),
      (name, fn, extra = {}) =>
        new Worker(name, fn, {
          connection: shared,
          ...WORKER_TIMING,
          concurrency: extra.concurrency ?? 1,
          ...(extra.lockDuration ? { lockDuration: extra.lockDuration } : {}),
          ...(extra.backoffStrategy ? { settings: { backoffStrategy: extra.backoffStrategy } } : {}),
          ...(prefix ? { prefix } : {}),
        }),
      async () => {
        shared.disconnect();
        producer.disconnect();
      },
    );
    await q.ensureConcurrency().catch(() => {});
    return q;
  }

  static async #connectPostgres(opts: WorkQueuesOptions): Promise<WorkQueues> {
    if (!opts.databaseUrl) {
      throw new EngineError('CONFIG_INVALID', { detail: 'HL7E_QUEUE=postgres needs HL7E_DATABASE_URL' });
    }
    // One pool for every queue and worker: each worker holds one connection for LISTEN.
    const pool = createQueuePool(
      opts.databaseUrl,
      opts.partitions + (opts.destinations?.length ?? 0) + 16,
      QUEUE_SCHEMA,
    );
    try {
      await runMigrations(pool, QUEUE_SCHEMA);
    } catch (err) {
      await pool.end();
      throw new EngineError('QUEUE_UNAVAILABLE', {}, undefined, { cause: err });
    }
    const backend = withBackend(createPostgresBackend);
    const q = new WorkQueues(
      opts,
      <T>(name: string) =>
        new backend.Queue<T>(name, {
          connection: pool,
          defaultJobOptions: JOB_DEFAULTS,
        }) as unknown as Queue<T>,
      // The backend's Worker class, not the Redis one: the factory is bound by withBackend.
      (name, fn, extra = {}) =>
        new backend.Worker(name, fn, {
          connection: pool,
          ...WORKER_TIMING,
          concurrency: extra.concurrency ?? 1,
          ...(extra.lockDuration ? { lockDuration: extra.lockDuration } : {}),
          ...(extra.backoffStrategy ? { settings: { backoffStrategy: extra.backoffStrategy } } : {}),
        } as never) as unknown as Worker,
      () => pool.end(),
    );
    await q.ensureConcurrency();
    return q;
  }

  get partitions(): number {
    return this.#opts.partitions;
  }

  /** Global concurrency lives in the backend: re-applied by the reconciler, since FLUSHALL erases it. */
  async ensureConcurrency(): Promise<void> {
    await Promise.all(this.#processQueues.map((q) => q.setGlobalConcurrency(1)));
  }

  /**
   * One job per partition named after the partition's newest message in `items` (items in commit/seq
   * order): a processing job drains its whole partition, so older messages of the same partition need
   * no job of their own. The reconciler calls this directly (a rescue: always enqueues).
   */
  async enqueueProcess(items: readonly { id: string; partition: number }[]): Promise<void> {
    const newest = new Map<number, string>();
    for (const it of items) newest.set(it.partition, it.id);
    await Promise.all([...newest].map(([p, messageId]) => this.#addProcessJob(p, messageId)));
  }

  /**
   * Intake's wake-up calls, coalesced: while a job this process enqueued for a partition has not yet
   * started, newer messages of that partition need no job — that job's drain will see them. Under load
   * this turns one job (and one processing transaction) per message into one per partition per drain.
   * A job taken by another engine process is not seen starting here: after COALESCE_MS the partition is
   * woken again, so nothing waits longer than that (and the reconciler backs everything up).
   */
  async wakeProcessing(items: readonly { id: string; partition: number }[]): Promise<void> {
    const now = Date.now();
    const due: { id: string; partition: number }[] = [];
    for (const it of items) {
      const since = this.#waking.get(it.partition);
      if (since !== undefined && now - since < COALESCE_MS) {
        this.#dirty.set(it.partition, it.id);
      } else {
        this.#waking.set(it.partition, now);
        this.#dirty.delete(it.partition);
        due.push(it);
      }
    }
    if (due.length > 0) await this.enqueueProcess(due);
  }

  /** A processing job for `partition` started: later messages need a new wake-up. */
  #started(partition: number): void {
    this.#waking.delete(partition);
    this.#dirty.delete(partition);
  }

  /** Wake-ups that waited on a job some other process took (see wakeProcessing). */
  #sweepWakeups(): void {
    const now = Date.now();
    for (const [p, since] of this.#waking) {
      if (now - since < COALESCE_MS) continue;
      this.#waking.delete(p);
      const id = this.#dirty.get(p);
      this.#dirty.delete(p);
      if (id) void this.#addProcessJob(p, id).catch(() => {});
    }
  }

  #addProcessJob(partition: number, messageId: string): Promise<unknown> {
    return this.#queue(partition).add('process', { messageId }, { jobId: messageId });
  }

  /**
   * One job per delivery, on its destination's queue, named by the delivery id (a re-enqueue of a job
   * the queue holds is a no-op). Returns how many named a destination no longer configured: those stay
   * pending in the store (status shows them) until the destination is back or they are replayed.
   */
  async enqueueDelivery(refs: readonly DeliveryRef[]): Promise<number> {
    const byQueue = new Map<string, DeliveryRef[]>();
    let unknown = 0;
    for (const r of refs) {
      const key = destinationKey(r);
      if (!this.#deliverQueues.has(key)) {
        unknown++;
        continue;
      }
      const list = byQueue.get(key) ?? [];
      list.push(r);
      byQueue.set(key, list);
    }
    await Promise.all(
      [...byQueue].map(([key, list]) => {
        const { queue, spec } = this.#deliverQueues.get(key) as {
          queue: Queue<DeliverJob>;
          spec: DeliveryQueueSpec;
        };
        return queue.addBulk(
          list.map((r) => ({
            name: 'deliver',
            data: { deliveryId: r.id },
            opts: deliveryJobOptions(r.id, spec),
          })),
        );
      }),
    );
    return unknown;
  }

  /**
   * Wakes a delivery parked behind an earlier one of its ordering key: its delayed job runs now. A job
   * the queue lost is added again; one already running or waiting needs nothing.
   */
  async wakeDelivery(ref: DeliveryRef): Promise<void> {
    const entry = this.#deliverQueues.get(destinationKey(ref));
    if (!entry) return;
    const job = await entry.queue.getJob(ref.id);
    if (!job) {
      await this.enqueueDelivery([ref]);
      return;
    }
    if (await job.isDelayed()) await job.promote().catch(() => {});
  }

  /**
   * Starts each destination's worker. BullMQ does the scheduling: a retry is a failed attempt with the
   * delivery step's delay as custom backoff; a park moves the job to delayed without using an attempt;
   * a pause (breaker open) rate-limits the destination's whole queue, so its backlog waits in Redis
   * instead of being taken and put back job by job.
   */
  runDeliveryWorkers(handler: DeliverHandler, onFailed: (err: unknown, destination: string) => void): void {
    for (const [key, { spec }] of this.#deliverQueues) {
      let worker: Worker | undefined;
      worker = this.#makeWorker(
        deliverQueueName(this.#opts.prefix, spec),
        async (job, token) => {
          const verdict = await handler({
            deliveryId: (job.data as DeliverJob).deliveryId,
            channel: spec.channel,
            destination: spec.destination,
            attemptsMade: job.attemptsMade,
            park: (ms) => job.moveToDelayed(Date.now() + ms, token),
          });
          switch (verdict.kind) {
            case 'done':
              return;
            case 'retry':
              throw new RetryLater(verdict.delayMs);
            case 'parked':
              throw new DelayedError();
            case 'paused':
              await worker?.rateLimit(verdict.ms);
              throw Worker.RateLimitError();
          }
        },
        {
          concurrency: spec.concurrency,
          lockDuration: Math.max(WORKER_TIMING.lockDuration, spec.maxDurationMs + 10_000),
          backoffStrategy: (_attempts, _type, err) => (err instanceof RetryLater ? err.delayMs : 1_000),
        },
      );
      worker.on('failed', (_job, err) => {
        if (!(err instanceof RetryLater)) onFailed(err, key);
      });
      worker.on('error', (err) => onFailed(err, key));
      this.#workers.push(worker);
    }
  }

  /** Jobs per destination queue: waiting (incl. rate-limited), running, delayed (backoff and parked). */
  async deliveryDepth(): Promise<Map<string, { waiting: number; active: number; delayed: number }>> {
    const out = new Map<string, { waiting: number; active: number; delayed: number }>();
    await Promise.all(
      [...this.#deliverQueues].map(async ([key, { queue }]) => {
        const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'prioritized');
        out.set(key, {
          waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
          active: c.active ?? 0,
          delayed: c.delayed ?? 0,
        });
      }),
    );
    return out;
  }

  /** Starts one worker per partition (concurrency 1 each) running `handler`. */
  runProcessWorkers(handler: ProcessHandler, onFailed: (err: unknown, partition: number) => void): void {
    for (let p = 0; p < this.#opts.partitions; p++) {
      const worker = this.#makeWorker(processQueueName(this.#opts.prefix, p), async (job) => {
        // Let the partition gather: what arrives meanwhile rides on this job (its wake-ups coalesce),
        // so one transaction and one job process many messages. Costs processGatherMs of processing
        // latency, never ACK latency; it is what frees the CPU the ACK path needs (bench:ingest:
        // 20 ms → 250 ms took the closed loop from ≈1,500 to ≈3,200 msg/s on 2 cores).
        await sleep(this.#opts.processGatherMs);
        this.#started(p);
        return handler(p, (job.data as ProcessJob).messageId);
      });
      worker.on('failed', (_job, err) => onFailed(err, p));
      worker.on('error', (err) => onFailed(err, p));
      this.#workers.push(worker);
    }
  }

  /** Jobs waiting, running and delayed across the processing partitions. */
  async processDepth(): Promise<{ waiting: number; active: number; delayed: number }> {
    const counts = await Promise.all(
      this.#processQueues.map((q) => q.getJobCounts('waiting', 'active', 'delayed', 'prioritized')),
    );
    const total = { waiting: 0, active: 0, delayed: 0 };
    for (const c of counts) {
      total.waiting += (c.waiting ?? 0) + (c.prioritized ?? 0);
      total.active += c.active ?? 0;
      total.delayed += c.delayed ?? 0;
    }
    return total;
  }

  /** Workers finish their current job and take no more (the first step of a graceful stop). */
  async closeWorkers(): Promise<void> {
    await Promise.allSettled(this.#workers.map((w) => w.close()));
  }

  /** Workers finish their current job first (graceful), then queues and connections close. */
  async close(): Promise<void> {
    clearInterval(this.#sweeper);
    await this.closeWorkers();
    await Promise.allSettled(
      [...this.#processQueues, ...[...this.#deliverQueues.values()].map((d) => d.queue)].map((q) =>
        q.close(),
      ),
    );
    await this.#close();
  }

  #queue(partition: number): Queue<ProcessJob> {
    return this.#processQueues[partition] as Queue<ProcessJob>;
  }
}

export function destinationKey(d: { channel: string; destination: string }): string {
  return `${d.channel}/${d.destination}`;
}

function deliverQueueName(prefix: string, d: { channel: string; destination: string }): string {
  return `${prefix}-deliver-${d.channel}-${d.destination}`;
}

/** A delivery job: the destination's own attempts and backoff, on top of the queue's JOB_DEFAULTS. */
function deliveryJobOptions(deliveryId: string, spec: DeliveryQueueSpec): JobsOptions {
  return {
    jobId: deliveryId,
    attempts: spec.retry.attempts,
    backoff: { type: DELIVERY_BACKOFF, delay: spec.retry.initialDelayMs },
  };
}

export function processQueueName(prefix: string, partition: number): string {
  return `${prefix}-process-${String(partition).padStart(3, '0')}`;
}

/** One quick connection attempt, so a missing Redis is reported at start in one line, not retried forever. */
async function probeRedis(target: RedisTarget): Promise<void> {
  const probe = connectRedis(target, {
    lazyConnect: true,
    connectTimeout: 2_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    enableOfflineQueue: false,
  });
  probe.on('error', () => {});
  try {
    await probe.connect();
    await probe.ping();
  } catch (err) {
    throw new EngineError('QUEUE_UNAVAILABLE', {}, undefined, { cause: err });
  } finally {
    probe.disconnect();
  }
}
