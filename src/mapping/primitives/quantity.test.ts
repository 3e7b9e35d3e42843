import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import { V2Element } from '../v2-element.js';
import type { Vocabularies } from '../vocabulary.js';
import { toQuantity, UCUM_SYSTEM } from './quantity.js';

const vocabulary: Vocabularies = {
  has: () => true,
  lookup: (t, code) =>
    t === 'CodingSystem' && code === 'ISO+' ? { code: 'urn:example:iso-plus' } : undefined,
  hashOf: () => undefined,
};
const ctx = { vocabulary };
const units = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);

describe('toQuantity (IG CWE[Quantity])', () => {
  it('uses UCUM for OBX-6.3 = UCUM, display text as unit', () => {
    expect(toQuantity(5.4, undefined, units('mg/dL^milligrams per deciliter^UCUM'), ctx)).toEqual({
      value: 5.4,
      unit: 'milligrams per deciliter',
      system: UCUM_SYSTEM,
      code: 'mg/dL',
    });
    expect(toQuantity(1, undefined, units('mm[Hg]^^ucum'), ctx)).toEqual({
      value: 1,
      unit: 'mm[Hg]',
      system: UCUM_SYSTEM,
      code: 'mm[Hg]',
    });
  });

  it('gives no system or code without CWE-3', () => {
    expect(toQuantity(7, '<', units('mg/dL'), ctx)).toEqual({ value: 7, comparator: '<', unit: 'mg/dL' });
    expect(toQuantity(7, undefined, units('^per high power field'), ctx)).toEqual({
      value: 7,
      unit: 'per high power field',
    });
  });

  it('resolves other systems through the vocabulary or the local fallback', () => {
    expect(toQuantity(2, undefined, units('mg^^ISO+'), ctx)).toMatchObject({
      system: 'urn:example:iso-plus',
      code: 'mg',
    });
    expect(toQuantity(2, undefined, units('mg^^ANS+'), ctx)).toMatchObject({
      system: 'urn:hl7e:coding-system:ANS%2B',
      code: 'mg',
    });
  });

  it('is a bare value without units', () => {
    expect(toQuantity(3, undefined, units(''), ctx)).toEqual({ value: 3 });
    expect(toQuantity(3, '>=', units('""'), ctx)).toEqual({ value: 3, comparator: '>=' });
  });
});
