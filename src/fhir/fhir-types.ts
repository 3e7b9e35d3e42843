/**
 * The few FHIR R4 shapes the engine builds and reads. Defined here rather than imported from
 * @medplum/fhirtypes because that package is not installed; they stay deliberately loose (`Resource` is
 * any JSON object with a `resourceType`), since resources are assembled from mapping files at run time and
 * checked by `validateFhirResource`, not by the compiler.
 */

/** Any resource: https://hl7.org/fhir/R4/resource.html */
export interface Resource {
  resourceType: string;
  id?: string;
  [key: string]: unknown;
}

export interface Coding {
  system?: string;
  version?: string;
  code?: string;
  display?: string;
  userSelected?: boolean;
}

export interface CodeableConcept {
  coding?: Coding[];
  text?: string;
}

export interface Period {
  start?: string;
  end?: string;
}

export interface Identifier {
  use?: 'usual' | 'official' | 'temp' | 'secondary' | 'old';
  type?: CodeableConcept;
  system?: string;
  value?: string;
  period?: Period;
  assigner?: Reference;
}

/** `reference` is `Type/id`, a conditional `Type?search`, or a Bundle-local `urn:uuid:…` fullUrl. */
export interface Reference {
  reference?: string;
  type?: string;
  identifier?: Identifier;
  display?: string;
}

export interface Quantity {
  value?: number;
  comparator?: '<' | '<=' | '>=' | '>';
  unit?: string;
  system?: string;
  code?: string;
}

export type HttpVerb = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE' | 'PATCH';

/** https://hl7.org/fhir/R4/bundle-definitions.html#Bundle.entry.request */
export interface BundleEntryRequest {
  method: HttpVerb;
  url: string;
  ifNoneMatch?: string;
  ifModifiedSince?: string;
  ifMatch?: string;
  ifNoneExist?: string;
}

export interface BundleEntry<R extends Resource = Resource> {
  fullUrl?: string;
  resource?: R;
  request?: BundleEntryRequest;
}

export type BundleType =
  | 'document'
  | 'message'
  | 'transaction'
  | 'transaction-response'
  | 'batch'
  | 'batch-response'
  | 'history'
  | 'searchset'
  | 'collection';

export interface Bundle extends Resource {
  resourceType: 'Bundle';
  identifier?: Identifier;
  type: BundleType;
  timestamp?: string;
  entry?: BundleEntry[];
}
