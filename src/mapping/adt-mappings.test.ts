import { describe, expect, it } from 'vitest';
import type { Bundle, Resource } from '../fhir/fhir-types.js';
import { validateBundle } from '../fhir/fhir-validator.js';
import { parse } from '../hl7/index.js';
import { convertMessage } from './conversion.js';
import { MappingCatalog } from './mapping-catalog.js';

// The shipped ADT message maps and their segment and data-type maps, on made-up messages.
const catalog = MappingCatalog.load();

type Res = Resource & Record<string, any>;
type Ref = { reference?: string };
type Coding = { code?: string };
/** Encounter.participant (type is a list) and Provenance.agent (type is one concept). */
type Participant = { type: { coding: Coding[] }[]; individual: Ref };
type Agent = { type: { coding: Coding[] }; who: Ref };

const participantCode = (p: Participant) => p.type[0]?.coding[0]?.code;

function convert(lines: string[]) {
  const result = convertMessage(parse(lines.join('\r')), {
    catalog,
    rawSha256: 'b'.repeat(64),
    timezone: 'UTC',
  });
  return { ...result, issues: validateBundle(result.bundle) };
}

function all(bundle: Bundle, type: string): Res[] {
  return (bundle.entry ?? []).map((e) => e.resource as Res).filter((r) => r.resourceType === type);
}

function one(bundle: Bundle, type: string): Res {
  const found = all(bundle, type);
  expect(found).toHaveLength(1);
  return found[0] as Res;
}

/** The resource a Bundle-local reference points at; fails when it does not resolve. */
function deref(bundle: Bundle, ref: { reference?: string } | undefined): Res {
  const hit = (bundle.entry ?? []).find((e) => e.fullUrl === ref?.reference);
  expect(hit, `reference ${ref?.reference} resolves`).toBeDefined();
  return hit?.resource as Res;
}

const msh = (type: string) =>
  `MSH|^~\\&|REG|GOODHOSP^1.2.3.4.5^ISO|FHIR|RECV|20240315103000+0100||${type}|MSG1|P|2.5`;
const EVN = (ev: string) => `EVN|${ev}|20240315103000+0100|||OP1^Clerk^Olga|20240315102500+0100`;
const PID =
  'PID|1||MRN001^^^GOODHOSP^MR~999887777^^^SSA^SS||Testperson^Anna^Maria||19800102|F|||1 Main St^^Springfield^IL^62701^USA^H||^PRN^PH^^1^217^5551234|||M';
const PD1 = 'PD1|||Family Clinic^^FC01|DOC9^Primary^Paul';
const NK1 =
  'NK1|1|Testperson^Bert|SPO^Spouse^HL70063|1 Main St^^Springfield^IL^62701|^PRN^PH^^1^217^5554321||C';
const pv1 = (cls: string, end = '') =>
  `PV1|1|${cls}|WARD1^101^A^GOODHOSP||||DOC1^Attend^Alice|DOC2^Refer^Rob|||||||||||V123^^^GOODHOSP^VN|||||||||||||||||||||||||20240315100000+0100|${end}`;
const PV2 = 'PV2|||CHEST^Chest pain^L';
const AL1 = 'AL1|1|DA|70618^Penicillin^RXNORM|SV|Hives|20100101';
const DG1 = 'DG1|1||I21.9^Acute myocardial infarction^I10';
const IN1 = 'IN1|1|PLAN1^Gold Plan|INS1^^^GOODHOSP|Acme Insurance||||GRP7||||20240101|20241231||||SEL^Self';
const ZPD = 'ZPD|1|custom';

const full = (type: string, ev: string, cls = 'I', end = '') => [
  msh(type),
  EVN(ev),
  PID,
  PD1,
  NK1,
  pv1(cls, end),
  PV2,
  AL1,
  DG1,
  IN1,
  ZPD,
];
const short = (type: string, ev: string, cls = 'I') => [msh(type), EVN(ev), PID, PD1, pv1(cls), PV2, ZPD];

