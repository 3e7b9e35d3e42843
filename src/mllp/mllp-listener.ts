import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { EngineError } from '../errors.js';
import { CidrAllowlist } from './cidr-allowlist.js';
import {
  ClientCertAllowlist,
  type ClientCertAllowlistOptions,
  subjectCommonName,
} from './client-cert-allowlist.js';
import { type ConnectionInfo, type MllpAck, MllpConnection } from './mllp-connection.js';
import { errorCode, type MllpListenerEvent } from './mllp-listener-events.js';

export interface MllpListenerTlsOptions {
  key: string | Buffer;
  cert: string | Buffer;
  /**
   * CA(s) that client certificates must chain to; required for `requestCert` (without it node would
   * trust every public CA's client certificates).
   */
  ca?: string | Buffer | Array<string | Buffer>;
  /**
   * Ask every client for a certificate and refuse those without one that verifies against `ca` (mTLS).
   * @defaultValue false (true when `allowClients` is given)
   */
  requestCert?: boolean;
  /**
   * Of the certificates `ca` verifies, only these are served; others are disconnected after the
   * handshake, before anything is read, and reported as `client-refused`.
   * @defaultValue every certificate `ca` verifies
   */
  allowClients?: ClientCertAllowlistOptions;
  /** TLS 1.0 and 1.1 are never offered, whatever is passed here. @defaultValue 'TLSv1.2' */
  minVersion?: 'TLSv1.2' | 'TLSv1.3';
}

export interface MllpListenerOptions {
  /** @defaultValue '127.0.0.1' */
  host?: string;
  /** 0 picks a free port; `listen()` reports it. */
  port: number;
  tls?: MllpListenerTlsOptions;
  /** IPv4/IPv6 CIDRs or addresses served; others are disconnected before anything is read. */
  allowFrom?: readonly string[];
  /** @defaultValue 1 MiB */
  maxMessageBytes?: number;
  /**
   * A connection with no traffic and no message in hand for this long is closed; 0 disables.
   * @defaultValue 300_000
   */
  idleTimeoutMs?: number;
  /** Connections beyond this many (TLS handshakes included) are refused. @defaultValue unlimited */
  maxConnections?: number;
  /**
   * Connections from one remote IP address beyond this many are refused, so one misbehaving sender
   * cannot take every slot of `maxConnections`. @defaultValue unlimited
   */
  maxConnectionsPerPeer?: number;
  /** Reading from a connection pauses while this many of its frames await their ACK. @defaultValue 8 */
  maxPendingFrames?: number;
  /**
   * Handles one frame and resolves with its unframed ACK, or undefined to send none (enhanced-mode
   * MSH-15 = NE). Frames of one connection are handed over one at a time, in arrival order.
   */
  handler(frame: Buffer, conn: ConnectionInfo): Promise<MllpAck | undefined>;
  /** Builds the NAK for a handler that threw; undefined closes the connection instead. */
  onHandlerError(err: unknown, frame: Buffer, conn: ConnectionInfo): MllpAck | undefined;
  /**
   * Builds a NAK for a frame over `maxMessageBytes` from its first bytes (at most 64 KiB), sent before
   * the connection is closed; undefined closes it without an answer.
   */
  onOversize?(head: Buffer, conn: ConnectionInfo): MllpAck | undefined;
  /** Ids, counts and codes for logs and metrics; never message content. */
  onEvent?(event: MllpListenerEvent): void;
}

export interface MllpListenerAddress {
  host: string;
  port: number;
}

/**
 * An MLLP server on node:net or node:tls. It owns framing, the per-connection ordering of ACKs,
 * backpressure, the peer allowlist and connection limits; what a frame means is the handler's business.
 */
export class MllpListener {
  readonly #opts: MllpListenerOptions;
  readonly #server: net.Server;
  readonly #tls: tls.Server | undefined;
  readonly #allowlist: CidrAllowlist | undefined;
  readonly #clientAllowlist: ClientCertAllowlist | undefined;
  /** Open sockets per remote address, for `maxConnectionsPerPeer`. */
  readonly #perPeer = new Map<string, number>();
  /** Accepted sockets, counted from TCP accept (a TLS handshake in progress counts). */
  readonly #sockets = new Set<net.Socket>();
  /** TLS only: raw sockets still in their handshake, by peer address and port (unique per listener). */
  readonly #handshaking = new Map<string, net.Socket>();
  readonly #connections = new Set<MllpConnection>();
  #listening: Promise<MllpListenerAddress> | undefined;
  #closing: Promise<void> | undefined;
  #held = false;

