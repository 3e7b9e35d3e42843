import { randomUUID } from 'node:crypto';
import type { Queryable } from './db.js';

/** Per-destination delivery rows: created pending when a message is processed. */
export class DeliveryRepo {
  constructor(private readonly db: Queryable) {}

  /** Inside the processing transaction, so a message is never processed without its deliveries. */
  async createPending(tx: Queryable, messageId: string, destinations: readonly string[]): Promise<string[]> {
    if (destinations.length === 0) return [];
    const ids = destinations.map(() => randomUUID());
    await tx.query(
      `INSERT INTO deliveries (id, message_id, destination, status)
       SELECT id, $2, destination, 'pending' FROM unnest($1::uuid[], $3::text[]) AS d(id, destination)`,
      [ids, messageId, destinations],
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
