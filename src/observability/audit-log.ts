import { createHash } from 'node:crypto';
import type { AuditRepo, AuditRow } from '../store/audit-repo.js';

/** What people do that the audit trail records (DESIGN rule 6). */
export type AuditAction =
  /** A request refused for want of a role (the permission and route are the target). */
  | 'access.denied'
  | 'messages.reveal'
  | 'messages.export'
  | 'replay'
  | 'replay.preview'
  | 'archive.prune'
  | 'keys.rotate'
  | 'audit.verify'
  /** The scheduled retention prune (actor `engine`): what each data class lost, counts only. */
  | 'retention.prune'
  /** The anchor a prune of the trail's own head leaves: the last removed row's seq and hash. */
  | 'audit.prune';

export interface AuditEntry {
  readonly actor: string;
  readonly action: AuditAction;
  /** What it was done to: message ids, a filter — ids and names, never content. */
  readonly target: string | null;
  readonly reason: string | null;
  /** `allowed`, `denied` (role), `failed: CODE`, or a count summary. */
  readonly outcome: string;
}

export interface ChainBreak {
  readonly seq: number;
  readonly problem: 'hash' | 'link';
}

/** Where an `audit.prune` row's target says the remaining chain starts: parsed back by verify. */
const ANCHOR = /^audit entries through seq (\d+); the chain continues from ([0-9a-f]{64})$/;

/**
 * The append-only, hash-chained audit trail: every row's hash covers its own fields and the previous
 * row's hash, so a row altered, inserted or deleted in the database breaks the chain at that row —
 * `hl7e audit verify` names the first broken link. (A cut-off tail leaves a valid shorter chain: the
 * verify output gives the last seq and hash, for an operator to compare with one recorded elsewhere.)
 *
 * Retention removes the chain's head only through `prune`, which appends an `audit.prune` row naming
 * the last removed row's seq and hash. That row is itself chained, so the start it vouches for is as
 * tamper-evident as any other row: rows removed from the head without it break the first link.
 */
export class AuditLog {
  constructor(
    private readonly repo: AuditRepo,
    private readonly now: () => Date = () => new Date(),
  ) {}

  async record(entry: AuditEntry): Promise<AuditRow> {
    const row = { ...entry, at: this.now() };
    return this.repo.append(row, (prev) => rowHash(row, prev));
  }

  /**
   * Retention of the trail itself (HIPAA §164.316(b)(2): six years): removes every row stamped before
   * `before` and leaves the anchor row that lets the rest verify. Null when nothing was that old.
   */
  async prune(before: Date, actor: string): Promise<{ entries: number; throughSeq: number } | null> {
    const at = this.now();
    const done = await this.repo.pruneHead(
      before,
      (cut) => ({
        at,
        actor,
        action: 'audit.prune' satisfies AuditAction,
        target: `audit entries through seq ${cut.seq}; the chain continues from ${cut.hash.toString('hex')}`,
        reason: 'retention policy',
        outcome: `pruned ${cut.count} entries`,
      }),
      (row, prev) => rowHash(row, prev),
    );
    return done ? { entries: done.cut.count, throughSeq: done.cut.seq } : null;
  }

  /** Walks the whole chain; resolves with the first break, the rows checked and the head. */
  async verify(): Promise<{ checked: number; firstBreak: ChainBreak | null; head: AuditRow | null }> {
    const start = await this.#start();
    let prev: AuditRow | null = null;
    let checked = 0;
    for (let after = 0; ; ) {
      const page = await this.repo.list({ afterSeq: after, limit: 1000 });
      for (const r of page) {
        checked++;
        const expectedPrev = prev?.hash ?? null;
        // The first row either begins the chain or continues from the head a prune removed.
        const linked =
          (expectedPrev === null &&
            (r.prevHash === null ||
              (start !== null && r.seq > start.seq && r.prevHash.equals(start.hash)))) ||
          (expectedPrev !== null && r.prevHash !== null && expectedPrev.equals(r.prevHash));
        if (!linked) return { checked, firstBreak: { seq: r.seq, problem: 'link' }, head: prev };
        if (!rowHash(r, r.prevHash).equals(r.hash)) {
          return { checked, firstBreak: { seq: r.seq, problem: 'hash' }, head: prev };
        }
        prev = r;
      }
      if (page.length < 1000) return { checked, firstBreak: null, head: prev };
      after = (page.at(-1) as AuditRow).seq;
    }
  }

  /** The last removed row as the newest anchor names it; null when the head was never pruned. */
  async #start(): Promise<{ seq: number; hash: Buffer } | null> {
    const anchor = await this.repo.lastOf('audit.prune');
    const m = anchor?.target ? ANCHOR.exec(anchor.target) : null;
    return m ? { seq: Number(m[1]), hash: Buffer.from(m[2] as string, 'hex') } : null;
  }
}

/** SHA-256 over the previous hash and the row's fields in a fixed order (length-prefixed, unambiguous). */
function rowHash(
  r: {
    at: Date;
    actor: string;
    action: string;
    target: string | null;
    reason: string | null;
    outcome: string;
  },
  prev: Buffer | null,
): Buffer {
  const h = createHash('sha256');
  h.update(prev ?? Buffer.alloc(32));
  for (const f of [r.at.toISOString(), r.actor, r.action, r.target, r.reason, r.outcome]) {
    const b = Buffer.from(f ?? '\u0000null', 'utf8');
    const len = Buffer.alloc(4);
    len.writeUInt32BE(b.length);
    h.update(len).update(b);
  }
  return h.digest();
}
