import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { type CryptoKey, importPKCS8, SignJWT } from 'jose';
import { fetchTransport, type HttpAnswer, type HttpTransport, TransportError } from './https-transport.js';

/**
 * Credentials for a FHIR destination. Secrets are never in channel files: they name an environment
 * variable or a file (a mounted secret), read when first needed and again after the server refuses them.
 */
export type SecretSource = { readonly env: string } | { readonly file: string };

export type FhirAuthConfig =
  | { readonly type: 'none' }
  | { readonly type: 'basic'; readonly username: string; readonly password: SecretSource }
  | { readonly type: 'bearer'; readonly token: SecretSource }
  | {
      readonly type: 'oauth2-client-credentials';
      readonly tokenUrl: string;
      readonly clientId: string;
      readonly clientSecret: SecretSource;
      readonly scopes?: readonly string[];
    }
  | {
      /** https://hl7.org/fhir/smart-app-launch/backend-services.html */
      readonly type: 'smart-backend-services';
      readonly tokenUrl: string;
      readonly clientId: string;
      /** PEM PKCS#8 private key; the server holds its public half in the client's registered JWKS. */
      readonly privateKey: SecretSource;
      /** The `kid` of that key in the JWKS. */
      readonly keyId: string;
      /** @defaultValue OAUTH2_POLICY.assertionAlgorithm */
      readonly algorithm?: SmartAlgorithm;
      /** SMART system scopes such as `system/Observation.write`. */
      readonly scopes?: readonly string[];
    };

/** SMART Backend Services: the two client-assertion algorithms servers "SHALL support". */
export type SmartAlgorithm = 'RS384' | 'ES384';

/** Token handling defaults (STYLE habit 4). */
export const OAUTH2_POLICY = {
  /** A token is renewed this long before `expires_in` runs out, so it does not expire in flight. */
  expiryMarginMs: 30_000,
  /** RFC 6749 §5.1 makes `expires_in` only RECOMMENDED; without it a token is trusted this long. */
  defaultLifetimeMs: 300_000,
  /** The token request's own deadline (it is shared by concurrent deliveries, so not theirs). */
  tokenTimeoutMs: 10_000,
  /** SMART Backend Services: `exp` "no more than five minutes in the future"; 4 leaves room for clock skew. */
  assertionLifetimeMs: 240_000,
  /** SMART Backend Services: the assertion's algorithm when the channel names none. */
  assertionAlgorithm: 'RS384',
} as const;

/**
 * Why credentials could not be had. Texts name env variables, files and statuses, never a secret or
 * anything the token endpoint answered.
 */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly reason: 'secret' | 'status' | 'timeout' | 'network' | 'response',
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface AuthProvider {
  /** The Authorization header value, or undefined for none. Throws AuthError. */
  authorization(): Promise<string | undefined>;
  /**
   * The server refused `rejected`: drop it so the next `authorization()` fetches or re-reads a fresh one.
   * Ignored when the cache already moved on, so N concurrent 401s cause one refresh, not N.
   */
  invalidate(rejected: string | undefined): void;
}

export interface AuthProviderOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Milliseconds clock for token expiry. */
  readonly now?: () => number;
  /** How token requests travel (the destination's TLS settings, fhir-client.ts). @defaultValue fetchTransport */
  readonly transport?: HttpTransport;
}

export function createAuthProvider(config: FhirAuthConfig, opts: AuthProviderOptions = {}): AuthProvider {
  const env = opts.env ?? process.env;
  const now = opts.now ?? Date.now;
  const transport = opts.transport ?? fetchTransport;
  switch (config.type) {
    case 'none':
      return { authorization: async () => undefined, invalidate: () => {} };
    case 'basic':
      return new CachedAuth(async () => {
        const password = await readSecret(config.password, env);
        return `Basic ${Buffer.from(`${config.username}:${password}`, 'utf8').toString('base64')}`;
      });
    case 'bearer':
      return new CachedAuth(async () => `Bearer ${await readSecret(config.token, env)}`);
    case 'oauth2-client-credentials':
      return new CachedAuth(
        async () => fetchToken(config.tokenUrl, await clientSecretForm(config, env), now, transport),
        now,
      );
    case 'smart-backend-services':
      return new CachedAuth(
        async () => fetchToken(config.tokenUrl, await clientAssertionForm(config, env, now), now, transport),
        now,
      );
  }
}

