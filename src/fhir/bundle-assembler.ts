import {
  conditionalCreateEntry,
  conditionalUpdateEntry,
  identifierToken,
  transactionEntry,
} from './conditional-request.js';
import type { Bundle, BundleEntry, Identifier, Resource } from './fhir-types.js';

/** One resource to place in the transaction, as the mapping made it. */
export interface AssemblyItem {
  readonly resource: Resource;
  /** `urn:uuid:…` */
  readonly fullUrl: string;
  /** `identifier`: conditional on the first identifier; `id`: PUT by the fullUrl's uuid; or a derived identifier. */
  readonly identity: 'identifier' | 'id' | { readonly system: string };
  readonly identityValue?: string;
  readonly request: 'update' | 'create';
}

export interface ProvenanceFacts {
  /** SHA-256 (hex) of the raw message bytes as received. */
  readonly rawSha256: string;
  readonly channel: string | undefined;
  readonly mappingName: string;
  readonly mappingVersion: string;
  /** MSH-9 as `ADT^A01`. */
  readonly messageType: string;
  /** MSH-7 as a FHIR instant, when it can be one. */
  readonly recorded: string | undefined;
}

export interface BundleFacts {
  readonly id: string;
  /** MSH-10. */
  readonly controlId: string;
  readonly timestamp: string | undefined;
  readonly provenance: ProvenanceFacts;
  /** Used when the message map made no Provenance of its own. */
  readonly provenanceFullUrl: string;
}

/** Resource types without an `identifier` element: their entries are PUT by id. */
const NO_IDENTIFIER = new Set(['Provenance', 'Binary', 'Bundle', 'Parameters', 'OperationOutcome']);
/** The system of identifiers the engine derives for resources that carry none of their own. */
export const DERIVED_IDENTIFIER_SYSTEM = 'urn:hl7e:entry';

/**
 * The transaction Bundle: every entry conditional on a business identifier (DESIGN rule 4: sending the same
 * message twice changes nothing at the destination), and a Provenance entry that ties the output to its input.
 */
export function assembleTransaction(items: readonly AssemblyItem[], facts: BundleFacts): Bundle {
  const entries: BundleEntry[] = [];
  let provenance: AssemblyItem | undefined;
  for (const item of items) {
    if (item.resource.resourceType === 'Provenance' && provenance === undefined) {
      provenance = item;
      continue;
    }
    entries.push(entryFor(item));
  }
  mergeSameRequests(entries);
  const prov = provenanceResource(provenance, entries, facts);
  entries.push(entryFor(prov));
  const bundle: Bundle = {
    resourceType: 'Bundle',
    id: facts.id,
    identifier: { value: facts.controlId },
    type: 'transaction',
    ...(facts.timestamp ? { timestamp: facts.timestamp } : {}),
    entry: entries,
  };
  if (!facts.controlId) delete bundle.identifier;
  return bundle;
}

function entryFor(item: AssemblyItem): BundleEntry {
  const r = item.resource;
  dedupeIdentifiers(r);
  const uuid = item.fullUrl.slice('urn:uuid:'.length);
  if (item.identity === 'id' || NO_IDENTIFIER.has(r.resourceType)) {
    r.id = uuid;
    return transactionEntry({
      fullUrl: item.fullUrl,
      resource: r,
      method: 'PUT',
      url: `${r.resourceType}/${uuid}`,
    });
  }
  let token: string | undefined;
  if (typeof item.identity === 'object' && item.identityValue) {
    // A derived identity (an Observation's order + code + sub-id, a practitioner known only by name) goes
    // after the sender's own identifiers, and the entry is conditional on it.
    token = identifierToken(addIdentifier(r, { system: item.identity.system, value: item.identityValue }));
  } else {
    token = (r.identifier as Identifier[] | undefined)?.map(identifierToken).find((t) => t !== undefined);
  }
  if (token === undefined) {
    // No business identifier: one derived from the message and entry keeps a replay idempotent.
    token = identifierToken(addIdentifier(r, { system: DERIVED_IDENTIFIER_SYSTEM, value: item.fullUrl }));
  }
  const params = [['identifier', token as string]] as const;
  return item.request === 'create'
    ? conditionalCreateEntry(item.fullUrl, r, params)
    : conditionalUpdateEntry(item.fullUrl, r, params);
}

