import type { Command } from 'commander';

// Actions load when their command runs: `hl7e status` need not load the mapping engine, FHIR
// definitions and schema compilers that `hl7e convert` needs (the CLI must answer fast at 3 a.m.).
import { defaultChannelsDir } from '../../config/env.js';

const MAPPINGS_OPTION =
  'site mapping folder, searched before the shipped maps (default: HL7E_MAPPINGS_DIR or ./mappings)';

export function registerChannels(program: Command): void {
  const channels = program.command('channels').description('work with channel configuration files');
  channels
    .command('validate')
    .description('check every channel file in DIR against the channel schema, and the mappings it uses')
    .argument('[dir]', 'folder of *.yaml channel files', defaultChannelsDir())
    .option('--json', 'machine-readable output')
    .option('--mappings <dir>', MAPPINGS_OPTION)
    .addHelpText(
      'after',
      `
Each channel's message map (the one it names, else the default for each type it accepts) is compiled;
a problem inside a mapping file is listed at its own file:line and key.

Examples:
  $ hl7e channels validate              # ./channels (or HL7E_CHANNELS_DIR)
  $ hl7e channels validate site/channels --mappings site/mappings
  $ hl7e channels validate site/channels --json`,
    )
    .action(async (dir: string, opts: { json?: boolean; mappings?: string }) => {
      process.exitCode = (await import('../actions/channels-validate.action.js')).channelsValidateAction(
        { dir, ...opts },
        (l) => process.stdout.write(`${l}\n`),
      );
    });
  channels
    .command('test')
    .description("convert each channel's golden files and show what changed against the expected Bundles")
    .argument('[dir]', 'folder of *.yaml channel files', defaultChannelsDir())
    .option('--update', 'write the Bundles made now as the expected files (accept the change)')
    .option('--mappings <dir>', MAPPINGS_OPTION)
    .addHelpText(
      'after',
      `
Golden files sit beside the channel file: for adt-inbound.yaml, adt-inbound.tests/*.hl7, each with the
expected Bundle in the .json of the same name (written by --update: review it, then commit it).
A changed file is listed with one line per difference: JSON path, - expected, + actual. Ids that derive
from the mapping version are set aside, so a one-rule change shows as that change only.

Examples:
  $ hl7e channels test                          # ./channels (or HL7E_CHANNELS_DIR)
  $ hl7e channels test site/channels --mappings site/mappings
  $ hl7e channels test --update                 # accept the current output as expected

Exit codes: 0 every file as expected · 1 a file changed, has no expected .json yet, or a channel is invalid`,
    )
    .action(async (dir: string, opts: { update?: boolean; mappings?: string }) => {
      process.exitCode = await (await import('../actions/channels-test.action.js')).channelsTestAction(
        { dir, ...opts },
        (l) => process.stdout.write(`${l}\n`),
      );
    });
}
