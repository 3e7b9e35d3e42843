/** A data key as stored: only ever wrapped (encrypted) by the key provider's master key. */
export interface StoredDataKey {
  readonly id: string;
  readonly provider: string;
  /** The master key (KMS key ARN/id, or local key version) that wrapped it. */
  readonly masterKeyId: string;
  readonly wrappedKey: Buffer;
  readonly createdAt: Date;
  readonly retiredAt: Date | null;
  /** Set when retention destroyed it (crypto-shredding): wrappedKey is then empty. */
  readonly destroyedAt?: Date | null;
}

/** Where wrapped data keys persist (implemented by store/data-key-repo.ts; archive/ does no SQL). */
export interface DataKeyRepository {
  insert(key: { id: string; provider: string; masterKeyId: string; wrappedKey: Buffer }): Promise<void>;
  get(id: string): Promise<StoredDataKey | undefined>;
  list(): Promise<StoredDataKey[]>;
  /** Replaces the wrapping after a master-key rotation; the data key itself is unchanged. */
  rewrap(id: string, masterKeyId: string, wrappedKey: Buffer): Promise<void>;
  retire(id: string): Promise<void>;
}
