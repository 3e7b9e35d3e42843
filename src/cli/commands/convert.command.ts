import type { Command } from 'commander';

// Actions load when their command runs: `hl7e status` need not load the mapping engine, FHIR
// definitions and schema compilers that `hl7e convert` needs (the CLI must answer fast at 3 a.m.).
import { defaultChannelsDir } from '../../config/env.js';

export function registerConvert(program: Command): void {
  program
    .command('convert')
    .description('convert the HL7 v2 message(s) in FILE to a FHIR R4 transaction Bundle, printed as JSON')
    .argument('<file>', 'a file with one message, several (blank-line or MSH separated) or a batch (FHS/BHS)')
    .option('--channel <name>', "use this channel's mapping, timezone, charset and validate setting")
    .option('--mapping <name>', 'use this message map (default: the one whose accepts matches MSH-9)')
    .option('--channels <dir>', 'folder of channel files, for --channel', defaultChannelsDir())
    .option(
      '--mappings <dir>',
      'site mapping folder, searched before the shipped maps (default: HL7E_MAPPINGS_DIR or ./mappings)',
    )
    .option('--report', 'list on stderr every segment and field with data that no rule read')
    .option('--validate', 'check the Bundle against FHIR R4; issues on stderr, exit 1 on an error')
    .option('--charset <name>', 'character set to assume when MSH-18 is empty (e.g. "8859/1")')
    .addHelpText(
      'after',
      `
stdout holds only the Bundle JSON (several messages: an array); the report and issues go to stderr.
Errors are one line, code and position only: never message content.

Examples:
  $ hl7e convert adt.hl7                          # the default map for its MSH-9
  $ hl7e convert lab.hl7 --channel lab-results    # as that channel would convert it
  $ hl7e convert lab.hl7 --mapping lab-results-ORU --report
  $ hl7e convert adt.hl7 --validate > bundle.json

Exit codes: 0 converted · 1 --validate found an error, or the mapping files are invalid
  · 2 input that cannot be converted (malformed message: HL7_*, no map for its type: MAPPING_NONE,
    unknown map: MAPPING_NOT_FOUND) or a usage error`,
    )
    .action(
      async (
        file: string,
        opts: {
          channel?: string;
          mapping?: string;
          channels: string;
          mappings?: string;
          report?: boolean;
          validate?: boolean;
          charset?: string;
        },
      ) => {
        process.exitCode = await (await import('../actions/convert.action.js')).convertAction(
          { file, ...opts, channelsDir: opts.channels },
          {
            out: (l) => process.stdout.write(`${l}\n`),
            info: (l) => process.stderr.write(`${l}\n`),
          },
        );
      },
    );
}
