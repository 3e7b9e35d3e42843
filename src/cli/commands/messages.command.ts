import type { Command } from 'commander';
import type { FhirReveal, RawReveal } from '../../admin/message-routes.js';
import { readEnv } from '../../config/env.js';
import type { MessageDetail, MessageListRow, MessagePage } from '../../store/message-search.js';
import { MAX_PAGE } from '../../store/message-search.js';
import { AdminClient, operatorName } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import {
  addMessageFilterOptions,
  limitOption,
  type MessageFilterOptions,
  messageFilter,
} from '../filter-options.js';
import { age, dim, green, red, table, yellow } from '../terminal.js';
import { registerMessagesExport } from './messages-export.command.js';

/** A type as it arrives over JSON: times are ISO strings. */
type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? readonly Wire<U>[]
    : T extends object
      ? { readonly [K in keyof T]: Wire<T[K]> }
      : T;

const print = (l: string) => process.stdout.write(`${l}\n`);
const note = (l: string) => process.stderr.write(`${l}\n`);

interface ListOptions extends MessageFilterOptions {
  limit?: string;
  cursor?: string;
  json?: boolean;
}

interface ShowOptions {
  json?: boolean;
  raw?: boolean;
  fhir?: boolean;
  reason?: string;
}

export function registerMessages(program: Command): void {
  const messages = program
    .command('messages')
    .description('find messages in the running engine and see what happened to them');

  addMessageFilterOptions(
    messages
      .command('list')
      .description('messages newest first, filtered; ids, times, codes and status only (no patient data)'),
  )
    .option('--limit <n>', `rows per page (1-${MAX_PAGE})`, '50')
    .option('--cursor <next>', 'the next page (from the hint line or the JSON `next`)')
    .option('--json', '{ messages, next } as JSON')
    .addHelpText(
      'after',
      `
The DELIVERIES column shows each destination's state, with the last error class of one that is not
delivered: ehr:failed(http_400). A hint line gives the command for the next page.

Examples:
  $ hl7e messages list --status failed
  $ hl7e messages list --channel lab-results --since 2h --type ORU^R01
  $ hl7e messages list --destination ehr --status failed --since 3d
  $ hl7e messages list --control-id 20260301-0042
  $ hl7e messages list --status failed --json | jq -r '.messages[].id'`,
    )
    .action(async (opts: ListOptions) => {
      const query = listQuery(opts);
      const page = await AdminClient.connect(readEnv().dataDir).get<Wire<MessagePage>>('/messages', query);
      if (opts.json) print(JSON.stringify(page, null, 2));
      else for (const line of listLines(page, query)) print(line);
      process.exitCode = EXIT.ok;
    });

  messages
    .command('show')
    .description('one message: metadata, timeline of events and delivery attempts, errors')
    .argument('<id>', 'message id (from messages list)')
    .option('--json', 'everything as JSON')
    .option('--raw', 'print the message as received (patient data: needs --reason, audited)')
    .option('--fhir', 'print the FHIR Bundle delivered (patient data: needs --reason, audited)')
    .option('--reason <text>', 'why you need the content: recorded in the audit trail with your name')
    .addHelpText(
      'after',
      `
--raw and --fhir print only the content on stdout, so it can be redirected to a file; what was revealed
goes to stderr. --raw writes the bytes exactly as received (on a terminal: one segment per line).
--fhir prints the Bundle each FHIR destination was sent (a JSON array when there are several); a message
not delivered yet shows the Bundle as it would be built now, labelled so on stderr. Every reveal is
recorded (operator from HL7E_OPERATOR or the OS user, reason, outcome) and needs the oncall or admin role.

Examples:
  $ hl7e messages show 0195f3a2-7c1e-7b40-9a51-2f0c3d4e5f60
  $ hl7e messages show 0195f3a2-7c1e-7b40-9a51-2f0c3d4e5f60 --json
  $ hl7e messages show 0195f3a2-7c1e-7b40-9a51-2f0c3d4e5f60 --raw --reason "INC-4711 lab feed" > msg.hl7
  $ hl7e messages show 0195f3a2-7c1e-7b40-9a51-2f0c3d4e5f60 --fhir --reason "INC-4711" | jq .entry`,
    )
    .action(async (id: string, opts: ShowOptions) => {
      if (opts.raw && opts.fhir) throw new CliError('--raw and --fhir: one at a time', EXIT.usage);
      const what = opts.raw ? 'raw' : opts.fhir ? 'fhir' : undefined;
      if (what && !opts.reason?.trim()) {
        throw new CliError(
          `--${what} shows patient data: add --reason TEXT (recorded in the audit trail)`,
          EXIT.usage,
        );
      }
      const client = AdminClient.connect(readEnv().dataDir);
      const path = `/messages/${encodeURIComponent(id)}`;
      if (what === undefined) {
        const detail = await client.get<Wire<MessageDetail>>(path);
        if (opts.json) print(JSON.stringify(detail, null, 2));
        else for (const line of showLines(detail)) print(line);
      } else {
        const content = await client.post<Wire<RawReveal | FhirReveal>>(`${path}/reveal`, {
          what,
          reason: opts.reason?.trim(),
        });
        if (opts.json) print(JSON.stringify(content, null, 2));
        else if (content.what === 'raw') writeRaw(content);
        else writeFhir(content);
        note(`${what} content of ${id} revealed; recorded in the audit trail as ${operatorName()}`);
      }
      process.exitCode = EXIT.ok;
    });
  registerMessagesExport(messages);
}

