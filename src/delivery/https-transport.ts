import { readFileSync } from 'node:fs';
import https from 'node:https';
import { resolve } from 'node:path';
import tls from 'node:tls';
import { normalizeFingerprint } from '../mllp/index.js';

/** One HTTP exchange as fhir-client.ts and fhir-auth.ts need it; redirects are never followed. */
export interface HttpRequest {
  readonly method: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string | URLSearchParams | undefined;
  readonly signal: AbortSignal;
}

export interface HttpAnswer {
  readonly status: number;
  /** A response header by lower-case name; null when absent. */
  header(name: string): string | null;
  readonly text: string;
}

/**
 * Sends a request. Throws only TransportError: what the network or the TLS layer did, as a reason and
 * a code, never a message (the peer's words stay out of logs).
 */
export type HttpTransport = (url: string, req: HttpRequest) => Promise<HttpAnswer>;

/**
 * No answer: `timeout` (the caller's signal fired), `tls` (the TCP connection stood but the handshake
 * failed: untrusted CA, wrong host name, pin mismatch, protocol version — `code` says which), or
 * `network` (everything else: refused, reset, DNS).
 */
export class TransportError extends Error {
  override readonly name = 'TransportError';
  constructor(
    readonly reason: 'timeout' | 'tls' | 'network',
    readonly code: string,
  ) {
    super(`${reason} (${code})`);
  }
}

/** The pin check's error code: the server's certificate verified, but it is not one of `tls.pins`. */
export const PIN_MISMATCH = 'CERT_PIN_MISMATCH';

/**
 * Node's fetch (undici), for destinations without `tls`: system CAs, TLS 1.2 at least (node's default).
 * Node 20 bundles undici without exporting its Agent, so fetch cannot be given a CA, a client
 * certificate or a pin without adding the undici package; `httpsTransport` does that on node:https.
 */
export const fetchTransport: HttpTransport = async (url, req) => {
  try {
    const res = await fetch(url, {
      method: req.method,
      headers: req.headers,
      body: req.body ?? null,
      signal: req.signal,
      redirect: 'manual',
    });
    const text = await res.text();
    return { status: res.status, header: (name) => res.headers.get(name), text };
  } catch (err) {
    if (req.signal.aborted || (err instanceof Error && err.name === 'TimeoutError')) {
      throw new TransportError('timeout', 'TIMEOUT');
    }
    const code = causeCode(err);
    throw new TransportError(isTlsCode(code) ? 'tls' : 'network', code);
  }
};

