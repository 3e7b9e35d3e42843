import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import type { ConvertContext } from '../converter.js';
import { V2Element } from '../v2-element.js';
import type { Vocabularies } from '../vocabulary.js';
import { zoneResolver } from './datetime.js';
import { BUILTIN_CONVERTERS } from './index.js';

const vocabulary: Vocabularies = {
  has: () => true,
  lookup: (t, code) => (t === 'CodingSystem' && code === 'LN' ? { code: 'http://loinc.org' } : undefined),
  hashOf: () => undefined,
};
const ny = zoneResolver('America/New_York');

function run(name: string, raw: string, level: 0 | 1 = 0, fields: Record<number, string> = {}) {
  const invalid: string[] = [];
  const ctx: ConvertContext = {
    vocabulary,
    zoneFor: ny,
    field: (n) => new V2Element(fields[n] ?? '', 0, DEFAULT_DELIMITERS),
    repetitions: () => [new V2Element(raw, level, DEFAULT_DELIMITERS)],
    invalid: (t) => {
      invalid.push(t);
    },
  };
  const value = BUILTIN_CONVERTERS[name]!(new V2Element(raw, level, DEFAULT_DELIMITERS), ctx);
  return { value, invalid };
}

describe('BUILTIN_CONVERTERS', () => {
  // Other converters (HD-system, TelecomValue, …) live here too; these are the primitive ones.
  const PRIMITIVES = [
    'CodeableConcept',
    'Coding',
    'CodingSystem',
    'DT',
    'DTM',
    'DTM-date',
    'DTM-instant',
    'ED',
    'ID-boolean',
    'NM',
    'ObservationValue',
    'SN',
    'TM',
    'TS',
  ];

  it('has the documented names and is frozen', () => {
    expect(Object.keys(BUILTIN_CONVERTERS)).toEqual(expect.arrayContaining(PRIMITIVES));
    expect(Object.isFrozen(BUILTIN_CONVERTERS)).toBe(true);
  });

  it('DTM uses the channel zone at that date (DST) unless the value has one', () => {
    expect(run('DTM', '202401151030').value).toBe('2024-01-15T10:30:00-05:00');
    expect(run('DTM', '202407151030').value).toBe('2024-07-15T10:30:00-04:00');
    expect(run('DTM', '202407151030+0200').value).toBe('2024-07-15T10:30:00+02:00');
    expect(run('DTM', '2024').value).toBe('2024');
  });

  it('TS reads TS-1 and applies TS-2', () => {
    expect(run('TS', '20240715103045^M').value).toBe('2024-07-15T10:30:00-04:00');
    expect(run('TS', '20240715103045^L').value).toBe('2024-07');
    expect(run('TS', '20240715103045').value).toBe('2024-07-15T10:30:45-04:00');
    // A TS inside a composite (level 1): its precision is a subcomponent.
    expect(run('TS', '20240715103045&Y', 1).value).toBe('2024');
  });

  it('DT / DTM-date / DTM-instant / TM', () => {
    expect(run('DT', '19800101').value).toBe('1980-01-01');
    expect(run('DTM-date', '198001010830').value).toBe('1980-01-01');
    expect(run('DTM-instant', '20240715').value).toBe('2024-07-15T00:00:00-04:00');
    expect(run('DTM-instant', '202407').invalid).toEqual(['DTM']);
    expect(run('TM', '083000').value).toBe('08:30:00');
  });

  it('NM / SN / ID-boolean / CodingSystem', () => {
    expect(run('NM', '-0.25').value).toBe(-0.25);
    expect(run('SN', '>^5').value).toEqual({ valueQuantity: { value: 5, comparator: '>' } });
    expect(run('SN', '~~').invalid).toEqual(['SN']);
    expect(run('ID-boolean', 'N').value).toBe(false);
    expect(run('CodingSystem', 'LN').value).toBe('http://loinc.org');
    expect(run('CodingSystem', 'HL70203').value).toBe('http://terminology.hl7.org/CodeSystem/v2-0203');
  });

  it('CodeableConcept / Coding / ED / ObservationValue', () => {
    expect(run('CodeableConcept', '718-7^Hemoglobin^LN').value).toEqual({
      coding: [{ system: 'http://loinc.org', code: '718-7', display: 'Hemoglobin' }],
      text: 'Hemoglobin',
    });
    expect(run('Coding', '718-7^Hemoglobin^LN').value).toEqual({
      system: 'http://loinc.org',
      code: '718-7',
      display: 'Hemoglobin',
    });
    expect(run('ED', '^TEXT^^A^hi').value).toEqual({ contentType: 'text/plain', data: 'aGk=' });
    expect(run('ObservationValue', '13.2', 0, { 2: 'NM', 6: 'g/dL^^UCUM' }).value).toEqual({
      valueQuantity: { value: 13.2, unit: 'g/dL', system: 'http://unitsofmeasure.org', code: 'g/dL' },
    });
  });

  it('reports each invalid value with its data type', () => {
    expect(run('DTM', '2024-07-15').invalid).toEqual(['DTM']);
    expect(run('DT', '20241301').invalid).toEqual(['DT']);
    expect(run('TS', '2024071525').invalid).toEqual(['TS']);
    expect(run('TM', '2400').invalid).toEqual(['TM']);
    expect(run('NM', '1,5').invalid).toEqual(['NM']);
    expect(run('ID-boolean', 'Yes').invalid).toEqual(['ID']);
    expect(run('ED', '^AP^PDF^Base64^***').invalid).toEqual(['ED']);
    expect(run('CodeableConcept', '^^LN').invalid).toEqual(['CWE']);
  });

  it('sets nothing and reports nothing for empty and "" values', () => {
    for (const name of PRIMITIVES) {
      expect(run(name, '', 0, { 2: 'NM' }), name).toEqual({ value: undefined, invalid: [] });
      expect(run(name, '""', 0, { 2: 'NM' }), name).toEqual({ value: undefined, invalid: [] });
    }
  });

  it('never throws, whatever the input', () => {
    const names = PRIMITIVES;
    const types = ['NM', 'SN', 'ST', 'FT', 'CWE', 'IS', 'DTM', 'TS', 'DT', 'TM', 'NR', 'DR', 'ED', 'XX', ''];
    fc.assert(
      fc.property(
        fc.constantFrom(...names),
        fc.string({ maxLength: 40 }),
        fc.constantFrom(...types),
        (name, raw, type) => {
          run(name, raw, 0, { 2: type, 6: 'mg^^UCUM' });
        },
      ),
      { numRuns: 3000 },
    );
  });
});
