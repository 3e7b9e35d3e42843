import { userInfo } from 'node:os';
import { type AdminAddress, readAdminFile } from '../admin/admin-file.js';
import { CliError, EXIT } from './cli-error.js';

/** Who is at the keyboard, as the audit trail will name them: HL7E_OPERATOR, else the OS user. */
export function operatorName(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.HL7E_OPERATOR?.trim();
  if (fromEnv) return fromEnv;
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}

/**
 * The CLI's side of the admin API: finds the running daemon through HL7E_DATA_DIR (admin.json) and
 * calls it with its token. No daemon, or one that does not answer: one line, exit code 3.
 */
export class AdminClient {
  private constructor(
    private readonly address: AdminAddress,
    private readonly operator: string,
    private readonly dataDir: string,
  ) {}

  static connect(dataDir: string, env: NodeJS.ProcessEnv = process.env): AdminClient {
    const address = readAdminFile(dataDir);
    if (!address) {
      throw new CliError(
        `no engine is running here (no admin.json in ${dataDir}; set HL7E_DATA_DIR)`,
        EXIT.unreachable,
      );
    }
    return new AdminClient(address, operatorName(env), dataDir);
  }

  async get<T>(path: string, query: Record<string, string | number | undefined> = {}): Promise<T> {
    const res = await this.#fetch('GET', path, query);
    return (await res.json()) as T;
  }

  async post<T>(path: string, body: unknown): Promise<T> {
    const res = await this.#fetch('POST', path, {}, body);
    return (await res.json()) as T;
  }

  /** A POST answered with newline-delimited JSON, item by item as the daemon writes them. */
  async *stream<T>(path: string, body: unknown): AsyncGenerator<T> {
    const res = await this.#fetch('POST', path, {}, body);
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffered = '';
    for await (const chunk of res.body) {
      buffered += decoder.decode(chunk as Uint8Array, { stream: true });
      let nl = buffered.indexOf('\n');
      while (nl >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        if (line.trim()) yield JSON.parse(line) as T;
        nl = buffered.indexOf('\n');
      }
    }
  }

  async #fetch(
    method: string,
    path: string,
    query: Record<string, string | number | undefined>,
    body?: unknown,
  ): Promise<Response> {
    const url = new URL(path, this.address.url);
    for (const [k, v] of Object.entries(query)) if (v !== undefined) url.searchParams.set(k, String(v));
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers: {
          authorization: `Bearer ${this.address.token}`,
          'x-hl7e-operator': this.operator,
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch {
      throw new CliError(
        `no engine is running here (pid ${this.address.pid} in ${this.dataDir}/admin.json does not answer)`,
        EXIT.unreachable,
      );
    }
    if (!res.ok) {
      const err = (await res.json().catch(() => ({}))) as {
        error?: string;
        message?: string;
        correlationId?: string;
      };
      const exit = res.status === 401 || res.status === 403 ? EXIT.denied : EXIT.problem;
      const ref = err.correlationId ? ` (correlation id ${err.correlationId})` : '';
      throw new CliError(`${err.error ?? res.status}: ${err.message ?? res.statusText}${ref}`, exit);
    }
    return res;
  }
}
