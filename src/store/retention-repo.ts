import { UNFINISHED } from './archive-usage-repo.js';
import type { Db, Queryable } from './db.js';

/** What deleting one batch of expired messages removed, table by table. */
export interface MetadataCounts {
  messages: number;
  events: number;
  deliveries: number;
  attempts: number;
  bodies: number;
}

/** Advisory lock of the scheduled prune: one engine of several runs it. */
const RETENTION_LOCK = 727400;

/**
 * A record is sealed under its data key within moments of the key's creation and before its retirement
 * (keyring.ts); the store stamps keys with the database's clock and records with the engine's. Looking
 * this far either side of a key's life covers any skew between the two clocks, so the "anything left
 * under this key" checks can use the time indexes instead of scanning whole tables.
 */
const KEY_LIFE_SLACK = "interval '2 days'";

/**
 * Store side of the retention prune (pipeline/retention.ts decides when and what; this deletes). Every
 * delete runs in bounded batches: each statement stays far below the statement timeout and never holds
 * many row locks for long.
 */
export class RetentionRepo {
  constructor(private readonly db: Db) {}

  /**
   * Runs `fn` holding the retention lock, or returns undefined at once when another engine holds it.
   * The lock is a transaction-level advisory lock on a connection that does nothing else meanwhile, so
   * it is released even if this process dies mid-run; `fn` does its work on other connections. PGlite
   * serves one process only, so there is no one to exclude (and its one connection must stay free).
   */
  async withRunLock<T>(fn: () => Promise<T>): Promise<T | undefined> {
    if (this.db.kind === 'pglite') return fn();
    return this.db.transaction(async (tx) => {
      const { rows } = await tx.query<{ got: boolean }>('SELECT pg_try_advisory_xact_lock($1) AS got', [
        RETENTION_LOCK,
      ]);
      return rows[0]?.got ? fn() : undefined;
    });
  }

  /** Claims this interval's run unless some engine started one after `dueBefore`. */
  async claimRun(holder: string, now: Date, dueBefore: Date): Promise<boolean> {
    const { rows } = await this.db.query(
      `INSERT INTO retention_runs (id, started_at, holder) VALUES (1, $1, $2)
       ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, holder = excluded.holder, finished_at = NULL
        WHERE retention_runs.started_at < $3
       RETURNING id`,
      [now.toISOString(), holder, dueBefore.toISOString()],
    );
    return rows.length === 1;
  }

  async finishRun(holder: string, now: Date): Promise<void> {
    await this.db.query('UPDATE retention_runs SET finished_at = $2 WHERE id = 1 AND holder = $1', [
      holder,
      now.toISOString(),
    ]);
  }

  /**
   * Deletes up to `limit` delivery bodies stored before `cutoff`, except those of a delivery still in
   * flight (pending or held: a replay `--from mapped` sends that body again). The deliveries are share-
   * locked, so a replay that re-opens one meanwhile either waits or is seen. Returns the rows deleted.
   */
  async deleteBodies(cutoff: Date, limit: number): Promise<number> {
    const { rowCount } = await this.db.query(
      `DELETE FROM delivery_bodies x
        USING (SELECT b.delivery_id, b.attempt, b.kind
                 FROM delivery_bodies b JOIN deliveries d ON d.id = b.delivery_id
                WHERE b.created_at < $1 AND d.status NOT IN ('pending', 'held')
                LIMIT $2 FOR SHARE OF d) t
        WHERE x.delivery_id = t.delivery_id AND x.attempt = t.attempt AND x.kind = t.kind`,
      [cutoff.toISOString(), limit],
    );
    return rowCount;
  }

  /** The last seq of a message received before `cutoff`: the end of the metadata walk. */
  async lastSeqBefore(cutoff: Date): Promise<number | null> {
    const { rows } = await this.db.query<{ seq: number | null }>(
      'SELECT max(seq) AS seq FROM messages WHERE received_at < $1',
      [cutoff.toISOString()],
    );
    return rows[0]?.seq ?? null;
  }

