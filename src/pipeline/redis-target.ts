import { Redis, type RedisOptions } from 'ioredis';

/**
 * Where the work queue's Redis is: a URL (`redis://`, `rediss://` with TLS), or a set of Sentinels that
 * name the current master (ioredis follows a failover by itself). Credentials and the database number of
 * a Sentinel setup come from the URL, which is otherwise unused then.
 */
export type RedisTarget =
  | { readonly url: string }
  | {
      readonly url: string;
      readonly sentinels: readonly { host: string; port: number }[];
      readonly name: string;
    };

/** A client for the target with these options on top. */
export function connectRedis(target: RedisTarget, options: RedisOptions): Redis {
  if (!('sentinels' in target)) return new Redis(target.url, options);
  const u = new URL(target.url);
  return new Redis({
    ...options,
    sentinels: target.sentinels.map((s) => ({ ...s })),
    name: target.name,
    ...(u.username ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password ? { password: decodeURIComponent(u.password) } : {}),
    ...(u.pathname.length > 1 ? { db: Number(u.pathname.slice(1)) } : {}),
    // A probe that gives up at once gives up on the Sentinels at once too; other clients keep ioredis'
    // own Sentinel retries.
    ...(options.retryStrategy === undefined ? {} : { sentinelRetryStrategy: () => null }),
  });
}
