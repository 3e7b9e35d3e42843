import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEngine, startEngine } from '../support/engine-fixture.js';
import type { EngineProcess } from '../support/engine-process.js';
import { sendForAcks } from '../support/mllp-test-client.js';

// The processing step in the real daemon: filter, mapping choice, FHIR validation, not-mapped counts
// and deliveries, read back from the store and the logs. Shared Postgres (a database of its own) and
// shared Redis (a queue prefix of its own), real MLLP.

/** Made-up patient data, recognisable so the PHI checks can look for it. */
const PHI = ['Quibblesworth', 'Zanzibella', 'PMX7731904', '19770412', 'Nowhere Lane'];
const PID =
  'PID|1||PMX7731904^^^PMHOSP^MR||Quibblesworth^Zanzibella^Q||19770412|F|||41 Nowhere Lane^^Faketown^ZZ^00000^USA';

const hl7 = (...segments: string[]) => `${segments.join('\r')}\r`;
const ADT_A01 = hl7(
  'MSH|^~\\&|REGADT|PMHOSP|HL7E|HOSP|20260301101500||ADT^A01^ADT_A01|PMADT001|P|2.5.1',
  'EVN|A01|20260301101400',
  PID,
  'PV1|1|I|WARD7^701^1||||1234^Doctorly^Dana|||MED||||ADM|||||VN5550001',
  'ZPD|1|custom-flag|Y',
);
const ORU_R01 = hl7(
  'MSH|^~\\&|LIS|PMLAB|HL7E|HOSP|20260301111500||ORU^R01^ORU_R01|PMORU001|P|2.5.1',
  PID,
  'OBR|1|PORD001^EHR|FLAB001^LIS|24323-8^Comprehensive metabolic panel^LN|||20260301070000',
  'OBX|1|NM|2345-7^Glucose [Mass/volume] in Serum or Plasma^LN||95|mg/dL^mg/dL^UCUM|70-99|N|||F',
  'OBR|2|PORD002^EHR|FLAB002^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301070000',
  'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F',
);
const SIU_S12 = hl7(
  'MSH|^~\\&|SCHED|PMHOSP|HL7E|HOSP|20260301121500||SIU^S12^SIU_S12|PMSIU001|P|2.5.1',
  'SCH|APT001^SCHED|APT001^SCHED|||||ROUTINE|||||||||||||||BOOKED',
  PID,
);
/** A training message (MSH-11 = T): the channel filter lets it be stored and ACKed but not processed. */
const ADT_A08_TRAINING = hl7(
  'MSH|^~\\&|REGADT|PMHOSP|HL7E|HOSP|20260301131500||ADT^A08^ADT_A01|PMTRN001|T|2.5.1',
  'EVN|A08|20260301131400',
  PID,
  'PV1|1|I|WARD7^701^1',
);

const channelYaml = (name: string, mapping?: string) =>
  [
    `name: ${name}`,
    'source:',
    '  mllp: { port: 0, host: 127.0.0.1 }',
    'accept: [ADT^*, ORU^R01, SIU^S12]',
    'filter: { not: { path: MSH-11-1, equals: T } }',
    'validate: true',
    ...(mapping ? [`mapping: ${mapping}`] : []),
    'destinations:',
    '  - name: ehr',
    '    fhir: { baseUrl: http://127.0.0.1:9/fhir }',
    '',
  ].join('\n');

const cleanups: (() => Promise<unknown> | unknown)[] = [];

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

/** Short, so a reconciler pass (which logs the not-mapped counts) comes soon. */
const ENV = { HL7E_RECONCILE_INTERVAL_MS: '500' };

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

interface Processed {
  status: string;
  event: string;
  detail: Record<string, unknown>;
}

/** Waits until none is `received`; then each message's status and its one processing event. */
async function processed(db: pg.Pool, count: number): Promise<Record<string, Processed>> {
  await until('processing', async () => {
    const { rows } = await db.query<{ done: number }>(
      `SELECT count(*) FILTER (WHERE status <> 'received')::int AS done FROM messages`,
    );
    return rows[0]?.done === count;
  });
  const { rows } = await db.query<Processed & { control_id: string }>(
    `SELECT m.control_id, m.status, e.event, e.detail
       FROM messages m JOIN message_events e ON e.message_id = m.id ORDER BY e.id`,
  );
  expect(rows).toHaveLength(count); // one event per message
  return Object.fromEntries(rows.map(({ control_id, ...r }) => [control_id, r]));
}

const notMappedLog = (engine: EngineProcess, channel: string) =>
  engine.entries
    .filter((e) => e.msg === 'fields not mapped')
    .map((e) => (e.notMapped as Record<string, Record<string, number>>)[channel]);

