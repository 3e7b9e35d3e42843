import { describe, expect, it } from 'vitest';
import { RawHandoff } from './raw-handoff.js';

const bytes = (n: number, fill = 0x41) => Buffer.alloc(n, fill);

describe('RawHandoff', () => {
  it('hands the bytes out once, then answers undefined', () => {
    const h = new RawHandoff(1_000);
    const raw = Buffer.from('MSH|^~\\&|A|B|C|D|20260105100000||ADT^A01|1|P|2.5.1');
    h.put('m1', raw);
    expect(h.size).toBe(1);
    const got = h.take('m1');
    expect(got?.equals(raw)).toBe(true);
    expect(h.size).toBe(0);
    expect(h.take('m1')).toBeUndefined();
    expect(h.take('never-put')).toBeUndefined();
  });

  it('evicts the oldest entries first once the byte budget is exceeded', () => {
    const h = new RawHandoff(100);
    h.put('a', bytes(40, 0x61));
    h.put('b', bytes(40, 0x62));
    expect(h.size).toBe(2);
    // 40 + 40 + 40 > 100: only the oldest ('a') has to go.
    h.put('c', bytes(40, 0x63));
    expect(h.size).toBe(2);
    expect(h.take('a')).toBeUndefined();
    expect(h.take('b')?.equals(bytes(40, 0x62))).toBe(true);
    expect(h.take('c')?.equals(bytes(40, 0x63))).toBe(true);
    expect(h.size).toBe(0);
  });

  it('evicts as many old entries as needed to fit a large newcomer', () => {
    const h = new RawHandoff(100);
    for (const id of ['a', 'b', 'c', 'd']) h.put(id, bytes(25));
    expect(h.size).toBe(4);
    h.put('big', bytes(90));
    // 100 + 90 needs 90 bytes freed: a, b, c and d (in that order) leave, the newcomer stays.
    expect(h.size).toBe(1);
    for (const id of ['a', 'b', 'c', 'd']) expect(h.take(id)).toBeUndefined();
    expect(h.take('big')?.length).toBe(90);
  });

  it('frees the budget of taken entries', () => {
    const h = new RawHandoff(100);
    h.put('a', bytes(60));
    expect(h.take('a')?.length).toBe(60);
    h.put('b', bytes(60));
    // 'a' was taken, so 'b' fits next to nothing and a following small entry keeps both.
    h.put('c', bytes(40));
    expect(h.size).toBe(2);
    expect(h.take('b')?.length).toBe(60);
    expect(h.take('c')?.length).toBe(40);
  });

  it('does not hold a buffer larger than the whole budget, and keeps what it held', () => {
    const h = new RawHandoff(100);
    h.put('small', bytes(30));
    h.put('huge', bytes(101));
    expect(h.size).toBe(1);
    expect(h.take('huge')).toBeUndefined();
    expect(h.take('small')?.length).toBe(30);
  });

  it('holds a buffer of exactly the budget', () => {
    const h = new RawHandoff(100);
    h.put('exact', bytes(100));
    expect(h.size).toBe(1);
    expect(h.take('exact')?.length).toBe(100);
  });

  it('holds nothing with a budget of 0', () => {
    const h = new RawHandoff(0);
    h.put('a', bytes(1));
    h.put('b', Buffer.alloc(0));
    expect(h.size).toBe(0);
    expect(h.take('a')).toBeUndefined();
    expect(h.take('b')).toBeUndefined();
  });

  it('size counts the entries held', () => {
    const h = new RawHandoff(10_000);
    expect(h.size).toBe(0);
    for (let i = 0; i < 5; i++) h.put(`m${i}`, bytes(10 + i));
    expect(h.size).toBe(5);
    h.take('m2');
    expect(h.size).toBe(4);
    h.take('m2');
    expect(h.size).toBe(4);
    h.take('nope');
    expect(h.size).toBe(4);
  });
});
