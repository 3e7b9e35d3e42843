import { createHash } from 'node:crypto';
import type { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import { EngineError, isEngineError } from '../errors.js';
import type { Db } from '../store/db.js';
import type { DeliveryRef, DeliveryRepo, NewDeliveries } from '../store/delivery-repo.js';
import { archiveRefOf, type MessageRepo, type StoredMessage } from '../store/message-repo.js';
import {
  type ConversionOutcome,
  type ConvertItem,
  type ConvertResult,
  destinationsFor,
} from './conversion-step.js';
import type { MessageConverter } from './message-converter.js';
import type { RawHandoff } from './raw-handoff.js';

export interface ProcessorOptions {
  db: Db;
  messages: MessageRepo;
  deliveries: DeliveryRepo;
  archive: RawArchive;
  channels: ReadonlyMap<string, ChannelConfig>;
  /** Parses, filters and maps each message (in worker threads in the daemon: conversion-pool.ts). */
  converter: MessageConverter;
  enqueueDeliveries(refs: readonly DeliveryRef[]): Promise<void>;
  /** Bytes intake just committed; the archive is read for whatever is not here. */
  handoff?: RawHandoff;
  onProcessed?(
    m: StoredMessage,
    outcome: 'processed' | 'failed',
    code?: string,
    conversion?: ConversionOutcome,
  ): void;
}

/** Advisory-lock namespace for partitions (two-key form: namespace, partition). */
const PARTITION_LOCK = 727100;
/** Messages per processing transaction: amortizes the lock, the round trips and the commit. */
const STEP_BATCH = 64;

type Outcome = {
  id: string;
  status: 'processed' | 'failed';
  errorCode: string | null;
  detail: object;
  conversion?: ConversionOutcome;
};

/**
 * The processing step. A job is only a wake-up call for its partition: the store decides the order.
 * Each step takes the partition's advisory lock, picks the oldest unfinished messages of the partition
 * (up to STEP_BATCH), processes them and commits their state changes in the same transaction. So
 * messages of one ordering key are processed in arrival order even when Redis lost jobs and the
 * reconciler re-enqueued them out of order, and a message is processed once even if two jobs name it.
 * Under load one job drains what many messages brought, and the jobs of those find nothing to do.
 */
export class Processor {
  readonly #o: ProcessorOptions;
  /**
   * Partition → highest seq this process has processed: drains look above it. One process commits
   * intake batches one after another, so a message it has not yet seen always has a higher seq. A
   * lower one can appear only from another engine process sharing the store, or after a rollback the
   * floor never moved for: `rescan()` (each reconciler pass) drops the floors, so such a message waits
   * at most one reconcile interval.
   */
  readonly #floor = new Map<number, number>();

  constructor(opts: ProcessorOptions) {
    this.#o = opts;
  }

  /**
   * Processes every unfinished message of the partition, the job's own message among them. Always
   * drains, even when that message is long done: a job also stands for newer messages whose wake-ups
   * were coalesced into it (WorkQueues.wakeProcessing).
   */
  async processPartition(partition: number, _messageId: string): Promise<number> {
    let n = 0;
    for (;;) {
      const done = await this.#step(partition);
      n += done;
      if (done < STEP_BATCH) return n;
    }
  }

  async #step(partition: number): Promise<number> {
    let picked: StoredMessage[] = [];
    let outcomes: Outcome[] = [];
    let deliveryIds: DeliveryRef[] = [];
    await this.#o.db.transaction(async (tx) => {
      // The partition lock, and: this commit need not wait for its WAL flush. Processing is recomputed
      // from the store and the archive, so a commit lost in a server crash means the message is
      // processed again, never lost. (Intake's commits, which the ACK stands on, stay synchronous.)
      await tx.query(
        "SELECT pg_advisory_xact_lock($1, $2), set_config('synchronous_commit', 'off', true)",
        [PARTITION_LOCK, partition],
        'processing_partition_lock',
      );
      picked = await this.#o.messages.unfinishedInPartition(
        partition,
        this.#floor.get(partition) ?? 0,
        STEP_BATCH,
        tx,
      );
      if (picked.length === 0) return;
      const work = await this.#process(picked);
      outcomes = work.outcomes;
      const changed = new Set(await this.#o.messages.markProcessedMany(tx, outcomes));
      deliveryIds = await this.#o.deliveries.createPendingMany(
        tx,
        work.deliveries.filter((d) => changed.has(d.messageId)),
      );
    });
    const last = picked.at(-1);
    if (last) this.#floor.set(partition, last.seq);
    for (const [i, m] of picked.entries()) {
      const o = outcomes[i] as Outcome;
      this.#o.onProcessed?.(m, o.status, o.errorCode ?? undefined, o.conversion);
    }
    // After commit: a lost enqueue is recovered by the reconciler (deliveries stay pending in the store).
    if (deliveryIds.length > 0) await this.#o.enqueueDeliveries(deliveryIds).catch(() => {});
    return picked.length;
  }

  /** The next drain of every partition starts from its beginning again. */
  rescan(): void {
    this.#floor.clear();
  }

  /** Decrypt, check, parse, filter and convert each message. Retryable trouble (key provider, disk) throws: the
   * transaction rolls back, the job retries and the partition waits, keeping order. A permanent fault
   * marks that message failed and the partition moves on. */
  async #process(
    batch: readonly StoredMessage[],
  ): Promise<{ outcomes: Outcome[]; deliveries: NewDeliveries[] }> {
    const raws = await this.#raws(batch);
    const outcomes: Outcome[] = [];
    const deliveries: NewDeliveries[] = [];
    // Read faults first (a retryable one fails the whole step); the rest go to the converter as one batch.
    const items: ConvertItem[] = [];
    const itemOf: (number | undefined)[] = [];
    const faults: (string | undefined)[] = [];
    for (const [i, m] of batch.entries()) {
      const read = raws[i] as { raw: Buffer } | { error: unknown };
      if (!this.#o.channels.has(m.channel)) faults[i] = 'PIPELINE_CHANNEL_UNKNOWN';
      else if ('error' in read) {
        if (!isEngineError(read.error) || read.error.retryable) throw read.error;
        faults[i] = read.error.code;
      } else {
        itemOf[i] = items.length;
        items.push({ channel: m.channel, raw: read.raw, sha256: m.content_sha256 });
      }
    }
    const results = await this.#o.converter.convert(items);
    for (const [i, m] of batch.entries()) {
      const k = itemOf[i];
      const r: ConvertResult =
        k === undefined
          ? { ok: false, code: faults[i] as string, retryable: false }
          : (results[k] as ConvertResult);
      if (!r.ok) {
        if (r.retryable) throw new EngineError('PIPELINE_CONVERT_FAILED');
        outcomes.push({ id: m.id, status: 'failed', errorCode: r.code, detail: { error: r.code } });
        continue;
      }
      const c = r.outcome;
      const destinations = destinationsFor(c.route, this.#o.channels.get(m.channel) as ChannelConfig);
      outcomes.push({
        id: m.id,
        status: c.errorCode ? 'failed' : 'processed',
        errorCode: c.errorCode ?? null,
        detail: { ...c.detail, destinations: destinations.length },
        conversion: c,
      });
      if (!c.errorCode && destinations.length > 0) {
        deliveries.push({
          messageId: m.id,
          channel: m.channel,
          seq: m.seq,
          destinations,
          ...(c.orderKey === undefined ? {} : { orderKey: c.orderKey }),
        });
      }
    }
    return { outcomes, deliveries };
  }

  /** Each message's bytes: from the handoff when intake left them (digest checked), else the archive. */
  async #raws(batch: readonly StoredMessage[]): Promise<({ raw: Buffer } | { error: unknown })[]> {
    const out: ({ raw: Buffer } | { error: unknown })[] = new Array(batch.length);
    const missing: number[] = [];
    for (const [i, m] of batch.entries()) {
      const raw = this.#o.handoff?.take(m.id);
      if (raw && createHash('sha256').update(raw).digest().equals(m.content_sha256)) out[i] = { raw };
      else missing.push(i);
    }
    if (missing.length > 0) {
      const read = await this.#o.archive.readMany(
        missing.map((i) => archiveRefOf(batch[i] as StoredMessage)),
      );
      for (const [k, i] of missing.entries()) out[i] = read[k] as { raw: Buffer } | { error: unknown };
    }
    return out;
  }
}
