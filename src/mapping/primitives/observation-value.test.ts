import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import type { ConvertContext } from '../converter.js';
import { V2Element } from '../v2-element.js';
import type { Vocabularies } from '../vocabulary.js';
import { observationValue } from './observation-value.js';

const SYSTEMS: Record<string, string> = { LN: 'http://loinc.org', SCT: 'http://snomed.info/sct' };
const vocabulary: Vocabularies = {
  has: () => true,
  lookup: (t, code) =>
    t === 'CodingSystem' && SYSTEMS[code] ? { code: SYSTEMS[code] as string } : undefined,
  hashOf: () => undefined,
};
const field = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);

/** Converts `obx5` as an OBX with OBX-2 = type and OBX-6 = units; returns the value and what was reported. */
function convert(type: string, obx5: string, units = '') {
  const invalid: string[] = [];
  const ctx: ConvertContext = {
    vocabulary,
    zoneFor: () => '-05:00',
    field: (n) => field(n === 2 ? type : n === 6 ? units : ''),
    repetitions: () => obx5.split('~').map(field),
    invalid: (t) => {
      invalid.push(t);
    },
  };
  return { value: observationValue(field(obx5), ctx), invalid };
}

const UCUM = 'http://unitsofmeasure.org';
const ORIGINAL_TEXT = 'http://hl7.org/fhir/StructureDefinition/originalText';

