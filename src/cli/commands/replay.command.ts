import type { Command } from 'commander';
import { readEnv } from '../../config/env.js';
import type { ReplayEvent, ReplaySummary } from '../../pipeline/replay.js';
import { AdminClient } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import { withNeutralIds } from '../golden-compare.js';
import { diffJson, formatChange } from '../json-diff.js';
import { dim, green, yellow } from '../terminal.js';
import { parseTimeArg } from '../time-arg.js';

interface ReplayOptions {
  channel?: string;
  status?: string;
  since?: string;
  until?: string;
  destination?: string;
  type?: string;
  from: string;
  dryRun?: boolean;
  reason?: string;
  json?: boolean;
}

const print = (l: string) => process.stdout.write(`${l}\n`);

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description('send dead-lettered, held or failed messages through the pipeline again (audited)')
    .argument('[ids...]', 'message ids (from hl7e messages list)')
    .option('--channel <name>', 'every message of this channel matching --status')
    .option('--status <status>', 'failed (dead letters and processing failures) or held', 'failed')
    .option('--since <time>', 'received at or after: ISO time or age (2h, 3d)')
    .option('--until <time>', 'received before: ISO time or age')
    .option('--destination <name>', 'only deliveries to this destination')
    .option('--type <type>', 'only this message type (ORU, ORU^R01)')
    .option(
      '--from <source>',
      "raw: rebuild from the archived message with today's mappings; mapped: resend what was sent",
      'raw',
    )
    .option('--dry-run', 'change nothing: count, and with --from raw show how each FHIR Bundle would differ')
    .option('--reason <text>', 'why (required; recorded in the audit trail)')
    .option('--json', 'progress, previews and summary as JSON lines')
    .addHelpText(
      'after',
      `
Only what ended unsuccessfully is replayed: dead-lettered and held deliveries, and messages that failed
in processing (these are processed again). Pending deliveries are in flight and delivered ones are done:
both are skipped and counted, so running the same replay twice sends nothing twice. Deliveries go again
in arrival order per ordering key; FHIR destinations get conditional requests, so a replay never creates
a duplicate resource there. A dry run with --from raw shows, per message, what a mapping change would
change in the Bundle (ids that depend on the mapping version are neutralised).

Exit codes: 0 done · 1 nothing matched · 2 usage · 3 no engine running · 4 not allowed (role)

Examples:
  $ hl7e replay --channel lab-results --status failed --since 2h --dry-run --reason "INC-4711 EHR outage"
  $ hl7e replay --channel lab-results --status failed --since 2h --reason "INC-4711 EHR outage"
  $ hl7e replay 0193f0c2-7c1e-7a51-9a43-1f0c8e2b6d10 --from mapped --reason "resend as delivered"
  $ hl7e replay --channel orders --status held --destination lis --reason "LIS confirmed it never got them"`,
    )
    .action(async (ids: string[], opts: ReplayOptions) => {
      process.exitCode = await replayAction(ids, opts);
    });
}

async function replayAction(ids: string[], opts: ReplayOptions): Promise<number> {
  if (!opts.reason?.trim())
    throw new CliError('replay needs --reason "why" (it is recorded in the audit trail)');
  if (ids.length === 0 && !opts.channel) throw new CliError('name message ids, or --channel with --status');
  if (opts.from !== 'raw' && opts.from !== 'mapped') throw new CliError('--from must be raw or mapped');
  const body = {
    ...(ids.length > 0 ? { ids } : { channel: opts.channel, status: opts.status }),
    ...(opts.since ? { since: parseTimeArg(opts.since, '--since').toISOString() } : {}),
    ...(opts.until ? { until: parseTimeArg(opts.until, '--until').toISOString() } : {}),
    ...(opts.destination ? { destination: opts.destination } : {}),
    ...(opts.type ? { type: opts.type } : {}),
    from: opts.from,
    dryRun: opts.dryRun === true,
    reason: opts.reason,
  };
  const client = AdminClient.connect(readEnv().dataDir);
  const bar = process.stderr.isTTY && !opts.json;
  let summary: ReplaySummary | undefined;
  for await (const e of client.stream<ReplayEvent>('/replay', body)) {
    if (opts.json) print(JSON.stringify(e));
    if (e.type === 'progress') {
      if (bar) process.stderr.write(`\r${progressBar(e.done, e.total)}`);
    } else if (e.type === 'preview') {
      if (!opts.json) for (const line of previewLines(e)) print(line);
    } else {
      summary = e;
    }
  }
  if (bar) process.stderr.write('\n');
  if (!summary) throw new CliError('the engine ended the replay early (see its log)', EXIT.problem);
  if (!opts.json) for (const line of summaryLines(summary)) print(line);
  return summary.messages === 0 ? EXIT.problem : EXIT.ok;
}

function progressBar(done: number, total: number, width = 30): string {
  const filled = total === 0 ? width : Math.round((done / total) * width);
  return `replay [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${total}`;
}

function previewLines(p: Extract<ReplayEvent, { type: 'preview' }>): string[] {
  const head = `${p.messageId} → ${p.destination}`;
  if (p.note && (p.before === null || p.now === null)) return [`${head}: ${p.note}`];
  const changes = diffJson(
    withNeutralIds(JSON.parse(p.before as string)),
    withNeutralIds(JSON.parse(p.now as string)),
  );
  if (changes.length === 0) return [`${head}: ${dim('no change')}`];
  return [`${head}: ${yellow(`${changes.length} change(s)`)}`, ...changes.map((c) => `  ${formatChange(c)}`)];
}

export function summaryLines(s: ReplaySummary): string[] {
  const verb = s.dryRun ? 'would replay' : 'replayed';
  const lines = [
    `${s.dryRun ? 'dry run: ' : ''}${s.messages} message(s) matched`,
    green(
      `${verb}: ${s.replayedDeliveries} deliveries (from ${s.from}), ${s.reprocessed} message(s) reprocessed`,
    ),
    `skipped: ${s.skipped.inFlight} in flight, ${s.skipped.alreadyDelivered} already delivered, ${s.skipped.notReplayable} not replayable`,
  ];
  if (!s.dryRun && s.replayedDeliveries + s.reprocessed > 0) lines.push(dim('follow with: hl7e status'));
  return lines;
}
