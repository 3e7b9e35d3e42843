import { execFile } from 'node:child_process';
import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEngine } from '../support/engine-fixture.js';
import { CLI, type EngineProcess } from '../support/engine-process.js';
import { okTransaction, type RecordedRequest, TestFhirServer, unavailable } from '../support/fhir-server.js';
import { controlIds } from '../support/mllp-ack.js';
import { frame, TestMllpClient } from '../support/mllp-test-client.js';

// The 3 a.m. incident of issue 6, start to end, as one story against the real daemon (its own Postgres
// database, Redis prefix and directories; MLLP in; a TestFhirServer as the EHR) and driven only through
// the built CLI, as the on-call engineer olga would: the EHR answers 503 while a lab sends results, every
// one is ACKed and then dead-lettered; olga finds them, looks at one (with a reason), replays them when
// the EHR is back, and each lands exactly once, in order per patient; the auditor ines then reads the
// trail and catches a row altered in the database. No output and no log line carries patient data.

/** Made-up patients (MRN, family, given, birth date), recognisable so the PHI checks can look for them. */
const PATIENTS = [
  ['ZQIN550001', 'Brambleworth', 'Ottoline', '19610203'],
  ['ZQIN550002', 'Cragglethorpe', 'Lysander', '19720415'],
  ['ZQIN550003', 'Dunnimarsh', 'Perpetua', '19830726'],
] as const;
const PHI = PATIENTS.flat();

/** Twelve results, the three patients' interleaved as a lab's feed would send them. */
const SENT = Array.from({ length: 12 }, (_, i) => {
  const controlId = `INC${String(i + 1).padStart(4, '0')}`;
  const patient = i % PATIENTS.length;
  return { controlId, patient, text: oru(controlId, PATIENTS[patient] as (typeof PATIENTS)[number]) };
});
const CONTROL_IDS = SENT.map((m) => m.controlId);

function oru(controlId: string, [mrn, family, given, born]: (typeof PATIENTS)[number]): string {
  return `${[
    `MSH|^~\\&|LIS|FAKELAB|HL7E|HOSP|20260301031500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${mrn}^^^FAKEHOSP^MR||${family}^${given}||${born}|F`,
    `OBR|1|PO${controlId}^EHR|FO${controlId}^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301030000`,
    'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F',
  ].join('\r')}\r`;
}

interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly bytes: Buffer;
}

/** Each CLI run is a fresh node process: a second or two on a busy machine, and a step runs several. */
const STEP_MS = 120_000;
const INCIDENT = 'INC-1234';

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let engine: EngineProcess;
let db: pg.Pool;
let fhir: TestFhirServer;
let dataDir: string;
let ehrDown = true;
/** Requests the EHR had seen once the replay was delivered: no later step may add any. */
let requestsAfterReplay = -1;
/** Control id → message id. */
const ids: Record<string, string> = {};
/** Everything the CLI printed that must be free of patient data (a reveal's content on stdout is not). */
const transcript: string[] = [];

function run(operator: string, args: readonly string[], revealsContent = false): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      {
        env: { ...process.env, NO_COLOR: '1', HL7E_DATA_DIR: dataDir, HL7E_OPERATOR: operator },
        encoding: 'buffer',
      },
      (err, stdout, stderr) => {
        const r = {
          code: err ? ((err as { code?: number }).code ?? 1) : 0,
          stdout: stdout.toString('utf8'),
          stderr: stderr.toString('utf8'),
          bytes: stdout,
        };
        transcript.push(revealsContent ? r.stderr : r.stdout + r.stderr);
        resolve(r);
      },
    );
  });
}
/** The on-call engineer (role oncall). */
const olga = (...args: string[]) => run('olga', args);
/** The auditor (role auditor), who reads the trail afterwards. */
const ines = (...args: string[]) => run('ines', args);