  /**
   * One batch of the metadata prune, walking messages by seq from `afterSeq` up to `maxSeq`: deletes
   * those received before `cutoff` whose raw record is already pruned and which are finished (the same
   * rule as the archive prune), with their events, deliveries, attempts and bodies. A message a newer
   * collision still points at stays until that one goes. Returns the counts and the cursor for the next
   * batch (null when the walk is done).
   */
  async deleteMessages(
    cutoff: Date,
    afterSeq: number,
    maxSeq: number,
    limit: number,
  ): Promise<{ counts: MetadataCounts; next: number | null }> {
    return this.db.transaction(async (tx) => {
      // Locked first, then judged by a fresh statement: a status change committed before is seen and
      // one attempted meanwhile waits (archive-usage-repo.ts markPruned does the same).
      const { rows: page } = await tx.query<{ id: string; seq: number }>(
        `SELECT id, seq FROM messages
          WHERE seq > $1 AND seq <= $2 AND received_at < $3 AND archive_pruned_at IS NOT NULL
          ORDER BY seq LIMIT $4 FOR UPDATE`,
        [afterSeq, maxSeq, cutoff.toISOString(), limit],
      );
      const counts: MetadataCounts = { messages: 0, events: 0, deliveries: 0, attempts: 0, bodies: 0 };
      const next = page.length === limit ? (page.at(-1) as { seq: number }).seq : null;
      if (page.length === 0) return { counts, next };
      const { rows: finished } = await tx.query<{ id: string }>(
        `SELECT m.id FROM messages m WHERE m.id = ANY($1::uuid[]) AND NOT ${UNFINISHED}`,
        [page.map((r) => r.id)],
      );
      const ids = await this.#withoutReferenced(
        tx,
        finished.map((r) => r.id),
      );
      if (ids.length === 0) return { counts, next };
      const del = async (sql: string) => (await tx.query(sql, [ids])).rowCount;
      counts.bodies = await del(
        `DELETE FROM delivery_bodies WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = ANY($1::uuid[]))`,
      );
      counts.attempts = await del(
        `DELETE FROM delivery_attempts WHERE delivery_id IN (SELECT id FROM deliveries WHERE message_id = ANY($1::uuid[]))`,
      );
      counts.deliveries = await del('DELETE FROM deliveries WHERE message_id = ANY($1::uuid[])');
      counts.events = await del('DELETE FROM message_events WHERE message_id = ANY($1::uuid[])');
      counts.messages = await del('DELETE FROM messages WHERE id = ANY($1::uuid[])');
      return { counts, next };
    });
  }

  /** Drops from `ids` every message a collision outside the set still points at (to a fixpoint). */
  async #withoutReferenced(tx: Queryable, ids: string[]): Promise<string[]> {
    if (ids.length === 0) return ids;
    const { rows } = await tx.query<{ id: string; collision_of: string }>(
      'SELECT id, collision_of FROM messages WHERE collision_of = ANY($1::uuid[])',
      [ids],
    );
    const keep = new Set(ids);
    for (let changed = true; changed; ) {
      changed = false;
      for (const r of rows) {
        if (keep.has(r.collision_of) && !keep.has(r.id)) {
          keep.delete(r.collision_of);
          changed = true;
        }
      }
    }
    return ids.filter((id) => keep.has(id));
  }

  /**
   * Data keys that may be due for shredding: record-encrypting keys (`dk_…`; never a named secret such
   * as the ordering-key secret) not yet destroyed, created before `createdBefore`, minus `exclude` (the
   * keys engines encrypt with right now). Whether any record is left under them is destroyKey's check.
   */
  async shredCandidates(createdBefore: Date, exclude: readonly string[]): Promise<string[]> {
    const { rows } = await this.db.query<{ id: string }>(
      `SELECT id FROM data_keys
        WHERE destroyed_at IS NULL AND starts_with(id, 'dk_') AND created_at < $1 AND NOT (id = ANY($2::text[]))
        ORDER BY created_at, id`,
      [createdBefore.toISOString(), [...exclude]],
    );
    return rows.map((r) => r.id);
  }

  /**
   * Crypto-shredding: erases the data key's wrapped bytes and stamps it destroyed, in one statement that
   * also checks nothing under it is still kept — no message whose raw record is not yet pruned, no
   * delivery body. The row stays so a record under it reads "destroyed", not "unknown". True if it was
   * destroyed now.
   */
  async destroyKey(id: string, at: Date): Promise<boolean> {
    const { rowCount } = await this.db.query(
      `UPDATE data_keys k SET wrapped_key = ''::bytea, destroyed_at = $2
        WHERE k.id = $1 AND k.destroyed_at IS NULL AND starts_with(k.id, 'dk_')
          AND NOT EXISTS (
            SELECT 1 FROM messages m
             WHERE m.data_key_id = k.id AND m.archive_pruned_at IS NULL
               AND m.received_at >= k.created_at - ${KEY_LIFE_SLACK}
               AND (k.retired_at IS NULL OR m.received_at < k.retired_at + ${KEY_LIFE_SLACK}))
          AND NOT EXISTS (
            SELECT 1 FROM delivery_bodies b
             WHERE b.data_key_id = k.id
               AND b.created_at >= k.created_at - ${KEY_LIFE_SLACK}
               AND (k.retired_at IS NULL OR b.created_at < k.retired_at + ${KEY_LIFE_SLACK}))`,
      [id, at.toISOString()],
    );
    return rowCount === 1;
  }
}
