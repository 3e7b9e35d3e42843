import { describe, expect, it } from 'vitest';
import { isEngineError } from '../../errors.js';
import {
  parseV2DateTime,
  toFhirDate,
  toFhirDateTime,
  toFhirInstant,
  toFhirTime,
  truncateV2DateTime,
  type ZoneFor,
  zoneOfDateTime,
  zoneResolver,
} from './datetime.js';

const calls: number[][] = [];
const minus5: ZoneFor = (...args) => {
  calls.push(args);
  return '-05:00';
};

describe('parseV2DateTime', () => {
  it('reads every precision', () => {
    expect(parseV2DateTime('2024')).toMatchObject({ precision: 'year', year: 2024, month: 0 });
    expect(parseV2DateTime('202403')).toMatchObject({ precision: 'month', year: 2024, month: 3, day: 0 });
    expect(parseV2DateTime('20240315')).toMatchObject({ precision: 'day', day: 15 });
    expect(parseV2DateTime('2024031510')).toMatchObject({ precision: 'hour', hour: 10, minute: 0 });
    expect(parseV2DateTime('202403151030')).toMatchObject({ precision: 'minute', minute: 30 });
    expect(parseV2DateTime('20240315103045.1234-0500')).toEqual({
      precision: 'second',
      year: 2024,
      month: 3,
      day: 15,
      hour: 10,
      minute: 30,
      second: 45,
      fraction: '1234',
      offset: '-05:00',
    });
  });

  it('rejects malformed values', () => {
    for (const bad of [
      '',
      '""',
      '24',
      '202',
      '2024031',
      '20240315103',
      '202403151030456',
      '2024-03-15',
      '20240315 1030',
      '20240315103045.',
      '20240315103045.12345',
      '202403151030.5', // a fraction needs seconds
      '20240315103045-05',
      '20240315103045-05000',
      '20240315103045Z',
      '20240315103045+05:00',
      ' 20240315',
      '0000',
    ]) {
      expect(parseV2DateTime(bad), bad).toBeUndefined();
    }
  });

  it('validates ranges, leap days included', () => {
    expect(parseV2DateTime('20240229')).toBeDefined();
    expect(parseV2DateTime('20230229')).toBeUndefined();
    expect(parseV2DateTime('20000229')).toBeDefined(); // divisible by 400
    expect(parseV2DateTime('19000229')).toBeUndefined(); // divisible by 100 only
    expect(parseV2DateTime('20240431')).toBeUndefined();
    expect(parseV2DateTime('20241231')).toBeDefined();
    expect(parseV2DateTime('202413')).toBeUndefined();
    expect(parseV2DateTime('202400')).toBeUndefined();
    expect(parseV2DateTime('20240100')).toBeUndefined();
    expect(parseV2DateTime('202403152400')).toBeUndefined(); // 24:00 is not an hour
    expect(parseV2DateTime('202403152359')).toBeDefined();
    expect(parseV2DateTime('202403151060')).toBeUndefined();
    expect(parseV2DateTime('20241231235960')).toBeDefined(); // leap second
    expect(parseV2DateTime('20241231235961')).toBeUndefined();
  });

  it('validates offsets within ±14:00', () => {
    expect(parseV2DateTime('202403151030+1400')?.offset).toBe('+14:00');
    expect(parseV2DateTime('202403151030-1200')?.offset).toBe('-12:00');
    expect(parseV2DateTime('202403151030+0545')?.offset).toBe('+05:45');
    expect(parseV2DateTime('202403151030+1401')).toBeUndefined();
    expect(parseV2DateTime('202403151030+1500')).toBeUndefined();
    expect(parseV2DateTime('202403151030+0560')).toBeUndefined();
  });
});

