import { isAbsolute, join, resolve } from 'node:path';
import { EngineError } from '../errors.js';

/**
 * The environment the engine reads, in one place. Every variable is documented in README "Configuration".
 */
export interface EngineEnv {
  /** HL7E_DATA_DIR: embedded store, local master key, admin token; default ./data */
  readonly dataDir: string;
  /** HL7E_CHANNELS_DIR: channel files; default ./channels */
  readonly channelsDir: string;
  /** HL7E_MAPPINGS_DIR: the site's mapping files, searched before the shipped ones; default ./mappings */
  readonly mappingsDir: string;
  /** HL7E_LOG_LEVEL: pino level; default info */
  readonly logLevel: string;
  /** HL7E_DATABASE_URL: Postgres; unset selects embedded PGlite under dataDir */
  readonly databaseUrl: string | undefined;
  /** HL7E_ARCHIVE_DIR: encrypted raw archive; default ./raw-archive */
  readonly archiveDir: string;
  /** HL7E_KMS_KEY_ID: AWS KMS key (id, ARN or alias); unset selects the local master-key file */
  readonly kmsKeyId: string | undefined;
  /** HL7E_KMS_ENDPOINT: KMS endpoint override (VPC endpoint, test server) */
  readonly kmsEndpoint: string | undefined;
  /** HL7E_MASTER_KEY_FILE: local master-key file; default <dataDir>/master-key.json */
  readonly masterKeyFile: string;
  /** HL7E_QUEUE: redis (default) or postgres (BullMQ's PostgreSQL backend on HL7E_DATABASE_URL) */
  readonly queue: 'redis' | 'postgres';
  /** HL7E_REDIS_URL: default redis://127.0.0.1:6379 */
  readonly redisUrl: string;
  /** HL7E_REDIS_SENTINELS: `host:port,…` of Redis Sentinels (then HL7E_REDIS_URL gives only credentials and db) */
  readonly redisSentinels: readonly { host: string; port: number }[] | undefined;
  /** HL7E_REDIS_SENTINEL_NAME: the master's name at the Sentinels; default mymaster */
  readonly redisSentinelName: string;
  /** HL7E_REDIS_CLUSTER: `host:port,…` seed nodes of a Redis Cluster (HL7E_REDIS_URL then gives only credentials) */
  readonly redisCluster: readonly { host: string; port: number }[] | undefined;
  /** HL7E_QUEUE_PREFIX: namespace of every queue key, so engines can share a Redis; default hl7e */
  readonly queuePrefix: string;
  /** HL7E_PARTITIONS: ordering partitions (processing queues with concurrency 1); default 16 */
  readonly partitions: number;
  /** HL7E_PROCESS_GATHER_MS: how long a processing job lets its partition gather; default 250 */
  readonly processGatherMs: number;
  /** HL7E_CONVERT_WORKERS: worker threads that parse and map (0: on the main thread); default 1 */
  readonly convertWorkers: number;
  /** HL7E_RECONCILE_INTERVAL_MS: how often unfinished messages are re-enqueued; default 30000 */
  readonly reconcileIntervalMs: number;
  /** HL7E_DATA_KEY_MAX_AGE_MS / HL7E_DATA_KEY_MAX_RECORDS: data-key rotation schedule */
  readonly dataKeyMaxAgeMs: number;
  readonly dataKeyMaxRecords: number;
  /** HL7E_DATA_KEY_CACHE_MS: how long a plaintext data key stays in memory after last use */
  readonly dataKeyCacheMs: number;
  /** HL7E_INTAKE_MAX_BATCH: messages per group commit; default 512 */
  readonly intakeMaxBatch: number;
  /** HL7E_INTAKE_HIGH_WATER: messages waiting for commit before sockets stop being read; default 2000 */
  readonly intakeHighWater: number;
  /** HL7E_INTAKE_MAX_PENDING: past this many waiting, answer AE/CE at once; default 10000 */
  readonly intakeMaxPending: number;
  /** HL7E_INTAKE_COMMIT_TIMEOUT_MS: a commit slower than this answers AE/CE; default 10000 */
  readonly intakeCommitTimeoutMs: number;
  /** HL7E_ADMIN_HOST: the admin API's address; default 127.0.0.1 (loopback only) */
  readonly adminHost: string;
  /** HL7E_ADMIN_PORT: the admin API's port; default 0 (any free port, written to <dataDir>/admin.json) */
  readonly adminPort: number;
  /** HL7E_ROLES_FILE: operators and their roles (admin/roles.ts); default ./roles.yaml, optional */
  readonly rolesFile: string;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): EngineEnv {
  const dataDir = resolve(env.HL7E_DATA_DIR ?? 'data');
  const queue = env.HL7E_QUEUE ?? 'redis';
  if (queue !== 'redis' && queue !== 'postgres') {
    throw new EngineError('CONFIG_INVALID', { detail: 'HL7E_QUEUE must be redis or postgres' });
  }
  const keyFile = env.HL7E_MASTER_KEY_FILE;
  return Object.freeze({
    dataDir,
    channelsDir: resolve(env.HL7E_CHANNELS_DIR ?? 'channels'),
    mappingsDir: resolve(defaultMappingsDir(env)),
    logLevel: env.HL7E_LOG_LEVEL ?? 'info',
    databaseUrl: env.HL7E_DATABASE_URL || undefined,
    archiveDir: resolve(env.HL7E_ARCHIVE_DIR ?? 'raw-archive'),
    kmsKeyId: env.HL7E_KMS_KEY_ID || undefined,
    kmsEndpoint: env.HL7E_KMS_ENDPOINT || undefined,
    masterKeyFile: keyFile
      ? isAbsolute(keyFile)
        ? keyFile
        : resolve(keyFile)
      : join(dataDir, 'master-key.json'),
    queue,
    redisUrl: env.HL7E_REDIS_URL ?? 'redis://127.0.0.1:6379',
    redisSentinels: hostPorts('HL7E_REDIS_SENTINELS', env.HL7E_REDIS_SENTINELS),
    redisCluster: hostPorts('HL7E_REDIS_CLUSTER', env.HL7E_REDIS_CLUSTER),
    redisSentinelName: env.HL7E_REDIS_SENTINEL_NAME || 'mymaster',
    queuePrefix: env.HL7E_QUEUE_PREFIX ?? 'hl7e',
    partitions: int(env, 'HL7E_PARTITIONS', 16, 1, 1024),
    processGatherMs: int(env, 'HL7E_PROCESS_GATHER_MS', 250, 0, 1_000),
    convertWorkers: int(env, 'HL7E_CONVERT_WORKERS', 1, 0, 64),
    reconcileIntervalMs: int(env, 'HL7E_RECONCILE_INTERVAL_MS', 30_000, 100),
    dataKeyMaxAgeMs: int(env, 'HL7E_DATA_KEY_MAX_AGE_MS', 24 * 3600_000, 1000),
    dataKeyMaxRecords: int(env, 'HL7E_DATA_KEY_MAX_RECORDS', 1_000_000, 1, 2 ** 31),
    dataKeyCacheMs: int(env, 'HL7E_DATA_KEY_CACHE_MS', 15 * 60_000, 1000),
    intakeMaxBatch: int(env, 'HL7E_INTAKE_MAX_BATCH', 512, 1, 10_000),
    intakeHighWater: int(env, 'HL7E_INTAKE_HIGH_WATER', 2000, 1),
    intakeMaxPending: int(env, 'HL7E_INTAKE_MAX_PENDING', 10_000, 1),
    intakeCommitTimeoutMs: int(env, 'HL7E_INTAKE_COMMIT_TIMEOUT_MS', 10_000, 100),
    adminHost: env.HL7E_ADMIN_HOST || '127.0.0.1',
    adminPort: int(env, 'HL7E_ADMIN_PORT', 0, 0, 65_535),
    rolesFile: resolve(env.HL7E_ROLES_FILE ?? 'roles.yaml'),
  });
}

/** `host:port,host:port` (HL7E_REDIS_SENTINELS, HL7E_REDIS_CLUSTER) → addresses; undefined when unset. */
export function hostPorts(
  name: string,
  text: string | undefined,
): { host: string; port: number }[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  return text.split(',').map((part) => {
    const m = /^\s*\[?([^\]\s]+?)\]?:(\d{1,5})\s*$/.exec(part);
    if (!m) {
      throw new EngineError('CONFIG_INVALID', {
        detail: `${name} must be host:port[,host:port…]`,
      });
    }
    return { host: m[1] as string, port: Number(m[2]) };
  });
}

function int(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < min || n > max) {
    throw new EngineError('CONFIG_INVALID', { detail: `${name} must be an integer from ${min} to ${max}` });
  }
  return n;
}

export function defaultChannelsDir(): string {
  return process.env.HL7E_CHANNELS_DIR ?? 'channels';
}

/** The site's mapping folder (HL7E_MAPPINGS_DIR, default ./mappings); it may not exist. */
export function defaultMappingsDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.HL7E_MAPPINGS_DIR || 'mappings';
}
