import type { AddressInfo } from 'node:net';
import { type Hl7MessageEvent, Hl7Server } from '@medplum/hl7';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AckError, buildAck } from '../../src/hl7/ack-builder.js';
import { readMshHeader } from '../../src/hl7/index.js';
import { MllpListener } from '../../src/mllp/index.js';
import { startEngine } from '../support/engine-fixture.js';
import type { EngineProcess, LogEntry } from '../support/engine-process.js';
import { sendForAcks } from '../support/mllp-test-client.js';

// The MLLP destination in the real daemon (real Postgres, Redis, MLLP in) against real MLLP peers this
// file starts: the engine's own listener with a scripted handler (AA, AE, AR, or no answer at all), and
// @medplum/hl7's Hl7Server. One daemon serves one channel per scenario, each with its own peer.

interface Patient {
  readonly id: string;
  readonly family: string;
  readonly given: string;
}

/** Made-up patients, recognisable so the PHI checks can look for them. */
const PATIENTS: readonly Patient[] = [
  { id: 'ZQMLP70001', family: 'Fakeworthy', given: 'Plimsolla' },
  { id: 'ZQMLP70002', family: 'Nonesuchby', given: 'Quillifer' },
  { id: 'ZQMLP70003', family: 'Madeupson', given: 'Zebulina' },
  { id: 'ZQMLP70004', family: 'Notrealle', given: 'Grimwaldo' },
];
const PHI = PATIENTS.flatMap((p) => [p.id, p.family, p.given]);

/** A synthetic ORU^R01 whose PID-3 (the default ordering key) names `patient`. */
function oru(controlId: string, patient: Patient, value: number): string {
  return [
    `MSH|^~\\&|LIS|FAKELAB|HL7E|HOSP|20260301111500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||${patient.id}^^^FAKEHOSP^MR||${patient.family}^${patient.given}||19610203|F`,
    `OBR|1|PO${controlId}^EHR|FO${controlId}^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301070000`,
    `OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||${value}|g/dL^g/dL^UCUM|12-16|N|||F`,
    '',
  ].join('\r');
}

/** What the scripted peer does with the `nth` copy of message `id` it receives. */
type Reply = 'AA' | 'AE' | 'AR' | 'silent';

const OUTCOMES = {
  AA: { outcome: 'accept' },
  AE: { outcome: 'error', error: { condition: '207', text: 'Try again later' } },
  AR: { outcome: 'reject', error: { condition: '200', text: 'Not taken here' } },
} as const satisfies Record<Exclude<Reply, 'silent'>, { outcome: string; error?: AckError }>;

interface Peer {
  readonly port: number;
  /** Every frame received, in arrival order, with its MSH-10. */
  readonly frames: { id: string; raw: Buffer }[];
  /** Connections the engine opened to the peer. */
  connections(): number;
  /** How many copies of message `id` arrived. */
  copies(id: string): number;
}

const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

/** The engine's own MLLP listener as the destination, answering per `script` (ACKs by ack-builder.ts). */
async function startPeer(script: (id: string, nth: number) => Reply): Promise<Peer> {
  const frames: { id: string; raw: Buffer }[] = [];
  let connections = 0;
  let release!: () => void;
  // A peer that "stops answering" hangs in its handler, as a wedged application does; released at the end.
  const silence = new Promise<void>((resolve) => {
    release = resolve;
  });
  const copies = (id: string) => frames.filter((f) => f.id === id).length;
  const listener = new MllpListener({
    port: 0,
    handler: async (raw) => {
      const header = readMshHeader(raw.toString('utf8'));
      frames.push({ id: header.controlId, raw });
      const reply = script(header.controlId, copies(header.controlId));
      if (reply === 'silent') {
        await silence;
        return undefined;
      }
      return buildAck(header, { mode: 'original', ...OUTCOMES[reply] });
    },
    onHandlerError: () => undefined,
    onEvent: (e) => {
      if (e.type === 'connection') connections++;
    },
  });
  const { port } = await listener.listen();
  cleanups.push(async () => {
    release();
    await listener.close();
  });
  return { port, frames, connections: () => connections, copies };
}

