import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import { V2Element } from '../v2-element.js';
import type { Vocabularies, VocabularyEntry } from '../vocabulary.js';
import { codingSystemUri, toCodeableConcept, toCoding } from './coded.js';

/** A tiny CodingSystem table, case-insensitive like the real loader's look-up. */
function vocabulary(rows: Record<string, string>): Vocabularies {
  const table = new Map<string, VocabularyEntry>(
    Object.entries(rows).map(([v2, uri]) => [v2.toUpperCase(), { code: uri }]),
  );
  return {
    has: (t) => t === 'CodingSystem',
    lookup: (t, code) => (t === 'CodingSystem' ? table.get(code.toUpperCase()) : undefined),
    hashOf: () => undefined,
  };
}

const ctx = {
  vocabulary: vocabulary({
    LN: 'http://loinc.org',
    SCT: 'http://snomed.info/sct',
    I10: 'http://hl7.org/fhir/sid/icd-10',
  }),
};
const field = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);

describe('codingSystemUri', () => {
  it('uses the CodingSystem table first', () => {
    expect(codingSystemUri('LN', ctx.vocabulary)).toBe('http://loinc.org');
    expect(codingSystemUri('ln', ctx.vocabulary)).toBe('http://loinc.org');
  });

  it('maps HL7nnnn to the v2 table code systems', () => {
    expect(codingSystemUri('HL70136', ctx.vocabulary)).toBe('http://terminology.hl7.org/CodeSystem/v2-0136');
    expect(codingSystemUri('HL70078', ctx.vocabulary)).toBe('http://terminology.hl7.org/CodeSystem/v2-0078');
  });

  it('keeps URIs, wraps OIDs and gives local names a URN', () => {
    expect(codingSystemUri('http://example.org/cs', ctx.vocabulary)).toBe('http://example.org/cs');
    expect(codingSystemUri('2.16.840.1.113883.6.1', ctx.vocabulary)).toBe('urn:oid:2.16.840.1.113883.6.1');
    expect(codingSystemUri('99ZZZ', ctx.vocabulary)).toBe('urn:hl7e:coding-system:99ZZZ');
    expect(codingSystemUri('L', ctx.vocabulary)).toBe('urn:hl7e:coding-system:L');
    expect(codingSystemUri('MY LAB', ctx.vocabulary)).toBe('urn:hl7e:coding-system:MY%20LAB');
    expect(codingSystemUri('HL7013', ctx.vocabulary)).toBe('urn:hl7e:coding-system:HL7013');
    expect(codingSystemUri('1.2.', ctx.vocabulary)).toBe('urn:hl7e:coding-system:1.2.');
    expect(codingSystemUri('', ctx.vocabulary)).toBeUndefined();
  });
});

describe('toCodeableConcept (IG CWE[CodeableConcept])', () => {
  it('maps all three triplets with versions and original text', () => {
    const cwe = field(
      '2345-7^Glucose^LN^GLU^Glucose serum^99LAB^2.76^v1^Glucose, fasting^ABC^Alt two^SCT^2024',
    );
    expect(toCodeableConcept(cwe, ctx)).toEqual({
      coding: [
        { system: 'http://loinc.org', version: '2.76', code: '2345-7', display: 'Glucose' },
        { system: 'urn:hl7e:coding-system:99LAB', version: 'v1', code: 'GLU', display: 'Glucose serum' },
        { system: 'http://snomed.info/sct', version: '2024', code: 'ABC', display: 'Alt two' },
      ],
      text: 'Glucose, fasting',
    });
  });

  it('takes text from the first display when CWE-9 is empty', () => {
    expect(toCodeableConcept(field('F^Female^HL70001'), ctx)).toEqual({
      coding: [{ system: 'http://terminology.hl7.org/CodeSystem/v2-0001', code: 'F', display: 'Female' }],
      text: 'Female',
    });
  });

  it('reads CE (six components) and a code without a system', () => {
    expect(toCodeableConcept(field('POS^Positive^L^P^Pos^99X'), ctx)?.coding).toHaveLength(2);
    expect(toCodeableConcept(field('ABC'), ctx)).toEqual({ coding: [{ code: 'ABC' }] });
  });

  it('puts a triplet without a code into text only', () => {
    expect(toCodeableConcept(field('^Negative for influenza'), ctx)).toEqual({
      text: 'Negative for influenza',
    });
    expect(toCodeableConcept(field('^^^P^Pos^L'), ctx)).toEqual({
      coding: [{ system: 'urn:hl7e:coding-system:L', code: 'P', display: 'Pos' }],
      text: 'Pos',
    });
  });

  it('decodes escapes', () => {
    expect(toCodeableConcept(field('A\\T\\B^A \\T\\ B^L'), ctx)?.coding?.[0]).toMatchObject({
      code: 'A&B',
      display: 'A & B',
    });
  });

  it('returns undefined for empty values', () => {
    expect(toCodeableConcept(field(''), ctx)).toBeUndefined();
    expect(toCodeableConcept(field('""'), ctx)).toBeUndefined();
    expect(toCodeableConcept(field('^^^^^'), ctx)).toBeUndefined();
  });

  it('reads a CWE that is a component (subcomponents)', () => {
    const comp = new V2Element('mg&milligram&UCUM', 1, DEFAULT_DELIMITERS);
    expect(toCodeableConcept(comp, ctx)?.coding?.[0]).toMatchObject({ code: 'mg', display: 'milligram' });
  });
});

describe('toCoding (IG CWE[Coding])', () => {
  it('maps the first triplet and version', () => {
    expect(toCoding(field('2345-7^Glucose^LN^X^Y^Z^2.76'), ctx)).toEqual({
      system: 'http://loinc.org',
      version: '2.76',
      code: '2345-7',
      display: 'Glucose',
    });
  });
  it('keeps a display alone and is undefined for empties', () => {
    expect(toCoding(field('^Just text'), ctx)).toEqual({ display: 'Just text' });
    expect(toCoding(field('^^LN'), ctx)).toBeUndefined();
    expect(toCoding(field('""'), ctx)).toBeUndefined();
  });
});
