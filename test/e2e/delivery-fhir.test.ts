import type pg from 'pg';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEngine } from '../support/engine-fixture.js';
import type { EngineProcess, LogEntry } from '../support/engine-process.js';
import {
  HANG,
  okTransaction,
  operationOutcome,
  RESET,
  type RecordedRequest,
  type ScriptedResponse,
  TestFhirServer,
  tooManyRequests,
  unavailable,
} from '../support/fhir-server.js';
import { sendForAcks } from '../support/mllp-test-client.js';

// FHIR delivery in the real daemon (a child process) with real Postgres, Redis and MLLP, against real
// local HTTP FHIR servers that fail on a script. One daemon carries four channels, each with its own
// destination server, retry policy and breaker, so each scenario's counts are its own. Requests are
// attributed to messages by the Bundle's identifier.value (= MSH-10).

/** Made-up patients: ids and family names recognisable, so the PHI check can look for them. */
const PATIENTS = [
  ['ZQT7710001', 'Zorblattique'],
  ['ZQT7710002', 'Quixlebottom'],
  ['ZQT7710003', 'Frumpingtonia'],
  ['ZQT7710004', 'Wobbletonius'],
  ['ZQT7710005', 'Snickerbyne'],
  ['ZQT7710006', 'Grumbleweedle'],
  ['ZQT7710007', 'Plonkettish'],
  ['ZQT7710008', 'Dribbleworthy'],
] as const;
const PHI = PATIENTS.flat();

/** What a destination answers about a message it will never take; it echoes patient data, as servers do. */
const DIAGNOSTICS = `Observation.subject: Patient ${PATIENTS[1][1]} failed profile check ZZ-DIAG-4417`;

interface Sent {
  readonly controlId: string;
  readonly patient: number;
}

const oru = ({ controlId, patient }: Sent): string => {
  const [id, family] = PATIENTS[patient] as readonly [string, string];
  return `${[
    `MSH|^~\\&|LIS|FAKELAB|HL7E|HOSP|20260301111500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${id}^^^FAKEHOSP^MR||${family}^Testina||19010101|F`,
    `OBR|1|${controlId}P^EHR|${controlId}F^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301070000`,
    'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F',
  ].join('\r')}\r`;
};

/** `count` messages, patients taken in turn, so each patient's messages interleave with the others'. */
const messages = (prefix: string, count: number, patients: number): Sent[] =>
  Array.from({ length: count }, (_, i) => ({
    controlId: `${prefix}${String(i + 1).padStart(4, '0')}`,
    patient: i % patients,
  }));

interface Policy {
  readonly retry: { readonly attempts: number; readonly initialDelayMs: number; readonly maxDelayMs: number };
  readonly breaker: {
    readonly minimumRequests: number;
    readonly failureRatio: number;
    readonly openMs: number;
  };
  readonly timeoutMs: number;
}

/** One channel of the daemon: its MLLP port once started, and its FHIR destination. */
interface Lane {
  readonly name: string;
  readonly policy: Policy;
  readonly server: TestFhirServer;
  /** The destination's port, kept so a stopped server comes back where the daemon looks. */
  fhirPort: number;
  mllpPort: number;
}

const channelYaml = (lane: Lane): string => {
  const { retry, breaker, timeoutMs } = lane.policy;
  return [
    `name: ${lane.name}`,
    'source:',
    '  mllp: { port: 0, host: 127.0.0.1 }',
    'accept: [ORU^R01]',
    'destinations:',
    '  - name: ehr',
    `    retry: { attempts: ${retry.attempts}, initialDelayMs: ${retry.initialDelayMs}, maxDelayMs: ${retry.maxDelayMs} }`,
    `    circuitBreaker: { minimumRequests: ${breaker.minimumRequests}, failureRatio: ${breaker.failureRatio}, openMs: ${breaker.openMs} }`,
    `    fhir: { baseUrl: 'http://127.0.0.1:${lane.fhirPort}/fhir', timeoutMs: ${timeoutMs} }`,
    '',
  ].join('\n');
};

/** A breaker that never opens (cockatiel needs this many calls before it judges). */
const NEVER_OPENS = { minimumRequests: 1000, failureRatio: 0.5, openMs: 1000 };

