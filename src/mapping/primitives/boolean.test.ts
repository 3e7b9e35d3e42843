import { describe, expect, it } from 'vitest';
import { DEFAULT_DELIMITERS } from '../../hl7/delimiters.js';
import type { ConvertContext } from '../converter.js';
import { V2Element } from '../v2-element.js';
import { idBoolean, toFhirBoolean } from './boolean.js';

describe('ID-boolean (table 0136)', () => {
  it('maps Y/N in either case', () => {
    expect(toFhirBoolean('Y')).toBe(true);
    expect(toFhirBoolean('y')).toBe(true);
    expect(toFhirBoolean('N')).toBe(false);
    expect(toFhirBoolean('n ')).toBe(false);
  });

  it('does not guess outside table 0136', () => {
    for (const bad of ['T', 'F', 'Yes', 'No', '1', '0', '']) expect(toFhirBoolean(bad), bad).toBeUndefined();
  });

  it('reports a bad value and ignores empty and ""', () => {
    const invalid: string[] = [];
    const ctx = { invalid: (t: string) => invalid.push(t) } as unknown as ConvertContext;
    const el = (raw: string) => new V2Element(raw, 0, DEFAULT_DELIMITERS);
    expect(idBoolean(el('Y'), ctx)).toBe(true);
    expect(idBoolean(el(''), ctx)).toBeUndefined();
    expect(idBoolean(el('""'), ctx)).toBeUndefined();
    expect(invalid).toEqual([]);
    expect(idBoolean(el('X'), ctx)).toBeUndefined();
    expect(invalid).toEqual(['ID']);
  });
});
