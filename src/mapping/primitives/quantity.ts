import type { Quantity } from '../../fhir/fhir-types.js';
import type { ConvertContext } from '../converter.js';
import type { V2Element } from '../v2-element.js';
import { codingSystemUri } from './coded.js';
import type { QuantityComparator } from './numeric.js';

export const UCUM_SYSTEM = 'http://unitsofmeasure.org';

/**
 * A number and its units (a CWE, OBX-6) → FHIR Quantity, per the IG's CWE[Quantity]:
 * `unit` = CWE-2, else CWE-1; `code` = CWE-1 and `system` = CWE-3's URI only when both are valued.
 * CWE-3 `UCUM` (HL7 table 0396) is http://unitsofmeasure.org whatever the vocabulary says; `ANS+`/`ISO+`
 * are HL7's older unit tables, not UCUM, so they resolve like any other name (see codingSystemUri).
 */
export function toQuantity(
  value: number,
  comparator: QuantityComparator | undefined,
  units: V2Element,
  ctx: Pick<ConvertContext, 'vocabulary'>,
): Quantity {
  const q: Quantity = { value };
  if (comparator !== undefined) q.comparator = comparator;
  if (units.isEmpty || units.isNull) return q;
  const code = units.text(1).trim();
  const text = units.text(2).trim();
  const unit = text || code;
  if (unit !== '') q.unit = unit;
  const systemName = units.text(3).trim();
  if (code !== '' && systemName !== '') {
    q.system =
      systemName.toUpperCase() === 'UCUM' ? UCUM_SYSTEM : codingSystemUri(systemName, ctx.vocabulary);
    q.code = code;
  }
  return q;
}