describe('ObservationValue: numbers', () => {
  it('NM → valueQuantity with OBX-6 units', () => {
    expect(convert('NM', '5.4', 'mg/dL^^UCUM')).toEqual({
      value: { valueQuantity: { value: 5.4, unit: 'mg/dL', system: UCUM, code: 'mg/dL' } },
      invalid: [],
    });
    expect(convert('NM', '12').value).toEqual({ valueQuantity: { value: 12 } });
  });

  it('NM with a comparator in the text → quantity with comparator', () => {
    expect(convert('NM', '<0.5', 'mg/dL^^UCUM').value).toEqual({
      valueQuantity: { value: 0.5, comparator: '<', unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
    });
    expect(convert('NM', '>=10').value).toEqual({ valueQuantity: { value: 10, comparator: '>=' } });
    expect(convert('NM', '1:128').value).toEqual({
      valueRatio: { numerator: { value: 1 }, denominator: { value: 128 } },
    });
  });

  it('NM that is no number is reported', () => {
    expect(convert('NM', 'positive')).toEqual({ value: undefined, invalid: ['NM'] });
    expect(convert('NM', '1e3')).toEqual({ value: undefined, invalid: ['NM'] });
  });

  it('SN quantity, range and ratio per the IG, units on every quantity', () => {
    expect(convert('SN', '<^0.5', 'mg/dL^^UCUM').value).toEqual({
      valueQuantity: { value: 0.5, comparator: '<', unit: 'mg/dL', system: UCUM, code: 'mg/dL' },
    });
    expect(convert('SN', '^10^-^20', '%').value).toEqual({
      valueRange: {
        extension: [{ url: ORIGINAL_TEXT, valueString: '10 - 20' }],
        low: { value: 10, unit: '%' },
        high: { value: 20, unit: '%' },
      },
    });
    expect(convert('SN', '^1^:^128').value).toEqual({
      valueRatio: {
        extension: [{ url: ORIGINAL_TEXT, valueString: '1 : 128' }],
        numerator: { value: 1 },
        denominator: { value: 128 },
      },
    });
    expect(convert('SN', '>^1^/^64').value).toMatchObject({
      valueRatio: { numerator: { value: 1, comparator: '>' }, denominator: { value: 64 } },
    });
    expect(convert('SN', '=^7').value).toEqual({ valueQuantity: { value: 7 } });
  });

  it('SN `<>`, `+` and unreadable SN → valueString with the units (IG fallback)', () => {
    expect(convert('SN', '<>^5', 'mg').value).toEqual({ valueString: '<> 5 mg' });
    expect(convert('SN', '^2^+').value).toEqual({ valueString: '2 +' });
    expect(convert('SN', '^trace').value).toEqual({ valueString: 'trace' });
    expect(convert('SN', '^^^').invalid).toEqual(['SN']);
  });

  it('SN with SN-3 `.` keeps the original text on the quantity', () => {
    expect(convert('SN', '^2^.^1').value).toEqual({
      valueQuantity: { extension: [{ url: ORIGINAL_TEXT, valueString: '2 . 1' }], value: 2 },
    });
  });

  it('NR → valueRange', () => {
    expect(convert('NR', '3.5^7').value).toEqual({ valueRange: { low: { value: 3.5 }, high: { value: 7 } } });
    expect(convert('NR', '^7').value).toEqual({ valueRange: { high: { value: 7 } } });
    expect(convert('NR', '9^7').invalid).toEqual(['NR']);
    expect(convert('NR', 'a^7').invalid).toEqual(['NR']);
  });
});

describe('ObservationValue: text, codes, times', () => {
  it('ST/TX/FT → valueString, escapes and formatting decoded', () => {
    expect(convert('ST', 'Negative').value).toEqual({ valueString: 'Negative' });
    expect(convert('ST', 'A\\S\\B').value).toEqual({ valueString: 'A^B' });
    expect(convert('FT', 'line one\\.br\\line two').value).toEqual({ valueString: 'line one\nline two' });
    expect(convert('TX', 'see note \\F\\ 2').value).toEqual({ valueString: 'see note | 2' });
    expect(convert('ST', '   ').value).toBeUndefined();
  });

  it('CWE/CE/CNE → valueCodeableConcept', () => {
    expect(convert('CWE', '260373001^Detected^SCT').value).toEqual({
      valueCodeableConcept: {
        coding: [{ system: 'http://snomed.info/sct', code: '260373001', display: 'Detected' }],
        text: 'Detected',
      },
    });
    expect(convert('CE', 'POS^Positive^L').value).toMatchObject({
      valueCodeableConcept: { text: 'Positive' },
    });
    expect(convert('CNE', '^^^^^').invalid).toEqual(['CNE']);
  });

  it('IS/ID → a CodeableConcept with the code', () => {
    expect(convert('IS', 'A').value).toEqual({ valueCodeableConcept: { coding: [{ code: 'A' }] } });
  });

  it('DTM/TS/DT → valueDateTime, TM → valueTime', () => {
    expect(convert('DTM', '202403151030').value).toEqual({ valueDateTime: '2024-03-15T10:30:00-05:00' });
    expect(convert('TS', '20240315103045^M').value).toEqual({ valueDateTime: '2024-03-15T10:30:00-05:00' });
    expect(convert('TS', '20240315103045^D').value).toEqual({ valueDateTime: '2024-03-15' });
    expect(convert('DT', '20240315').value).toEqual({ valueDateTime: '2024-03-15' });
    expect(convert('TM', '1030').value).toEqual({ valueTime: '10:30:00' });
    expect(convert('DTM', '20240230')).toEqual({ value: undefined, invalid: ['DTM'] });
    expect(convert('TM', '2500')).toEqual({ value: undefined, invalid: ['TM'] });
  });

  it('DR → valuePeriod', () => {
    expect(convert('DR', '20240101^20240131').value).toEqual({
      valuePeriod: { start: '2024-01-01', end: '2024-01-31' },
    });
    expect(convert('DR', 'x^20240131').invalid).toEqual(['DR']);
  });
});

describe('ObservationValue: what it leaves out', () => {
  it('ED/RP are for DiagnosticReport.presentedForm: nothing, no report', () => {
    expect(convert('ED', '^AP^PDF^Base64^JVBERi0=')).toEqual({ value: undefined, invalid: [] });
    expect(convert('RP', 'http://x/doc.pdf^^AP^PDF')).toEqual({ value: undefined, invalid: [] });
  });

  it('empty and "" give nothing silently', () => {
    expect(convert('NM', '')).toEqual({ value: undefined, invalid: [] });
    expect(convert('NM', '""')).toEqual({ value: undefined, invalid: [] });
  });

  it('reports an unsupported OBX-2 and a missing one', () => {
    expect(convert('NA', '1^2^3').invalid).toEqual(['NA']);
    expect(convert('', '5').invalid).toEqual(['varies']);
  });

  it('accepts OBX-2 in lower case', () => {
    expect(convert('nm', '5').value).toEqual({ valueQuantity: { value: 5 } });
  });
});

describe('ObservationValue over several repetitions', () => {
  it('joins a text result given in several repetitions into one valueString, one line each', () => {
    expect(convert('TX', 'first line~second line').value).toEqual({ valueString: 'first line\nsecond line' });
  });
});
