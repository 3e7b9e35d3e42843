import type { Quantity } from '../../fhir/fhir-types.js';
import type { ConvertContext, Converter } from '../converter.js';
import type { V2Element } from '../v2-element.js';
import { toCodeableConcept } from './coded.js';
import { formatFhirDateTime, parseV2DateTime, toFhirDate, toFhirTime } from './datetime.js';
import { tsToFhirDateTime } from './datetime-converters.js';
import {
  parseComparatorText,
  parseStructuredNumeric,
  type StructuredNumeric,
  toFhirDecimal,
} from './numeric.js';
import { toQuantity } from './quantity.js';

const ORIGINAL_TEXT_URL = 'http://hl7.org/fhir/StructureDefinition/originalText';

/** FHIR Range / Ratio as the SN and NR maps fill them. */
export interface Range {
  extension?: Array<{ url: string; valueString: string }>;
  low?: Quantity;
  high?: Quantity;
}
export interface Ratio {
  extension?: Array<{ url: string; valueString: string }>;
  numerator?: Quantity;
  denominator?: Quantity;
}

/**
 * The `value[x]` object for a structured numeric (merged into the Observation, or wherever `to` points),
 * with OBX-6 units on every Quantity as the IG's OBX-6 rows say (Range low and high, Ratio numerator and
 * denominator). `units` undefined: no units (the plain `SN` converter).
 */
export function structuredNumericValue(
  sn: StructuredNumeric,
  units: V2Element | undefined,
  ctx: Pick<ConvertContext, 'vocabulary'>,
): Record<string, unknown> {
  const q = (value: number, comparator?: Quantity['comparator']): Quantity =>
    units !== undefined
      ? toQuantity(value, comparator, units, ctx)
      : comparator === undefined
        ? { value }
        : { value, comparator };
  const ext = (text: string | undefined) =>
    text === undefined ? undefined : [{ url: ORIGINAL_TEXT_URL, valueString: text }];
  switch (sn.kind) {
    case 'quantity': {
      const quantity = q(sn.value, sn.comparator);
      const extension = ext(sn.originalText);
      return { valueQuantity: extension ? { extension, ...quantity } : quantity };
    }
    case 'range': {
      const range: Range = {};
      const extension = ext(sn.originalText);
      if (extension) range.extension = extension;
      if (sn.low !== undefined) range.low = q(sn.low);
      if (sn.high !== undefined) range.high = q(sn.high);
      return { valueRange: range };
    }
    case 'ratio': {
      const ratio: Ratio = {};
      const extension = ext(sn.originalText);
      if (extension) ratio.extension = extension;
      ratio.numerator = q(sn.numerator, sn.comparator);
      ratio.denominator = q(sn.denominator);
      return { valueRatio: ratio };
    }
    case 'text':
      return { valueString: withUnits(sn.text, units) };
  }
}

/** The IG's valueString for SN: `OBX-5.1 OBX-5.2 OBX-5.3 OBX-5.4 OBX-6` (empty parts left out). */
function withUnits(text: string, units: V2Element | undefined): string {
  if (units === undefined) return text;
  const unit = units.text(1).trim() || units.text(2).trim();
  return unit === '' ? text : `${text} ${unit}`;
}

function numericValue(el: V2Element, ctx: ConvertContext): unknown {
  const text = el.value();
  const value = toFhirDecimal(text);
  const units = ctx.field(6);
  if (value !== undefined) return { valueQuantity: toQuantity(value, undefined, units, ctx) };
  // A common deviation: SN-like text (`<0.5`, `>=10`, `1:128`, `10-20`) sent as NM.
  const sn = parseComparatorText(text);
  if (sn !== undefined) return structuredNumericValue(sn, units, ctx);
  ctx.invalid('NM');
  return undefined;
}

function snValue(el: V2Element, ctx: ConvertContext): unknown {
  const units = ctx.field(6);
  const sn = parseStructuredNumeric(el);
  if (sn !== undefined) return structuredNumericValue(sn, units, ctx);
  // OBX[Observation]: "If line 19 through 23 all fail while OBX-2 = SN" → valueString of the parts and OBX-6.
  let text = '';
  for (let n = 1; n <= 4; n++) {
    const part = el.text(n).trim();
    if (part !== '') text = text === '' ? part : `${text} ${part}`;
  }
  if (text === '') {
    ctx.invalid('SN');
    return undefined;
  }
  return { valueString: withUnits(text, units) };
}

