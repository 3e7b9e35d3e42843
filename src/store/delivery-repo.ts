import { randomUUID } from 'node:crypto';
import type { SealedBody } from '../archive/delivery-bodies.js';
import type { Db, Queryable } from './db.js';

/** Which queue a delivery job goes to: one per channel destination (pipeline/work-queues.ts). */
export interface DeliveryRef {
  readonly id: string;
  readonly channel: string;
  readonly destination: string;
}

/** Deliveries a processing batch creates: one per destination of each processed message. */
export interface NewDeliveries {
  readonly messageId: string;
  readonly channel: string;
  readonly seq: number;
  /** deliveries.order_key as decimal text (pipeline/ordering.ts); undefined: waits for nothing. */
  readonly orderKey?: string;
  readonly destinations: readonly string[];
}

/** What the delivery step needs of one delivery and its message: ids, digests and archive positions. */
export interface DeliveryWork extends DeliveryRef {
  readonly messageId: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly seq: number;
  readonly orderKey: string | null;
  readonly contentSha256: Buffer;
  readonly archive: { readonly file: string; readonly offset: number; readonly length: number };
  /** An earlier delivery with the same ordering key to the same destination is still pending or held. */
  readonly blocked: boolean;
  /** Attempts made before the last replay: the retry policy counts from here. */
  readonly attemptBase: number;
  /** When the message arrived (end-to-end latency). */
  readonly receivedAt: Date;
  /** Set by a replay: send the Bundle rebuilt from the raw message, or what the last attempt sent. */
  readonly replayFrom: 'raw' | 'mapped' | null;
}

export type DeliveryStatus = 'pending' | 'delivered' | 'failed' | 'held';

/** One attempt as recorded; bodies are already sealed by the caller (archive/delivery-bodies.ts). */
export interface AttemptRecord {
  readonly deliveryId: string;
  readonly messageId: string;
  readonly attempt: number;
  readonly startedAt: Date;
  /** delivered/rejected/failed/held end the delivery; retry leaves it pending. */
  readonly outcome: 'delivered' | 'retry' | 'rejected' | 'failed' | 'held';
  readonly errorClass: string | null;
  readonly statusCode: number | null;
  readonly ackCode: string | null;
  readonly retryAfterMs: number | null;
  /** When BullMQ will try again (status shows it); retry only. */
  readonly nextAttemptAt: Date | null;
  readonly bodies: readonly SealedBody[];
}

/**
 * An attempt's record need not wait for its WAL flush: if a server crash loses it, the delivery is still
 * pending and is attempted again — which the destination takes as a repeat (FHIR conditional requests;
 * MLLP is at-least-once anyway). Intake's commits, which ACKs stand on, stay synchronous. bench:deliver
 * found the flush on every attempt to be one of the costs that held deliveries near 100/s.
 */
const RELAXED_COMMIT = "set_config('synchronous_commit', 'off', true)";

/** Advisory-lock namespace of ordering keys (two-key form would need int4s: one bigint key instead). */
const ORDER_LOCK_SALT = 727200n;

/** Per-destination delivery rows: created pending when a message is processed, finished by the delivery step. */
export class DeliveryRepo {
  constructor(private readonly db: Db) {}

  /** Inside the processing transaction, so a message is never processed without its deliveries. */
  async createPendingMany(tx: Queryable, items: readonly NewDeliveries[]): Promise<DeliveryRef[]> {
    const ids: string[] = [];
    const messageIds: string[] = [];
    const channels: string[] = [];
    const destinations: string[] = [];
    const seqs: number[] = [];
    const keys: (string | null)[] = [];
    const refs: DeliveryRef[] = [];
    for (const it of items) {
      for (const d of it.destinations) {
        const id = randomUUID();
        ids.push(id);
        messageIds.push(it.messageId);
        channels.push(it.channel);
        destinations.push(d);
        seqs.push(it.seq);
        keys.push(it.orderKey ?? null);
        refs.push({ id, channel: it.channel, destination: d });
      }
    }
    if (ids.length === 0) return [];
    await tx.query(
      `INSERT INTO deliveries (id, message_id, channel, destination, seq, order_key, status)
       SELECT id, message_id, channel, destination, seq, order_key, 'pending'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bigint[], $6::bigint[])
           AS d(id, message_id, channel, destination, seq, order_key)`,
      [ids, messageIds, channels, destinations, seqs, keys],
      'deliveries_create_pending',
    );
    return refs;
  }

