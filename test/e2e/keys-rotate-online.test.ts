import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI, EngineProcess } from '../support/engine-process.js';

// `hl7e keys rotate` against a running engine on the embedded store (PGlite allows one process, so the
// CLI cannot open it): the engine rotates and re-wraps, the operator's role is checked, and both the
// rotation and a refusal land in the audit trail.

let dir: string;
let engine: EngineProcess;

function cli(operator: string, ...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, NO_COLOR: '1', HL7E_DATA_DIR: join(dir, 'data'), HL7E_OPERATOR: operator } },
      (err, stdout, stderr) =>
        resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hl7e-keys-online-'));
  mkdirSync(join(dir, 'channels'));
  writeFileSync(
    join(dir, 'channels', 'lab.yaml'),
    'name: lab\nsource:\n  mllp: { port: 0, host: 127.0.0.1 }\n',
  );
  writeFileSync(join(dir, 'roles.yaml'), 'operators:\n  kim: [admin, auditor]\n  sam: [analyst]\n');
  engine = new EngineProcess(join(dir, 'channels'), {
    HL7E_DATABASE_URL: '',
    HL7E_QUEUE_PREFIX: `keys-${randomBytes(4).toString('hex')}`,
    HL7E_DATA_DIR: join(dir, 'data'),
    HL7E_ARCHIVE_DIR: join(dir, 'archive'),
    HL7E_MAPPINGS_DIR: join(dir, 'mappings'),
    HL7E_ROLES_FILE: join(dir, 'roles.yaml'),
  });
  await engine.listening(['lab'], 60_000);
}, 90_000);

afterAll(async () => {
  await engine?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
}, 30_000);

describe('hl7e keys rotate with the engine running on the embedded store', () => {
  it('rotates through the engine for an admin, refuses an analyst, and audits both', async () => {
    const ok = await cli('kim', 'keys', 'rotate', '--reason', 'CHG-2291 yearly rotation');
    expect(ok.stderr).toBe('');
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(
      /master key rotated: lmk-0002-\S+ {2}\(local key file .*, by the running engine\)/,
    );
    // No message was written yet, so no archive data key: the ordering-key secret alone.
    expect(ok.stdout).toMatch(/data keys re-wrapped: 1 of 1/);

    const refused = await cli('sam', 'keys', 'rotate');
    expect(refused.code).toBe(4);
    expect(refused.stderr).toMatch(/FORBIDDEN: operator sam may not keys\.rotate/);

    const audit = await cli('kim', 'audit', 'list', '--json');
    expect(audit.code).toBe(0);
    const rows = (
      JSON.parse(audit.stdout) as {
        entries: { actor: string; action: string; reason: string | null; outcome: string }[];
      }
    ).entries;
    expect(rows).toContainEqual(
      expect.objectContaining({
        actor: 'kim',
        action: 'keys.rotate',
        reason: 'CHG-2291 yearly rotation',
        outcome: 'rotated; 1 of 1 data keys re-wrapped',
      }),
    );
    expect(rows).toContainEqual(
      expect.objectContaining({ actor: 'sam', action: 'access.denied', outcome: 'denied' }),
    );
  }, 120_000);
});