/**
 * Two entries with the same conditional request (two SPM segments naming one specimen, the same
 * practitioner made twice) would make a server refuse the transaction: the first is kept, what the later
 * ones add at the top level is merged into it, and references to them are pointed at the first.
 */
function mergeSameRequests(entries: BundleEntry[]): void {
  const kept = new Map<string, BundleEntry>();
  const moved = new Map<string, string>();
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i] as BundleEntry;
    const key = `${e.request?.method} ${e.request?.url} ${e.request?.ifNoneExist ?? ''}`;
    const first = kept.get(key);
    if (!first) {
      kept.set(key, e);
      continue;
    }
    const into = first.resource as Resource;
    for (const [k, v] of Object.entries(e.resource as Resource)) if (!(k in into)) into[k] = v;
    moved.set(e.fullUrl as string, first.fullUrl as string);
    entries.splice(i, 1);
    i--;
  }
  if (moved.size > 0) for (const e of entries) repoint(e.resource, moved);
}

function repoint(node: unknown, moved: ReadonlyMap<string, string>): void {
  if (Array.isArray(node)) {
    for (const x of node) repoint(x, moved);
  } else if (node && typeof node === 'object') {
    const o = node as Record<string, unknown>;
    for (const [k, v] of Object.entries(o)) {
      if (k === 'reference' && typeof v === 'string' && moved.has(v)) o[k] = moved.get(v);
      else if (typeof v === 'object') repoint(v, moved);
    }
  }
}

/**
 * The same order number arrives in ORC-2 and OBR-2 (and the same filler number in ORC-3 and OBR-3): both
 * rules write it, and one copy is kept, so neither field is reported as not mapped nor doubled.
 */
function dedupeIdentifiers(r: Resource): void {
  const ids = r.identifier as Identifier[] | undefined;
  if (!ids || ids.length < 2) return;
  // Cheap key first; the whole identifier is compared only where system and value already match.
  const seen = new Map<string, Identifier[]>();
  r.identifier = ids.filter((id) => {
    const key = `${id.system ?? ''}|${id.value ?? ''}`;
    const same = seen.get(key);
    if (same === undefined) {
      seen.set(key, [id]);
      return true;
    }
    const json = JSON.stringify(id);
    if (same.some((x) => JSON.stringify(x) === json)) return false;
    same.push(id);
    return true;
  });
}

/** Adds an identifier after the resource's own (unless it is there already) and returns it. */
function addIdentifier(r: Resource, id: Identifier): Identifier {
  const ids = (r.identifier as Identifier[] | undefined) ?? [];
  if (!ids.some((x) => x.system === id.system && x.value === id.value)) ids.push(id);
  r.identifier = ids;
  return id;
}

/**
 * https://hl7.org/fhir/R4/provenance.html: targets every other entry; the raw message is the source entity
 * (by its SHA-256, never its content); the mapping and its version hash are the policy it was made under.
 */
function provenanceResource(
  from: AssemblyItem | undefined,
  entries: BundleEntry[],
  facts: BundleFacts,
): AssemblyItem {
  const p = facts.provenance;
  const base: Resource = from?.resource ?? { resourceType: 'Provenance' };
  const resource: Resource = {
    ...base,
    resourceType: 'Provenance',
    target: entries.map((e) => ({ reference: e.fullUrl })),
    recorded: (base.recorded as string | undefined) ?? p.recorded ?? '1970-01-01T00:00:00Z',
    policy: [`urn:hl7e:mapping:${p.mappingName}:${p.mappingVersion}`],
    agent: [
      ...((base.agent as unknown[] | undefined) ?? []),
      {
        type: {
          coding: [
            {
              system: 'http://terminology.hl7.org/CodeSystem/provenance-participant-type',
              code: 'assembler',
            },
          ],
        },
        who: { display: `hl7-engine${p.channel ? ` channel ${p.channel}` : ''}` },
      },
    ],
    entity: [
      ...((base.entity as unknown[] | undefined) ?? []),
      {
        role: 'source',
        what: {
          identifier: { system: 'urn:hl7e:raw-message-sha256', value: p.rawSha256 },
          display: `HL7 v2 ${p.messageType}`,
        },
      },
    ],
  };
  const fullUrl = from?.fullUrl ?? facts.provenanceFullUrl;
  return { resource, fullUrl, identity: 'id', request: 'update' };
}
