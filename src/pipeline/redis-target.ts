import { Cluster, Redis, type RedisOptions } from 'ioredis';

type Node = { readonly host: string; readonly port: number };

/**
 * Where the work queue's Redis is: a URL (`redis://`, `rediss://` with TLS), a set of Sentinels that name
 * the current master (ioredis follows a failover by itself), or a Redis Cluster's seed nodes. With
 * Sentinels or a Cluster, credentials and (Sentinel only) the database number come from the URL.
 */
export type RedisTarget =
  | { readonly url: string }
  | { readonly url: string; readonly sentinels: readonly Node[]; readonly name: string }
  | { readonly url: string; readonly cluster: readonly Node[] };

/** A client for the target with these options on top. */
export function connectRedis(target: RedisTarget, options: RedisOptions): Redis | Cluster {
  if ('cluster' in target) {
    const gaveUpAtOnce = options.retryStrategy !== undefined;
    return new Cluster(
      target.cluster.map((n) => ({ ...n })),
      {
        redisOptions: { ...options, ...credentials(target.url) },
        lazyConnect: options.lazyConnect ?? false,
        enableOfflineQueue: options.enableOfflineQueue ?? true,
        ...(gaveUpAtOnce ? { clusterRetryStrategy: () => null } : {}),
      },
    );
  }
  if (!('sentinels' in target)) return new Redis(target.url, options);
  const u = new URL(target.url);
  return new Redis({
    ...options,
    sentinels: target.sentinels.map((s) => ({ ...s })),
    name: target.name,
    ...credentials(target.url),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    // A probe that gives up at once gives up on the Sentinels at once too; other clients keep ioredis'
    // own Sentinel retries.
    ...(options.retryStrategy === undefined ? {} : { sentinelRetryStrategy: () => null }),
  });
}

/**
 * BullMQ's key prefix for the target. On a Cluster every key of a queue must hash to one slot: the
 * prefix becomes a hash tag (`{hl7e}`), so each engine's queues live together on one shard.
 */
export function bullPrefix(target: RedisTarget, enginePrefix: string): string | undefined {
  return 'cluster' in target ? `{${enginePrefix}}` : undefined;
}

function credentials(url: string): { username?: string; password?: string } {
  const u = new URL(url);
  return {
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
  };
}
