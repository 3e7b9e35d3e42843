import { randomUUID } from 'node:crypto';
import type { Queryable } from './db.js';

/** Per-destination delivery rows: created pending when a message is processed. */
export class DeliveryRepo {
  constructor(private readonly db: Queryable) {}

  /** Inside the processing transaction, so a message is never processed without its deliveries. */
  async createPending(tx: Queryable, messageId: string, destinations: readonly string[]): Promise<string[]> {
    return this.createPendingMany(tx, [{ messageId, destinations }]);
  }

  /** `createPending` for a processing batch: one INSERT; ids in input order. */
  async createPendingMany(
    tx: Queryable,
    items: readonly { messageId: string; destinations: readonly string[] }[],
  ): Promise<string[]> {
    const ids: string[] = [];
    const messageIds: string[] = [];
    const destinations: string[] = [];
    for (const it of items) {
      for (const d of it.destinations) {
        ids.push(randomUUID());
        messageIds.push(it.messageId);
        destinations.push(d);
      }
    }
    if (ids.length === 0) return [];
    await tx.query(
      `INSERT INTO deliveries (id, message_id, destination, status)
       SELECT id, message_id, destination, 'pending'
         FROM unnest($1::uuid[], $2::uuid[], $3::text[]) AS d(id, message_id, destination)`,
      [ids, messageIds, destinations],
      'deliveries_create_pending',
    );
    return ids;
  }

  /** Pending deliveries created before `before`, after a keyset cursor (for the reconciler). */
  async pendingAfter(afterId: string, limit: number, before: Date): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      `SELECT id FROM deliveries WHERE status = 'pending' AND id > $1 AND created_at < $3 ORDER BY id LIMIT $2`,
      [afterId, limit, before.toISOString()],
    );
    return rows.map((r) => r.id);
  }
}