  constructor(options: MllpListenerOptions) {
    this.#opts = options;
    this.#allowlist = options.allowFrom ? new CidrAllowlist(options.allowFrom) : undefined;
    const t = options.tls;
    this.#clientAllowlist = t?.allowClients ? new ClientCertAllowlist(t.allowClients) : undefined;
    const requestCert = Boolean(t?.requestCert || t?.allowClients);
    if (requestCert && !t?.ca) {
      throw new EngineError('CONFIG_INVALID', {
        detail: 'client certificates are required but no ca is given',
      });
    }
    // allowHalfOpen: a sender may half-close after its last frame and still expect the ACK.
    this.#server = net.createServer({ allowHalfOpen: true }, (socket) => this.#admit(socket));
    // TLS runs on a server that never listens: admitted sockets are handed to it ('connection' may be
    // emitted by users to inject connections, per the node:tls docs), so a refused peer never reaches
    // a handshake.
    this.#tls = t
      ? tls
          .createServer({
            key: t.key,
            cert: t.cert,
            ...(t.ca ? { ca: t.ca } : {}),
            requestCert,
            rejectUnauthorized: requestCert,
            // Checked here too: callers outside the channel schema could pass anything.
            minVersion: t.minVersion === 'TLSv1.3' ? 'TLSv1.3' : 'TLSv1.2',
          })
          .on('secureConnection', (socket: tls.TLSSocket) => this.#serve(socket))
          .on('tlsClientError', (err, socket) =>
            this.#emit({
              type: 'tls-error',
              remoteAddress: socket.remoteAddress ?? '',
              code: errorCode(err),
            }),
          )
      : undefined;
    this.#server.on('error', (err) => this.#emit({ type: 'server-error', code: errorCode(err) }));
  }

  get connectionCount(): number {
    return this.#sockets.size;
  }

  /**
   * Backpressure from downstream (intake storage behind): true stops reading from every connection,
   * present and future, until called with false. Frames already read are still answered.
   */
  hold(held: boolean): void {
    if (this.#held === held) return;
    this.#held = held;
    for (const conn of this.#connections) conn.hold(held);
  }

  get held(): boolean {
    return this.#held;
  }

  listen(): Promise<MllpListenerAddress> {
    this.#listening ??= new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.#server.once('error', onError);
      this.#server.listen(this.#opts.port, this.#opts.host ?? '127.0.0.1', () => {
        this.#server.off('error', onError);
        const address = this.address();
        if (!address) return reject(new Error('listener closed while starting'));
        this.#emit({ type: 'listening', ...address });
        resolve(address);
      });
    });
    return this.#listening;
  }

  address(): MllpListenerAddress | undefined {
    const a = this.#server.address();
    return a !== null && typeof a === 'object' ? { host: a.address, port: a.port } : undefined;
  }

  /**
   * Stops accepting, ends idle connections, answers frames already received, waits for running
   * handlers, then resolves once every connection is closed. Safe to call more than once.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const stopped = new Promise<void>((resolve) => {
        if (this.#server.listening) this.#server.close(() => resolve());
        else resolve();
      });
      for (const socket of this.#handshaking.values()) socket.destroy();
      for (const conn of this.#connections) conn.shutdown();
      // Every socket still in the set has yet to emit 'close' (the set drops it in its first listener).
      const sockets = [...this.#sockets].map(
        (socket) => new Promise((resolve) => socket.once('close', resolve)),
      );
      await Promise.all([stopped, ...sockets, ...[...this.#connections].map((c) => c.done)]);
    })();
    return this.#closing;
  }

  /** TCP accept: refuses peers outside the allowlist or over the limit before reading anything. */
  #admit(socket: net.Socket): void {
    const remoteAddress = socket.remoteAddress ?? '';
    const max = this.#opts.maxConnections;
    const maxPerPeer = this.#opts.maxConnectionsPerPeer;
    const fromPeer = this.#perPeer.get(remoteAddress) ?? 0;
    let refused: Extract<MllpListenerEvent, { type: 'refused' }>['reason'] | undefined;
    if (this.#closing) refused = 'closing';
    else if (this.#allowlist && !this.#allowlist.allows(socket.remoteAddress)) refused = 'allowlist';
    else if (max !== undefined && this.#sockets.size >= max) refused = 'max-connections';
    else if (maxPerPeer !== undefined && fromPeer >= maxPerPeer) refused = 'max-connections-per-peer';
    if (refused) {
      socket.on('error', () => {}); // a reset while being destroyed is expected
      socket.destroy();
      this.#emit({ type: 'refused', remoteAddress, reason: refused });
      return;
    }
    this.#sockets.add(socket);
    this.#perPeer.set(remoteAddress, fromPeer + 1);
    socket.on('close', () => {
      this.#sockets.delete(socket);
      const left = (this.#perPeer.get(remoteAddress) ?? 1) - 1;
      if (left > 0) this.#perPeer.set(remoteAddress, left);
      else this.#perPeer.delete(remoteAddress);
    });
    if (!this.#tls) {
      this.#serve(socket);
      return;
    }
    const key = peerKey(socket);
    this.#handshaking.set(key, socket);
    socket.on('close', () => {
      if (this.#handshaking.get(key) === socket) this.#handshaking.delete(key);
    });
    socket.on('error', () => {}); // reported by the TLS layer as 'tlsClientError' or on the TLSSocket
    this.#tls.emit('connection', socket);
  }

  /** A plain or fully handshaken TLS socket that passed `#admit`. */
  #serve(socket: net.Socket | tls.TLSSocket): void {
    if (socket instanceof tls.TLSSocket) {
      this.#handshaking.delete(peerKey(socket));
      if (this.#clientAllowlist && !socket.destroyed) {
        const cert = socket.getPeerCertificate();
        if (!socket.authorized || !this.#clientAllowlist.allows(cert)) {
          const remoteAddress = socket.remoteAddress ?? '';
          socket.destroy();
          // The certificate's fingerprint and CN say who was turned away; they are not message content.
          const cn = subjectCommonName(cert);
          this.#emit({
            type: 'client-refused',
            remoteAddress,
            fingerprint256: cert.fingerprint256 ?? '',
            ...(cn === undefined ? {} : { subjectCN: cn }),
          });
          return;
        }
      }
    }
    if (socket.destroyed) return;
    const info = connectionInfo(socket);
    const o = this.#opts;
    const conn = new MllpConnection(socket, info, {
      maxMessageBytes: o.maxMessageBytes ?? 1024 * 1024,
      idleTimeoutMs: o.idleTimeoutMs ?? 300_000,
      maxPendingFrames: o.maxPendingFrames ?? 8,
      handler: o.handler,
      onHandlerError: o.onHandlerError,
      onOversize: o.onOversize ?? (() => undefined),
      emit: (event) => this.#emit(event),
    });
    this.#connections.add(conn);
    if (this.#held) conn.hold(true);
    void conn.done.then(() => this.#connections.delete(conn));
    this.#emit({
      type: 'connection',
      connectionId: info.id,
      remoteAddress: info.remoteAddress,
      remotePort: info.remotePort,
    });
    if (this.#closing) conn.shutdown();
  }

  #emit(event: MllpListenerEvent): void {
    try {
      this.#opts.onEvent?.(event);
    } catch {
      // A faulty logging hook must not break the transport.
    }
  }
}

function peerKey(socket: net.Socket): string {
  return `${socket.remoteAddress}|${socket.remotePort}`;
}

function connectionInfo(socket: net.Socket | tls.TLSSocket): ConnectionInfo {
  const base = {
    id: randomUUID(),
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
  };
  if (!(socket instanceof tls.TLSSocket)) return base;
  const fingerprint = socket.getPeerCertificate().fingerprint256;
  return {
    ...base,
    tlsAuthorized: socket.authorized,
    ...(fingerprint ? { peerCertificateFingerprint256: fingerprint } : {}),
  };
}
