import { EngineError } from '../errors.js';

/**
 * One archive record on disk. Self-delimiting, so a file can be walked without its index:
 *
 *   0  "H7AR"            magic
 *   4  u8   version (1)
 *   5  u8   key id length n
 *   6  16 B message id (uuid, binary)
 *  22  12 B AES-GCM iv
 *  34  16 B AES-GCM tag
 *  50  u32 ciphertext length (big-endian)
 *  54  n B  data key id (ASCII)
 *  54+n     ciphertext
 *
 * The channel and message id are bound into the GCM additional data (envelope.recordAad), so a record
 * copied to another message's index entry fails authentication instead of decrypting as that message.
 */
export interface ArchiveRecord {
  readonly messageId: string;
  readonly keyId: string;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly ciphertext: Buffer;
}

const MAGIC = Buffer.from('H7AR', 'latin1');
const VERSION = 1;
export const RECORD_HEADER_BYTES = 54;

export function encodeRecord(r: ArchiveRecord): Buffer {
  const keyId = Buffer.from(r.keyId, 'latin1');
  if (keyId.length > 255 || r.iv.length !== 12 || r.tag.length !== 16)
    throw new RangeError('bad record parts');
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + keyId.length + r.ciphertext.length);
  MAGIC.copy(out, 0);
  out.writeUInt8(VERSION, 4);
  out.writeUInt8(keyId.length, 5);
  uuidToBytes(r.messageId).copy(out, 6);
  r.iv.copy(out, 22);
  r.tag.copy(out, 34);
  out.writeUInt32BE(r.ciphertext.length, 50);
  keyId.copy(out, RECORD_HEADER_BYTES);
  r.ciphertext.copy(out, RECORD_HEADER_BYTES + keyId.length);
  return out;
}

/** Total length of the record that starts at `buf[0]`, or undefined if the header is incomplete/invalid. */
export function recordLength(buf: Buffer): number | undefined {
  if (buf.length < RECORD_HEADER_BYTES || !buf.subarray(0, 4).equals(MAGIC) || buf[4] !== VERSION)
    return undefined;
  return RECORD_HEADER_BYTES + buf.readUInt8(5) + buf.readUInt32BE(50);
}

/** `where` names the record in errors (file@offset) — never content. */
export function decodeRecord(buf: Buffer, where: string): ArchiveRecord {
  const len = recordLength(buf);
  if (len === undefined || len !== buf.length)
    throw new EngineError('ARCHIVE_READ_FAILED', { record: where });
  const n = buf.readUInt8(5);
  return {
    messageId: bytesToUuid(buf.subarray(6, 22)),
    iv: buf.subarray(22, 34),
    tag: buf.subarray(34, 50),
    keyId: buf.toString('latin1', RECORD_HEADER_BYTES, RECORD_HEADER_BYTES + n),
    ciphertext: buf.subarray(RECORD_HEADER_BYTES + n),
  };
}

function uuidToBytes(id: string): Buffer {
  const hex = id.replace(/-/g, '');
  if (!/^[0-9a-f]{32}$/i.test(hex)) throw new RangeError('message id is not a uuid');
  return Buffer.from(hex, 'hex');
}

function bytesToUuid(b: Buffer): string {
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