/** Options → the admin API's query; times resolved once, so the next page covers the same window. */
export function listQuery(opts: ListOptions, now = Date.now()): Record<string, string> {
  const q = messageFilter(opts, now);
  q.limit = String(limitOption(opts.limit ?? '50', MAX_PAGE));
  if (opts.cursor !== undefined) {
    if (!/^\d{1,18}$/.test(opts.cursor)) {
      throw new CliError('--cursor: the value from the previous page’s hint', EXIT.usage);
    }
    q.cursor = opts.cursor;
  }
  return q;
}

const OPTION_OF: Record<string, string> = { controlId: '--control-id' };

/** The list as a table, and the command for the next page. */
export function listLines(page: Wire<MessagePage>, query: Record<string, string>): string[] {
  if (page.messages.length === 0) return ['no messages match'];
  const out = table(
    ['RECEIVED', 'ID', 'CHANNEL', 'TYPE', 'CONTROL ID', 'SENDER', 'STATUS', 'ACK', 'ERROR', 'DELIVERIES'],
    page.messages.map((m) => [
      shortTime(m.receivedAt),
      m.id,
      m.channel,
      m.type,
      m.controlId,
      m.sender,
      statusColour(m.status),
      m.ackCode,
      m.errorCode ?? '-',
      deliveries(m) || '-',
    ]),
  );
  if (page.next !== null) {
    const args = Object.entries({ ...query, cursor: String(page.next) }).map(
      ([k, v]) => `${OPTION_OF[k] ?? `--${k}`} ${shellWord(v)}`,
    );
    out.push(dim(`next page: hl7e messages list ${args.join(' ')}`));
  }
  return out;
}

/** `ehr:delivered mllp:failed(ack_timeout)`. */
function deliveries(m: Wire<MessageListRow>): string {
  return m.deliveries
    .map((d) => {
      const text = `${d.destination}:${d.status}${d.status !== 'delivered' && d.errorClass ? `(${d.errorClass})` : ''}`;
      return d.status === 'delivered' ? text : d.status === 'pending' ? yellow(text) : red(text);
    })
    .join(' ');
}

function statusColour(status: string): string {
  if (status === 'delivered' || status === 'processed') return green(status);
  if (status === 'failed' || status === 'rejected') return red(status);
  return yellow(status);
}

/** `2026-03-01T11:15:00Z` (no milliseconds: a table is read by people). */
function shortTime(iso: string): string {
  return iso.replace(/\.\d+Z$/, 'Z');
}

