import { readAdminFile } from '../../admin/admin-file.js';
import { type PruneReport, pruneArchive, pruneRequestProblem } from '../../admin/archive-prune.js';
import type { PruneBody } from '../../admin/archive-routes.js';
import { RoleMap } from '../../admin/roles.js';
import type { EngineEnv } from '../../config/env.js';
import { AuditLog } from '../../observability/audit-log.js';
import { ArchiveUsageRepo } from '../../store/archive-usage-repo.js';
import { AuditRepo } from '../../store/audit-repo.js';
import { AdminClient, operatorName } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import { withOfflineEngine } from '../offline-engine.js';
import { dim, table, yellow } from '../terminal.js';
import { parseDurationArg } from '../time-arg.js';

export interface PruneOptions {
  olderThan: string;
  dryRun?: boolean;
  reason?: string;
  channel?: string;
  json?: boolean;
}

/**
 * `hl7e archive prune`: through the running engine's admin API when there is one (the embedded store
 * belongs to it); otherwise with the store opened here, as `archive verify` does — retention must not
 * depend on the engine being up, and the same roles and audit trail apply either way.
 */
export async function archivePruneAction(
  env: EngineEnv,
  opts: PruneOptions,
  out: (line: string) => void,
  warn: (line: string) => void,
): Promise<number> {
  const olderThanMs = parseDurationArg(opts.olderThan, '--older-than');
  const problem = pruneRequestProblem({ olderThanMs });
  if (problem) throw new CliError(`--older-than: ${problem}`);
  const body: PruneBody = {
    olderThanMs,
    dryRun: opts.dryRun === true,
    ...(opts.reason ? { reason: opts.reason } : {}),
    ...(opts.channel ? { channel: opts.channel } : {}),
  };
  let report: PruneReport | undefined;
  if (readAdminFile(env.dataDir)) {
    try {
      report = await AdminClient.connect(env.dataDir).post<PruneReport>('/archive/prune', body);
    } catch (err) {
      // A stale admin.json (an engine that crashed): the store is free, prune without it.
      if (!(err instanceof CliError && err.exitCode === EXIT.unreachable)) throw err;
      warn('hl7e: the engine in admin.json does not answer; pruning with the store directly');
    }
  }
  report ??= await pruneOffline(env, body);
  if (opts.json) out(JSON.stringify(report, null, 2));
  else for (const line of pruneLines(report, opts.olderThan)) out(line);
  return report.failed.length > 0 ? EXIT.problem : EXIT.ok;
}

async function pruneOffline(env: EngineEnv, body: PruneBody): Promise<PruneReport> {
  const operator = operatorName();
  const roles = RoleMap.load(env.rolesFile);
  return withOfflineEngine(env, async ({ db }) => {
    const audit = new AuditLog(new AuditRepo(db));
    if (!roles.allows(operator, 'archive.prune')) {
      await audit.record({
        actor: operator,
        action: 'access.denied',
        target: 'archive.prune (offline)',
        reason: null,
        outcome: 'denied',
      });
      throw new CliError(
        `operator ${operator} may not archive.prune (roles: ${roles.rolesOf(operator).join(', ') || 'none'})`,
        EXIT.denied,
      );
    }
    return pruneArchive(
      { archiveDir: env.archiveDir, usage: new ArchiveUsageRepo(db), audit },
      {
        operator,
        olderThanMs: body.olderThanMs,
        dryRun: body.dryRun === true,
        reason: body.reason ?? null,
        ...(body.channel ? { channel: body.channel } : {}),
      },
    );
  });
}

export function pruneLines(r: PruneReport, olderThan: string): string[] {
  const out: string[] = [];
  const scope = `archive files of days before ${r.cutoff} (older than ${olderThan})${r.channel ? ` in channel ${r.channel}` : ''}`;
  if (r.files.length === 0 && r.kept.length === 0 && r.failed.length === 0) {
    return [`nothing to prune: no ${scope}`];
  }
  out.push(`${r.dryRun ? 'dry run: ' : ''}${scope}`);
  if (r.files.length > 0) {
    out.push(
      ...table(
        ['FILE', 'DAY', 'SIZE', 'MESSAGES'],
        r.files.map((f) => [f.file, f.day, size(f.bytes), String(f.messages)]),
      ),
    );
  }
  const t = r.totals;
  const what = `${plural(t.files, 'file')}, ${size(t.bytes)}, ${plural(t.messages, 'message')}`;
  out.push(r.dryRun ? `would remove ${what}` : `removed ${what} (the messages are marked pruned)`);
  if (r.kept.length > 0) {
    out.push(yellow(`kept ${plural(r.kept.length, 'file')} holding messages still in flight:`));
    for (const k of r.kept) out.push(`  ${k.file}  ${k.unfinished ?? 0} of ${k.messages} messages in flight`);
  }
  for (const f of r.failed) out.push(yellow(`not removed: ${f.file} (${f.code}); run prune again`));
  if (r.dryRun && t.files > 0) out.push(dim('run again without --dry-run to remove them'));
  return out;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(1)} ${units[u]}`;
}

function plural(n: number, noun: string): string {
  return `${n.toLocaleString('en-US')} ${noun}${n === 1 ? '' : 's'}`;
}
