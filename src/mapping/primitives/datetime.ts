import { EngineError } from '../../errors.js';

/**
 * HL7 v2 DTM/DT/TM → FHIR R4 dateTime/date/instant/time.
 *
 * v2.5.1 §2A.22 DTM: `YYYY[MM[DD[HH[MM[SS[.S[S[S[S]]]]]]]]][+/-ZZZZ]`. FHIR R4 dateTime
 * (https://hl7.org/fhir/R4/datatypes.html#dateTime): "If hours and minutes are specified, a time zone
 * SHALL be populated. Seconds must be provided" — so `HHMM` gains `:00` and a zoneless time takes its
 * offset from `zoneFor` (MSH-7's zone, else the channel's timezone). Date-only values keep their
 * precision and never carry a zone (FHIR allows none there).
 */

/** The offset (`+05:00`, `-04:00`, `Z`) for a local date-time that carries none. */
export type ZoneFor = (year: number, month: number, day: number, hour: number, minute: number) => string;

export type DateTimePrecision = 'year' | 'month' | 'day' | 'hour' | 'minute' | 'second';

/** A parsed DTM. Fields finer than `precision` are 0 (month/day: 1 is not assumed). */
export interface V2DateTime {
  readonly precision: DateTimePrecision;
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  /** The fractional-second digits as written (1–4), '' when none. */
  readonly fraction: string;
  /** The offset the value carries, in FHIR form (`-05:00`), or undefined. */
  readonly offset: string | undefined;
}

const PRECISION_BY_DIGITS: Readonly<Record<number, DateTimePrecision>> = {
  4: 'year',
  6: 'month',
  8: 'day',
  10: 'hour',
  12: 'minute',
  14: 'second',
};
const RANK: Readonly<Record<DateTimePrecision, number>> = {
  year: 1,
  month: 2,
  day: 3,
  hour: 4,
  minute: 5,
  second: 6,
};
/** v2.3 TS-2 "degree of precision" (table 0529 in later versions): Y, L (month), D, H, M, S. */
const TS_PRECISION: Readonly<Record<string, DateTimePrecision>> = {
  Y: 'year',
  L: 'month',
  D: 'day',
  H: 'hour',
  M: 'minute',
  S: 'second',
};
/** FHIR's offset range: `(\+|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00)`. */
const MAX_OFFSET_MINUTES = 14 * 60;

