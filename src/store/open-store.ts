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
  /** Connections for background work (processing); 0 shares the main pool. */
  workPoolSize?: number;
  /** Connections for the delivery step; 0 shares the work pool. */
  deliveryPoolSize?: number;
}

export interface OpenedStore {
  db: Db;
  /**
   * Where background work (processing) runs. On Postgres its own small pool, so that intake's group
   * commit never waits for a connection behind processing transactions and processing cannot take more
   * than its share of the server; on PGlite (one connection) the same db.
   */
  workDb: Db;
  /**
   * Where the delivery step runs: its own pool on Postgres, so deliveries (many short transactions, one
   * per attempt) and processing (fewer, longer ones) do not queue behind each other for connections.
   */
  deliveryDb: Db;
  /** Migrations applied by this open (empty when the schema was current). */
  migrated: number[];
  close(): Promise<void>;
}

/** Opens the system of record and brings its schema up to date. */
export async function openStore(opts: OpenStoreOptions): Promise<OpenedStore> {
  let release = () => {};
  let db: Db;
  let workDb: Db | undefined;
  let deliveryDb: Db | undefined;
  if (opts.databaseUrl) {
    const pg = (max: number | undefined, name: string) =>
      new PgDb({
        connectionString: opts.databaseUrl as string,
        applicationName: name,
        ...(max ? { max } : {}),
        ...(opts.onError ? { onError: opts.onError } : {}),
      });
    db = pg(opts.poolSize, 'hl7-engine');
    if (opts.workPoolSize !== 0) workDb = pg(opts.workPoolSize ?? 4, 'hl7-engine-work');
    if (opts.deliveryPoolSize !== 0) deliveryDb = pg(opts.deliveryPoolSize ?? 8, 'hl7-engine-delivery');
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
      workDb: workDb ?? db,
      deliveryDb: deliveryDb ?? workDb ?? db,
      migrated,
      close: async () => {
        try {
          await Promise.all([db.close(), workDb?.close(), deliveryDb?.close()]);
        } finally {
          release();
        }
      },
    };
  } catch (err) {
    await db.close().catch(() => {});
    await workDb?.close().catch(() => {});
    await deliveryDb?.close().catch(() => {});
    release();
    throw err;
  }
}
