import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type PrivateRedis,
  type PrivateRedisCluster,
  type PrivateSentinel,
  startPrivateRedis,
  startPrivateRedisCluster,
  startPrivateSentinel,
} from '../../test/support/private-services.js';
import { hostPorts } from '../config/env.js';
import { isEngineError } from '../errors.js';
import { connectRedis } from './redis-target.js';
import { WorkQueues } from './work-queues.js';

// A private Redis and a real Sentinel that names it: the queue finds its master through the Sentinel.
let master: PrivateRedis;
let sentinel: PrivateSentinel;

beforeAll(async () => {
  master = await startPrivateRedis();
  sentinel = await startPrivateSentinel(master.port);
});

afterAll(async () => {
  await sentinel?.stop();
  await master?.stop();
});

/** One job per partition goes in; the workers must hand every one of them to the handler. */
async function expectEveryJobHandled(q: WorkQueues, partitions: number): Promise<void> {
  const seen: string[] = [];
  q.runProcessWorkers(
    async (_partition, id) => {
      seen.push(id);
    },
    () => {},
  );
  const items = Array.from({ length: partitions }, (_, partition) => ({ id: randomUUID(), partition }));
  await q.enqueueProcess(items);
  for (let i = 0; i < 100 && seen.length < items.length; i++) await new Promise((r) => setTimeout(r, 50));
  expect(seen.sort()).toEqual(items.map((i) => i.id).sort());
}

describe('Redis through Sentinel', () => {
  it('reads HL7E_REDIS_SENTINELS', () => {
    expect(hostPorts('HL7E_REDIS_SENTINELS', '10.0.0.1:26379, sentinel-b:26380')).toEqual([
      { host: '10.0.0.1', port: 26379 },
      { host: 'sentinel-b', port: 26380 },
    ]);
    expect(hostPorts('HL7E_REDIS_SENTINELS', undefined)).toBeUndefined();
    expect(() => hostPorts('HL7E_REDIS_SENTINELS', 'no-port')).toThrow(
      expect.objectContaining({ code: 'CONFIG_INVALID' }),
    );
  });

  it('connects to the master the Sentinel names', async () => {
    const client = connectRedis(
      {
        url: 'redis://unused:1',
        sentinels: [{ host: '127.0.0.1', port: sentinel.port }],
        name: sentinel.name,
      },
      { maxRetriesPerRequest: 1 },
    );
    try {
      await client.set('hl7e-sentinel-probe', 'ok');
      const direct = connectRedis({ url: master.url }, {});
      expect(await direct.get('hl7e-sentinel-probe')).toBe('ok');
      direct.disconnect();
    } finally {
      client.disconnect();
    }
  });

  it('runs the processing queues through it', async () => {
    const q = await WorkQueues.connect({
      backend: 'redis',
      redisUrl: 'redis://unused:1',
      redisSentinels: [{ host: '127.0.0.1', port: sentinel.port }],
      redisSentinelName: sentinel.name,
      prefix: `sentinel_${randomUUID().slice(0, 8)}`,
      partitions: 2,
      processGatherMs: 0,
    });
    try {
      await expectEveryJobHandled(q, 2);
    } finally {
      await q.close();
    }
  });

  it('fails fast with QUEUE_UNAVAILABLE when no Sentinel answers', async () => {
    await expect(
      WorkQueues.connect({
        backend: 'redis',
        redisUrl: 'redis://unused:1',
        redisSentinels: [{ host: '127.0.0.1', port: 1 }],
        prefix: 'sentinel_none',
        partitions: 1,
        processGatherMs: 0,
      }),
    ).rejects.toSatisfy((err: unknown) => isEngineError(err, 'QUEUE_UNAVAILABLE'));
  });
});

describe('Redis Cluster', () => {
  let cluster: PrivateRedisCluster | undefined;
  beforeAll(async () => {
    cluster = await startPrivateRedisCluster();
  }, 60_000);
  afterAll(async () => {
    await cluster?.stop();
  });

  it('runs the processing queues on a three-shard cluster (one hash-tagged prefix per engine)', async () => {
    const prefix = `cl_${randomUUID().slice(0, 8)}`;
    const q = await WorkQueues.connect({
      backend: 'redis',
      redisUrl: 'redis://unused:1',
      redisCluster: cluster?.nodes ?? [],
      prefix,
      partitions: 4,
      processGatherMs: 0,
    });
    try {
      await expectEveryJobHandled(q, 4);
    } finally {
      await q.close();
    }
  });
});