const lanes = {
  flap: {
    name: 'flap',
    policy: {
      retry: { attempts: 8, initialDelayMs: 100, maxDelayMs: 800 },
      breaker: NEVER_OPENS,
      // Short, so hangs cost little; long enough that a busy machine does not time out a request the
      // server answered (that answer would then be a retry, and a 2xx one a second delivery).
      timeoutMs: 1500,
    },
  },
  breaker: {
    name: 'brk',
    policy: {
      retry: { attempts: 8, initialDelayMs: 100, maxDelayMs: 400 },
      breaker: { minimumRequests: 4, failureRatio: 0.5, openMs: 1500 },
      timeoutMs: 2000,
    },
  },
  outage: {
    name: 'outage',
    policy: {
      retry: { attempts: 200, initialDelayMs: 100, maxDelayMs: 400 },
      breaker: { minimumRequests: 4, failureRatio: 0.5, openMs: 500 },
      timeoutMs: 2000,
    },
  },
  exhaust: {
    name: 'exhaust',
    policy: {
      retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 100 },
      breaker: NEVER_OPENS,
      timeoutMs: 2000,
    },
  },
} as const;

/** Slack for scheduling on a loaded machine: enough for a busy event loop, far below a broken backoff. */
const EARLY_MS = 50;
const LATE_MS = 1_500;
/** A timeout's clock starts before its request is on the wire: more slack below after a hang. */
const HANG_EARLY_MS = 150;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let engine: EngineProcess;
let db: pg.Pool;
const running = {} as Record<keyof typeof lanes, Lane>;

