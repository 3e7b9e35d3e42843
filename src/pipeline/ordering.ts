import { randomInt } from 'node:crypto';
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
  if (policy.mode === 'none') return randomInt(partitions);
  let key = '';
  try {
    key = message.getRaw(policy.key) ?? '';
  } catch {
    key = '';
  }
  // No key: nothing to keep in order with, so spread the load.
  if (key === '') return randomInt(partitions);
  return fnv1a(`${channel}\u0000${key}`) % partitions;
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
