import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { Redis } from 'ioredis';
import type pg from 'pg';

/** One place data can rest or leave by, and what is there. */
export interface Haystack {
  /** Where: `redis hash bull:…:12`, `db messages.sender`, `archive corpus/000001.h7a`. */
  readonly source: string;
  /** Text, or bytes (files, bytea), which the scanner reads with its rule for bytes (MIN_BINARY_CHARS). */
  readonly data: string | Uint8Array;
}

/**
 * Every Redis key matching `pattern` with its value, whatever the type (BullMQ keeps jobs in hashes,
 * queues in lists and sorted sets, events in streams, ids in strings and sets). One haystack per key,
 * holding the key name too.
 */
export async function redisHaystacks(redis: Redis, pattern: string): Promise<Haystack[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  const out: Haystack[] = [];
  for (const key of keys.sort()) {
    const type = await redis.type(key);
    let value: unknown;
    if (type === 'string') value = await redis.get(key);
    else if (type === 'hash') value = await redis.hgetall(key);
    else if (type === 'list') value = await redis.lrange(key, 0, -1);
    else if (type === 'set') value = await redis.smembers(key);
    else if (type === 'zset') value = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'stream') value = await redis.xrange(key, '-', '+');
    else throw new Error(`redis key ${key} of unexpected type ${type}`);
    out.push({ source: `redis ${type} ${key}`, data: `${key}\n${JSON.stringify(value)}` });
  }
  return out;
}

/**
 * Every column of every table in the database's own schemas, one haystack per column: bytea as its
 * bytes (ciphertext must stay unreadable), everything else as the JSON of its values.
 */
export async function databaseHaystacks(db: pg.Pool): Promise<Haystack[]> {
  const { rows: columns } = await db.query<{ schema: string; table: string; column: string; type: string }>(
    `SELECT c.table_schema AS schema, c.table_name AS table, c.column_name AS column, c.data_type AS type
       FROM information_schema.columns c
       JOIN information_schema.tables t USING (table_schema, table_name)
      WHERE t.table_type = 'BASE TABLE' AND c.table_schema NOT IN ('pg_catalog', 'information_schema')
      ORDER BY 1, 2, c.ordinal_position`,
  );
  const out: Haystack[] = [];
  for (const c of columns) {
    const ident = (s: string) => `"${s.replaceAll('"', '""')}"`;
    const { rows } = await db.query<{ v: unknown }>(
      `SELECT ${ident(c.column)} AS v FROM ${ident(c.schema)}.${ident(c.table)}`,
    );
    const source = `db ${c.schema === 'public' ? '' : `${c.schema}.`}${c.table}.${c.column}`;
    if (c.type === 'bytea') {
      const parts = rows.map((r) => r.v).filter((v): v is Buffer => Buffer.isBuffer(v));
      out.push({ source, data: Buffer.concat(parts.flatMap((p) => [p, Buffer.from('\n')])) });
    } else {
      out.push({ source, data: rows.map((r) => JSON.stringify(r.v)).join('\n') });
    }
  }
  return out;
}

/** Every file under `dir`, as bytes; `label` names the folder in reports. */
export function fileHaystacks(dir: string, label: string): Haystack[] {
  if (!existsSync(dir)) return [];
  const out: Haystack[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else out.push({ source: `${label} ${relative(dir, path)}`, data: readFileSync(path) });
    }
  };
  walk(dir);
  return out;
}

/**
 * Compressed size over size. Ciphertext does not compress (≈ 1); HL7 and JSON text compress to a
 * third or less, so a ratio near 1 says the bytes are not plaintext (nor merely encoded plaintext).
 */
export function compressionRatio(bytes: Uint8Array): number {
  return bytes.length === 0 ? 1 : deflateSync(bytes).length / bytes.length;
}
