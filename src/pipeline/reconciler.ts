import type { DeliveryRepo } from '../store/delivery-repo.js';
import type { MessageRepo } from '../store/message-repo.js';
import type { WorkQueues } from './work-queues.js';

export interface ReconcilerOptions {
  messages: MessageRepo;
  deliveries: DeliveryRepo;
  queues: WorkQueues;
  intervalMs: number;
  /** Periodic passes skip rows younger than this: intake and processing enqueue those themselves. */
  graceMs?: number;
  /** Called as a pass begins, before anything is enqueued. */
  beforePass?(): void;
  onPass?(stats: { messages: number; deliveries: number; ms: number }): void;
  onError?(err: unknown): void;
}

const PAGE = 1000;

/**
 * DESIGN rule 2: the store, not Redis, knows what is unfinished. At start-up and then periodically,
 * every message still `received` and every delivery still `pending` is enqueued again under its own id
 * as job id — a no-op for jobs the queue still holds, a rescue for jobs a lost or flushed Redis dropped.
 */
export class Reconciler {
  readonly #o: ReconcilerOptions;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<unknown> = Promise.resolve();
  #stopped = false;

  constructor(opts: ReconcilerOptions) {
    this.#o = opts;
  }

  /** One full pass; `graceMs` 0 at start-up takes everything. */
  async runOnce(graceMs = this.#o.graceMs ?? 10_000): Promise<{ messages: number; deliveries: number }> {
    const started = performance.now();
    const before = new Date(Date.now() - graceMs);
    this.#o.beforePass?.();
    await this.#o.queues.ensureConcurrency();
    let messages = 0;
    for (let after = 0; ; ) {
      const page = await this.#o.messages.unfinishedAfter(after, PAGE, before);
      if (page.length === 0) break;
      await this.#o.queues.enqueueProcess(page);
      messages += page.length;
      after = (page.at(-1) as { seq: number }).seq;
      if (page.length < PAGE || this.#stopped) break;
    }
    let deliveries = 0;
    for (let after = '00000000-0000-0000-0000-000000000000'; ; ) {
      const page = await this.#o.deliveries.pendingAfter(after, PAGE, before);
      if (page.length === 0) break;
      await this.#o.queues.enqueueDelivery(page);
      deliveries += page.length;
      after = (page.at(-1) as { id: string }).id;
      if (page.length < PAGE || this.#stopped) break;
    }
    this.#o.onPass?.({ messages, deliveries, ms: performance.now() - started });
    return { messages, deliveries };
  }

  /** Runs a start-up pass (everything), then one every intervalMs. Errors are reported, never thrown. */
  async start(): Promise<void> {
    await this.#guarded(0);
    const tick = () => {
      if (this.#stopped) return;
      this.#running = this.#guarded().finally(() => {
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#o.intervalMs);
      });
    };
    this.#timer = setTimeout(tick, this.#o.intervalMs);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #guarded(graceMs?: number): Promise<void> {
    try {
      await this.runOnce(graceMs);
    } catch (err) {
      this.#o.onError?.(err);
    }
  }
}
