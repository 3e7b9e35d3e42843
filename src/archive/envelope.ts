import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { EngineError } from '../errors.js';

/** AES-256-GCM output: 12-byte random iv, 16-byte tag, ciphertext as long as the plaintext. */
export interface Sealed {
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

const ALGORITHM = 'aes-256-gcm';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** Encrypts under a 32-byte data key; `aad` is authenticated but not stored (see recordAad). */
export function seal(key: Buffer, plaintext: Buffer, aad: Buffer): Sealed {
  checkKey(key);
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv(ALGORITHM, key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(aad);
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv, tag: cipher.getAuthTag(), ciphertext };
}

/**
 * Decrypts and authenticates. Any failure (wrong key, other aad, altered bytes, malformed iv/tag) is
 * ARCHIVE_DECRYPT_FAILED naming only `record` (a location such as file@offset, never content).
 */
export function open(key: Buffer, sealed: Sealed, aad: Buffer, record: string): Buffer {
  checkKey(key);
  if (sealed.iv.length !== IV_BYTES || sealed.tag.length !== TAG_BYTES) {
    throw new EngineError('ARCHIVE_DECRYPT_FAILED', { record });
  }
  try {
    const decipher = createDecipheriv(ALGORITHM, key, sealed.iv, { authTagLength: TAG_BYTES });
    decipher.setAAD(aad);
    decipher.setAuthTag(sealed.tag);
    return Buffer.concat([decipher.update(sealed.ciphertext), decipher.final()]);
  } catch (err) {
    throw new EngineError('ARCHIVE_DECRYPT_FAILED', { record }, undefined, { cause: err });
  }
}

/**
 * The additional data of an archive record: binds it to its channel and message id, so a record
 * copied under another message's index entry fails authentication instead of decrypting as that message.
 */
export function recordAad(channel: string, messageId: string): Buffer {
  if (channel.includes('\0') || messageId.includes('\0'))
    throw new RangeError('channel or message id holds NUL');
  return Buffer.from(`hl7e-archive/1\0${channel}\0${messageId}`, 'utf8');
}

function checkKey(key: Buffer): void {
  if (key.length !== KEY_BYTES) throw new RangeError('data key must be 32 bytes');
}
