import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAdminFile } from '../../src/admin/admin-file.js';
import { buildAck, parse, readMshHeader } from '../../src/hl7/index.js';
import { MllpListener } from '../../src/mllp/index.js';
import { loadCorpus } from '../support/corpus.js';
import { CLI, EngineProcess } from '../support/engine-process.js';
import { okTransaction, type ScriptedResponse, TestFhirServer } from '../support/fhir-server.js';
import { frame, TestMllpClient } from '../support/mllp-test-client.js';
import { formatHits, hitCounts, type PhiHit, PhiScanner } from '../support/phi-scan.js';
import {
  compressionRatio,
  databaseHaystacks,
  fileHaystacks,
  type Haystack,
  redisHaystacks,
} from '../support/phi-sources.js';
import { DROP_REASONS, engineText, extractPhi, PHI_KINDS } from '../support/phi-values.js';
import { createTestDatabase } from '../support/postgres.js';
import { freePort } from '../support/private-services.js';

// Issue 7, "What must show": the whole corpus through the real daemon (MLLP in; a FHIR destination that
// accepts, refuses with an OperationOutcome echoing the patient, or is unavailable; an MLLP peer that
// answers AA, AE or AR with the patient's name in its error text), so that intake, processing, mapping,
// delivery, retries, dead letters, replay and the error paths all run — then every log line, Redis key
// and value, archive byte, database column, metrics text, ACK and CLI output is searched for the names,
// identifiers, birth dates, addresses, phones and free text of those messages. Zero hits.

const ROOT = new URL('../../', import.meta.url).pathname;
const corpus = loadCorpus();
/** Names this test gives things (channels, destinations, operator): words of the engine's own text. */
const OWN_NAMES = ['corpus', 'narrow', 'ehr', 'lis', 'olga', 'broken', 'phileak'];
const phi = extractPhi(corpus, engineText(ROOT, OWN_NAMES));
const scanner = new PhiScanner(phi.needles);

const RETRY = 'retry: { attempts: 3, initialDelayMs: 50, maxDelayMs: 200 }';
/** The breaker is not under test: it must not park a destination that fails a fifth of the time. */
const NO_BREAKER = 'circuitBreaker: { minimumRequests: 100000 }';
const REASON = 'INC-7 PHI leak test';

/** A stable pick from 0-9 per request body or message: the same bytes get the same fate on every try. */
const bucket = (bytes: string | Buffer): number =>
  (createHash('sha256').update(bytes).digest()[0] as number) % 10;

/** What a realistic FHIR server echoes when it refuses a Bundle: the patient it could not take. */
function echoOf(body: string): string {
  const bundle = JSON.parse(body) as {
    identifier?: { value?: string };
    entry?: { resource?: Record<string, unknown> }[];
  };
  const patient = bundle.entry?.find((e) => e.resource?.resourceType === 'Patient')?.resource ?? {};
  const name = (patient.name as { family?: string; given?: string[] }[] | undefined)?.[0];
  const id = (patient.identifier as { value?: string }[] | undefined)?.[0]?.value;
  return `Patient ${name?.family ?? ''} ${name?.given?.join(' ') ?? ''} (${id ?? ''}, born ${
    patient.birthDate ?? ''
  }) in Bundle ${bundle.identifier?.value ?? ''} failed profile check`;
}

const outcome = (status: number, diagnostics: string): ScriptedResponse => ({
  status,
  body: { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'invalid', diagnostics }] },
});

/** 0-4: 200 · 5-6: 503 once, then 200 · 7: 503 always (dead letter) · 8-9: 400 echoing the patient. */
function fhirScript(): (req: { body: string }) => ScriptedResponse {
  const tries = new Map<string, number>();
  return (req) => {
    const key = createHash('sha256').update(req.body).digest('hex');
    const n = (tries.get(key) ?? 0) + 1;
    tries.set(key, n);
    const b = bucket(req.body);
    if (b <= 4 || (b <= 6 && n > 1)) return okTransaction();
    if (b <= 7) return outcome(503, `busy; ${echoOf(req.body)}`);
    return outcome(400, echoOf(req.body));
  };
}

/** The patient a message names, as an MLLP peer's error text would quote it. */
function patientOf(raw: string): string {
  try {
    const m = parse(raw);
    return `${m.get('PID-5-1')} ${m.get('PID-5-2')} ${m.get('PID-3-1')}`;
  } catch {
    return '';
  }
}

