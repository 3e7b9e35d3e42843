import type { SealedBody } from '../archive/delivery-bodies.js';
import type { Db } from './db.js';
import type { DeliveryRef, DeliveryStatus } from './delivery-repo.js';

/** Which messages a replay is about: ids, or a filter (what `hl7e replay --channel … --status failed` says). */
export type ReplaySelection =
  | { readonly ids: readonly string[]; readonly destination?: string }
  | {
      readonly channel: string;
      /** `failed`: dead letters and processing failures; `held`: deliveries held for a decision. */
      readonly status: 'failed' | 'held';
      readonly since?: Date;
      readonly until?: Date;
      readonly destination?: string;
      /** MSH-9 code or code^event, e.g. `ORU` or `ORU^R01`. */
      readonly type?: string;
    };

/** A message a replay looks at, with its deliveries: ids, statuses and codes only. */
export interface ReplayCandidate {
  readonly id: string;
  readonly channel: string;
  readonly partition: number;
  readonly status: string;
  readonly lastErrorCode: string | null;
  /** Its raw record was removed by `archive prune`: it cannot be rebuilt from raw any more. */
  readonly pruned: boolean;
  readonly deliveries: readonly { id: string; destination: string; status: DeliveryStatus }[];
}

const MAX_IDS = 100_000;

/** The store side of replays (pipeline/replay.ts decides; this reads and flips states, atomically). */
export class ReplayRepo {
  constructor(private readonly db: Db) {}

  /** Candidates in arrival order (seq), so a replay re-enqueues a key's messages in the order they came. */
  async candidates(sel: ReplaySelection, limit = MAX_IDS): Promise<ReplayCandidate[]> {
    const params: unknown[] = [];
    const add = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    const where: string[] = [];
    if ('ids' in sel) {
      where.push(`m.id = ANY(${add(sel.ids)}::uuid[])`);
    } else {
      where.push(`m.channel = ${add(sel.channel)}`);
      if (sel.since) where.push(`m.received_at >= ${add(sel.since.toISOString())}`);
      if (sel.until) where.push(`m.received_at < ${add(sel.until.toISOString())}`);
      if (sel.type) {
        where.push(
          sel.type.includes('^')
            ? `m.message_type LIKE ${add(`${sel.type}%`)}`
            : `split_part(m.message_type, '^', 1) = ${add(sel.type)}`,
        );
      }
      const dest = sel.destination ? ` AND d.destination = ${add(sel.destination)}` : '';
      where.push(
        sel.status === 'held'
          ? `EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = 'held'${dest})`
          : `(EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status = 'failed'${dest})` +
              (sel.destination
                ? ')'
                : ` OR (m.status = 'failed' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)))`),
      );
    }
    const { rows } = await this.db.query<{
      id: string;
      channel: string;
      partition: number;
      status: string;
      last_error_code: string | null;
      pruned: boolean;
      deliveries: { id: string; destination: string; status: DeliveryStatus }[] | null;
    }>(
      `SELECT m.id, m.channel, m.partition, m.status, m.last_error_code,
              m.archive_pruned_at IS NOT NULL AS pruned,
              (SELECT json_agg(json_build_object('id', d.id, 'destination', d.destination, 'status', d.status)
                                ORDER BY d.destination)
                 FROM deliveries d WHERE d.message_id = m.id) AS deliveries
         FROM messages m
        WHERE ${where.join(' AND ')}
        ORDER BY m.seq
        LIMIT ${add(limit)}`,
      params,
    );
    return rows.map((r) => ({
      id: r.id,
      channel: r.channel,
      partition: r.partition,
      status: r.status,
      lastErrorCode: r.last_error_code,
      pruned: r.pruned,
      deliveries: r.deliveries ?? [],
    }));
  }

  /**
   * Makes dead-lettered or held deliveries pending again: their attempts count afresh from here
   * (attempt_base), and `from` says what they send. Only rows still failed/held change (a replay running
   * twice, or racing another, moves each delivery once); their messages return to `processed`.
   */
  async reopenDeliveries(ids: readonly string[], from: 'raw' | 'mapped'): Promise<DeliveryRef[]> {
    if (ids.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<DeliveryRef & { message_id: string }>(
        `UPDATE deliveries
            SET status = 'pending', attempt_base = attempts, replay_from = $2, replayed_at = now(),
                next_attempt_at = NULL
          WHERE id = ANY($1::uuid[]) AND status IN ('failed', 'held')
          RETURNING id, channel, destination, message_id`,
        [ids, from],
      );
      const messages = [...new Set(rows.map((r) => r.message_id))];
      if (messages.length > 0) {
        await tx.query(
          `UPDATE messages SET status = 'processed', updated_at = now()
            WHERE id = ANY($1::uuid[]) AND status IN ('failed', 'delivered')`,
          [messages],
        );
      }
      return rows.map((r) => ({ id: r.id, channel: r.channel, destination: r.destination }));
    });
  }

  /** Messages that failed in processing go back to `received`: processed again with today's mappings. */
  async reopenMessages(ids: readonly string[]): Promise<{ id: string; partition: number }[]> {
    if (ids.length === 0) return [];
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ id: string; partition: number }>(
        `UPDATE messages m SET status = 'received', updated_at = now()
          WHERE m.id = ANY($1::uuid[]) AND m.status = 'failed'
            AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)
          RETURNING m.id, m.partition`,
        [ids],
      );
      if (rows.length > 0) {
        await tx.query(
          `INSERT INTO message_events (message_id, event, detail)
           SELECT id, 'replayed', '{"from":"raw"}'::jsonb FROM unnest($1::uuid[]) AS r(id)`,
          [rows.map((r) => r.id)],
        );
      }
      return rows;
    });
  }

  /** The body the delivery's latest ended attempt sent (for `--from mapped` and the replay preview). */
  async lastRequest(deliveryId: string): Promise<{ attempt: number; body: SealedBody } | undefined> {
    const { rows } = await this.db.query<{
      attempt: number;
      data_key_id: string;
      iv: Buffer;
      tag: Buffer;
      ciphertext: Buffer;
    }>(
      `SELECT attempt, data_key_id, iv, tag, ciphertext FROM delivery_bodies
        WHERE delivery_id = $1 AND kind = 'request' ORDER BY attempt DESC LIMIT 1`,
      [deliveryId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      attempt: r.attempt,
      body: { kind: 'request', keyId: r.data_key_id, iv: r.iv, tag: r.tag, ciphertext: r.ciphertext },
    };
  }
}
