import { RESTRICTED_ZIP3 } from './policy.js';

/**
 * Recognisers for single values: HL7 dates, ZIP codes, number-like results, and identifier patterns in
 * text. Pure functions over decoded text.
 */

/** DTM `YYYY[MM[DD[HH[MM[SS[.S{1,4}]]]]]][+/-ZZZZ]` (v2.5.1 §2A.22), DT and TS-1 being prefixes of it. */
const HL7_DATE =
  /^(\d{4})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:(\d{2})(?:\.\d{1,4})?)?)?)?)?)?([+-]\d{4})?$/;

export interface HL7DateParts {
  readonly year: number;
  readonly month?: number;
  readonly day?: number;
}

/** The calendar parts of an HL7 date/time, or undefined when the value is not one. */
export function parseHl7Date(value: string): HL7DateParts | undefined {
  const m = HL7_DATE.exec(value.trim());
  if (!m) return undefined;
  const year = Number(m[1]);
  const month = m[2] === undefined ? undefined : Number(m[2]);
  const day = m[3] === undefined ? undefined : Number(m[3]);
  if (month !== undefined && (month < 1 || month > 12)) return undefined;
  if (day !== undefined && (day < 1 || day > 31)) return undefined;
  if (m[4] !== undefined && Number(m[4]) > 23) return undefined;
  if (m[5] !== undefined && Number(m[5]) > 59) return undefined;
  return { year, ...(month === undefined ? {} : { month }), ...(day === undefined ? {} : { day }) };
}

/**
 * True for a value that is an HL7 date of at least day precision with a plausible year. Used on fields of
 * unknown type, where a shorter run of digits (`200501`) is more likely a number than a month.
 */
export function isFullHl7Date(value: string): boolean {
  const d = parseHl7Date(value);
  return d?.day !== undefined && d.year >= 1800 && d.year <= 2200;
}

/** TS-2 "degree of precision" (v2.3–v2.5): a one-letter code, not a date. */
export function isPrecisionCode(value: string): boolean {
  return /^[YLDHMS]$/.test(value);
}

/** Whole years between a birth date and a reference date, counting a birthday not yet reached. */
export function ageInYears(birth: HL7DateParts, at: HL7DateParts): number {
  let age = at.year - birth.year;
  if (
    birth.month !== undefined &&
    at.month !== undefined &&
    (at.month < birth.month || (at.month === birth.month && (at.day ?? 31) < (birth.day ?? 1)))
  ) {
    age -= 1;
  }
  return age;
}

/** A ZIP reduced per Safe Harbor: first three digits, `000` for a restricted area; '' for anything else. */
export function zip3(value: string): string {
  const m = /^\s*(\d{3})\d{2}(?:-?\d{4})?\s*$/.exec(value);
  if (!m) return '';
  const prefix = m[1] as string;
  return RESTRICTED_ZIP3.has(prefix) ? '000' : prefix;
}

/** An ST result that is a number, a titre, a comparison or a grade (`>1000`, `1:40`, `<0.5`, `3+`, `12.5 %`). */
export function isNumberLikeResult(value: string): boolean {
  return /^\s*[<>=≤≥~]{0,2}\s*[-+]?\d+(?:[.,]\d+)?(?:\s*[:/-]\s*\d+(?:[.,]\d+)?)?\s*[+%]{0,3}\s*$/.test(
    value,
  );
}

/**
 * Identifier patterns looked for inside text of unknown content: SSN, US phone numbers, e-mail, URL,
 * IPv4/IPv6 addresses, and dates written for people (`01/10/2005`, `2005-01-10`). An OID
 * (`2.16.840.1.113883`) is not taken for an IP address.
 */
export const IDENTIFIER_PATTERNS: readonly RegExp[] = [
  /\b\d{3}-\d{2}-\d{4}\b/,
  /(?:\(\d{3}\)\s?|\b\d{3}[-. ])\d{3}[-. ]\d{4}\b/,
  /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/,
  /\b(?:https?|ftp):\/\/|\bwww\.[\w-]+\./i,
  /(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])/,
  /\b(?:[0-9a-f]{1,4}:){7}[0-9a-f]{1,4}\b|\b(?:[0-9a-f]{1,4}:){1,6}:(?:[0-9a-f]{1,4})?\b/i,
  /\b\d{1,2}[/.]\d{1,2}[/.](?:\d{4}|\d{2})\b/,
  /\b(?:18|19|20)\d{2}-[01]\d-[0-3]\d\b/,
];

export function hasIdentifierPattern(text: string): boolean {
  return IDENTIFIER_PATTERNS.some((re) => re.test(text));
}

/** The words of a name worth hunting elsewhere: letters only, four or more, lower-cased. */
export function nameWords(value: string): string[] {
  return (value.toLowerCase().match(/\p{L}{4,}/gu) ?? []).filter((w) => !COMMON_WORDS.has(w));
}

/** Words that are parts of names of places and institutions too often to mean a person. */
const COMMON_WORDS = new Set(['street', 'road', 'lane', 'avenue', 'hospital', 'unknown', 'none']);
