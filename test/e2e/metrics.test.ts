import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../support/engine-fixture.js';
import { TestFhirServer } from '../support/fhir-server.js';
import { frame, TestMllpClient } from '../support/mllp-test-client.js';

// Issue 7: "Metrics scraped during a load test show the counts that the load sent." The real daemon takes
// a burst over several connections while /metrics is scraped; at the end every counter agrees with what
// was sent, ACKed, processed and delivered, and the latency histograms counted each message once.

const CONNECTIONS = 4;
const PER_CONNECTION = 75;
const TOTAL = CONNECTIONS * PER_CONNECTION;
const MALFORMED = 5;

const cleanups: (() => Promise<unknown> | unknown)[] = [];
let port: number;
let adminUrl: string;
let fhir: TestFhirServer;

function oru(controlId: string, patient: number): string {
  return `${[
    `MSH|^~\\&|LIS|FAKELAB|HL7E|HOSP|20260301031500||ORU^R01^ORU_R01|${controlId}|P|2.5.1`,
    `PID|1||ZQMT${String(patient).padStart(5, '0')}^^^FAKEHOSP^MR||Metricson^Testa||19800101|F`,
    `OBR|1|PO${controlId}^EHR|FO${controlId}^LIS|718-7^Hemoglobin [Mass/volume] in Blood^LN|||20260301030000`,
    'OBX|1|NM|718-7^Hemoglobin [Mass/volume] in Blood^LN||13.5|g/dL^g/dL^UCUM|12-16|N|||F',
  ].join('\r')}\r`;
}

/** The value of one sample (`name{labels} value`) in Prometheus text, summed over matching label sets. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z0-9_]+)(\{[^}]*\})? ([0-9.e+-]+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const set = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => set.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}

async function scrape(): Promise<string> {
  const res = await fetch(`${adminUrl}/metrics`);
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
  return res.text();
}

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  fhir = await new TestFhirServer().start();
  cleanups.push(() => fhir.close());
  const run = await startEngine({
    label: 'metrics',
    channels: {
      lab: [
        'name: lab',
        'source:',
        '  mllp: { port: 0, host: 127.0.0.1 }',
        'accept: [ORU^R01]',
        'destinations:',
        '  - name: ehr',
        `    fhir: { baseUrl: ${fhir.baseUrl} }`,
        '',
      ].join('\n'),
    },
  });
  cleanups.push(() => run.stop());
  port = run.ports.lab;
  adminUrl = run.adminUrl;
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
}, 30_000);

describe('metrics during a load', () => {
  it('count what the load sent, ACKed, processed and delivered', async () => {
    const before = await scrape();
    expect(sample(before, 'hl7e_messages_received_total')).toBe(0);

    // Scrapes run while the load is on: /metrics must answer under load, and counters only grow.
    const scrapes: number[] = [];
    let loading = true;
    const scraper = (async () => {
      while (loading) {
        scrapes.push(sample(await scrape(), 'hl7e_messages_received_total'));
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    await Promise.all(
      Array.from({ length: CONNECTIONS }, async (_, c) => {
        const client = await TestMllpClient.connect(port);
        try {
          const frames = Array.from({ length: PER_CONNECTION }, (_, i) =>
            frame(oru(`MT${c}-${String(i).padStart(4, '0')}`, c * 10 + (i % 10))),
          );
          client.write(Buffer.concat(frames));
          await client.waitForFrames(PER_CONNECTION);
        } finally {
          client.destroy();
        }
      }),
    );
    // Frames that are not HL7: answered AR, counted as received and as rejected ACKs.
    const bad = await TestMllpClient.connect(port);
    bad.write(Buffer.concat(Array.from({ length: MALFORMED }, () => frame('this is not HL7'))));
    await bad.waitForFrames(MALFORMED);
    bad.destroy();
    loading = false;
    await scraper;
    expect(scrapes.length).toBeGreaterThan(0);
    expect([...scrapes].sort((a, b) => a - b)).toEqual(scrapes);

    let last = '';
    await until('every message delivered', async () => {
      last = await scrape();
      return sample(last, 'hl7e_delivery_attempts_total', { outcome: 'delivered' }) === TOTAL;
    }).catch((err: unknown) => {
      const shown = last.split('\n').filter((l) => /^hl7e_(deliv|messages|queue|acks)/.test(l));
      throw new Error(`${(err as Error).message}:\n${shown.join('\n')}\nrequests: ${fhir.requests.length}`);
    });
    const t = await scrape();
    expect(sample(t, 'hl7e_messages_received_total', { channel: 'lab' })).toBe(TOTAL + MALFORMED);
    expect(sample(t, 'hl7e_acks_total', { channel: 'lab', outcome: 'accept' })).toBe(TOTAL);
    expect(sample(t, 'hl7e_acks_total', { channel: 'lab', outcome: 'reject' })).toBe(MALFORMED);
    expect(sample(t, 'hl7e_ack_latency_seconds_count', { channel: 'lab' })).toBe(TOTAL + MALFORMED);
    expect(sample(t, 'hl7e_archive_records_total')).toBe(TOTAL);
    expect(sample(t, 'hl7e_messages_processed_total', { channel: 'lab', outcome: 'processed' })).toBe(TOTAL);
    expect(sample(t, 'hl7e_delivery_attempts_total', { destination: 'ehr', outcome: 'delivered' })).toBe(
      TOTAL,
    );
    expect(sample(t, 'hl7e_end_to_end_seconds_count', { destination: 'ehr' })).toBe(TOTAL);
    expect(sample(t, 'hl7e_duplicates_total')).toBe(0);
    expect(sample(t, 'hl7e_circuit_breaker_state', { destination: 'ehr' })).toBe(0);
    // The FHIR server agrees: one request per message.
    expect(fhir.requests.length).toBe(TOTAL);
    // And the labels name channels, destinations and outcomes only.
    expect(t).not.toMatch(/Metricson|ZQMT\d|MT\d-\d{4}/);
  }, 180_000);
});
