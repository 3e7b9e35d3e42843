import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ChannelConfig } from '../../src/channels/channel-config.js';
import { loadChannelFile } from '../../src/channels/channel-loader.js';
import type { Bundle, BundleEntry } from '../../src/fhir/fhir-types.js';
import { validateBundle } from '../../src/fhir/fhir-validator.js';
import { decodeHl7 } from '../../src/hl7/charset.js';
import { parse } from '../../src/hl7/index.js';
import { convertMessage } from '../../src/mapping/conversion.js';
import { MappingCatalog } from '../../src/mapping/mapping-catalog.js';
import type { MappingReport } from '../../src/mapping/mapping-run.js';

/**
 * The shipped golden inputs (channels/<channel>.tests/*.hl7, made-up data) read as an analyst would: each
 * converted with its channel's settings, and the facts that matter checked by name — escapes decoded,
 * Latin-1 read, LF-only the same as CR, SN comparators, one report per OBR, order controls → status.
 * The byte-for-byte golden JSON is `hl7e channels test`; this file says what in it must hold.
 */

const CHANNELS = join(import.meta.dirname, '../../channels');
const catalog = MappingCatalog.load();

// biome-ignore lint/suspicious/noExplicitAny: the assertions walk deep into FHIR JSON
type Res = Record<string, any>;

interface Golden {
  readonly bundle: Bundle;
  readonly report: MappingReport;
  /** Every resource of a type, in Bundle order. */
  all(type: string): Res[];
  /** The only resource of a type (fails when there are none or several). */
  one(type: string): Res;
  /** The resource a `{ reference: 'urn:uuid:…' }` points to. */
  deref(ref: { reference?: string } | undefined): Res | undefined;
  /** The conditional request URL of a resource's entry. */
  url(resource: Res): string | undefined;
}

function channel(name: string): ChannelConfig {
  const loaded = loadChannelFile(join(CHANNELS, `${name}.yaml`));
  if (!('channel' in loaded)) throw new Error(`channel ${name} does not load`);
  return loaded.channel;
}

/** Converts text as the channel would; the SHA (ids, Provenance) is the raw bytes' unless given. */
function convertText(ch: ChannelConfig, text: string, sha: string) {
  return convertMessage(parse(text), {
    catalog,
    rawSha256: sha,
    channel: ch.name,
    timezone: ch.timezone,
    ...(ch.mapping ? { mapping: ch.mapping } : {}),
  });
}

function golden(channelName: string, file: string): Golden {
  const ch = channel(channelName);
  const bytes = readFileSync(join(CHANNELS, `${channelName}.tests`, file));
  const { text } = decodeHl7(bytes, ch.charset);
  const { bundle, report } = convertText(ch, text, createHash('sha256').update(bytes).digest('hex'));
  const entries = (bundle.entry ?? []) as BundleEntry[];
  const all = (type: string) =>
    entries.filter((e) => e.resource?.resourceType === type).map((e) => e.resource as Res);
  return {
    bundle,
    report,
    all,
    one(type) {
      const found = all(type);
      expect(found, `one ${type}`).toHaveLength(1);
      return found[0] as Res;
    },
    deref: (ref) => entries.find((e) => e.fullUrl === ref?.reference)?.resource as Res | undefined,
    url: (resource) => entries.find((e) => e.resource === resource)?.request?.url,
  };
}

/** Valid FHIR R4, and nothing reported but what the test names. */
function expectClean(g: Golden, unmapped: { segments?: string[]; fields?: string[] } = {}): void {
  expect(validateBundle(g.bundle)).toEqual([]);
  expect(g.report.unmappedSegments).toEqual(unmapped.segments ?? []);
  expect(g.report.unmappedFields).toEqual(unmapped.fields ?? []);
  expect(g.report.invalid).toEqual([]);
  expect(g.report.unknownCodes).toEqual([]);
}

const NPI = 'urn:oid:2.16.840.1.113883.4.6';

