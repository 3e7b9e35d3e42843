import { createHash } from 'node:crypto';
import { EngineError } from '../errors.js';
import { ArchiveWriter, type RecordLocation, readRecordBatch } from './archive-files.js';
import { decodeRecord, encodeRecord } from './archive-record.js';
import { open, recordAad, seal } from './envelope.js';
import type { KeyRing } from './keyring.js';

export interface ArchiveInput {
  readonly channel: string;
  readonly messageId: string;
  readonly receivedAt: Date;
  readonly raw: Buffer;
}

export interface ArchivedRecord {
  readonly keyId: string;
  readonly location: RecordLocation;
}

/** What is needed to read one message back: the store row's archive columns. */
export interface ArchiveRef {
  readonly channel: string;
  readonly messageId: string;
  readonly location: RecordLocation;
  /** SHA-256 of the raw bytes as received, from the store; checked after decryption when given. */
  readonly sha256?: Buffer;
}

/**
 * The raw-message archive (DESIGN rule 3): every message as received, AES-256-GCM encrypted under the
 * keyring's current data key, bound to its channel and message id, appended to per-channel daily files.
 * Plaintext never touches the disk.
 */
export class RawArchive {
  readonly dir: string;
  readonly #keys: KeyRing;
  readonly #writer: ArchiveWriter;

  constructor(dir: string, keys: KeyRing, writerId?: string) {
    this.dir = dir;
    this.#keys = keys;
    this.#writer = new ArchiveWriter(dir, writerId);
  }

  /** Encrypts and appends a batch; resolves once every record is fsync'ed. */
  async write(batch: readonly ArchiveInput[]): Promise<ArchivedRecord[]> {
    const records = [];
    const keyIds: string[] = [];
    for (const r of batch) {
      const { id, key } = await this.#keys.encryptionKey();
      const sealed = seal(key, r.raw, recordAad(r.channel, r.messageId));
      keyIds.push(id);
      records.push({
        channel: r.channel,
        receivedAt: r.receivedAt,
        bytes: encodeRecord({ messageId: r.messageId, keyId: id, ...sealed }),
      });
    }
    const locations = await this.#writer.append(records);
    return locations.map((location, i) => ({ location, keyId: keyIds[i] as string }));
  }

  /** Reads, authenticates and decrypts one message; checks the digest when the ref carries one. */
  async read(ref: ArchiveRef): Promise<Buffer> {
    const [got] = await this.readMany([ref]);
    if (!got || 'error' in got) throw got?.error;
    return got.raw;
  }

  /**
   * `read` for many refs, each file opened once. Per-record outcome: a record that is unreadable,
   * fails authentication or its digest is an error in its slot and does not stop the others.
   */
  async readMany(refs: readonly ArchiveRef[]): Promise<({ raw: Buffer } | { error: unknown })[]> {
    const bytes = await readRecordBatch(
      this.dir,
      refs.map((r) => r.location),
    );
    const out: ({ raw: Buffer } | { error: unknown })[] = [];
    for (const [i, ref] of refs.entries()) {
      try {
        out.push({ raw: await this.#decrypt(ref, bytes[i] as Buffer | EngineError) });
      } catch (error) {
        out.push({ error });
      }
    }
    return out;
  }

  async #decrypt(ref: ArchiveRef, bytes: Buffer | EngineError): Promise<Buffer> {
    if (bytes instanceof EngineError) throw bytes;
    const where = `${ref.location.file}@${ref.location.offset}`;
    const record = decodeRecord(bytes, where);
    if (record.messageId !== ref.messageId)
      throw new EngineError('ARCHIVE_DECRYPT_FAILED', { record: where });
    const key = await this.#keys.decryptionKey(record.keyId);
    const plain = open(key, record, recordAad(ref.channel, ref.messageId), where);
    if (ref.sha256 && !createHash('sha256').update(plain).digest().equals(ref.sha256)) {
      throw new EngineError('ARCHIVE_DIGEST_MISMATCH', { record: where });
    }
    return plain;
  }

  async close(): Promise<void> {
    await this.#writer.close();
  }
}
