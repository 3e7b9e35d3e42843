import { describe, expect, it } from 'vitest';
import type { Bundle, Resource } from '../fhir/fhir-types.js';
import { validateBundle } from '../fhir/fhir-validator.js';
import { parse } from '../hl7/index.js';
import { convertMessage } from './conversion.js';
import { MappingCatalog } from './mapping-catalog.js';

// The shipped ORM_O01 / ORU_R01 maps and their segment and data-type maps, on made-up messages.
const catalog = MappingCatalog.load();

function convert(lines: string[], mapping?: string) {
  const result = convertMessage(parse(lines.join('\r')), {
    catalog,
    rawSha256: 'a'.repeat(64),
    timezone: 'UTC',
    ...(mapping ? { mapping } : {}),
  });
  return { ...result, issues: validateBundle(result.bundle) };
}

type Entry = NonNullable<Bundle['entry']>[number];
// biome-ignore lint/suspicious/noExplicitAny: the assertions walk deep into FHIR JSON
type Res = Resource & Record<string, any>;

function entries(bundle: Bundle, type: string): Entry[] {
  return (bundle.entry ?? []).filter((e) => e.resource?.resourceType === type);
}
function resources(bundle: Bundle, type: string): Res[] {
  return entries(bundle, type).map((e) => e.resource as Res);
}

const MSH_ORM = 'MSH|^~\\&|CPOE|HOSP|LAB|HOSP|20240315103000+0100||ORM^O01|ORM0001|P|2.5.1';
const PID = 'PID|1||MRN123^^^HOSP^MR||Doe^Jane||19800101|F';

function orm(control: string, orc5 = ''): string[] {
  return [
    MSH_ORM,
    PID,
    `ORC|${control}|PL1001^CPOE|FI2002^LAB||${orc5}||||20240315102500+0100|||1234^Welby^Marcus^^^Dr^^^NPI`,
    'OBR|1|PL1001^CPOE|FI2002^LAB|2345-7^Glucose^LN|S||20240315110000+0100',
    'NTE|1||Fasting since midnight',
  ];
}

describe('ORM_O01', () => {
  it.each([
    ['NW', 'active'],
    ['CA', 'active'],
    ['XO', 'active'],
    ['SC', 'unknown'],
    ['OC', 'revoked'],
    ['DC', 'revoked'],
  ])('ORC-1 %s → ServiceRequest status %s, intent order', (control, status) => {
    const { bundle, issues } = convert(orm(control));
    expect(issues).toEqual([]);
    const [sr] = resources(bundle, 'ServiceRequest');
    expect(resources(bundle, 'ServiceRequest')).toHaveLength(1);
    expect(sr?.status).toBe(status);
    expect(sr?.intent).toBe('order');
  });

  it('ORC-5 wins over ORC-1 when valued', () => {
    const { bundle, issues } = convert(orm('SC', 'CM'));
    expect(issues).toEqual([]);
    expect(resources(bundle, 'ServiceRequest')[0]?.status).toBe('completed');
  });

  it('ORC and OBR make one ServiceRequest keyed on the placer number, with its facts', () => {
    const { bundle, report, issues } = convert(orm('NW'));
    expect(issues).toEqual([]);
    const [entry] = entries(bundle, 'ServiceRequest');
    const sr = entry?.resource as Res;
    expect(sr.identifier.map((i: { value: string }) => i.value)).toEqual(['PL1001', 'FI2002']);
    expect(sr.identifier[0].type.coding[0].code).toBe('PLAC');
    expect(sr.identifier[1].type.coding[0].code).toBe('FILL');
    expect(entry?.request?.url).toBe(
      `ServiceRequest?identifier=${encodeURIComponent('urn:hl7e:assigning-authority:CPOE|PL1001')}`,
    );
    expect(sr.code.coding[0].code).toBe('2345-7');
    expect(sr.priority).toBe('stat');
    expect(sr.authoredOn).toBe('2024-03-15T10:25:00+01:00');
    expect(sr.occurrenceDateTime).toBe('2024-03-15T11:00:00+01:00');
    expect(sr.note).toEqual([{ text: 'Fasting since midnight' }]);
    const patient = entries(bundle, 'Patient')[0];
    expect(sr.subject).toEqual({ reference: patient?.fullUrl });
    const practitioner = entries(bundle, 'Practitioner')[0] as Entry;
    expect((practitioner.resource as Res).name[0].family).toBe('Welby');
    expect(sr.requester).toEqual({ reference: practitioner?.fullUrl });
    // ORC-2/ORC-3 repeat OBR-2/OBR-3: both are read, and the identical identifiers are kept once (see the identifier list above).
    expect(report.unmappedFields.filter((f) => /^(ORC|OBR|NTE)/.test(f))).toEqual([]);
  });

  it('an ORC without OBR still makes the ServiceRequest from ORC-2/ORC-3', () => {
    const { bundle, issues } = convert([MSH_ORM, PID, 'ORC|CA|PL9^CPOE|FI9^LAB']);
    expect(issues).toEqual([]);
    const [sr] = resources(bundle, 'ServiceRequest');
    expect(sr?.identifier.map((i: { value: string }) => i.value)).toEqual(['PL9', 'FI9']);
  });
});

