/**
 * Conditional search URLs and transaction entries: how a replayed message changes nothing at the
 * destination (DESIGN rule 4). https://hl7.org/fhir/R4/http.html#cond-update
 *
 * These URLs carry business identifiers (PID-3 …), which are PHI: they go into the Bundle only, never into
 * logs or errors.
 */
import type { BundleEntry, Identifier, Resource } from './fhir-types.js';

/**
 * Escapes one search value per https://hl7.org/fhir/R4/search.html#escaping: `\`, `|`, `$` and `,` inside
 * a value are preceded by `\`, so a `|` in an MRN is not read as the token's system separator.
 */
export function escapeSearchValue(value: string): string {
  return value.replace(/[\\|$,]/g, '\\$&');
}

/**
 * The token search value for an identifier: `system|value`, each side escaped. Without a system, `value`
 * alone, which matches that value in any system. Undefined without a value: `system|` would match every
 * identifier of the system, and a conditional update on it would merge unrelated resources.
 */
export function identifierToken(identifier: Pick<Identifier, 'system' | 'value'>): string | undefined {
  const { system, value } = identifier;
  if (!value) return undefined;
  return system ? `${escapeSearchValue(system)}|${escapeSearchValue(value)}` : escapeSearchValue(value);
}

const RESOURCE_TYPE = /^[A-Z][A-Za-z]{0,63}$/;
/** Search parameter names, with modifiers and chains (`_id`, `subject:Patient.identifier`). */
const PARAM_NAME = /^[A-Za-z_][A-Za-z0-9_\-.:]{0,127}$/;

/**
 * The query part (`identifier=http%3A%2F%2Fhosp%7C123&…`) of a conditional URL; what `ifNoneExist` holds.
 * Values are search values already (built with `identifierToken` / `escapeSearchValue`); this only
 * percent-encodes them for the URL.
 */
export function conditionalQuery(params: readonly (readonly [name: string, value: string])[]): string {
  if (params.length === 0) throw new TypeError('a conditional request needs at least one parameter');
  return params
    .map(([name, value]) => {
      if (!PARAM_NAME.test(name)) throw new TypeError('invalid search parameter name');
      return `${name}=${encodeURIComponent(value)}`;
    })
    .join('&');
}

/** `Patient?identifier=http%3A%2F%2Fhosp%7C123`: a conditional PUT's url. */
export function conditionalUrl(
  resourceType: string,
  params: readonly (readonly [name: string, value: string])[],
): string {
  // Programming errors, not input errors: types and parameter names come from validated mappings.
  if (!RESOURCE_TYPE.test(resourceType)) throw new TypeError('invalid resource type');
  return `${resourceType}?${conditionalQuery(params)}`;
}

export interface TransactionEntryInit<R extends Resource> {
  fullUrl: string;
  resource: R;
  /** PUT: conditional update on `url`; POST: create, conditional on `ifNoneExist` when given. */
  method: 'PUT' | 'POST';
  url: string;
  /** Query part only (`identifier=…`), POST only: https://hl7.org/fhir/R4/http.html#ccreate */
  ifNoneExist?: string;
}

/** A transaction Bundle entry. Keys in a fixed order and no `undefined` members, for byte-identical output. */
export function transactionEntry<R extends Resource>(init: TransactionEntryInit<R>): BundleEntry<R> {
  if (init.ifNoneExist !== undefined && init.method !== 'POST') {
    throw new TypeError('ifNoneExist applies to POST only');
  }
  return {
    fullUrl: init.fullUrl,
    resource: init.resource,
    request:
      init.ifNoneExist === undefined
        ? { method: init.method, url: init.url }
        : { method: init.method, url: init.url, ifNoneExist: init.ifNoneExist },
  };
}

/** Conditional update (`PUT Type?identifier=…`): creates the resource or replaces the one it matches. */
export function conditionalUpdateEntry<R extends Resource>(
  fullUrl: string,
  resource: R,
  params: readonly (readonly [name: string, value: string])[],
): BundleEntry<R> {
  return transactionEntry({
    fullUrl,
    resource,
    method: 'PUT',
    url: conditionalUrl(resource.resourceType, params),
  });
}

/** Conditional create (`POST Type` + `ifNoneExist`): creates the resource unless one matches. */
export function conditionalCreateEntry<R extends Resource>(
  fullUrl: string,
  resource: R,
  params: readonly (readonly [name: string, value: string])[],
): BundleEntry<R> {
  return transactionEntry({
    fullUrl,
    resource,
    method: 'POST',
    url: resource.resourceType,
    ifNoneExist: conditionalQuery(params),
  });
}
