import type { ChannelConfig } from '../channels/channel-config.js';
import { channelFilter } from '../channels/channel-filter.js';
import { isEngineError } from '../errors.js';
import { validateBundle } from '../fhir/fhir-validator.js';
import { decodeHl7 } from '../hl7/charset.js';
import { type Hl7Message, parse } from '../hl7/index.js';
import { convertMessage } from '../mapping/conversion.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import type { MappingReport } from '../mapping/mapping-run.js';
import { deliveryOrderKey } from './ordering.js';

/** Where a processed message goes: every destination, MLLP forwards only (nothing mapped), or nowhere. */
export type Route = 'all' | 'mllp' | 'none';

/**
 * What processing records of one message's conversion: codes, counts and positions, never values. Plain
 * data: it crosses from a conversion worker thread.
 */
export interface ConversionOutcome {
  /** Set when the message must not go on (FHIR_INVALID with `validate: true`, a broken mapping). */
  readonly errorCode?: string;
  /** Stored with the message's processing event (message_events.detail). */
  readonly detail: Record<string, unknown>;
  /** Not-mapped positions without occurrence numbers (`ZPD`, `PID-21`), for the per-channel counts. */
  readonly unmapped: readonly string[];
  readonly route: Route;
  /** The delivery ordering key (ordering.ts deliveryOrderKey); undefined when nothing orders it. */
  readonly orderKey?: string;
}

/** One message to convert: its channel and the bytes as received (checked against the stored SHA-256). */
export interface ConvertItem {
  readonly channel: string;
  readonly raw: Uint8Array;
  readonly sha256: Uint8Array;
}

/** A permanent fault is an outcome for that message; a retryable one fails the whole processing step. */
export type ConvertResult = { readonly ok: true; readonly outcome: ConversionOutcome } | ConvertFault;

export type ConvertFault = { readonly ok: false; readonly code: string; readonly retryable: boolean };

/** The delivery step's Bundle, as the JSON text it sends (serialised where it was built). */
export type BundleResult = { readonly ok: true; readonly body: string } | ConvertFault;

export function destinationsFor(route: Route, channel: ChannelConfig): string[] {
  if (route === 'none') return [];
  const ds = route === 'mllp' ? channel.destinations.filter((d) => d.mllp) : channel.destinations;
  return ds.map((d) => d.name);
}

/**
 * The processing step's business part for one message: decode (MSH-18), parse, the channel filter, the
 * mapping, and (with `validate: true`) FHIR validation. The Bundle itself is not kept: it is PHI, and the
 * delivery step rebuilds it from the archived message (the same bytes and mapping give the same Bundle).
 * Synchronous and pure but for the catalog: the same code runs inline and in a conversion worker.
 */
export function convertItem(
  item: ConvertItem,
  channels: ReadonlyMap<string, ChannelConfig>,
  catalog: MappingCatalog,
  orderSecret?: Uint8Array,
): ConvertResult {
  try {
    const channel = channels.get(item.channel);
    if (!channel) return { ok: false, code: 'PIPELINE_CHANNEL_UNKNOWN', retryable: false };
    const message = parseItem(item, channel);
    const segments = message.segmentCount;
    if (!channelFilter(channel)(message)) {
      return { ok: true, outcome: { detail: { segments, filtered: true }, unmapped: [], route: 'none' } };
    }
    const orderKey = orderSecret
      ? deliveryOrderKey(channel.name, channel.ordering, message, orderSecret)
      : undefined;
    const keyed = orderKey === undefined ? {} : { orderKey };
    let result: ReturnType<typeof convertMessage>;
    try {
      result = mapItem(item, channel, message, catalog);
    } catch (err) {
      if (!isEngineError(err, 'MAPPING_NONE')) throw err;
      // Accepted and archived, but no map covers the type: say so, and forward it where that needs no FHIR.
      const detail = { segments, mapping: null, notMapped: 'MAPPING_NONE' };
      return { ok: true, outcome: { detail, unmapped: [], route: 'mllp', ...keyed } };
    }
    const unmapped = gaps(result.report);
    const detail: Record<string, unknown> = {
      segments,
      mapping: result.mapping.name,
      mappingVersion: result.mapping.version.slice(0, 16),
      resources: result.bundle.entry?.length ?? 0,
      ...(unmapped.length > 0 ? { unmapped } : {}),
      ...(result.report.invalid.length > 0 ? { invalid: result.report.invalid } : {}),
      ...(result.report.unknownCodes.length > 0 ? { unknownCodes: result.report.unknownCodes } : {}),
    };
    if (channel.validate) {
      const errors = validateBundle(result.bundle).filter((i) => i.severity === 'error');
      if (errors.length > 0) {
        return {
          ok: true,
          outcome: {
            errorCode: 'FHIR_INVALID',
            detail: { ...detail, error: 'FHIR_INVALID', issues: errors.slice(0, 20) },
            unmapped,
            route: 'none',
          },
        };
      }
    }
    return { ok: true, outcome: { detail, unmapped, route: 'all', ...keyed } };
  } catch (err) {
    return fault(err);
  }
}

/**
 * The Bundle a processed message is delivered as, rebuilt from its archived bytes: the same bytes and
 * mapping give the same Bundle (ids are derived from the raw digest and the mapping version), so a
 * retried or replayed delivery sends what the first attempt sent.
 */
export function bundleItem(
  item: ConvertItem,
  channels: ReadonlyMap<string, ChannelConfig>,
  catalog: MappingCatalog,
): BundleResult {
  try {
    const channel = channels.get(item.channel);
    if (!channel) return { ok: false, code: 'PIPELINE_CHANNEL_UNKNOWN', retryable: false };
    const { bundle } = mapItem(item, channel, parseItem(item, channel), catalog);
    return { ok: true, body: JSON.stringify(bundle) };
  } catch (err) {
    return fault(err);
  }
}

function parseItem(item: ConvertItem, channel: ChannelConfig): Hl7Message {
  const bytes = Buffer.from(item.raw.buffer, item.raw.byteOffset, item.raw.byteLength);
  return parse(decodeHl7(bytes, channel.charset).text);
}

function mapItem(
  item: ConvertItem,
  channel: ChannelConfig,
  message: Hl7Message,
  catalog: MappingCatalog,
): ReturnType<typeof convertMessage> {
  return convertMessage(message, {
    catalog,
    rawSha256: Buffer.from(item.sha256).toString('hex'),
    mapping: channel.mapping,
    channel: channel.name,
    timezone: channel.timezone,
  });
}

function fault(err: unknown): ConvertFault {
  if (isEngineError(err)) return { ok: false, code: err.code, retryable: err.retryable };
  // A bug, not the message's fault: fail the step (retried), never the message, never with its text.
  return { ok: false, code: 'PIPELINE_CONVERT_FAILED', retryable: true };
}

/** `ZPD[2]` → `ZPD`, `PID[1]-21` → `PID-21`, `PID[1]-5(2)` → `PID-5`: one entry per position kind. */
function gaps(report: MappingReport): string[] {
  const out = new Set<string>();
  for (const s of report.unmappedSegments) out.add(s.replace(/\[\d+\]$/, ''));
  for (const f of report.unmappedFields) out.add(f.replace(/\[\d+\]/, '').replace(/\(\d+\)$/, ''));
  return [...out];
}
