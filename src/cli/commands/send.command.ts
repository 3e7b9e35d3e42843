import { type Command, InvalidArgumentError } from 'commander';
import { type SendInput, sendAction } from '../actions/send.action.js';

/** What commander hands the action: SendInput's options, with --timeout under its flag name. */
type SendOptions = Omit<SendInput, 'files' | 'timeoutMs'> & { timeout: number };

export function registerSend(program: Command): void {
  program
    .command('send')
    .description('send the message(s) in each FILE over MLLP and print each ACK code and MSA-2')
    .argument('<files...>', 'files with one message, several (blank-line or MSH separated) or a batch')
    .requiredOption('-H, --host <host>', 'MLLP peer host')
    .requiredOption('-P, --port <port>', 'MLLP peer port', toPort)
    .option('-t, --timeout <ms>', 'how long to wait for each ACK', toPositiveInt, 30_000)
    .option('--tls', 'connect with TLS (1.2 or later)')
    .option('--ca <file>', 'PEM CA bundle to verify the peer with')
    .option('--cert <file>', 'PEM client certificate (mutual TLS)')
    .option('--key <file>', 'PEM client key (mutual TLS)')
    .option('--servername <name>', 'TLS server name to verify, when it differs from --host')
    .option('--insecure', 'with --tls: do not verify the peer certificate (testing only)')
    .option('--json', 'one JSON object per ACK')
    .addHelpText(
      'after',
      `
Examples:
  $ hl7e send adt.hl7 --host 127.0.0.1 --port 2575
  $ hl7e send results/*.hl7 -H lis.example.org -P 6661 --tls --ca ca.pem --cert me.pem --key me.key

Exit codes: 0 every ACK was AA/CA · 1 some message was not accepted · 2 bad input · 3 peer unreachable`,
    )
    .action(async (files: string[], opts: SendOptions) => {
      process.exitCode = await sendAction({ files, ...opts, timeoutMs: opts.timeout }, (l) =>
        process.stdout.write(`${l}\n`),
      );
    });
}

function toPort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError('a port is a number from 1 to 65535');
  return n;
}

function toPositiveInt(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('a positive whole number');
  return n;
}
