import type { RetryPolicy } from '../channels/channel-config.js';

/**
 * The wait before the next attempt after attempt `attempt` (1-based) failed: exponential backoff with
 * full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"), drawn uniformly between
 * `initialDelayMs` and `min(maxDelayMs, initialDelayMs · 2^(attempt-1))`. The floor keeps a destination
 * that fails fast from being hit again at once; the jitter spreads a backlog's retries so they do not
 * arrive as one wave when the destination comes back. A Retry-After the destination sent (already capped
 * by the caller) is a lower bound: the destination said when it can take the request again.
 *
 * BullMQ schedules the delay (work-queues.ts hands it over as the job's custom backoff), so retries
 * survive restarts and are shared across engine processes; nothing here keeps a timer.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random: () => number = Math.random,
): number {
  const floor = Math.min(policy.initialDelayMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.initialDelayMs * 2 ** Math.max(0, attempt - 1));
  const jittered = floor + Math.floor(random() * (ceiling - floor + 1));
  return retryAfterMs === undefined ? jittered : Math.max(jittered, retryAfterMs);
}
