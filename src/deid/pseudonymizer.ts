import { createHmac } from 'node:crypto';

/** Crockford's base32 alphabet: no I, L, O, U — nothing to misread, nothing an HL7 delimiter. */
const BASE32 = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const MIN_KEY_BYTES = 32;

/**
 * Stable pseudonyms for one export: HMAC-SHA-256 of the value under a key the caller makes at random for
 * that export and never stores. Equal values get equal pseudonyms (so the relations between messages
 * stay visible); without the key a pseudonym cannot be traced back or matched with another export's.
 *
 * A value of digits gets 15 digits (an id field typed NM still holds a number; 15 fits CX-1's length), any
 * other value 12 base32 characters (60 bits). Both are long enough that two values of one export do not
 * collide in practice, and neither looks like an SSN or a phone number.
 */
export class Pseudonymizer {
  readonly #key: Buffer;

  constructor(key: Uint8Array) {
    if (key.length < MIN_KEY_BYTES)
      throw new RangeError(`pseudonym key must be at least ${MIN_KEY_BYTES} bytes`);
    this.#key = Buffer.from(key);
  }

  of(value: string): string {
    const digest = createHmac('sha256', this.#key).update(value, 'utf8').digest();
    if (/^\d+$/.test(value)) {
      return (digest.readBigUInt64BE(0) % 10n ** 15n).toString().padStart(15, '0');
    }
    let bits = digest.readBigUInt64BE(0) >> 4n;
    let out = '';
    for (let i = 0; i < 12; i++) {
      out = BASE32[Number(bits & 31n)] + out;
      bits >>= 5n;
    }
    return out;
  }
}
