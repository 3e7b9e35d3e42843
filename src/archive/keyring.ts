import { randomBytes } from 'node:crypto';
import { EngineError } from '../errors.js';
import type { DataKeyRepository } from './data-key-repository.js';
import type { KeyContext, KeyProvider } from './key-provider.js';

export interface KeyRingOptions {
  readonly provider: KeyProvider;
  readonly repo: DataKeyRepository;
  /** A data key encrypts new records for at most this long… */
  readonly maxAgeMs: number;
  /** …and for at most this many records, whichever comes first. */
  readonly maxRecords: number;
  /** A decrypted data key stays in memory this long after its last use. */
  readonly cacheMs: number;
  /** How often the provider's current master key is checked (default 5 s); a change rotates the data key. */
  readonly masterCheckMs?: number;
  /** Clock (ms); tests inject one. */
  readonly now?: () => number;
  /** Failures that do not fail a caller (a background master-key check, retiring an old key). */
  readonly onError?: (err: unknown) => void;
}

interface CurrentKey {
  readonly id: string;
  readonly key: Buffer;
  readonly masterKeyId: string;
  readonly createdAt: number;
  count: number;
}

interface CachedKey {
  readonly key: Buffer;
  lastUsed: number;
}

const DEFAULT_MASTER_CHECK_MS = 5_000;
const SWEEP_MAX_MS = 60_000;

/** The context every data key is wrapped with: binds a wrapped key to its own id. */
export function dataKeyContext(id: string): KeyContext {
  return { 'hl7e:data-key': id };
}

/**
 * Data keys for envelope encryption. One current data key encrypts new records and is replaced after
 * maxAgeMs, after maxRecords records, or when the provider's master key changed. Wrapped keys persist in
 * the repository; plaintext keys exist only here, in memory, and are zeroed when they leave it.
 *
 * Keys returned by encryptionKey/decryptionKey are the ring's own buffers: use them at once (seal/open)
 * and do not keep or modify them — the ring zeroes them on eviction and close.
 */
export class KeyRing {
  readonly #provider: KeyProvider;
  readonly #repo: DataKeyRepository;
  readonly #maxAgeMs: number;
  readonly #maxRecords: number;
  readonly #cacheMs: number;
  readonly #masterCheckMs: number;
  readonly #now: () => number;
  readonly #onError: (err: unknown) => void;
  readonly #cache = new Map<string, CachedKey>();
  readonly #loading = new Map<string, Promise<Buffer>>();
  readonly #sweeper: NodeJS.Timeout;
  #current: CurrentKey | undefined;
  #rotation: Promise<CurrentKey> | undefined;
  #masterCheck: Promise<boolean> | undefined;
  #lastMasterCheck = 0;
  /** Set by a master-key check to the id of the data key it found wrapped under an older master key. */
  #masterChanged: string | undefined;
  #closed = false;

  constructor(opts: KeyRingOptions) {
    if (!(opts.maxRecords >= 1) || !(opts.maxAgeMs > 0) || !(opts.cacheMs >= 0)) {
      throw new RangeError('keyring limits must be positive');
    }
    this.#provider = opts.provider;
    this.#repo = opts.repo;
    this.#maxAgeMs = opts.maxAgeMs;
    this.#maxRecords = opts.maxRecords;
    this.#cacheMs = opts.cacheMs;
    this.#masterCheckMs = opts.masterCheckMs ?? DEFAULT_MASTER_CHECK_MS;
    this.#now = opts.now ?? Date.now;
    this.#onError = opts.onError ?? (() => {});
    this.#sweeper = setInterval(() => this.#sweep(), Math.max(1_000, Math.min(opts.cacheMs, SWEEP_MAX_MS)));
    this.#sweeper.unref();
  }

