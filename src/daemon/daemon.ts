import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { ChannelConfig } from '../channels/channel-config.js';
import { formatProblem, loadChannelDir } from '../channels/channel-loader.js';
import type { EngineEnv } from '../config/env.js';
import { EngineError } from '../errors.js';
import { MllpListener, type MllpListenerOptions } from '../mllp/index.js';
import type { Logger } from '../observability/logger.js';
import { createIntake, type MessageSink, oversizeNak } from '../pipeline/intake.js';

export interface DaemonOptions {
  env: EngineEnv;
  logger: Logger;
  sink: MessageSink;
  /** Channels to run instead of those in env.channelsDir (tests). */
  channels?: ChannelConfig[];
}

export interface ChannelAddress {
  channel: string;
  host: string;
  port: number;
}

/**
 * Wiring only (DESIGN: daemon/ holds no domain logic): builds one MLLP listener per enabled channel with
 * that channel's intake as its handler, and owns start and stop order. `start()`/`stop()` are safe to
 * call twice; stop runs every step and reports each failure.
 */
export class Daemon {
  readonly #opts: DaemonOptions;
  readonly #listeners = new Map<string, MllpListener>();
  #addresses: ChannelAddress[] = [];
  #state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' = 'idle';

  constructor(opts: DaemonOptions) {
    this.#opts = opts;
  }

  get addresses(): readonly ChannelAddress[] {
    return this.#addresses;
  }

  async start(): Promise<void> {
    if (this.#state !== 'idle') return;
    this.#state = 'starting';
    const { logger } = this.#opts;
    const channels = (this.#opts.channels ?? this.#loadChannels()).filter((c) => c.enabled);
    try {
      for (const channel of channels) {
        const listener = new MllpListener(this.#listenerOptions(channel));
        this.#listeners.set(channel.name, listener);
        const { host, port } = await listener.listen();
        this.#addresses.push({ channel: channel.name, host, port });
        logger.info(
          { channel: channel.name, host, port, tls: Boolean(channel.source.mllp.tls) },
          'listening',
        );
      }
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.#state = 'running';
  }

  async stop(): Promise<void> {
    if (this.#state === 'stopping' || this.#state === 'stopped') return;
    this.#state = 'stopping';
    const results = await Promise.allSettled(
      [...this.#listeners].map(async ([name, l]) => {
        await l.close();
        this.#opts.logger.info({ channel: name }, 'listener closed');
      }),
    );
    for (const r of results) {
      if (r.status === 'rejected') this.#opts.logger.error({ err: r.reason }, 'listener failed to close');
    }
    this.#listeners.clear();
    this.#state = 'stopped';
  }

  #loadChannels(): ChannelConfig[] {
    const { channels, problems } = loadChannelDir(this.#opts.env.channelsDir);
    if (problems.length > 0) {
      throw new EngineError('CONFIG_INVALID', { detail: problems.map(formatProblem).join('; ') });
    }
    return channels;
  }

  #listenerOptions(channel: ChannelConfig): MllpListenerOptions {
    const src = channel.source.mllp;
    const { logger, sink } = this.#opts;
    const log = logger.child({ channel: channel.name });
    const intake = createIntake(channel, sink);
    const options: MllpListenerOptions = {
      host: src.host,
      port: src.port,
      maxMessageBytes: src.maxMessageBytes,
      idleTimeoutMs: src.idleTimeoutMs,
      handler: async (frame, conn) => {
        const result = await intake(frame, conn.id);
        if (result.outcome !== 'accept')
          log.warn(
            { connection: conn.id, outcome: result.outcome, code: result.code },
            'message not accepted',
          );
        return result.ack;
      },
      onHandlerError: (err, _frame, conn) => {
        // intake never throws by design; this is the last line of defence, logged by code only.
        log.error({ connection: conn.id, err }, 'intake failed');
        return undefined;
      },
      onOversize: (head, conn) => {
        log.warn({ connection: conn.id, limit: src.maxMessageBytes }, 'frame over size limit');
        return oversizeNak(head, channel, src.maxMessageBytes);
      },
    };
    if (src.allowFrom) options.allowFrom = [...src.allowFrom];
    if (src.maxConnections) options.maxConnections = src.maxConnections;
    if (src.tls) {
      // Paths are relative to the channel file, so a channel folder can be moved as a whole.
      const base = dirname(channel.file);
      const read = (p: string) => readFileSync(resolve(base, p));
      options.tls = {
        cert: read(src.tls.cert),
        key: read(src.tls.key),
        ...(src.tls.ca ? { ca: read(src.tls.ca) } : {}),
        requestCert: src.tls.requireClientCert,
        minVersion: src.tls.minVersion,
      };
    }
    return options;
  }
}
