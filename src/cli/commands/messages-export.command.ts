import type { Command } from 'commander';
import { EXPORT_DEFAULT_LIMIT, EXPORT_MAX_LIMIT } from '../../admin/export-limits.js';
import type { ExportEvent } from '../../admin/export-routes.js';
import { readEnv } from '../../config/env.js';
import { AdminClient, operatorName } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import {
  addMessageFilterOptions,
  limitOption,
  type MessageFilterOptions,
  messageFilter,
} from '../filter-options.js';
import { dim, yellow } from '../terminal.js';

export interface ExportOptions extends MessageFilterOptions {
  deidentify?: boolean;
  limit?: string;
  keepZSegment?: string;
  reason?: string;
  json?: boolean;
}

const note = (l: string) => process.stderr.write(`${l}\n`);

/** `hl7e messages export`: added to the `messages` command group by messages.command.ts. */
export function registerMessagesExport(messages: Command): void {
  addMessageFilterOptions(
    messages
      .command('export')
      .description(
        'messages with the HIPAA Safe Harbor identifiers removed, as an HL7 file to share (e.g. with a vendor debugging a mapping)',
      )
      .option('--deidentify', 'required: the export is de-identified (there is no other kind)'),
  )
    .option(
      '--limit <n>',
      `the newest n messages that match (1-${EXPORT_MAX_LIMIT})`,
      String(EXPORT_DEFAULT_LIMIT),
    )
    .option('--keep-z-segment <names>', 'Z-segments to keep, comma-separated (all others are removed)')
    .option('--reason <text>', 'why (required; recorded in the audit trail with your name)')
    .option('--json', 'the engine’s lines as they come ({type, messageId, text} …) instead of an HL7 file')
    .addHelpText(
      'after',
      `
What is removed (45 CFR 164.514(b)(2)): every person's name (patients, relatives, guarantors, insured,
providers) → REDACTED; street, city and county (state and country stay; a ZIP keeps its first three
digits, 000 for the small ZIP areas Safe Harbor names); all dates and times → their year; ages over 89
→ 90; phone, fax, e-mail, URLs, IP addresses; free text (NTE comments, TX/FT results and text-only ST
results) → REDACTED; encapsulated data (images, documents); Z-segments. MRN, account, visit, order,
SSN, licence, policy, device and document numbers — and MSH-10 — become pseudonyms that are stable
within one export (so an order and its result, or a merge, still line up) and differ in every export.
Kept: message types, segment structure, coded values, units, flags, numbers, locations in the
facility (ward, room, bed) and organisations (facility, lab, insurer) — a mapping can be debugged on
the file, and it converts with \`hl7e convert\` to the same codes and values.

The file: each message's segments end in CR, each message in a line feed, all in UTF-8 (MSH-18 says
UNICODE UTF-8 where it names a charset) — the form \`hl7e convert\`, \`hl7e parse\` and \`hl7e send\` read.
On a terminal, one segment per line. A message that cannot be read is skipped and named on stderr.

Every export is recorded in the audit trail (who, the filter, the reason, how many). Needs the analyst,
oncall or admin role.

Exit codes: 0 exported · 1 nothing matched, or some messages skipped · 2 usage · 3 no engine running
· 4 not allowed (role)

Examples:
  $ hl7e messages export --deidentify --channel lab-results --type ORU^R01 --since 1d --reason "VEND-231 OBX units" > oru.hl7
  $ hl7e messages export --deidentify --status failed --since 3d --limit 50 --reason "INC-4711" > failed.hl7
  $ hl7e messages export --deidentify --control-id 20260301-0042 --reason "mapping question" > one.hl7 && hl7e convert one.hl7
  $ hl7e messages export --deidentify --channel adt --keep-z-segment ZPD,ZIN --reason "ZPD mapping" > adt.hl7`,
    )
    .action(async (opts: ExportOptions) => {
      process.exitCode = await exportAction(opts);
    });
}

/** Options → the request body of `POST /messages/export`; usage errors say which option. */
export function exportBody(opts: ExportOptions, now = Date.now()): Record<string, unknown> {
  if (!opts.deidentify) {
    throw new CliError('only de-identified export is supported: add --deidentify', EXIT.usage);
  }
  const reason = opts.reason?.trim();
  if (!reason)
    throw new CliError('export needs --reason "why" (it is recorded in the audit trail)', EXIT.usage);
  const filter = messageFilter(opts, now);
  const limit = limitOption(opts.limit ?? String(EXPORT_DEFAULT_LIMIT), EXPORT_MAX_LIMIT);
  const keep = (opts.keepZSegment ?? '')
    .split(',')
    .map((s) => s.trim().toUpperCase())
    .filter(Boolean);
  if (keep.some((s) => !/^Z[A-Z0-9]{2}$/.test(s))) {
    throw new CliError('--keep-z-segment: Z-segment names, comma-separated (ZPD,ZIN)', EXIT.usage);
  }
  return {
    deidentify: true,
    reason,
    ...filter,
    limit,
    ...(keep.length > 0 ? { keepSegments: keep } : {}),
  };
}

/**
 * One exported message as the file holds it: segments end in CR, the message in a line feed, so that
 * `splitMessages` (what convert, parse and send read) finds it again. On a terminal: a line a segment.
 */
export function fileChunk(text: string, terminal = false): string {
  const segments = text.endsWith('\r') ? text : `${text}\r`;
  return terminal ? `${segments.replace(/\r/g, '\n')}\n` : `${segments}\n`;
}

async function exportAction(opts: ExportOptions): Promise<number> {
  const body = exportBody(opts);
  const client = AdminClient.connect(readEnv().dataDir);
  const terminal = process.stdout.isTTY === true && !opts.json;
  let summary: Extract<ExportEvent, { type: 'summary' }> | undefined;
  for await (const e of client.stream<ExportEvent>('/messages/export', body)) {
    if (opts.json) await write(`${JSON.stringify(e)}\n`);
    if (e.type === 'message') {
      if (!opts.json) await write(fileChunk(e.text, terminal));
    } else if (e.type === 'skipped') {
      note(yellow(`skipped ${e.messageId}: ${e.code}`));
    } else {
      summary = e;
    }
  }
  if (!summary) {
    throw new CliError(
      'the engine ended the export early: the output is incomplete (see the engine log)',
      EXIT.problem,
    );
  }
  note(
    dim(
      `${summary.exported} message(s) exported de-identified (Safe Harbor)` +
        `${summary.skipped > 0 ? `, ${summary.skipped} skipped` : ''}; recorded in the audit trail as ${operatorName()}`,
    ),
  );
  return summary.exported > 0 && summary.skipped === 0 ? EXIT.ok : EXIT.problem;
}

/** Writes to stdout, waiting when the pipe or file is behind (an export can be large). */
function write(chunk: string): Promise<void> {
  if (process.stdout.write(chunk)) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const done = (err?: Error) => {
      process.stdout.off('drain', done);
      process.stdout.off('error', done);
      if (err) reject(err);
      else resolve();
    };
    process.stdout.on('drain', done);
    process.stdout.on('error', done);
  });
}
