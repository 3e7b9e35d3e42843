import { CliError } from './cli-error.js';

/**
 * A time given on the command line: ISO 8601 (`2026-12-06T03:00:00Z`, `2026-12-06`) or relative to now
 * (`90s`, `30m`, `2h`, `3d`, `1w`: that long ago).
 */
export function parseTimeArg(text: string, option: string, now = Date.now()): Date {
  const rel = /^(\d+)\s*(s|m|h|d|w)$/.exec(text.trim());
  if (rel) {
    const unit = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[
      rel[2] as 's' | 'm' | 'h' | 'd' | 'w'
    ];
    return new Date(now - Number(rel[1]) * unit);
  }
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const t = Date.parse(text);
    if (!Number.isNaN(t)) return new Date(t);
  }
  throw new CliError(`${option}: expected an ISO time (2026-12-06T03:00Z) or an age (90s, 30m, 2h, 3d, 1w)`);
}

/** A length of time (`30d`, `6h`) in milliseconds, for --older-than. */
export function parseDurationArg(text: string, option: string): number {
  const now = Date.now();
  const at = parseTimeArg(text, option, now);
  if (!/^\d+\s*(s|m|h|d|w)$/.test(text.trim()))
    throw new CliError(`${option}: expected a duration (30d, 12h)`);
  return now - at.getTime();
}
