import type { DestinationSnapshot } from '../delivery/destination.js';
import type { DeliveryRepo } from '../store/delivery-repo.js';
import type { MessageRepo } from '../store/message-repo.js';

/** What the daemon knows of itself that the store does not: listeners, breakers, queues. */
export interface EngineState {
  listeners(): ListenerState[];
  destinations(): DestinationSnapshot[];
  processDepth(): Promise<{ waiting: number; active: number; delayed: number }>;
  /** `channel/destination` → jobs of its delivery queue. */
  deliveryDepth(): Promise<ReadonlyMap<string, { waiting: number; active: number; delayed: number }>>;
}

export interface ListenerState {
  readonly channel: string;
  readonly host: string;
  readonly port: number;
  readonly up: boolean;
  readonly connections: number;
  /** Intake backpressure: sockets are not being read. */
  readonly held: boolean;
}

/** When status calls for a person (policy as data); `hl7e status` exits 1 when any holds. */
export const ATTENTION_POLICY = {
  /** A message waiting for processing longer than this. */
  maxUnprocessedAgeS: 60,
  /** A delivery still pending after failures for longer than this. */
  maxRetryingAgeS: 300,
} as const;

export interface StatusReport {
  readonly at: string;
  readonly attention: string[];
  readonly channels: {
    readonly name: string;
    readonly listener: 'up' | 'down';
    readonly address: string;
    readonly connections: number;
    readonly backpressure: boolean;
    readonly lastHour: { received: number; acked: number; failed: number };
    readonly oldestUnprocessedAgeS: number | null;
  }[];
  readonly processing: { waiting: number; active: number; delayed: number };
  readonly destinations: {
    readonly channel: string;
    readonly name: string;
    readonly type: 'fhir' | 'mllp';
    readonly breaker: string;
    readonly breakerOpenForS: number;
    readonly lastSuccessAt: string | null;
    readonly lastErrorClass: string | null;
    readonly lastErrorAt: string | null;
    readonly backlog: number;
    readonly retrying: number;
    readonly heldBack: number;
    readonly held: number;
    readonly deadLetters: number;
    readonly oldestPendingAgeS: number | null;
    readonly queue: { waiting: number; active: number; delayed: number };
  }[];
}

const ageS = (d: Date | null | undefined, now: number) =>
  d ? Math.max(0, Math.round((now - d.getTime()) / 1000)) : null;

/** `hl7e status`: per channel and per destination, and what needs attention — counts and codes only. */
export async function statusReport(
  state: EngineState,
  messages: MessageRepo,
  deliveries: DeliveryRepo,
  now = Date.now(),
): Promise<StatusReport> {
  const [activity, oldest, stats, processing, depth] = await Promise.all([
    messages.activity(new Date(now - 3_600_000)),
    messages.oldestUnprocessed(),
    deliveries.destinationStats(),
    state.processDepth(),
    state.deliveryDepth(),
  ]);
  const attention: string[] = [];
  const channels = state.listeners().map((l) => {
    const a = activity.find((x) => x.channel === l.channel);
    const oldestAge = ageS(oldest.find((o) => o.channel === l.channel)?.at, now);
    if (!l.up) attention.push(`channel ${l.channel}: listener down`);
    if (oldestAge !== null && oldestAge > ATTENTION_POLICY.maxUnprocessedAgeS)
      attention.push(`channel ${l.channel}: oldest unprocessed message waits ${oldestAge} s`);
    return {
      name: l.channel,
      listener: l.up ? ('up' as const) : ('down' as const),
      address: `${l.host}:${l.port}`,
      connections: l.connections,
      backpressure: l.held,
      lastHour: { received: a?.received ?? 0, acked: a?.acked ?? 0, failed: a?.failed ?? 0 },
      oldestUnprocessedAgeS: oldestAge,
    };
  });
  const destinations = state.destinations().map((d) => {
    const key = `${d.channel}/${d.destination}`;
    const s = stats.find((x) => x.channel === d.channel && x.destination === d.destination);
    const oldestPending = ageS(s?.oldestPendingAt, now);
    const where = `destination ${key}`;
    if (d.breaker !== 'closed') attention.push(`${where}: circuit breaker ${d.breaker}`);
    if ((s?.held ?? 0) > 0) attention.push(`${where}: ${s?.held} held for a decision (MLLP ACK never came)`);
    if ((s?.failed ?? 0) > 0) attention.push(`${where}: ${s?.failed} dead letters (hl7e replay)`);
    if ((s?.retrying ?? 0) > 0 && oldestPending !== null && oldestPending > ATTENTION_POLICY.maxRetryingAgeS)
      attention.push(`${where}: ${s?.retrying} retrying, oldest pending ${oldestPending} s`);
    return {
      channel: d.channel,
      name: d.destination,
      type: d.type,
      breaker: d.breaker,
      breakerOpenForS: Math.ceil(d.breakerOpenForMs / 1000),
      lastSuccessAt: d.lastSuccessAt?.toISOString() ?? null,
      lastErrorClass: s?.lastErrorClass ?? d.lastErrorClass,
      lastErrorAt: (s?.lastErrorAt ?? d.lastErrorAt)?.toISOString() ?? null,
      backlog: s?.pending ?? 0,
      retrying: s?.retrying ?? 0,
      heldBack: s?.heldBack ?? 0,
      held: s?.held ?? 0,
      deadLetters: s?.failed ?? 0,
      oldestPendingAgeS: oldestPending,
      queue: depth.get(key) ?? { waiting: 0, active: 0, delayed: 0 },
    };
  });
  return { at: new Date(now).toISOString(), attention, channels, processing, destinations };
}