function digitsAt(s: string, start: number, count: number): number {
  let n = 0;
  for (let i = start; i < start + count; i++) n = n * 10 + (s.charCodeAt(i) - 48);
  return n;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

export function daysInMonth(year: number, month: number): number {
  if (month === 2) return (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0 ? 29 : 28;
  return month === 4 || month === 6 || month === 9 || month === 11 ? 30 : 31;
}

function pad2(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}

function pad4(n: number): string {
  return n < 10 ? `000${n}` : n < 100 ? `00${n}` : n < 1000 ? `0${n}` : `${n}`;
}

/** `±HHMM` at s[start..start+5) → `±HH:MM`, or undefined when malformed or beyond ±14:00. */
function parseCompactOffset(s: string, start: number): string | undefined {
  const sign = s[start];
  if ((sign !== '+' && sign !== '-') || s.length !== start + 5) return undefined;
  for (let i = start + 1; i < start + 5; i++) if (!isDigit(s.charCodeAt(i))) return undefined;
  const h = digitsAt(s, start + 1, 2);
  const m = digitsAt(s, start + 3, 2);
  if (m > 59 || h * 60 + m > MAX_OFFSET_MINUTES) return undefined;
  return `${sign}${pad2(h)}:${pad2(m)}`;
}

/** Parses a DTM; undefined when it is not one (wrong length, out-of-range part, stray characters). */
export function parseV2DateTime(text: string): V2DateTime | undefined {
  const n = text.length;
  let i = 0;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  const precision = PRECISION_BY_DIGITS[i];
  if (precision === undefined) return undefined;
  const rank = RANK[precision];
  const year = digitsAt(text, 0, 4);
  const month = rank >= 2 ? digitsAt(text, 4, 2) : 0;
  const day = rank >= 3 ? digitsAt(text, 6, 2) : 0;
  const hour = rank >= 4 ? digitsAt(text, 8, 2) : 0;
  const minute = rank >= 5 ? digitsAt(text, 10, 2) : 0;
  const second = rank >= 6 ? digitsAt(text, 12, 2) : 0;
  let fraction = '';
  if (i < n && text.charCodeAt(i) === 46 /* . */) {
    if (rank !== 6) return undefined;
    const start = i + 1;
    i = start;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i === start || i - start > 4) return undefined;
    fraction = text.slice(start, i);
  }
  let offset: string | undefined;
  if (i < n) {
    offset = parseCompactOffset(text, i);
    if (offset === undefined) return undefined;
  }
  // FHIR's year grammar has no year 0000; v2 has none either in practice.
  if (year < 1) return undefined;
  if (rank >= 2 && (month < 1 || month > 12)) return undefined;
  if (rank >= 3 && (day < 1 || day > daysInMonth(year, month))) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  return { precision, year, month, day, hour, minute, second, fraction, offset };
}

/** The value cut to a v2.3 TS-2 degree of precision; a coarser value or an unknown code is left as it is. */
export function truncateV2DateTime(dt: V2DateTime, tsPrecision: string): V2DateTime {
  const p = TS_PRECISION[tsPrecision.toUpperCase()];
  // `S` also drops fractional seconds, which are finer than seconds.
  if (p === undefined || RANK[p] > RANK[dt.precision] || (p === dt.precision && dt.fraction === ''))
    return dt;
  const r = RANK[p];
  return {
    precision: p,
    year: dt.year,
    month: r >= 2 ? dt.month : 0,
    day: r >= 3 ? dt.day : 0,
    hour: r >= 4 ? dt.hour : 0,
    minute: r >= 5 ? dt.minute : 0,
    second: r >= 6 ? dt.second : 0,
    fraction: '',
    offset: dt.offset,
  };
}

function formatDate(dt: V2DateTime): string {
  const r = RANK[dt.precision];
  if (r === 1) return pad4(dt.year);
  if (r === 2) return `${pad4(dt.year)}-${pad2(dt.month)}`;
  return `${pad4(dt.year)}-${pad2(dt.month)}-${pad2(dt.day)}`;
}

function formatTime(dt: V2DateTime): string {
  const t = `${pad2(dt.hour)}:${pad2(dt.minute)}:${pad2(dt.second)}`;
  return dt.fraction === '' ? t : `${t}.${dt.fraction}`;
}

/** FHIR dateTime from a parsed DTM, precision kept; a time without a zone gets `zoneFor`'s. */
export function formatFhirDateTime(dt: V2DateTime, zoneFor: ZoneFor): string {
  if (RANK[dt.precision] <= 3) return formatDate(dt);
  const zone = dt.offset ?? zoneFor(dt.year, dt.month, dt.day, dt.hour, dt.minute);
  return `${formatDate(dt)}T${formatTime(dt)}${zone}`;
}

/** DTM → FHIR dateTime (`2024`, `2024-03`, `2024-03-15`, `2024-03-15T10:30:00-05:00`); undefined when invalid. */
export function toFhirDateTime(text: string, zoneFor: ZoneFor): string | undefined {
  const dt = parseV2DateTime(text);
  return dt === undefined ? undefined : formatFhirDateTime(dt, zoneFor);
}

/**
 * DTM/DT → FHIR date: the date as written (a time and zone are dropped, not converted: a birth date
 * is a local calendar date). Year and year-month precision are kept.
 */
export function toFhirDate(text: string): string | undefined {
  const dt = parseV2DateTime(text);
  return dt === undefined ? undefined : formatDate(dt);
}

/**
 * DTM → FHIR instant (https://hl7.org/fhir/R4/datatypes.html#instant: full date, seconds and zone
 * required). A date-only value becomes `T00:00:00` in the zone `zoneFor` gives for that midnight; a value
 * coarser than a day cannot name an instant and is invalid (undefined).
 */
export function toFhirInstant(text: string, zoneFor: ZoneFor): string | undefined {
  const dt = parseV2DateTime(text);
  if (dt === undefined || RANK[dt.precision] < 3) return undefined;
  const zone = dt.offset ?? zoneFor(dt.year, dt.month, dt.day, dt.hour, dt.minute);
  return `${formatDate(dt)}T${formatTime(dt)}${zone}`;
}

/**
 * TM `HH[MM[SS[.S{1,4}]]][+/-ZZZZ]` → FHIR time `HH:MM:SS[.S]`. FHIR time has no zone
 * (https://hl7.org/fhir/R4/datatypes.html#time), so a zone in the value is validated and dropped.
 */
export function toFhirTime(text: string): string | undefined {
  const n = text.length;
  let i = 0;
  while (i < n && isDigit(text.charCodeAt(i))) i++;
  const digits = i;
  if (digits !== 2 && digits !== 4 && digits !== 6) return undefined;
  const hour = digitsAt(text, 0, 2);
  const minute = digits >= 4 ? digitsAt(text, 2, 2) : 0;
  const second = digits >= 6 ? digitsAt(text, 4, 2) : 0;
  let fraction = '';
  if (i < n && text.charCodeAt(i) === 46) {
    if (digits !== 6) return undefined;
    const start = i + 1;
    i = start;
    while (i < n && isDigit(text.charCodeAt(i))) i++;
    if (i === start || i - start > 4) return undefined;
    fraction = text.slice(start, i);
  }
  if (i < n && parseCompactOffset(text, i) === undefined) return undefined;
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const t = `${pad2(hour)}:${pad2(minute)}:${pad2(second)}`;
  return fraction === '' ? t : `${t}.${fraction}`;
}

/** The offset an HL7 DTM carries (`-05:00`), or undefined when it carries none or is invalid (MSH-7's zone). */
export function zoneOfDateTime(text: string): string | undefined {
  return parseV2DateTime(text)?.offset;
}

// --- time zones -------------------------------------------------------------------------------------

const MINUTE_MS = 60_000;
const DAY_MS = 86_400_000;
/** Cached hours per resolver before the cache is dropped and rebuilt (keeps memory bounded). */
const CACHE_LIMIT = 50_000;

function formatOffsetMinutes(total: number): string {
  const sign = total < 0 ? '-' : '+';
  const abs = Math.abs(total);
  return `${sign}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
}

/** Accepts `±HH:MM` and `±HHMM` within ±14:00. */
function parseFixedOffset(tz: string): string | undefined {
  if (tz.length === 6 && tz[3] === ':') return parseCompactOffset(`${tz.slice(0, 3)}${tz.slice(4)}`, 0);
  return parseCompactOffset(tz, 0);
}

/** UTC milliseconds of a wall-clock time read as if in UTC (years below 100 are not shifted to 19xx). */
function utcMillis(y: number, mo: number, d: number, h: number, mi: number, s: number): number {
  const ms = Date.UTC(y, mo - 1, d, h, mi, s);
  if (y >= 100) return ms;
  const date = new Date(ms);
  date.setUTCFullYear(y);
  return date.getTime();
}

/**
 * The `zoneFor` of a channel's `timezone`: an IANA name (`America/New_York`, offsets from the time-zone
 * database at that local date and time, DST included), a fixed offset (`+05:30`, `-0400`) or `Z`/`UTC`.
 * Throws CONFIG_INVALID for anything else. Call once per configuration; the returned function is cheap.
 */
export function zoneResolver(timezone: string): ZoneFor {
  const tz = timezone.trim();
  if (tz === 'Z' || tz.toUpperCase() === 'UTC') return () => 'Z';
  if (tz.startsWith('+') || tz.startsWith('-')) {
    const fixed = parseFixedOffset(tz);
    if (fixed === undefined) throw new EngineError('CONFIG_INVALID', { detail: 'timezone' });
    return () => fixed;
  }
  let dtf: Intl.DateTimeFormat;
  try {
    dtf = new Intl.DateTimeFormat('en-US', {
      timeZone: tz,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  } catch {
    throw new EngineError('CONFIG_INVALID', { detail: 'timezone' });
  }
  return ianaZone(dtf);
}

function ianaZone(dtf: Intl.DateTimeFormat): ZoneFor {
  /** The zone's UTC offset in minutes at an instant. */
  const offsetAt = (ms: number): number => {
    let y = 0;
    let mo = 0;
    let d = 0;
    let h = 0;
    let mi = 0;
    let s = 0;
    for (const p of dtf.formatToParts(ms)) {
      switch (p.type) {
        case 'year':
          y = Number(p.value);
          break;
        case 'month':
          mo = Number(p.value);
          break;
        case 'day':
          d = Number(p.value);
          break;
        case 'hour':
          h = Number(p.value);
          break;
        case 'minute':
          mi = Number(p.value);
          break;
        case 'second':
          s = Number(p.value);
          break;
      }
    }
    // Local mean time offsets carry seconds (New York before 1883: -4:56:02); FHIR offsets are minutes.
    return Math.round((utcMillis(y, mo, d, h, mi, s) - (ms - (ms % 1000))) / MINUTE_MS);
  };

  /**
   * The offset of a local wall-clock time. Ambiguous (clocks set back): the earlier instant, i.e. the
   * offset before the change. Non-existent (clocks set forward): the offset before the change too, which
   * names the instant the wall clock reaches by moving forward — RFC 9557/Temporal's "compatible" choice.
   */
  const offsetOfLocal = (y: number, mo: number, d: number, h: number, mi: number): number => {
    const wall = utcMillis(y, mo, d, h, mi, 0);
    const before = offsetAt(wall - DAY_MS);
    const after = offsetAt(wall + DAY_MS);
    if (before === after) return before;
    const beforeFits = offsetAt(wall - before * MINUTE_MS) === before;
    const afterFits = offsetAt(wall - after * MINUTE_MS) === after;
    if (beforeFits && afterFits) return Math.max(before, after);
    if (afterFits && !beforeFits) return after;
    return before;
  };

  // Key: the local hour. null: the offset changes within that hour (a transition), so minutes decide.
  const cache = new Map<number, string | null>();
  return (year, month, day, hour, minute) => {
    const key = ((year * 100 + month) * 100 + day) * 100 + hour;
    let zone = cache.get(key);
    if (zone === undefined) {
      const first = offsetOfLocal(year, month, day, hour, 0);
      const last = offsetOfLocal(year, month, day, hour, 59);
      zone = first === last ? formatOffsetMinutes(first) : null;
      if (cache.size >= CACHE_LIMIT) cache.clear();
      cache.set(key, zone);
    }
    return zone ?? formatOffsetMinutes(offsetOfLocal(year, month, day, hour, minute));
  };
}
