/** What the daemon benchmarks share around the real daemon they run: its death, its helpers' pids, cleanup. */
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { EngineProcess } from '../../test/support/engine-process.js';
import { statFields } from './proc-cpu.js';

/** The daemon exited while the benchmark still needed it. */
export class DaemonDied extends Error {}

/**
 * Rejects with DaemonDied when the daemon exits while `stopping()` is false; never resolves. Raced
 * against every wait, so a crashed daemon ends the benchmark at once instead of at a timeout.
 */
export function deathWatch(engine: EngineProcess, stopping: () => boolean): Promise<never> {
  const watch = new Promise<never>((_, reject) =>
    engine.proc.once('exit', (code, signal) => {
      if (!stopping())
        reject(new DaemonDied(`daemon exited (code ${code}, signal ${signal}) during the run`));
    }),
  );
  watch.catch(() => {});
  return watch;
}

/** The postmaster serving `client` (parent of its backend), for CPU accounting. */
export async function postmasterPid(client: pg.Client): Promise<number | undefined> {
  const backend = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]?.pid;
  return backend === undefined ? undefined : Number(statFields(backend)?.[1]);
}

export async function redisServerPid(redis: Redis): Promise<number | undefined> {
  return Number(/process_id:(\d+)/.exec(await redis.info('server'))?.[1]) || undefined;
}

/** Deletes every key matching `pattern` (SCAN, not KEYS: the Redis may be shared); returns how many. */
export async function deleteKeysMatching(redis: Redis, pattern: string): Promise<number> {
  let cursor = '0';
  let deleted = 0;
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) deleted += await redis.del(...keys);
  } while (cursor !== '0');
  return deleted;
}

/**
 * A benchmark run that threw, said in one place: Ctrl-C (which also reaches the daemon, so its exit is
 * expected), the daemon dying (with its output, which explains why), or anything else with its stack.
 */
export function reportBenchFailure(
  err: unknown,
  interrupted: boolean,
  engine: EngineProcess | undefined,
): void {
  const text = err instanceof Error ? err.message : String(err);
  if (interrupted) console.error(`interrupted: ${text}`);
  else if (err instanceof DaemonDied || (engine && engine.proc.exitCode !== null)) {
    console.error(`${text}\n--- daemon output ---\n${engine?.output ?? ''}`);
  } else console.error(err instanceof Error ? (err.stack ?? err.message) : String(err));
}

/** SIGTERM, and SIGKILL if the graceful stop takes longer than 20 s. */
export async function stopDaemon(engine: EngineProcess | undefined): Promise<void> {
  if (!engine || engine.proc.exitCode !== null) return;
  const exited = engine.kill('SIGTERM');
  const timer = setTimeout(() => engine.proc.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
}
