import { open, type Sealed, seal } from './envelope.js';
import type { KeyRing } from './keyring.js';

/** Which body of which attempt: bound into the encryption, so a body moved to another row fails to open. */
export interface BodyRef {
  readonly deliveryId: string;
  readonly attempt: number;
  readonly kind: 'request' | 'response';
}

/** A body as stored (delivery_bodies): the sealed bytes and the data key that sealed them. */
export interface SealedBody extends Sealed {
  readonly kind: 'request' | 'response';
  readonly keyId: string;
}

function bodyAad(ref: BodyRef): Buffer {
  return Buffer.from(`hl7e-delivery/1\0${ref.deliveryId}\0${ref.attempt}\0${ref.kind}`, 'utf8');
}

/**
 * What a delivery sent and what the destination answered may both carry PHI (a Bundle, an
 * OperationOutcome echoing it, an ACK): they are kept only like this, AES-256-GCM under the keyring's
 * current data key (DESIGN rule 3), for `hl7e messages show --fhir` and the replay diff.
 */
export async function sealBody(keys: KeyRing, ref: BodyRef, text: string): Promise<SealedBody> {
  const { id, key } = await keys.encryptionKey();
  const sealed = seal(key, Buffer.from(text, 'utf8'), bodyAad(ref));
  return { kind: ref.kind, keyId: id, ...sealed };
}

export async function openBody(keys: KeyRing, ref: BodyRef, sealed: SealedBody): Promise<string> {
  const key = await keys.decryptionKey(sealed.keyId);
  const record = `delivery ${ref.deliveryId} attempt ${ref.attempt} ${ref.kind}`;
  return open(key, sealed, bodyAad(ref), record).toString('utf8');
}
