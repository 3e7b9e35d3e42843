import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLocalJWKSet, type JSONWebKeySet, type JWTPayload, jwtVerify } from 'jose';

/** A request as the test FHIR server received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: string;
  /** When it arrived (Date.now()), for checking the gaps between a client's retries. */
  readonly at: number;
  /** What the script answered, once it has decided. */
  answer?: ScriptedResponse;
}

/** What the server does with one request. */
export type ScriptedResponse =
  | {
      readonly status: number;
      readonly headers?: Readonly<Record<string, string>>;
      /** Objects are sent as JSON. */
      readonly body?: unknown;
    }
  | { readonly hang: true }
  | { readonly reset: true };

export type Script =
  | readonly ScriptedResponse[]
  | ((req: RecordedRequest, index: number) => ScriptedResponse | Promise<ScriptedResponse>);

export interface TokenEndpointOptions {
  readonly expiresIn?: number;
  readonly clientId?: string;
  readonly clientSecret?: string;
  /**
   * The client's registered public keys. With them the endpoint wants a SMART Backend Services client
   * assertion signed by one of them (in place of a client secret).
   */
  readonly jwks?: JSONWebKeySet;
}

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
/** SMART Backend Services: `exp` is "no more than five minutes in the future". */
const MAX_ASSERTION_LIFETIME_S = 300;

/**
 * A real HTTP server on a random loopback port that speaks just enough FHIR for delivery tests: it
 * records every request and answers from a script (a list, used in order and then repeating the last
 * response, or a function). `/token` is an OAuth2 client-credentials endpoint, authenticating the
 * client by its secret or (given `jwks`) by a signed JWT assertion.
 */
export class TestFhirServer {
  readonly requests: RecordedRequest[] = [];
  readonly tokenRequests: RecordedRequest[] = [];
  /** Tokens issued so far: `token-1`, `token-2`, … */
  tokensIssued = 0;
  private server: Server | undefined;
  private readonly hanging = new Set<IncomingMessage>();
  /** `jti` of every assertion accepted, so a replayed one is refused. */
  private readonly assertionIds = new Set<string>();

  constructor(
    public script: Script = [okTransaction()],
    public token: TokenEndpointOptions = {},
  ) {}

  get baseUrl(): string {
    return `${this.origin}/fhir`;
  }

  get tokenUrl(): string {
    return `${this.origin}/token`;
  }

  private get origin(): string {
    const addr = this.server?.address() as AddressInfo | null;
    if (!addr) throw new Error('server not started');
    return `http://127.0.0.1:${addr.port}`;
  }

