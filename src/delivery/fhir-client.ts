import type { DestinationConfig } from '../channels/channel-config.js';
import { EngineError } from '../errors.js';
import type { Bundle, BundleEntry, BundleEntryRequest, Resource } from '../fhir/fhir-types.js';
import { classifyResponse, type DeliveryOutcome } from './delivery-outcome.js';
import { AuthError, type AuthProvider, createAuthProvider, type FhirAuthConfig } from './fhir-auth.js';
import {
  fetchTransport,
  type HttpAnswer,
  type HttpsTransportHandle,
  type HttpTransport,
  httpsTransport,
  readTlsFiles,
  TransportError,
} from './https-transport.js';

/** https://hl7.org/fhir/R4/http.html#mime-type */
const FHIR_JSON = 'application/fhir+json';

/** `DestinationConfig.fhir` plus what this module adds (the channel schema is to follow). */
export type FhirDestinationConfig = NonNullable<DestinationConfig['fhir']> & {
  /** Sent with every request; Content-Type, Accept and Authorization are this module's own. */
  readonly headers?: Readonly<Record<string, string>>;
  /** @defaultValue { type: 'none' } */
  readonly auth?: FhirAuthConfig;
};

export interface DeliverOptions {
  /** Deadline of the whole delivery (all requests of a conditional-put one); default config.timeoutMs. */
  readonly timeoutMs?: number;
  /** Cap of a Retry-After; default HTTP_OUTCOME_POLICY.maxRetryAfterMs. */
  readonly maxRetryAfterMs?: number;
}

export interface FhirClientOptions {
  /** Default: built from config.auth. */
  readonly auth?: AuthProvider;
  /** Directory that relative paths in `config.tls` are resolved against (the channel file's). @defaultValue process.cwd() */
  readonly baseDir?: string;
  readonly now?: () => number;
}

interface Answer {
  readonly outcome: DeliveryOutcome;
  readonly location?: string | null;
  readonly etag?: string | null;
}

/**
 * Delivers Bundles to one FHIR server. Never throws for what the server or network does: every such
 * result is a DeliveryOutcome (delivery-outcome.ts) for the queue to act on.
 */
export class FhirDestinationClient {
  private readonly base: string;
  private readonly auth: AuthProvider;
  private readonly now: () => number;
  private readonly transport: HttpTransport;
  private readonly https: HttpsTransportHandle | undefined;

  /** @throws EngineError CONFIG_INVALID for `tls` on a non-https baseUrl; fs errors for unreadable PEM files. */
  constructor(
    private readonly config: FhirDestinationConfig,
    opts: FhirClientOptions = {},
  ) {
    this.base = config.baseUrl.replace(/\/+$/, '');
    // Without `tls`, node's fetch with the system CAs; with it, node:https (https-transport.ts says why).
    if (config.tls) {
      if (!/^https:\/\//i.test(config.baseUrl)) {
        throw new EngineError('CONFIG_INVALID', { detail: 'fhir.tls needs an https:// baseUrl' });
      }
      this.https = httpsTransport(readTlsFiles(config.tls, opts.baseDir ?? process.cwd()));
    }
    this.transport = this.https?.request ?? fetchTransport;
    this.auth =
      opts.auth ?? createAuthProvider(config.auth ?? { type: 'none' }, { transport: this.tokenTransport() });
    this.now = opts.now ?? Date.now;
  }

  /**
   * A token endpoint on the FHIR server's own origin (scheme, host, port) is the same server: it gets the
   * same CA, client certificate and pins. One elsewhere (a separate authorization server) is verified
   * against the system CAs, since this destination's pins and CA describe another certificate.
   */
  private tokenTransport(): HttpTransport {
    const auth = this.config.auth;
    if (!this.https || !auth || !('tokenUrl' in auth)) return fetchTransport;
    const sameOrigin = new URL(auth.tokenUrl).origin === new URL(this.config.baseUrl).origin;
    return sameOrigin ? this.https.request : fetchTransport;
  }

  /** Closes kept-alive HTTPS connections (fetch's pool closes by itself). Safe to call twice. */
  close(): void {
    this.https?.close();
  }

  /** `bundle` as an object or as its JSON text (the delivery step's, serialised where it was built). */
  async deliver(bundle: Bundle | string, opts: DeliverOptions = {}): Promise<DeliveryOutcome> {
    const signal = AbortSignal.timeout(opts.timeoutMs ?? this.config.timeoutMs);
    const max = opts.maxRetryAfterMs;
    if (this.config.mode === 'transaction') {
      // https://hl7.org/fhir/R4/http.html#transaction: POST [base]; all entries succeed or none do.
      const body = typeof bundle === 'string' ? bundle : JSON.stringify(bundle);
      return (await this.send('POST', this.base, body, {}, signal, max)).outcome;
    }
    const parsed: Bundle = typeof bundle === 'string' ? JSON.parse(bundle) : bundle;
    return this.deliverEntries(parsed.entry ?? [], signal, max);
  }