/** The MLLP peer: 0-5 AA · 6-7 AE once, then AA · 8 AE always (dead letter) · 9 AR. */
async function startPeer(): Promise<{ listener: MllpListener; port: number; received: string[] }> {
  const received: string[] = [];
  const tries = new Map<string, number>();
  const listener = new MllpListener({
    port: 0,
    handler: async (raw) => {
      const text = raw.toString('utf8');
      received.push(text);
      const header = readMshHeader(text);
      const n = (tries.get(text) ?? 0) + 1;
      tries.set(text, n);
      const b = bucket(raw);
      const error = { condition: '204', text: `Unknown patient ${patientOf(text)}` } as const;
      if (b <= 5 || (b <= 7 && n > 1)) return buildAck(header, { mode: 'original', outcome: 'accept' });
      if (b <= 8) return buildAck(header, { mode: 'original', outcome: 'error', error });
      return buildAck(header, { mode: 'original', outcome: 'reject', error });
    },
    onHandlerError: () => undefined,
  });
  const { port } = await listener.listen();
  return { listener, port, received };
}

interface CliRun {
  readonly args: readonly string[];
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  /** The exit code the command should end with, when the test checks it. */
  readonly expected?: number;
}

function runCli(env: Record<string, string>, args: readonly string[]): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { ...process.env, NO_COLOR: '1', ...env }, maxBuffer: 64 << 20, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ args, code, stdout, stderr });
      },
    );
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

/**
 * Sends every message over one connection, one at a time, and collects the answers. A message whose
 * MSH-15 asks for no commit ACK (NE, or ER when all goes well) may get none: it gets a short wait.
 */
async function sendAll(port: number, texts: readonly string[]): Promise<string[]> {
  const client = await TestMllpClient.connect(port);
  try {
    for (const text of texts) {
      const before = client.frames.length;
      client.write(frame(text));
      const mayStaySilent = msh15Valued(text);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.waitForFrames(before + 1).catch(() => []),
        new Promise((r) => {
          timer = setTimeout(r, mayStaySilent ? 1_500 : 60_000);
        }),
      ]);
      clearTimeout(timer);
      if (!mayStaySilent && client.frames.length === before) throw new Error('no ACK');
    }
    return client.frames.map((f) => f.toString('utf8'));
  } finally {
    client.destroy();
  }
}

/** MSH-15 (AL, NE, ER, SU) decides whether a commit ACK comes. */
function msh15Valued(text: string): boolean {
  try {
    return readMshHeader(text).acceptAckType !== '';
  } catch {
    return false; // unreadable: NAKed
  }
}