  /** Pending deliveries created before `before`, after a keyset cursor (for the reconciler). */
  async pendingAfter(afterId: string, limit: number, before: Date): Promise<DeliveryRef[]> {
    const { rows } = await this.db.query<DeliveryRef>(
      `SELECT id, channel, destination FROM deliveries
        WHERE status = 'pending' AND id > $1 AND created_at < $3 ORDER BY id LIMIT $2`,
      [afterId, limit, before.toISOString()],
    );
    return rows;
  }

  /** The delivery, its message's archive position, and whether an earlier one of its key holds it back. */
  async load(id: string, q: Queryable = this.db): Promise<DeliveryWork | undefined> {
    const { rows } = await q.query<{
      id: string;
      message_id: string;
      channel: string;
      destination: string;
      status: DeliveryStatus;
      attempts: number;
      seq: number;
      order_key: string | null;
      content_sha256: Buffer;
      archive_file: string;
      archive_offset: number;
      archive_length: number;
      blocked: boolean;
      attempt_base: number;
      replay_from: 'raw' | 'mapped' | null;
      received_at: Date;
    }>(
      `SELECT d.id, d.message_id, d.channel, d.destination, d.status, d.attempts, d.seq,
              d.order_key::text AS order_key, m.content_sha256, m.archive_file, m.archive_offset,
              m.archive_length, d.attempt_base, d.replay_from, m.received_at,
              (d.order_key IS NOT NULL AND EXISTS (
                 SELECT 1 FROM deliveries e
                  WHERE e.channel = d.channel AND e.destination = d.destination AND e.order_key = d.order_key
                    AND e.seq < d.seq AND e.status IN ('pending', 'held'))) AS blocked
         FROM deliveries d JOIN messages m ON m.id = d.message_id
        WHERE d.id = $1`,
      [id],
      'deliveries_load',
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      id: r.id,
      messageId: r.message_id,
      channel: r.channel,
      destination: r.destination,
      status: r.status,
      attempts: r.attempts,
      seq: r.seq,
      orderKey: r.order_key,
      contentSha256: r.content_sha256,
      archive: { file: r.archive_file, offset: r.archive_offset, length: r.archive_length },
      blocked: r.blocked,
      attemptBase: r.attempt_base,
      receivedAt: r.received_at,
      replayFrom: r.replay_from,
    };
  }

