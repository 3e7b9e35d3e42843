import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../support/engine-fixture.js';
import { CLI, type EngineProcess } from '../support/engine-process.js';
import { okTransaction, operationOutcome, TestFhirServer } from '../support/fhir-server.js';
import { controlIds } from '../support/mllp-ack.js';
import { frame, TestMllpClient } from '../support/mllp-test-client.js';

// `hl7e messages list/show` as an on-call engineer runs them: the built CLI as a process against the
// real daemon (Postgres, Redis, MLLP in, a FHIR destination that refuses one message). The listings
// must carry no patient data; content comes only with a reason, and every reveal — allowed, or refused
// for want of a role — is in the audit trail.

/** Made-up patients, recognisable so the PHI checks can look for them. */
const PATIENTS = [
  ['ZQOC880001', 'Wimbleshanks', 'Orlanda'],
  ['ZQOC880002', 'Quorvelling', 'Tibbets'],
  ['ZQOC880003', 'Frobisharde', 'Mellicent'],
  ['ZQOC880004', 'Pettigrubb', 'Aldous'],
  ['ZQOC880005', 'Scrimshanx', 'Berengar'],
] as const;
const PHI = PATIENTS.flat();

/** Refused by the FHIR server (400, an OperationOutcome echoing the patient, as servers do). */
const REFUSED = 'OCM0003';

function oru(controlId: string, p: readonly [string, string, string]): string {
  return `${[
    `MSH|^~\\&|LIS|FAKELAB|HL7E|HOSP|20260301111500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${p[0]}^^^FAKEHOSP^MR||${p[1]}^${p[2]}||19610203|F`,
    `OBR|1|PO${controlId}^EHR|FO${controlId}^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301070000`,
    'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F',
  ].join('\r')}\r`;
}

