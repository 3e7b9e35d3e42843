/**
 * Comparable facts of a FHIR Bundle, for checking our conversion against another converter's expected output
 * (Microsoft FHIR-Converter's, in the corpus). A fact is one string: `Kind[key]: value`. The Bundles differ in
 * shape (batch vs transaction, hashed ids vs conditional entries, one resource split or merged differently),
 * so facts are collected per Bundle and per resource type, not per resource instance; observation facts are
 * keyed by the observation's code so that a value is only matched with the test it belongs to.
 */

type Json = Record<string, unknown>;

export type FactKind =
  | 'Patient.identifier'
  | 'Patient.name'
  | 'Patient.birthDate'
  | 'Patient.gender'
  | 'Patient.address.line'
  | 'Patient.address.city'
  | 'Patient.address.state'
  | 'Patient.address.postalCode'
  | 'Encounter.class'
  | 'Encounter.status'
  | 'Encounter.identifier'
  | 'Observation.code'
  | 'Observation.value'
  | 'Observation.status'
  | 'Observation.interpretation'
  | 'DiagnosticReport.code'
  | 'DiagnosticReport.status'
  | 'ServiceRequest.identifier'
  | 'ServiceRequest.status'
  | 'ServiceRequest.intent'
  | 'ServiceRequest.code'
  | 'AllergyIntolerance.code'
  | 'Condition.code'
  | 'Practitioner.identifier'
  | 'Practitioner.family'
  | 'Coverage.identifier'
  | 'Contact.name';

export interface Fact {
  readonly kind: FactKind;
  /** What the fact is about within its kind (an observation's code), or '' . */
  readonly key: string;
  readonly value: string;
}

export function factString(f: Fact): string {
  return `${f.kind}${f.key ? `[${f.key}]` : ''}: ${f.value}`;
}

/** Every fact of a Bundle (batch, transaction or collection), deduplicated and sorted. */
export function extractFacts(bundle: unknown): Fact[] {
  const out = new Map<string, Fact>();
  const add = (kind: FactKind, value: unknown, key = ''): void => {
    const v = norm(value);
    if (v === '') return;
    const f: Fact = { kind, key, value: v };
    out.set(factString(f), f);
  };
  for (const entry of arr((bundle as Json)?.entry)) {
    const r = (entry as Json)?.resource as Json | undefined;
    if (!r || typeof r !== 'object') continue;
    switch (r.resourceType) {
      case 'Patient':
        patientFacts(r, add);
        break;
      case 'Encounter':
        add('Encounter.class', (r.class as Json | undefined)?.code);
        add('Encounter.status', r.status);
        for (const id of arr(r.identifier)) add('Encounter.identifier', (id as Json).value);
        break;
      case 'Observation':
        observationFacts(r, add);
        break;
      case 'DiagnosticReport':
        for (const c of codes(r.code)) {
          add('DiagnosticReport.code', c);
          add('DiagnosticReport.status', r.status, c);
        }
        break;
      case 'ServiceRequest':
        for (const id of arr(r.identifier)) add('ServiceRequest.identifier', (id as Json).value);
        add('ServiceRequest.status', r.status);
        add('ServiceRequest.intent', r.intent);
        for (const c of codes(r.code)) add('ServiceRequest.code', c);
        break;
      case 'AllergyIntolerance':
        for (const c of codes(r.code)) add('AllergyIntolerance.code', c);
        break;
      case 'Condition':
        for (const c of codes(r.code)) add('Condition.code', c);
        break;
      case 'Practitioner':
        for (const id of arr(r.identifier)) add('Practitioner.identifier', (id as Json).value);
        for (const n of arr(r.name)) add('Practitioner.family', (n as Json).family);
        break;
      case 'Coverage':
        for (const id of arr(r.identifier)) add('Coverage.identifier', (id as Json).value);
        break;
      case 'RelatedPerson':
        // NK1 and insured persons: the IG makes RelatedPerson and/or Patient.contact, MS only RelatedPerson.
        for (const n of arr(r.name)) add('Contact.name', humanName(n as Json));
        break;
      case 'Organization':
        // NK1-30 (the contact person of an organization that is next of kin): IG NK1[Patient] puts it here.
        for (const c of arr(r.contact)) add('Contact.name', humanName((c as Json).name as Json | undefined));
        break;
    }
  }
  return [...out.values()].sort((a, b) => (factString(a) < factString(b) ? -1 : 1));
}

type Add = (kind: FactKind, value: unknown, key?: string) => void;

function patientFacts(r: Json, add: Add): void {
  for (const id of arr(r.identifier)) add('Patient.identifier', (id as Json).value);
  for (const n of arr(r.name)) add('Patient.name', humanName(n as Json));
  add('Patient.birthDate', datePart(r.birthDate));
  add('Patient.gender', r.gender);
  for (const a of arr(r.address)) {
    const addr = a as Json;
    for (const line of arr(addr.line)) add('Patient.address.line', line);
    add('Patient.address.city', addr.city);
    add('Patient.address.state', addr.state);
    add('Patient.address.postalCode', addr.postalCode);
  }
  for (const c of arr(r.contact)) add('Contact.name', humanName((c as Json).name as Json | undefined));
}

function observationFacts(r: Json, add: Add): void {
  const keys = codes(r.code);
  for (const c of keys) add('Observation.code', c);
  const key = keys[0] ?? '';
  add('Observation.status', r.status, key);
  for (const c of arr(r.interpretation).flatMap(codes)) add('Observation.interpretation', c, key);
  const q = r.valueQuantity as Json | undefined;
  if (q && typeof q === 'object') {
    const n = num(q.value);
    const units = [q.unit, q.code].map(norm).filter((u) => u !== '');
    if (units.length === 0) add('Observation.value', n, key);
    for (const u of new Set(units)) add('Observation.value', `${n} ${u}`, key);
  }
  add('Observation.value', r.valueString, key);
  for (const c of codes(r.valueCodeableConcept)) add('Observation.value', c, key);
}

/** `family|given1`: the parts two converters agree on (prefixes, suffixes and `use` differ by convention). */
function humanName(n: Json | undefined): string {
  if (!n || typeof n !== 'object') return '';
  const family = norm(n.family);
  const given = norm(arr(n.given)[0]);
  return family === '' && given === '' ? '' : `${family}|${given}`;
}

function codes(cc: unknown): string[] {
  return arr((cc as Json | undefined)?.coding)
    .map((c) => norm((c as Json).code))
    .filter((c) => c !== '');
}

/** The date part: MS writes some dates with times in another zone convention. */
function datePart(v: unknown): string {
  return typeof v === 'string' ? v.slice(0, 10) : '';
}

function num(v: unknown): string {
  const n = typeof v === 'number' ? v : Number(v);
  return Number.isFinite(n) ? String(n) : norm(v);
}

function norm(v: unknown): string {
  if (typeof v === 'number') return String(v);
  return typeof v === 'string' ? v.trim() : '';
}

function arr(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}
