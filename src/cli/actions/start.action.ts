import { readEnv } from '../../config/env.js';
import { Daemon } from '../../daemon/daemon.js';
import { createLogger } from '../../observability/logger.js';
import { ReceiveLog } from '../../pipeline/receive-log.js';

/**
 * `hl7e start`: runs the daemon in the foreground until SIGINT/SIGTERM, then stops it in order.
 * Logs are JSON lines on stdout (pino); pipe through `pino-pretty` to read them by eye.
 */
export async function startAction(opts: { channels?: string }): Promise<void> {
  if (opts.channels) process.env.HL7E_CHANNELS_DIR = opts.channels;
  const env = readEnv();
  const logger = createLogger({ level: env.logLevel });
  const daemon = new Daemon({ env, logger, sink: new ReceiveLog(logger) });
  await daemon.start();
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
