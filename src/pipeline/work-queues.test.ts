import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Job, Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import { processQueueName, WorkQueues, type WorkQueuesOptions } from './work-queues.js';

// The machine's Redis; every queue of this file lives under one random prefix, deleted afterwards.
const REDIS_URL = process.env.HL7E_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const PREFIX = `wqtest_${randomUUID().slice(0, 8)}`;
const PARTITIONS = 4;

let redis: Redis;
let testNo = 0;
const open: WorkQueues[] = [];

/** A prefix of its own for each test, so no test sees another's jobs. */
function nextPrefix(): string {
  testNo += 1;
  return `${PREFIX}_${testNo}`;
}

async function connect(prefix: string, opts: Partial<WorkQueuesOptions> = {}): Promise<WorkQueues> {
  const q = await WorkQueues.connect({
    backend: 'redis',
    redisUrl: REDIS_URL,
    prefix,
    partitions: PARTITIONS,
    processGatherMs: 0,
    ...opts,
  });
  open.push(q);
  return q;
}

/** Waiting/prioritized/delayed/active jobs of one queue, inspected through a separate BullMQ Queue. */
async function jobsOf(name: string): Promise<Job[]> {
  const q = new Queue(name, { connection: redis });
  try {
    return await q.getJobs(['waiting', 'prioritized', 'delayed', 'active']);
  } finally {
    await q.close();
  }
}

async function countsOf(name: string): Promise<Record<string, number>> {
  const q = new Queue(name, { connection: redis });
  try {
    return await q.getJobCounts('waiting', 'prioritized', 'delayed', 'active');
  } finally {
    await q.close();
  }
}

async function until(
  what: string,
  cond: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

const ids = (n: number) => Array.from({ length: n }, () => randomUUID());

beforeAll(() => {
  redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
});

afterAll(async () => {
  for (const q of open) await q.close();
  if (!redis) return;
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `*${PREFIX}*`, 'COUNT', 500);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
});