/** Corpus messages broken the ways senders break them: a bad segment name, bad encoding characters, no MSH. */
function brokenMessages(): string[] {
  const adt = corpus.find((c) => c.id.endsWith('ADT-A01-01.hl7'))?.text as string;
  const note = phi.needles.find((n) => n.kind === 'freeText')?.value as string;
  return [
    adt.replace(/([\r\n])PID\|/, '$1P#D|').replace('|MSG00001|', '|PHILEAK-BAD-SEG|'),
    adt.replace('MSH|^~\\&|', 'MSH|^^\\&|'),
    `${note}\r${adt.slice(adt.search(/[\r\n]PID\|/) + 1)}`,
  ];
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let dir: string;
let engine: EngineProcess;
let db: pg.Pool;
let redis: Redis;
let prefix: string;
let fhir: TestFhirServer;
let peer: Awaited<ReturnType<typeof startPeer>>;
let ports: Record<string, number>;
const acks: string[] = [];
/** Outputs that must carry no PHI, and the deliberate, audited reveal kept apart. */
const cliRuns: CliRun[] = [];
let reveal: CliRun;
/** Haystacks that must be clean, gathered once everything has run. */
let haystacks: Haystack[] = [];

async function counts(sql: string): Promise<Record<string, number>> {
  const { rows } = await db.query<{ k: string; n: number }>(sql);
  return Object.fromEntries(rows.map((r) => [r.k, r.n]));
}

/** Every message processed (none left `received`) and every delivery ended (none `pending`). */
async function settled(): Promise<boolean> {
  const { rows } = await db.query<{ waiting: number; pending: number }>(
    `SELECT (SELECT count(*)::int FROM messages WHERE status = 'received') AS waiting,
            (SELECT count(*)::int FROM deliveries WHERE status = 'pending') AS pending`,
  );
  return rows[0]?.waiting === 0 && rows[0]?.pending === 0;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hl7e-phileak-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  fhir = await new TestFhirServer(fhirScript()).start();
  cleanups.push(() => fhir.close());
  peer = await startPeer();
  cleanups.push(() => peer.listener.close());

  const channels = join(dir, 'channels');
  mkdirSync(channels);
  mkdirSync(join(dir, 'mappings'));
  writeFileSync(
    join(channels, 'corpus.yaml'),
    [
      'name: corpus',
      'source:',
      '  mllp: { port: 0, host: 127.0.0.1 }',
      // FHIR validation at run time too: its issues are recorded, so they must carry no values.
      'validate: true',
      'destinations:',
      '  - name: ehr',
      `    fhir: { baseUrl: '${fhir.baseUrl}', timeoutMs: 10000 }`,
      `    ${RETRY}`,
      `    ${NO_BREAKER}`,
      '  - name: lis',
      `    mllp: { host: 127.0.0.1, port: ${peer.port}, ackTimeoutMs: 10000 }`,
      `    ${RETRY}`,
      `    ${NO_BREAKER}`,
      '',
    ].join('\n'),
  );
  // Intake's refusals (types not accepted: AR) and the channel filter, for the same messages.
  writeFileSync(
    join(channels, 'narrow.yaml'),
    [
      'name: narrow',
      'source:',
      '  mllp: { port: 0, host: 127.0.0.1 }',
      'accept: [ADT^A*, ORU^R01]',
      'filter: { path: PV1-2, equals: I }',
      '',
    ].join('\n'),
  );

  const database = await createTestDatabase('phileak');
  cleanups.push(() => database.drop());
  prefix = `phileak-${randomBytes(4).toString('hex')}`;
  redis = new Redis(process.env.HL7E_REDIS_URL ?? 'redis://127.0.0.1:6379');
  cleanups.push(async () => {
    const keys = await redis.keys(`*${prefix}*`);
    if (keys.length > 0) await redis.del(...keys);
    redis.disconnect();
  });
  engine = new EngineProcess(channels, {
    HL7E_DATABASE_URL: database.url,
    HL7E_QUEUE_PREFIX: prefix,
    HL7E_DATA_DIR: join(dir, 'data'),
    HL7E_ARCHIVE_DIR: join(dir, 'archive'),
    HL7E_MAPPINGS_DIR: join(dir, 'mappings'),
    HL7E_RECONCILE_INTERVAL_MS: '1000',
    // Debug lines too: they are searched like the rest.
    HL7E_LOG_LEVEL: 'debug',
  });
  cleanups.push(() => engine.kill('SIGKILL'));
  db = new pg.Pool({ connectionString: database.url, max: 2 });
  db.on('error', () => {});
  cleanups.push(() => db.end());
  // Generous: conversion workers load the FHIR definitions, slow on a busy machine.
  ports = await engine.listening(['corpus', 'narrow'], 90_000);

  // The corpus, in order, over three connections to `corpus` and one to `narrow`; then the broken ones.
  const texts = corpus.map((c) => c.text);
  const lanes = [0, 1, 2].map((k) => texts.filter((_, i) => i % 3 === k));
  const answers = await Promise.all([
    ...lanes.map((lane) => sendAll(ports.corpus as number, lane)),
    sendAll(ports.narrow as number, texts),
  ]);
  acks.push(...answers.flat(), ...(await sendAll(ports.corpus as number, brokenMessages())));
  await until('every message processed and every delivery ended', settled, 150_000);

  const env = {
    HL7E_DATA_DIR: join(dir, 'data'),
    HL7E_OPERATOR: 'olga',
    HL7E_MAPPINGS_DIR: join(dir, 'mappings'),
  };
  const cli = (...args: string[]) => runCli(env, args);
  // The dead letters once more, as on-call would after a fix; they fail the same way again.
  const replayed = await cli('replay', '--channel', 'corpus', '--status', 'failed', '--reason', REASON);
  cliRuns.push({ ...replayed, expected: 0 });
  await sleep(500);
  await until('the replayed deliveries ended', settled, 90_000);

  const { rows } = await db.query<{ id: string }>(
    `SELECT m.id FROM messages m JOIN deliveries d ON d.message_id = m.id
      WHERE m.channel = 'corpus' AND d.status = 'failed' AND d.destination = 'ehr' ORDER BY m.seq LIMIT 1`,
  );
  const failedId = rows[0]?.id as string;
  const files = offlineFiles(join(dir, 'files'));
  const closedPort = await freePort();
  // Each with the exit code it documents: 1 not found or a problem found, 2 usage or bad input, 3 peer
  // unreachable.
  const runs: [exit: number, args: string[]][] = [
    [1, ['messages', 'show', '00000000-0000-7000-8000-000000000000']],
    [1, ['messages', 'show', 'not-an-id']],
    [0, ['messages', 'show', failedId]],
    [0, ['messages', 'show', failedId, '--json']],
    [2, ['messages', 'show', failedId, '--raw']],
    [2, ['messages', 'show', failedId, '--fhir']],
    [2, ['replay', failedId]],
    [0, ['replay', '--channel', 'corpus', '--status', 'failed', '--dry-run', '--reason', REASON]],
    [1, ['status']],
    [1, ['status', '--json']],
    [0, ['messages', 'list', '--status', 'failed']],
    [0, ['messages', 'list', '--status', 'failed', '--json']],
    [0, ['messages', 'list', '--channel', 'corpus', '--limit', '500', '--json']],
    [0, ['audit', 'list', '--json']],
    [2, ['convert', files.malformed]],
    [2, ['convert', files.unmapped]],
    [2, ['parse', files.broken]],
    [2, ['parse', files.broken, '--path', 'PID-5-1']],
    [3, ['send', files.message, '--host', '127.0.0.1', '--port', String(closedPort), '--timeout', '3000']],
    [1, ['send', files.noMsh, '--host', '127.0.0.1', '--port', String(ports.corpus), '--timeout', '10000']],
    [1, ['channels', 'validate', files.channels]],
  ];
  // A few at a time: each is a node process, and the machine may have two cores.
  for (let i = 0; i < runs.length; i += 4) {
    const batch = runs.slice(i, i + 4);
    const done = await Promise.all(batch.map(([, args]) => cli(...args)));
    cliRuns.push(...done.map((r, k) => ({ ...r, expected: batch[k]?.[0] })));
  }
  // Its stdout is the Bundle, on purpose (an analyst's own file); what it reports on stderr is not.
  const converted = await cli('convert', files.message, '--report', '--validate');
  cliRuns.push({ ...converted, stdout: '', expected: 0 });
  // The deliberate, audited reveal: kept apart, and the positive control of the search.
  reveal = await cli('messages', 'show', failedId, '--raw', '--reason', REASON);

  const admin = readAdminFile(join(dir, 'data'));
  if (!admin) throw new Error('no admin.json');
  const open = await Promise.all(
    ['/metrics', '/healthz', '/readyz'].map(async (p) => ({
      source: `admin GET ${p}`,
      data: await (await fetch(`${admin.url}${p}`)).text(),
    })),
  );
  haystacks = [
    { source: 'daemon log (stdout + stderr)', data: engine.output },
    ...acks.map((a, i) => ({ source: `ACK ${i + 1} to a sender`, data: a })),
    ...(await redisHaystacks(redis, `*${prefix}*`)),
    ...(await databaseHaystacks(db)),
    ...fileHaystacks(join(dir, 'archive'), 'archive'),
    ...fileHaystacks(join(dir, 'data'), 'data dir'),
    ...open,
    ...cliRuns.flatMap((r) => [
      { source: `hl7e ${r.args.join(' ')} (exit ${r.code}) stdout`, data: r.stdout },
      { source: `hl7e ${r.args.join(' ')} (exit ${r.code}) stderr`, data: r.stderr },
    ]),
  ];
  const bytes = (p: string) =>
    haystacks.filter((h) => h.source.startsWith(p)).reduce((n, h) => n + h.data.length, 0);
  console.info(
    `searched ${haystacks.length} sources: daemon log ${bytes('daemon')} B, ${acks.length} ACKs, ` +
      `${haystacks.filter((h) => h.source.startsWith('redis')).length} Redis keys (${bytes('redis')} B), ` +
      `${haystacks.filter((h) => h.source.startsWith('db')).length} columns (${bytes('db')} B), ` +
      `archive ${bytes('archive')} B, data dir ${bytes('data dir')} B, admin ${bytes('admin')} B, ` +
      `${cliRuns.length} CLI runs (${bytes('hl7e')} B); ${scanner.size} values in texts, ${scanner.binarySize} in bytes`,
  );
}, 420_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 60_000);

