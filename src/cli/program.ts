import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { registerArchive } from './commands/archive.command.js';
import { registerAudit } from './commands/audit.command.js';
import { registerChannels } from './commands/channels.command.js';
import { registerConvert } from './commands/convert.command.js';
import { registerMessages } from './commands/messages.command.js';
import { registerParse } from './commands/parse.command.js';
import { registerReplay } from './commands/replay.command.js';
import { registerSend } from './commands/send.command.js';
import { registerStart } from './commands/start.command.js';
import { registerStatus } from './commands/status.command.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

/** The single loader that registers every command (nest-cli style: commands wire, actions work). */
export function buildProgram(): Command {
  const program = new Command('hl7e')
    .description('hl7-engine: HL7 v2 over MLLP in, FHIR R4 out — operator and analyst commands')
    .version(pkg.version)
    .showHelpAfterError('(run with --help for usage)')
    .configureOutput({ outputError: (str, write) => write(str) });
  registerStart(program);
  registerParse(program);
  registerSend(program);
  registerConvert(program);
  registerChannels(program);
  registerArchive(program);
  registerStatus(program);
  registerMessages(program);
  registerAudit(program);
  registerReplay(program);
  program.addHelpText(
    'after',
    `
Examples:
  $ hl7e start                                   # run the engine with ./channels
  $ hl7e parse message.hl7 --path PID-5-1        # read one value
  $ hl7e send message.hl7 -H 127.0.0.1 -P 2575   # send over MLLP, print the ACK
  $ hl7e convert message.hl7 --report            # FHIR Bundle on stdout, what was not mapped on stderr
  $ hl7e convert message.hl7 --channel lab-results --validate
  $ hl7e channels validate                       # channel files and the mappings they use
  $ hl7e channels test                           # golden files: what a mapping change changes
  $ hl7e archive verify                          # every record decrypts and matches its digest
  $ hl7e archive prune --older-than 90d --dry-run # what retention would remove
  $ hl7e keys rotate                             # new master key, data keys re-wrapped
  $ hl7e status                                  # the running engine: exit 1 when something needs attention
  $ hl7e messages list --status failed           # what did not get through (no patient data shown)
  $ hl7e messages show ID                        # one message: timeline of events, attempts, errors
  $ hl7e audit list --since 2h                   # who revealed, replayed, pruned — and why
  $ hl7e audit verify                            # the audit hash chain: exit 1 at the first broken link
  $ hl7e replay --channel lab --status failed --since 2h --reason "INC-42"   # dead letters, again
  $ hl7e messages export --deidentify --channel lab --since 1d --reason "vendor ticket 77" > lab.hl7

Environment: HL7E_CHANNELS_DIR, HL7E_MAPPINGS_DIR, HL7E_DATA_DIR, HL7E_DATABASE_URL, HL7E_REDIS_URL, HL7E_KMS_KEY_ID … (README "Configuration").
Exit codes: 0 ok · 1 a problem was found (NAK, invalid config, status needs attention) · 2 usage or input error
· 3 peer or running engine unreachable · 4 refused (admin token or role)`,
  );
  return program;
}