describe('WorkQueues on Redis', () => {
  it('enqueueProcess adds one job per partition, named after the newest message of that partition', async () => {
    const prefix = nextPrefix();
    const q = await connect(prefix);
    const [a, b, c, d, e] = ids(5) as [string, string, string, string, string];
    // In commit order: the last id of each partition is its newest.
    await q.enqueueProcess([
      { id: a, partition: 0 },
      { id: b, partition: 1 },
      { id: c, partition: 0 },
      { id: d, partition: 2 },
      { id: e, partition: 0 },
    ]);

    const expected: Record<number, string[]> = { 0: [e], 1: [b], 2: [d], 3: [] };
    for (let p = 0; p < PARTITIONS; p++) {
      const jobs = await jobsOf(processQueueName(prefix, p));
      expect(jobs.map((j) => j.id)).toEqual(expected[p]);
      expect(jobs.map((j) => j.data)).toEqual((expected[p] as string[]).map((messageId) => ({ messageId })));
    }
    const counts = await countsOf(processQueueName(prefix, 0));
    expect((counts.waiting ?? 0) + (counts.prioritized ?? 0)).toBe(1);
    expect(await q.processDepth()).toEqual({ waiting: 3, active: 0, delayed: 0 });
  });

  it('wakeProcessing coalesces wake-ups until the waiting job has started', async () => {
    const prefix = nextPrefix();
    const q = await connect(prefix);
    const [m1, m2, m3, other] = ids(4) as [string, string, string, string];

    await q.wakeProcessing([{ id: m1, partition: 0 }]);
    await q.wakeProcessing([
      { id: m2, partition: 0 },
      { id: other, partition: 1 },
    ]);
    // One job for partition 0 (the first wake-up: its drain will see m2); partition 1 got its own.
    expect((await jobsOf(processQueueName(prefix, 0))).map((j) => j.id)).toEqual([m1]);
    expect((await jobsOf(processQueueName(prefix, 1))).map((j) => j.id)).toEqual([other]);

    const calls: [number, string][] = [];
    q.runProcessWorkers(
      async (partition, messageId) => {
        calls.push([partition, messageId]);
      },
      () => {},
    );
    await until('the first job of partition 0', () => calls.some(([p, id]) => p === 0 && id === m1));

    // The job started: a new message needs (and gets) a new wake-up.
    await q.wakeProcessing([{ id: m3, partition: 0 }]);
    await until('the second job of partition 0', () => calls.some(([p, id]) => p === 0 && id === m3));
    expect(calls.filter(([p]) => p === 0).map(([, id]) => id)).toEqual([m1, m3]);
    expect(calls.filter(([p]) => p === 1).map(([, id]) => id)).toEqual([other]);
  });

  it('runs each job through the handler with (partition, messageId), one at a time per partition', async () => {
    const prefix = nextPrefix();
    // Two engine processes on one prefix: a partition is still worked by one job at a time across both.
    const q1 = await connect(prefix, { processGatherMs: 2 });
    const q2 = await connect(prefix, { processGatherMs: 2 });

    const active = new Map<number, number>();
    const maxActive = new Map<number, number>();
    const seen = new Map<number, string[]>();
    const failures: unknown[] = [];
    const handler = async (partition: number, messageId: string) => {
      const now = (active.get(partition) ?? 0) + 1;
      active.set(partition, now);
      maxActive.set(partition, Math.max(maxActive.get(partition) ?? 0, now));
      seen.set(partition, [...(seen.get(partition) ?? []), messageId]);
      // Stay busy long enough that an overlapping job of the same partition would be caught.
      await sleep(15);
      active.set(partition, (active.get(partition) ?? 1) - 1);
    };
    q1.runProcessWorkers(handler, (err) => failures.push(err));
    q2.runProcessWorkers(handler, (err) => failures.push(err));

    const perPartition = 6;
    const expected = new Map<number, string[]>();
    for (let i = 0; i < perPartition; i++) {
      const items = Array.from({ length: PARTITIONS }, (_, p) => ({ id: randomUUID(), partition: p }));
      for (const it of items) expected.set(it.partition, [...(expected.get(it.partition) ?? []), it.id]);
      // enqueueProcess always enqueues (no coalescing): one job per call per partition.
      await (i % 2 === 0 ? q1 : q2).enqueueProcess(items);
    }

    const total = () => [...seen.values()].reduce((n, s) => n + s.length, 0);
    await until('every job handled', () => total() === PARTITIONS * perPartition);
    for (let p = 0; p < PARTITIONS; p++) {
      expect([...(seen.get(p) ?? [])].sort()).toEqual([...(expected.get(p) ?? [])].sort());
      expect(maxActive.get(p)).toBe(1);
    }
    expect(failures).toEqual([]);
    await until('queues drained', async () => {
      const depth = await q1.processDepth();
      return depth.waiting + depth.active + depth.delayed === 0;
    });
  });

  it('jobs carry ids only', async () => {
    const prefix = nextPrefix();
    const retry = { attempts: 5, initialDelayMs: 100, maxDelayMs: 1_000 };
    const q = await connect(prefix, {
      destinations: [{ channel: 'lab', destination: 'ehr', retry, concurrency: 2, maxDurationMs: 1_000 }],
    });
    const messages = ids(6);
    await q.enqueueProcess(messages.slice(0, 3).map((id, i) => ({ id, partition: i })));
    await q.wakeProcessing(messages.slice(3).map((id, i) => ({ id, partition: 3 - i })));
    const deliveries = ids(3);
    expect(
      await q.enqueueDelivery(deliveries.map((id) => ({ id, channel: 'lab', destination: 'ehr' }))),
    ).toBe(0);
    expect(await q.enqueueDelivery([])).toBe(0);
    // A destination no longer configured: nothing is enqueued, and the caller hears how many.
    expect(await q.enqueueDelivery([{ id: ids(1)[0]!, channel: 'lab', destination: 'gone' }])).toBe(1);

    const processJobs: Job[] = [];
    for (let p = 0; p < PARTITIONS; p++) processJobs.push(...(await jobsOf(processQueueName(prefix, p))));
    expect(processJobs.map((j) => j.id).sort()).toEqual([...messages].sort());
    for (const job of processJobs) {
      expect(job.name).toBe('process');
      expect(job.data).toEqual({ messageId: job.id });
      expect(Object.keys(job.data as object)).toEqual(['messageId']);
    }

    const deliverJobs = await jobsOf(`${prefix}-deliver-lab-ehr`);
    expect(deliverJobs.map((j) => j.id).sort()).toEqual([...deliveries].sort());
    for (const job of deliverJobs) {
      expect(job.name).toBe('deliver');
      expect(job.data).toEqual({ deliveryId: job.id });
      // The destination's own retry policy rides on each job.
      expect(job.opts.attempts).toBe(5);
      expect(job.opts.backoff).toEqual({ type: 'hl7e-delivery', delay: 100 });
    }
  });

  it('connect fails fast with QUEUE_UNAVAILABLE when Redis cannot be reached', async () => {
    const err = await WorkQueues.connect({
      backend: 'redis',
      redisUrl: 'redis://127.0.0.1:1',
      prefix: nextPrefix(),
      partitions: PARTITIONS,
      processGatherMs: 0,
    }).then(
      (q) => {
        open.push(q);
        throw new Error('expected connect to fail');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('QUEUE_UNAVAILABLE');
    expect((err as EngineError).retryable).toBe(true);
  });
});
