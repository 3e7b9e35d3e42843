import { PGlite, type Transaction } from '@electric-sql/pglite';
import { EngineError } from '../errors.js';
import { type Db, PG_TYPE, type Queryable, type QueryResult } from './db.js';

/**
 * Embedded Postgres (PGlite, WASM) in a data directory: the zero-setup default. One process only —
 * see store-lock.ts. PGlite writes through to the files on every commit, so a killed process loses
 * nothing committed; it does not fsync, so a power cut may — production sites use HL7E_DATABASE_URL.
 */
export class PgliteDb implements Db {
  readonly kind = 'pglite' as const;
  readonly #db: PGlite;

  private constructor(db: PGlite) {
    this.#db = db;
  }

  /** dataDir undefined: in memory (tests). */
  static async open(dataDir?: string): Promise<PgliteDb> {
    const db = await PGlite.create({
      ...(dataDir ? { dataDir } : {}),
      parsers: { [PG_TYPE.int8]: (v: string) => Number(v) },
    });
    return new PgliteDb(db);
  }

  query<R>(sql: string, params?: readonly unknown[]): Promise<QueryResult<R>> {
    return run<R>(this.#db, sql, params);
  }

  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T> {
    return this.#db.transaction((tx) => fn({ query: (sql, params) => run(tx, sql, params) }));
  }

  async close(): Promise<void> {
    await this.#db.close();
  }
}

async function run<R>(
  db: PGlite | Transaction,
  sql: string,
  params?: readonly unknown[],
): Promise<QueryResult<R>> {
  try {
    // A statement without parameters may hold several commands (migrations); exec runs them all.
    if (params === undefined && sql.includes(';')) {
      const results = await db.exec(sql);
      const last = results.at(-1);
      return { rows: (last?.rows ?? []) as R[], rowCount: last?.affectedRows ?? 0 };
    }
    const res = await db.query<Record<string, unknown>>(sql, params as unknown[] | undefined);
    const byteaFields = res.fields.filter((f) => f.dataTypeID === PG_TYPE.bytea).map((f) => f.name);
    if (byteaFields.length > 0) {
      for (const row of res.rows) {
        for (const name of byteaFields) {
          const v = row[name];
          if (v instanceof Uint8Array && !Buffer.isBuffer(v))
            row[name] = Buffer.from(v.buffer, v.byteOffset, v.length);
        }
      }
    }
    return {
      rows: res.rows as R[],
      rowCount: res.rows.length > 0 ? res.rows.length : (res.affectedRows ?? 0),
    };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string')
      throw new EngineError('STORE_QUERY_FAILED', { sqlstate: code }, undefined, { cause: err });
    throw new EngineError('STORE_UNAVAILABLE', {}, undefined, { cause: err });
  }
}
