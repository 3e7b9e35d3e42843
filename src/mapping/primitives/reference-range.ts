import type { Converter } from '../converter.js';
import { toFhirDecimal } from './numeric.js';

const RANGE = /^\s*(-?\d+(?:\.\d+)?)\s*(?:-|–|to)\s*(-?\d+(?:\.\d+)?)\s*$/;
const BOUND = /^\s*(<=|>=|<|>)\s*(-?\d+(?:\.\d+)?)\s*$/;

/**
 * OBX-7 → Observation.referenceRange (the IG: OBX-7 → referenceRange.text): the text always, and where it
 * reads as `low-high`, `<x`/`<=x` or `>x`/`>=x`, the bounds as Quantities in OBX-6's units, so a receiver
 * can compare values without parsing text.
 */
export const referenceRange: Converter = (el, ctx) => {
  const text = el.fullText().trim();
  if (text === '') return undefined;
  const units = ctx.field(6);
  const unit = units.text(2) || units.text(1);
  const ucum = units.text(3).toUpperCase() === 'UCUM' ? units.text(1) : undefined;
  const q = (n: number) => ({
    value: n,
    ...(unit ? { unit } : {}),
    ...(ucum ? { system: 'http://unitsofmeasure.org', code: ucum } : {}),
  });
  const out: Record<string, unknown> = { text };
  const range = RANGE.exec(text);
  if (range) {
    const low = toFhirDecimal(range[1] as string);
    const high = toFhirDecimal(range[2] as string);
    if (low !== undefined && high !== undefined && low <= high) {
      out.low = q(low);
      out.high = q(high);
    }
    return out;
  }
  const bound = BOUND.exec(text);
  if (bound) {
    const n = toFhirDecimal(bound[2] as string);
    if (n !== undefined) out[bound[1]?.startsWith('<') ? 'high' : 'low'] = q(n);
  }
  return out;
};
