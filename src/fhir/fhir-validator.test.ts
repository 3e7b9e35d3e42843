import { beforeAll, describe, expect, it } from 'vitest';
import { isEngineError } from '../errors.js';
import { conditionalUrl, identifierToken, transactionEntry } from './conditional-request.js';
import { deterministicUrn } from './deterministic-id.js';
import { loadFhirDefinitions } from './fhir-definitions.js';
import type { Bundle, Identifier, Resource } from './fhir-types.js';
import {
  type FhirIssue,
  hasErrors,
  toEngineError,
  validateBundle,
  validateFhirResource,
} from './fhir-validator.js';

const patient: Resource = {
  resourceType: 'Patient',
  identifier: [{ system: 'http://hosp.example/mrn', value: '12345' }],
  name: [{ family: 'Doe', given: ['Jane'] }],
  gender: 'female',
  birthDate: '1980-04-01',
};

function observation(subject: string): Resource {
  return {
    resourceType: 'Observation',
    identifier: [{ system: 'urn:hl7e:entry', value: 'obx-1' }],
    status: 'final',
    code: { coding: [{ system: 'http://loinc.org', code: '2345-7', display: 'Glucose' }] },
    subject: { reference: subject },
    effectiveDateTime: '2024-03-15T10:30:00-05:00',
    valueQuantity: { value: 5.4, unit: 'mmol/L', system: 'http://unitsofmeasure.org', code: 'mmol/L' },
  };
}

function errorsOf(issues: FhirIssue[]): Pick<FhirIssue, 'path' | 'category'>[] {
  return issues.filter((i) => i.severity === 'error').map(({ path, category }) => ({ path, category }));
}

beforeAll(() => loadFhirDefinitions());

describe('validateFhirResource', () => {
  it('passes a valid Patient', () => {
    expect(validateFhirResource(patient)).toEqual([]);
  });

  it('passes an Observation with valueQuantity and a urn:uuid subject, without warnings', () => {
    expect(validateFhirResource(observation(deterministicUrn('p')))).toEqual([]);
  });

  it('reports a wrong JSON type at its path', () => {
    const issues = validateFhirResource({ ...patient, active: 'yes' });
    expect(errorsOf(issues)).toEqual([{ path: 'Patient.active', category: 'wrong type' }]);
    expect(issues[0]).toMatchObject({ resourceType: 'Patient', code: 'structure', severity: 'error' });
  });

  it('reports an unknown property', () => {
    expect(errorsOf(validateFhirResource({ ...patient, nickname: 'x' }))).toEqual([
      { path: 'Patient.nickname', category: 'unknown property' },
    ]);
  });

  it('reports a bad date format', () => {
    expect(errorsOf(validateFhirResource({ ...patient, birthDate: '01/04/1980' }))).toEqual([
      { path: 'Patient.birthDate', category: 'invalid format' },
    ]);
  });

  it('reports missing Observation.status and Observation.code', () => {
    const { status: _s, code: _c, ...rest } = observation('Patient/1');
    expect(errorsOf(validateFhirResource(rest as Resource))).toEqual([
      { path: 'Observation.status', category: 'missing required' },
      { path: 'Observation.code', category: 'missing required' },
    ]);
  });

  it('reports cardinality and invariants', () => {
    expect(errorsOf(validateFhirResource({ ...patient, identifier: { value: '1' } }))).toEqual([
      { path: 'Patient.identifier', category: 'cardinality' },
    ]);
    // obs-6: dataAbsentReason only when there is no value.
    const issues = validateFhirResource({ ...observation('Patient/1'), dataAbsentReason: { text: 'x' } });
    expect(issues).toEqual([
      expect.objectContaining({
        path: 'Observation',
        code: 'invariant',
        category: 'constraint',
        constraint: 'obs-6',
      }),
    ]);
  });

  it('checks codes against required bindings (medplum does not)', () => {
    expect(errorsOf(validateFhirResource({ ...patient, gender: 'F' }))).toEqual([
      { path: 'Patient.gender', category: 'invalid code' },
    ]);
    expect(validateFhirResource({ ...observation('Patient/1'), status: 'done' })).toEqual([
      {
        resourceType: 'Observation',
        path: 'Observation.status',
        code: 'code-invalid',
        severity: 'error',
        category: 'invalid code',
      },
    ]);
    const comparator = { ...observation('Patient/1'), valueQuantity: { value: 1, comparator: '=<' } };
    expect(errorsOf(validateFhirResource(comparator))).toEqual([
      { path: 'Observation.valueQuantity.comparator', category: 'invalid code' },
    ]);
  });

  it('never copies the invalid value, or a property name that is not an element name, into an issue', () => {
    const issues = validateFhirResource({
      ...patient,
      gender: 'SECRETNAME',
      birthDate: 'SECRETNAME',
      'SECRETNAME here': 'SECRETNAME',
      managingOrganization: { reference: 'SECRETNAME/1' },
      text: { status: 'generated', div: 'SECRETNAME' },
    });
    expect(issues.length).toBeGreaterThanOrEqual(4);
    expect(JSON.stringify(issues)).not.toContain('SECRETNAME');
    for (const issue of issues) {
      const err = toEngineError(issue);
      expect(err.message).not.toContain('SECRETNAME');
      expect(JSON.stringify(err.details)).not.toContain('SECRETNAME');
    }
    expect(issues.find((i) => i.category === 'unknown property')?.path).toBe('Patient.?');
  });

  it('reports an unknown resource type without throwing', () => {
    expect(validateFhirResource({ resourceType: 'Patientt' })).toEqual([
      expect.objectContaining({ code: 'invalid', severity: 'error', category: 'unknown resource type' }),
    ]);
  });
});

