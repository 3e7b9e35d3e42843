import { randomUUID } from 'node:crypto';

/**
 * A minimal original-mode AA for tests of the transport: MSH fields read by splitting the first segment
 * on '|'. Kept behind this one function so it can be swapped for the engine's ACK builder
 * (src/hl7/ack-builder.ts) without touching the tests.
 */
export function ackFor(frame: Buffer): Buffer {
  const msh = frame.toString('utf8').split(/\r\n|\r|\n/, 1)[0] ?? '';
  // fields[i] is MSH-(i+1): MSH-1 is the field separator itself, so MSH-3 sits at index 2.
  const fields = msh.split('|');
  const f = (n: number) => fields[n - 1] ?? '';
  const event = f(9).split('^')[1] ?? '';
  const now = new Date().toISOString().replace(/\D/g, '').slice(0, 14);
  const controlId = randomUUID().replaceAll('-', '').slice(0, 20);
  const ack =
    `MSH|^~\\&|${f(5)}|${f(6)}|${f(3)}|${f(4)}|${now}||ACK^${event}^ACK|${controlId}|P|${f(12)}\r` +
    `MSA|AA|${f(10)}\r`;
  return Buffer.from(ack, 'utf8');
}

/** MSH-10 of a message or ACK, and MSA-2 when there is an MSA segment: enough to pair ACKs in tests. */
export function controlIds(message: Buffer | string): { msh10: string; msa1?: string; msa2?: string } {
  const segments = message.toString().split(/\r\n|\r|\n/);
  const msh = segments[0]?.split('|') ?? [];
  const msa = segments.find((s) => s.startsWith('MSA|'))?.split('|');
  return {
    msh10: msh[9] ?? '',
    ...(msa ? { msa1: msa[1] ?? '', msa2: msa[2] ?? '' } : {}),
  };
}
