import { beforeAll, describe, expect, it } from 'vitest';
import { loadFhirDefinitions, requiredCodes } from './fhir-definitions.js';
import { findInvalidCodes } from './required-bindings.js';

beforeAll(() => loadFhirDefinitions());

describe('requiredCodes', () => {
  it('enumerates value sets built from complete code systems', () => {
    expect([...requiredCodes('http://hl7.org/fhir/ValueSet/administrative-gender|4.0.1')!].sort()).toEqual([
      'female',
      'male',
      'other',
      'unknown',
    ]);
    expect(requiredCodes('http://hl7.org/fhir/ValueSet/observation-status')!.has('final')).toBe(true);
  });
  it('is undefined for value sets it cannot enumerate offline', () => {
    expect(requiredCodes('http://hl7.org/fhir/ValueSet/mimetypes')).toBeUndefined();
    expect(requiredCodes('http://example.org/no-such-set')).toBeUndefined();
  });
});

describe('findInvalidCodes', () => {
  it('accepts valid codes', () => {
    expect(
      findInvalidCodes({ resourceType: 'Patient', gender: 'male', name: [{ use: 'official' }] }),
    ).toEqual([]);
  });

  it('finds bad codes in nested elements, arrays, choice types and contained resources', () => {
    const obs = {
      resourceType: 'Observation',
      status: 'final',
      component: [{ valueQuantity: { value: 1 } }, { valueQuantity: { value: 1, comparator: '=' } }],
      contained: [{ resourceType: 'Patient', gender: 'M' }],
    };
    expect(findInvalidCodes(obs)).toEqual([
      'Observation.component[1].valueQuantity.comparator',
      'Observation.contained[0].gender',
    ]);
    expect(findInvalidCodes({ resourceType: 'AllergyIntolerance', category: ['food', 'drink'] })).toEqual([
      'AllergyIntolerance.category[1]',
    ]);
  });

  it('walks Bundle entries by their own resource type', () => {
    const bundle = {
      resourceType: 'Bundle',
      type: 'transaction',
      entry: [
        { resource: { resourceType: 'Encounter', status: 'open' }, request: { method: 'PUT', url: 'x' } },
      ],
    };
    expect(findInvalidCodes(bundle)).toEqual(['Bundle.entry[0].resource.status']);
  });

  it('leaves unbound, unenumerable and malformed values to medplum', () => {
    expect(
      findInvalidCodes({
        resourceType: 'DocumentReference',
        content: [{ attachment: { contentType: 'application/x-anything' } }],
      }),
    ).toEqual([]);
    expect(findInvalidCodes({ resourceType: 'Patient', gender: 5, name: 'x', contact: [null] })).toEqual([]);
    expect(findInvalidCodes({ resourceType: 'NotAType', gender: 'x' })).toEqual([]);
  });
});