function adt(controlId: string, p: readonly [string, string, string]): string {
  return `${[
    `MSH|^~\\&|ADTSYS|FAKEHOSP|HL7E|HOSP|20260301120000||ADT^A01^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A01|20260301120000',
    `PID|1||${p[0]}^^^FAKEHOSP^MR||${p[1]}^${p[2]}||19700101|M`,
    'PV1|1|I|WARD^12^1',
  ].join('\r')}\r`;
}

const SENT: Record<string, string> = {
  OCM0001: oru('OCM0001', PATIENTS[0]),
  OCM0002: oru('OCM0002', PATIENTS[1]),
  OCM0003: oru('OCM0003', PATIENTS[2]),
  OCM0004: oru('OCM0004', PATIENTS[3]),
  OCM0005: adt('OCM0005', PATIENTS[4]),
};

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Buffer;
}

function run(env: Record<string, string>, args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, NO_COLOR: '1', ...env }, encoding: 'buffer' },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code, stdout: stdout.toString('utf8'), stderr: stderr.toString('utf8'), bytes: stdout });
      },
    );
  });
}

function expectNoPhi(text: string): void {
  for (const p of PHI) expect(text, `output carries ${p}`).not.toContain(p);
}

/** Table rows (below the header and its dashes), without the hint line. */
const rowsOf = (stdout: string) =>
  stdout
    .split('\n')
    .slice(2)
    .filter((l) => l.trim() !== '' && !l.startsWith('next page:'));

const controlIdsIn = (stdout: string) =>
  rowsOf(stdout)
    .map((l) => /OCM\d{4}/.exec(l)?.[0])
    .sort();

/** Each CLI run is a fresh node process (a second or more on a busy machine); tests run several. */
const CLI_TEST_MS = 180_000;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let engine: EngineProcess;
let db: pg.Pool;
let fhir: TestFhirServer;
let dataDir: string;
/** Control id → message id. */
const ids: Record<string, string> = {};
const oncall = () => ({ HL7E_DATA_DIR: dataDir, HL7E_OPERATOR: 'olga' });
const cli = (...args: string[]) => run(oncall(), args);

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function auditRows(): Promise<
  { seq: number; actor: string; action: string; target: string; reason: string | null; outcome: string }[]
> {
  const { rows } = await db.query(
    'SELECT seq::int AS seq, actor, action, target, reason, outcome FROM audit_events ORDER BY seq',
  );
  return rows;
}

beforeAll(async () => {
  fhir = await new TestFhirServer((req) => {
    const body = JSON.parse(req.body) as { identifier?: { value?: string } };
    return body.identifier?.value === REFUSED
      ? operationOutcome(400, `Patient ${PATIENTS[2][1]} failed profile check ZZ-OC-1`)
      : okTransaction();
  }).start();
  cleanups.push(() => fhir.close());

  const run = await startEngine({
    label: 'oncallmsgs',
    channels: {
      lab: [
        'name: lab',
        'source:',
        '  mllp: { port: 0, host: 127.0.0.1 }',
        'destinations:',
        '  - name: ehr',
        `    fhir: { baseUrl: '${fhir.baseUrl}', timeoutMs: 5000 }`,
        '    retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 100 }',
        '    circuitBreaker: { minimumRequests: 1000 }',
        '',
      ].join('\n'),
    },
    files: { 'roles.yaml': 'operators:\n  olga: [oncall]\n  ann: [analyst]\n' },
    env: { HL7E_RECONCILE_INTERVAL_MS: '1000' },
  });
  cleanups.push(() => run.stop());
  ({ engine, db, dataDir } = run);

  const client = await TestMllpClient.connect(run.ports.lab);
  try {
    client.write(Buffer.concat(Object.values(SENT).map((m) => frame(m))));
    const acks = await client.waitForFrames(Object.keys(SENT).length);
    expect(acks.map((a) => controlIds(a).msa1)).toEqual(Object.keys(SENT).map(() => 'AA'));
  } finally {
    client.destroy();
  }
  await until('every delivery finished', async () => {
    const { rows } = await db.query<{ control_id: string; id: string; status: string }>(
      `SELECT m.control_id, m.id, d.status FROM messages m JOIN deliveries d ON d.message_id = m.id`,
    );
    for (const r of rows) ids[r.control_id] = r.id;
    return rows.length === 5 && rows.every((r) => r.status !== 'pending');
  });
}, 90_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

describe('hl7e messages list', () => {
  it(
    'shows every message as a table with its delivery state, and no patient data',
    async () => {
      const r = await cli('messages', 'list');
      expect(r.code).toBe(0);
      const [header] = r.stdout.split('\n');
      expect(header).toMatch(
        /^RECEIVED\s+ID\s+CHANNEL\s+TYPE\s+CONTROL ID\s+SENDER\s+STATUS\s+ACK\s+ERROR\s+DELIVERIES$/,
      );
      expect(controlIdsIn(r.stdout)).toEqual(Object.keys(SENT));
      const refused = rowsOf(r.stdout).find((l) => l.includes(REFUSED)) ?? '';
      expect(refused).toContain(ids[REFUSED]);
      expect(refused).toMatch(
        /ORU\^R01\s+OCM0003\s+LIS\|FAKELAB\s+failed\s+AA\s+DELIVERY_FAILED\s+ehr:failed\(http_400\)$/,
      );
      const adtRow = rowsOf(r.stdout).find((l) => l.includes('OCM0005')) ?? '';
      expect(adtRow).toMatch(/ADT\^A01\s+OCM0005\s+ADTSYS\|FAKEHOSP\s+delivered\s+AA\s+-\s+ehr:delivered$/);
      expect(r.stdout).not.toContain('next page');
      expectNoPhi(r.stdout + r.stderr);
    },
    CLI_TEST_MS,
  );

  it(
    '--status failed finds exactly the dead-lettered message',
    async () => {
      const r = await cli('messages', 'list', '--status', 'failed');
      expect(r.code).toBe(0);
      expect(controlIdsIn(r.stdout)).toEqual([REFUSED]);
      expectNoPhi(r.stdout + r.stderr);
    },
    CLI_TEST_MS,
  );

  it(
    '--json gives every row with its codes and deliveries, and no patient data',
    async () => {
      const r = await cli('messages', 'list', '--json');
      expect(r.code).toBe(0);
      const page = JSON.parse(r.stdout) as {
        messages: {
          id: string;
          controlId: string;
          status: string;
          errorCode: string | null;
          deliveries: unknown[];
        }[];
        next: unknown;
      };
      expect(page.next).toBeNull();
      expect(page.messages.map((m) => m.controlId)).toEqual(Object.keys(SENT).reverse());
      expect(page.messages.find((m) => m.controlId === REFUSED)).toMatchObject({
        id: ids[REFUSED],
        status: 'failed',
        errorCode: 'DELIVERY_FAILED',
        deliveries: [{ destination: 'ehr', status: 'failed', attempts: 1, errorClass: 'http_400' }],
      });
      expectNoPhi(r.stdout);
    },
    CLI_TEST_MS,
  );

  it(
    'filters: --since/--until, --type, --control-id, --sender, --destination',
    async () => {
      const all = Object.keys(SENT);
      const cases: [string[], string[]][] = [
        [['--since', '1h'], all],
        [['--until', '1h'], []],
        [['--type', 'ORU^R01'], all.slice(0, 4)],
        [['--type', 'ADT'], ['OCM0005']],
        [['--control-id', 'OCM0002'], ['OCM0002']],
        [['--sender', 'FAKEHOSP'], ['OCM0005']],
        [['--destination', 'ehr'], all],
        [['--destination', 'ehr', '--status', 'failed'], [REFUSED]],
        [['--destination', 'nowhere'], []],
      ];
      // Side by side: each run is a process start, and they do not depend on each other.
      const runs = await Promise.all(cases.map(([args]) => cli('messages', 'list', ...args, '--json')));
      for (const [i, [args, want]] of cases.entries()) {
        const r = runs[i] as CliRun;
        expect(r.code, args.join(' ')).toBe(0);
        const page = JSON.parse(r.stdout) as { messages: { controlId: string }[] };
        expect(page.messages.map((m) => m.controlId).sort(), args.join(' ')).toEqual(want);
      }
      // What a person sees when nothing matches.
      expect(await cli('messages', 'list', '--until', '1h')).toMatchObject({
        code: 0,
        stdout: 'no messages match\n',
      });
    },
    CLI_TEST_MS,
  );

  it(
    'pages: the hint line is the command for the next page, until the last',
    async () => {
      const seen: string[] = [];
      let args = ['messages', 'list', '--since', '1h', '--limit', '2'];
      for (let page = 0; page < 5; page++) {
        const r = await cli(...args);
        expect(r.code).toBe(0);
        seen.push(...rowsOf(r.stdout).map((l) => /OCM\d{4}/.exec(l)?.[0] as string));
        const hint = r.stdout.split('\n').find((l) => l.startsWith('next page: hl7e '));
        if (!hint) break;
        expect(hint).toMatch(/--since \d{4}-\d\d-\d\dT[\d:.]+Z --limit 2 --cursor \d+$/);
        args = hint.slice('next page: hl7e '.length).split(' ');
      }
      expect(seen).toEqual(Object.keys(SENT).reverse());
    },
    CLI_TEST_MS,
  );

  it(
    'refuses a bad option value as a usage error',
    async () => {
      const r = await cli('messages', 'list', '--status', 'lost');
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    },
    CLI_TEST_MS,
  );
});

describe('hl7e messages show', () => {
  it(
    'prints metadata, a timeline with the attempt and its error class, and the errors; no patient data',
    async () => {
      const r = await cli('messages', 'show', ids[REFUSED] as string);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^id\s+[0-9a-f-]{36}$/m);
      expect(r.stdout).toMatch(/^control id\s+OCM0003$/m);
      expect(r.stdout).toMatch(/^status\s+failed DELIVERY_FAILED$/m);
      const timeline = r.stdout.slice(r.stdout.indexOf('\ntimeline\n'));
      expect(timeline).toMatch(/^ {2}\S+Z\s+received\s+ACK AA$/m);
      expect(timeline).toMatch(/^ {2}\S+Z\s+processed\s+.*mapping=/m);
      expect(timeline).toMatch(/^ {2}\S+Z\s+ehr\s+attempt 1: rejected\s+http_400\s+HTTP 400/m);
      expect(r.stdout).toMatch(/^errors\n {2}DELIVERY_FAILED at \S+\n {2}ehr: http_400 at \S+$/m);
      expectNoPhi(r.stdout + r.stderr);

      const json = await cli('messages', 'show', ids[REFUSED] as string, '--json');
      const detail = JSON.parse(json.stdout) as {
        message: { controlId: string };
        events: { event: string }[];
        deliveries: {
          destination: string;
          attemptLog: { attempt: number; outcome: string; errorClass: string; statusCode: number }[];
        }[];
      };
      expect(detail.message.controlId).toBe(REFUSED);
      expect(detail.events.map((e) => e.event)).toEqual(['processed']);
      expect(detail.deliveries[0]?.attemptLog).toMatchObject([
        { attempt: 1, outcome: 'rejected', errorClass: 'http_400', statusCode: 400 },
      ]);
      expectNoPhi(json.stdout);
    },
    CLI_TEST_MS,
  );

  it(
    'an unknown id is one line, exit 1; a reveal of it is audited as failed',
    async () => {
      const unknown = '00000000-0000-7000-8000-000000000000';
      const r = await cli('messages', 'show', unknown);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(
        /^hl7e: NOT_FOUND: no message 00000000-0000-7000-8000-000000000000 \(correlation id [0-9a-f-]+\)\n$/,
      );
      const reveal = await cli('messages', 'show', unknown, '--raw', '--reason', 'INC-4711 typo');
      expect(reveal.code).toBe(1);
      expect(reveal.stdout).toBe('');
      expect((await auditRows()).at(-1)).toMatchObject({
        actor: 'olga',
        action: 'messages.reveal',
        target: `${unknown} raw`,
        reason: 'INC-4711 typo',
        outcome: 'failed: NOT_FOUND',
      });
    },
    CLI_TEST_MS,
  );

  it(
    '--raw without --reason is a usage error: one line, exit 2, nothing revealed or recorded',
    async () => {
      const before = await auditRows();
      const r = await cli('messages', 'show', ids.OCM0002 as string, '--raw');
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      expect(r.stderr).toBe(
        'hl7e: --raw shows patient data: add --reason TEXT (recorded in the audit trail)\n',
      );
      expect(await auditRows()).toEqual(before);
    },
    CLI_TEST_MS,
  );

  it(
    '--raw --reason prints the message exactly as received and audits operator and reason',
    async () => {
      const r = await cli(
        'messages',
        'show',
        ids.OCM0002 as string,
        '--raw',
        '--reason',
        'INC-4711 lab feed',
      );
      expect(r.code).toBe(0);
      // Redirected: the exact bytes, nothing else on stdout.
      expect(r.bytes.equals(Buffer.from(SENT.OCM0002 as string))).toBe(true);
      expect(r.stderr).toContain('recorded in the audit trail as olga');
      expect((await auditRows()).at(-1)).toMatchObject({
        actor: 'olga',
        action: 'messages.reveal',
        target: `${ids.OCM0002} raw`,
        reason: 'INC-4711 lab feed',
        outcome: 'allowed',
      });
    },
    CLI_TEST_MS,
  );

  it(
    '--fhir --reason prints the Bundle that was delivered',
    async () => {
      const r = await cli(
        'messages',
        'show',
        ids.OCM0001 as string,
        '--fhir',
        '--reason',
        'INC-4711 check mapping',
      );
      expect(r.code).toBe(0);
      const delivered = fhir.requests.find(
        (q) => (JSON.parse(q.body) as { identifier?: { value?: string } }).identifier?.value === 'OCM0001',
      );
      expect(JSON.parse(r.stdout)).toEqual(JSON.parse(delivered?.body ?? 'null'));
      expect(JSON.parse(r.stdout)).toMatchObject({
        resourceType: 'Bundle',
        identifier: { value: 'OCM0001' },
      });
      expect(r.stderr).toContain('ehr: delivered in attempt 1');
      expect((await auditRows()).at(-1)).toMatchObject({
        actor: 'olga',
        action: 'messages.reveal',
        target: `${ids.OCM0001} fhir`,
        reason: 'INC-4711 check mapping',
        outcome: 'allowed',
      });

      // The refused one: the Bundle that was sent, labelled as not accepted.
      const refused = await cli('messages', 'show', ids[REFUSED] as string, '--fhir', '--reason', 'INC-4711');
      expect(refused.code).toBe(0);
      expect(JSON.parse(refused.stdout)).toMatchObject({
        resourceType: 'Bundle',
        identifier: { value: REFUSED },
      });
      expect(refused.stderr).toContain('ehr: sent in attempt 1, not accepted (failed)');
    },
    CLI_TEST_MS,
  );

  it(
    'an analyst may list but not reveal: exit 4, and the denial is audited',
    async () => {
      const analyst = { HL7E_DATA_DIR: dataDir, HL7E_OPERATOR: 'ann' };
      expect((await run(analyst, ['messages', 'list'])).code).toBe(0);
      const r = await run(analyst, [
        'messages',
        'show',
        ids.OCM0004 as string,
        '--raw',
        '--reason',
        'curious',
      ]);
      expect(r.code).toBe(4);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(
        /^hl7e: FORBIDDEN: operator ann may not messages\.reveal \(roles: analyst\).*\n$/,
      );
      expectNoPhi(r.stderr);
      expect((await auditRows()).at(-1)).toMatchObject({
        actor: 'ann',
        action: 'access.denied',
        target: `messages.reveal /messages/${ids.OCM0004}/reveal`,
        outcome: 'denied',
      });
    },
    CLI_TEST_MS,
  );

  it('the engine log carries no patient data from any of this', () => {
    expectNoPhi(engine.output);
  });
});

describe('without a running engine', () => {
  it(
    'says so in one line and exits 3',
    async () => {
      const empty = mkdtempSync(join(tmpdir(), 'hl7e-oncall-none-'));
      cleanups.push(() => rmSync(empty, { recursive: true, force: true }));
      const r = await run({ HL7E_DATA_DIR: empty }, ['messages', 'list']);
      expect(r.code).toBe(3);
      expect(r.stdout).toBe('');
      expect(r.stderr).toMatch(/^hl7e: no engine is running here \(no admin\.json in .+\)\n$/);
    },
    CLI_TEST_MS,
  );

  it(
    'an engine that died without cleaning up is unreachable too',
    async () => {
      await engine.kill('SIGKILL');
      const r = await cli('messages', 'show', ids.OCM0001 as string);
      expect(r.code).toBe(3);
      expect(r.stderr).toMatch(/^hl7e: no engine is running here \(pid \d+ in .+ does not answer\)\n$/);
    },
    CLI_TEST_MS,
  );
});
