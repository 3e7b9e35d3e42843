/**
 * Where data keys come from: a master key held by a key provider (AWS KMS, or a local key file for
 * development) wraps each data key; only the wrapped form is ever stored (data-key-repository.ts).
 * Plaintext data keys live in process memory only (keyring.ts).
 */

/** A data key as the provider wrapped it, and which master key version did the wrapping. */
export interface WrappedKey {
  readonly masterKeyId: string;
  readonly wrappedKey: Buffer;
}

/**
 * Bound into the wrap (KMS EncryptionContext / GCM additional data): unwrapping needs the same context,
 * so a wrapped key moved to another row does not unwrap. Ids only — never message content.
 */
export type KeyContext = Readonly<Record<string, string>>;

export interface KeyProvider {
  readonly name: 'aws-kms' | 'local';
  /** A fresh 32-byte AES-256 data key, in plaintext and wrapped under the current master key. */
  generateDataKey(context: KeyContext): Promise<WrappedKey & { plaintext: Buffer }>;
  decryptDataKey(wrapped: WrappedKey, context: KeyContext): Promise<Buffer>;
  /** The same data key, wrapped under the current master key version. */
  rewrapDataKey(wrapped: WrappedKey, context: KeyContext): Promise<WrappedKey>;
  /** Makes a new master key version current; earlier versions stay, so earlier wraps still unwrap. */
  rotateMasterKey(): Promise<{ masterKeyId: string }>;
  /** Identifies the master key version new data keys are wrapped under (re-read cheaply: local file mtime). */
  currentMasterKeyId(): Promise<string>;
  close(): Promise<void>;
}
