import { createHmac, randomInt } from 'node:crypto';
import type { OrderingPolicy } from '../channels/channel-config.js';
import type { Hl7Message } from '../hl7/index.js';

/**
 * Which ordering partition a message belongs to (DESIGN rule 5). Messages of one channel sharing an
 * ordering key land in the same partition, and a partition is processed strictly in arrival order
 * (pipeline/processor.ts); different partitions run in parallel. Only the partition number is kept:
 * the key itself (a patient identifier) is PHI and is never stored or queued.
 */
export function partitionFor(
  channel: string,
  policy: OrderingPolicy,
  message: Hl7Message,
  partitions: number,
): number {
  const key = orderingKey(policy, message);
  // No key: nothing to keep in order with, so spread the load.
  if (key === undefined) return randomInt(partitions);
  return fnv1a(`${channel}\u0000${key}`) % partitions;
}

/**
 * The delivery ordering key of a message (deliveries.order_key): HMAC-SHA256 under the engine's
 * ordering secret, cut to a signed 64-bit integer (as decimal text, for a bigint column). Keyed, because
 * an unkeyed hash of an MRN is as good as the MRN to anyone holding a list of MRNs. Undefined when the
 * channel keeps no order or the message has no key: such deliveries wait for nothing.
 */
export function deliveryOrderKey(
  channel: string,
  policy: OrderingPolicy,
  message: Hl7Message,
  secret: Uint8Array,
): string | undefined {
  const key = orderingKey(policy, message);
  if (key === undefined) return undefined;
  return createHmac('sha256', secret).update(`${channel}\u0000${key}`).digest().readBigInt64BE(0).toString();
}

function orderingKey(policy: OrderingPolicy, message: Hl7Message): string | undefined {
  if (policy.mode === 'none') return undefined;
  try {
    const key = message.getRaw(policy.key) ?? '';
    return key === '' ? undefined : key;
  } catch {
    return undefined;
  }
}

/** FNV-1a 32-bit: stable across processes and releases (partitions must agree between engines). */
export function fnv1a(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}
