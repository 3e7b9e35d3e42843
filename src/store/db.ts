/**
 * The one SQL surface the engine uses, over either real Postgres (pg) or embedded PGlite: both run the
 * same SQL, so everything above this file is written once. Results are normalised here (int8 → number,
 * bytea → Buffer) so callers never see which engine answered.
 */
export interface QueryResult<R> {
  rows: R[];
  rowCount: number;
}

export interface Queryable {
  /**
   * `name`: a hot statement, prepared once per connection under this name so Postgres skips parsing
   * and planning on every later call (PGlite runs it as a plain query). One name, one SQL text.
   */
  query<R = Record<string, unknown>>(
    sql: string,
    params?: readonly unknown[],
    name?: string,
  ): Promise<QueryResult<R>>;
}

export interface Db extends Queryable {
  readonly kind: 'postgres' | 'pglite';
  /** Runs fn inside BEGIN … COMMIT on one connection; any throw rolls back. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** OIDs normalised identically by both adapters. */
export const PG_TYPE = { int8: 20, bytea: 17 } as const;
