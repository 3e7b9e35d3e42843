import type { Db, Queryable } from './db.js';

/** The messages whose raw record is in one archive file, and how many of them are still in flight. */
export interface ArchiveFileUsage {
  readonly messages: number;
  readonly unfinished: number;
}

/**
 * In flight: not processed yet, or with a delivery pending (retrying, or re-enqueued by a replay) or
 * held — each of those still reads the raw record (processing, MLLP forwarding, a replay from raw).
 */
export const UNFINISHED = `(m.status = 'received' OR EXISTS (
  SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.status IN ('pending', 'held')))`;

/**
 * Rows of one day's files. Archive files are named by the same receivedAt intake stores in the row, so
 * a file's messages all have received_at within its day: the BRIN index on received_at narrows every
 * query here to that day instead of scanning the table per file (archive_file has no index of its own:
 * intake would pay for it on every insert).
 */
const OF_DAY_FILES = 'm.received_at >= $1 AND m.received_at < $2 AND m.archive_file = ANY($3::text[])';

/** Store side of `hl7e archive prune` (archive/archive-prune.ts decides; this counts and marks). */
export class ArchiveUsageRepo {
  constructor(private readonly db: Db) {}

  /** Per file of one UTC day: its messages and the unfinished ones; files no row points at are absent. */
  async usage(
    day: string,
    files: readonly string[],
    q: Queryable = this.db,
  ): Promise<Map<string, ArchiveFileUsage>> {
    const { rows } = await q.query<{ file: string; messages: number; unfinished: number }>(
      `SELECT m.archive_file AS file, count(*)::int AS messages,
              count(*) FILTER (WHERE ${UNFINISHED})::int AS unfinished
         FROM messages m WHERE ${OF_DAY_FILES} GROUP BY m.archive_file`,
      [...dayRange(day), files],
    );
    return new Map(rows.map((r) => [r.file, { messages: r.messages, unfinished: r.unfinished }]));
  }

  /**
   * Marks the messages of those files of one day pruned (`archive_pruned_at`), except files that hold
   * a message in flight at this moment. The day's message rows are locked first, so a status change
   * committed before is seen and one attempted meanwhile waits for this to finish.
   * Returns each file's usage as seen under the locks: those with no unfinished message were marked,
   * the others are in flight and must stay.
   */
  async markPruned(day: string, files: readonly string[], at: Date): Promise<Map<string, ArchiveFileUsage>> {
    return this.db.transaction(async (tx) => {
      await tx.query(
        `SELECT count(*) FROM (SELECT 1 FROM messages m WHERE ${OF_DAY_FILES} FOR UPDATE) locked`,
        [...dayRange(day), files],
      );
      const usage = await this.usage(day, files, tx);
      const free = files.filter((f) => (usage.get(f)?.unfinished ?? 0) === 0);
      if (free.length > 0) {
        await tx.query(
          `UPDATE messages m SET archive_pruned_at = $4, updated_at = now()
            WHERE ${OF_DAY_FILES} AND m.archive_pruned_at IS NULL`,
          [...dayRange(day), free, at.toISOString()],
        );
      }
      return new Map(files.map((f) => [f, usage.get(f) ?? { messages: 0, unfinished: 0 }]));
    });
  }

  /** When the message's raw record was pruned; null while it is in the archive, undefined for no message. */
  async prunedAt(messageId: string): Promise<Date | null | undefined> {
    const { rows } = await this.db.query<{ archive_pruned_at: Date | null }>(
      'SELECT archive_pruned_at FROM messages WHERE id = $1',
      [messageId],
    );
    return rows[0]?.archive_pruned_at;
  }
}

function dayRange(day: string): [string, string] {
  const start = Date.parse(`${day}T00:00:00Z`);
  return [new Date(start).toISOString(), new Date(start + 86_400_000).toISOString()];
}