/** Files for the offline commands, made from corpus messages. */
function offlineFiles(at: string) {
  mkdirSync(at, { recursive: true });
  const byId = (suffix: string) => corpus.find((c) => c.id.endsWith(suffix))?.text as string;
  const adt = byId('ADT-A01-01.hl7');
  const oru = byId('ORU-R01-01.hl7');
  const files = {
    message: join(at, 'message.hl7'),
    malformed: join(at, 'malformed.hl7'),
    unmapped: join(at, 'unmapped.hl7'),
    broken: join(at, 'broken.hl7'),
    noMsh: join(at, 'nomsh.hl7'),
    channels: join(at, 'channels'),
  };
  writeFileSync(files.message, oru);
  writeFileSync(files.malformed, oru.replace(/([\r\n])OBX\|/, '$1O#X|'));
  writeFileSync(files.unmapped, byId('SIU-S12-01.hl7'));
  writeFileSync(files.broken, adt.replace('MSH|^~\\&|', 'MSH|^^\\&|'));
  writeFileSync(files.noMsh, adt.slice(adt.search(/[\r\n]PID\|/) + 1));
  // A channel with an error beside a filter on a patient identifier (analysts do write those).
  mkdirSync(files.channels);
  const mrn = phi.needles.find((n) => n.kind === 'identifier')?.value as string;
  writeFileSync(
    join(files.channels, 'broken.yaml'),
    [
      'name: broken',
      'source:',
      '  mllp: { port: 99999 }',
      `filter: { path: PID-3-1, equals: '${mrn}' }`,
      'mapping: NoSuchMap',
      '',
    ].join('\n'),
  );
  return files;
}

