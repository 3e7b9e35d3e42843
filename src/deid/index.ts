/**
 * HIPAA Safe Harbor de-identification of HL7 v2 messages (`hl7e messages export --deidentify`). Pure: no
 * I/O; the caller supplies the per-export pseudonym key. The policy is data: see policy.ts.
 */

export { Deidentifier, type DeidentifyOptions } from './deidentifier.js';
export {
  DATA_TYPES,
  type FieldRule,
  MARKER,
  OBX_VALUE_RULES,
  SEGMENT_POLICY,
  type ValueRule,
} from './policy.js';
export { Pseudonymizer } from './pseudonymizer.js';
