import type { GarbageReason } from './mllp-framer.js';

/**
 * What a listener reports for logs and metrics. Events carry ids, counts, addresses and codes only —
 * never frame content, which is PHI (DESIGN rule 3).
 */
export type MllpListenerEvent =
  | { type: 'listening'; host: string; port: number }
  | { type: 'connection'; connectionId: string; remoteAddress: string; remotePort: number }
  /**
   * A peer turned away before anything was read: outside `allowFrom`, over `maxConnections` or
   * `maxConnectionsPerPeer`, or the listener is closing.
   */
  | {
      type: 'refused';
      remoteAddress: string;
      reason: 'allowlist' | 'max-connections' | 'max-connections-per-peer' | 'closing';
    }
  /** A client certificate the CA verified but `allowClients` does not name: closed after the handshake. */
  | { type: 'client-refused'; remoteAddress: string; fingerprint256: string; subjectCN?: string }
  | { type: 'frame'; connectionId: string; bytes: number }
  | { type: 'ack'; connectionId: string; bytes: number }
  /** The handler returned no ACK (e.g. enhanced mode with MSH-15 = NE). */
  | { type: 'no-ack'; connectionId: string }
  | { type: 'garbage'; connectionId: string; bytes: number; reason: GarbageReason }
  | { type: 'oversize'; connectionId: string; bytes: number; limit: number }
  /** `code` is an EngineError code or the error's class name; never its message. */
  | { type: 'handler-error'; connectionId: string; code: string }
  /** Frames that arrived after the connection stopped taking new ones (closing): left un-ACKed. */
  | { type: 'dropped'; connectionId: string; frames: number }
  | { type: 'paused'; connectionId: string; reason: 'pending-frames' | 'write-buffer' | 'backpressure' }
  | { type: 'resumed'; connectionId: string }
  | { type: 'idle-timeout'; connectionId: string }
  | { type: 'socket-error'; connectionId: string; code: string }
  | { type: 'tls-error'; remoteAddress: string; code: string }
  | { type: 'server-error'; code: string }
  | { type: 'disconnect'; connectionId: string; frames: number; acks: number };

export type MllpListenerEventType = MllpListenerEvent['type'];

/** The code of an error, safe to log: its `code` when it has one, else its class name. */
export function errorCode(err: unknown): string {
  if (err !== null && typeof err === 'object') {
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    if (err instanceof Error) return err.name;
  }
  return 'UNKNOWN';
}