/** Hits of every needle in some haystacks. */
const hitsIn = (hs: readonly Haystack[]): PhiHit[] => hs.flatMap((h) => scanner.scan(h.source, h.data));

const report = (hits: readonly PhiHit[]) =>
  `${hits.length} PHI value(s) found:\n${formatHits(hits)}\nper source and kind: ${JSON.stringify(hitCounts(hits))}`;

function sources(prefixes: readonly string[]): Haystack[] {
  return haystacks.filter((h) => prefixes.some((p) => h.source.startsWith(p)));
}

describe('PHI leak: the whole corpus through the daemon, then every place data rests or leaves by', () => {
  it('searches hundreds of distinct values, of every kind', () => {
    console.info(
      `PHI needles: ${phi.needles.length} searched (${JSON.stringify(phi.byKind)}) of ${phi.candidates} distinct values read; dropped ${JSON.stringify(phi.dropped)} — ${Object.entries(
        DROP_REASONS,
      )
        .map(([k, v]) => `${k}: ${v}`)
        .join('; ')}`,
    );
    expect(phi.unreadable).toEqual([]);
    expect(phi.needles.length).toBeGreaterThan(600);
    for (const kind of PHI_KINDS) expect(phi.byKind[kind], kind).toBeGreaterThan(40);
  });

  it('ran intake, mapping, delivery, retries, dead letters, refusals, replay and the error paths', async () => {
    const messages = await counts(
      `SELECT channel || ' ' || status AS k, count(*)::int AS n FROM messages GROUP BY 1`,
    );
    const deliveries = await counts(
      `SELECT destination || ' ' || status AS k, count(*)::int AS n FROM deliveries GROUP BY 1`,
    );
    const attempts = await counts(
      `SELECT d.destination || ' ' || a.outcome AS k, count(*)::int AS n
         FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id GROUP BY 1`,
    );
    const events = await counts(`SELECT event AS k, count(*)::int AS n FROM message_events GROUP BY 1`);
    console.info(JSON.stringify({ messages, deliveries, attempts, events }));
    expect(messages['corpus failed']).toBeGreaterThan(0);
    expect(messages['corpus delivered']).toBeGreaterThan(0);
    expect(messages['narrow rejected']).toBeGreaterThan(0);
    for (const d of ['ehr', 'lis']) {
      expect(deliveries[`${d} delivered`], d).toBeGreaterThan(10);
      expect(deliveries[`${d} failed`], d).toBeGreaterThan(3);
      expect(attempts[`${d} retry`], d).toBeGreaterThan(3);
      expect(attempts[`${d} rejected`], d).toBeGreaterThan(3);
    }
    // Unmapped types went to the MLLP peer only; mapped ones to both.
    const ended = (d: string) => (deliveries[`${d} delivered`] ?? 0) + (deliveries[`${d} failed`] ?? 0);
    expect(ended('lis')).toBeGreaterThan(ended('ehr'));
    const { rows } = await db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM deliveries WHERE replayed_at IS NOT NULL',
    );
    expect(rows[0]?.n).toBeGreaterThan(0);
    // Every NAK path: not accepted (narrow), unreadable (no MSH, bad encoding characters).
    expect(acks.some((a) => /\rMSA\|AR\|/.test(a))).toBe(true);
    const exits = cliRuns
      .filter((r) => r.expected !== undefined)
      .map((r) => `${r.args.join(' ')} → ${r.code}`);
    expect(exits).toEqual(
      cliRuns.filter((r) => r.expected !== undefined).map((r) => `${r.args.join(' ')} → ${r.expected}`),
    );
  });

  it('finds the values where they are meant to be (the search works): FHIR requests, the peer, the reveal', () => {
    const found = (where: string, texts: readonly string[]) =>
      new Set(scanner.scan(where, texts.join('\n')).map((h) => h.needle));
    // The FHIR server got every kind; the MLLP peer (raw forwarding of every corpus message, mapped or
    // not) every value the corpus holds as written.
    const sent = found(
      'FHIR requests',
      fhir.requests.map((r) => r.body),
    );
    expect(new Set([...sent].map((n) => n.kind))).toEqual(new Set(PHI_KINDS));
    const written = found(
      'corpus',
      corpus.map((c) => c.text),
    );
    const forwarded = found('MLLP peer', peer.received);
    const missing = [...written].filter((n) => !forwarded.has(n));
    expect(written.size).toBeGreaterThan(phi.needles.length * 0.8);
    expect(missing.map((n) => n.value)).toEqual([]);
    expect(reveal.code).toBe(0);
    expect(scanner.scan('reveal', reveal.stdout).length).toBeGreaterThan(3);
  });

  it('no PHI in the daemon log (every line, debug included)', () => {
    const logs = sources(['daemon log']);
    expect(String(logs[0]?.data).split('\n').length).toBeGreaterThan(300);
    const hits = hitsIn(logs);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in the ACKs and NAKs the engine returned to senders', () => {
    const hits = hitsIn(sources(['ACK ']));
    expect(acks.length).toBeGreaterThan(corpus.length * 1.5);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in any Redis key or value under the engine’s prefix', () => {
    const keys = sources(['redis ']);
    expect(keys.length).toBeGreaterThan(10);
    const hits = hitsIn(keys);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in the archive, which is ciphertext, nor in the data dir', () => {
    const archive = sources(['archive ']);
    const bytes = Buffer.concat(archive.map((h) => h.data as Uint8Array));
    expect(bytes.length).toBeGreaterThan(corpus.reduce((n, c) => n + c.text.length, 0));
    expect(compressionRatio(bytes)).toBeGreaterThan(0.95);
    const hits = hitsIn([...archive, ...sources(['data dir '])]);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in any column of any table; delivery bodies are ciphertext', () => {
    const columns = sources(['db ']);
    expect(columns.map((c) => c.source)).toEqual(
      expect.arrayContaining(['db messages.sender', 'db message_events.detail', 'db audit_events.reason']),
    );
    const bodies = columns.find((c) => c.source === 'db delivery_bodies.ciphertext')?.data as Uint8Array;
    expect(bodies.length).toBeGreaterThan(100_000);
    expect(compressionRatio(bodies)).toBeGreaterThan(0.95);
    const hits = hitsIn(columns);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in metrics and health (open, unauthenticated)', () => {
    const open = sources(['admin GET']);
    expect(String(open[0]?.data)).toMatch(/^# HELP /m);
    const hits = hitsIn(open);
    expect(hits, report(hits)).toEqual([]);
  });

  it('no PHI in CLI output: errors, refusals, listings, status, offline commands', () => {
    const outputs = sources(['hl7e ']);
    expect(outputs.length).toBe(cliRuns.length * 2);
    const hits = hitsIn(outputs);
    expect(hits, report(hits)).toEqual([]);
  });
});
