import type { Command } from 'commander';
import { defaultChannelsDir } from '../../config/env.js';
import { channelsValidateAction } from '../actions/channels-validate.action.js';

export function registerChannels(program: Command): void {
  const channels = program.command('channels').description('work with channel configuration files');
  channels
    .command('validate')
    .description('check every channel file in DIR against the channel schema')
    .argument('[dir]', 'folder of *.yaml channel files', defaultChannelsDir())
    .option('--json', 'machine-readable output')
    .addHelpText(
      'after',
      `
Examples:
  $ hl7e channels validate              # ./channels (or HL7E_CHANNELS_DIR)
  $ hl7e channels validate site/channels --json`,
    )
    .action((dir: string, opts: { json?: boolean }) => {
      process.exitCode = channelsValidateAction(dir, opts.json ?? false, (l) =>
        process.stdout.write(`${l}\n`),
      );
    });
}
