import { randomBytes } from 'node:crypto';

/**
 * Unique message control ids for the messages the engine writes (ACKs, forwarded messages).
 * 20 characters at most, because MSH-10 is ST(20) up to v2.6: a time part (ms, base 36) that keeps ids
 * roughly sortable, a per-process random part so two engine processes never collide, and a counter so
 * ids made in the same millisecond differ.
 */
const processPart = randomBytes(4).readUInt32BE(0).toString(36).padStart(7, '0').slice(-5);
let counter = 0;

export function newControlId(now = Date.now()): string {
  counter = (counter + 1) % 36 ** 6;
  return `${now.toString(36).padStart(9, '0').slice(-9)}${processPart}${counter.toString(36).padStart(6, '0')}`;
}
