import { readEnv } from '../../config/env.js';
import { Daemon } from '../../daemon/daemon.js';
import { isEngineError } from '../../errors.js';
import { createLogger } from '../../observability/logger.js';
import { CliError, EXIT } from '../cli-error.js';

/**
 * `hl7e start`: runs the daemon in the foreground until SIGINT/SIGTERM, then stops it in order.
 * Logs are JSON lines on stdout (pino); pipe through `pino-pretty` to read them by eye.
 */
export async function startAction(opts: { channels?: string }): Promise<void> {
  if (opts.channels) process.env.HL7E_CHANNELS_DIR = opts.channels;
  const env = readEnv();
  const logger = createLogger({ level: env.logLevel });
  const daemon = new Daemon({ env, logger });
  // Last line of defence. Nothing acknowledged is lost by dying (the store has it), but say why, by code.
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));
  process.once('uncaughtException', (err) => {
    logger.fatal({ err }, 'uncaught exception; exiting so a supervisor restarts the engine');
    process.exit(70);
  });
  try {
    await daemon.start();
  } catch (err) {
    if (isEngineError(err, 'QUEUE_UNAVAILABLE') && env.queue === 'redis') {
      throw new CliError(
        `Redis is not reachable at ${redacted(env.redisUrl)}: start one (redis-server --daemonize yes), ` +
          'point HL7E_REDIS_URL at yours, or set HL7E_QUEUE=postgres with HL7E_DATABASE_URL to queue in Postgres',
        EXIT.unreachable,
      );
    }
    if (isEngineError(err, 'STORE_UNAVAILABLE') || isEngineError(err, 'QUEUE_UNAVAILABLE')) {
      throw new CliError(
        `Postgres is not reachable at ${redacted(env.databaseUrl ?? '')}: start it, fix HL7E_DATABASE_URL, ` +
          'or unset it to use the embedded store',
        EXIT.unreachable,
      );
    }
    throw err;
  }
  logger.info({ channels: daemon.addresses.length, channelsDir: env.channelsDir }, 'hl7e started');
  await new Promise<void>((resolveStop) => {
    const stop = (signal: NodeJS.Signals) => {
      logger.info({ signal }, 'stopping');
      daemon.stop().then(resolveStop, (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exitCode = 1;
        resolveStop();
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  logger.info('hl7e stopped');
}

/** A connection URL without its password, fit for a terminal. */
function redacted(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(invalid URL)';
  }
}
