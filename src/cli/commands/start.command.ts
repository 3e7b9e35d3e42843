import type { Command } from 'commander';

// Actions load when their command runs: `hl7e status` need not load the mapping engine, FHIR
// definitions and schema compilers that `hl7e convert` needs (the CLI must answer fast at 3 a.m.).

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run the engine in the foreground: one MLLP listener per channel, until SIGINT/SIGTERM')
    .option('-c, --channels <dir>', 'folder of channel files (default: HL7E_CHANNELS_DIR or ./channels)')
    .addHelpText(
      'after',
      `
Examples:
  $ hl7e start                       # the example channels in ./channels
  $ HL7E_LOG_LEVEL=debug hl7e start --channels /etc/hl7e/channels`,
    )
    .action(async (opts: { channels?: string }) => {
      await (await import('../actions/start.action.js')).startAction(opts);
    });
}
