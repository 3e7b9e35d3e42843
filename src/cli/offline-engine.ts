import { KeyRing } from '../archive/keyring.js';
import { RawArchive } from '../archive/raw-archive.js';
import type { EngineEnv } from '../config/env.js';
import { openKeyProvider } from '../daemon/key-provider-factory.js';
import { isEngineError } from '../errors.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import type { Db } from '../store/db.js';
import { openStore } from '../store/open-store.js';
import { CliError, EXIT } from './cli-error.js';

export interface OfflineEngine {
  db: Db;
  keyring: KeyRing;
  archive: RawArchive;
}

/**
 * Store, keys and archive opened the way the daemon opens them, for offline commands (archive verify,
 * keys rotate). The embedded store allows one process: with a running engine on it, this says so.
 */
export async function withOfflineEngine<T>(env: EngineEnv, fn: (e: OfflineEngine) => Promise<T>): Promise<T> {
  let store: Awaited<ReturnType<typeof openStore>>;
  try {
    store = await openStore({ databaseUrl: env.databaseUrl, dataDir: env.dataDir });
  } catch (err) {
    if (isEngineError(err, 'STORE_LOCKED')) {
      throw new CliError(
        `${err.message}: stop it first, or run with HL7E_DATABASE_URL (Postgres allows both at once)`,
        EXIT.problem,
      );
    }
    throw err;
  }
  const provider = await openKeyProvider(env).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const keyring = new KeyRing({
    provider,
    repo: new DataKeyRepo(store.db),
    maxAgeMs: env.dataKeyMaxAgeMs,
    maxRecords: env.dataKeyMaxRecords,
    cacheMs: env.dataKeyCacheMs,
  });
  const archive = new RawArchive(env.archiveDir, keyring);
  try {
    return await fn({ db: store.db, keyring, archive });
  } finally {
    await archive.close();
    await keyring.close();
    await provider.close();
    await store.close();
  }
}
