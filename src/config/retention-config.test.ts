import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import {
  AUDIT_MIN_MS,
  formatRetention,
  loadRetentionPolicy,
  parseRetention,
  retentionSummary,
} from './retention-config.js';

const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'hl7e-retention-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEY_AGE = { dataKeyMaxAgeMs: DAY };
let n = 0;
/** A retention file with this text, and the env that points at it. */
const withFile = (text: string, env: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv => {
  const file = join(dir, `retention-${n++}.yaml`);
  writeFileSync(file, text);
  return { HL7E_RETENTION_FILE: file, ...env };
};
const noFile = { HL7E_RETENTION_FILE: join(dir, 'absent.yaml') };

const problem = (env: NodeJS.ProcessEnv, opts = KEY_AGE): string => {
  try {
    loadRetentionPolicy(env, opts);
  } catch (err) {
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('CONFIG_INVALID');
    return (err as EngineError).message;
  }
  throw new Error('expected CONFIG_INVALID');
};

describe('retention policy', () => {
  it('defaults without a file: 90d raw and mapped, 1y metadata, 6y audit, daily', () => {
    const p = loadRetentionPolicy(noFile, KEY_AGE);
    expect(p).toMatchObject({
      raw: 90 * DAY,
      mapped: 90 * DAY,
      metadata: 366 * DAY,
      audit: AUDIT_MIN_MS,
      schedule: true,
      intervalMs: DAY,
      file: undefined,
      warnings: [],
    });
    expect(Object.isFrozen(p)).toBe(true);
    // As logged at start: `raw` is a redacted log key, so the class is named rawArchive there.
    expect(retentionSummary(p)).toEqual({ rawArchive: '90d', mapped: '90d', metadata: '1y', audit: '6y' });
  });

  it('reads the file, and the environment wins over it per key', () => {
    const env = withFile('raw: 30d\nmapped: 2w\nmetadata: 400d\naudit: never\nschedule: false\n', {
      HL7E_RETENTION_RAW: '45d',
      HL7E_RETENTION_INTERVAL_MS: '500',
    });
    const p = loadRetentionPolicy(env, KEY_AGE);
    expect(p).toMatchObject({
      raw: 45 * DAY,
      mapped: 14 * DAY,
      metadata: 400 * DAY,
      audit: Number.POSITIVE_INFINITY,
      schedule: false,
      intervalMs: 500,
      file: env.HL7E_RETENTION_FILE,
    });
  });

  it('says which file, line and key is wrong', () => {
    const env = withFile('raw: 30d\nmetadata: 90\n');
    expect(problem(env)).toBe(
      `configuration is invalid: retention: ${env.HL7E_RETENTION_FILE}:2: metadata must be a duration with a unit (90d, 12w, 1y, 36h) or never`,
    );
    const typo = withFile('raw: 30d\nmaped: 30d\n');
    expect(problem(typo)).toContain(`${typo.HL7E_RETENTION_FILE}:2: maped: unknown key`);
    expect(problem({ ...noFile, HL7E_RETENTION_MAPPED: 'soon' })).toContain(
      'HL7E_RETENTION_MAPPED must be a duration',
    );
    expect(problem(withFile('raw: [30d\n'))).toContain('YAML syntax');
  });

  it('keeps a message row at least as long as its content', () => {
    expect(problem({ ...noFile, HL7E_RETENTION_RAW: '2y' })).toContain(
      'raw (2y) must not outlive metadata (1y): a message row must outlive its content',
    );
    expect(problem({ ...noFile, HL7E_RETENTION_MAPPED: 'never' })).toContain(
      'mapped (never) must not outlive',
    );
    expect(loadRetentionPolicy({ ...noFile, HL7E_RETENTION_RAW: '1y' }, KEY_AGE).raw).toBe(366 * DAY);
  });

  it('refuses less than a day: the current day’s archive files are still being written', () => {
    expect(problem({ ...noFile, HL7E_RETENTION_RAW: '12h' })).toContain('raw (12h) must be at least 1d');
  });

  it('keeps audit six years unless a shorter time is explicitly allowed, then warns', () => {
    expect(problem({ ...noFile, HL7E_RETENTION_AUDIT: '5y' })).toContain(
      'audit (5y) is below 6y, the HIPAA §164.316(b)(2) minimum; set allowShortAudit: true',
    );
    const p = loadRetentionPolicy(withFile('audit: 2y\nallowShortAudit: true\n'), KEY_AGE);
    expect(p.audit).toBe(2 * 366 * DAY);
    expect(p.warnings).toEqual([
      'audit retention 2y is below the six years HIPAA §164.316(b)(2) asks for (allowShortAudit)',
    ]);
  });

  it('needs data keys to rotate at least as often as the shortest content retention', () => {
    expect(problem({ ...noFile, HL7E_RETENTION_MAPPED: '7d' }, { dataKeyMaxAgeMs: 30 * DAY })).toContain(
      'HL7E_DATA_KEY_MAX_AGE_MS (2592000000) exceeds the shortest content retention (1w)',
    );
  });

  it('parses and prints durations', () => {
    expect(parseRetention('36h')).toBe(36 * 3_600_000);
    expect(parseRetention('6y')).toBe(AUDIT_MIN_MS);
    expect(parseRetention('90')).toBeUndefined();
    expect(parseRetention(90)).toBeUndefined();
    expect(
      ['90d', '12w', '1y', 'never', '36h'].map((t) => formatRetention(parseRetention(t) as number)),
    ).toEqual(['90d', '12w', '1y', 'never', '36h']);
  });
});
