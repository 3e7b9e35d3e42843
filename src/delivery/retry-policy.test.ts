import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { retryDelayMs } from './retry-policy.js';

const policy = { attempts: 10, initialDelayMs: 1_000, maxDelayMs: 60_000 };

describe('retryDelayMs', () => {
  it('stays between the floor and the exponential ceiling, capped at maxDelayMs', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.double({ min: 0, max: 0.999_999, noNaN: true }),
        (attempt, r) => {
          const d = retryDelayMs(policy, attempt, undefined, () => r);
          const ceiling = Math.min(60_000, 1_000 * 2 ** (attempt - 1));
          return Number.isInteger(d) && d >= 1_000 && d <= ceiling;
        },
      ),
    );
  });

  it('spans the whole range: the lowest and highest draws reach the floor and the ceiling', () => {
    expect(retryDelayMs(policy, 4, undefined, () => 0)).toBe(1_000);
    expect(retryDelayMs(policy, 4, undefined, () => 0.999_999_9)).toBe(8_000);
    expect(retryDelayMs(policy, 30, undefined, () => 0.999_999_9)).toBe(60_000);
    expect(retryDelayMs(policy, 1, undefined, () => 0.5)).toBe(1_000);
  });

  it('waits at least as long as a Retry-After asks', () => {
    expect(retryDelayMs(policy, 1, 45_000, () => 0)).toBe(45_000);
    expect(retryDelayMs(policy, 7, 2_000, () => 0.999_999_9)).toBe(60_000);
  });

  it('keeps within maxDelayMs even when it is below initialDelayMs', () => {
    const odd = { attempts: 3, initialDelayMs: 5_000, maxDelayMs: 2_000 };
    for (const r of [0, 0.5, 0.999]) expect(retryDelayMs(odd, 3, undefined, () => r)).toBe(2_000);
  });
});