describe('adt-inbound golden inputs', () => {
  const adt = (file: string) => golden('adt-inbound', file);

  it('a01-admit: patient, visit, allergy, diagnosis, coverage with the patient as subscriber; ZPD reported', () => {
    const g = adt('a01-admit.hl7');
    expectClean(g, { segments: ['ZPD[1]'] });
    const patient = g.one('Patient');
    expect(patient.name[0]).toMatchObject({
      family: 'Lindqvist',
      given: ['Astrid', 'Maria'],
      use: 'official',
    });
    // PID-13 `^NET^Internet^…`: an e-mail address; NET maps to no ContactPoint.use, so none (not 'home').
    expect(patient.telecom).toContainEqual({ value: 'astrid.l@example.org', system: 'email' });
    expect(patient.telecom).toContainEqual({ value: '+1 (503) 5550142', use: 'home', system: 'phone' });

    const encounter = g.one('Encounter');
    expect(encounter).toMatchObject({ status: 'in-progress', class: { code: 'IMP' } });
    expect(encounter.type).toEqual([{ coding: [{ code: 'IP' }] }]); // PV1-18 patient type
    expect(g.deref(encounter.subject)).toBe(patient);

    const coverage = g.one('Coverage');
    expect(g.deref(coverage.subscriber)).toBe(patient); // IN1-17 SEL: the insured is the patient
    expect(g.deref(coverage.beneficiary)).toBe(patient);
    expect(g.all('RelatedPerson')).toEqual([]);
    const payor = g.deref(coverage.payor[0]);
    expect(coverage.payor[0].display).toBe('Cascade Health Insurance');
    expect(payor).toMatchObject({
      name: 'Cascade Health Insurance',
      identifier: [{ value: 'INS-4471' }],
      address: [{ line: ['PO Box 900'], city: 'Salem', state: 'OR', postalCode: '97301' }], // IN1-5
      telecom: [{ value: '+1 (800) 5550100', use: 'work', system: 'phone' }], // IN1-7
    });
    expect(g.one('AllergyIntolerance').code.coding[0]).toMatchObject({ code: '7980' });
    expect(g.one('Condition').code.coding[0]).toMatchObject({ code: 'I20.9' });
  });

  it('a02-transfer: the visit moves to ICU, the prior location completed', () => {
    const g = adt('a02-transfer.hl7');
    expectClean(g);
    const encounter = g.one('Encounter');
    expect(encounter.status).toBe('in-progress');
    const byId = Object.fromEntries(encounter.location.map((l: Res) => [l.id, l]));
    expect(byId.assigned.status).toBe('active');
    expect(byId.prior.status).toBe('completed');
    expect(g.deref(byId.assigned.location)).not.toBe(g.deref(byId.prior.location));
  });

  it('a03-discharge-lf: LF-only segment ends convert exactly like CR', () => {
    const ch = channel('adt-inbound');
    const bytes = readFileSync(join(CHANNELS, 'adt-inbound.tests', 'a03-discharge-lf.hl7'));
    const lf = decodeHl7(bytes, ch.charset).text;
    expect(lf).not.toContain('\r');
    // The same SHA for both, so that ids agree: only the segment terminator differs.
    const sha = createHash('sha256').update(bytes).digest('hex');
    expect(convertText(ch, lf, sha)).toEqual(convertText(ch, lf.replace(/\n/g, '\r'), sha));

    const g = adt('a03-discharge-lf.hl7');
    expectClean(g);
    const encounter = g.one('Encounter');
    expect(encounter.status).toBe('finished');
    expect(encounter.period).toEqual({
      start: '2026-11-05T12:00:00-05:00',
      end: '2026-11-10T10:30:00-05:00',
    });
    expect(encounter.hospitalization.dischargeDisposition).toEqual({ coding: [{ code: '01' }] });
  });

  it('a04-register: an outpatient visit', () => {
    const g = adt('a04-register.hl7');
    expectClean(g);
    const encounter = g.one('Encounter');
    expect(encounter).toMatchObject({ class: { code: 'AMB' }, identifier: [{ value: 'V-778900' }] });
    expect(encounter.period).toEqual({ start: '2026-11-12T08:05:00-05:00' });
  });

  it('a05-preadmit: a planned visit at a planned location', () => {
    const g = adt('a05-preadmit.hl7');
    expectClean(g);
    const encounter = g.one('Encounter');
    expect(encounter).toMatchObject({ status: 'planned', class: { code: 'PRENC' } });
    expect(encounter.location[0].status).toBe('planned');
  });

  it('a06-outpatient-to-inpatient: the visit becomes inpatient; MRG without MRG-3 makes no Account', () => {
    const g = adt('a06-outpatient-to-inpatient.hl7');
    expectClean(g);
    expect(g.one('Encounter')).toMatchObject({ status: 'in-progress', class: { code: 'IMP' } });
    expect(g.all('Account')).toEqual([]);
  });

  it('a07-inpatient-to-outpatient: the visit becomes outpatient', () => {
    const g = adt('a07-inpatient-to-outpatient.hl7');
    expectClean(g);
    expect(g.one('Encounter')).toMatchObject({ status: 'in-progress', class: { code: 'AMB' } });
  });

  it('a08-update-escapes: \\T\\ \\F\\ \\S\\ decoded in name and address', () => {
    const g = adt('a08-update-escapes.hl7');
    expectClean(g);
    const patient = g.one('Patient');
    expect(patient.name[0].family).toBe("O'Brien&Lindqvist");
    expect(patient.address[0].line).toEqual(['12 Pine | Oak Rd', 'Unit 5^B']);
  });

  it('a11-cancel-admit: the visit is cancelled', () => {
    const g = adt('a11-cancel-admit.hl7');
    expectClean(g);
    expect(g.one('Encounter').status).toBe('cancelled');
  });

  it('a13-cancel-discharge: the visit is in progress again', () => {
    const g = adt('a13-cancel-discharge.hl7');
    expectClean(g);
    expect(g.one('Encounter').status).toBe('in-progress');
  });

  it('a28-add-person-latin1: ISO 8859-1 (MSH-18 8859/1) read; PV1||N makes no Encounter', () => {
    const g = adt('a28-add-person-latin1.hl7');
    // `PV1|1|N`: the sender's "no visit"; an Encounter from it could never be matched again.
    expectClean(g, { segments: ['PV1[1]'] });
    const patient = g.one('Patient');
    expect(patient.name[0]).toMatchObject({ family: 'Müller', given: ['Jürgen', 'José'] });
    expect(patient.address[0]).toMatchObject({ line: ['Königstraße 12'], city: 'München', country: 'DEU' });
    expect(g.all('Encounter')).toEqual([]);
  });

  it('a31-update-person: the person only', () => {
    const g = adt('a31-update-person.hl7');
    expectClean(g, { segments: ['PV1[1]'] });
    expect(g.one('Patient').identifier[0].value).toBe('MRN-100234');
    expect(g.all('Encounter')).toEqual([]);
  });

  it('a40-merge: the surviving patient replaces the merged record', () => {
    const g = adt('a40-merge.hl7');
    expectClean(g);
    expect(g.one('Patient').link).toEqual([
      expect.objectContaining({
        type: 'replaces',
        other: { identifier: expect.objectContaining({ value: 'MRN-099871' }) },
      }),
    ]);
  });
});