describe('toFhirDateTime', () => {
  it('keeps date precisions as they are, without a zone', () => {
    calls.length = 0;
    expect(toFhirDateTime('2024', minus5)).toBe('2024');
    expect(toFhirDateTime('202403', minus5)).toBe('2024-03');
    expect(toFhirDateTime('20240315', minus5)).toBe('2024-03-15');
    expect(toFhirDateTime('20240315+0200', minus5)).toBe('2024-03-15');
    expect(calls).toEqual([]);
  });

  it('completes times to seconds and asks zoneFor for the local date-time', () => {
    calls.length = 0;
    expect(toFhirDateTime('202403151030', minus5)).toBe('2024-03-15T10:30:00-05:00');
    expect(toFhirDateTime('2024031510', minus5)).toBe('2024-03-15T10:00:00-05:00');
    expect(toFhirDateTime('20240315103045', minus5)).toBe('2024-03-15T10:30:45-05:00');
    expect(calls).toEqual([
      [2024, 3, 15, 10, 30],
      [2024, 3, 15, 10, 0],
      [2024, 3, 15, 10, 30],
    ]);
  });

  it('keeps the zone and fractional seconds the value carries', () => {
    calls.length = 0;
    expect(toFhirDateTime('20240315103045-0500', minus5)).toBe('2024-03-15T10:30:45-05:00');
    expect(toFhirDateTime('20240315103045+0000', minus5)).toBe('2024-03-15T10:30:45+00:00');
    expect(toFhirDateTime('202403151030+0530', minus5)).toBe('2024-03-15T10:30:00+05:30');
    expect(toFhirDateTime('20240315103045.1', minus5)).toBe('2024-03-15T10:30:45.1-05:00');
    expect(toFhirDateTime('20240315103045.0120+0100', minus5)).toBe('2024-03-15T10:30:45.0120+01:00');
    expect(calls).toHaveLength(1);
  });

  it('gives undefined for invalid values', () => {
    expect(toFhirDateTime('20240230', minus5)).toBeUndefined();
    expect(toFhirDateTime('', minus5)).toBeUndefined();
    expect(toFhirDateTime('""', minus5)).toBeUndefined();
  });
});

describe('toFhirDate / toFhirInstant / toFhirTime', () => {
  it('takes the date part as written', () => {
    expect(toFhirDate('19800101')).toBe('1980-01-01');
    expect(toFhirDate('198001012359-1000')).toBe('1980-01-01');
    expect(toFhirDate('1980')).toBe('1980');
    expect(toFhirDate('198001')).toBe('1980-01');
    expect(toFhirDate('19800132')).toBeUndefined();
  });

  it('builds full instants', () => {
    calls.length = 0;
    expect(toFhirInstant('20240315103045.123+0100', minus5)).toBe('2024-03-15T10:30:45.123+01:00');
    expect(toFhirInstant('202403151030', minus5)).toBe('2024-03-15T10:30:00-05:00');
    expect(toFhirInstant('20240315', minus5)).toBe('2024-03-15T00:00:00-05:00');
    expect(calls).toEqual([
      [2024, 3, 15, 10, 30],
      [2024, 3, 15, 0, 0],
    ]);
    expect(toFhirInstant('202403', minus5)).toBeUndefined();
    expect(toFhirInstant('2024', minus5)).toBeUndefined();
  });

  it('reads TM', () => {
    expect(toFhirTime('10')).toBe('10:00:00');
    expect(toFhirTime('1030')).toBe('10:30:00');
    expect(toFhirTime('103045')).toBe('10:30:45');
    expect(toFhirTime('103045.25')).toBe('10:30:45.25');
    expect(toFhirTime('103045-0500')).toBe('10:30:45');
    expect(toFhirTime('2400')).toBeUndefined();
    expect(toFhirTime('1060')).toBeUndefined();
    expect(toFhirTime('103')).toBeUndefined();
    expect(toFhirTime('1030.5')).toBeUndefined();
    expect(toFhirTime('1030+2500')).toBeUndefined();
    expect(toFhirTime('')).toBeUndefined();
  });
});

describe('truncateV2DateTime (TS-2)', () => {
  const dt = parseV2DateTime('20240315103045.12-0500')!;
  it('cuts to the degree of precision', () => {
    expect(truncateV2DateTime(dt, 'Y')).toMatchObject({ precision: 'year', month: 0 });
    expect(truncateV2DateTime(dt, 'L')).toMatchObject({ precision: 'month', month: 3, day: 0 });
    expect(truncateV2DateTime(dt, 'D')).toMatchObject({ precision: 'day', day: 15, hour: 0 });
    expect(truncateV2DateTime(dt, 'H')).toMatchObject({ precision: 'hour', hour: 10, minute: 0 });
    expect(truncateV2DateTime(dt, 'M')).toMatchObject({ precision: 'minute', minute: 30, second: 0 });
    expect(truncateV2DateTime(dt, 'S')).toMatchObject({ precision: 'second', second: 45, fraction: '' });
  });
  it('leaves a coarser value and unknown codes alone', () => {
    const day = parseV2DateTime('20240315')!;
    expect(truncateV2DateTime(day, 'S')).toBe(day);
    expect(truncateV2DateTime(dt, 'X')).toBe(dt);
  });
});

