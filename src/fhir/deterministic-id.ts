/**
 * Name-based UUIDs for Bundle entry fullUrls and derived identifiers: the same message and mapping give
 * the same ids, so the same Bundle byte for byte (docs/mapping.md, "What the output is").
 *
 * Version 5 (SHA-1, RFC 4122 §4.3 / RFC 9562 §5.5) rather than version 8 with SHA-256 (RFC 9562 §5.8):
 * v5 is the standard name-based form every UUID library, database and FHIR server recognises, while v8's
 * layout is by definition vendor-specific and some validators still reject versions above 5. SHA-1's
 * collision weakness does not matter here: the id is not a security boundary, and its inputs are engine-made
 * (message SHA-256, mapping hash, entry position), not attacker-chosen bytes.
 */
import { createHash, type Hash } from 'node:crypto';

/** This engine's namespace UUID (random, fixed forever: changing it changes every id ever derived). */
export const HL7E_NAMESPACE = 'adc73406-a325-4a0b-adde-a186358625a5';
const NAMESPACE_BYTES = Buffer.from(HL7E_NAMESPACE.replaceAll('-', ''), 'hex');
/** The namespace's hash state, computed once and copied: a message makes dozens of ids (bench:map). */
const NAMESPACE_STATE = createHash('sha1').update(NAMESPACE_BYTES);

const HEX: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/**
 * A version-5 UUID over the parts, in this engine's namespace. Each part is hashed as
 * `<UTF-8 byte length>:<part>` so that part boundaries count: ('ab', 'c') and ('a', 'bc') differ.
 */
export function deterministicUuid(...parts: string[]): string {
  return format(hashed(NAMESPACE_STATE, parts).digest());
}

/**
 * `(key) => deterministicUuid(...prefix, key)` with the prefix hashed once: a message's ids share its
 * SHA-256 and mapping version, and only the entry key differs.
 */
export function uuidFactory(...prefix: string[]): (key: string) => string {
  const state = hashed(NAMESPACE_STATE, prefix);
  return (key) => format(hashed(state, [key]).digest());
}

/**
 * `(n) => uuid` for the n-th entry of one Bundle: one SHA-1 over the prefix, then n (below 2^48) XORed
 * into the last six bytes, version and variant bits untouched. Deterministic for the same message and
 * mapping, distinct within the Bundle, and as unlikely to meet another message's ids as a v5 id (the base
 * hash covers the message's SHA-256) — at no hash per entry (a hash per entry was a tenth of bench:map).
 */
export function sequentialUuids(...prefix: string[]): (n: number) => string {
  const base = hashed(NAMESPACE_STATE, prefix).digest();
  const bytes = Buffer.allocUnsafe(16);
  return (n) => {
    base.copy(bytes, 0, 0, 16);
    let v = n;
    for (let i = 15; i >= 10 && v > 0; i--) {
      bytes[i] = (bytes[i] as number) ^ (v & 0xff);
      v = Math.floor(v / 256);
    }
    return format(bytes);
  };
}

/** A copy of `state` with each part added as `<UTF-8 byte length>:<part>` (the state is copied, not used). */
function hashed(state: Hash, parts: readonly string[]): Hash {
  const h = state.copy();
  for (const part of parts) h.update(`${Buffer.byteLength(part, 'utf8')}:${part}`, 'utf8');
  return h;
}

/** A plain RFC 4122 version-5 UUID of `name` (UTF-8) in `namespace`. */
export function uuidV5(namespace: string, name: string): string {
  const ns = Buffer.from(namespace.replaceAll('-', ''), 'hex');
  if (ns.length !== 16) throw new TypeError('namespace is not a UUID');
  return format(createHash('sha1').update(ns).update(name, 'utf8').digest());
}

function format(b: Buffer): string {
  // RFC 4122 §4.3 steps 8-10: version 5 in the high nibble of byte 6, variant 10xx in byte 8.
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  let out = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += HEX[b[i]!];
  }
  return out;
}

/** `urn:uuid:` + `deterministicUuid(...parts)`, the form Bundle.entry.fullUrl takes. */
export function deterministicUrn(...parts: string[]): string {
  return `urn:uuid:${deterministicUuid(...parts)}`;
}
