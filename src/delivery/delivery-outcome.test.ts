import { describe, expect, it } from 'vitest';
import {
  classifyResponse,
  HTTP_OUTCOME_POLICY,
  isRetryableStatus,
  parseRetryAfter,
} from './delivery-outcome.js';

const now = Date.parse('2026-03-01T12:00:00Z');

describe('parseRetryAfter (RFC 9110 §10.2.3)', () => {
  it('reads delay-seconds', () => {
    expect(parseRetryAfter('120', now, 1_000_000)).toBe(120_000);
    expect(parseRetryAfter(' 0 ', now, 1_000_000)).toBe(0);
  });
  it('reads an HTTP-date relative to now; a past date is 0', () => {
    expect(parseRetryAfter('Sun, 01 Mar 2026 12:00:30 GMT', now, 1_000_000)).toBe(30_000);
    expect(parseRetryAfter('Sun, 01 Mar 2026 11:00:00 GMT', now, 1_000_000)).toBe(0);
    expect(parseRetryAfter('Sunday, 01-Mar-26 12:00:10 GMT', now, 1_000_000)).toBe(10_000);
    expect(parseRetryAfter('Sun Mar  1 12:00:05 2026', now, 1_000_000)).toBe(5_000);
  });
  it('caps at the maximum given', () => {
    expect(parseRetryAfter('86400', now, 60_000)).toBe(60_000);
    expect(parseRetryAfter('86400', now)).toBe(HTTP_OUTCOME_POLICY.maxRetryAfterMs);
  });
  it('ignores absent and malformed values', () => {
    expect(parseRetryAfter(null, now)).toBeUndefined();
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter('-5', now)).toBeUndefined();
    expect(parseRetryAfter('1.5', now)).toBeUndefined();
  });
});

describe('classifyResponse', () => {
  const c = (status: number, retryAfter: string | null = null) =>
    classifyResponse(status, 'b', retryAfter, { now, maxRetryAfterMs: 10_000 });
  it('2xx delivers with the body', () => {
    expect(c(200)).toEqual({ kind: 'delivered', status: 200, body: 'b' });
    expect(c(201)).toEqual({ kind: 'delivered', status: 201, body: 'b' });
  });
  it('408, 425, 429 and every 5xx retry', () => {
    for (const s of [408, 425, 429, 500, 502, 503, 504, 507, 599]) {
      expect(isRetryableStatus(s)).toBe(true);
      expect(c(s)).toEqual({ kind: 'retry', reason: 'status', status: s });
    }
    expect(c(503, '5')).toEqual({ kind: 'retry', reason: 'status', status: 503, retryAfterMs: 5000 });
    expect(c(429, '3600')).toMatchObject({ retryAfterMs: 10_000 });
  });
  it('401 is an auth problem, retried rather than rejected', () => {
    expect(c(401)).toEqual({ kind: 'retry', reason: 'auth', status: 401 });
  });
  it('other 4xx and 3xx are rejected with the body kept', () => {
    for (const s of [400, 403, 404, 409, 412, 422, 302]) {
      expect(isRetryableStatus(s)).toBe(false);
      expect(c(s)).toEqual({ kind: 'rejected', status: s, body: 'b' });
    }
  });
});
