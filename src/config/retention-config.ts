import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { EngineError } from '../errors.js';
import { formatProblem, readYamlFile } from './yaml-file.js';

/** The data classes retention knows, each kept for its own time (docs/retention.md). */
export const DATA_CLASSES = ['raw', 'mapped', 'metadata', 'audit'] as const;
export type DataClass = (typeof DATA_CLASSES)[number];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** A year counts 366 days, so `6y` is never a day short of six calendar years. */
const YEAR = 366 * DAY;
/** HIPAA §164.316(b)(2)(i): documentation of Security Rule actions and activities is kept six years. */
export const AUDIT_MIN_MS = 6 * YEAR;

export interface RetentionPolicy {
  /** How long each class is kept, in ms; Infinity for `never` (that class is never pruned). */
  readonly raw: number;
  readonly mapped: number;
  readonly metadata: number;
  readonly audit: number;
  /** false: the daemon runs no scheduled prune (a legal hold); `hl7e archive prune` still works. */
  readonly schedule: boolean;
  /** How often the scheduled prune runs (the first run comes a minute after start, or sooner). */
  readonly intervalMs: number;
  /** The file it was read from, when there was one. */
  readonly file: string | undefined;
  /** Things allowed but worth a log line at start (an audit retention below six years). */
  readonly warnings: readonly string[];
}

/**
 * Defaults a hospital can start from. raw and mapped: 90 days — long enough to investigate and replay
 * what a downstream system lost over a quarter, short enough that the engine is not a second clinical
 * record (the EHR is). metadata: one year — ids, times, states and codes, no content: it answers "did
 * that result arrive last spring", and must outlive the content so a row can say "pruned". audit: six
 * years (HIPAA §164.316(b)(2)).
 */
export const RETENTION_DEFAULTS = {
  raw: '90d',
  mapped: '90d',
  metadata: '1y',
  audit: '6y',
} as const satisfies Record<DataClass, string>;

export const DEFAULT_RETENTION_INTERVAL_MS = DAY;

const FILE_KEYS = [...DATA_CLASSES, 'allowShortAudit', 'schedule'];

/**
 * The retention policy: defaults, then HL7E_RETENTION_FILE (default ./retention.yaml; optional), then
 * the environment (HL7E_RETENTION_RAW, _MAPPED, _METADATA, _AUDIT, _ALLOW_SHORT_AUDIT, _SCHEDULE,
 * HL7E_RETENTION_INTERVAL_MS), each later source winning per key:
 *
 *     raw: 90d          # h, d, w or y (366 days); or `never`
 *     mapped: 90d
 *     metadata: 1y
 *     audit: 6y         # below 6y only with allowShortAudit: true
 *     schedule: true    # false: no scheduled prune (legal hold)
 *
 * `dataKeyMaxAgeMs` (HL7E_DATA_KEY_MAX_AGE_MS) takes part in one check: a data key must rotate at least
 * as often as the shortest content retention, or a key an idle engine still holds could look expired.
 */
export function loadRetentionPolicy(
  env: NodeJS.ProcessEnv,
  opts: { dataKeyMaxAgeMs: number },
): RetentionPolicy {
  const file = resolve(env.HL7E_RETENTION_FILE || 'retention.yaml');
  const found = existsSync(file);
  const { doc, lineOf } = found ? readFile(file) : { doc: {}, lineOf: () => 1 };
  const text: Record<string, unknown> = { ...RETENTION_DEFAULTS, ...doc };
  // Where each value came from, for the error that names it: file:line: key, or the variable.
  const where: Record<string, string> = {};
  for (const k of Object.keys(doc)) where[k] = `${file}:${lineOf([k])}: ${k}`;
  const fromEnv = (key: string, name: string) => {
    const v = env[name];
    if (v !== undefined && v !== '') {
      text[key] = v;
      where[key] = name;
    }
  };
  for (const c of DATA_CLASSES) fromEnv(c, `HL7E_RETENTION_${c.toUpperCase()}`);
  fromEnv('allowShortAudit', 'HL7E_RETENTION_ALLOW_SHORT_AUDIT');
  fromEnv('schedule', 'HL7E_RETENTION_SCHEDULE');

  const ms = {} as Record<DataClass, number>;
  for (const c of DATA_CLASSES) ms[c] = duration(text[c], where[c] ?? c);
  const allowShortAudit = flag(text.allowShortAudit ?? false, where.allowShortAudit ?? 'allowShortAudit');
  const policy = {
    ...ms,
    schedule: flag(text.schedule ?? true, where.schedule ?? 'schedule'),
    intervalMs: intervalMs(env.HL7E_RETENTION_INTERVAL_MS),
    file: found ? file : undefined,
    warnings: [] as string[],
  };
  check(policy, allowShortAudit, opts.dataKeyMaxAgeMs);
  return Object.freeze(policy);
}

