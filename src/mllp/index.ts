/** MLLP transport: framing, the listener (net/tls, allowlists, limits) and the sender. */
export { CidrAllowlist } from './cidr-allowlist.js';
export {
  ClientCertAllowlist,
  type ClientCertAllowlistOptions,
  normalizeFingerprint,
} from './client-cert-allowlist.js';
export type { ConnectionInfo, MllpAck } from './mllp-connection.js';
export {
  CR,
  FS,
  frameMessage,
  type GarbageReason,
  MllpFramer,
  type MllpFramerOptions,
  OVERSIZE_HEAD_BYTES,
  VT,
} from './mllp-framer.js';
export {
  MllpListener,
  type MllpListenerAddress,
  type MllpListenerOptions,
  type MllpListenerTlsOptions,
} from './mllp-listener.js';
export type { MllpListenerEvent, MllpListenerEventType } from './mllp-listener-events.js';
export { MllpSender, type MllpSenderEvent, type MllpSenderOptions } from './mllp-sender.js';