/** Trigger → message, the map expected to take it, Encounter status and class (undefined: no Encounter). */
const cases: [string, string[], string, string | undefined, string | undefined][] = [
  ['A01', full('ADT^A01^ADT_A01', 'A01'), 'ADT_A01', 'in-progress', 'IMP'],
  ['A02', short('ADT^A02^ADT_A02', 'A02'), 'ADT_A02', 'in-progress', 'IMP'],
  ['A03', full('ADT^A03^ADT_A03', 'A03', 'I', '20240320120000+0100'), 'ADT_A03', 'finished', 'IMP'],
  ['A04', full('ADT^A04^ADT_A01', 'A04', 'O'), 'ADT_A01', 'in-progress', 'AMB'],
  ['A05', full('ADT^A05^ADT_A05', 'A05', 'P'), 'ADT_A05', 'planned', 'PRENC'],
  ['A06', full('ADT^A06^ADT_A06', 'A06'), 'ADT_A06', 'in-progress', 'IMP'],
  ['A07', full('ADT^A07^ADT_A06', 'A07', 'O'), 'ADT_A06', 'in-progress', 'AMB'],
  ['A08', full('ADT^A08^ADT_A01', 'A08', 'E'), 'ADT_A01', 'in-progress', 'EMER'],
  ['A11', [...short('ADT^A11^ADT_A09', 'A11'), DG1], 'ADT_A11', 'cancelled', 'IMP'],
  ['A13', full('ADT^A13^ADT_A01', 'A13', 'I', '20240320120000+0100'), 'ADT_A01', 'in-progress', 'IMP'],
  [
    'A28',
    [msh('ADT^A28^ADT_A05'), EVN('A28'), PID, PD1, NK1, 'PV1|1|N', AL1, ZPD],
    'ADT_A05',
    undefined,
    undefined,
  ],
  ['A31', [msh('ADT^A31^ADT_A05'), EVN('A31'), PID, PD1, 'PV1|1|N', ZPD], 'ADT_A05', undefined, undefined],
];