function nrValue(el: V2Element, ctx: ConvertContext): unknown {
  const lowText = el.text(1).trim();
  const highText = el.text(2).trim();
  const low = lowText === '' ? undefined : toFhirDecimal(lowText);
  const high = highText === '' ? undefined : toFhirDecimal(highText);
  if (
    (lowText !== '' && low === undefined) ||
    (highText !== '' && high === undefined) ||
    (low === undefined && high === undefined) ||
    (low !== undefined && high !== undefined && low > high)
  ) {
    ctx.invalid('NR');
    return undefined;
  }
  const range: Range = {};
  if (low !== undefined) range.low = { value: low };
  if (high !== undefined) range.high = { value: high };
  return { valueRange: range };
}

function drValue(el: V2Element, ctx: ConvertContext): unknown {
  const zoneFor = (y: number, mo: number, d: number, h: number, mi: number) => ctx.zoneFor(y, mo, d, h, mi);
  const period: { start?: string; end?: string } = {};
  for (const [n, key] of [
    [1, 'start'],
    [2, 'end'],
  ] as const) {
    const text = el.text(n).trim();
    if (text === '') continue;
    const dt = parseV2DateTime(text);
    if (dt === undefined) {
      ctx.invalid('DR');
      return undefined;
    }
    period[key] = formatFhirDateTime(dt, zoneFor);
  }
  if (period.start === undefined && period.end === undefined) {
    ctx.invalid('DR');
    return undefined;
  }
  return { valuePeriod: period };
}

function checked(dataType: string, ctx: ConvertContext, key: string, value: unknown): unknown {
  if (value === undefined) {
    ctx.invalid(dataType);
    return undefined;
  }
  return { [key]: value };
}

/**
 * OBX-5 (one repetition) by OBX-2, per the IG's OBX[Observation] OBX-5 rows → the `value[x]` object to
 * merge into the Observation. ED/RP → undefined without a report (R4 Observation has no attachment value;
 * the message map sends those to DiagnosticReport.presentedForm). A value type the IG gives no FHIR value
 * for (NA, EI, …), or a missing OBX-2, is reported invalid with that type (`varies` when OBX-2 is empty).
 */
export const observationValue: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const type = ctx.field(2).value().trim().toUpperCase();
  switch (type) {
    case 'NM':
      return numericValue(el, ctx);
    case 'SN':
      return snValue(el, ctx);
    case 'ST':
    case 'TX':
    case 'FT': {
      // fullText: ST/TX/FT may carry escaped delimiters and (TX/FT) formatting, decoded to plain text.
      // A text in several repetitions (lines of a report) is one value: the repetitions joined by lines.
      const reps = ctx.repetitions();
      const text = reps.length > 1 ? reps.map((r) => r.fullText()).join('\n') : el.fullText();
      if (text.trim() === '') return undefined;
      return { valueString: text };
    }
    case 'CWE':
    case 'CE':
    case 'CNE':
    case 'CF':
      return checked(type, ctx, 'valueCodeableConcept', toCodeableConcept(el, ctx));
    case 'IS':
    case 'ID': {
      // IS[CodeableConcept] / ID[CodeableConcept]: the code alone (the table is not known here).
      const code = el.value().trim();
      return checked(type, ctx, 'valueCodeableConcept', code === '' ? undefined : { coding: [{ code }] });
    }
    case 'DTM':
    case 'TS':
      return checked(type, ctx, 'valueDateTime', tsToFhirDateTime(el, ctx));
    case 'DT':
      return checked(type, ctx, 'valueDateTime', toFhirDate(el.value().trim()));
    case 'TM':
      return checked(type, ctx, 'valueTime', toFhirTime(el.value().trim()));
    case 'NR':
      return nrValue(el, ctx);
    case 'DR':
      return drValue(el, ctx);
    case 'ED':
    case 'RP':
      return undefined;
    case '':
      ctx.invalid('varies');
      return undefined;
    default:
      ctx.invalid(type);
      return undefined;
  }
};
