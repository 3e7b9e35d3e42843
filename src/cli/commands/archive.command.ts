import type { Command } from 'commander';
import { readEnv } from '../../config/env.js';
import { archiveVerifyAction } from '../actions/archive-verify.action.js';
import { keysRotateAction } from '../actions/keys-rotate.action.js';

const print = (l: string) => process.stdout.write(`${l}\n`);

export function registerArchive(program: Command): void {
  const archive = program.command('archive').description('the encrypted raw-message archive');
  archive
    .command('verify')
    .description('check that every stored message decrypts and matches the digest taken at intake')
    .option('--channel <name>', 'only this channel')
    .option('--json', 'machine-readable output, every failure listed')
    .addHelpText(
      'after',
      `
Uses HL7E_DATABASE_URL (or the embedded store in HL7E_DATA_DIR, which must not be in use by a running
engine), HL7E_ARCHIVE_DIR and the key provider (HL7E_KMS_KEY_ID or the local master-key file).
Exit code 1 when any record fails.

Examples:
  $ hl7e archive verify
  $ hl7e archive verify --channel lab-results --json`,
    )
    .action(async (opts: { channel?: string; json?: boolean }) => {
      process.exitCode = await archiveVerifyAction(readEnv(), opts, print);
    });

  const keys = program.command('keys').description('envelope-encryption keys');
  keys
    .command('rotate')
    .description('rotate the master key and re-wrap every data key under it, with no downtime')
    .option('--no-rewrap', 'only rotate the master key (the store is not opened)')
    .addHelpText(
      'after',
      `
With the embedded store and a running engine, use --no-rewrap (the store belongs to the engine); the
engine picks up the new master key by itself. With HL7E_DATABASE_URL both steps run while it runs.

Examples:
  $ hl7e keys rotate
  $ hl7e keys rotate --no-rewrap`,
    )
    .action(async (opts: { rewrap: boolean }) => {
      process.exitCode = await keysRotateAction(readEnv(), opts, print);
    });
}