  /** `port` 0 takes a free one; a given port brings a stopped server back where its clients look. */
  async start(port = 0): Promise<this> {
    if (this.server) return this;
    const server = createServer((req, res) => {
      const at = Date.now();
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const rec: RecordedRequest = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
          at,
        };
        void this.answer(req, rec).then((r) => {
          rec.answer = r;
          if ('hang' in r) {
            this.hanging.add(req);
            return;
          }
          if ('reset' in r) {
            req.socket.destroy();
            return;
          }
          const text =
            r.body === undefined ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
          res.writeHead(r.status, {
            ...(text ? { 'content-type': 'application/fhir+json' } : {}),
            ...r.headers,
          });
          res.end(text);
        });
      });
    });
    this.server = server;
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return this;
  }

  async close(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    for (const req of this.hanging) req.socket.destroy();
    this.hanging.clear();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private async answer(req: IncomingMessage, rec: RecordedRequest): Promise<ScriptedResponse> {
    if (req.url === '/token') {
      this.tokenRequests.push(rec);
      return this.issueToken(rec);
    }
    const index = this.requests.length;
    this.requests.push(rec);
    const s = this.script;
    if (typeof s === 'function') return s(rec, index);
    const r = s[Math.min(index, s.length - 1)];
    if (!r) throw new Error('empty script');
    return r;
  }

  private async issueToken(rec: RecordedRequest): Promise<ScriptedResponse> {
    const form = new URLSearchParams(rec.body);
    const { clientId, clientSecret, jwks, expiresIn = 3600 } = this.token;
    // RFC 6749 §5.2: a malformed request is 400; a client that fails to authenticate, 401 invalid_client.
    if (rec.headers['content-type'] !== 'application/x-www-form-urlencoded' || !form.has('grant_type')) {
      return oauthError(400, 'invalid_request');
    }
    if (form.get('grant_type') !== 'client_credentials') return oauthError(400, 'unsupported_grant_type');
    if (jwks) {
      const refused = await this.checkAssertion(form, jwks);
      if (refused) return refused;
    } else if (
      (clientId !== undefined && form.get('client_id') !== clientId) ||
      (clientSecret !== undefined && form.get('client_secret') !== clientSecret)
    ) {
      return oauthError(401, 'invalid_client');
    }
    this.tokensIssued++;
    return {
      status: 200,
      headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
      body: { access_token: `token-${this.tokensIssued}`, token_type: 'Bearer', expires_in: expiresIn },
    };
  }

  /**
   * RFC 7523 §3 client authentication as SMART Backend Services profiles it: signed by a registered
   * key with RS384 or ES384, iss = sub = client_id, aud = this token URL, exp at most five minutes
   * ahead, a jti not seen before. Undefined when the client is authenticated.
   */
  private async checkAssertion(
    form: URLSearchParams,
    jwks: JSONWebKeySet,
  ): Promise<ScriptedResponse | undefined> {
    const type = form.get('client_assertion_type');
    const assertion = form.get('client_assertion');
    // No client authentication at all is invalid_client; half of it is a malformed request.
    if (type === null && assertion === null) return oauthError(401, 'invalid_client');
    if (type === null || !assertion) return oauthError(400, 'invalid_request');
    if (type !== JWT_BEARER) return oauthError(401, 'invalid_client');
    const { clientId } = this.token;
    let claims: JWTPayload;
    try {
      ({ payload: claims } = await jwtVerify(assertion, createLocalJWKSet(jwks), {
        algorithms: ['RS384', 'ES384'],
        typ: 'JWT',
        audience: this.tokenUrl,
        requiredClaims: ['iss', 'sub', 'exp', 'jti'],
        ...(clientId === undefined ? {} : { issuer: clientId, subject: clientId }),
      }));
    } catch {
      return oauthError(401, 'invalid_client');
    }
    const { iss, sub, exp = 0, jti = '' } = claims;
    const passedId = form.get('client_id');
    if (
      iss !== sub ||
      (passedId !== null && passedId !== sub) ||
      exp > Math.floor(Date.now() / 1000) + MAX_ASSERTION_LIFETIME_S ||
      this.assertionIds.has(jti)
    ) {
      return oauthError(401, 'invalid_client');
    }
    this.assertionIds.add(jti);
    return undefined;
  }
}

/** RFC 6749 §5.2 error answer. */
function oauthError(status: 400 | 401, error: string): ScriptedResponse {
  return {
    status,
    headers: { 'content-type': 'application/json', 'cache-control': 'no-store' },
    body: { error },
  };
}

/** 200 with a transaction-response Bundle. */
export function okTransaction(count = 1): ScriptedResponse {
  return {
    status: 200,
    body: {
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: Array.from({ length: count }, (_, i) => ({
        response: { status: '201 Created', location: `Patient/p${i + 1}/_history/1` },
      })),
    },
  };
}

/** 201 for one conditional interaction, with Location and the created resource. */
export function created(resourceType: string, id: string): ScriptedResponse {
  return {
    status: 201,
    headers: { location: `${resourceType}/${id}/_history/1`, etag: 'W/"1"' },
    body: { resourceType, id, meta: { versionId: '1' } },
  };
}

export function operationOutcome(status: number, diagnostics: string): ScriptedResponse {
  return {
    status,
    body: {
      resourceType: 'OperationOutcome',
      issue: [{ severity: 'error', code: 'invalid', diagnostics }],
    },
  };
}

export function unavailable(retryAfter?: string): ScriptedResponse {
  return { status: 503, ...(retryAfter === undefined ? {} : { headers: { 'retry-after': retryAfter } }) };
}

export function tooManyRequests(retryAfter: string): ScriptedResponse {
  return { status: 429, headers: { 'retry-after': retryAfter } };
}

export const HANG: ScriptedResponse = { hang: true };
export const RESET: ScriptedResponse = { reset: true };
