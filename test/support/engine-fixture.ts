import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import pg from 'pg';
import { readAdminFile } from '../../src/admin/admin-file.js';
import { EngineProcess } from './engine-process.js';
import { createTestDatabase } from './postgres.js';
import { dropQueueKeys } from './redis.js';

export interface EngineOptions<C extends string> {
  /** Names the temp dir, the database and the queue prefix, so anything left behind says whose it is. */
  readonly label: string;
  /** Channel name → its file (written as channels/<name>.yaml); the engine is up when each listens. */
  readonly channels: Readonly<Record<C, string>>;
  /** More files by path under the test's dir, written first: roles.yaml, mappings/…, channels/tls/… */
  readonly files?: Readonly<Record<string, string>>;
  /** The test's own settings (HL7E_LOG_LEVEL, HL7E_RECONCILE_INTERVAL_MS, …), over the usual ones. */
  readonly env?: Readonly<Record<string, string>>;
  /** How long the daemon may take to listen (its conversion workers load the FHIR definitions). */
  readonly listenTimeoutMs?: number;
}

export interface RunningEngine<C extends string> {
  readonly engine: EngineProcess;
  /** The test's temp dir: channels/, data/, archive/, mappings/ and roles.yaml are here. */
  readonly dir: string;
  readonly dataDir: string;
  /** What the daemon was started with besides process.env: a CLI run against it needs the same. */
  readonly env: Readonly<Record<string, string>>;
  readonly databaseUrl: string;
  /** A small pool on the engine's database, for watching the store. */
  readonly db: pg.Pool;
  readonly prefix: string;
  /** Each channel's MLLP port. */
  readonly ports: Readonly<Record<C, number>>;
  /** The admin API, as admin.json gives it to the CLI. */
  readonly adminUrl: string;
  /** Kills the daemon and removes its database, queues and dir; every step runs, safe to call twice. */
  stop(): Promise<void>;
}

/**
 * The real daemon for one e2e test, on the shared Postgres (a database of its own) and Redis (a queue
 * prefix of its own). Every path it reads or writes is under the test's temp dir — never the cwd's
 * ./mappings or ./roles.yaml — so parallel test files and the developer's checkout stay apart.
 */
export async function startEngine<C extends string>(options: EngineOptions<C>): Promise<RunningEngine<C>> {
  const undo: (() => unknown)[] = [];
  const stop = async () => {
    const failed: unknown[] = [];
    for (const step of undo.splice(0).reverse()) {
      try {
        await step();
      } catch (err) {
        failed.push(err);
      }
    }
    if (failed.length > 0) throw new AggregateError(failed, `${failed.length} engine cleanup step(s) failed`);
  };
  try {
    const dir = mkdtempSync(join(tmpdir(), `hl7e-${options.label}-`));
    undo.push(() => rmSync(dir, { recursive: true, force: true }));
    const write = (path: string, text: string) => {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    };
    for (const [path, text] of Object.entries<string>(options.files ?? {})) write(path, text);
    for (const [name, text] of Object.entries<string>(options.channels)) write(`channels/${name}.yaml`, text);

    const database = await createTestDatabase(options.label);
    undo.push(() => database.drop());
    const prefix = `${options.label}-${randomBytes(4).toString('hex')}`;
    undo.push(() => dropQueueKeys(prefix));
    const dataDir = join(dir, 'data');
    const env = {
      HL7E_DATABASE_URL: database.url,
      HL7E_QUEUE_PREFIX: prefix,
      HL7E_DATA_DIR: dataDir,
      HL7E_ARCHIVE_DIR: join(dir, 'archive'),
      HL7E_MAPPINGS_DIR: join(dir, 'mappings'),
      HL7E_ROLES_FILE: join(dir, 'roles.yaml'),
      ...options.env,
    };
    const engine = new EngineProcess(join(dir, 'channels'), env);
    undo.push(() => engine.kill('SIGKILL'));
    const db = new pg.Pool({ connectionString: database.url, max: 2 });
    db.on('error', () => {});
    undo.push(() => db.end());

    const ports = await engine.listening(Object.keys(options.channels), options.listenTimeoutMs);
    // Written before the first channel listens (daemon.ts), so it is there by now.
    const adminUrl = readAdminFile(dataDir)?.url;
    if (adminUrl === undefined) throw new Error(`no admin.json in ${dataDir}`);
    return {
      engine,
      dir,
      dataDir,
      env,
      databaseUrl: database.url,
      db,
      prefix,
      ports: ports as Record<C, number>,
      adminUrl,
      stop,
    };
  } catch (err) {
    await stop().catch(() => {});
    throw err;
  }
}
