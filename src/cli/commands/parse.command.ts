import type { Command } from 'commander';

// Actions load when their command runs: `hl7e status` need not load the mapping engine, FHIR
// definitions and schema compilers that `hl7e convert` needs (the CLI must answer fast at 3 a.m.).

export function registerParse(program: Command): void {
  program
    .command('parse')
    .description('print the structure of the HL7 v2 message(s) in FILE as JSON, or one value with --path')
    .argument('<file>', 'a file with one message, several (blank-line or MSH separated) or a batch (FHS/BHS)')
    .option('-p, --path <path>', 'print only this value, e.g. PID-5-1, PID-3(2)-1, OBX[3]-5 (1-based)')
    .option('--raw', 'with --path: print the element as encoded on the wire (delimiters and escapes kept)')
    .option('--charset <name>', 'character set to assume when MSH-18 is empty (e.g. "8859/1")')
    .option('--keep-formatting', 'keep \\.br\\ and \\H\\ style escapes instead of rendering them')
    .addHelpText(
      'after',
      `
Examples:
  $ hl7e parse lab.hl7                      # whole message as JSON
  $ hl7e parse lab.hl7 --path PID-5-1       # family name of each message
  $ hl7e parse adt.hl7 --path PID-3 --raw   # all identifiers, as encoded`,
    )
    .action(
      async (
        file: string,
        opts: { path?: string; raw?: boolean; charset?: string; keepFormatting?: boolean },
      ) => {
        await (await import('../actions/parse.action.js')).parseAction({ file, ...opts }, (line) =>
          process.stdout.write(`${line}\n`),
        );
      },
    );
}
