import pg from 'pg';
import { EngineError } from '../errors.js';
import { type Db, PG_TYPE, type Queryable, type QueryResult } from './db.js';

export interface PgDbOptions {
  connectionString: string;
  /** Pool size; intake commits in groups, so a handful of connections serve thousands of msg/s. */
  max?: number;
  /** Bound on every statement so a hung server turns into an error (AE/CE) instead of a stuck ACK. */
  statementTimeoutMs?: number;
  connectTimeoutMs?: number;
  /** Shown in pg_stat_activity; default hl7-engine. */
  applicationName?: string;
  /** Reported, never thrown: pg emits errors on idle clients when the server goes away. */
  onError?: (err: Error) => void;
}

// int8 as number: sequence values and counts stay far below 2^53.
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === PG_TYPE.int8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format);
  },
};

/** Postgres through a pg.Pool. Connection failures surface as STORE_UNAVAILABLE (retryable). */
export class PgDb implements Db {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(opts: PgDbOptions) {
    const timeout = opts.statementTimeoutMs ?? 10_000;
    this.#pool = new pg.Pool({
      connectionString: opts.connectionString,
      max: opts.max ?? 8,
      connectionTimeoutMillis: opts.connectTimeoutMs ?? 3_000,
      query_timeout: timeout + 1_000,
      statement_timeout: timeout,
      idleTimeoutMillis: 30_000,
      types,
      application_name: opts.applicationName ?? 'hl7-engine',
      // Named statements skip parsing, but each execution is still planned for its own arguments: a
      // generic plan made while the table was empty kept seq-scanning it for the duplicate lookup
      // (6 ms per batch at 50k rows, the largest single cost in bench:ingest).
      options: '-c plan_cache_mode=force_custom_plan',
    });
    this.#pool.on('error', (err) => opts.onError?.(err));
  }

  get pool(): pg.Pool {
    return this.#pool;
  }

  async query<R>(sql: string, params?: readonly unknown[], name?: string): Promise<QueryResult<R>> {
    try {
      const res = await this.#pool.query(statement(sql, params, name));
      return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
    } catch (err) {
      throw storeError(err);
    }
  }

  async transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.#pool.connect();
    } catch (err) {
      throw storeError(err);
    }
    // A checked-out client whose server goes away emits 'error' on itself, not on the pool: unhandled,
    // that would kill the daemon. The failing query reports it; this only keeps the process alive.
    let lost: Error | undefined;
    const onError = (err: Error) => {
      lost = err;
    };
    client.on('error', onError);
    const tx: Queryable = {
      async query<R>(sql: string, params?: readonly unknown[], name?: string) {
        try {
          const res = await client.query(statement(sql, params, name));
          return { rows: res.rows as R[], rowCount: res.rowCount ?? 0 };
        } catch (err) {
          throw storeError(err);
        }
      },
    };
    let broken: unknown;
    try {
      await tx.query('BEGIN');
      const out = await fn(tx);
      await tx.query('COMMIT');
      return out;
    } catch (err) {
      broken = err;
      await client.query('ROLLBACK').catch((e: unknown) => {
        broken = e;
      });
      throw err;
    } finally {
      // A connection that failed mid-transaction is destroyed rather than returned to the pool.
      client.off('error', onError);
      const destroy = lost ?? (broken instanceof Error && isConnectionError(broken) ? broken : undefined);
      client.release(destroy);
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }
}

function statement(text: string, params: readonly unknown[] | undefined, name: string | undefined) {
  return { text, values: params as unknown[] | undefined, ...(name ? { name } : {}) };
}

/** SQL errors (constraint, syntax) keep their SQLSTATE; lost connections become STORE_UNAVAILABLE. */
function storeError(err: unknown): Error {
  if (err instanceof EngineError) return err;
  const code = (err as { code?: unknown }).code;
  if (
    typeof code === 'string' &&
    /^[0-9A-Z]{5}$/.test(code) &&
    !code.startsWith('08') &&
    !code.startsWith('57')
  ) {
    return new EngineError('STORE_QUERY_FAILED', { sqlstate: code }, undefined, { cause: err });
  }
  return new EngineError('STORE_UNAVAILABLE', {}, undefined, { cause: err });
}

function isConnectionError(err: Error): boolean {
  return err instanceof EngineError && err.code === 'STORE_UNAVAILABLE';
}
