import { openBody } from '../archive/delivery-bodies.js';
import type { KeyRing } from '../archive/keyring.js';
import type { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import type { DeliveryRef } from '../store/delivery-repo.js';
import { archiveRefOf, type MessageRepo } from '../store/message-repo.js';
import type { ReplayCandidate, ReplayRepo, ReplaySelection } from '../store/replay-repo.js';
import type { MessageConverter } from './message-converter.js';

export interface ReplayRequest {
  readonly selection: ReplaySelection;
  /** raw: rebuilt from the archived message with today's mappings; mapped: what was sent before, as it was. */
  readonly from: 'raw' | 'mapped';
  readonly dryRun: boolean;
}

export interface ReplayDeps {
  readonly replays: ReplayRepo;
  readonly messages: MessageRepo;
  readonly archive: RawArchive;
  readonly keys: KeyRing;
  readonly converter: MessageConverter;
  readonly channels: ReadonlyMap<string, ChannelConfig>;
  enqueueDeliveries(refs: readonly DeliveryRef[]): Promise<unknown>;
  enqueueProcessing(items: readonly { id: string; partition: number }[]): Promise<unknown>;
}

export interface ReplaySummary {
  readonly dryRun: boolean;
  readonly from: 'raw' | 'mapped';
  readonly messages: number;
  /** Deliveries made pending again (or that would be, on a dry run). */
  readonly replayedDeliveries: number;
  /** Messages sent back to processing (they had failed there). */
  readonly reprocessed: number;
  readonly skipped: {
    /** Still pending or being processed: never replayed twice. */
    readonly inFlight: number;
    readonly alreadyDelivered: number;
    /** Nothing to replay: rejected at intake, filtered out, --from mapped with nothing mapped, or
     * --from raw with its raw record pruned. */
    readonly notReplayable: number;
  };
}

export type ReplayEvent =
  | { readonly type: 'progress'; readonly done: number; readonly total: number }
  /** Dry run --from raw, FHIR destinations: the Bundle sent before and the one that would be sent now. */
  | {
      readonly type: 'preview';
      readonly messageId: string;
      readonly destination: string;
      readonly before: string | null;
      readonly now: string | null;
      readonly note?: string;
    }
  | ({ readonly type: 'summary' } & ReplaySummary);

const BATCH = 200;

/**
 * `hl7e replay`: brings dead letters, held deliveries and messages that failed in processing back into
 * the pipeline. Only what has ended unsuccessfully moves (a pending delivery is in flight; a delivered
 * one is done), and the state flip is conditional in the store, so a replay repeated or racing another
 * replays each delivery once. Destinations see conditional (idempotent) requests again, never a second
 * copy of a delivered Bundle. Candidates go in arrival order, so each ordering key is replayed in order.
 */
export async function* replay(req: ReplayRequest, deps: ReplayDeps): AsyncGenerator<ReplayEvent> {
  const candidates = await deps.replays.candidates(req.selection);
  const destination = 'destination' in req.selection ? req.selection.destination : undefined;
  let replayedDeliveries = 0;
  let reprocessed = 0;
  const skipped = { inFlight: 0, alreadyDelivered: 0, notReplayable: 0 };
  for (let i = 0; i < candidates.length; i += BATCH) {
    const batch = candidates.slice(i, i + BATCH);
    const reopenDeliveries: string[] = [];
    const reopenMessages: string[] = [];
    for (const c of batch) {
      if (c.pruned && req.from === 'raw') {
        // Its raw record is gone (archive prune): nothing to rebuild from. `--from mapped` still resends.
        skipped.notReplayable++;
        continue;
      }
      const ds = c.deliveries.filter((d) => destination === undefined || d.destination === destination);
      if (ds.length === 0) {
        if (c.status === 'failed' && destination === undefined && req.from === 'raw')
          reopenMessages.push(c.id);
        else if (c.status === 'received') skipped.inFlight++;
        else skipped.notReplayable++;
        continue;
      }
      for (const d of ds) {
        if (d.status === 'failed' || d.status === 'held') reopenDeliveries.push(d.id);
        else if (d.status === 'pending') skipped.inFlight++;
        else skipped.alreadyDelivered++;
      }
    }
    if (req.dryRun) {
      replayedDeliveries += reopenDeliveries.length;
      reprocessed += reopenMessages.length;
      if (req.from === 'raw') yield* previews(batch, new Set(reopenDeliveries), deps);
    } else {
      const refs = await deps.replays.reopenDeliveries(reopenDeliveries, req.from);
      // Moved by another replay meanwhile: in flight now, not ours.
      skipped.inFlight += reopenDeliveries.length - refs.length;
      replayedDeliveries += refs.length;
      await deps.enqueueDeliveries(refs);
      const items = await deps.replays.reopenMessages(reopenMessages);
      skipped.inFlight += reopenMessages.length - items.length;
      reprocessed += items.length;
      await deps.enqueueProcessing(items);
    }
    yield { type: 'progress', done: Math.min(i + BATCH, candidates.length), total: candidates.length };
  }
  yield {
    type: 'summary',
    dryRun: req.dryRun,
    from: req.from,
    messages: candidates.length,
    replayedDeliveries,
    reprocessed,
    skipped,
  };
}

/** For each FHIR delivery a replay would reopen: the Bundle its last attempt sent, and today's. */
async function* previews(
  batch: readonly ReplayCandidate[],
  reopening: ReadonlySet<string>,
  deps: ReplayDeps,
): AsyncGenerator<ReplayEvent> {
  for (const c of batch) {
    const channel = deps.channels.get(c.channel);
    for (const d of c.deliveries) {
      if (!reopening.has(d.id)) continue;
      if (!channel?.destinations.find((x) => x.name === d.destination)?.fhir) continue;
      const m = await deps.messages.get(c.id);
      if (!m) continue;
      const last = await deps.replays.lastRequest(d.id);
      const before = last
        ? await openBody(deps.keys, { deliveryId: d.id, attempt: last.attempt, kind: 'request' }, last.body)
        : null;
      const raw = await deps.archive.read(archiveRefOf(m));
      const [built] = await deps.converter.bundles([{ channel: m.channel, raw, sha256: m.content_sha256 }]);
      yield {
        type: 'preview',
        messageId: c.id,
        destination: d.destination,
        before,
        now: built?.ok ? built.body : null,
        ...(built && !built.ok ? { note: `would fail: ${built.code}` } : {}),
        ...(before === null ? { note: 'nothing was sent before' } : {}),
      };
    }
  }
}
