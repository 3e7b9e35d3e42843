import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type EngineError, isEngineError } from '../errors.js';
import { open, recordAad, seal } from './envelope.js';

const key = randomBytes(32);
const message = Buffer.from(
  'MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240101120000||ORU^R01|MSG00001|P|2.5.1\r',
  'latin1',
);
const messageId = '0190c3a2-5b7e-7c1d-9a4f-3e2b1c0d9e8f';

describe('envelope', () => {
  it('seals with a fresh 12-byte iv and a 16-byte tag, and opens back', () => {
    const aad = recordAad('lab', messageId);
    const a = seal(key, message, aad);
    const b = seal(key, message, aad);
    expect(a.iv).toHaveLength(12);
    expect(a.tag).toHaveLength(16);
    expect(a.ciphertext).toHaveLength(message.length);
    expect(a.iv.equals(b.iv)).toBe(false);
    expect(a.ciphertext.equals(b.ciphertext)).toBe(false);
    expect(a.ciphertext.includes(Buffer.from('MSH|'))).toBe(false);
    expect(open(key, a, aad, 'lab/2024-01-01.w.h7a@0').equals(message)).toBe(true);
  });

  it('binds the record to its channel and message id', () => {
    expect(recordAad('lab', messageId).toString('latin1')).toBe(`hl7e-archive/1\0lab\0${messageId}`);
    const sealed = seal(key, message, recordAad('lab', messageId));
    for (const aad of [
      recordAad('adt', messageId),
      recordAad('lab', '0190c3a2-5b7e-7c1d-9a4f-3e2b1c0d9e80'),
      recordAad('lab', messageId.toUpperCase()),
    ]) {
      const err = (() => {
        try {
          open(key, sealed, aad, 'f@1');
        } catch (e) {
          return e;
        }
      })();
      expect(isEngineError(err, 'ARCHIVE_DECRYPT_FAILED')).toBe(true);
    }
    expect(() => recordAad('la\0b', messageId)).toThrow(RangeError);
  });

  it('fails authentication on a wrong key or any altered byte, naming only the record', () => {
    const aad = recordAad('lab', messageId);
    const sealed = seal(key, message, aad);
    const attempts = [
      () => open(randomBytes(32), sealed, aad, 'lab/x.h7a@42'),
      () => open(key, { ...sealed, ciphertext: flip(sealed.ciphertext, 5) }, aad, 'lab/x.h7a@42'),
      () => open(key, { ...sealed, tag: flip(sealed.tag, 0) }, aad, 'lab/x.h7a@42'),
      () => open(key, { ...sealed, iv: flip(sealed.iv, 11) }, aad, 'lab/x.h7a@42'),
      () => open(key, { ...sealed, tag: sealed.tag.subarray(0, 12) }, aad, 'lab/x.h7a@42'),
    ];
    for (const attempt of attempts) {
      let err: unknown;
      try {
        attempt();
      } catch (e) {
        err = e;
      }
      expect(isEngineError(err, 'ARCHIVE_DECRYPT_FAILED')).toBe(true);
      expect((err as EngineError).details).toEqual({ record: 'lab/x.h7a@42' });
      expect((err as EngineError).message).not.toContain('MSH');
    }
  });

  it('rejects keys that are not 32 bytes', () => {
    expect(() => seal(randomBytes(16), message, Buffer.alloc(0))).toThrow(RangeError);
  });
});

function flip(b: Buffer, at: number): Buffer {
  const c = Buffer.from(b);
  c[at]! ^= 1;
  return c;
}