function expectNoPhi(text: string): void {
  for (const p of PHI) expect(text, `carries ${p}`).not.toContain(p);
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Watching the store (never acting on it): control id → delivery status. */
async function deliveryStates(): Promise<Map<string, string>> {
  const { rows } = await db.query<{ control_id: string; id: string; status: string }>(
    'SELECT m.control_id, m.id, d.status FROM messages m JOIN deliveries d ON d.message_id = m.id',
  );
  for (const r of rows) ids[r.control_id] = r.id;
  return new Map(rows.map((r) => [r.control_id, r.status]));
}

const allIn = (states: Map<string, string>, status: string) =>
  states.size === SENT.length && [...states.values()].every((s) => s === status);

const controlIdOf = (r: RecordedRequest) =>
  (JSON.parse(r.body) as { identifier?: { value?: string } }).identifier?.value ?? '';
const is2xx = (r: RecordedRequest) => r.answer !== undefined && 'status' in r.answer && r.answer.status < 300;

/** Table rows of `messages list` (below the header and its dashes). */
const controlIdsListed = (stdout: string) =>
  stdout
    .split('\n')
    .slice(2)
    .map((l) => /INC\d{4}/.exec(l)?.[0])
    .filter((c) => c !== undefined)
    .sort();

beforeAll(async () => {
  fhir = await new TestFhirServer(() => (ehrDown ? unavailable() : okTransaction())).start();
  cleanups.push(() => fhir.close());

  const run = await startEngine({
    label: 'oncallinc',
    channels: {
      // Short retries so the outage dead-letters quickly; a breaker that does not open, so every message
      // uses its attempts rather than waiting on it.
      lab: [
        'name: lab',
        'source:',
        '  mllp: { port: 0, host: 127.0.0.1 }',
        'destinations:',
        '  - name: ehr',
        `    fhir: { baseUrl: '${fhir.baseUrl}', timeoutMs: 5000 }`,
        '    retry: { attempts: 3, initialDelayMs: 100, maxDelayMs: 300 }',
        '    circuitBreaker: { minimumRequests: 1000 }',
        '',
      ].join('\n'),
    },
    files: { 'roles.yaml': 'operators:\n  olga: [oncall]\n  ines: [auditor]\n' },
    listenTimeoutMs: 60_000,
  });
  cleanups.push(() => run.stop());
  ({ engine, db, dataDir } = run);
}, 90_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

describe('the 3 a.m. incident: the EHR is down, lab results dead-letter, on-call replays them', () => {
  // The daemon's last lines say what it was doing (free of patient data: the last step checks).
  beforeEach(({ onTestFailed }) => onTestFailed(() => console.error(engine.output.slice(-6000))));

  it(
    '1. the EHR answers 503 while the lab sends 12 results: each is ACKed AA, then dead-lettered after 3 attempts',
    async () => {
      const port = engine.entries.find((e) => e.msg === 'listening' && e.channel === 'lab')?.port as number;
      const client = await TestMllpClient.connect(port);
      try {
        client.write(Buffer.concat(SENT.map((m) => frame(m.text))));
        const acks = await client.waitForFrames(SENT.length);
        expect(acks.map((a) => controlIds(a))).toEqual(
          CONTROL_IDS.map((c) => expect.objectContaining({ msa1: 'AA', msa2: c })),
        );
      } finally {
        client.destroy();
      }
      await until('every delivery dead-lettered', async () => allIn(await deliveryStates(), 'failed'));
      // Every attempt reached the EHR and was refused: three per message, none taken.
      for (const c of CONTROL_IDS) {
        expect(
          fhir.requests.filter((r) => controlIdOf(r) === c).map((r) => r.answer),
          c,
        ).toEqual([unavailable(), unavailable(), unavailable()]);
      }
    },
    STEP_MS,
  );

  it(
    '2. hl7e status: exit 1, naming the destination, its dead letters and the last error class',
    async () => {
      const [text, json] = await Promise.all([olga('status'), olga('status', '--json')]);
      expect(text.code).toBe(1);
      expect(text.stdout).toMatch(/^lab\s+up\s+127\.0\.0\.1:\d+\s+\d+\s+12\s+12\s+12\s+-$/m);
      // DESTINATION TYPE BREAKER BACKLOG RETRYING HELD-BACK HELD DEAD LAST-SUCCESS LAST-ERROR
      expect(text.stdout).toMatch(
        /^lab\/ehr\s+fhir\s+closed\s+0\s+0\s+0\s+0\s+12\s+-\s+http_503 \(\d+ s ago\)$/m,
      );
      expect(text.stdout).toContain('attention: destination lab/ehr: 12 dead letters (hl7e replay)\n');

      expect(json.code).toBe(1);
      const report = JSON.parse(json.stdout) as {
        attention: string[];
        destinations: { channel: string; name: string; deadLetters: number; lastErrorClass: string }[];
      };
      expect(report.attention).toEqual(['destination lab/ehr: 12 dead letters (hl7e replay)']);
      expect(report.destinations).toMatchObject([
        { channel: 'lab', name: 'ehr', breaker: 'closed', deadLetters: 12, lastErrorClass: 'http_503' },
      ]);
    },
    STEP_MS,
  );

  it(
    '3. messages list --status failed finds exactly the 12; messages show gives the failed attempts',
    async () => {
      const id = ids.INC0001 as string;
      const [list, show] = await Promise.all([
        olga('messages', 'list', '--status', 'failed'),
        olga('messages', 'show', id),
      ]);
      expect(list.code).toBe(0);
      expect(controlIdsListed(list.stdout)).toEqual(CONTROL_IDS);
      for (const row of list.stdout.split('\n').slice(2).filter(Boolean)) {
        expect(row).toMatch(
          /ORU\^R01\s+INC\d{4}\s+LIS\|FAKELAB\s+failed\s+AA\s+DELIVERY_FAILED\s+ehr:failed\(http_503\)$/,
        );
      }

      expect(show.code).toBe(0);
      expect(show.stdout).toMatch(/^control id\s+INC0001$/m);
      expect(show.stdout).toMatch(/^status\s+failed DELIVERY_FAILED$/m);
      const timeline = show.stdout.slice(show.stdout.indexOf('\ntimeline\n'));
      expect(timeline).toMatch(/^ {2}\S+Z\s+ehr\s+attempt 1: retry\s+http_503\s+HTTP 503/m);
      expect(timeline).toMatch(/^ {2}\S+Z\s+ehr\s+attempt 2: retry\s+http_503\s+HTTP 503/m);
      expect(timeline).toMatch(/^ {2}\S+Z\s+ehr\s+attempt 3: failed\s+http_503\s+HTTP 503/m);
      expect(show.stdout).toMatch(/^ {2}ehr\s+failed\s+3\s+http_503 \(HTTP 503\)/m);
      expect(show.stdout).toMatch(/^errors\n {2}DELIVERY_FAILED at \S+\n {2}ehr: http_503 at \S+$/m);
    },
    STEP_MS,
  );

  it(
    '4. messages show --raw --reason: the message as received, recorded with operator and reason',
    async () => {
      const id = ids.INC0002 as string;
      const r = await run(
        'olga',
        ['messages', 'show', id, '--raw', '--reason', `${INCIDENT} check payload`],
        true,
      );
      expect(r.code).toBe(0);
      expect(r.bytes.equals(Buffer.from(SENT[1]?.text as string))).toBe(true);
      expect(r.stderr).toContain(`raw content of ${id} revealed; recorded in the audit trail as olga`);
    },
    STEP_MS,
  );

  it(
    '5. the EHR is back: a dry run counts 12; the replay sends 12, each taken once, in order per patient; again: nothing',
    async () => {
      ehrDown = false;
      const before = fhir.requests.length;
      const since = ['--channel', 'lab', '--status', 'failed', '--since', '1h'];

      const dry = await olga('replay', ...since, '--dry-run', '--reason', `${INCIDENT} preview`);
      expect(dry.code).toBe(0);
      // Today's mappings build the same Bundles that were sent: a preview line per message, no change.
      const previews = dry.stdout.split('\n').filter((l) => l.includes(' → ehr: '));
      expect(previews.sort()).toEqual(CONTROL_IDS.map((c) => `${ids[c]} → ehr: no change`).sort());
      expect(dry.stdout).toContain(
        'dry run: 12 message(s) matched\nwould replay: 12 deliveries (from raw), 0 message(s) reprocessed\n' +
          'skipped: 0 in flight, 0 already delivered, 0 not replayable\n',
      );
      expect(allIn(await deliveryStates(), 'failed')).toBe(true);
      expect(fhir.requests.length).toBe(before);

      const replay = await olga('replay', ...since, '--reason', `${INCIDENT} EHR back`);
      expect(replay.code).toBe(0);
      expect(replay.stdout).toBe(
        '12 message(s) matched\nreplayed: 12 deliveries (from raw), 0 message(s) reprocessed\n' +
          'skipped: 0 in flight, 0 already delivered, 0 not replayable\nfollow with: hl7e status\n',
      );
      await until('every replayed delivery delivered', async () =>
        allIn(await deliveryStates(), 'delivered'),
      );

      // Each result taken exactly once, and each patient's in the order the lab sent them.
      const taken = fhir.requests.filter(is2xx).sort((a, b) => a.at - b.at);
      expect(taken.map(controlIdOf).sort()).toEqual(CONTROL_IDS);
      for (const [p] of PATIENTS.entries()) {
        const mine = new Set(SENT.filter((m) => m.patient === p).map((m) => m.controlId));
        expect(
          taken.map(controlIdOf).filter((c) => mine.has(c)),
          `patient ${p}`,
        ).toEqual([...mine]);
      }
      requestsAfterReplay = fhir.requests.length;

      // The same replay again: nothing is failed any more, so nothing matches (exit 1) and nothing is sent.
      const again = await olga('replay', ...since, '--reason', `${INCIDENT} EHR back`);
      expect(again.code).toBe(1);
      expect(again.stdout).toBe(
        '0 message(s) matched\nreplayed: 0 deliveries (from raw), 0 message(s) reprocessed\n' +
          'skipped: 0 in flight, 0 already delivered, 0 not replayable\n',
      );
      // Named by id, the same messages match but are already delivered: skipped, none sent again.
      const byId = await olga(
        'replay',
        ...CONTROL_IDS.map((c) => ids[c] as string),
        '--reason',
        `${INCIDENT} recheck`,
      );
      expect(byId.code).toBe(0);
      expect(byId.stdout).toBe(
        '12 message(s) matched\nreplayed: 0 deliveries (from raw), 0 message(s) reprocessed\n' +
          'skipped: 0 in flight, 12 already delivered, 0 not replayable\n',
      );
      expect(allIn(await deliveryStates(), 'delivered')).toBe(true);
      expect(fhir.requests.length).toBe(requestsAfterReplay);

      // The message's own story now ends with the replay and the attempt that got through.
      const show = await olga('messages', 'show', ids.INC0001 as string);
      expect(show.stdout).toMatch(/^status\s+delivered\b/m);
      expect(show.stdout).toMatch(/^ {2}\S+Z\s+ehr\s+replayed \(from raw\)$/m);
      expect(show.stdout).toMatch(/^ {2}\S+Z\s+ehr\s+attempt \d+: delivered\s+HTTP 200/m);
    },
    STEP_MS,
  );

  it(
    '6. hl7e status: exit 0, nothing needs attention',
    async () => {
      const r = await olga('status');
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/^lab\/ehr\s+fhir\s+closed\s+0\s+0\s+0\s+0\s+0\s+\d+ s ago\s/m);
      expect(r.stdout.trimEnd().split('\n').at(-1)).toBe('nothing needs attention');
    },
    STEP_MS,
  );

  it(
    '7. the audit trail holds the reveal and every replay with operator and reason; verify catches an altered row',
    async () => {
      const list = await ines('audit', 'list', '--json');
      expect(list.code).toBe(0);
      const { entries } = JSON.parse(list.stdout) as {
        entries: {
          seq: number;
          actor: string;
          action: string;
          target: string;
          reason: string;
          outcome: string;
        }[];
      };
      const reveal = entries.find((e) => e.action === 'messages.reveal');
      expect(reveal).toMatchObject({
        actor: 'olga',
        target: `${ids.INC0002} raw`,
        reason: `${INCIDENT} check payload`,
        outcome: 'allowed',
      });
      const replays = entries
        .filter((e) => e.action.startsWith('replay'))
        .map(({ actor, action, reason, outcome }) => ({ actor, action, reason, outcome }));
      const done = (n: number, delivered: number) =>
        `done: ${n} deliveries, 0 reprocessed, skipped 0 in flight, ${delivered} delivered, 0 not replayable`;
      expect(replays).toEqual(
        [
          ['replay.preview', 'preview', 'started'],
          ['replay.preview', 'preview', done(12, 0)],
          ['replay', 'EHR back', 'started'],
          ['replay', 'EHR back', done(12, 0)],
          ['replay', 'EHR back', 'started'],
          ['replay', 'EHR back', done(0, 0)],
          ['replay', 'recheck', 'started'],
          ['replay', 'recheck', done(0, 12)],
        ].map(([action, why, outcome]) => ({ actor: 'olga', action, reason: `${INCIDENT} ${why}`, outcome })),
      );
      expect(entries.find((e) => e.action === 'replay')?.target).toMatch(
        /^channel=lab status=failed since=\S+Z$/,
      );

      const intact = await ines('audit', 'verify');
      expect(intact.code).toBe(0);
      expect(intact.stdout).toMatch(/^audit chain intact: \d+ entries, head seq \d+ hash [0-9a-f]{64}\n$/);

      // Someone with database access rewrites why the payload was looked at: the chain breaks there, and
      // verify says how far it can still be trusted.
      const intactBefore = (n: number) =>
        n === 1 ? 'no entry before it is intact' : `entries up to seq ${n - 1} are intact`;
      const seq = reveal?.seq as number;
      await db.query(`UPDATE audit_events SET reason = 'tampered' WHERE seq = $1`, [seq]);
      const broken = await ines('audit', 'verify');
      expect(broken.code).toBe(1);
      expect(broken.stdout).toMatch(
        new RegExp(
          `^audit chain broken at seq ${seq} \\(hash\\): .*altered after it was written; ${intactBefore(seq)}\\n$`,
        ),
      );
    },
    STEP_MS,
  );

  it('8. nothing reached the EHR after the replay; no CLI output and no daemon log line carried patient data', () => {
    expect(fhir.requests.length).toBe(requestsAfterReplay);
    expect(transcript.length).toBeGreaterThan(10);
    for (const text of transcript) expectNoPhi(text);
    expect(engine.entries.length).toBeGreaterThan(0);
    expectNoPhi(engine.output);
  });
});
