import type { V2Element } from '../v2-element.js';

/** FHIR R4 Quantity.comparator (https://hl7.org/fhir/R4/valueset-quantity-comparator.html). */
export type QuantityComparator = '<' | '<=' | '>=' | '>';

/**
 * A structured numeric, shaped by the IG's OBX-5 rules for SN (OBX[Observation] rows for OBX-2 = SN):
 * separator `:` or `/` → Ratio (SN[Ratio]); `-` → Range (SN[Range]); `+` or comparator `<>` → text
 * (valueString); anything else → Quantity (SN[Quantity]). `originalText` is the IG's
 * originalText extension value, set where its condition holds (`SN.1 SN.2 SN.3 SN.4`, empty parts left out).
 */
export type StructuredNumeric =
  | {
      readonly kind: 'quantity';
      readonly value: number;
      readonly comparator?: QuantityComparator;
      readonly originalText?: string;
    }
  | { readonly kind: 'range'; readonly low?: number; readonly high?: number; readonly originalText?: string }
  | {
      readonly kind: 'ratio';
      readonly numerator: number;
      readonly denominator: number;
      readonly comparator?: QuantityComparator;
      readonly originalText?: string;
    }
  | { readonly kind: 'text'; readonly text: string };

/**
 * A v2 NM (v2.5.1 §2A.47: optional leading sign, digits, optional decimal point) → number; undefined for
 * anything else (exponents, `.`, `-`, blanks inside, thousands separators). Surrounding spaces are ignored.
 * Note: a JSON number cannot keep trailing zeros (`1.50` → 1.5).
 */
export function toFhirDecimal(text: string): number | undefined {
  const s = text.trim();
  const end = scanDecimal(s, 0);
  return end === s.length && end > 0 ? Number(s) : undefined;
}

/** The end of the NM starting at `start` (`[+-]?(\d+\.?\d*|\.\d+)`), or `start` when there is none. */
function scanDecimal(s: string, start: number): number {
  let i = start;
  const n = s.length;
  if (i < n && (s[i] === '+' || s[i] === '-')) i++;
  let digits = 0;
  while (i < n && isDigit(s.charCodeAt(i))) {
    i++;
    digits++;
  }
  if (i < n && s[i] === '.') {
    i++;
    while (i < n && isDigit(s.charCodeAt(i))) {
      i++;
      digits++;
    }
  }
  return digits === 0 ? start : i;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** SN-1 (v2.5.1 §2A.71): `>`, `<`, `>=`, `<=`, `=`, `<>`; '' and `=` mean "equal" (no FHIR comparator). */
function comparatorOf(c: string): QuantityComparator | '' | '<>' | undefined {
  switch (c) {
    case '':
    case '=':
      return '';
    case '<':
    case '>':
    case '<=':
    case '>=':
    case '<>':
      return c;
    default:
      return undefined;
  }
}

function joinParts(parts: readonly string[]): string {
  let out = '';
  for (const p of parts) if (p !== '') out = out === '' ? p : `${out} ${p}`;
  return out;
}

/**
 * SN `comparator ^ num1 ^ separator/suffix ^ num2` → quantity, range, ratio or text, following the IG:
 * - `<>` (not equal) → text: FHIR has no such comparator (OBX[Observation]: valueString).
 * - `+` suffix (`^2^+`, "2+") → text (OBX[Observation]: valueString).
 * - `:` or `/` → ratio; both numbers required (FHIR rat-1); the comparator goes to numerator.comparator.
 * - `-` → range; at least one bound, low ≤ high; a comparator has no place in a Range (kept in originalText).
 * - no separator → quantity from num1 (num1 required).
 * - `.` (the other separator v2 lists) → quantity from num1, with the original text kept (SN[Quantity]).
 * `=` is dropped (equality is what a Quantity without comparator says). Undefined when invalid.
 */
export function parseStructuredNumeric(el: V2Element): StructuredNumeric | undefined {
  if (el.isEmpty || el.isNull) return undefined;
  const c = el.text(1).trim();
  const num1 = el.text(2).trim();
  const sep = el.text(3).trim();
  const num2 = el.text(4).trim();
  const comparator = comparatorOf(c);
  if (comparator === undefined) return undefined;
  const v1 = num1 === '' ? undefined : toFhirDecimal(num1);
  const v2 = num2 === '' ? undefined : toFhirDecimal(num2);
  if ((num1 !== '' && v1 === undefined) || (num2 !== '' && v2 === undefined)) return undefined;
  if (v1 === undefined && v2 === undefined) return undefined;
  const original = joinParts([c, num1, sep, num2]);
  if (comparator === '<>' || sep === '+') return { kind: 'text', text: original };
  switch (sep) {
    case ':':
    case '/':
      if (v1 === undefined || v2 === undefined || v2 === 0) return undefined;
      return comparator === ''
        ? { kind: 'ratio', numerator: v1, denominator: v2, originalText: original }
        : { kind: 'ratio', numerator: v1, denominator: v2, comparator, originalText: original };
    case '-':
      if (v1 !== undefined && v2 !== undefined && v1 > v2) return undefined;
      return { kind: 'range', low: v1, high: v2, originalText: original };
    case '':
    case '.': {
      if (v1 === undefined) return undefined;
      const originalText = sep !== '' || num2 !== '' ? original : undefined;
      if (comparator === '')
        return originalText ? { kind: 'quantity', value: v1, originalText } : quantity(v1);
      return originalText
        ? { kind: 'quantity', value: v1, comparator, originalText }
        : { kind: 'quantity', value: v1, comparator };
    }
    default:
      return undefined;
  }
}

function quantity(value: number): StructuredNumeric {
  return { kind: 'quantity', value };
}

function skipSpaces(s: string, i: number): number {
  while (i < s.length && s.charCodeAt(i) === 32) i++;
  return i;
}

/**
 * Unstructured SN-like text in an NM or ST value (a common deviation: `<0.5`, `>= 10`, `1:128`, `1/2`,
 * `10-20`, `10 - 20`) → the same shapes as `parseStructuredNumeric`; a plain number is a quantity.
 * A leading `-` is a sign (`-5` is minus five, `-5-10` is −5 to 10). Undefined when the text is anything else.
 */
export function parseComparatorText(text: string): StructuredNumeric | undefined {
  const s = text.trim();
  let i = 0;
  let comparator: QuantityComparator | '' = '';
  if (s[0] === '<' || s[0] === '>') {
    comparator = s[1] === '=' ? (`${s[0]}=` as QuantityComparator) : (s[0] as QuantityComparator);
    i = comparator.length;
  } else if (s[0] === '=') {
    i = 1;
  }
  i = skipSpaces(s, i);
  const end1 = scanDecimal(s, i);
  if (end1 === i) return undefined;
  const v1 = Number(s.slice(i, end1));
  i = skipSpaces(s, end1);
  if (i === s.length) return comparator === '' ? quantity(v1) : { kind: 'quantity', value: v1, comparator };
  const sep = s[i];
  if (sep !== '-' && sep !== ':' && sep !== '/') return undefined;
  i = skipSpaces(s, i + 1);
  const end2 = scanDecimal(s, i);
  if (end2 === i || skipSpaces(s, end2) !== s.length) return undefined;
  const v2 = Number(s.slice(i, end2));
  if (sep === '-') {
    if (comparator !== '' || v1 > v2) return undefined;
    return { kind: 'range', low: v1, high: v2 };
  }
  if (v2 === 0) return undefined;
  return comparator === ''
    ? { kind: 'ratio', numerator: v1, denominator: v2 }
    : { kind: 'ratio', numerator: v1, denominator: v2, comparator };
}