function shellWord(v: string): string {
  return /^[\w@%+=:,./^-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

interface TimelineItem {
  readonly at: string;
  readonly what: string;
  readonly detail: string;
}

/** Metadata, then everything that happened in time order, then the errors; no content. */
export function showLines(d: Wire<MessageDetail>, now = Date.now()): string[] {
  const m = d.message;
  const ago = (iso: string) => `${age(Math.max(0, Math.round((now - Date.parse(iso)) / 1000)))} ago`;
  const out: string[] = [];
  const kv: [string, string][] = [
    ['id', m.id],
    ['channel', m.channel],
    ['type', `${m.type} (HL7 ${m.version})`],
    ['control id', m.controlId],
    ['sender', m.sender],
    [
      'received',
      `${m.receivedAt} (${ago(m.receivedAt)})${m.connectionId ? `, connection ${m.connectionId}` : ''}`,
    ],
    ['status', `${statusColour(m.status)}${m.lastErrorCode ? ` ${red(m.lastErrorCode)}` : ''}`],
    ['ack', `${m.ackCode}${m.intakeErrorCode ? ` ${m.intakeErrorCode}` : ''}`],
    ['size', `${m.byteLength} bytes, sha256 ${m.sha256.slice(0, 16)}…`],
  ];
  if (m.duplicateCount > 0) {
    kv.push(['duplicates', `${m.duplicateCount} resent, last ${m.lastDuplicateAt ?? '-'}`]);
  }
  if (m.collisionOf) kv.push(['collision of', m.collisionOf]);
  if (m.processedAt) kv.push(['processed', m.processedAt]);
  const width = Math.max(...kv.map(([k]) => k.length));
  for (const [k, v] of kv) out.push(`${k.padEnd(width)}  ${v}`);

  out.push('', 'timeline');
  const items: TimelineItem[] = [
    {
      at: m.receivedAt,
      what: 'received',
      detail: `ACK ${m.ackCode}${m.intakeErrorCode ? ` ${m.intakeErrorCode}` : ''}`,
    },
    ...d.events.map((e) => ({ at: e.at, what: e.event, detail: detailText(e.detail) })),
  ];
  for (const dl of d.deliveries) {
    items.push({ at: dl.createdAt, what: dl.destination, detail: 'delivery queued' });
    if (dl.replayedAt) {
      items.push({
        at: dl.replayedAt,
        what: dl.destination,
        detail: `replayed (from ${dl.replayFrom ?? 'raw'})`,
      });
    }
    for (const a of dl.attemptLog) {
      const took = a.finishedAt
        ? ` ${Math.max(0, Date.parse(a.finishedAt) - Date.parse(a.startedAt))} ms`
        : '';
      const parts = [
        `attempt ${a.attempt}: ${outcomeColour(a.outcome)}`,
        a.errorClass ?? '',
        a.statusCode ? `HTTP ${a.statusCode}` : '',
        a.ackCode ? `ACK ${a.ackCode}` : '',
        a.retryAfterMs !== null ? `retry-after ${a.retryAfterMs} ms` : '',
        took ? `(${took.trim()})` : '',
      ];
      items.push({ at: a.startedAt, what: dl.destination, detail: parts.filter(Boolean).join('  ') });
    }
    if (dl.status === 'pending' && dl.nextAttemptAt) {
      items.push({ at: dl.nextAttemptAt, what: dl.destination, detail: dim('next attempt due') });
    }
  }
  items.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
  const whatWidth = Math.max(...items.map((i) => i.what.length));
  for (const i of items) out.push(`  ${i.at}  ${i.what.padEnd(whatWidth)}  ${i.detail}`.trimEnd());

  if (d.deliveries.length > 0) {
    out.push('', 'deliveries');
    out.push(
      ...table(
        ['DESTINATION', 'STATUS', 'ATTEMPTS', 'LAST ERROR', 'LAST ATTEMPT', 'DELIVERED'],
        d.deliveries.map((dl) => [
          dl.destination,
          statusColour(dl.status),
          String(dl.attempts),
          dl.lastErrorClass ? `${dl.lastErrorClass}${dl.lastStatus ? ` (HTTP ${dl.lastStatus})` : ''}` : '-',
          dl.lastAttemptAt ?? '-',
          dl.deliveredAt ?? '-',
        ]),
      ).map((l) => `  ${l}`),
    );
  }

  const errors: string[] = [];
  if (m.intakeErrorCode) errors.push(`intake: ${m.intakeErrorCode} (ACK ${m.ackCode})`);
  if (m.lastErrorCode) errors.push(`${m.lastErrorCode}${m.lastErrorAt ? ` at ${m.lastErrorAt}` : ''}`);
  for (const dl of d.deliveries) {
    if (dl.status !== 'delivered' && dl.lastErrorClass) {
      errors.push(`${dl.destination}: ${dl.lastErrorClass}${dl.lastErrorAt ? ` at ${dl.lastErrorAt}` : ''}`);
    }
  }
  if (errors.length > 0) {
    out.push('', 'errors');
    for (const e of errors) out.push(`  ${red(e)}`);
  }
  out.push('', dim(`content (audited): hl7e messages show ${m.id} --raw|--fhir --reason TEXT`));
  return out;
}

function outcomeColour(outcome: string): string {
  if (outcome === 'delivered') return green(outcome);
  if (outcome === 'retry') return yellow(outcome);
  return red(outcome);
}

/** An event's detail (codes, counts, positions) as `key=value` words; nested objects as counts. */
function detailText(detail: unknown): string {
  if (detail === null || typeof detail !== 'object') return detail == null ? '' : String(detail);
  const words: string[] = [];
  for (const [k, v] of Object.entries(detail as Record<string, unknown>)) {
    if (v === null || v === undefined) continue;
    if (Array.isArray(v)) {
      const simple = v.every((x) => typeof x !== 'object');
      words.push(
        simple
          ? `${k}=${v.slice(0, 6).join(',')}${v.length > 6 ? `,…(${v.length})` : ''}`
          : `${k}=${v.length}`,
      );
    } else if (typeof v === 'object') words.push(`${k}={…}`);
    else words.push(`${k}=${String(v)}`);
  }
  return words.join(' ');
}

/** To a terminal: one segment per line. Redirected: the bytes exactly as received. */
function writeRaw(r: Wire<RawReveal>): void {
  if (process.stdout.isTTY) {
    const text = r.text.replace(/\r\n?/g, '\n');
    process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  } else {
    process.stdout.write(Buffer.from(r.base64, 'base64'));
  }
  note(`${r.byteLength} bytes, ${r.encoding}${r.charset ? ` (MSH-18 ${r.charset})` : ''}`);
}

/** The Bundle (several: a JSON array) on stdout; which is which on stderr. */
function writeFhir(r: Wire<FhirReveal>): void {
  const shown = r.bundles.filter((b) => b.error === undefined);
  for (const b of r.bundles) {
    const index = shown.length > 1 && !b.error ? ` [${shown.indexOf(b)}]` : '';
    note(`${b.destination ?? '(no destination)'}: ${b.error ? `no Bundle: ${b.error}` : b.label}${index}`);
  }
  const out = shown.length === 1 ? shown[0]?.bundle : shown.map((b) => b.bundle);
  print(JSON.stringify(out, null, 2));
}
