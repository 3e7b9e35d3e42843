import type { Converter } from '../converter.js';

/**
 * HL7 table 0136 (Yes/No indicator) → boolean, per the IG's ID[boolean] and its YesNoIndicator concept
 * map: `Y` → true, `N` → false (case-insensitive, as vocabulary look-ups are). Nothing else is in table
 * 0136 — `T`/`F`, `Yes`/`No` are undefined (the caller reports them invalid).
 */
export function toFhirBoolean(text: string): boolean | undefined {
  const t = text.trim();
  if (t === 'Y' || t === 'y') return true;
  if (t === 'N' || t === 'n') return false;
  return undefined;
}

/** The `ID-boolean` converter. */
export const idBoolean: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const b = toFhirBoolean(el.value());
  if (b === undefined) ctx.invalid('ID');
  return b;
};
