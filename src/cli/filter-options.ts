import type { Command } from 'commander';
import { MESSAGE_STATUSES } from '../store/message-search.js';
import { CliError, EXIT } from './cli-error.js';
import { parseTimeArg } from './time-arg.js';

/** The message filters `messages list` and `messages export` share, as commander hands them over. */
export interface MessageFilterOptions {
  channel?: string;
  status?: string;
  type?: string;
  since?: string;
  until?: string;
  sender?: string;
  controlId?: string;
  destination?: string;
}

/** Adds the filter options to `command`, so both commands name and explain them alike. */
export function addMessageFilterOptions(command: Command): Command {
  return command
    .option('--channel <name>', 'only this channel')
    .option('--status <status>', `message status: ${MESSAGE_STATUSES.join(', ')}`)
    .option('--type <type>', 'MSH-9: ORU^R01 exactly, ADT every ADT event, ADT^A0* a prefix')
    .option('--since <time>', 'received at or after: ISO time or an age (30m, 2h, 3d)')
    .option('--until <time>', 'received before: ISO time or an age')
    .option('--sender <name>', 'MSH-3|MSH-4 as listed, or either part alone')
    .option('--control-id <id>', 'MSH-10')
    .option(
      '--destination <name>',
      'messages with a delivery there; with --status failed: not delivered there (failed delivery or processing)',
    );
}

/**
 * The filters as the admin API takes them (the query of GET /messages, the body of POST /messages/export):
 * blank ones left out, the rest trimmed, ages resolved against `now` once — so a next page or a repeated
 * export covers the same window. Usage errors name the option.
 */
export function messageFilter(opts: MessageFilterOptions, now = Date.now()): Record<string, string> {
  if (opts.status !== undefined && !(MESSAGE_STATUSES as readonly string[]).includes(opts.status)) {
    throw new CliError(`--status: one of ${MESSAGE_STATUSES.join(', ')}`, EXIT.usage);
  }
  const q: Record<string, string> = {};
  const set = (k: string, v: string | undefined) => {
    if (v !== undefined && v.trim() !== '') q[k] = v.trim();
  };
  set('channel', opts.channel);
  set('status', opts.status);
  set('type', opts.type);
  if (opts.since) q.since = parseTimeArg(opts.since, '--since', now).toISOString();
  if (opts.until) q.until = parseTimeArg(opts.until, '--until', now).toISOString();
  set('sender', opts.sender);
  set('controlId', opts.controlId);
  set('destination', opts.destination);
  return q;
}

/** `--limit`: a whole number from 1 to `max`. */
export function limitOption(text: string, max: number): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw new CliError(`--limit: a whole number from 1 to ${max}`, EXIT.usage);
  }
  return Number(text);
}
