import { Redis } from 'ioredis';

/** The machine's Redis, shared by every test file (CI starts it; HL7E_REDIS_URL points elsewhere). */
export const REDIS_URL = process.env.HL7E_REDIS_URL ?? 'redis://127.0.0.1:6379';

/**
 * Removes one test's queues from the shared Redis: BullMQ's own `bull:` prefix, then the engine's queue
 * names under HL7E_QUEUE_PREFIX. Only these keys: other test files use the same server at the same time.
 */
export async function dropQueueKeys(prefix: string): Promise<void> {
  const redis = new Redis(REDIS_URL);
  try {
    const keys = await redis.keys(`bull:${prefix}-*`);
    if (keys.length > 0) await redis.del(...keys);
  } finally {
    redis.disconnect();
  }
}