describe('lab-results golden inputs', () => {
  const lab = (file: string) => golden('lab-results', file);

  it('oru-two-panels: one DiagnosticReport per OBR, each with its own results and its own order', () => {
    const g = lab('oru-two-panels.hl7');
    expectClean(g);
    const [cbc, cmp] = g.all('DiagnosticReport');
    const codes = (report: Res) => report.result.map((r: Res) => g.deref(r)?.code.coding[0].code);
    expect(codes(cbc as Res)).toEqual(['6690-2', '718-7', '777-3']);
    expect(codes(cmp as Res)).toEqual(['2345-7', '2160-0']);
    const placer = (report: Res) => g.deref(report.basedOn[0])?.identifier[0].value;
    expect(placer(cbc as Res)).toBe('PL-5501');
    expect(placer(cmp as Res)).toBe('PL-5502');
    // ORC-2/3 and OBR-2/3 carry the same numbers: each kept once, placer first.
    for (const sr of g.all('ServiceRequest')) {
      expect(sr.identifier.map((i: Res) => i.type.coding[0].code)).toEqual(['PLAC', 'FILL']);
      expect(sr.status).toBe('completed'); // ORC-5 CM
    }
    const hemoglobin = g.deref((cbc as Res).result[1]);
    expect(hemoglobin?.note).toEqual([{ text: 'Repeat in 2 weeks advised.' }]);
    expect(hemoglobin?.interpretation[0].coding[0].code).toBe('L');
  });

  it('oru-sn-comparators: SN → Quantity with comparator, Ratio, Range', () => {
    const g = lab('oru-sn-comparators.hl7');
    expectClean(g);
    const [albumin, egfr, rubella, cholesterol] = g.all('Observation') as Res[];
    expect(albumin?.valueQuantity).toMatchObject({ comparator: '<', value: 0.5, code: 'g/dL' });
    expect(egfr?.valueQuantity).toMatchObject({ comparator: '>=', value: 60 });
    expect(rubella?.valueRatio).toMatchObject({ numerator: { value: 1 }, denominator: { value: 128 } });
    expect(cholesterol?.valueRange).toMatchObject({ low: { value: 150 }, high: { value: 200 } });
  });

  it('oru-text-coded: CWE, TX repetitions, FT line breaks; preliminary', () => {
    const g = lab('oru-text-coded.hl7');
    expectClean(g);
    const [coded, tx, ft, st] = g.all('Observation') as Res[];
    expect(coded?.valueCodeableConcept.coding[0]).toMatchObject({
      system: 'http://snomed.info/sct',
      code: '3092008',
    });
    expect(tx?.valueString).toBe('Gram positive cocci in clusters\nNumerous white cells');
    expect(ft?.valueString).toBe('Growth after 24 h.\nSusceptibility to follow.');
    expect(st?.valueString).toBe('S');
    expect(g.one('DiagnosticReport').status).toBe('preliminary');
    for (const o of g.all('Observation')) expect(o.status).toBe('preliminary');
  });

  it('oru-pdf-report: the ED OBX is the report presentedForm (a PDF), not an Observation', () => {
    const g = lab('oru-pdf-report.hl7');
    expectClean(g); // OBX-11 of the ED OBX: the report's status stands for it
    const report = g.one('DiagnosticReport');
    expect(report.presentedForm).toHaveLength(1);
    expect(report.presentedForm[0]).toMatchObject({
      contentType: 'application/pdf',
      title: 'Pathology study',
    });
    expect(Buffer.from(report.presentedForm[0].data, 'base64').subarray(0, 8).toString('latin1')).toBe(
      '%PDF-1.4',
    );
    expect(g.one('Observation').valueString).toBe('Benign fibroadenoma.');
  });

  it('oru-corrected: a corrected result corrects the same report', () => {
    const g = lab('oru-corrected.hl7');
    expectClean(g);
    const report = g.one('DiagnosticReport');
    expect(report.status).toBe('corrected');
    expect(g.one('Observation').status).toBe('corrected');
    // The same filler number as the first CBC in oru-two-panels: the destination updates that report.
    const first = lab('oru-two-panels.hl7');
    expect(g.url(report)).toBe(first.url(first.all('DiagnosticReport')[0] as Res));
  });
});