/** @medplum/hl7's server as a third-party peer: answers every message with its own AA. */
async function startMedplumPeer(): Promise<{ port: number; received: string[] }> {
  const received: string[] = [];
  const server = new Hl7Server((connection) => {
    connection.addEventListener('message', ({ message }: Hl7MessageEvent) => {
      received.push(message.getSegment('MSH')?.getField(10)?.toString() ?? '');
      connection.send(message.buildAck());
    });
  });
  server.start(0);
  const listening = server.server;
  if (!listening) throw new Error('Hl7Server did not create its server');
  await new Promise((resolve) => listening.once('listening', resolve));
  cleanups.push(() => server.stop({ forceDrainTimeoutMs: 1_000 }));
  return { port: (listening.address() as AddressInfo).port, received };
}

/** A channel taking ORU^R01 with one MLLP destination `peer`. */
function channelYaml(name: string, port: number, mllp: string, retry: string): string {
  return [
    `name: ${name}`,
    'source:',
    '  mllp: { port: 0, host: 127.0.0.1 }',
    'accept: [ORU^R01]',
    'destinations:',
    '  - name: peer',
    `    mllp: { host: 127.0.0.1, port: ${port}, ${mllp} }`,
    `    retry: { ${retry} }`,
    // The breaker is not what these tests are about: it must not pause a destination that answers AE
    // half the time.
    '    circuitBreaker: { minimumRequests: 1000 }',
    '',
  ].join('\n');
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

interface DeliveryRow {
  id: string;
  message_id: string;
  status: string;
  attempts: number;
  last_error_class: string | null;
  message_status: string;
  error_code: string | null;
}

interface AttemptRow {
  attempt: number;
  outcome: string;
  error_class: string | null;
  ack_code: string | null;
}

/** Each delivery of the channel, by its message's control id. */
async function deliveries(db: pg.Pool, channel: string): Promise<Record<string, DeliveryRow>> {
  const { rows } = await db.query<DeliveryRow & { control_id: string }>(
    `SELECT m.control_id, d.id, d.message_id, d.status, d.attempts, d.last_error_class,
            m.status AS message_status, m.last_error_code AS error_code
       FROM deliveries d JOIN messages m ON m.id = d.message_id WHERE m.channel = $1`,
    [channel],
  );
  return Object.fromEntries(rows.map(({ control_id, ...r }) => [control_id, r]));
}

/** Each delivery's attempts in order, by its message's control id. */
async function attempts(db: pg.Pool, channel: string): Promise<Record<string, AttemptRow[]>> {
  const { rows } = await db.query<AttemptRow & { control_id: string }>(
    `SELECT m.control_id, a.attempt, a.outcome, a.error_class, a.ack_code
       FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
       JOIN messages m ON m.id = d.message_id
      WHERE m.channel = $1 ORDER BY m.control_id, a.attempt`,
    [channel],
  );
  const out: Record<string, AttemptRow[]> = {};
  for (const { control_id, ...r } of rows) out[control_id] = [...(out[control_id] ?? []), r];
  return out;
}

/** Waits until each control id in `want` has a delivery in the status given; then all of the channel's. */
async function settled(
  db: pg.Pool,
  channel: string,
  want: Record<string, string>,
): Promise<Record<string, DeliveryRow>> {
  let last: Record<string, DeliveryRow> = {};
  await until(`deliveries of ${channel}: ${JSON.stringify(want)}`, async () => {
    last = await deliveries(db, channel);
    return Object.entries(want).every(([id, status]) => last[id]?.status === status);
  });
  return last;
}

/** Base fields of every log line (pino), besides what a line says. */
const LOG_BASE = ['level', 'time', 'pid', 'hostname', 'name', 'msg'];
const fieldsOf = (e: LogEntry) => Object.keys(e).filter((k) => !LOG_BASE.includes(k));

describe('MLLP destination in the real daemon', () => {
  let engine: EngineProcess;
  let db: pg.Pool;
  let ports: Record<string, number>;
  const peers: Record<string, Peer> = {};
  let medplum: { port: number; received: string[] };

  beforeAll(async () => {
    // Peers first: their ports go into the channel files.
    peers.aeaa = await startPeer((_id, nth) => (nth === 1 ? 'AE' : 'AA'));
    peers.reject = await startPeer((id) => (id === 'RJ1' ? 'AR' : 'AA'));
    peers.resend = await startPeer((id, nth) => {
      if (id === 'RS-D1') return nth <= 2 ? 'silent' : 'AA'; // silent twice, then answers
      if (id === 'RS-E1') return 'silent'; // never answers
      return 'AA';
    });
    peers.hold = await startPeer((id) => (id === 'HD-G1' ? 'silent' : 'AA'));
    medplum = await startMedplumPeer();

    const quick = 'initialDelayMs: 20, maxDelayMs: 80';
    const channels: Record<string, string> = {
      aeaa: channelYaml('aeaa', peers.aeaa.port, 'ackTimeoutMs: 10000', `attempts: 5, ${quick}`),
      reject: channelYaml('reject', peers.reject.port, 'ackTimeoutMs: 10000', `attempts: 5, ${quick}`),
      resend: channelYaml(
        'resend',
        peers.resend.port,
        'ackTimeoutMs: 1000, onAckTimeout: resend',
        'attempts: 4, initialDelayMs: 100, maxDelayMs: 200',
      ),
      hold: channelYaml(
        'hold',
        peers.hold.port,
        'ackTimeoutMs: 1000, onAckTimeout: hold',
        'attempts: 4, initialDelayMs: 100, maxDelayMs: 200',
      ),
      medplum: channelYaml('medplum', medplum.port, 'ackTimeoutMs: 10000', `attempts: 3, ${quick}`),
    };
    const run = await startEngine({
      label: 'mllpdest',
      channels,
      env: {
        HL7E_RECONCILE_INTERVAL_MS: '500',
        // Debug lines too ('delivery retry', 'delivery delivered'): the PHI check covers them as well.
        HL7E_LOG_LEVEL: 'debug',
      },
    });
    cleanups.push(() => run.stop());
    ({ engine, db, ports } = run);
  }, 60_000);

  it('AE then AA: every message delivered once accepted, per patient in order, as received, over one connection', async () => {
    const peer = peers.aeaa as Peer;
    // 20 messages over 4 patients, interleaved: A1 B1 C1 D1 A2 B2 …
    const sent = Array.from({ length: 20 }, (_, i) => {
      const id = `AE${String(i + 1).padStart(2, '0')}`;
      return { id, patient: PATIENTS[i % 4] as Patient, text: oru(id, PATIENTS[i % 4] as Patient, 10 + i) };
    });
    const acks = await sendForAcks(
      ports.aeaa as number,
      sent.map((m) => m.text),
    );
    expect(Object.values(acks)).toEqual(sent.map(() => 'AA'));

    const rows = await settled(db, 'aeaa', Object.fromEntries(sent.map((m) => [m.id, 'delivered'])));
    for (const m of sent) {
      expect(rows[m.id], m.id).toMatchObject({
        status: 'delivered',
        attempts: 2,
        message_status: 'delivered',
      });
    }

    // Per patient the peer saw each message twice (AE'd, then AA'd) and the next only after that: strict
    // order per key, with an AE'd message holding its patient's later ones back.
    for (const p of PATIENTS) {
      const ids = sent.filter((m) => m.patient === p).map((m) => m.id);
      const seen = peer.frames.map((f) => f.id).filter((id) => ids.includes(id));
      expect(seen).toEqual(ids.flatMap((id) => [id, id]));
    }
    expect(peer.frames).toHaveLength(40);
    // Raw forwarding: the very bytes the sender sent in.
    for (const m of sent) {
      for (const f of peer.frames.filter((x) => x.id === m.id))
        expect(f.raw.equals(Buffer.from(m.text))).toBe(true);
    }
    const tried = await attempts(db, 'aeaa');
    for (const m of sent) {
      expect(tried[m.id], m.id).toEqual([
        { attempt: 1, outcome: 'retry', error_class: 'nak_AE', ack_code: 'AE' },
        { attempt: 2, outcome: 'delivered', error_class: null, ack_code: 'AA' },
      ]);
    }
    // A NAK is an answer on a healthy connection: it is kept open, not one per message or per retry.
    expect(peer.connections()).toBe(1);
  });

  it('AR: the delivery is rejected, not resent, and does not hold the patient’s next message back', async () => {
    const peer = peers.reject as Peer;
    const p = PATIENTS[0] as Patient;
    expect(await sendForAcks(ports.reject as number, [oru('RJ1', p, 1), oru('RJ2', p, 2)])).toEqual({
      RJ1: 'AA',
      RJ2: 'AA',
    });
    const rows = await settled(db, 'reject', { RJ1: 'failed', RJ2: 'delivered' });
    expect(rows.RJ1).toMatchObject({
      attempts: 1,
      last_error_class: 'rejected_AR',
      message_status: 'failed',
      error_code: 'DELIVERY_FAILED',
    });
    expect(rows.RJ2).toMatchObject({ attempts: 1, message_status: 'delivered' });
    expect((await attempts(db, 'reject')).RJ1).toEqual([
      { attempt: 1, outcome: 'rejected', error_class: 'rejected_AR', ack_code: 'AR' },
    ]);
    expect(peer.frames.map((f) => f.id)).toEqual(['RJ1', 'RJ2']);
    const line = engine.entries.find((e) => e.msg === 'delivery rejected' && e.deliveryId === rows.RJ1?.id);
    expect(line).toMatchObject({ channel: 'reject', destination: 'peer', errorClass: 'rejected_AR' });
  });

  it('onAckTimeout resend: a silent peer gets the message again, at most retry.attempts times', async () => {
    const peer = peers.resend as Peer;
    const [d, e, f] = PATIENTS as [Patient, Patient, Patient];
    const ids = ['RS-D1', 'RS-D2', 'RS-E1', 'RS-E2', 'RS-F1'];
    const acks = await sendForAcks(ports.resend as number, [
      oru('RS-D1', d, 1), // silent twice, then AA
      oru('RS-D2', d, 2),
      oru('RS-E1', e, 3), // never answered
      oru('RS-E2', e, 4),
      oru('RS-F1', f, 5),
    ]);
    expect(Object.keys(acks).sort()).toEqual([...ids].sort());

    const rows = await settled(db, 'resend', {
      'RS-D1': 'delivered',
      'RS-D2': 'delivered',
      'RS-E1': 'failed',
      'RS-E2': 'delivered',
      'RS-F1': 'delivered',
    });
    const tried = await attempts(db, 'resend');
    const timedOut = { outcome: 'retry', error_class: 'ack_timeout', ack_code: null };
    // Resent after each silence, delivered once the peer answers again.
    expect(rows['RS-D1']).toMatchObject({ attempts: 3, message_status: 'delivered' });
    expect(tried['RS-D1']).toEqual([
      { attempt: 1, ...timedOut },
      { attempt: 2, ...timedOut },
      { attempt: 3, outcome: 'delivered', error_class: null, ack_code: 'AA' },
    ]);
    // Never answered: dead-lettered after exactly `attempts` (4) sends.
    expect(rows['RS-E1']).toMatchObject({
      attempts: 4,
      last_error_class: 'ack_timeout',
      message_status: 'failed',
      error_code: 'DELIVERY_FAILED',
    });
    expect(tried['RS-E1']).toEqual([
      { attempt: 1, ...timedOut },
      { attempt: 2, ...timedOut },
      { attempt: 3, ...timedOut },
      { attempt: 4, outcome: 'failed', error_class: 'ack_timeout', ack_code: null },
    ]);
    const line = engine.entries.find(
      (x) => x.msg === 'delivery failed' && x.deliveryId === rows['RS-E1']?.id,
    );
    expect(line).toMatchObject({
      channel: 'resend',
      destination: 'peer',
      attempt: 4,
      errorClass: 'ack_timeout',
    });

    // Per patient: the later message only after the earlier one was delivered or dead-lettered.
    const seen = (prefix: string) => peer.frames.map((x) => x.id).filter((id) => id.startsWith(prefix));
    expect(seen('RS-D')).toEqual(['RS-D1', 'RS-D1', 'RS-D1', 'RS-D2']);
    expect(seen('RS-E')).toEqual(['RS-E1', 'RS-E1', 'RS-E1', 'RS-E1', 'RS-E2']);
    expect(seen('RS-F')).toEqual(['RS-F1']);
    // No resend loop after the dead letter: longer than a retry delay, an ACK timeout and a reconciler pass.
    await sleep(1_500);
    expect(peer.copies('RS-E1')).toBe(4);
    expect(peer.frames).toHaveLength(10);
  });

  it('onAckTimeout hold: held after one send, its patient’s later messages held back, others flow', async () => {
    const peer = peers.hold as Peer;
    const [g, h] = PATIENTS as [Patient, Patient];
    const acks = await sendForAcks(ports.hold as number, [
      oru('HD-G1', g, 1), // never answered
      oru('HD-H1', h, 2),
      oru('HD-G2', g, 3),
      oru('HD-H2', h, 4),
      oru('HD-G3', g, 5),
    ]);
    expect(Object.values(acks)).toEqual(['AA', 'AA', 'AA', 'AA', 'AA']);

    await settled(db, 'hold', { 'HD-G1': 'held', 'HD-H1': 'delivered', 'HD-H2': 'delivered' });
    // Long enough for the held-back ones to be looked at again (reconciler every 500 ms) and for a
    // resend, were there one (retry delay ≤ 200 ms).
    await sleep(2_000);
    const rows = await deliveries(db, 'hold');
    expect(rows['HD-G1']).toMatchObject({
      status: 'held',
      attempts: 1,
      last_error_class: 'ack_timeout',
      message_status: 'processed',
    });
    for (const id of ['HD-G2', 'HD-G3']) {
      expect(rows[id], id).toMatchObject({ status: 'pending', attempts: 0, message_status: 'processed' });
    }
    expect((await attempts(db, 'hold'))['HD-G1']).toEqual([
      { attempt: 1, outcome: 'held', error_class: 'ack_timeout', ack_code: null },
    ]);
    // Sent once, never resent; the patient's later ones never sent; the other patient's all delivered.
    // (Across patients the order is free: their messages may be processed in either order.)
    expect(peer.frames.map((f) => f.id).sort()).toEqual(['HD-G1', 'HD-H1', 'HD-H2']);

    const held = engine.entries.filter((e) => e.msg === 'delivery held');
    expect(held).toHaveLength(1);
    expect(held[0]).toMatchObject({
      level: 40,
      channel: 'hold',
      destination: 'peer',
      deliveryId: rows['HD-G1']?.id,
      messageId: rows['HD-G1']?.message_id,
      attempt: 1,
      outcome: 'held',
      errorClass: 'ack_timeout',
    });
    // Ids and codes only.
    expect(fieldsOf(held[0] as LogEntry).sort()).toEqual(
      ['attempt', 'channel', 'deliveryId', 'destination', 'errorClass', 'messageId', 'outcome'].sort(),
    );
  });

  it('delivers to a third-party peer (@medplum/hl7 Hl7Server), each message once and in order', async () => {
    const p = PATIENTS[3] as Patient;
    const ids = ['MP1', 'MP2', 'MP3'];
    expect(
      await sendForAcks(
        ports.medplum as number,
        ids.map((id, i) => oru(id, p, i)),
      ),
    ).toEqual({
      MP1: 'AA',
      MP2: 'AA',
      MP3: 'AA',
    });
    const rows = await settled(db, 'medplum', Object.fromEntries(ids.map((id) => [id, 'delivered'])));
    for (const id of ids) expect(rows[id], id).toMatchObject({ attempts: 1, message_status: 'delivered' });
    expect(medplum.received).toEqual(ids);
  });

  it('keeps patient data out of every log line', () => {
    expect(engine.entries.some((e) => e.msg === 'delivery retry')).toBe(true);
    for (const phi of PHI) expect(engine.output.includes(phi), `logs contain ${phi}`).toBe(false);
  });
});