describe('validateBundle', () => {
  function transaction(count: number): Bundle {
    const patientUrl = deterministicUrn('msg', 'patient');
    const entries = [
      transactionEntry({
        fullUrl: patientUrl,
        resource: structuredClone(patient),
        method: 'PUT',
        url: conditionalUrl('Patient', [
          ['identifier', identifierToken((patient.identifier as Identifier[])[0]!)!],
        ]),
      }),
    ];
    for (let i = 1; i < count; i++) {
      entries.push(
        transactionEntry({
          fullUrl: deterministicUrn('msg', String(i)),
          resource: observation(patientUrl),
          method: 'POST',
          url: 'Observation',
          ifNoneExist: `identifier=urn%3Ahl7e%3Aentry%7C${i}`,
        }),
      );
    }
    return {
      resourceType: 'Bundle',
      type: 'transaction',
      identifier: { value: 'MSG00001' },
      timestamp: '2024-03-15T10:30:00-05:00',
      entry: entries,
    };
  }

  it('passes a transaction Bundle with request entries and urn:uuid references', () => {
    expect(validateBundle(transaction(20))).toEqual([]);
  });

  it('reports an entry resource issue once, with the entry resource type and its path in the Bundle', () => {
    const bundle = transaction(3);
    (bundle.entry![2]!.resource as Resource).status = undefined;
    bundle.entry![0]!.resource!.gender = 'SECRETNAME';
    const issues = validateBundle(bundle);
    expect(issues).toEqual([
      {
        resourceType: 'Observation',
        path: 'Bundle.entry[2].resource.status',
        code: 'structure',
        severity: 'error',
        category: 'missing required',
      },
      {
        resourceType: 'Patient',
        path: 'Bundle.entry[0].resource.gender',
        code: 'code-invalid',
        severity: 'error',
        category: 'invalid code',
      },
    ]);
    expect(JSON.stringify(issues)).not.toContain('SECRETNAME');
  });

  it('reports a transaction entry without a request (bdl-3)', () => {
    const bundle = transaction(2);
    delete bundle.entry![1]!.request;
    expect(validateBundle(bundle)).toEqual([
      expect.objectContaining({
        resourceType: 'Bundle',
        path: 'Bundle',
        category: 'constraint',
        constraint: 'bdl-3',
      }),
    ]);
  });

  it('reports a urn:uuid reference that names no entry', () => {
    const bundle = transaction(2);
    bundle.entry![1]!.resource = observation(deterministicUrn('elsewhere'));
    expect(validateBundle(bundle)).toEqual([
      {
        resourceType: 'Observation',
        path: 'Bundle.entry[1].resource.subject',
        code: 'not-found',
        severity: 'error',
        category: 'unresolved reference',
      },
    ]);
  });
});

describe('toEngineError', () => {
  it('is FHIR_INVALID with codes and the path only', () => {
    const [issue] = validateFhirResource({ ...patient, birthDate: '1980-13-45' });
    const err = toEngineError(issue!);
    expect(isEngineError(err, 'FHIR_INVALID')).toBe(true);
    expect(err.retryable).toBe(false);
    expect(err.details).toMatchObject({
      resourceType: 'Patient',
      path: 'Patient.birthDate',
      issue: 'structure',
    });
    expect(err.message).toBe('Patient failed FHIR R4 validation at Patient.birthDate (structure)');
    expect(hasErrors([issue!])).toBe(true);
  });
});
