import { join } from 'node:path';
import type { Db } from './db.js';
import { migrate } from './migrations.js';
import { PgDb } from './pg-db.js';
import { PgliteDb } from './pglite-db.js';
import { acquireStoreLock } from './store-lock.js';

export interface OpenStoreOptions {
  /** Postgres URL; undefined selects embedded PGlite under dataDir. */
  databaseUrl: string | undefined;
  dataDir: string;
  onError?: (err: Error) => void;
  poolSize?: number;
}

export interface OpenedStore {
  db: Db;
  /** Migrations applied by this open (empty when the schema was current). */
  migrated: number[];
  close(): Promise<void>;
}

/** Opens the system of record and brings its schema up to date. */
export async function openStore(opts: OpenStoreOptions): Promise<OpenedStore> {
  let release = () => {};
  let db: Db;
  if (opts.databaseUrl) {
    db = new PgDb({
      connectionString: opts.databaseUrl,
      ...(opts.poolSize ? { max: opts.poolSize } : {}),
      ...(opts.onError ? { onError: opts.onError } : {}),
    });
  } else {
    release = acquireStoreLock(opts.dataDir);
    try {
      db = await PgliteDb.open(join(opts.dataDir, 'pglite'));
    } catch (err) {
      release();
      throw err;
    }
  }
  try {
    const migrated = await migrate(db);
    return {
      db,
      migrated,
      close: async () => {
        try {
          await db.close();
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    await db.close().catch(() => {});
    release();
    throw err;
  }
}