describe('orders golden inputs', () => {
  // ORC-1 (and ORC-5 when sent, which wins) → ServiceRequest.status per the IG's OrderControlCode and
  // OrderStatus maps; intent is always 'order'.
  const cases = [
    ['orm-nw-new.hl7', 'NW', 'IP', 'active', 'CREATE'],
    ['orm-ca-cancel.hl7', 'CA', 'CA', 'revoked', 'CANCEL'],
    ['orm-oc-canceled.hl7', 'OC', 'CA', 'revoked', 'CANCEL'],
    ['orm-dc-discontinue.hl7', 'DC', 'DC', 'revoked', undefined],
    ['orm-xo-change.hl7', 'XO', 'IP', 'active', undefined],
    ['orm-sc-status.hl7', 'SC', 'SC', 'active', 'UPDATE'],
  ] as const;
  const placerUrl = `ServiceRequest?identifier=${encodeURIComponent('urn:hl7e:assigning-authority:EHR|PL-7001')}`;

  it.each(cases)('%s: ORC-1 %s, ORC-5 %s → status %s', (file, control, _orc5, status, activity) => {
    const g = golden('orders', file);
    expectClean(g);
    const sr = g.one('ServiceRequest');
    expect(sr).toMatchObject({ status, intent: 'order', code: { coding: [{ code: '80061' }] } });
    // Every message about the order keys on its placer number, so all six update one ServiceRequest.
    expect(g.url(sr)).toBe(placerUrl);
    expect(sr.identifier.filter((i: Res) => i.value === 'PL-7001')).toHaveLength(1);
    // ORC-12 is the requester (OBR-16 names the same provider).
    expect(g.deref(sr.requester)?.identifier[0]).toMatchObject({ system: NPI, value: '1234567890' });
    // ORC-9: authoredOn for a new order only; every event is a Provenance of the order (IG ORC[Provenance]).
    if (control === 'NW') expect(sr.authoredOn).toBe('2026-11-05T08:55:00-05:00');
    else expect(sr.authoredOn).toBeUndefined();
    const event = g.all('Provenance').find((p) => p.target.length === 1 && g.deref(p.target[0]) === sr);
    expect(event?.recorded).toBe('2026-11-05T08:55:00-05:00');
    expect(event?.activity?.coding[0].code).toBe(activity);
    expect(sr.note).toEqual([{ text: 'Patient fasting since midnight.' }]);
  });
});
