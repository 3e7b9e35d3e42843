import type { Db, Queryable } from './db.js';

/** One audit row as stored (audit_events). `reason` is the operator's own words; never message content. */
export interface AuditRow {
  readonly seq: number;
  readonly at: Date;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly reason: string | null;
  readonly outcome: string;
  readonly prevHash: Buffer | null;
  readonly hash: Buffer;
}

export type NewAuditRow = Omit<AuditRow, 'seq' | 'prevHash' | 'hash'>;

/** Advisory lock serialising appends: each row's prev_hash must be the hash of the row before it. */
const AUDIT_LOCK = 727300;

/** The append-only audit table (DESIGN rule 6). Hashing is the caller's (observability/audit-log.ts). */
export class AuditRepo {
  constructor(private readonly db: Db) {}

  /**
   * Appends under the chain lock: `hashOf` gets the previous row's hash (null for the first) and returns
   * the new row's.
   */
  async append(row: NewAuditRow, hashOf: (prev: Buffer | null) => Buffer): Promise<AuditRow> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
      return this.#append(tx, row, hashOf);
    });
  }

  /**
   * Retention: removes the chain's head — every row up to the last one stamped before `before` — and, in
   * the same transaction and under the chain lock, appends the anchor row `anchorOf` builds from the last
   * removed row (its seq and hash), so the rest of the chain still verifies from it. Nothing to remove:
   * null, and no anchor is written.
   */
  async pruneHead(
    before: Date,
    anchorOf: (cut: { seq: number; hash: Buffer; count: number }) => NewAuditRow,
    hashOf: (row: NewAuditRow, prev: Buffer | null) => Buffer,
  ): Promise<{ cut: { seq: number; hash: Buffer; count: number }; anchor: AuditRow } | null> {
    return this.db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [AUDIT_LOCK]);
      // A prefix by seq, so what remains is one unbroken chain (`at` comes from each writer's clock).
      const { rows } = await tx.query<{ seq: number; hash: Buffer; count: number }>(
        `SELECT e.seq, e.hash, (SELECT count(*)::int FROM audit_events WHERE seq <= e.seq) AS count
           FROM audit_events e
          WHERE e.seq = (SELECT max(seq) FROM audit_events WHERE at < $1)`,
        [before.toISOString()],
      );
      const cut = rows[0];
      if (!cut) return null;
      const row = anchorOf(cut);
      const anchor = await this.#append(tx, row, (prev) => hashOf(row, prev));
      await tx.query('DELETE FROM audit_events WHERE seq <= $1', [cut.seq]);
      return { cut, anchor };
    });
  }

  /** The newest row of one action (the verify's anchor: the last `audit.prune`). */
  async lastOf(action: string): Promise<AuditRow | undefined> {
    const { rows } = await this.db.query<DbRow>(
      `SELECT seq, at, actor, action, target, reason, outcome, prev_hash, hash FROM audit_events
        WHERE action = $1 ORDER BY seq DESC LIMIT 1`,
      [action],
    );
    return rows[0] ? fromDb(rows[0]) : undefined;
  }

  async #append(tx: Queryable, row: NewAuditRow, hashOf: (prev: Buffer | null) => Buffer): Promise<AuditRow> {
    const prev = await this.#last(tx);
    const prevHash = prev?.hash ?? null;
    const hash = hashOf(prevHash);
    const { rows } = await tx.query<{ seq: number }>(
      `INSERT INTO audit_events (at, actor, action, target, reason, outcome, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq`,
      [row.at.toISOString(), row.actor, row.action, row.target, row.reason, row.outcome, prevHash, hash],
    );
    return { ...row, seq: (rows[0] as { seq: number }).seq, prevHash, hash };
  }

  async #last(q: Queryable): Promise<{ hash: Buffer } | undefined> {
    const { rows } = await q.query<{ hash: Buffer }>(
      'SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1',
    );
    return rows[0];
  }

  /** Rows in chain order after `afterSeq`, filtered; for listing and (unfiltered) for verifying. */
  async list(
    opts: {
      afterSeq?: number;
      since?: Date;
      until?: Date;
      actor?: string;
      action?: string;
      limit?: number;
    } = {},
  ): Promise<AuditRow[]> {
    const where: string[] = ['seq > $1'];
    const params: unknown[] = [opts.afterSeq ?? 0];
    const add = (sql: string, v: unknown) => {
      params.push(v);
      where.push(sql.replace('?', `$${params.length}`));
    };
    if (opts.since) add('at >= ?', opts.since.toISOString());
    if (opts.until) add('at < ?', opts.until.toISOString());
    if (opts.actor) add('actor = ?', opts.actor);
    if (opts.action) add('action = ?', opts.action);
    params.push(opts.limit ?? 1000);
    const { rows } = await this.db.query<DbRow>(
      `SELECT seq, at, actor, action, target, reason, outcome, prev_hash, hash FROM audit_events
        WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`,
      params,
    );
    return rows.map(fromDb);
  }
}

interface DbRow {
  seq: number;
  at: Date;
  actor: string;
  action: string;
  target: string | null;
  reason: string | null;
  outcome: string;
  prev_hash: Buffer | null;
  hash: Buffer;
}

function fromDb(r: DbRow): AuditRow {
  return {
    seq: r.seq,
    at: r.at,
    actor: r.actor,
    action: r.action,
    target: r.target,
    reason: r.reason,
    outcome: r.outcome,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}
