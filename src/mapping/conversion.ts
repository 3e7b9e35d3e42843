import { EngineError } from '../errors.js';
import { assembleTransaction } from '../fhir/bundle-assembler.js';
import { sequentialUuids, uuidFactory } from '../fhir/deterministic-id.js';
import type { Bundle } from '../fhir/fhir-types.js';
import type { Hl7Message } from '../hl7/message.js';
import type { MappingCatalog } from './mapping-catalog.js';
import type { MappingReport } from './mapping-run.js';
import { mapMessage } from './message-mapper.js';
import { toFhirInstant, type ZoneFor, zoneOfDateTime, zoneResolver } from './primitives/datetime.js';

export interface ConvertOptions {
  readonly catalog: MappingCatalog;
  /** SHA-256 (hex) of the raw bytes as received: ids and the Provenance derive from it. */
  readonly rawSha256: string;
  /** A message map by name; default: the one whose `accepts` matches MSH-9. */
  readonly mapping?: string;
  readonly channel?: string;
  /** Zone for date-times that carry none and an MSH-7 that carries none either (channel `timezone`). */
  readonly timezone?: string;
}

export interface ConversionResult {
  readonly bundle: Bundle;
  readonly report: MappingReport;
  readonly mapping: { readonly name: string; readonly version: string };
}

const zones = new Map<string, ZoneFor>();

/**
 * One parsed message → one FHIR R4 transaction Bundle and the report of what was not mapped. Pure and
 * deterministic: the same bytes and the same mapping files give the same Bundle. Throws MAPPING_NONE for a
 * message type no map covers (the caller still has the message archived), MAPPING_NOT_FOUND /
 * MAPPING_INVALID for a bad mapping name or file.
 */
export function convertMessage(message: Hl7Message, opts: ConvertOptions): ConversionResult {
  const code = message.get('MSH-9-1');
  const event = message.get('MSH-9-2');
  const name = opts.mapping ?? opts.catalog.defaultFor(code, event);
  if (name === undefined) {
    throw new EngineError('MAPPING_NONE', { messageType: safeType(code, event) });
  }
  const map = opts.catalog.compile(name);
  const msh7 = message.get('MSH-7');
  const mshZone = zoneOfDateTime(msh7);
  const zoneFor = mshZone !== undefined ? () => mshZone : zoneFor_(opts.timezone ?? 'UTC');
  const sha = opts.rawSha256;
  const uuid = uuidFactory(sha, map.version);
  // Entries in the order the mapping makes them (deterministic): the n-th gets the n-th derived id.
  const entryUuid = sequentialUuids(sha, map.version, 'entries');
  let entries = 0;
  const mapped = mapMessage(map, message, {
    vocabulary: opts.catalog.vocabulary,
    zoneFor,
    fullUrlFor: () => `urn:uuid:${entryUuid(++entries)}`,
  });
  const recorded = msh7 === '' ? undefined : toFhirInstant(msh7, zoneFor);
  const bundle = assembleTransaction(mapped.resources, {
    id: uuid('bundle'),
    controlId: message.get('MSH-10'),
    timestamp: recorded,
    provenanceFullUrl: `urn:uuid:${uuid('provenance')}`,
    provenance: {
      rawSha256: sha,
      channel: opts.channel,
      mappingName: map.name,
      mappingVersion: map.version,
      messageType: safeType(code, event),
      recorded,
    },
  });
  return { bundle, report: mapped.report, mapping: { name: map.name, version: map.version } };
}

function zoneFor_(timezone: string): ZoneFor {
  let z = zones.get(timezone);
  if (!z) {
    z = zoneResolver(timezone);
    zones.set(timezone, z);
  }
  return z;
}

/** MSH-9 for messages and errors: only the shape of a message type, so nothing else can leak through it. */
function safeType(code: string, event: string): string {
  const clean = (s: string) => s.replace(/[^A-Z0-9]/gi, '').slice(0, 3) || '?';
  return event ? `${clean(code)}^${clean(event)}` : clean(code);
}