beforeAll(async () => {
  const channels: Record<string, string> = {};
  for (const [key, spec] of Object.entries(lanes) as [
    keyof typeof lanes,
    (typeof lanes)[keyof typeof lanes],
  ][]) {
    const server = await new TestFhirServer().start();
    cleanups.push(() => server.close());
    const lane: Lane = { ...spec, server, fhirPort: Number(new URL(server.baseUrl).port), mllpPort: 0 };
    running[key] = lane;
    channels[lane.name] = channelYaml(lane);
  }
  // The outage scenario starts with its destination down: connection refused on its port.
  await running.outage.server.close();

  const run = await startEngine({
    label: 'deliverfhir',
    channels,
    env: {
      HL7E_RECONCILE_INTERVAL_MS: '1000',
      // Retry and delivered lines too, so the PHI check covers every line the delivery path writes.
      HL7E_LOG_LEVEL: 'debug',
    },
    // Generous: its conversion workers load the FHIR definitions, slow on a busy machine.
    listenTimeoutMs: 60_000,
  });
  cleanups.push(() => run.stop());
  ({ engine, db } = run);
  for (const lane of Object.values(running)) lane.mllpPort = run.ports[lane.name] as number;
}, 70_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

/** Sends the messages in order over one connection; resolves with MSA-1 by control id. */
const send = (lane: Lane, sent: readonly Sent[]) => sendForAcks(lane.mllpPort, sent.map(oru));

const allAA = (sent: readonly Sent[]) => Object.fromEntries(sent.map((m) => [m.controlId, 'AA']));

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (engine.proc.exitCode !== null)
      throw new Error(`engine exited (${engine.proc.exitCode}) waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const logLines = (msg: string, channel: string): LogEntry[] =>
  engine.entries.filter((e) => e.msg === msg && e.channel === channel);

interface DeliveryRow {
  control_id: string;
  status: string;
  attempts: number;
  last_error_class: string | null;
  message_status: string;
  last_error_code: string | null;
  id: string;
}

async function deliveries(lane: Lane): Promise<Map<string, DeliveryRow>> {
  const { rows } = await db.query<DeliveryRow>(
    `SELECT m.control_id, d.id, d.status, d.attempts, d.last_error_class, m.status AS message_status,
            m.last_error_code
       FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE d.channel = $1`,
    [lane.name],
  );
  return new Map(rows.map((r) => [r.control_id, r]));
}

interface AttemptRow {
  control_id: string;
  attempt: number;
  outcome: string;
  error_class: string | null;
  status_code: number | null;
  retry_after_ms: number | null;
  /** Epoch ms: when the attempt began (before its payload was built) and when it was recorded. */
  started: number;
  finished: number;
}

/** Every recorded attempt of the lane, by control id, in attempt order. */
async function attempts(lane: Lane): Promise<Map<string, AttemptRow[]>> {
  const { rows } = await db.query<AttemptRow>(
    `SELECT m.control_id, a.attempt, a.outcome, a.error_class, a.status_code, a.retry_after_ms,
            (extract(epoch FROM a.started_at) * 1000)::float8 AS started,
            (extract(epoch FROM a.finished_at) * 1000)::float8 AS finished
       FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id JOIN messages m ON m.id = d.message_id
      WHERE d.channel = $1 ORDER BY m.control_id, a.attempt`,
    [lane.name],
  );
  const out = new Map<string, AttemptRow[]>();
  for (const r of rows) out.set(r.control_id, [...(out.get(r.control_id) ?? []), r]);
  return out;
}

/** Waits until every message of the lane has a delivery and none is pending any more. */
async function settled(lane: Lane, count: number, timeoutMs = 60_000): Promise<Map<string, DeliveryRow>> {
  let rows = new Map<string, DeliveryRow>();
  await until(
    `${lane.name}: ${count} deliveries finished`,
    async () => {
      rows = await deliveries(lane);
      return rows.size === count && [...rows.values()].every((r) => r.status !== 'pending');
    },
    timeoutMs,
  );
  return rows;
}

const controlIdOf = (r: RecordedRequest): string =>
  (JSON.parse(r.body) as { identifier?: { value?: string } }).identifier?.value ?? '';

const is2xx = (a: ScriptedResponse | undefined): boolean =>
  a !== undefined && 'status' in a && a.status >= 200 && a.status <= 299;

/** The server's requests of each message, in arrival order. */
function requestsByMessage(server: TestFhirServer): Map<string, RecordedRequest[]> {
  const out = new Map<string, RecordedRequest[]>();
  for (const r of [...server.requests].sort((a, b) => a.at - b.at)) {
    const id = controlIdOf(r);
    out.set(id, [...(out.get(id) ?? []), r]);
  }
  return out;
}

/** Control id → how many of its requests the server answered with a 2xx. */
function successes(server: TestFhirServer): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of server.requests) {
    if (is2xx(r.answer)) out.set(controlIdOf(r), (out.get(controlIdOf(r)) ?? 0) + 1);
  }
  return out;
}

/**
 * Strict order per key: each patient's requests, in arrival order, never go back to an earlier message
 * (a later message is not tried before the earlier one has finished), and the messages the server
 * took are that patient's messages in send order, the dead-lettered ones left out.
 */
function expectOrderPerKey(server: TestFhirServer, sent: readonly Sent[], deadLettered: ReadonlySet<string>) {
  const position = new Map(sent.map((m, i) => [m.controlId, i]));
  const patientOf = new Map(sent.map((m) => [m.controlId, m.patient]));
  const arrivals = [...server.requests].sort((a, b) => a.at - b.at);
  for (const patient of new Set(sent.map((m) => m.patient))) {
    const mine = arrivals.filter((r) => patientOf.get(controlIdOf(r)) === patient);
    const tried = mine.map((r) => position.get(controlIdOf(r)) as number);
    expect(tried, `patient ${patient}: requests in send order`).toEqual([...tried].sort((a, b) => a - b));
    const took = mine.filter((r) => is2xx(r.answer)).map(controlIdOf);
    const expected = sent
      .filter((m) => m.patient === patient && !deadLettered.has(m.controlId))
      .map((m) => m.controlId);
    expect(took, `patient ${patient}: delivered in send order`).toEqual(expected);
  }
}

/** Every message taken exactly once by the server, and its delivery and message `delivered`. */
function expectDeliveredOnce(server: TestFhirServer, rows: Map<string, DeliveryRow>, sent: readonly Sent[]) {
  const taken = successes(server);
  for (const { controlId } of sent) {
    expect(taken.get(controlId), `${controlId}: 2xx answers`).toBe(1);
    expect(rows.get(controlId), controlId).toMatchObject({
      status: 'delivered',
      message_status: 'delivered',
    });
  }
}

/** What the delivery step must have recorded for an attempt the server answered with `a`. */
function recordedAs(
  a: ScriptedResponse | undefined,
): Pick<AttemptRow, 'outcome' | 'error_class' | 'status_code'> {
  if (a === undefined || 'hang' in a) return { outcome: 'retry', error_class: 'timeout', status_code: null };
  if ('reset' in a) return { outcome: 'retry', error_class: 'network', status_code: null };
  if (is2xx(a)) return { outcome: 'delivered', error_class: null, status_code: a.status };
  const retryable = a.status >= 500 || a.status === 429;
  return {
    outcome: retryable ? 'retry' : 'rejected',
    error_class: `http_${a.status}`,
    status_code: a.status,
  };
}

const retryAfterMs = (a: ScriptedResponse | undefined): number => {
  const v = a && 'status' in a ? a.headers?.['retry-after'] : undefined;
  return v === undefined ? 0 : Number(v) * 1000;
};

/**
 * Each wait between two attempts of one message against the retry policy (retry-policy.ts): the delay
 * after attempt n is between initialDelayMs and min(maxDelayMs, initialDelayMs·2^(n-1)), at least a
 * Retry-After. Lower bound: on the server's clock, from request to request (a hung request first costs
 * the timeout), which anything slow only lengthens. Upper bound: on the store's, from the failed attempt
 * recorded to the next one begun, which leaves out the answer's handling and the rebuilding of the Bundle
 * (on a loaded machine those queue behind intake for the conversion workers). Returns what broke the bounds.
 */
function delayViolations(
  byMessage: Map<string, RecordedRequest[]>,
  recorded: Map<string, AttemptRow[]>,
  policy: Policy,
): string[] {
  const { initialDelayMs, maxDelayMs } = policy.retry;
  const out: string[] = [];
  for (const [id, reqs] of byMessage) {
    const rows = recorded.get(id) ?? [];
    for (let j = 0; j + 1 < reqs.length; j++) {
      const prev = reqs[j] as RecordedRequest;
      const attempt = j + 1;
      const hung = prev.answer !== undefined && 'hang' in prev.answer;
      const after = retryAfterMs(prev.answer);
      const ceiling = Math.min(maxDelayMs, initialDelayMs * 2 ** (attempt - 1));
      const low =
        (hung ? policy.timeoutMs : 0) + Math.max(initialDelayMs, after) - (hung ? HANG_EARLY_MS : EARLY_MS);
      const gap = (reqs[j + 1] as RecordedRequest).at - prev.at;
      if (gap < low)
        out.push(`${id}: ${gap} ms between requests ${attempt} and ${attempt + 1}, below ${low}`);
      const high = Math.max(ceiling, after) + LATE_MS;
      const wait = Math.round((rows[j + 1]?.started ?? Number.NaN) - (rows[j]?.finished ?? Number.NaN));
      if (!(wait <= high))
        out.push(`${id}: ${wait} ms from attempt ${attempt} to ${attempt + 1}, above ${high}`);
    }
  }
  return out;
}

describe('FHIR delivery through the real daemon', () => {
  // The daemon's last lines say what it was doing (they hold no patient data: the last test checks).
  beforeEach(({ onTestFailed }) => onTestFailed(() => console.error(engine.output.slice(-6000))));

  it('delivers each message exactly once through 503 bursts, hangs, 429s and resets; dead-letters the 400s', async () => {
    const lane = running.flap;
    const sent = messages('FLAP', 60, 6);
    const at = new Map(sent.map((m, i) => [m.controlId, i]));
    /** Refused for good with an OperationOutcome, after a failure or two for one of them. */
    const permanent = new Set(['FLAP0008', 'FLAP0039']);
    // What each message meets besides the bursts, by its position; every fifth goes through at once.
    const patterns: ScriptedResponse[][] = [
      [HANG],
      [tooManyRequests('1')],
      [RESET, unavailable()],
      [],
      [unavailable(), unavailable(), RESET],
    ];
    const inBurst = (index: number) => (index >= 20 && index < 32) || (index >= 90 && index < 100);
    const consumed = new Map<string, number>();
    lane.server.script = (req, index) => {
      const id = controlIdOf(req);
      const earlier = lane.server.requests.filter((r) => r !== req && controlIdOf(r) === id).length;
      const final = permanent.has(id) ? operationOutcome(400, DIAGNOSTICS) : okTransaction();
      // At most 6 failures each, so 8 attempts always reach the final answer.
      if (earlier >= 6) return final;
      if (inBurst(index)) return unavailable();
      const k = consumed.get(id) ?? 0;
      consumed.set(id, k + 1);
      return patterns[(at.get(id) as number) % patterns.length]?.[k] ?? final;
    };

    expect(await send(lane, sent)).toEqual(allAA(sent));
    const rows = await settled(lane, sent.length);

    // The script ran every kind of trouble.
    const answers = lane.server.requests.map((r) => r.answer);
    expect(answers.some((a) => a && 'hang' in a)).toBe(true);
    expect(answers.some((a) => a && 'reset' in a)).toBe(true);
    expect(answers.filter((a) => a && 'status' in a && a.status === 503).length).toBeGreaterThan(20);
    expect(answers.some((a) => a && 'status' in a && a.status === 429)).toBe(true);
    // Its breaker stays closed: every wait below is the retry policy's alone.
    expect(logLines('circuit breaker opened', lane.name)).toEqual([]);

    const delivered = sent.filter((m) => !permanent.has(m.controlId));
    expectDeliveredOnce(lane.server, rows, delivered);
    for (const id of permanent) {
      expect(successes(lane.server).get(id)).toBeUndefined();
      expect(rows.get(id), id).toMatchObject({
        status: 'failed',
        last_error_class: 'http_400',
        message_status: 'failed',
        last_error_code: 'DELIVERY_FAILED',
      });
      // The OperationOutcome is kept, sealed: its text is not in the stored bytes.
      const { rows: bodies } = await db.query<{ ciphertext: Buffer }>(
        `SELECT ciphertext FROM delivery_bodies WHERE delivery_id = $1 AND kind = 'response'`,
        [rows.get(id)?.id],
      );
      expect(bodies.length, `${id}: sealed answers`).toBeGreaterThan(0);
      for (const b of bodies) {
        expect(b.ciphertext.length).toBeGreaterThan(0);
        expect(b.ciphertext.includes(Buffer.from('ZZ-DIAG-4417'))).toBe(false);
        expect(b.ciphertext.includes(Buffer.from('OperationOutcome'))).toBe(false);
      }
    }
    expectOrderPerKey(lane.server, sent, permanent);

    // The store's attempts are the requests the server saw, one for one, classified as answered.
    const byMessage = requestsByMessage(lane.server);
    const recorded = await attempts(lane);
    for (const { controlId } of sent) {
      const reqs = byMessage.get(controlId) ?? [];
      const rowsOf = recorded.get(controlId) ?? [];
      expect(rows.get(controlId)?.attempts, controlId).toBe(reqs.length);
      expect(
        rowsOf.map(({ outcome, error_class, status_code }) => ({ outcome, error_class, status_code })),
        controlId,
      ).toEqual(reqs.map((r) => recordedAs(r.answer)));
      expect(rowsOf.map((r) => r.attempt)).toEqual(reqs.map((_, i) => i + 1));
      for (const [i, r] of reqs.entries()) {
        if (retryAfterMs(r.answer) > 0) expect(rowsOf[i]?.retry_after_ms).toBe(1000);
      }
    }

    // Backoff within the policy's bounds, and a Retry-After of 1 s waited out.
    expect(delayViolations(byMessage, recorded, lane.policy)).toEqual([]);
    const after429 = [...byMessage.values()].flatMap((reqs) =>
      reqs
        .slice(0, -1)
        .flatMap((r, i) => (retryAfterMs(r.answer) > 0 ? [(reqs[i + 1] as RecordedRequest).at - r.at] : [])),
    );
    expect(after429.length).toBeGreaterThan(0);
    for (const gap of after429) expect(gap).toBeGreaterThanOrEqual(1000 - EARLY_MS);
  }, 90_000);

  it('opens the breaker: no requests while open, no attempts used; closes when the destination is back', async () => {
    const lane = running.breaker;
    const { openMs } = lane.policy.breaker;
    const keys = 5;
    const sent = messages('BRKR', 20, keys);
    let down = true;
    lane.server.script = () => (down ? unavailable() : okTransaction());

    expect(await send(lane, sent)).toEqual(allAA(sent));
    await until('the breaker to open', () => logLines('circuit breaker opened', lane.name).length > 0);
    // Its probe after openMs fails: it opens again.
    await until('the breaker to open again', () => logLines('circuit breaker opened', lane.name).length > 1);
    const opened = logLines('circuit breaker opened', lane.name).map((e) => e.time as number);
    expect(logLines('circuit breaker opened', lane.name)[0]).toMatchObject({ destination: 'ehr', openMs });
    down = false;
    await until('the breaker to close', () => logLines('circuit breaker closed', lane.name).length > 0);
    const rows = await settled(lane, sent.length);

    const failed = lane.server.requests.filter((r) => !is2xx(r.answer));
    // A request already on its way when the breaker opened may land just after the line: a margin.
    for (const t of opened) {
      const quiet = lane.server.requests.filter((r) => r.at > t + 250 && r.at < t + openMs - 200);
      expect(
        quiet.map((r) => r.at - t),
        `requests while open (opened at ${t})`,
      ).toEqual([]);
    }
    const closedAt = logLines('circuit breaker closed', lane.name)[0]?.time as number;
    expect(closedAt).toBeGreaterThan(opened.at(-1) as number);

    // While open, deliveries waited without using attempts. The failed requests are the ones that opened
    // it, those of other patients' head messages already under way then, and one probe per reopening:
    // not 20 messages × 8 attempts.
    const retries = [...(await attempts(lane)).values()].flat().filter((a) => a.outcome !== 'delivered');
    const allOpened = logLines('circuit breaker opened', lane.name).length;
    expect(retries.length).toBe(failed.length);
    expect(retries.length).toBeLessThanOrEqual(lane.policy.breaker.minimumRequests + keys + allOpened);
    expect(retries.every((a) => a.outcome === 'retry' && a.error_class === 'http_503')).toBe(true);

    expectDeliveredOnce(lane.server, rows, sent);
    expectOrderPerKey(lane.server, sent, new Set());
  }, 90_000);

  it('keeps ACKing while the destination is down, then drains the backlog in order', async () => {
    const lane = running.outage;
    const sent = messages('OUTG', 128, 8);
    const [first, second] = [sent.slice(0, 64), sent.slice(64)];
    lane.server.script = () => okTransaction();

    expect(await send(lane, first)).toEqual(allAA(first));
    await until('the breaker to open', () => logLines('circuit breaker opened', lane.name).length > 0);
    // Inbound does not wait for outbound: ACKed while the breaker is open and the port refuses.
    expect(await send(lane, second)).toEqual(allAA(second));
    await until(
      'every message processed into a pending delivery',
      async () => (await deliveries(lane)).size === 128,
    );
    // Down long enough for a probe to fail and open the breaker again.
    await until('a failed probe', () => logLines('circuit breaker opened', lane.name).length > 1);
    const during = await deliveries(lane);
    expect([...during.values()].filter((r) => r.status !== 'pending')).toEqual([]);
    const tried = [...(await attempts(lane)).values()].flat();
    expect(tried.length).toBeGreaterThan(0);
    expect(tried.every((a) => a.outcome === 'retry' && a.error_class === 'network')).toBe(true);

    const back = Date.now();
    await lane.server.start(lane.fhirPort);
    const rows = await settled(lane, sent.length);
    expect(logLines('circuit breaker closed', lane.name).some((e) => (e.time as number) >= back)).toBe(true);
    expectDeliveredOnce(lane.server, rows, sent);
    expectOrderPerKey(lane.server, sent, new Set());
  }, 90_000);

  it('dead-letters a message after its last attempt', async () => {
    const lane = running.exhaust;
    const [only] = messages('EXHS', 1, 1) as [Sent];
    lane.server.script = () => unavailable();

    expect(await send(lane, [only])).toEqual(allAA([only]));
    const rows = await settled(lane, 1);
    expect(rows.get(only.controlId)).toMatchObject({
      status: 'failed',
      attempts: 3,
      last_error_class: 'http_503',
      message_status: 'failed',
      last_error_code: 'DELIVERY_FAILED',
    });
    expect(lane.server.requests).toHaveLength(3);
    const recorded = await attempts(lane);
    expect(recorded.get(only.controlId)).toMatchObject(
      ['retry', 'retry', 'failed'].map((outcome, i) => ({
        control_id: only.controlId,
        attempt: i + 1,
        outcome,
        error_class: 'http_503',
        status_code: 503,
        retry_after_ms: null,
      })),
    );
    expect(delayViolations(requestsByMessage(lane.server), recorded, lane.policy)).toEqual([]);
    const failedLine = engine.entries.find((e) => e.msg === 'delivery failed' && e.channel === lane.name);
    expect(failedLine).toMatchObject({
      deliveryId: rows.get(only.controlId)?.id,
      errorClass: 'http_503',
      attempt: 3,
    });
  }, 60_000);

  it('writes no patient data and no destination answer into its logs', () => {
    expect(engine.entries.length).toBeGreaterThan(0);
    for (const phi of [...PHI, 'ZZ-DIAG-4417']) {
      expect(engine.output.includes(phi), `logs contain ${phi}`).toBe(false);
    }
  });
});
