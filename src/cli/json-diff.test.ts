import { describe, expect, it } from 'vitest';
import { diffJson, formatChange } from './json-diff.js';

describe('diffJson', () => {
  it('finds nothing in equal values', () => {
    expect(diffJson({ a: [1, { b: 'x' }] }, { a: [1, { b: 'x' }] })).toEqual([]);
  });

  it('lists changed leaves, added and removed elements by path, in document order', () => {
    const expected = { entry: [{ resource: { gender: 'female', birthDate: '1980' } }], type: 'transaction' };
    const actual = { entry: [{ resource: { gender: 'male' } }, { fullUrl: 'u' }], type: 'transaction', x: 1 };
    expect(diffJson(expected, actual).map((c) => formatChange(c))).toEqual([
      'entry[0].resource.gender: - "female" + "male"',
      'entry[0].resource.birthDate: - "1980" + (absent)',
      'entry[1]: - (absent) + {"fullUrl":"u"}',
      'x: - (absent) + 1',
    ]);
  });

  it('quotes keys that are not identifiers and shortens long values', () => {
    const [change] = diffJson({ 'a-b': 'x' }, { 'a-b': 'y'.repeat(200) });
    expect(change?.path).toBe('["a-b"]');
    const line = formatChange(change!, 20);
    expect(line).toBe(`["a-b"]: - "x" + "${'y'.repeat(18)}…`);
  });

  it('reports a type change as one difference, and names the root', () => {
    expect(diffJson({ a: [1] }, { a: { 0: 1 } })).toEqual([{ path: 'a', expected: [1], actual: { 0: 1 } }]);
    expect(formatChange(diffJson(1, 2)[0]!)).toBe('(root): - 1 + 2');
  });
});
