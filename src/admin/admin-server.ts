import { randomUUID, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../observability/logger.js';
import type { Permission, RoleMap } from './roles.js';

/** A request as a route sees it: parsed, authenticated, with the operator it comes from. */
export interface AdminRequest {
  readonly params: Readonly<Record<string, string>>;
  readonly query: URLSearchParams;
  readonly body: unknown;
  /** HL7E_OPERATOR or the OS user, as the CLI reports it (`x-hl7e-operator`). */
  readonly operator: string;
  readonly correlationId: string;
}

export type AdminResponse =
  | { readonly status?: number; readonly json: unknown }
  | { readonly status?: number; readonly text: string; readonly contentType: string }
  /** Newline-delimited JSON written as it is produced (progress of a long replay). */
  | { readonly status?: number; readonly stream: AsyncIterable<unknown> };

export interface AdminRoute {
  readonly method: 'GET' | 'POST';
  /** `/messages/:id` style; `:name` segments become params. */
  readonly path: string;
  /** Open routes (metrics, health) carry no PHI and take no token, so probes and scrapers need none. */
  readonly open?: boolean;
  /** What the operator needs; a denial is answered 403 and, through `onDenied`, audited. */
  readonly permission?: Permission;
  handle(req: AdminRequest): Promise<AdminResponse>;
}

/** An expected refusal: its code and text reach the CLI; neither may carry message content. */
export class AdminError extends Error {
  override readonly name = 'AdminError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface AdminServerOptions {
  readonly host: string;
  readonly port: number;
  readonly token: string;
  readonly roles: RoleMap;
  readonly logger: Logger;
  /** A denied request (role): the audit trail records denials too. */
  onDenied?(operator: string, permission: Permission, target: string): Promise<void>;
}

/** Largest request body (filters, id lists). */
const MAX_BODY = 1 << 20;

/**
 * The daemon's admin API (DESIGN: admin/): loopback HTTP, every route but the open ones behind the
 * random token the daemon wrote to HL7E_DATA_DIR. JSON in and out; errors as `{ error, message,
 * correlationId }` with the details only in the log under that correlation id.
 */
export class AdminServer {
  readonly #o: AdminServerOptions;
  readonly #routes: { route: AdminRoute; pattern: RegExp; names: string[] }[] = [];
  readonly #token: Buffer;
  #server: Server | undefined;

  constructor(opts: AdminServerOptions) {
    this.#o = opts;
    this.#token = Buffer.from(`Bearer ${opts.token}`);
  }

  add(...routes: AdminRoute[]): this {
    for (const route of routes) {
      const names: string[] = [];
      const pattern = new RegExp(
        `^${route.path.replace(/:([a-zA-Z]+)/g, (_, n: string) => {
          names.push(n);
          return '([^/]+)';
        })}$`,
      );
      this.#routes.push({ route, pattern, names });
    }
    return this;
  }

  async listen(): Promise<{ url: string }> {
    const server = createServer((req, res) => {
      this.#serve(req, res).catch(() => res.destroy());
    });
    this.#server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#o.port, this.#o.host, () => resolve());
    });
    const { address, port } = server.address() as AddressInfo;
    const host = address.includes(':') ? `[${address}]` : address;
    return { url: `http://${host}:${port}` };
  }

  async close(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  async #serve(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const correlationId = randomUUID();
    const url = new URL(req.url ?? '/', 'http://admin');
    try {
      const found = this.#match(req.method ?? 'GET', url.pathname);
      if (!found)
        throw new AdminError(404, 'NOT_FOUND', `no such admin route: ${req.method} ${url.pathname}`);
      const { route, params } = found;
      if (!route.open && !this.#authorized(req)) {
        throw new AdminError(401, 'UNAUTHORIZED', 'missing or wrong admin token');
      }
      const operator = operatorOf(req);
      if (route.permission && !this.#o.roles.allows(operator, route.permission)) {
        await this.#o.onDenied?.(operator, route.permission, url.pathname);
        throw new AdminError(
          403,
          'FORBIDDEN',
          `operator ${operator} may not ${route.permission} (roles: ${this.#o.roles.rolesOf(operator).join(', ') || 'none'})`,
        );
      }
      const body = req.method === 'POST' ? await readJson(req) : undefined;
      const out = await route.handle({ params, query: url.searchParams, body, operator, correlationId });
      await write(res, out);
    } catch (err) {
      if (err instanceof AdminError) {
        send(res, err.status, { error: err.code, message: err.message, correlationId });
        return;
      }
      // Logged by code and class only (the logger's serializer); the caller gets the correlation id.
      this.#o.logger.error({ err, correlationId, path: url.pathname }, 'admin request failed');
      if (!res.headersSent) {
        send(res, 500, {
          error: 'INTERNAL',
          message: 'the request failed; see the engine log',
          correlationId,
        });
      } else res.destroy();
    }
  }

  #match(method: string, path: string): { route: AdminRoute; params: Record<string, string> } | undefined {
    for (const { route, pattern, names } of this.#routes) {
      if (route.method !== method) continue;
      const m = pattern.exec(path);
      if (!m) continue;
      const params: Record<string, string> = {};
      names.forEach((n, i) => {
        params[n] = decodeURIComponent(m[i + 1] as string);
      });
      return { route, params };
    }
    return undefined;
  }

  #authorized(req: IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === this.#token.length && timingSafeEqual(given, this.#token);
  }
}

function operatorOf(req: IncomingMessage): string {
  const v = req.headers['x-hl7e-operator'];
  const name = (Array.isArray(v) ? v[0] : v)?.trim();
  return name && /^[\w.@-]{1,64}$/.test(name) ? name : 'unknown';
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) throw new AdminError(413, 'TOO_LARGE', `request body over ${MAX_BODY} bytes`);
    chunks.push(c as Buffer);
  }
  if (size === 0) return {};
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new AdminError(400, 'BAD_REQUEST', 'request body is not JSON');
  }
}

function send(res: ServerResponse, status: number, json: unknown): void {
  const body = JSON.stringify(json);
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(body);
}

async function write(res: ServerResponse, out: AdminResponse): Promise<void> {
  const status = out.status ?? 200;
  if ('json' in out) return send(res, status, out.json);
  if ('text' in out) {
    res.writeHead(status, { 'content-type': out.contentType, 'cache-control': 'no-store' });
    res.end(out.text);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  for await (const item of out.stream) res.write(`${JSON.stringify(item)}\n`);
  res.end();
}