  /**
   * conditional-put mode, for servers without transactions: each entry is its own interaction, in Bundle
   * order (referenced resources come first). Unlike a transaction this is not atomic: when entry k fails,
   * entries before it stay applied. That is safe to repeat because entries are conditional on business
   * identifiers (DESIGN rule 4), so a retry of the whole Bundle re-applies them without duplicates.
   *
   * `urn:uuid:` references resolve only inside a transaction, so each one is rewritten to the
   * `Type/id` the server reported (Location, or the returned resource) for the entry it names.
   * The delivered body is a batch-response Bundle of the per-entry answers; its status is the last one's.
   */
  private async deliverEntries(
    entries: readonly BundleEntry[],
    signal: AbortSignal,
    max: number | undefined,
  ): Promise<DeliveryOutcome> {
    const resolved = new Map<string, string>();
    const responses: BundleEntry[] = [];
    let status = 200;
    for (const [i, entry] of entries.entries()) {
      const req = entry.request;
      if (!req) return { kind: 'rejected', status: 0, body: '', entryIndex: i };
      const resource = entry.resource ? rewriteReferences(entry.resource, resolved) : undefined;
      const body = req.method === 'PUT' || req.method === 'POST' ? JSON.stringify(resource) : undefined;
      const answer = await this.send(
        req.method,
        `${this.base}/${req.url.replace(/^\/+/, '')}`,
        body,
        conditionalHeaders(req),
        signal,
        max,
      );
      if (answer.outcome.kind !== 'delivered') return { ...answer.outcome, entryIndex: i };
      status = answer.outcome.status;
      const returned = parseResource(answer.outcome.body);
      const ref = referenceFromLocation(answer.location) ?? referenceOf(returned);
      if (entry.fullUrl && ref) resolved.set(entry.fullUrl, ref);
      responses.push({
        ...(returned ? { resource: returned } : {}),
        response: {
          status: String(status),
          ...(answer.location ? { location: answer.location } : {}),
          ...(answer.etag ? { etag: answer.etag } : {}),
        },
      } as BundleEntry);
    }
    const summary = { resourceType: 'Bundle', type: 'batch-response', entry: responses };
    return { kind: 'delivered', status, body: JSON.stringify(summary) };
  }

  /** One request; a 401 drops the credential and repeats the request once with a fresh one. */
  private async send(
    method: string,
    url: string,
    body: string | undefined,
    extra: Record<string, string>,
    signal: AbortSignal,
    maxRetryAfterMs: number | undefined,
  ): Promise<Answer> {
    for (let attempt = 0; ; attempt++) {
      let authorization: string | undefined;
      try {
        authorization = await this.auth.authorization();
      } catch (err) {
        if (!(err instanceof AuthError)) throw err;
        return { outcome: { kind: 'retry', reason: 'auth', ...(err.status ? { status: err.status } : {}) } };
      }
      const headers: Record<string, string> = { ...this.config.headers, ...extra, accept: FHIR_JSON };
      if (body !== undefined) headers['content-type'] = FHIR_JSON;
      if (authorization !== undefined) headers.authorization = authorization;
      let res: HttpAnswer;
      try {
        // Redirects are not followed: the Authorization header must not travel to wherever they point.
        res = await this.transport(url, { method, headers, body, signal });
      } catch (err) {
        if (err instanceof TransportError && err.reason === 'tls') {
          return { outcome: { kind: 'retry', reason: 'network', tlsError: err.code } };
        }
        const timedOut = signal.aborted || (err instanceof TransportError && err.reason === 'timeout');
        return { outcome: { kind: 'retry', reason: timedOut ? 'timeout' : 'network' } };
      }
      if (res.status === 401 && attempt === 0 && authorization !== undefined) {
        this.auth.invalidate(authorization);
        continue;
      }
      return {
        outcome: classifyResponse(res.status, res.text, res.header('retry-after'), {
          now: this.now(),
          ...(maxRetryAfterMs === undefined ? {} : { maxRetryAfterMs }),
        }),
        location: res.header('location') ?? res.header('content-location'),
        etag: res.header('etag'),
      };
    }
  }
}

/** Bundle.entry.request's conditional elements as the HTTP headers they stand for (R4 http.html). */
function conditionalHeaders(req: BundleEntryRequest): Record<string, string> {
  const h: Record<string, string> = {};
  if (req.ifNoneExist) h['if-none-exist'] = req.ifNoneExist;
  if (req.ifMatch) h['if-match'] = req.ifMatch;
  if (req.ifNoneMatch) h['if-none-match'] = req.ifNoneMatch;
  if (req.ifModifiedSince) h['if-modified-since'] = req.ifModifiedSince;
  return h;
}

/** `…/Patient/123/_history/2` → `Patient/123`. */
function referenceFromLocation(location: string | null | undefined): string | undefined {
  const m = location
    ? /([A-Z][A-Za-z]+)\/([A-Za-z0-9\-.]{1,64})(?:\/_history\/[^/]+)?\/?$/.exec(location)
    : null;
  return m ? `${m[1]}/${m[2]}` : undefined;
}

function referenceOf(r: Resource | undefined): string | undefined {
  return r && typeof r.id === 'string' ? `${r.resourceType}/${r.id}` : undefined;
}

function parseResource(text: string): Resource | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && typeof (v as Resource).resourceType === 'string'
      ? (v as Resource)
      : undefined;
  } catch {
    return undefined;
  }
}

/** A copy of `value` with every `reference` that names a resolved fullUrl replaced by its `Type/id`. */
export function rewriteReferences<T>(value: T, resolved: ReadonlyMap<string, string>): T {
  if (resolved.size === 0) return value;
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (v === null || typeof v !== 'object') return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      out[k] = k === 'reference' && typeof x === 'string' && resolved.has(x) ? resolved.get(x) : walk(x);
    }
    return out;
  };
  return walk(value) as T;
}
