import type { FhirAuthConfig } from '../delivery/fhir-auth.js';
import type { ConditionSpec } from '../hl7/condition.js';

/** A channel as the engine runs it: validated, defaults applied, frozen. Mirrors channel.schema.json. */
export interface ChannelConfig {
  readonly name: string;
  readonly description?: string;
  readonly enabled: boolean;
  readonly source: { readonly mllp: MllpSourceConfig };
  readonly ack: { readonly mode: 'original' | 'enhanced' };
  /** HL7 table 0211 name assumed when MSH-18 is empty. */
  readonly charset: string;
  /** Message-type patterns (`ORU^R01`, `ADT^A*`); undefined accepts every type. */
  readonly accept?: readonly string[];
  /** Messages failing it are stored, ACKed and marked filtered; compiled by `channelFilter` (channel-filter.ts). */
  readonly filter?: ConditionSpec;
  /** Message map name; undefined picks the default map by message type. */
  readonly mapping?: string;
  /** Validate the FHIR output against R4 at run time. @defaultValue false */
  readonly validate: boolean;
  /** Zone of HL7 date-times without one (and no zone in MSH-7): IANA name, `UTC` or `±HH:MM`. @defaultValue 'UTC' */
  readonly timezone: string;
  readonly duplicates: DuplicatePolicy;
  readonly ordering: OrderingPolicy;
  readonly destinations: readonly DestinationConfig[];
  /** The file the channel came from, for error messages and `hl7e channels validate`. */
  readonly file: string;
}

export interface DuplicatePolicy {
  /** Look-back window, e.g. `24h` (see parseDuration). */
  readonly window: string;
  readonly onCollision: 'process' | 'reject';
}

export interface OrderingPolicy {
  /** Path of the ordering key; messages sharing it are processed in arrival order. */
  readonly key: string;
  readonly mode: 'strict' | 'none';
}

export interface DestinationConfig {
  readonly name: string;
  readonly retry: RetryPolicy;
  readonly circuitBreaker: CircuitBreakerPolicy;
  /** Deliveries in flight at once per engine process (MLLP: always 1). */
  readonly concurrency: number;
  readonly fhir?: {
    readonly baseUrl: string;
    readonly mode: 'transaction' | 'conditional-put';
    readonly timeoutMs: number;
    /** Extra HTTP headers on every request (secrets belong in `auth`). */
    readonly headers?: Readonly<Record<string, string>>;
    /** How the engine authenticates (delivery/fhir-auth.ts); secrets are read from env or file. */
    readonly auth?: FhirAuthConfig;
    /** HTTPS trust and client certificate (delivery/https-transport.ts); paths relative to the channel file. */
    readonly tls?: FhirTlsConfig;
  };
  readonly mllp?: {
    readonly host: string;
    readonly port: number;
    readonly ackTimeoutMs: number;
    /** An ACK that never came: resend (at-least-once) or hold the delivery for a person. */
    readonly onAckTimeout: 'resend' | 'hold';
    /** PEM paths relative to the channel file. */
    readonly tls?: {
      readonly ca?: string;
      readonly cert?: string;
      readonly key?: string;
      readonly servername?: string;
      readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
    };
  };
}

