import type { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import { EngineError, isEngineError } from '../errors.js';
import { decodeHl7 } from '../hl7/charset.js';
import { parse } from '../hl7/index.js';
import type { Db, Queryable } from '../store/db.js';
import type { DeliveryRepo } from '../store/delivery-repo.js';
import type { MessageRepo, StoredMessage } from '../store/message-repo.js';

export interface ProcessorOptions {
  db: Db;
  messages: MessageRepo;
  deliveries: DeliveryRepo;
  archive: RawArchive;
  channels: ReadonlyMap<string, ChannelConfig>;
  enqueueDeliveries(ids: readonly string[]): Promise<void>;
  onProcessed?(m: StoredMessage, outcome: 'processed' | 'failed', code?: string): void;
}

/** Advisory-lock namespace for partitions (two-key form: namespace, partition). */
const PARTITION_LOCK = 727100;

/**
 * The processing step. A job is only a wake-up call for its partition: the store decides the order.
 * Each step takes the partition's advisory lock, picks the oldest unfinished message of the partition,
 * processes it and commits its state change in the same transaction. So messages of one ordering key
 * are processed in arrival order even when Redis lost jobs and the reconciler re-enqueued them out of
 * order, and a message is processed once even if two jobs name it.
 */
export class Processor {
  readonly #o: ProcessorOptions;

  constructor(opts: ProcessorOptions) {
    this.#o = opts;
  }

  /** Processes every unfinished message of the partition up to and including `messageId`. */
  async processPartition(partition: number, messageId: string): Promise<number> {
    const target = await this.#o.messages.get(messageId);
    if (!target) return 0;
    let n = 0;
    for (;;) {
      const done = await this.#step(partition, target.seq);
      if (!done) return n;
      n++;
    }
  }

  async #step(partition: number, uptoSeq: number): Promise<boolean> {
    let picked: StoredMessage | undefined;
    let result: { outcome: 'processed' | 'failed'; code?: string; deliveryIds: string[] } | undefined;
    await this.#o.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1, $2)', [PARTITION_LOCK, partition]);
      const [next] = await this.#o.messages.unfinishedInPartition(partition, uptoSeq, 1, tx);
      if (!next) return;
      picked = next;
      result = await this.#process(tx, next);
    });
    if (!picked || !result) return false;
    this.#o.onProcessed?.(picked, result.outcome, result.code);
    // After commit: a lost enqueue is recovered by the reconciler (deliveries stay pending in the store).
    if (result.deliveryIds.length > 0) await this.#o.enqueueDeliveries(result.deliveryIds).catch(() => {});
    return true;
  }

  async #process(
    tx: Queryable,
    m: StoredMessage,
  ): Promise<{ outcome: 'processed' | 'failed'; code?: string; deliveryIds: string[] }> {
    const channel = this.#o.channels.get(m.channel);
    try {
      if (!channel) throw new EngineError('PIPELINE_CHANNEL_UNKNOWN');
      const raw = await this.#o.archive.read({
        channel: m.channel,
        messageId: m.id,
        sha256: m.content_sha256,
        location: { file: m.archive_file, offset: m.archive_offset, length: m.archive_length },
      });
      const message = parse(decodeHl7(raw, channel.charset).text);
      const destinations = channel.destinations.map((d) => d.name);
      await this.#o.messages.markProcessed(tx, m.id, 'processed', {
        segments: message.segmentCount,
        destinations: destinations.length,
      });
      const deliveryIds = await this.#o.deliveries.createPending(tx, m.id, destinations);
      return { outcome: 'processed', deliveryIds };
    } catch (err) {
      // Retryable trouble (store, key provider) rolls back and the job retries: the partition waits,
      // keeping order. A permanent fault marks this message failed and the partition moves on.
      if (!isEngineError(err) || err.retryable) throw err;
      await this.#o.messages.markProcessed(tx, m.id, 'failed', { error: err.code });
      await this.#o.messages.noteError(tx, m.id, err.code);
      return { outcome: 'failed', code: err.code, deliveryIds: [] };
    }
  }
}