/** Reads a secret; a file's trailing newline (as `echo` writes it) is not part of it. */
export async function readSecret(source: SecretSource, env: NodeJS.ProcessEnv): Promise<string> {
  if ('env' in source) {
    const value = env[source.env];
    if (!value) throw new AuthError('secret', `environment variable ${source.env} is not set`);
    return value;
  }
  let text: string;
  try {
    text = await readFile(source.file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown';
    throw new AuthError('secret', `secret file ${source.file} could not be read (${code})`);
  }
  const value = text.replace(/[\r\n]+$/, '');
  if (!value) throw new AuthError('secret', `secret file ${source.file} is empty`);
  return value;
}

interface Credential {
  readonly header: string;
  /** Epoch ms after which it must be renewed; Infinity for static secrets. */
  readonly renewAt: number;
}

/** One credential cached until it is due or refused; one fetch in flight at a time. */
class CachedAuth implements AuthProvider {
  private current: Credential | undefined;
  private inFlight: Promise<Credential> | undefined;

  constructor(
    private readonly fetchCredential: () => Promise<Credential | string>,
    private readonly now: () => number = Date.now,
  ) {}

  async authorization(): Promise<string> {
    const c = this.current;
    if (c && this.now() < c.renewAt) return c.header;
    this.inFlight ??= this.fetchCredential()
      .then((got) => {
        const cred = typeof got === 'string' ? { header: got, renewAt: Number.POSITIVE_INFINITY } : got;
        this.current = cred;
        return cred;
      })
      .finally(() => {
        this.inFlight = undefined;
      });
    return (await this.inFlight).header;
  }

  invalidate(rejected: string | undefined): void {
    if (this.current && this.current.header === rejected) this.current = undefined;
  }
}

/** RFC 6749 §4.4 client credentials grant, client authenticated in the body (§2.3.1). */
async function clientSecretForm(
  config: Extract<FhirAuthConfig, { type: 'oauth2-client-credentials' }>,
  env: NodeJS.ProcessEnv,
): Promise<URLSearchParams> {
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_id: config.clientId,
    client_secret: await readSecret(config.clientSecret, env),
  });
  return withScopes(form, config.scopes);
}

/**
 * SMART Backend Services token request: the client authenticates with a JWT it signs (RFC 7523 §2.2).
 * Each request gets a fresh assertion: servers refuse a `jti` they have seen, and a refused token may
 * be renewed long after the last assertion expired. The key is read anew each time, so a rotated
 * mounted key is picked up at the next renewal.
 */
async function clientAssertionForm(
  config: Extract<FhirAuthConfig, { type: 'smart-backend-services' }>,
  env: NodeJS.ProcessEnv,
  now: () => number,
): Promise<URLSearchParams> {
  const alg = config.algorithm ?? OAUTH2_POLICY.assertionAlgorithm;
  const key = await readPrivateKey(config.privateKey, alg, env);
  // "Protocol details": iss = sub = client_id, aud = the token URL, exp at most five minutes ahead.
  const assertion = await new SignJWT()
    .setProtectedHeader({ alg, kid: config.keyId, typ: 'JWT' })
    .setIssuer(config.clientId)
    .setSubject(config.clientId)
    .setAudience(config.tokenUrl)
    .setExpirationTime(Math.floor((now() + OAUTH2_POLICY.assertionLifetimeMs) / 1000))
    .setJti(randomUUID())
    .sign(key);
  const form = new URLSearchParams({
    grant_type: 'client_credentials',
    client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion: assertion,
  });
  return withScopes(form, config.scopes);
}

function withScopes(form: URLSearchParams, scopes: readonly string[] | undefined): URLSearchParams {
  if (scopes && scopes.length > 0) form.set('scope', scopes.join(' '));
  return form;
}

async function readPrivateKey(
  source: SecretSource,
  alg: SmartAlgorithm,
  env: NodeJS.ProcessEnv,
): Promise<CryptoKey> {
  const pem = await readSecret(source, env);
  try {
    return await importPKCS8(pem, alg);
  } catch {
    // The import error is not kept: it may describe the key.
    const where = 'env' in source ? `environment variable ${source.env}` : `secret file ${source.file}`;
    throw new AuthError('secret', `${where} does not hold a PKCS#8 PEM private key for ${alg}`);
  }
}

/** Posts a token request whose client authentication `form` already carries; the answer per §5.1. */
async function fetchToken(
  tokenUrl: string,
  form: URLSearchParams,
  now: () => number,
  transport: HttpTransport,
): Promise<Credential> {
  const started = now();
  let res: HttpAnswer;
  try {
    res = await transport(tokenUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
      body: form,
      signal: AbortSignal.timeout(OAUTH2_POLICY.tokenTimeoutMs),
    });
  } catch (err) {
    const timedOut = err instanceof TransportError && err.reason === 'timeout';
    // A TLS failure names its code (untrusted CA, pin mismatch …) so the operator can see which.
    const tls = err instanceof TransportError && err.reason === 'tls' ? ` (TLS ${err.code})` : '';
    throw new AuthError(
      timedOut ? 'timeout' : 'network',
      timedOut
        ? 'the token endpoint did not answer in time'
        : `the token endpoint could not be reached${tls}`,
    );
  }
  const text = res.text;
  // The body of an error answer may echo the client id, secret or assertion: it is not kept.
  if (res.status !== 200) {
    throw new AuthError('status', `the token endpoint answered ${res.status}`, res.status);
  }
  let body: { access_token?: unknown; token_type?: unknown; expires_in?: unknown };
  try {
    body = JSON.parse(text) as typeof body;
  } catch {
    throw new AuthError('response', 'the token endpoint answered with something that is not JSON');
  }
  if (typeof body.access_token !== 'string' || body.access_token === '') {
    throw new AuthError('response', 'the token endpoint answered without an access_token');
  }
  if (typeof body.token_type === 'string' && body.token_type.toLowerCase() !== 'bearer') {
    throw new AuthError('response', 'the token endpoint issued a token type other than Bearer');
  }
  const lifetimeMs =
    typeof body.expires_in === 'number' && body.expires_in > 0
      ? body.expires_in * 1000
      : OAUTH2_POLICY.defaultLifetimeMs;
  // A short-lived token is still used for half its life rather than fetched anew for every request.
  const usableMs = Math.max(lifetimeMs - OAUTH2_POLICY.expiryMarginMs, lifetimeMs / 2);
  return { header: `Bearer ${body.access_token}`, renewAt: started + usableMs };
}