/** `90d`, `12w`, `1y`, `36h` → ms; `never` → Infinity. Anything else is a configuration error. */
export function parseRetention(value: unknown): number | undefined {
  if (value === 'never') return Number.POSITIVE_INFINITY;
  const m = typeof value === 'string' ? /^(\d+)\s*(h|d|w|y)$/.exec(value.trim()) : null;
  if (!m) return undefined;
  const unit = { h: HOUR, d: DAY, w: 7 * DAY, y: YEAR }[m[2] as 'h' | 'd' | 'w' | 'y'];
  return Number(m[1]) * unit;
}

/** A retention as people write it: whole years, weeks or days where it divides evenly. */
export function formatRetention(ms: number): string {
  if (ms === Number.POSITIVE_INFINITY) return 'never';
  for (const [unit, size] of [
    ['y', YEAR],
    ['w', 7 * DAY],
    ['d', DAY],
  ] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.round(ms / HOUR)}h`;
}

/**
 * The policy for a log line. `raw` is a redacted log key (logger.ts: a careless field of that name could
 * be a message), so the raw class is logged as `rawArchive`.
 */
export function retentionSummary(p: Pick<RetentionPolicy, DataClass>): Record<string, string> {
  return {
    rawArchive: formatRetention(p.raw),
    mapped: formatRetention(p.mapped),
    metadata: formatRetention(p.metadata),
    audit: formatRetention(p.audit),
  };
}

function check(p: RetentionPolicy, allowShortAudit: boolean, dataKeyMaxAgeMs: number): void {
  const fmt = formatRetention;
  // pruneArchive refuses a cutoff within the last day: the day's files may still be written.
  for (const c of DATA_CLASSES) {
    if (p[c] < DAY) invalid(`${c} (${fmt(p[c])}) must be at least 1d`);
  }
  // Deleting a message row deletes its deliveries and bodies, and the row is what says "pruned".
  for (const c of ['raw', 'mapped'] as const) {
    if (p[c] > p.metadata) {
      invalid(
        `${c} (${fmt(p[c])}) must not outlive metadata (${fmt(p.metadata)}): a message row must outlive its content`,
      );
    }
  }
  if (p.audit < AUDIT_MIN_MS) {
    if (!allowShortAudit) {
      invalid(
        `audit (${fmt(p.audit)}) is below 6y, the HIPAA §164.316(b)(2) minimum; set allowShortAudit: true to mean it`,
      );
    }
    (p.warnings as string[]).push(
      `audit retention ${fmt(p.audit)} is below the six years HIPAA §164.316(b)(2) asks for (allowShortAudit)`,
    );
  }
  const shortest = Math.min(p.raw, p.mapped);
  if (dataKeyMaxAgeMs > shortest) {
    invalid(
      `HL7E_DATA_KEY_MAX_AGE_MS (${dataKeyMaxAgeMs}) exceeds the shortest content retention (${fmt(shortest)}): data keys must rotate at least that often`,
    );
  }
}

function readFile(file: string): {
  doc: Record<string, unknown>;
  lineOf: (path: readonly string[]) => number;
} {
  const read = readYamlFile(file);
  if ('problems' in read) return invalid(read.problems.map(formatProblem).join('; '));
  const value = read.yaml.value ?? {};
  if (typeof value !== 'object' || Array.isArray(value))
    invalid(`${file}: expected a mapping of data classes`);
  for (const key of Object.keys(value)) {
    if (!FILE_KEYS.includes(key)) {
      const line = read.yaml.lineOf([key]);
      invalid(formatProblem({ file, line, key, message: `unknown key (one of ${FILE_KEYS.join(', ')})` }));
    }
  }
  return { doc: value as Record<string, unknown>, lineOf: read.yaml.lineOf };
}

function duration(value: unknown, where: string): number {
  const ms = parseRetention(value);
  if (ms === undefined) invalid(`${where} must be a duration with a unit (90d, 12w, 1y, 36h) or never`);
  return ms;
}

function flag(value: unknown, where: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 'on') return true;
  if (value === 'false' || value === '0' || value === 'off') return false;
  return invalid(`${where} must be true or false`);
}

function intervalMs(raw: string | undefined): number {
  if (raw === undefined || raw === '') return DEFAULT_RETENTION_INTERVAL_MS;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 100)
    invalid('HL7E_RETENTION_INTERVAL_MS must be an integer of at least 100');
  return n;
}

function invalid(detail: string): never {
  throw new EngineError('CONFIG_INVALID', { detail: `retention: ${detail}` });
}
