import type { Command } from 'commander';

// Actions load when their command runs: `hl7e status` need not load the mapping engine, FHIR
// definitions and schema compilers that `hl7e convert` needs (the CLI must answer fast at 3 a.m.).
import { readEnv } from '../../config/env.js';
import { archivePruneAction, type PruneOptions } from '../actions/archive-prune.action.js';

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
      process.exitCode = await (await import('../actions/archive-verify.action.js')).archiveVerifyAction(
        readEnv(),
        opts,
        print,
      );
    });
  archive
    .command('prune')
    .description('remove whole archive files past retention whose messages are all finished')
    .requiredOption(
      '--older-than <duration>',
      'files of days that ended at least this long ago (30d, 12w; at least 1d)',
    )
    .option('--dry-run', 'list the files, bytes and messages it would remove; remove nothing')
    .option('--reason <text>', 'why (recorded in the audit trail with what was removed)')
    .option('--channel <name>', 'only this channel')
    .option('--json', 'the report as JSON')
    .addHelpText(
      'after',
      `
Archive files hold one channel's messages of one UTC day. A file goes only when its whole day is past
the cutoff and none of its messages is in flight (not yet processed, or with a delivery pending or
held): such a file is kept and listed. The messages stay in the store with their states and attempts;
\`messages show --raw\` then answers that the content was pruned, and they cannot be replayed --from raw.
A real run is recorded in the audit trail. Needs the admin role.

With a running engine it goes through the engine's admin API; with none, it opens the store itself
(HL7E_DATABASE_URL or the embedded store in HL7E_DATA_DIR) and the archive in HL7E_ARCHIVE_DIR.
Exit codes: 0 ok (kept files included) · 1 a file could not be removed · 2 bad option · 4 refused (role).

Examples:
  $ hl7e archive prune --older-than 90d --dry-run
  $ hl7e archive prune --older-than 90d --reason "retention policy RP-7"
  $ hl7e archive prune --older-than 26w --channel lab-results --json | jq .totals`,
    )
    .action(async (opts: PruneOptions) => {
      process.exitCode = await archivePruneAction(readEnv(), opts, print, (l) =>
        process.stderr.write(`${l}\n`),
      );
    });

  const keys = program.command('keys').description('envelope-encryption keys');
  keys
    .command('rotate')
    .description('rotate the master key and re-wrap every data key under it, with no downtime')
    .option('--no-rewrap', 'only rotate the master key (the store is not opened)')
    .option('--reason <text>', 'why (recorded in the audit trail when the engine runs)')
    .addHelpText(
      'after',
      `
With an engine running (found through HL7E_DATA_DIR), the engine rotates and re-wraps: your role must
allow it (admin) and the rotation is audited. Without one, the CLI opens the key provider and the store
itself. Records are never re-encrypted; everything written before stays readable.

Examples:
  $ hl7e keys rotate --reason "yearly rotation, CHG-2291"
  $ hl7e keys rotate --no-rewrap`,
    )
    .action(async (opts: { rewrap: boolean; reason?: string }) => {
      process.exitCode = await (await import('../actions/keys-rotate.action.js')).keysRotateAction(
        readEnv(),
        opts,
        print,
      );
    });
}
