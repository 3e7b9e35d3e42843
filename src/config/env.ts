import { resolve } from 'node:path';

/**
 * The environment the engine reads, in one place. Every variable is documented in README "Configuration".
 */
export interface EngineEnv {
  /** HL7E_DATA_DIR: embedded store, admin token; default ./data */
  readonly dataDir: string;
  /** HL7E_CHANNELS_DIR: channel files; default ./channels */
  readonly channelsDir: string;
  /** HL7E_LOG_LEVEL: pino level; default info */
  readonly logLevel: string;
}

export function readEnv(env: NodeJS.ProcessEnv = process.env): EngineEnv {
  return Object.freeze({
    dataDir: resolve(env.HL7E_DATA_DIR ?? 'data'),
    channelsDir: resolve(env.HL7E_CHANNELS_DIR ?? 'channels'),
    logLevel: env.HL7E_LOG_LEVEL ?? 'info',
  });
}

export function defaultChannelsDir(): string {
  return process.env.HL7E_CHANNELS_DIR ?? 'channels';
}
