import type { RetentionPolicy } from '../config/retention-config.js';
import type { RetentionRepo } from '../store/retention-repo.js';
import { type RetentionDeps, type RetentionReport, runRetention } from './retention.js';

export interface RetentionScheduleOptions {
  readonly deps: Omit<RetentionDeps, 'signal'>;
  readonly repo: RetentionRepo;
  readonly policy: RetentionPolicy;
  /** Who claims a run (host and pid): shown in retention_runs. */
  readonly holder: string;
  /** Delay of the first run after start; default ten minutes (start-up traffic first), or the interval when shorter. */
  readonly firstDelayMs?: number;
  onRun?(report: RetentionReport, ms: number): void;
  /** Not run: another engine holds the lock, or ran within this interval. */
  onSkip?(reason: 'locked' | 'recent'): void;
  onError?(err: unknown): void;
}

/** The first run waits this long after start, so a restart is not followed at once by a prune. */
const FIRST_DELAY_MS = 600_000;

/** A run counts for the interval if it began within this share of it (timers drift; engines differ). */
const RECENT_SHARE = 0.9;

/**
 * The daemon's scheduled prune: once shortly after start, then every interval. Several engines share
 * one store: the run takes an advisory lock (one at a time) and claims the interval (one per interval),
 * so three engines still prune once a day. Errors are reported, never thrown.
 */
export class RetentionSchedule {
  readonly #o: RetentionScheduleOptions;
  readonly #stop = new AbortController();
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();

  constructor(opts: RetentionScheduleOptions) {
    this.#o = opts;
  }

  start(): void {
    if (this.#stop.signal.aborted || this.#timer) return;
    const interval = this.#o.policy.intervalMs;
    const tick = () => {
      this.#running = this.runNow()
        .catch((err: unknown) => this.#o.onError?.(err))
        .finally(() => {
          if (!this.#stop.signal.aborted) this.#timer = setTimeout(tick, interval).unref();
        });
    };
    this.#timer = setTimeout(tick, this.#o.firstDelayMs ?? Math.min(FIRST_DELAY_MS, interval)).unref();
  }

  /** One run now, if this engine gets the lock and the interval's run is still due; else undefined. */
  async runNow(): Promise<RetentionReport | undefined> {
    const { repo, holder, policy, deps } = this.#o;
    if (this.#stop.signal.aborted) return undefined;
    let outcome: 'locked' | 'recent' = 'locked';
    const report = await repo.withRunLock(async () => {
      const now = deps.now?.() ?? new Date();
      const dueBefore = new Date(now.getTime() - policy.intervalMs * RECENT_SHARE);
      if (!(await repo.claimRun(holder, now, dueBefore))) {
        outcome = 'recent';
        return undefined;
      }
      const started = performance.now();
      const r = await runRetention({ ...deps, signal: this.#stop.signal }, policy);
      await repo.finishRun(holder, deps.now?.() ?? new Date());
      this.#o.onRun?.(r, performance.now() - started);
      return r;
    });
    if (!report) this.#o.onSkip?.(outcome);
    return report;
  }

  /** Stops the timer and lets a run in hand end after its current batch. Safe to call twice. */
  async stop(): Promise<void> {
    this.#stop.abort();
    clearTimeout(this.#timer);
    await this.#running;
  }
}