  /**
   * Runs `fn` holding the lock of one (channel, destination, ordering key). The delivery step parks a
   * held-back delivery under it and a finishing delivery wakes its successor under it, so a park can
   * never slip in between a finish and its wake-up (a lost wake-up would stall the key).
   */
  async withOrderLock<T>(
    ref: { channel: string; destination: string; orderKey: string },
    fn: (tx: Queryable) => Promise<T>,
  ): Promise<T> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `SELECT pg_advisory_xact_lock($1::bigint), ${RELAXED_COMMIT}`,
        [orderLockId(ref)],
        'deliveries_order_lock',
      );
      return fn(tx);
    });
  }

  /**
   * Records one attempt and, unless it is a retry, ends the delivery. The message follows: delivered
   * once all its deliveries are, failed (last_error_code DELIVERY_FAILED) when one of them is dead-lettered
   * or rejected.
   * Returns false when the delivery was no longer pending (another process finished it first).
   */
  async recordAttempt(a: AttemptRecord, tx?: Queryable): Promise<boolean> {
    if (!tx) {
      return this.db.transaction(async (t) => {
        await t.query(`SELECT ${RELAXED_COMMIT}`, [], 'deliveries_relaxed_commit');
        return this.recordAttempt(a, t);
      });
    }
    const status: DeliveryStatus =
      a.outcome === 'retry'
        ? 'pending'
        : a.outcome === 'delivered'
          ? 'delivered'
          : a.outcome === 'held'
            ? 'held'
            : 'failed';
    // Deliveries of one message to several destinations finish concurrently: the message row's lock
    // makes the "all delivered?" question below see every other finish that committed before.
    if (status !== 'pending') {
      await tx.query('SELECT 1 FROM messages WHERE id = $1 FOR UPDATE', [a.messageId], 'messages_lock_row');
    }
    const { rows } = await tx.query<{ id: string }>(
      `WITH d AS (
         UPDATE deliveries SET status = $3, attempts = $4, last_attempt_at = $5,
                delivered_at = CASE WHEN $3 = 'delivered' THEN now() ELSE delivered_at END,
                last_error_class = coalesce($6, CASE WHEN $3 = 'delivered' THEN NULL ELSE last_error_class END),
                last_error_at = CASE WHEN $6 IS NULL THEN last_error_at ELSE now() END,
                last_status = $7, next_attempt_at = $10
          WHERE id = $1 AND status = 'pending'
          RETURNING id),
       a AS (
         INSERT INTO delivery_attempts
                (delivery_id, attempt, started_at, finished_at, outcome, error_class, status_code, ack_code, retry_after_ms)
         SELECT id, $4, $5, now(), $8, $6, $7, $9, $11 FROM d),
       b AS (
         INSERT INTO delivery_bodies (delivery_id, attempt, kind, data_key_id, iv, tag, ciphertext)
         SELECT d.id, $4, x.kind, x.key_id, x.iv, x.tag, x.ciphertext
           FROM d, unnest($12::text[], $13::text[], $14::bytea[], $15::bytea[], $16::bytea[])
             AS x(kind, key_id, iv, tag, ciphertext)),
       m AS (
         UPDATE messages SET updated_at = now(),
                status = CASE WHEN $3 = 'failed' THEN 'failed' ELSE 'delivered' END,
                -- A message delivered after a replay no longer carries the dead letter's code.
                last_error_code = CASE WHEN $3 = 'failed' THEN 'DELIVERY_FAILED'
                                       WHEN last_error_code = 'DELIVERY_FAILED' THEN NULL
                                       ELSE last_error_code END,
                last_error_at = CASE WHEN $3 = 'failed' THEN now() ELSE last_error_at END
          WHERE id = $2 AND EXISTS (SELECT 1 FROM d)
            AND ($3 = 'failed' OR ($3 = 'delivered' AND status = 'processed' AND NOT EXISTS (
                  SELECT 1 FROM deliveries o WHERE o.message_id = $2 AND o.id <> $1 AND o.status <> 'delivered'))))
       SELECT id FROM d`,
      [
        a.deliveryId,
        a.messageId,
        status,
        a.attempt,
        a.startedAt.toISOString(),
        a.errorClass,
        a.statusCode,
        a.outcome,
        a.ackCode,
        a.nextAttemptAt?.toISOString() ?? null,
        a.retryAfterMs,
        a.bodies.map((b) => b.kind),
        a.bodies.map((b) => b.keyId),
        a.bodies.map((b) => b.iv),
        a.bodies.map((b) => b.tag),
        a.bodies.map((b) => b.ciphertext),
      ],
      'deliveries_record_attempt',
    );
    return rows.length === 1;
  }

  /** The oldest pending delivery after `seq` with the same ordering key: the one a finish wakes. */
  async nextInOrder(
    ref: { channel: string; destination: string; orderKey: string; seq: number },
    q: Queryable = this.db,
  ): Promise<string | undefined> {
    const { rows } = await q.query<{ id: string }>(
      `SELECT id FROM deliveries
        WHERE channel = $1 AND destination = $2 AND order_key = $3::bigint AND seq > $4
          AND status IN ('pending', 'held')
        ORDER BY seq LIMIT 1`,
      [ref.channel, ref.destination, ref.orderKey, ref.seq],
      'deliveries_next_in_order',
    );
    return rows[0]?.id;
  }

  /** Per channel destination with anything unfinished or dead: what waits, retries, is held or dead. */
  async destinationStats(): Promise<DestinationStats[]> {
    const { rows } = await this.db.query<{
      channel: string;
      destination: string;
      pending: number;
      retrying: number;
      held: number;
      held_back: number;
      failed: number;
      oldest_pending: Date | null;
      last_error_class: string | null;
      last_error_at: Date | null;
    }>(
      `WITH d AS (
         SELECT channel, destination, status, attempts, order_key, created_at, last_error_class, last_error_at,
                -- Is an earlier delivery of the same key retrying or held? One sort per key, not a
                -- lookup per row: a correlated EXISTS here went quadratic and timed out on a backlog
                -- of tens of thousands (bench:deliver's closed loop).
                coalesce(bool_or(status = 'held' OR (status = 'pending' AND attempts > 0)) OVER (
                  PARTITION BY channel, destination, order_key ORDER BY seq
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), false) AS behind
           FROM deliveries
          -- Only the unfinished and the dead (partial indexes): delivered rows are the bulk of the table.
          WHERE status IN ('pending', 'held', 'failed'))
       SELECT channel, destination,
              count(*) FILTER (WHERE status = 'pending')::int AS pending,
              count(*) FILTER (WHERE status = 'pending' AND attempts > 0)::int AS retrying,
              count(*) FILTER (WHERE status = 'held')::int AS held,
              count(*) FILTER (WHERE status = 'pending' AND attempts = 0 AND order_key IS NOT NULL AND behind)::int
                AS held_back,
              count(*) FILTER (WHERE status = 'failed')::int AS failed,
              min(created_at) FILTER (WHERE status = 'pending') AS oldest_pending,
              (array_agg(last_error_class ORDER BY last_error_at DESC NULLS LAST))[1] AS last_error_class,
              max(last_error_at) AS last_error_at
         FROM d
        GROUP BY channel, destination
        ORDER BY channel, destination`,
    );
    return rows.map((r) => ({
      channel: r.channel,
      destination: r.destination,
      pending: r.pending,
      retrying: r.retrying,
      held: r.held,
      heldBack: r.held_back,
      failed: r.failed,
      oldestPendingAt: r.oldest_pending,
      lastErrorClass: r.last_error_class,
      lastErrorAt: r.last_error_at,
    }));
  }
}

export interface DestinationStats {
  readonly channel: string;
  readonly destination: string;
  readonly pending: number;
  /** Pending after at least one failed attempt. */
  readonly retrying: number;
  /** Held for a person (an MLLP ACK that never came, with onAckTimeout: hold). */
  readonly held: number;
  /** Pending behind an earlier retrying or held delivery of the same ordering key. */
  readonly heldBack: number;
  /** Dead letters: `hl7e replay` brings them back. */
  readonly failed: number;
  readonly oldestPendingAt: Date | null;
  readonly lastErrorClass: string | null;
  readonly lastErrorAt: Date | null;
}

/** One bigint lock id per (channel, destination, key): FNV-1a over the names, mixed with the key. */
function orderLockId(ref: { channel: string; destination: string; orderKey: string }): string {
  let h = 0xcbf29ce484222325n ^ ORDER_LOCK_SALT;
  for (const ch of `${ref.channel}\u0000${ref.destination}`) {
    h ^= BigInt(ch.codePointAt(0) ?? 0);
    h = (h * 0x100000001b3n) & 0xffffffffffffffffn;
  }
  return BigInt.asIntN(64, h ^ BigInt(ref.orderKey)).toString();
}
