import { pruneArchive } from '../admin/archive-prune.js';
import { type DataClass, formatRetention, type RetentionPolicy } from '../config/retention-config.js';
import { isEngineError } from '../errors.js';
import type { AuditLog } from '../observability/audit-log.js';
import { ArchiveUsageRepo } from '../store/archive-usage-repo.js';
import type { Db } from '../store/db.js';
import { type MetadataCounts, RetentionRepo } from '../store/retention-repo.js';

export interface RetentionDeps {
  /** Where the deletes run (the daemon's work pool). */
  readonly db: Db;
  readonly archiveDir: string;
  readonly audit: AuditLog;
  /** This process's keyring: its current key is never shredded, and a shredded key leaves its memory. */
  readonly keys?: { readonly currentKeyId: string | undefined; forget(id: string): void };
  readonly now?: () => Date;
  /** Aborted when the engine stops: the run ends after the batch in hand and reports what it did. */
  readonly signal?: AbortSignal;
  /** Rows per delete batch; default 1000. */
  readonly batchSize?: number;
}

/** What one run removed, class by class (null: that class is kept forever). Counts only. */
export interface RetentionReport {
  readonly at: string;
  readonly raw: {
    files: number;
    bytes: number;
    messages: number;
    keptFiles: number;
    notRemoved: number;
  } | null;
  readonly mapped: { bodies: number } | null;
  readonly metadata: MetadataCounts | null;
  readonly audit: { entries: number } | null;
  /** Keys shredded, and keys old enough that still hold a kept record. */
  readonly keys: { destroyed: number; inUse: number } | null;
  /** Steps that failed (the others still ran), and whether the run was cut short by a stop. */
  readonly failed: { step: DataClass | 'keys'; code: string }[];
  readonly stopped: boolean;
}

/** Keys younger than the shortest content retention plus this are not even considered for shredding. */
const KEY_MARGIN_MS = 3_600_000;

/**
 * One retention pass (docs/retention.md), in an order that keeps every invariant true in between:
 * raw archive files first (pruneArchive marks their messages pruned), then delivery bodies, then whole
 * message rows whose raw record is gone, then the audit trail's head (anchored so it still verifies),
 * and last crypto-shredding: destroying each data key nothing kept is encrypted under any more. A step
 * that fails is reported and the others still run: each is safe on its own.
 */
export async function runRetention(
  deps: RetentionDeps,
  policy: Pick<RetentionPolicy, DataClass>,
): Promise<RetentionReport> {
  const now = deps.now?.() ?? new Date();
  const before = (ms: number) => new Date(now.getTime() - ms);
  const repo = new RetentionRepo(deps.db);
  const batch = deps.batchSize ?? 1000;
  const aborted = () => deps.signal?.aborted === true;
  const failed: { step: DataClass | 'keys'; code: string }[] = [];
  const step = async <T>(name: DataClass | 'keys', kept: number, fn: () => Promise<T>): Promise<T | null> => {
    if (kept === Number.POSITIVE_INFINITY || aborted()) return null;
    try {
      return await fn();
    } catch (err) {
      failed.push({ step: name, code: isEngineError(err) ? err.code : 'INTERNAL' });
      return null;
    }
  };

  const raw = await step('raw', policy.raw, async () => {
    const r = await pruneArchive(
      {
        archiveDir: deps.archiveDir,
        usage: new ArchiveUsageRepo(deps.db),
        audit: deps.audit,
        now: () => now,
      },
      { operator: 'engine', olderThanMs: policy.raw, dryRun: false, reason: 'retention policy' },
    );
    return { ...r.totals, keptFiles: r.kept.length, notRemoved: r.failed.length };
  });

  const mapped = await step('mapped', policy.mapped, async () => {
    let bodies = 0;
    for (let n = batch; n === batch && !aborted(); ) {
      n = await repo.deleteBodies(before(policy.mapped), batch);
      bodies += n;
    }
    return { bodies };
  });

  const metadata = await step('metadata', policy.metadata, async () => {
    const total: MetadataCounts = { messages: 0, events: 0, deliveries: 0, attempts: 0, bodies: 0 };
    const cutoff = before(policy.metadata);
    const last = await repo.lastSeqBefore(cutoff);
    for (let after: number | null = last === null ? null : 0; after !== null && !aborted(); ) {
      const { counts, next } = await repo.deleteMessages(cutoff, after, last as number, batch);
      for (const k of Object.keys(total) as (keyof MetadataCounts)[]) total[k] += counts[k];
      after = next;
    }
    return total;
  });

  const audit = await step('audit', policy.audit, async () => {
    const done = await deps.audit.prune(before(policy.audit), 'engine');
    return { entries: done?.entries ?? 0 };
  });

  // Only once every record under a key is gone can the key go; a key younger than the shortest content
  // retention cannot be there yet (and no engine still encrypts with it: keys rotate at least that often).
  const keys = await step('keys', Math.min(policy.raw, policy.mapped), async () => {
    const candidates = await repo.shredCandidates(
      before(Math.min(policy.raw, policy.mapped) + KEY_MARGIN_MS),
      deps.keys?.currentKeyId ? [deps.keys.currentKeyId] : [],
    );
    let destroyed = 0;
    for (const id of candidates) {
      if (aborted()) break;
      if (await repo.destroyKey(id, now)) {
        destroyed++;
        deps.keys?.forget(id);
      }
    }
    return { destroyed, inUse: candidates.length - destroyed };
  });

  const report: RetentionReport = {
    at: now.toISOString(),
    raw,
    mapped,
    metadata,
    audit,
    keys,
    failed,
    stopped: aborted(),
  };
  await deps.audit.record({
    actor: 'engine',
    action: 'retention.prune',
    target: `retention policy: ${(['raw', 'mapped', 'metadata', 'audit'] as const).map((c) => `${c} ${formatRetention(policy[c])}`).join(', ')}`,
    reason: null,
    outcome: retentionOutcome(report),
  });
  return report;
}

/** A run as a log line: counts and codes only, the raw class as `rawArchive` (`raw` is a redacted log key). */
export function retentionLogFields(r: RetentionReport): Record<string, unknown> {
  const { raw, ...rest } = r;
  return { rawArchive: raw, ...rest };
}

/** The audit outcome: counts per class, `kept` for a class never pruned, and what failed. */
export function retentionOutcome(r: RetentionReport): string {
  const parts = [
    `raw: ${r.raw ? `${r.raw.files} files, ${r.raw.messages} messages${r.raw.keptFiles ? `, ${r.raw.keptFiles} files kept in flight` : ''}` : 'kept'}`,
    `mapped: ${r.mapped ? `${r.mapped.bodies} bodies` : 'kept'}`,
    `metadata: ${r.metadata ? `${r.metadata.messages} messages, ${r.metadata.deliveries} deliveries, ${r.metadata.attempts} attempts, ${r.metadata.events} events, ${r.metadata.bodies} bodies` : 'kept'}`,
    `audit: ${r.audit ? `${r.audit.entries} entries` : 'kept'}`,
    `keys: ${r.keys ? `${r.keys.destroyed} destroyed, ${r.keys.inUse} still in use` : 'kept'}`,
  ];
  if (r.failed.length > 0) parts.push(`failed: ${r.failed.map((f) => `${f.step} ${f.code}`).join(', ')}`);
  if (r.stopped) parts.push('stopped early');
  return parts.join('; ');
}