const MSH_ORU = 'MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240316090000+0100||ORU^R01|ORU0001|P|2.5.1';
const ORU = [
  MSH_ORU,
  PID,
  'ORC|RE|PL1001^CPOE|FI2002^LAB||CM',
  'OBR|1|PL1001^CPOE|FI2002^LAB|24323-8^Metabolic panel^LN|||20240315110000+0100|||||||||||||||20240316085500+0100||CH|F',
  'OBX|1|NM|2345-7^Glucose^LN||5.4|mmol/L^millimole per liter^UCUM|3.9-5.5|N|||F|||20240315110000+0100',
  'NTE|1||Hemolysed sample',
  'OBX|2|SN|2160-0^Creatinine^LN||<^0.5|mg/dL^^UCUM||L|||F',
  'OBX|3|SN|5370-4^Titer^LN||^1^:^128||||||F',
  'OBX|4|SN|1234-5^Range^LN||^10^-^20|g/L^^UCUM|||||F',
  'OBX|5|ST|8251-1^Comment^LN||Specimen slightly lipemic||||||F',
  'OBX|6|CWE|600-7^Culture^LN||27268008^Salmonella^SCT||||||P',
  'OBX|7|ED|11502-2^Lab report^LN||^application^pdf^Base64^JVBERi0xLjQK||||||F',
  'SPM|1|SP77^LAB||SER^Serum^HL70487|||||||||||||20240315110000+0100',
  'ORC|RE|PL1003^CPOE|FI2004^LAB||CM',
  'OBR|2|PL1003^CPOE|FI2004^LAB|718-7^Hemoglobin^LN|||20240315110000+0100|||||||||||||||||HM|P',
  'OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL^^UCUM|12-16|N|||P',
];

