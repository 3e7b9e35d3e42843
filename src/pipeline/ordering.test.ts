import { describe, expect, it } from 'vitest';
import type { OrderingPolicy } from '../channels/channel-config.js';
import { type Hl7Message, parse } from '../hl7/index.js';
import { fnv1a, partitionFor } from './ordering.js';

// Synthetic messages only: the identifiers below are made up.
const STRICT: OrderingPolicy = { key: 'PID-3(1)', mode: 'strict' };
const NONE: OrderingPolicy = { key: 'PID-3(1)', mode: 'none' };
const PARTITIONS = 16;

function adt(pid3: string, controlId = 'CTL0001', name = 'Testpatient^Alpha'): Hl7Message {
  return parse(
    [
      `MSH|^~\\&|SENDAPP|SENDFAC|HL7E|HOSP|20260105101500||ADT^A08^ADT_A01|${controlId}|P|2.5.1`,
      'EVN|A08|20260105101500',
      `PID|1||${pid3}||${name}||19700101|F`,
      'PV1|1|O',
    ].join('\r'),
  );
}

/** Runs partitionFor many times and returns the distinct partitions seen. */
function seen(channel: string, policy: OrderingPolicy, message: Hl7Message, times = 200): Set<number> {
  const out = new Set<number>();
  for (let i = 0; i < times; i++) out.add(partitionFor(channel, policy, message, PARTITIONS));
  return out;
}

describe('fnv1a', () => {
  it('matches the published FNV-1a 32-bit test vectors', () => {
    expect(fnv1a('')).toBe(0x811c9dc5);
    expect(fnv1a('a')).toBe(0xe40c292c);
    expect(fnv1a('foobar')).toBe(0xbf9cf968);
  });

  it('returns an unsigned 32-bit integer', () => {
    for (const s of ['x', 'lab\u0000MRN-1', 'a much longer input string with spaces']) {
      const h = fnv1a(s);
      expect(Number.isInteger(h)).toBe(true);
      expect(h).toBeGreaterThanOrEqual(0);
      expect(h).toBeLessThan(2 ** 32);
    }
  });
});

describe('partitionFor (strict mode)', () => {
  it('puts messages of one channel with the same PID-3(1) in the same partition, whatever else differs', () => {
    const a = adt('MRN-12345^^^HOSP^MR', 'CTL-A', 'Testpatient^Alpha');
    const b = adt('MRN-12345^^^HOSP^MR~SSN-000^^^USSSA^SS', 'CTL-B', 'Otherpatient^Beta');
    const pa = partitionFor('adt', STRICT, a, PARTITIONS);
    expect(partitionFor('adt', STRICT, b, PARTITIONS)).toBe(pa);
  });

  it('is stable across calls and equals FNV-1a of channel NUL key modulo the partition count', () => {
    const m = adt('MRN-777^^^HOSP^MR');
    const expected = fnv1a('adt\u0000MRN-777^^^HOSP^MR') % PARTITIONS;
    expect(seen('adt', STRICT, m, 50)).toEqual(new Set([expected]));
    // A freshly parsed copy of the same message agrees (nothing cached per object).
    expect(partitionFor('adt', STRICT, adt('MRN-777^^^HOSP^MR'), PARTITIONS)).toBe(expected);
  });

  it('always returns a partition in [0, partitions)', () => {
    for (const partitions of [1, 2, 7, 64]) {
      for (let i = 0; i < 50; i++) {
        const p = partitionFor('adt', STRICT, adt(`MRN-${i}`), partitions);
        expect(p).toBeGreaterThanOrEqual(0);
        expect(p).toBeLessThan(partitions);
      }
    }
    expect(partitionFor('adt', STRICT, adt('MRN-1'), 1)).toBe(0);
  });

  it('spreads many patient ids across all partitions', () => {
    const counts = new Array<number>(PARTITIONS).fill(0);
    const ids = 2_000;
    for (let i = 0; i < ids; i++) {
      const p = partitionFor('adt', STRICT, adt(`MRN-${100_000 + i}^^^HOSP^MR`), PARTITIONS);
      counts[p] = (counts[p] ?? 0) + 1;
    }
    const mean = ids / PARTITIONS;
    expect(counts.every((n) => n > 0)).toBe(true);
    // FNV-1a is deterministic, so this is a fixed property of these ids, not a statistical gamble.
    expect(Math.max(...counts)).toBeLessThan(mean * 2);
    expect(Math.min(...counts)).toBeGreaterThan(mean / 2);
  });

  it('includes the channel in the key: the same id maps differently on some other channel', () => {
    const channels = ['adt', 'lab', 'orders', 'radiology', 'pharmacy', 'billing', 'a', 'b'];
    const partitions = new Set(channels.map((c) => partitionFor(c, STRICT, adt('MRN-42'), PARTITIONS)));
    expect(partitions.size).toBeGreaterThan(1);
  });

  it('reads the key from the configured path', () => {
    const byVisit: OrderingPolicy = { key: 'PV1-2', mode: 'strict' };
    const a = adt('MRN-1');
    const b = adt('MRN-2');
    // Both messages have PV1-2 = 'O': one partition, though their PID-3 differ.
    expect(partitionFor('adt', byVisit, a, PARTITIONS)).toBe(fnv1a('adt\u0000O') % PARTITIONS);
    expect(partitionFor('adt', byVisit, b, PARTITIONS)).toBe(fnv1a('adt\u0000O') % PARTITIONS);
  });
});

describe('partitionFor without a usable key', () => {
  const noPid = parse('MSH|^~\\&|SENDAPP|SENDFAC|HL7E|HOSP|20260105||ADT^A08|CTL9|P|2.5.1\rEVN|A08\r');
  const emptyPid3 = parse(
    'MSH|^~\\&|SENDAPP|SENDFAC|HL7E|HOSP|20260105||ADT^A08|CTL9|P|2.5.1\rPID|1||||Testpatient^Gamma\r',
  );

  it.each([
    ['mode none', NONE, adt('MRN-5')],
    ['a missing PID segment', STRICT, noPid],
    ['an empty PID-3', STRICT, emptyPid3],
    ['an invalid key path', { key: 'not a path', mode: 'strict' } as OrderingPolicy, adt('MRN-5')],
  ])('spreads messages with %s over the partitions instead of pinning them', (_label, policy, message) => {
    const partitions = seen('adt', policy, message, 300);
    for (const p of partitions) {
      expect(Number.isInteger(p)).toBe(true);
      expect(p).toBeGreaterThanOrEqual(0);
      expect(p).toBeLessThan(PARTITIONS);
    }
    // 300 uniform draws over 16 partitions all landing in one has probability 16^-299.
    expect(partitions.size).toBeGreaterThan(1);
  });
});