describe('zoneOfDateTime', () => {
  it('returns the zone a DTM carries', () => {
    expect(zoneOfDateTime('20240315103045-0500')).toBe('-05:00');
    expect(zoneOfDateTime('20240315103045+0000')).toBe('+00:00');
    expect(zoneOfDateTime('20240315103045')).toBeUndefined();
    expect(zoneOfDateTime('garbage-0500')).toBeUndefined();
  });
});

describe('zoneResolver', () => {
  it('resolves fixed offsets and UTC', () => {
    expect(zoneResolver('UTC')(2024, 1, 1, 0, 0)).toBe('Z');
    expect(zoneResolver('Z')(2024, 1, 1, 0, 0)).toBe('Z');
    expect(zoneResolver('+05:30')(2024, 1, 1, 0, 0)).toBe('+05:30');
    expect(zoneResolver('-0400')(2024, 1, 1, 0, 0)).toBe('-04:00');
  });

  it('applies daylight saving time for IANA zones', () => {
    const ny = zoneResolver('America/New_York');
    expect(ny(2024, 1, 15, 12, 0)).toBe('-05:00');
    expect(ny(2024, 7, 15, 12, 0)).toBe('-04:00');
    // 2024-03-10: 02:00 EST → 03:00 EDT. 02:30 does not exist: the offset before the change.
    expect(ny(2024, 3, 10, 1, 59)).toBe('-05:00');
    expect(ny(2024, 3, 10, 2, 30)).toBe('-05:00');
    expect(ny(2024, 3, 10, 3, 0)).toBe('-04:00');
    // 2024-11-03: 02:00 EDT → 01:00 EST. 01:30 happens twice: the earlier (EDT).
    expect(ny(2024, 11, 3, 0, 30)).toBe('-04:00');
    expect(ny(2024, 11, 3, 1, 30)).toBe('-04:00');
    expect(ny(2024, 11, 3, 2, 0)).toBe('-05:00');
    // Served from the cache the second time, same answer.
    expect(ny(2024, 7, 15, 12, 0)).toBe('-04:00');
  });

  it('handles half-hour zones and a transition inside an hour', () => {
    expect(zoneResolver('Asia/Kolkata')(2024, 6, 1, 9, 0)).toBe('+05:30');
    expect(zoneResolver('Asia/Kathmandu')(2024, 6, 1, 9, 0)).toBe('+05:45');
    // Lord Howe Island: 2024-04-07 02:00 (+11:00) → 01:30 (+10:30).
    const lh = zoneResolver('Australia/Lord_Howe');
    expect(lh(2024, 4, 7, 1, 15)).toBe('+11:00');
    expect(lh(2024, 4, 7, 1, 45)).toBe('+11:00');
    expect(lh(2024, 4, 7, 2, 15)).toBe('+10:30');
    // 2024-10-06 02:00 (+10:30) → 02:30 (+11:00).
    expect(lh(2024, 10, 6, 2, 15)).toBe('+10:30');
    expect(lh(2024, 10, 6, 2, 45)).toBe('+11:00');
  });

  it('gives the southern hemisphere its own seasons and an IANA UTC +00:00', () => {
    expect(zoneResolver('Australia/Sydney')(2024, 1, 15, 12, 0)).toBe('+11:00');
    expect(zoneResolver('Australia/Sydney')(2024, 7, 15, 12, 0)).toBe('+10:00');
    expect(zoneResolver('Europe/London')(2024, 1, 15, 12, 0)).toBe('+00:00');
  });

  it('rejects unknown zones and bad offsets as CONFIG_INVALID', () => {
    for (const bad of ['Mars/Olympus', '', '+15:00', '+5', 'EST5EDT6']) {
      let caught: unknown;
      try {
        zoneResolver(bad);
      } catch (err) {
        caught = err;
      }
      expect(isEngineError(caught, 'CONFIG_INVALID'), bad).toBe(true);
      expect((caught as { details: unknown }).details).toEqual({ detail: 'timezone' });
    }
  });

  it('is cheap when called repeatedly', () => {
    const ny = zoneResolver('America/New_York');
    const start = performance.now();
    for (let i = 0; i < 100_000; i++) ny(2024, 3, 15, i % 24, i % 60);
    // 100k calls over 24 cached hours: well under a second even on a slow CI machine.
    expect(performance.now() - start).toBeLessThan(1000);
  });
});
