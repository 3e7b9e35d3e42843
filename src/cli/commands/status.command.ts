import type { Command } from 'commander';
import type { StatusReport } from '../../admin/status-report.js';
import { readEnv } from '../../config/env.js';
import { AdminClient } from '../admin-client.js';
import { EXIT } from '../cli-error.js';
import { age, dim, green, red, table, yellow } from '../terminal.js';

const print = (l: string) => process.stdout.write(`${l}\n`);

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description(
      'what the running engine is doing: listeners, traffic, queues, destinations, what needs attention',
    )
    .option('--json', 'the whole report as JSON')
    .addHelpText(
      'after',
      `
Talks to the running engine found through HL7E_DATA_DIR. Exit code 1 when something needs attention
(a listener down, a breaker open, dead letters, held deliveries, a backlog that is not moving), so it
also serves as a health check; 3 when no engine is running.

Examples:
  $ hl7e status
  $ hl7e status --json | jq '.destinations[] | select(.breaker != "closed")'`,
    )
    .action(async (opts: { json?: boolean }) => {
      const report = await AdminClient.connect(readEnv().dataDir).get<StatusReport>('/status');
      if (opts.json) print(JSON.stringify(report, null, 2));
      else for (const line of statusLines(report)) print(line);
      process.exitCode = report.attention.length > 0 ? EXIT.problem : EXIT.ok;
    });
}

export function statusLines(r: StatusReport): string[] {
  const out: string[] = [];
  out.push(
    ...table(
      [
        'CHANNEL',
        'LISTENER',
        'ADDRESS',
        'CONN',
        'RECEIVED 1H',
        'ACKED 1H',
        'FAILED 1H',
        'OLDEST UNPROCESSED',
      ],
      r.channels.map((c) => [
        c.name,
        c.listener === 'up' ? green(c.backpressure ? 'up (backpressure)' : 'up') : red('down'),
        c.address,
        String(c.connections),
        String(c.lastHour.received),
        String(c.lastHour.acked),
        c.lastHour.failed > 0 ? yellow(String(c.lastHour.failed)) : '0',
        age(c.oldestUnprocessedAgeS),
      ]),
    ),
  );
  out.push(
    dim(
      `processing queue: ${r.processing.waiting} waiting, ${r.processing.active} active, ${r.processing.delayed} delayed`,
    ),
  );
  out.push('');
  out.push(
    ...table(
      [
        'DESTINATION',
        'TYPE',
        'BREAKER',
        'BACKLOG',
        'RETRYING',
        'HELD BACK',
        'HELD',
        'DEAD',
        'LAST SUCCESS',
        'LAST ERROR',
      ],
      r.destinations.map((d) => [
        `${d.channel}/${d.name}`,
        d.type,
        d.breaker === 'closed'
          ? green('closed')
          : red(d.breakerOpenForS > 0 ? `${d.breaker} ${d.breakerOpenForS}s` : d.breaker),
        String(d.backlog),
        String(d.retrying),
        String(d.heldBack),
        d.held > 0 ? red(String(d.held)) : '0',
        d.deadLetters > 0 ? red(String(d.deadLetters)) : '0',
        d.lastSuccessAt
          ? `${age(Math.round((Date.parse(r.at) - Date.parse(d.lastSuccessAt)) / 1000))} ago`
          : '-',
        d.lastErrorClass
          ? `${d.lastErrorClass}${d.lastErrorAt ? ` (${age(Math.round((Date.parse(r.at) - Date.parse(d.lastErrorAt)) / 1000))} ago)` : ''}`
          : '-',
      ]),
    ),
  );
  out.push('');
  if (r.attention.length === 0) out.push(green('nothing needs attention'));
  else for (const a of r.attention) out.push(`${red('attention:')} ${a}`);
  return out;
}
