import type { DataKeyRepository, StoredDataKey } from '../archive/data-key-repository.js';
import type { Queryable } from './db.js';

interface Row {
  id: string;
  provider: string;
  master_key_id: string;
  wrapped_key: Buffer;
  created_at: Date;
  retired_at: Date | null;
  destroyed_at: Date | null;
}

const toKey = (r: Row): StoredDataKey => ({
  id: r.id,
  provider: r.provider,
  masterKeyId: r.master_key_id,
  wrappedKey: r.wrapped_key,
  createdAt: r.created_at,
  retiredAt: r.retired_at,
  destroyedAt: r.destroyed_at,
});

export class DataKeyRepo implements DataKeyRepository {
  constructor(private readonly db: Queryable) {}

  async insert(k: { id: string; provider: string; masterKeyId: string; wrappedKey: Buffer }): Promise<void> {
    await this.db.query(
      'INSERT INTO data_keys (id, provider, master_key_id, wrapped_key) VALUES ($1, $2, $3, $4)',
      [k.id, k.provider, k.masterKeyId, k.wrappedKey],
    );
  }

  async get(id: string): Promise<StoredDataKey | undefined> {
    const { rows } = await this.db.query<Row>('SELECT * FROM data_keys WHERE id = $1', [id]);
    return rows[0] ? toKey(rows[0]) : undefined;
  }

  async list(): Promise<StoredDataKey[]> {
    const { rows } = await this.db.query<Row>('SELECT * FROM data_keys ORDER BY created_at, id');
    return rows.map(toKey);
  }

  async rewrap(id: string, masterKeyId: string, wrappedKey: Buffer): Promise<void> {
    // Never onto a key retention destroyed meanwhile: that would restore what was shredded.
    await this.db.query(
      `UPDATE data_keys SET master_key_id = $2, wrapped_key = $3, rewrapped_at = now()
        WHERE id = $1 AND destroyed_at IS NULL`,
      [id, masterKeyId, wrappedKey],
    );
  }

  async retire(id: string): Promise<void> {
    await this.db.query('UPDATE data_keys SET retired_at = now() WHERE id = $1 AND retired_at IS NULL', [id]);
  }
}