/** `FhirTlsConfig` with its files read. */
export interface HttpsTlsOptions {
  readonly ca?: Buffer;
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly pins?: readonly string[];
  readonly servername?: string;
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** A channel's `fhir.tls` (channel-config.ts FhirTlsConfig): PEM file paths. */
export interface TlsFileConfig {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
  readonly pins?: readonly string[];
  readonly servername?: string;
  readonly minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

/** Reads the PEM files a channel names, relative to `baseDir` (the channel file's directory). */
export function readTlsFiles(config: TlsFileConfig, baseDir: string): HttpsTlsOptions {
  const read = (p: string) => readFileSync(resolve(baseDir, p));
  return {
    ...(config.minVersion ? { minVersion: config.minVersion } : {}),
    ...(config.ca ? { ca: read(config.ca) } : {}),
    ...(config.cert ? { cert: read(config.cert) } : {}),
    ...(config.key ? { key: read(config.key) } : {}),
    ...(config.pins ? { pins: config.pins } : {}),
    ...(config.servername ? { servername: config.servername } : {}),
  };
}

export interface HttpsTransportHandle {
  readonly request: HttpTransport;
  /** Closes the kept-alive connections. */
  close(): void;
}

/**
 * HTTPS on node:https with this destination's trust: `ca` replaces the system CAs, `cert`/`key` answer
 * a server that asks for a client certificate, `pins` must name the server's certificate. Connections
 * are kept alive and reused, as fetch would. Only https:// URLs are accepted: a TLS setting must never
 * quietly fall back to plain HTTP.
 */
export function httpsTransport(options: HttpsTlsOptions): HttpsTransportHandle {
  const pins = options.pins?.map((p, i) => {
    const normal = normalizeFingerprint(p);
    if (!normal) throw new RangeError(`tls.pins[${i}] is not a SHA-256 fingerprint`);
    return normal;
  });
  const agent = new https.Agent({
    keepAlive: true,
    minVersion: options.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
    ...(options.ca ? { ca: options.ca } : {}),
    ...(options.cert ? { cert: options.cert } : {}),
    ...(options.key ? { key: options.key } : {}),
    ...(options.servername ? { servername: options.servername } : {}),
    // Runs after the chain verified (node skips it otherwise): host name first, then the pin.
    checkServerIdentity: (host, cert) => {
      const wrongHost = tls.checkServerIdentity(host, cert);
      if (wrongHost) return wrongHost;
      if (pins && !pins.includes(normalizeFingerprint(cert.fingerprint256) ?? '')) {
        return Object.assign(new Error('server certificate is not pinned'), { code: PIN_MISMATCH });
      }
      return undefined;
    },
  });
  return {
    request: (url, req) => send(agent, url, req),
    close: () => agent.destroy(),
  };
}

function send(agent: https.Agent, url: string, req: HttpRequest): Promise<HttpAnswer> {
  return new Promise((resolvePromise, reject) => {
    const target = new URL(url);
    if (target.protocol !== 'https:') {
      reject(new TransportError('network', 'NOT_HTTPS'));
      return;
    }
    const body = req.body === undefined ? undefined : Buffer.from(req.body.toString(), 'utf8');
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body instanceof URLSearchParams) headers['content-type'] ??= 'application/x-www-form-urlencoded';
    if (body) headers['content-length'] = body.length;
    // Where the failure happened decides its class: after TCP connected but before the handshake
    // finished is TLS's doing; a reused socket has finished its handshake long ago.
    let connected = false;
    let secured = false;
    const fail = (err: unknown) => {
      const code = causeCode(err);
      if (req.signal.aborted) return reject(new TransportError('timeout', 'TIMEOUT'));
      const tlsFault = (connected && !secured) || isTlsCode(code);
      reject(new TransportError(tlsFault ? 'tls' : 'network', code));
    };
    const request = https.request(
      target,
      { method: req.method, headers, agent, signal: req.signal },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', fail);
        // A body cut off (reset, or the deadline) must settle the promise even if no 'error' follows.
        res.on('close', () => {
          if (!res.complete) fail(Object.assign(new Error('response cut off'), { code: 'ECONNRESET' }));
        });
        res.on('end', () =>
          resolvePromise({
            status: res.statusCode ?? 0,
            header: (name) => {
              const v = res.headers[name.toLowerCase()];
              return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
            },
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.on('socket', (socket) => {
      if (request.reusedSocket) {
        connected = secured = true;
        return;
      }
      socket.once('connect', () => {
        connected = true;
      });
      socket.once('secureConnect', () => {
        secured = true;
      });
    });
    request.on('error', fail);
    request.end(body);
  });
}

/**
 * Codes of certificate verification (OpenSSL's X509_V_ERR names as node reports them), of node's own
 * TLS checks, of OpenSSL handshake failures, and of the pin check.
 */
function isTlsCode(code: string): boolean {
  return (
    /^(ERR_SSL_|ERR_TLS_|CERT_|UNABLE_TO_|DEPTH_ZERO_|SELF_SIGNED_|HOSTNAME_MISMATCH)/.test(code) ||
    code === PIN_MISMATCH
  );
}

/** The code of an error or of its cause (fetch wraps the socket's error), safe to log. */
function causeCode(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    e = (e as { cause?: unknown }).cause;
  }
  return err instanceof Error ? err.name : 'UNKNOWN';
}
