import type { Command } from 'commander';
import type { AuditListAnswer, AuditVerifyAnswer } from '../../admin/audit-routes.js';
import { readEnv } from '../../config/env.js';
import { AdminClient } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import { dim, green, red, table } from '../terminal.js';
import { parseTimeArg } from '../time-arg.js';

const print = (l: string) => process.stdout.write(`${l}\n`);

interface ListOptions {
  since: string;
  until?: string;
  operator?: string;
  action?: string;
  limit: string;
  after?: string;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const audit = program
    .command('audit')
    .description('the hash-chained audit trail: who revealed, replayed, pruned, rotated — and why');

  audit
    .command('list')
    .description('audit entries in order, oldest first: time, operator, action, target, reason, outcome')
    .option('--since <time>', 'from this time: ISO or an age (2h, 3d)', '24h')
    .option('--until <time>', 'before this time: ISO or an age')
    .option('--operator <name>', 'only this operator')
    .option('--action <action>', 'only this action (messages.reveal, replay, archive.prune, access.denied …)')
    .option('--limit <n>', 'at most this many entries (1-1000)', '100')
    .option('--after <seq>', 'entries after this sequence number (the next page)')
    .option('--json', 'entries as JSON, with their (shortened) hashes')
    .addHelpText(
      'after',
      `
Talks to the running engine found through HL7E_DATA_DIR; needs the auditor or admin role.
By default the last 24 hours; a full page ends with the command that shows the next one.
Exit codes: 0 ok · 2 bad option · 3 no engine running · 4 refused (role).

Examples:
  $ hl7e audit list --since 2h
  $ hl7e audit list --since 2026-12-01 --operator alice --action messages.reveal
  $ hl7e audit list --since 7d --json | jq '.entries[] | select(.outcome == "denied")'`,
    )
    .action(async (opts: ListOptions) => {
      const limit = intOption(opts.limit, '--limit', 1, 1000);
      const answer = await AdminClient.connect(readEnv().dataDir).get<AuditListAnswer>('/audit', {
        since: parseTimeArg(opts.since, '--since').toISOString(),
        until: opts.until ? parseTimeArg(opts.until, '--until').toISOString() : undefined,
        operator: opts.operator,
        action: opts.action,
        limit,
        after:
          opts.after === undefined ? undefined : intOption(opts.after, '--after', 0, Number.MAX_SAFE_INTEGER),
      });
      if (opts.json) print(JSON.stringify(answer, null, 2));
      else for (const line of auditListLines(answer, opts)) print(line);
      process.exitCode = EXIT.ok;
    });

  audit
    .command('verify')
    .description('check the whole hash chain; name the first entry altered, inserted or deleted')
    .option('--reason <text>', 'why you are checking (recorded with the check)')
    .option('--json', 'the result as JSON')
    .addHelpText(
      'after',
      `
Every entry's hash covers its own fields and the hash of the entry before it, so an entry altered in
the database breaks the chain at that entry (hash), and one deleted or inserted breaks it at the entry
after (link). The check itself is recorded in the trail. Cutting entries off the end leaves a shorter
chain that is still intact: compare the head seq and hash with a copy kept elsewhere.
Needs the auditor or admin role.
Exit codes: 0 intact · 1 broken · 3 no engine running · 4 refused (role).

Examples:
  $ hl7e audit verify
  $ hl7e audit verify --json | jq .head`,
    )
    .action(async (opts: { reason?: string; json?: boolean }) => {
      const answer = await AdminClient.connect(readEnv().dataDir).post<AuditVerifyAnswer>(
        '/audit/verify',
        opts.reason ? { reason: opts.reason } : {},
      );
      if (opts.json) print(JSON.stringify(answer, null, 2));
      else print(auditVerifyLine(answer));
      process.exitCode = answer.ok ? EXIT.ok : EXIT.problem;
    });
}

export function auditListLines(a: AuditListAnswer, opts: Pick<ListOptions, 'since'>): string[] {
  if (a.entries.length === 0) return [dim(`no audit entries since ${opts.since}`)];
  const out = table(
    ['SEQ', 'AT', 'OPERATOR', 'ACTION', 'OUTCOME', 'TARGET', 'REASON'],
    a.entries.map((e) => [
      String(e.seq),
      `${e.at.slice(0, 19)}Z`,
      e.actor,
      e.action,
      e.outcome === 'denied' || e.outcome.startsWith('failed') || e.outcome.startsWith('broken')
        ? red(e.outcome)
        : e.outcome,
      e.target ?? '-',
      e.reason ?? '-',
    ]),
  );
  if (a.next !== null) out.push(dim(`… more: add --after ${a.next}`));
  return out;
}

export function auditVerifyLine(a: AuditVerifyAnswer): string {
  const last = a.head ? `entries up to seq ${a.head.seq} are intact` : 'no entry before it is intact';
  if (a.firstBreak?.problem === 'hash') {
    return red(
      `audit chain broken at seq ${a.firstBreak.seq} (hash): the entry no longer matches its hash — it was altered after it was written; ${last}`,
    );
  }
  if (a.firstBreak?.problem === 'link') {
    return red(
      `audit chain broken at seq ${a.firstBreak.seq} (link): the entry does not follow the one before it — an entry before it was deleted or one was inserted; ${last}`,
    );
  }
  if (!a.head) return green('audit chain intact: 0 entries');
  return green(`audit chain intact: ${a.checked} entries, head seq ${a.head.seq} hash ${a.head.hash}`);
}

function intOption(text: string, option: string, min: number, max: number): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new CliError(`${option}: expected a whole number from ${min} to ${max}`);
  }
  return n;
}