describe('ADT message maps', () => {
  it.each(cases)('%s: patient, encounter, valid FHIR, Z-segment reported', (_ev, lines, map, status, cls) => {
    const { bundle, report, mapping, issues } = convert(lines);
    expect(mapping.name).toBe(map);
    expect(issues).toEqual([]);
    expect(bundle.type).toBe('transaction');

    const patient = one(bundle, 'Patient');
    expect(patient.identifier[0]).toMatchObject({
      value: 'MRN001',
      system: 'urn:hl7e:assigning-authority:GOODHOSP',
      type: { coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0203', code: 'MR' }] },
    });
    expect(patient.identifier[1]).toMatchObject({ value: '999887777', type: { coding: [{ code: 'SS' }] } });
    expect(patient.name[0]).toEqual({ family: 'Testperson', given: ['Anna', 'Maria'] });
    expect(patient.birthDate).toBe('1980-01-02');
    expect(patient.gender).toBe('female');
    expect(patient.maritalStatus.coding[0]).toMatchObject({ code: 'M' });
    expect(patient.address[0]).toMatchObject({ line: ['1 Main St'], city: 'Springfield', use: 'home' });
    expect(patient.telecom[0]).toEqual({ use: 'home', system: 'phone', value: '+1 (217) 5551234' });
    // PD1-3 / PD1-4 → general practitioners, resolved in the Bundle.
    expect(patient.generalPractitioner.map((r: Ref) => deref(bundle, r).resourceType)).toEqual([
      'Organization',
      'Practitioner',
    ]);

    const encounters = all(bundle, 'Encounter');
    if (status === undefined) {
      // 'PV1||N' names no visit: no Encounter, and the PV1 is reported rather than dropped silently.
      expect(encounters).toEqual([]);
      expect(report.unmappedSegments).toContain('PV1[1]');
    } else {
      const enc = one(bundle, 'Encounter');
      expect(enc.status).toBe(status);
      expect(enc.class.code).toBe(cls);
      expect(enc.identifier[0]).toMatchObject({ value: 'V123', type: { coding: [{ code: 'VN' }] } });
      expect(deref(bundle, enc.subject)).toBe(patient);
      expect(enc.period.start).toBe('2024-03-15T10:00:00+01:00');
      const attender = (enc.participant as Participant[]).find((p) => participantCode(p) === 'ATND');
      expect(deref(bundle, attender?.individual)).toMatchObject({
        resourceType: 'Practitioner',
        // DOC1 has no assigning authority: the entry is keyed on an identifier derived from id and name.
        identifier: [{ value: 'DOC1' }, { system: 'urn:hl7e:named' }],
        name: [{ family: 'Attend', given: ['Alice'] }],
      });
      const loc = deref(bundle, enc.location[0].location);
      expect(loc).toMatchObject({
        resourceType: 'Location',
        name: 'A',
        physicalType: { coding: [{ code: 'bd' }] },
      });
      expect(deref(bundle, loc.partOf)).toMatchObject({ name: 'GOODHOSP' });
      expect(enc.reasonCode[0].coding[0].code).toBe('CHEST'); // PV2-3
    }

    // The message's Provenance: event, author (sending facility), operator, times.
    const prov = one(bundle, 'Provenance');
    expect(prov.activity.coding[0]).toEqual({
      code: _ev,
      system: 'http://terminology.hl7.org/CodeSystem/v2-0003',
    });
    expect(prov.recorded).toBe('2024-03-15T10:30:00+01:00');
    expect(prov.occurredDateTime).toBe('2024-03-15T10:25:00+01:00');
    const author = (prov.agent as Agent[]).find((a) => a.type.coding[0]?.code === 'author');
    expect(deref(bundle, author?.who)).toMatchObject({
      resourceType: 'Organization',
      name: 'GOODHOSP',
      identifier: [{ system: 'urn:ietf:rfc:3986', value: 'urn:oid:1.2.3.4.5' }],
    });
    const operator = (prov.agent as Agent[]).find((a) => a.type.coding[0]?.code === 'enterer');
    expect(deref(bundle, operator?.who).name[0].family).toBe('Clerk');

    expect(report.unmappedSegments).toContain('ZPD[1]');
    expect(report.unmappedFields).toEqual([]);
  });

  it('maps NK1, AL1, DG1 and IN1 with references to the patient and encounter', () => {
    const { bundle, issues } = convert(full('ADT^A01^ADT_A01', 'A01'));
    expect(issues).toEqual([]);
    const patient = one(bundle, 'Patient');
    const encounter = one(bundle, 'Encounter');

    expect(patient.contact).toEqual([
      expect.objectContaining({
        name: { family: 'Testperson', given: ['Bert'] },
        relationship: [
          { coding: [expect.objectContaining({ code: 'SPS' })] },
          {
            coding: [
              expect.objectContaining({ code: 'C', system: 'http://terminology.hl7.org/CodeSystem/v2-0131' }),
            ],
          },
        ],
        telecom: [{ use: 'home', system: 'phone', value: '+1 (217) 5554321' }],
      }),
    ]);

    const allergy = one(bundle, 'AllergyIntolerance');
    expect(deref(bundle, allergy.patient)).toBe(patient);
    expect(allergy).toMatchObject({
      clinicalStatus: { coding: [{ code: 'active' }] },
      category: ['medication'],
      criticality: 'high',
      code: { coding: [{ code: '70618', display: 'Penicillin' }] },
      reaction: [{ manifestation: [{ text: 'Hives' }] }],
      onsetDateTime: '2010-01-01',
    });

    const condition = one(bundle, 'Condition');
    expect(deref(bundle, condition.subject)).toBe(patient);
    expect(deref(bundle, condition.encounter)).toBe(encounter);
    expect(condition.code.coding[0]).toMatchObject({ code: 'I21.9' });
    expect(condition.category[0].coding[0].code).toBe('encounter-diagnosis');
    expect(condition.clinicalStatus.coding[0].code).toBe('active');

    const coverage = one(bundle, 'Coverage');
    expect(deref(bundle, coverage.beneficiary)).toBe(patient);
    expect(coverage).toMatchObject({
      status: 'active',
      period: { start: '2024-01-01', end: '2024-12-31' },
      relationship: { coding: [{ code: 'ONESELF' }] },
      class: [{ value: 'GRP7', type: { coding: [{ code: 'group' }] } }],
    });
    expect(coverage.payor[0].display).toBe('Acme Insurance');
    expect(deref(bundle, coverage.payor[0])).toMatchObject({
      resourceType: 'Organization',
      identifier: [{ value: 'INS1' }],
    });
  });

  it('gives ADT resources without ids of their own a stable identity from patient, visit and code', () => {
    const a = convert(full('ADT^A01^ADT_A01', 'A01')).bundle;
    const b = convert(full('ADT^A08^ADT_A01', 'A08')).bundle;
    for (const type of ['AllergyIntolerance', 'Condition', 'Coverage']) {
      const url = (x: Bundle) => x.entry?.find((e) => e.resource?.resourceType === type)?.request?.url;
      expect(url(a)).toBe(url(b));
      expect(url(a)).toMatch(new RegExp(`^${type}\\?identifier=urn%3Ahl7e%3A`));
    }
    expect(one(a, 'Condition').identifier[0]).toEqual({
      system: 'urn:hl7e:condition',
      value: 'MRN001-V123-I21.9',
    });
  });

  it('A40: the surviving patient replaces the merged-away one, linked by identifier', () => {
    const { bundle, report, mapping, issues } = convert([
      msh('ADT^A40^ADT_A39'),
      EVN('A40'),
      PID,
      'MRG|MRN777^^^GOODHOSP^MR',
      'PID|1||MRN002^^^GOODHOSP^MR||Other^Otto||19700101|M',
      'MRG|MRN778^^^GOODHOSP^MR~OLD9^^^LEGACY^PI',
      ZPD,
    ]);
    expect(mapping.name).toBe('ADT_A40');
    expect(issues).toEqual([]);
    const [first, second] = all(bundle, 'Patient');
    expect(first?.identifier[0].value).toBe('MRN001');
    expect(first?.link).toEqual([
      {
        type: 'replaces',
        other: {
          identifier: expect.objectContaining({
            value: 'MRN777',
            system: 'urn:hl7e:assigning-authority:GOODHOSP',
          }),
        },
      },
    ]);
    // Each MRG joins the PID before it; every repetition of MRG-1 is a link.
    expect(second?.identifier[0].value).toBe('MRN002');
    expect(
      second?.link.map((l: { other: { identifier: { value: string } } }) => l.other.identifier.value),
    ).toEqual(['MRN778', 'OLD9']);
    expect(all(bundle, 'Encounter')).toEqual([]);
    expect(report.unmappedSegments).toEqual(['ZPD[1]']);
  });

  it('takes ADT events without a map of their own with the generic map, after the specific ones', () => {
    expect(catalog.defaultFor('ADT', 'A01')).toBe('ADT_A01');
    expect(catalog.defaultFor('ADT', 'A40')).toBe('ADT_A40');
    const { bundle, mapping, issues, report } = convert([...short('ADT^A21^ADT_A21', 'A21'), 'MRG|X1']);
    expect(mapping.name).toBe('ADT_Generic');
    expect(issues).toEqual([]);
    expect(one(bundle, 'Encounter').status).toBe('onleave');
    expect(report.unmappedSegments).toEqual(['ZPD[1]', 'MRG[1]']);
  });

  it('reports a second attending doctor instead of dropping it silently', () => {
    const lines = full('ADT^A01^ADT_A01', 'A01').map((l) =>
      l.startsWith('PV1') ? l.replace('DOC1^Attend^Alice', 'DOC1^Attend^Alice~DOC3^Other^Olaf') : l,
    );
    const { bundle, report, issues } = convert(lines);
    expect(issues).toEqual([]);
    expect(report.unmappedFields).toEqual(['PV1[1]-7(2)']);
    expect(
      (one(bundle, 'Encounter').participant as Participant[]).filter((p) => participantCode(p) === 'ATND'),
    ).toHaveLength(1);
  });
});
