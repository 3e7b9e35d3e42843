/**
 * The built-in converters a mapping rule names in `type:` (docs/mapping.md, "Built-in converters").
 * Each gets one element and the ConvertContext and returns the FHIR value, or undefined to set nothing;
 * an empty element or the HL7 null `""` gives undefined silently, a value it cannot read is reported
 * with `ctx.invalid(<v2 data type>)` and gives undefined.
 *
 * - `DTM`: DTM → dateTime, precision kept (`2024`, `2024-03`, `2024-03-15`; a time gets `:00` seconds if
 *   missing and its own zone, else `ctx.zoneFor`'s).
 * - `TS`: TS-1 as `DTM`; a v2.3 TS-2 degree of precision (Y L D H M S) cuts the value to that precision.
 * - `DT`, `DTM-date`: the date part → date (`birthDate`); a time and zone are dropped.
 * - `DTM-instant`: → instant (seconds and zone always; a date alone is midnight in `ctx.zoneFor`'s zone;
 *   year or year-month is invalid).
 * - `TM`: TM → time `HH:MM:SS[.S]` (a zone in the value is dropped: FHIR time has none).
 * - `NM`: → decimal number.
 * - `SN`: → `{ valueQuantity | valueRange | valueRatio | valueString }` per the IG's SN maps, no units
 *   (merge with `to: .`); OBX-5 gets the same through `ObservationValue`, with OBX-6 units.
 * - `ID-boolean`: table 0136 `Y`/`N` → true/false.
 * - `ED`: encapsulated data → Attachment (`contentType` from type/subtype, `data` base64; Hex and A converted).
 * - `ObservationValue`: OBX-5 by OBX-2 → `{ value[x] }` to merge into the Observation (see observation-value.ts).
 * - `CodeableConcept`: CWE/CE/CNE → CodeableConcept (all triplets, original text).
 * - `Coding`: the first CWE triplet → Coding.
 * - `CodingSystem`: a table 0396 coding-system name → its system URI (see codingSystemUri).
 * - `HD-system`: an assigning authority (HD) → Identifier.system (see assigning-authority.ts).
 * - `TelecomValue`: XTN → ContactPoint.value, assembled from its number components (see telecom.ts).
 * - `EI-system`: an EI's assigning authority (EI-2..4, an HD's parts) → Identifier.system.
 * - `ReferenceRange`: OBX-7 → referenceRange: the text, and low/high in OBX-6 units where it reads as a range.
 * - `TextLines`: every repetition of the field as one text, a line each (NTE-3, TX/FT lines).
 */
import type { Converter } from '../converter.js';
import { eiSystem, hdSystem } from './assigning-authority.js';
import { edAttachment } from './attachment.js';
import { idBoolean } from './boolean.js';
import { codingSystemUri, toCodeableConcept, toCoding } from './coded.js';
import {
  dtConverter,
  dtmConverter,
  dtmDateConverter,
  dtmInstantConverter,
  tmConverter,
  tsConverter,
} from './datetime-converters.js';
import { parseStructuredNumeric, toFhirDecimal } from './numeric.js';
import { observationValue, structuredNumericValue } from './observation-value.js';
import { referenceRange } from './reference-range.js';
import { telecomValue } from './telecom.js';
import { textLines } from './text-lines.js';

const nm: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const n = toFhirDecimal(el.value());
  if (n === undefined) ctx.invalid('NM');
  return n;
};

const sn: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const parsed = parseStructuredNumeric(el);
  if (parsed === undefined) {
    ctx.invalid('SN');
    return undefined;
  }
  return structuredNumericValue(parsed, undefined, ctx);
};

const codeableConcept: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const cc = toCodeableConcept(el, ctx);
  if (cc === undefined) ctx.invalid('CWE');
  return cc;
};

const coding: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  const c = toCoding(el, ctx);
  if (c === undefined) ctx.invalid('CWE');
  return c;
};

const codingSystem: Converter = (el, ctx) => {
  if (el.isEmpty || el.isNull) return undefined;
  return codingSystemUri(el.value(), ctx.vocabulary);
};

export const BUILTIN_CONVERTERS: Readonly<Record<string, Converter>> = Object.freeze({
  DTM: dtmConverter,
  TS: tsConverter,
  DT: dtConverter,
  'DTM-date': dtmDateConverter,
  'DTM-instant': dtmInstantConverter,
  TM: tmConverter,
  NM: nm,
  SN: sn,
  'ID-boolean': idBoolean,
  ED: edAttachment,
  ObservationValue: observationValue,
  CodeableConcept: codeableConcept,
  Coding: coding,
  CodingSystem: codingSystem,
  'HD-system': hdSystem,
  TelecomValue: telecomValue,
  TextLines: textLines,
  'EI-system': eiSystem,
  ReferenceRange: referenceRange,
});

export { type Attachment, contentTypeOf, hexToBase64, normalizeBase64, toAttachment } from './attachment.js';
export { toFhirBoolean } from './boolean.js';
export { codingSystemUri, LOCAL_CODING_SYSTEM_PREFIX, toCodeableConcept, toCoding } from './coded.js';
export {
  type DateTimePrecision,
  formatFhirDateTime,
  parseV2DateTime,
  toFhirDate,
  toFhirDateTime,
  toFhirInstant,
  toFhirTime,
  truncateV2DateTime,
  type V2DateTime,
  type ZoneFor,
  zoneOfDateTime,
  zoneResolver,
} from './datetime.js';
export {
  parseComparatorText,
  parseStructuredNumeric,
  type QuantityComparator,
  type StructuredNumeric,
  toFhirDecimal,
} from './numeric.js';
export { type Range, type Ratio, structuredNumericValue } from './observation-value.js';
export { toQuantity, UCUM_SYSTEM } from './quantity.js';
