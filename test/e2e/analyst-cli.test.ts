import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CORPUS_DIR } from '../support/corpus.js';
import { CLI } from '../support/engine-process.js';

// The analyst commands as an analyst runs them: the built CLI (`npm run build`) as a process.
const execCli = promisify(execFile);
const ADT_A01 = join(CORPUS_DIR, 'ms-fhir-converter/messages/ADT-A01-01.hl7');
const SIU_S12 = join(CORPUS_DIR, 'ms-fhir-converter/messages/SIU-S12-01.hl7');

interface Run {
  stdout: string;
  stderr: string;
  code: number;
}

async function cli(...args: string[]): Promise<Run> {
  try {
    const { stdout, stderr } = await execCli(process.execPath, [CLI, ...args], {
      env: { ...process.env, HL7E_DEBUG: '' },
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hl7e-analyst-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A made-up ADT^A01 (no real person) with a Z-segment. */
const WITH_ZSEGMENT = [
  'MSH|^~\\&|APP|FAC|DEST|DFAC|20240315103000+0100||ADT^A01|CTRL-Z-1|P|2.5',
  'PID|1||PAT-1^^^HOSP^MR||TESTPERSON^ALPHA||19800101|F',
  'ZPD|1|SITE-SPECIFIC|VALUE',
  '',
].join('\r');

describe('hl7e convert', () => {
  it('prints a transaction Bundle whose identifier is MSH-10, the same bytes every time', async () => {
    const first = await cli('convert', ADT_A01);
    expect(first.code).toBe(0);
    const bundle = JSON.parse(first.stdout) as {
      resourceType: string;
      type: string;
      identifier: { value: string };
    };
    expect(bundle.resourceType).toBe('Bundle');
    expect(bundle.type).toBe('transaction');
    const msh10 = readFileSync(ADT_A01, 'utf8')
      .split(/\r\n|\r|\n/)[0]!
      .split('|')[9];
    expect(bundle.identifier.value).toBe(msh10);
    const second = await cli('convert', ADT_A01);
    expect(second.stdout).toBe(first.stdout);
  });

  it('--report lists a Z-segment on stderr and keeps stdout pure JSON', async () => {
    const file = join(dir, 'with-z.hl7');
    writeFileSync(file, WITH_ZSEGMENT);
    const r = await cli('convert', file, '--report');
    expect(r.code).toBe(0);
    expect(() => JSON.parse(r.stdout)).not.toThrow();
    expect(r.stderr.split('\n')).toContain('not mapped: ZPD[1]');
    expect(r.stderr).not.toContain('SITE-SPECIFIC');
  });

  it('converts each message of a file into an array, and records the channel with --channel', async () => {
    const channels = join(dir, 'convert-channels');
    mkdirSync(channels);
    writeFileSync(
      join(channels, 'adt.yaml'),
      'name: adt-east\nsource:\n  mllp:\n    port: 0\ntimezone: America/New_York\n',
    );
    const file = join(dir, 'two.hl7');
    writeFileSync(file, `${WITH_ZSEGMENT}\n\n${WITH_ZSEGMENT.replace('CTRL-Z-1', 'CTRL-Z-2')}`);
    const r = await cli('convert', file, '--channel', 'adt-east', '--channels', channels);
    expect(r.code).toBe(0);
    const bundles = JSON.parse(r.stdout) as { identifier: { value: string } }[];
    expect(bundles.map((b) => b.identifier.value)).toEqual(['CTRL-Z-1', 'CTRL-Z-2']);
    expect(r.stdout).toContain('hl7-engine channel adt-east');
    const unknown = await cli('convert', file, '--channel', 'nope', '--channels', channels);
    expect(unknown.code).toBe(2);
  });

  it('fails on a malformed file with one line: a code, no stack, none of its content', async () => {
    const file = join(dir, 'malformed.hl7');
    writeFileSync(file, 'PID|1||999-FAKE||QUIXOTEFAKENAME^ZEBEDIAH||19700101|M\r');
    const r = await cli('convert', file);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^hl7e: HL7_[A-Z_]+: /);
    const all = r.stdout + r.stderr;
    for (const secret of ['QUIXOTEFAKENAME', 'ZEBEDIAH', '999-FAKE', '19700101'])
      expect(all).not.toContain(secret);
    expect(all).not.toMatch(/\n\s+at /);
  });

  it('fails on a message type no map covers with MAPPING_NONE', async () => {
    const r = await cli('convert', SIU_S12);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd()).toBe('hl7e: MAPPING_NONE: no mapping for message type SIU^S12');
  });
});

describe('hl7e channels test', () => {
  it('writes golden files with --update, passes, then shows the edited path when the expectation changes', async () => {
    const channels = join(dir, 'golden');
    mkdirSync(join(channels, 'adt.tests'), { recursive: true });
    writeFileSync(join(channels, 'adt.yaml'), 'name: adt\nsource:\n  mllp:\n    port: 0\naccept: [ADT^A*]\n');
    writeFileSync(join(channels, 'adt.tests', 'a01.hl7'), readFileSync(ADT_A01));
    const expectedFile = join(channels, 'adt.tests', 'a01.json');

    const missing = await cli('channels', 'test', channels);
    expect(missing.code).toBe(1);
    expect(missing.stdout).toMatch(/new +a01\.hl7 \(no a01\.json; run with --update/);

    const update = await cli('channels', 'test', channels, '--update');
    expect(update.code).toBe(0);
    expect(update.stdout).toMatch(/new +a01\.hl7 \(wrote a01\.json\)/);
    const written = readFileSync(expectedFile, 'utf8');
    expect(written.endsWith('}\n')).toBe(true);
    expect(written).toBe(`${JSON.stringify(JSON.parse(written), null, 2)}\n`);

    const pass = await cli('channels', 'test', channels);
    expect(pass.code).toBe(0);
    expect(pass.stdout).toMatch(/ok +a01\.hl7\n/);
    expect(pass.stdout).toContain('1 golden file(s): 1 ok, 0 failed');

    const edited = JSON.parse(written) as { identifier: { value: string } };
    const controlId = edited.identifier.value;
    edited.identifier.value = 'EDITED-CONTROL-ID';
    writeFileSync(expectedFile, `${JSON.stringify(edited, null, 2)}\n`);
    const fail = await cli('channels', 'test', channels);
    expect(fail.code).toBe(1);
    expect(fail.stdout).toMatch(/FAIL +a01\.hl7/);
    expect(fail.stdout).toContain(`identifier.value: - "EDITED-CONTROL-ID" + ${JSON.stringify(controlId)}`);
  });

  it('passes on the shipped channels: every golden Bundle is what the shipped mappings make', async () => {
    const shipped = new URL('../../channels/', import.meta.url).pathname;
    const r = await cli('channels', 'test', shipped);
    expect(r.stdout).toMatch(/24 golden file\(s\): 24 ok, 0 failed, 0 new, 0 updated/);
    expect(r.code).toBe(0);
  });

  it('says so for a channel without golden files', async () => {
    const channels = join(dir, 'no-golden');
    mkdirSync(channels);
    writeFileSync(join(channels, 'lab.yaml'), 'name: lab\nsource:\n  mllp:\n    port: 0\n');
    const r = await cli('channels', 'test', channels);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('lab: no golden files');
  });
});

describe('hl7e channels validate', () => {
  it('flags a channel naming a mapping that does not exist, and a problem inside a mapping file, by file:line', async () => {
    const channels = join(dir, 'validate');
    const site = join(dir, 'site-mappings');
    mkdirSync(channels);
    mkdirSync(join(site, 'messages'), { recursive: true });
    writeFileSync(
      join(channels, 'good.yaml'),
      'name: good\nsource:\n  mllp:\n    port: 0\naccept: [ADT^A01]\n',
    );
    writeFileSync(
      join(channels, 'missing.yaml'),
      'name: missing\nsource:\n  mllp:\n    port: 0\nmapping: NoSuchMap\n',
    );
    writeFileSync(
      join(channels, 'broken.yaml'),
      'name: broken\nsource:\n  mllp:\n    port: 0\nmapping: Broken\n',
    );
    writeFileSync(
      join(site, 'messages', 'Broken.yaml'),
      "message: Broken\naccepts: ['ZZZ^Z01']\nresources:\n  - name: patient\n    segment: PID\n    map: PID-Nowhere\n",
    );
    const r = await cli('channels', 'validate', channels, '--mappings', site);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^ok +good /m);
    expect(r.stdout).toContain(
      `invalid  ${join(channels, 'missing.yaml')}:5: mapping: mapping NoSuchMap is not defined`,
    );
    expect(r.stdout).toContain(
      `invalid  ${join(channels, 'broken.yaml')}:5: mapping: mapping Broken has 1 problem(s)`,
    );
    expect(r.stdout).toContain(
      `invalid  ${join(site, 'messages', 'Broken.yaml')}:6: resources.0.map: segment map PID-Nowhere is not defined`,
    );
    expect(r.stdout).toContain('\nmappings checked: ADT_A01, Broken, NoSuchMap\n');
  });
});