export interface FhirTlsConfig {
  /** PEM CA bundle that replaces the system CAs for this destination (CA pinning). */
  readonly ca?: string;
  /** PEM client certificate and key, for servers that require mTLS. */
  readonly cert?: string;
  readonly key?: string;
  /** SHA-256 fingerprints of acceptable server (leaf) certificates, checked after CA verification. */
  readonly pins?: readonly string[];
  /** Name the server certificate must carry, when it is not the URL's host. */
  readonly servername?: string;
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

/** A destination as written: everything with a default may be left out. */
export type DestinationInput = Pick<DestinationConfig, 'name' | 'fhir'> & {
  readonly retry?: Partial<RetryPolicy>;
  readonly circuitBreaker?: Partial<CircuitBreakerPolicy>;
  readonly concurrency?: number;
  readonly mllp?: Omit<NonNullable<DestinationConfig['mllp']>, 'onAckTimeout' | 'ackTimeoutMs'> &
    Partial<Pick<NonNullable<DestinationConfig['mllp']>, 'onAckTimeout' | 'ackTimeoutMs'>>;
};

/** Fills in a destination's defaults (ajv fills them only inside objects that are present). */
export function destinationWithDefaults(dest: DestinationInput): DestinationConfig {
  const d = CHANNEL_DEFAULTS.destination;
  const { mllp, ...rest } = dest;
  return {
    ...rest,
    retry: { ...d.retry, ...dest.retry },
    circuitBreaker: { ...d.circuitBreaker, ...dest.circuitBreaker },
    concurrency: mllp ? 1 : (dest.concurrency ?? d.fhirConcurrency),
    ...(mllp
      ? {
          mllp: {
            ...mllp,
            ackTimeoutMs: mllp.ackTimeoutMs ?? d.mllpAckTimeoutMs,
            onAckTimeout: mllp.onAckTimeout ?? 'resend',
          },
        }
      : {}),
  };
}

/** Backoff of one destination's deliveries (delivery/retry-policy.ts computes the delays). */
export interface RetryPolicy {
  readonly attempts: number;
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
}

/** When a destination's breaker opens (delivery/circuit-breaker.ts). */
export interface CircuitBreakerPolicy {
  readonly failureRatio: number;
  readonly minimumRequests: number;
  readonly openMs: number;
}

export const CHANNEL_DEFAULTS = {
  ack: { mode: 'original' },
  duplicates: { window: '24h', onCollision: 'process' },
  ordering: { key: 'PID-3(1)', mode: 'strict' },
  validate: false,
  timezone: 'UTC',
  destination: {
    retry: { attempts: 12, initialDelayMs: 1_000, maxDelayMs: 300_000 },
    circuitBreaker: { failureRatio: 0.5, minimumRequests: 10, openMs: 30_000 },
    /** FHIR servers take concurrent transactions; MLLP is one message at a time per connection. */
    fhirConcurrency: 8,
    mllpAckTimeoutMs: 30_000,
  },
} as const;

/** `90s`, `30m`, `24h`, `7d`, `500ms` → milliseconds (the schema's pattern guarantees the shape). */
export function parseDuration(text: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(text);
  if (!m) throw new RangeError('not a duration');
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    m[2] as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Number(m[1]) * unit;
}

export interface MllpSourceConfig {
  readonly host: string;
  readonly port: number;
  readonly tls?: {
    readonly cert: string;
    readonly key: string;
    readonly ca?: string;
    readonly requireClientCert: boolean;
    /** mTLS allowlist (mllp/client-cert-allowlist.ts): exact subject CNs or SHA-256 certificate fingerprints. */
    readonly allowClients?: {
      readonly subjects?: readonly string[];
      readonly fingerprints?: readonly string[];
    };
    readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
  };
  readonly allowFrom?: readonly string[];
  readonly maxMessageBytes: number;
  readonly idleTimeoutMs: number;
  readonly maxConnections?: number;
  /** Per remote IP address. */
  readonly maxConnectionsPerPeer?: number;
}

/**
 * Compiles `accept` patterns once (STYLE habit 3) into a predicate over MSH-9.1 and MSH-9.2.
 * `*` matches any run of characters within one component; `ADT` alone matches every ADT event.
 */
export function compileAccept(
  patterns: readonly string[] | undefined,
): (code: string, event: string) => boolean {
  if (patterns === undefined) return () => true;
  const res = patterns.map((p) => {
    const [code = '', event] = p.split('^');
    return { code: glob(code), event: event === undefined ? undefined : glob(event) };
  });
  return (code, event) =>
    res.some((r) => r.code.test(code) && (r.event === undefined || r.event.test(event)));
}

function glob(p: string): RegExp {
  return new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}
