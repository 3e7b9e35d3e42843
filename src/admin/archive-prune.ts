import {
  type ArchiveFileInfo,
  MIN_PRUNE_AGE_MS,
  oldArchiveFiles,
  type PruneCandidate,
  removeArchiveFile,
  selectPrunable,
} from '../archive/archive-prune.js';
import { isEngineError } from '../errors.js';
import type { AuditLog } from '../observability/audit-log.js';
import type { ArchiveUsageRepo } from '../store/archive-usage-repo.js';

export interface PruneRequest {
  readonly operator: string;
  /** Files whose whole UTC day ended at least this long ago. */
  readonly olderThanMs: number;
  readonly dryRun: boolean;
  readonly reason: string | null;
  readonly channel?: string;
}

export interface PruneFileReport {
  readonly file: string;
  readonly day: string;
  readonly bytes: number;
  readonly messages: number;
  /** Messages still in flight (kept files only). */
  readonly unfinished?: number;
}

export interface PruneReport {
  /** Files whose day ended at or before this instant were considered. */
  readonly cutoff: string;
  readonly dryRun: boolean;
  readonly channel: string | null;
  /** Removed (or, in a dry run, that would be). */
  readonly files: PruneFileReport[];
  /** Old enough but holding a message still in flight. */
  readonly kept: PruneFileReport[];
  /** Marked pruned in the store but could not be removed from disk (a rerun removes them). */
  readonly failed: { file: string; code: string }[];
  readonly totals: { files: number; bytes: number; messages: number };
}

export interface PruneDeps {
  readonly archiveDir: string;
  readonly usage: ArchiveUsageRepo;
  readonly audit: AuditLog;
  readonly now?: () => Date;
}

/** Why a prune request is refused before it starts (admin route: 400; offline CLI: usage error). */
export function pruneRequestProblem(req: { olderThanMs?: unknown }): string | undefined {
  if (typeof req.olderThanMs !== 'number' || !Number.isFinite(req.olderThanMs)) {
    return 'olderThan must be a duration';
  }
  if (req.olderThanMs < MIN_PRUNE_AGE_MS) {
    return 'older-than must be at least 1d: the last day’s files may still be written to';
  }
  return undefined;
}

/**
 * `hl7e archive prune`: removes whole archive files whose day is past the cutoff and whose messages are
 * all finished, marking those messages pruned first (a crash between the two leaves a file that a rerun
 * removes, never a message that points at nothing without saying so). A real run is audited — who,
 * what, why, and what it removed; a dry run changes nothing and reads no content.
 */
export async function pruneArchive(deps: PruneDeps, req: PruneRequest): Promise<PruneReport> {
  const problem = pruneRequestProblem(req);
  if (problem) throw new RangeError(problem);
  const now = deps.now?.() ?? new Date();
  const cutoff = new Date(now.getTime() - req.olderThanMs);
  const target = `archive files of days before ${cutoff.toISOString()}${req.channel ? ` in channel ${req.channel}` : ''}`;
  const files: PruneFileReport[] = [];
  const kept: PruneFileReport[] = [];
  const failed: { file: string; code: string }[] = [];
  try {
    for (const [day, ofDay] of byDay(await oldArchiveFiles(deps.archiveDir, cutoff, req.channel))) {
      const names = ofDay.map((f) => f.file);
      const usage = await deps.usage.usage(day, names);
      const chosen = selectPrunable(ofDay, usage, cutoff);
      kept.push(...chosen.kept.map(report));
      if (req.dryRun) {
        files.push(...chosen.prune.map((f) => report(f)));
        continue;
      }
      if (chosen.prune.length === 0) continue;
      // Re-checked under the rows' locks: a message may have been replayed since the look above.
      const marked = await deps.usage.markPruned(
        day,
        chosen.prune.map((f) => f.file),
        now,
      );
      for (const f of chosen.prune) {
        const seen = { ...f, ...marked.get(f.file) };
        if (seen.unfinished > 0) {
          kept.push(report(seen));
          continue;
        }
        try {
          await removeArchiveFile(deps.archiveDir, f.file);
          files.push(report(seen));
        } catch (err) {
          failed.push({ file: f.file, code: (err as NodeJS.ErrnoException).code ?? 'UNKNOWN' });
        }
      }
    }
  } catch (err) {
    if (!req.dryRun) {
      await deps.audit.record({
        actor: req.operator,
        action: 'archive.prune',
        target,
        reason: req.reason,
        outcome: `failed: ${isEngineError(err) ? err.code : 'INTERNAL'} after ${summary(files)}`,
      });
    }
    throw err;
  }
  const result: PruneReport = {
    cutoff: cutoff.toISOString(),
    dryRun: req.dryRun,
    channel: req.channel ?? null,
    files,
    kept,
    failed,
    totals: totals(files),
  };
  if (!req.dryRun) {
    const extra = [
      kept.length > 0 ? `${kept.length} kept (in flight)` : '',
      failed.length > 0 ? `${failed.length} not removed` : '',
    ].filter(Boolean);
    await deps.audit.record({
      actor: req.operator,
      action: 'archive.prune',
      target,
      reason: req.reason,
      outcome: [summary(files), ...extra].join('; '),
    });
  }
  return result;
}

function report(f: PruneCandidate): PruneFileReport {
  return {
    file: f.file,
    day: f.day,
    bytes: f.bytes,
    messages: f.messages,
    ...(f.unfinished > 0 ? { unfinished: f.unfinished } : {}),
  };
}

function byDay(files: readonly ArchiveFileInfo[]): Map<string, ArchiveFileInfo[]> {
  const out = new Map<string, ArchiveFileInfo[]>();
  for (const f of files) out.set(f.day, [...(out.get(f.day) ?? []), f]);
  return out;
}

function totals(files: readonly PruneFileReport[]): PruneReport['totals'] {
  return {
    files: files.length,
    bytes: files.reduce((n, f) => n + f.bytes, 0),
    messages: files.reduce((n, f) => n + f.messages, 0),
  };
}

function summary(files: readonly PruneFileReport[]): string {
  const t = totals(files);
  return `pruned ${t.files} files, ${t.bytes} bytes, ${t.messages} messages`;
}
