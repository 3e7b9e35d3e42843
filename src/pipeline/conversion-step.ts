import type { ChannelConfig } from '../channels/channel-config.js';
import { channelFilter } from '../channels/channel-filter.js';
import { isEngineError } from '../errors.js';
import { validateBundle } from '../fhir/fhir-validator.js';
import type { Hl7Message } from '../hl7/message.js';
import { convertMessage } from '../mapping/conversion.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import type { MappingReport } from '../mapping/mapping-run.js';

/** What processing records of one message's conversion: codes, counts and positions, never values. */
export interface ConversionOutcome {
  /** Set when the message must not go on (FHIR_INVALID with `validate: true`, a broken mapping). */
  readonly errorCode?: string;
  /** Stored with the message's processing event (message_events.detail). */
  readonly detail: Record<string, unknown>;
  /** Not-mapped positions without occurrence numbers (`ZPD`, `PID-21`), for the per-channel counts. */
  readonly unmapped: readonly string[];
  /** The destinations this message goes to: none when filtered, MLLP forwards only when nothing was mapped. */
  destinations(channel: ChannelConfig): string[];
}

const all = (c: ChannelConfig) => c.destinations.map((d) => d.name);
const mllpOnly = (c: ChannelConfig) => c.destinations.filter((d) => d.mllp).map((d) => d.name);
const none = () => [];

/**
 * The processing step's business part: the channel filter, the mapping, and (with `validate: true`)
 * FHIR validation. The Bundle itself is not kept: it is PHI, and the delivery step rebuilds it from the
 * archived message (the same bytes and mapping give the same Bundle).
 */
export function convertForChannel(
  message: Hl7Message,
  channel: ChannelConfig,
  catalog: MappingCatalog,
  sha256: Buffer,
): ConversionOutcome {
  if (!channelFilter(channel)(message)) {
    return { detail: { filtered: true }, unmapped: [], destinations: none };
  }
  try {
    const result = convertMessage(message, {
      catalog,
      rawSha256: sha256.toString('hex'),
      mapping: channel.mapping,
      channel: channel.name,
      timezone: channel.timezone,
    });
    const unmapped = gaps(result.report);
    const detail: Record<string, unknown> = {
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
          errorCode: 'FHIR_INVALID',
          detail: { ...detail, error: 'FHIR_INVALID', issues: errors.slice(0, 20) },
          unmapped,
          destinations: none,
        };
      }
    }
    return { detail, unmapped, destinations: all };
  } catch (err) {
    if (isEngineError(err, 'MAPPING_NONE')) {
      // Accepted and archived, but no map covers the type: say so, and forward it where that needs no FHIR.
      return { detail: { mapping: null, notMapped: 'MAPPING_NONE' }, unmapped: [], destinations: mllpOnly };
    }
    if (isEngineError(err) && !err.retryable) {
      return { errorCode: err.code, detail: { error: err.code }, unmapped: [], destinations: none };
    }
    throw err;
  }
}

/** `ZPD[2]` → `ZPD`, `PID[1]-21` → `PID-21`, `PID[1]-5(2)` → `PID-5`: one entry per position kind. */
function gaps(report: MappingReport): string[] {
  const out = new Set<string>();
  for (const s of report.unmappedSegments) out.add(s.replace(/\[\d+\]$/, ''));
  for (const f of report.unmappedFields) out.add(f.replace(/\[\d+\]/, '').replace(/\(\d+\)$/, ''));
  return [...out];
}
