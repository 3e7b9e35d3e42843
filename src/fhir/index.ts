export {
  conditionalCreateEntry,
  conditionalQuery,
  conditionalUpdateEntry,
  conditionalUrl,
  escapeSearchValue,
  identifierToken,
  type TransactionEntryInit,
  transactionEntry,
} from './conditional-request.js';
export { deterministicUrn, deterministicUuid, HL7E_NAMESPACE, uuidV5 } from './deterministic-id.js';
export { loadFhirDefinitions } from './fhir-definitions.js';
export type {
  Bundle,
  BundleEntry,
  BundleEntryRequest,
  BundleType,
  CodeableConcept,
  Coding,
  HttpVerb,
  Identifier,
  Period,
  Quantity,
  Reference,
  Resource,
} from './fhir-types.js';
export {
  type FhirIssue,
  type FhirIssueCategory,
  hasErrors,
  toEngineError,
  validateBundle,
  validateFhirResource,
} from './fhir-validator.js';
