import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ChannelConfig, DestinationConfig } from '../channels/channel-config.js';
import { type BreakerState, DestinationBreaker } from './circuit-breaker.js';
import type { DeliveryOutcome } from './delivery-outcome.js';
import { FhirDestinationClient } from './fhir-client.js';
import { MllpForwarder } from './mllp-forwarder.js';

/** What a destination is sent: the mapped Bundle (FHIR) or the message as received (MLLP). */
export type Payload =
  | { readonly kind: 'bundle'; readonly body: string }
  | { readonly kind: 'raw'; readonly raw: Buffer };

/** One attempt through the breaker: the answer, or "the breaker is open, come back in retryInMs". */
export type AttemptResult =
  | { readonly kind: 'answered'; readonly outcome: DeliveryOutcome; readonly sent: string }
  | { readonly kind: 'open'; readonly retryInMs: number };

export interface DestinationSnapshot {
  readonly channel: string;
  readonly destination: string;
  readonly type: 'fhir' | 'mllp';
  readonly breaker: BreakerState;
  /** Milliseconds until an open breaker lets its probe through. */
  readonly breakerOpenForMs: number;
  readonly lastSuccessAt: Date | null;
  readonly lastErrorClass: string | null;
  readonly lastErrorAt: Date | null;
  /** Outcomes seen by this process since it started. */
  readonly delivered: number;
  readonly retried: number;
  readonly rejected: number;
}

export interface DestinationEvents {
  onBreakerChange?(channel: string, destination: string, state: BreakerState): void;
}

interface Sender {
  send(payload: Payload): Promise<DeliveryOutcome>;
  close(): Promise<void>;
}

/**
 * One channel destination as the delivery step uses it: the client for its protocol (FHIR over HTTP, or
 * MLLP), its circuit breaker, its policies, and what this process has seen of its health — for status,
 * logs and metrics. Holds no queue knowledge (DESIGN: delivery/ must not).
 */
export class Destination {
  readonly channel: string;
  readonly name: string;
  readonly config: DestinationConfig;
  readonly needs: Payload['kind'];
  readonly #sender: Sender;
  readonly #breaker: DestinationBreaker;
  #lastSuccessAt: Date | null = null;
  #lastErrorClass: string | null = null;
  #lastErrorAt: Date | null = null;
  #counts = { delivered: 0, retried: 0, rejected: 0 };

  constructor(channel: ChannelConfig, config: DestinationConfig, events: DestinationEvents = {}) {
    this.channel = channel.name;
    this.name = config.name;
    this.config = config;
    this.#breaker = new DestinationBreaker(config.circuitBreaker, {
      onStateChange: (s) => events.onBreakerChange?.(this.channel, this.name, s),
    });
    if (config.fhir) {
      // fhir.tls paths are relative to the channel file, as the listener's are.
      const client = new FhirDestinationClient(config.fhir, { baseDir: dirname(channel.file) });
      this.needs = 'bundle';
      this.#sender = {
        send: (p) => client.deliver(p.kind === 'bundle' ? p.body : p.raw.toString('utf8')),
        close: async () => client.close(),
      };
    } else if (config.mllp) {
      const m = config.mllp;
      const forwarder = new MllpForwarder({
        host: m.host,
        port: m.port,
        ackTimeoutMs: m.ackTimeoutMs,
        ...(m.tls ? { tls: mllpTlsOptions(m.tls, m.host, channel.file) } : {}),
      });
      this.needs = 'raw';
      this.#sender = {
        send: (p) => forwarder.forward(p.kind === 'raw' ? p.raw : Buffer.from(p.body, 'utf8')),
        close: () => forwarder.close(),
      };
    } else {
      throw new RangeError('a destination needs fhir or mllp');
    }
  }

  /** Milliseconds until the breaker lets calls through again; 0 when they may go now. */
  openFor(): number {
    return this.#breaker.openFor();
  }

  /** One attempt: through the breaker, counted, classified into the destination's health. */
  async attempt(payload: Payload): Promise<AttemptResult> {
    const r = await this.#breaker.call(() => this.#sender.send(payload));
    if (r.kind === 'open') return r;
    const o = r.outcome;
    const now = new Date();
    if (o.kind === 'delivered') {
      this.#counts.delivered++;
      this.#lastSuccessAt = now;
    } else {
      if (o.kind === 'retry') this.#counts.retried++;
      else this.#counts.rejected++;
      this.#lastErrorClass = errorClass(o);
      this.#lastErrorAt = now;
    }
    return {
      kind: 'answered',
      outcome: o,
      sent: payload.kind === 'bundle' ? payload.body : payload.raw.toString('latin1'),
    };
  }

  snapshot(): DestinationSnapshot {
    return {
      channel: this.channel,
      destination: this.name,
      type: this.config.fhir ? 'fhir' : 'mllp',
      breaker: this.#breaker.state,
      breakerOpenForMs: this.#breaker.openFor(),
      lastSuccessAt: this.#lastSuccessAt,
      lastErrorClass: this.#lastErrorClass,
      lastErrorAt: this.#lastErrorAt,
      ...this.#counts,
    };
  }

  close(): Promise<void> {
    return this.#sender.close();
  }
}

/**
 * The error class stored with an attempt and shown by status: what kind of trouble, never what the
 * destination said (its answer may echo PHI; that is kept encrypted, delivery_bodies).
 */
export function errorClass(o: DeliveryOutcome): string | null {
  switch (o.kind) {
    case 'delivered':
      return null;
    case 'retry':
      switch (o.reason) {
        case 'status':
          return `http_${o.status ?? 0}`;
        case 'auth':
          return o.status ? `auth_${o.status}` : 'auth';
        case 'nak':
          return `nak_${o.ackCode ?? 'AE'}`;
        case 'ack-timeout':
          return 'ack_timeout';
        case 'network':
          return o.tlsError ? `tls_${o.tlsError}` : 'network';
        default:
          return o.reason;
      }
    case 'rejected':
      if (o.ackCode) return `rejected_${o.ackCode}`;
      return o.status > 0 ? `http_${o.status}` : 'entry_unsendable';
  }
}

function mllpTlsOptions(
  t: NonNullable<NonNullable<DestinationConfig['mllp']>['tls']>,
  host: string,
  channelFile: string,
) {
  // Paths are relative to the channel file, as the listener's are.
  const base = dirname(channelFile);
  const read = (p: string) => readFileSync(resolve(base, p));
  return {
    minVersion: t.minVersion,
    servername: t.servername ?? host,
    ...(t.ca ? { ca: read(t.ca) } : {}),
    ...(t.cert ? { cert: read(t.cert) } : {}),
    ...(t.key ? { key: read(t.key) } : {}),
  };
}
