import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import { V2Element } from '../v2-element.js';
import { parseComparatorText, parseStructuredNumeric, toFhirDecimal } from './numeric.js';

const field = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);

describe('toFhirDecimal', () => {
  it('reads v2 NM', () => {
    expect(toFhirDecimal('5')).toBe(5);
    expect(toFhirDecimal('+5')).toBe(5);
    expect(toFhirDecimal('-5.25')).toBe(-5.25);
    expect(toFhirDecimal('.5')).toBe(0.5);
    expect(toFhirDecimal('-.5')).toBe(-0.5);
    expect(toFhirDecimal('5.')).toBe(5);
    expect(toFhirDecimal('007.50')).toBe(7.5);
    expect(toFhirDecimal(' 12.3 ')).toBe(12.3);
  });

  it('rejects what NM does not allow', () => {
    for (const bad of [
      '',
      '""',
      '.',
      '-',
      '+',
      '1e5',
      '1E5',
      '0x10',
      '1,5',
      '1 000',
      '1.2.3',
      'Infinity',
      'NaN',
      '--1',
      '<5',
      '5-',
    ]) {
      expect(toFhirDecimal(bad), bad).toBeUndefined();
    }
  });
});

describe('parseStructuredNumeric (IG SN maps)', () => {
  it('makes quantities with FHIR comparators', () => {
    expect(parseStructuredNumeric(field('^100'))).toEqual({ kind: 'quantity', value: 100 });
    expect(parseStructuredNumeric(field('<^0.5'))).toEqual({ kind: 'quantity', value: 0.5, comparator: '<' });
    expect(parseStructuredNumeric(field('>=^10'))).toEqual({ kind: 'quantity', value: 10, comparator: '>=' });
    expect(parseStructuredNumeric(field('<=^10'))).toMatchObject({ comparator: '<=' });
    expect(parseStructuredNumeric(field('>^10'))).toMatchObject({ comparator: '>' });
  });

  it('drops `=` (a plain quantity means equal)', () => {
    expect(parseStructuredNumeric(field('=^7'))).toEqual({ kind: 'quantity', value: 7 });
  });

  it('turns `<>` and the `+` suffix into text, as the IG sends them to valueString', () => {
    expect(parseStructuredNumeric(field('<>^5'))).toEqual({ kind: 'text', text: '<> 5' });
    expect(parseStructuredNumeric(field('^2^+'))).toEqual({ kind: 'text', text: '2 +' });
  });

  it('makes ranges with the original text', () => {
    expect(parseStructuredNumeric(field('^10^-^20'))).toEqual({
      kind: 'range',
      low: 10,
      high: 20,
      originalText: '10 - 20',
    });
    expect(parseStructuredNumeric(field('^-5^-^-1'))).toMatchObject({ kind: 'range', low: -5, high: -1 });
    expect(parseStructuredNumeric(field('^10^-'))).toMatchObject({ kind: 'range', low: 10, high: undefined });
    expect(parseStructuredNumeric(field('^20^-^10'))).toBeUndefined(); // low > high
  });

  it('makes ratios, the comparator going to the numerator', () => {
    expect(parseStructuredNumeric(field('^1^:^128'))).toEqual({
      kind: 'ratio',
      numerator: 1,
      denominator: 128,
      originalText: '1 : 128',
    });
    expect(parseStructuredNumeric(field('^1^/^2'))).toMatchObject({
      kind: 'ratio',
      numerator: 1,
      denominator: 2,
    });
    expect(parseStructuredNumeric(field('>^1^:^64'))).toMatchObject({ kind: 'ratio', comparator: '>' });
    expect(parseStructuredNumeric(field('^1^:'))).toBeUndefined(); // FHIR rat-1: both or neither
    expect(parseStructuredNumeric(field('^1^:^0'))).toBeUndefined();
  });

  it('keeps the original text when SN-3 or SN-4 is valued on a quantity', () => {
    expect(parseStructuredNumeric(field('^2^.^1'))).toEqual({
      kind: 'quantity',
      value: 2,
      originalText: '2 . 1',
    });
  });

  it('rejects what is no SN', () => {
    for (const bad of ['', '""', '~^5', '<^abc', '^1^:^x', '^^-^', '^5^*^6', '<', '^1e3']) {
      expect(parseStructuredNumeric(field(bad)), bad).toBeUndefined();
    }
  });

  it('reads SN as a component (subcomponents)', () => {
    const comp = new V2Element('<&0.5', 1, DEFAULT_DELIMITERS);
    expect(parseStructuredNumeric(comp)).toEqual({ kind: 'quantity', value: 0.5, comparator: '<' });
  });
});

describe('parseComparatorText', () => {
  it('reads comparators in front of a number', () => {
    expect(parseComparatorText('<0.5')).toEqual({ kind: 'quantity', value: 0.5, comparator: '<' });
    expect(parseComparatorText('>= 10')).toEqual({ kind: 'quantity', value: 10, comparator: '>=' });
    expect(parseComparatorText('<=-1')).toEqual({ kind: 'quantity', value: -1, comparator: '<=' });
    expect(parseComparatorText('> 200 ')).toEqual({ kind: 'quantity', value: 200, comparator: '>' });
    expect(parseComparatorText('=5')).toEqual({ kind: 'quantity', value: 5 });
    expect(parseComparatorText('42')).toEqual({ kind: 'quantity', value: 42 });
  });

  it('reads ratios and ranges', () => {
    expect(parseComparatorText('1:128')).toEqual({ kind: 'ratio', numerator: 1, denominator: 128 });
    expect(parseComparatorText('1/2')).toEqual({ kind: 'ratio', numerator: 1, denominator: 2 });
    expect(parseComparatorText('>1:64')).toEqual({
      kind: 'ratio',
      numerator: 1,
      denominator: 64,
      comparator: '>',
    });
    expect(parseComparatorText('10-20')).toEqual({ kind: 'range', low: 10, high: 20 });
    expect(parseComparatorText('10 - 20')).toEqual({ kind: 'range', low: 10, high: 20 });
    expect(parseComparatorText('-5-10')).toEqual({ kind: 'range', low: -5, high: 10 });
    expect(parseComparatorText('-5')).toEqual({ kind: 'quantity', value: -5 });
  });

  it('rejects anything else', () => {
    for (const bad of [
      '',
      '<',
      '<>5',
      'positive',
      '2+',
      '<0.5 mg',
      '10-',
      '20-10',
      '>10-20',
      '1:0',
      '5 5',
      '1e3',
    ]) {
      expect(parseComparatorText(bad), bad).toBeUndefined();
    }
  });
});