  /** The data key for the next record (counted as one record); rotates first when the key is due. */
  async encryptionKey(): Promise<{ id: string; key: Buffer }> {
    for (;;) {
      this.#assertOpen();
      const cur = this.#current;
      if (cur && !this.#rotation && !this.#due(cur)) {
        cur.count += 1;
        this.#maybeCheckMaster(cur);
        return { id: cur.id, key: cur.key };
      }
      // Everyone who finds the key due (or a rotation under way) waits for the same one generation.
      await (this.#rotation ?? this.#rotate());
    }
  }

  /** The plaintext data key `id` (for decrypting a record): from memory, else unwrapped by the provider. */
  async decryptionKey(id: string): Promise<Buffer> {
    this.#assertOpen();
    const now = this.#now();
    this.#sweep(now);
    if (this.#current?.id === id) return this.#current.key;
    const cached = this.#cache.get(id);
    if (cached) {
      cached.lastUsed = now;
      return cached.key;
    }
    let loading = this.#loading.get(id);
    if (!loading) {
      loading = this.#load(id).finally(() => this.#loading.delete(id));
      this.#loading.set(id, loading);
    }
    return loading;
  }

  /**
   * A long-lived secret with a fixed id (e.g. the ordering-key HMAC secret), kept like a data key:
   * wrapped by the master key in the repository, rewrapped on rotation, never used to encrypt records
   * (it is stored retired). The first engine to ask creates it; all others unwrap the same one. Returns
   * the caller's own copy (the ring zeroes its buffers on eviction).
   */
  async namedSecret(id: string): Promise<Buffer> {
    this.#assertOpen();
    if (!(await this.#repo.get(id))) {
      const generated = await this.#provider.generateDataKey(dataKeyContext(id));
      generated.plaintext.fill(0);
      try {
        await this.#repo.insert({
          id,
          provider: this.#provider.name,
          masterKeyId: generated.masterKeyId,
          wrappedKey: generated.wrappedKey,
        });
        await this.#repo.retire(id);
      } catch (err) {
        // Another engine created it first: use theirs. Anything else is a real failure.
        if (!(await this.#repo.get(id))) throw err;
      }
    }
    return Buffer.from(await this.decryptionKey(id));
  }

  /** Replaces the current data key now (shares a rotation already under way). */
  async rotateDataKey(): Promise<{ id: string }> {
    this.#assertOpen();
    const next = await (this.#rotation ?? this.#rotate());
    return { id: next.id };
  }

  /**
   * After a master key rotation: rewraps every stored data key that is not yet under the provider's
   * current master key (the data keys themselves, and so the archive, are unchanged). Keys of another
   * provider, and keys retention destroyed, are counted in total but left alone.
   */
  async rewrapAll(): Promise<{ rewrapped: number; total: number }> {
    this.#assertOpen();
    const current = await this.#provider.currentMasterKeyId();
    const keys = await this.#repo.list();
    let rewrapped = 0;
    for (const k of keys) {
      if (k.destroyedAt || k.provider !== this.#provider.name || k.masterKeyId === current) continue;
      const w = await this.#provider.rewrapDataKey(
        { masterKeyId: k.masterKeyId, wrappedKey: k.wrappedKey },
        dataKeyContext(k.id),
      );
      await this.#repo.rewrap(k.id, w.masterKeyId, w.wrappedKey);
      rewrapped += 1;
    }
    return { rewrapped, total: keys.length };
  }

  /**
   * Checks the provider's current master key now (also done in the background every masterCheckMs);
   * true when it differs from the one the current data key is wrapped under, so the next
   * encryptionKey() rotates.
   */
  checkMasterKey(): Promise<boolean> {
    this.#assertOpen();
    if (!this.#masterCheck) {
      this.#lastMasterCheck = this.#now();
      this.#masterCheck = this.#provider
        .currentMasterKeyId()
        .then((id) => {
          const cur = this.#current;
          if (cur && id !== cur.masterKeyId) {
            this.#masterChanged = cur.id;
            return true;
          }
          return false;
        })
        .finally(() => {
          this.#masterCheck = undefined;
        });
    }
    return this.#masterCheck;
  }

  /** The id of the data key this ring encrypts new records with; undefined before its first record. */
  get currentKeyId(): string | undefined {
    return this.#current?.id;
  }

  /**
   * Zeroes and drops a key from memory after retention destroyed it, so this process stops opening its
   * records at once (other processes drop it when their cache expires: HL7E_DATA_KEY_CACHE_MS).
   */
  forget(id: string): void {
    const cached = this.#cache.get(id);
    if (!cached) return;
    this.#cache.delete(id);
    cached.key.fill(0);
  }

  /** Zeroes every key in memory; the ring is unusable afterwards. Does not close the provider. */
  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweeper);
    this.#current?.key.fill(0);
    this.#current = undefined;
    for (const c of this.#cache.values()) c.key.fill(0);
    this.#cache.clear();
  }

  #due(cur: CurrentKey): boolean {
    return (
      cur.count >= this.#maxRecords ||
      this.#now() - cur.createdAt >= this.#maxAgeMs ||
      this.#masterChanged === cur.id
    );
  }

  #maybeCheckMaster(cur: CurrentKey): void {
    if (
      this.#masterCheck ||
      this.#now() - Math.max(this.#lastMasterCheck, cur.createdAt) < this.#masterCheckMs
    ) {
      return;
    }
    // In the background: records keep using the current key (still valid) while the provider answers.
    this.checkMasterKey().catch((err: unknown) => this.#onError(err));
  }

  #rotate(): Promise<CurrentKey> {
    const run = this.#generate().finally(() => {
      this.#rotation = undefined;
    });
    this.#rotation = run;
    return run;
  }

  async #generate(): Promise<CurrentKey> {
    const id = `dk_${randomBytes(16).toString('hex')}`;
    const generated = await this.#provider.generateDataKey(dataKeyContext(id));
    try {
      await this.#repo.insert({
        id,
        provider: this.#provider.name,
        masterKeyId: generated.masterKeyId,
        wrappedKey: generated.wrappedKey,
      });
    } catch (err) {
      generated.plaintext.fill(0);
      throw err;
    }
    if (this.#closed) {
      generated.plaintext.fill(0);
      this.#assertOpen();
    }
    const now = this.#now();
    const old = this.#current;
    const next: CurrentKey = {
      id,
      key: generated.plaintext,
      masterKeyId: generated.masterKeyId,
      createdAt: now,
      count: 0,
    };
    this.#current = next;
    this.#lastMasterCheck = now;
    if (old) {
      // Records just written under the old key are read back soon (processing): keep it for decryption.
      this.#cache.set(old.id, { key: old.key, lastUsed: now });
      await this.#repo.retire(old.id).catch((err: unknown) => this.#onError(err));
    }
    return next;
  }

  async #load(id: string): Promise<Buffer> {
    const stored = await this.#repo.get(id);
    if (!stored) throw new EngineError('KEY_UNKNOWN', { keyId: id });
    // Crypto-shredded: the wrapped bytes are gone, so a record from a backup copy stays unreadable.
    if (stored.destroyedAt) throw new EngineError('KEY_DESTROYED', { keyId: id });
    if (stored.provider !== this.#provider.name) {
      throw new EngineError('KEY_PROVIDER_REFUSED', {
        provider: this.#provider.name,
        reason: 'OtherProvider',
      });
    }
    const key = await this.#provider.decryptDataKey(
      { masterKeyId: stored.masterKeyId, wrappedKey: stored.wrappedKey },
      dataKeyContext(id),
    );
    if (this.#closed) {
      key.fill(0);
      this.#assertOpen();
    }
    const existing = this.#cache.get(id);
    if (existing) {
      key.fill(0);
      existing.lastUsed = this.#now();
      return existing.key;
    }
    this.#cache.set(id, { key, lastUsed: this.#now() });
    return key;
  }

  /** Evicts (and zeroes) keys unused for cacheMs; runs on a timer and on every decryptionKey call. */
  #sweep(now = this.#now()): void {
    for (const [id, c] of this.#cache) {
      if (now - c.lastUsed > this.#cacheMs) {
        this.#cache.delete(id);
        c.key.fill(0);
      }
    }
  }

  #assertOpen(): void {
    if (this.#closed)
      throw new EngineError('KEY_PROVIDER_REFUSED', { provider: this.#provider.name, reason: 'Closed' });
  }
}
