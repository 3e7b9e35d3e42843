import type { PeerCertificate } from 'node:tls';
import { EngineError } from '../errors.js';

export interface ClientCertAllowlistOptions {
  /**
   * Subject common names (CN), matched exactly and case-sensitively. A certificate whose subject carries
   * no CN, or more than one, matches none.
   */
  readonly subjects?: readonly string[];
  /**
   * SHA-256 fingerprints of whole certificates as `openssl x509 -noout -fingerprint -sha256` prints them
   * (`AB:CD:…`); case and colons do not matter.
   */
  readonly fingerprints?: readonly string[];
}

/**
 * Which of the client certificates the listener's CA verified may send on a channel (mTLS allowlist).
 * Verification against the CA comes first, always: this only narrows who, among the CA's certificates,
 * is served — a CA often signs for more systems than one channel should hear from.
 */
export class ClientCertAllowlist {
  readonly #subjects: ReadonlySet<string>;
  readonly #fingerprints: ReadonlySet<string>;

  /** @throws EngineError CONFIG_INVALID for an entry that is not a fingerprint, or a list naming no one. */
  constructor(options: ClientCertAllowlistOptions) {
    this.#subjects = new Set(options.subjects ?? []);
    this.#fingerprints = new Set(
      (options.fingerprints ?? []).map((f, i) => {
        const normal = normalizeFingerprint(f);
        if (!normal) {
          throw new EngineError('CONFIG_INVALID', {
            detail: `allowClients.fingerprints[${i}] is not a SHA-256 fingerprint`,
          });
        }
        return normal;
      }),
    );
    if (this.#subjects.size === 0 && this.#fingerprints.size === 0) {
      throw new EngineError('CONFIG_INVALID', { detail: 'allowClients names no subject and no fingerprint' });
    }
  }

  allows(cert: Pick<PeerCertificate, 'subject' | 'fingerprint256'>): boolean {
    const fingerprint = normalizeFingerprint(cert.fingerprint256 ?? '');
    if (fingerprint && this.#fingerprints.has(fingerprint)) return true;
    const cn = subjectCommonName(cert);
    return cn !== undefined && this.#subjects.has(cn);
  }
}

/** `ab:cd:…` or `ABCD…` (64 hex digits) → `AB:CD:…` as node's `fingerprint256`; undefined otherwise. */
export function normalizeFingerprint(text: string): string | undefined {
  const hex = text.replace(/[\s:]/g, '').toUpperCase();
  if (!/^[0-9A-F]{64}$/.test(hex)) return undefined;
  return hex.match(/../g)?.join(':');
}

/** The subject's single CN; undefined when it has none or several (ambiguous, so never matched). */
export function subjectCommonName(cert: Pick<PeerCertificate, 'subject'>): string | undefined {
  const cn: unknown = cert.subject?.CN;
  return typeof cn === 'string' ? cn : undefined;
}