describe('ORU_R01', () => {
  const { bundle, report, issues } = convert(ORU);
  const reports = entries(bundle, 'DiagnosticReport');
  const observations = entries(bundle, 'Observation');
  const byCode = (code: string) =>
    observations.map((e) => e.resource as Res).find((o) => o.code.coding[0].code === code) as Res;

  it('validates', () => {
    expect(issues).toEqual([]);
    expect(report.invalid).toEqual([]);
  });

  it('two OBR groups → two DiagnosticReports, each with its own Observations and ServiceRequest', () => {
    expect(reports).toHaveLength(2);
    const [first, second] = reports.map((e) => e.resource as Res);
    const urls = (codes: string[]) =>
      codes.map((c) => observations.find((e) => (e.resource as Res).code.coding[0].code === c)?.fullUrl);
    expect(first?.result.map((r: { reference: string }) => r.reference)).toEqual(
      urls(['2345-7', '2160-0', '5370-4', '1234-5', '8251-1', '600-7']),
    );
    expect(second?.result.map((r: { reference: string }) => r.reference)).toEqual(urls(['718-7']));
    expect(first?.status).toBe('final');
    expect(second?.status).toBe('preliminary');
    expect(first?.identifier[0]).toMatchObject({ value: 'FI2002', type: { coding: [{ code: 'FILL' }] } });
    expect(first?.issued).toBe('2024-03-16T08:55:00+01:00');
    expect(first?.effectiveDateTime).toBe('2024-03-15T11:00:00+01:00');
    expect(first?.category[0].coding[0].code).toBe('CH');
    const requests = entries(bundle, 'ServiceRequest');
    expect(requests).toHaveLength(2);
    expect(first?.basedOn).toEqual([{ reference: requests[0]?.fullUrl }]);
    expect(second?.basedOn).toEqual([{ reference: requests[1]?.fullUrl }]);
    expect(((requests[0] as Entry).resource as Res).status).toBe('completed');
    const specimen = entries(bundle, 'Specimen')[0] as Entry;
    expect(first?.specimen).toEqual([{ reference: specimen?.fullUrl }]);
    expect((specimen.resource as Res).type.coding[0]).toMatchObject({ code: 'SER' });
  });

  it('NM with UCUM units → valueQuantity', () => {
    const o = byCode('2345-7');
    expect(o.valueQuantity).toEqual({
      value: 5.4,
      unit: 'millimole per liter',
      system: 'http://unitsofmeasure.org',
      code: 'mmol/L',
    });
    expect(o.status).toBe('final');
    expect(o.referenceRange).toEqual([{ text: '3.9-5.5' }]);
    expect(o.interpretation[0].coding[0].code).toBe('N');
    expect(o.effectiveDateTime).toBe('2024-03-15T11:00:00+01:00');
  });

  it('SN comparator, ratio and range', () => {
    expect(byCode('2160-0').valueQuantity).toMatchObject({ value: 0.5, comparator: '<', code: 'mg/dL' });
    expect(byCode('5370-4').valueRatio).toMatchObject({
      numerator: { value: 1 },
      denominator: { value: 128 },
    });
    expect(byCode('1234-5').valueRange).toMatchObject({ low: { value: 10 }, high: { value: 20 } });
  });

  it('ST and CWE values', () => {
    expect(byCode('8251-1').valueString).toBe('Specimen slightly lipemic');
    expect(byCode('600-7').valueCodeableConcept.coding[0]).toMatchObject({
      code: '27268008',
      display: 'Salmonella',
    });
    expect(byCode('600-7').status).toBe('preliminary');
  });

  it('ED base64 → the report presentedForm, not an Observation', () => {
    const [first] = reports.map((e) => e.resource as Res);
    expect(first?.presentedForm).toEqual([
      { contentType: 'application/pdf', data: 'JVBERi0xLjQK', title: 'Lab report' },
    ]);
    expect(observations.some((e) => (e.resource as Res).code.coding[0].code === '11502-2')).toBe(false);
  });

  it('NTE after OBX → Observation.note', () => {
    expect(byCode('2345-7').note).toEqual([{ text: 'Hemolysed sample' }]);
  });

  it('Observation requests are conditional on the identifier derived from filler, placer, code and sub-id', () => {
    const entry = observations.find((e) => (e.resource as Res).code.coding[0].code === '2345-7') as Entry;
    const id = { system: 'urn:hl7e:observation', value: 'FI2002-PL1001-2345-7' };
    expect((entry.resource as Res).identifier[0]).toEqual(id);
    expect(entry?.request?.url).toBe(
      `Observation?identifier=${encodeURIComponent(`${id.system}|${id.value}`)}`,
    );
  });

  it('the same result resent in another message keys on the same Observation identifier', () => {
    const again = convert([MSH_ORU.replace('ORU0001', 'ORU0002'), ...ORU.slice(1, 5)]);
    const url = entries(again.bundle, 'Observation')[0]?.request?.url;
    expect(url).toBe(observations[0]?.request?.url);
  });

  it('NTE after OBR → ServiceRequest.note; OBR without ORC → ServiceRequest from OBR with status from OBR-25', () => {
    const { bundle: b, issues: i } = convert([
      MSH_ORU,
      PID,
      'OBR|1|PL5^CPOE|FI6^LAB|718-7^Hemoglobin^LN|||20240315110000+0100||||||||||||||||||F',
      'NTE|1||Drawn from left arm',
      'OBX|1|NM|718-7^Hemoglobin^LN||13.2|g/dL^^UCUM|||||F',
    ]);
    expect(i).toEqual([]);
    const [sr] = resources(b, 'ServiceRequest');
    expect(sr?.note).toEqual([{ text: 'Drawn from left arm' }]);
    expect(sr?.status).toBe('completed');
    expect(sr?.identifier[0].value).toBe('PL5');
  });
});
