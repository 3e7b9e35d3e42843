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
  | 'audit.verify';

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

/**
 * The append-only, hash-chained audit trail: every row's hash covers its own fields and the previous
 * row's hash, so a row altered, inserted or deleted in the database breaks the chain at that row —
 * `hl7e audit verify` names the first broken link. (A cut-off tail leaves a valid shorter chain: the
 * verify output gives the last seq and hash, for an operator to compare with one recorded elsewhere.)
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

  /** Walks the whole chain; resolves with the first break, the rows checked and the head. */
  async verify(): Promise<{ checked: number; firstBreak: ChainBreak | null; head: AuditRow | null }> {
    let prev: AuditRow | null = null;
    let checked = 0;
    for (let after = 0; ; ) {
      const page = await this.repo.list({ afterSeq: after, limit: 1000 });
      for (const r of page) {
        checked++;
        const expectedPrev = prev?.hash ?? null;
        const linked =
          (expectedPrev === null && r.prevHash === null) ||
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
