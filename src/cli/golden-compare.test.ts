import { describe, expect, it } from 'vitest';
import { compareGolden, goldenText, withNeutralIds } from './golden-compare.js';

const V1 = 'a'.repeat(64);
const V2 = 'b'.repeat(64);

function bundle(bundleId: string, patientId: string, provId: string, version: string, gender = 'female') {
  return {
    resourceType: 'Bundle',
    id: bundleId,
    type: 'transaction',
    entry: [
      { fullUrl: `urn:uuid:${patientId}`, resource: { resourceType: 'Patient', gender } },
      {
        fullUrl: `urn:uuid:${provId}`,
        resource: {
          resourceType: 'Provenance',
          id: provId,
          target: [{ reference: `urn:uuid:${patientId}` }],
          policy: [`urn:hl7e:mapping:ADT_A01:${version}`],
        },
        request: { method: 'PUT', url: `Provenance/${provId}` },
      },
    ],
  };
}

const one = bundle(
  '11111111-1111-5111-8111-111111111111',
  '22222222-2222-5222-8222-222222222222',
  '33333333-3333-5333-8333-333333333333',
  V1,
);
const other = bundle(
  '44444444-4444-5444-8444-444444444444',
  '55555555-5555-5555-8555-555555555555',
  '66666666-6666-5666-8666-666666666666',
  V2,
);

describe('compareGolden', () => {
  it('is `same` for the identical text', () => {
    expect(compareGolden(goldenText(one), one)).toEqual({ status: 'same', changes: [] });
  });

  it('is `ids-only` when only the ids derived from the mapping version differ', () => {
    expect(compareGolden(goldenText(one), other)).toEqual({ status: 'ids-only', changes: [] });
  });

  it('lists a content change without the id noise around it', () => {
    const changed = bundle(
      '44444444-4444-5444-8444-444444444444',
      '55555555-5555-5555-8555-555555555555',
      '66666666-6666-5666-8666-666666666666',
      V2,
      'male',
    );
    const r = compareGolden(goldenText(one), changed);
    expect(r.status).toBe('changed');
    expect(r.changes).toEqual([{ path: 'entry[0].resource.gender', expected: 'female', actual: 'male' }]);
  });

  it('labels ids by their place, per Bundle in an array', () => {
    const n = withNeutralIds([one]) as [ReturnType<typeof bundle>];
    expect(n[0].id).toBe('<id of [0] bundle>');
    expect(n[0].entry[1]!.request).toEqual({ method: 'PUT', url: 'Provenance/<id of [0] entry[1]>' });
    expect(n[0].entry[1]!.resource.policy).toEqual(['urn:hl7e:mapping:ADT_A01:<version>']);
  });

  it('writes 2-space JSON with a trailing newline', () => {
    expect(goldenText({ a: 1 })).toBe('{\n  "a": 1\n}\n');
  });
});
