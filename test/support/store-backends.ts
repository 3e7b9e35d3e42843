import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataKeyRepo } from '../../src/store/data-key-repo.js';
import { type OpenedStore, openStore } from '../../src/store/open-store.js';
import { createTestDatabase } from './postgres.js';

/** An opened store whose close() also drops its database and removes its data dir. */
export interface TestStore extends OpenedStore {
  readonly dataDir: string;
  /** Every step runs; safe to call twice. */
  close(): Promise<void>;
}

export interface TestStoreOptions {
  /** A data key row to insert first: message and body rows must name a key that exists. */
  readonly dataKeyId?: string;
}

export interface StoreBackend {
  readonly name: 'postgres' | 'pglite';
  /** A fresh, migrated store; `label` names its database and data dir. */
  open(label: string, options?: TestStoreOptions): Promise<TestStore>;
}

/**
 * The two backends the store runs on, for `describe.each(storeBackends)`: a database of its own on the
 * machine's Postgres, and embedded PGlite in the data dir (no database URL), as `openStore` picks them.
 */
export const storeBackends: readonly StoreBackend[] = [
  { name: 'postgres', open: (label, options) => openTestStore('postgres', label, options) },
  { name: 'pglite', open: (label, options) => openTestStore('pglite', label, options) },
];

async function openTestStore(
  backend: StoreBackend['name'],
  label: string,
  options: TestStoreOptions = {},
): Promise<TestStore> {
  const dataDir = await mkdtemp(join(tmpdir(), `hl7e-${label}-${backend}-`));
  const undo: (() => Promise<unknown>)[] = [() => rm(dataDir, { recursive: true, force: true })];
  const close = async () => {
    const failed: unknown[] = [];
    for (const step of undo.splice(0).reverse()) await step().catch((err: unknown) => failed.push(err));
    if (failed.length > 0) throw new AggregateError(failed, `${failed.length} store cleanup step(s) failed`);
  };
  try {
    let databaseUrl: string | undefined;
    if (backend === 'postgres') {
      const database = await createTestDatabase(label);
      undo.push(() => database.drop());
      databaseUrl = database.url;
    }
    const store = await openStore({ databaseUrl, dataDir });
    undo.push(() => store.close());
    if (options.dataKeyId !== undefined) {
      await new DataKeyRepo(store.db).insert({
        id: options.dataKeyId,
        provider: 'local',
        masterKeyId: 'lmk-0001-test',
        wrappedKey: randomBytes(60),
      });
    }
    return { ...store, dataDir, close };
  } catch (err) {
    await close().catch(() => {});
    throw err;
  }
}