describe('processing and mapping in the real daemon', () => {
  let run: RunningEngine<'intake'>;

  beforeAll(async () => {
    run = await startEngine({ label: 'procmap', channels: { intake: channelYaml('intake') }, env: ENV });
    cleanups.push(() => run.stop());
  }, 30_000);

  it('ACKs, filters, converts with the default map per type, and creates deliveries', async () => {
    const acks = await sendForAcks(run.ports.intake, [ADT_A01, ORU_R01, SIU_S12, ADT_A08_TRAINING]);
    expect(acks).toEqual({ PMADT001: 'AA', PMORU001: 'AA', PMSIU001: 'AA', PMTRN001: 'AA' });

    const byId = await processed(run.db, 4);
    const adt = byId.PMADT001!;
    expect(adt).toMatchObject({ status: 'processed', event: 'processed' });
    expect(adt.detail).toMatchObject({ mapping: 'ADT_A01', destinations: 1 });
    expect(adt.detail.mappingVersion).toMatch(/^[0-9a-f]{16}$/);
    expect(adt.detail.resources).toBeGreaterThan(2);
    expect(adt.detail.unmapped).toContain('ZPD');
    expect(adt.detail.error).toBeUndefined();

    const oru = byId.PMORU001!;
    expect(oru).toMatchObject({ status: 'processed', event: 'processed' });
    expect(oru.detail).toMatchObject({ mapping: 'ORU_R01', destinations: 1 });
    expect(oru.detail.mappingVersion).toMatch(/^[0-9a-f]{16}$/);
    // Both OBR groups mapped: one group makes 7 (organization, device, patient, order, report,
    // observation, provenance); the second adds its own order, report and observation.
    expect(oru.detail.resources).toBeGreaterThanOrEqual(10);

    expect(byId.PMSIU001).toMatchObject({
      status: 'processed',
      detail: { mapping: null, notMapped: 'MAPPING_NONE', destinations: 0 },
    });
    expect(byId.PMTRN001).toMatchObject({
      status: 'processed',
      detail: { filtered: true, destinations: 0 },
    });
    expect(byId.PMTRN001!.detail.mapping).toBeUndefined();

    // A FHIR destination gets the converted messages only: not the filtered one, nor the one without a map.
    const { rows } = await run.db.query<{ control_id: string; destination: string; status: string }>(
      `SELECT m.control_id, d.destination, d.status
         FROM deliveries d JOIN messages m ON m.id = d.message_id ORDER BY m.control_id`,
    );
    expect(rows).toEqual([
      { control_id: 'PMADT001', destination: 'ehr', status: 'pending' },
      { control_id: 'PMORU001', destination: 'ehr', status: 'pending' },
    ]);
  });

  it('logs the per-channel not-mapped counts after a reconciler pass', async () => {
    await until('a "fields not mapped" line', () =>
      notMappedLog(run.engine, 'intake').some((c) => (c?.ZPD ?? 0) >= 1),
    );
    const last = notMappedLog(run.engine, 'intake').at(-1);
    expect(last).toEqual({ ZPD: 1 });
  });

  it('keeps patient data out of event details and logs', async () => {
    const { rows } = await run.db.query<{ detail: string }>('SELECT detail::text FROM message_events');
    expect(rows.length).toBe(4);
    const details = rows.map((r) => r.detail).join('\n');
    for (const phi of PHI) {
      expect(details.includes(phi), `event detail contains ${phi}`).toBe(false);
      expect(run.engine.output.includes(phi), `logs contain ${phi}`).toBe(false);
    }
  });
});

describe('a site mapping that extends a shipped one', () => {
  let run: RunningEngine<'site'>;

  beforeAll(async () => {
    run = await startEngine({
      label: 'procmap',
      channels: { site: channelYaml('site', 'site-ADT') },
      files: { 'mappings/messages/site-ADT.yaml': 'extends: ADT_A01\nmessage: site-ADT\nignore: [ZPD]\n' },
      env: ENV,
    });
    cleanups.push(() => run.stop());
  }, 30_000);

  it('converts with the channel’s map, which no longer reports the ignored Z-segment', async () => {
    expect(await sendForAcks(run.ports.site, [ADT_A01])).toEqual({ PMADT001: 'AA' });
    const adt = (await processed(run.db, 1)).PMADT001!;
    expect(adt).toMatchObject({ status: 'processed', detail: { mapping: 'site-ADT', destinations: 1 } });
    expect(adt.detail.mappingVersion).toMatch(/^[0-9a-f]{16}$/);
    expect(adt.detail.resources).toBeGreaterThan(2);
    expect((adt.detail.unmapped as string[] | undefined) ?? []).not.toContain('ZPD');

    // Nothing was left unmapped, so no reconciler pass has counts to report.
    await new Promise((r) => setTimeout(r, 1_200));
    expect(notMappedLog(run.engine, 'site').filter((c) => c?.ZPD)).toEqual([]);
    for (const phi of PHI) expect(run.engine.output.includes(phi), `logs contain ${phi}`).toBe(false);
  });
});
