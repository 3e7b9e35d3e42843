import type { ConvertContext, Converter } from '../converter.js';
import type { V2Element } from '../v2-element.js';
import {
  formatFhirDateTime,
  parseV2DateTime,
  toFhirDate,
  toFhirInstant,
  toFhirTime,
  truncateV2DateTime,
  type ZoneFor,
} from './datetime.js';

/** ctx.zoneFor as a plain function (the context may rely on `this`). */
function zoneOf(ctx: ConvertContext): ZoneFor {
  return (y, mo, d, h, mi) => ctx.zoneFor(y, mo, d, h, mi);
}

/** TS (`DTM ^ degree of precision`) → dateTime; TS-2 (v2.3) cuts the value to its precision. */
export function tsToFhirDateTime(el: V2Element, ctx: ConvertContext): string | undefined {
  const parsed = parseV2DateTime(el.value().trim());
  if (parsed === undefined) return undefined;
  const precision = el.level === 2 ? '' : el.text(2).trim();
  const dt = precision === '' ? parsed : truncateV2DateTime(parsed, precision);
  return formatFhirDateTime(dt, zoneOf(ctx));
}

/** Wraps a text → FHIR value function as a converter reporting `dataType` when the text is no such value. */
function textConverter(dataType: string, convert: (text: string, ctx: ConvertContext) => unknown): Converter {
  return (el, ctx) => {
    if (el.isEmpty || el.isNull) return undefined;
    const out = convert(el.value().trim(), ctx);
    if (out === undefined) ctx.invalid(dataType);
    return out;
  };
}

export const dtmConverter: Converter = textConverter('DTM', (text, ctx) => {
  const dt = parseV2DateTime(text);
  return dt === undefined ? undefined : formatFhirDateTime(dt, zoneOf(ctx));
});

export const tsConverter: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const out = tsToFhirDateTime(el, ctx);
  if (out === undefined) ctx.invalid('TS');
  return out;
};

export const dtConverter: Converter = textConverter('DT', toFhirDate);
export const dtmDateConverter: Converter = textConverter('DTM', toFhirDate);
export const dtmInstantConverter: Converter = textConverter('DTM', (text, ctx) =>
  toFhirInstant(text, zoneOf(ctx)),
);
export const tmConverter: Converter = textConverter('TM', toFhirTime);
