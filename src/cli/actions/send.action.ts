import { readFileSync } from 'node:fs';
import type { ConnectionOptions } from 'node:tls';
import { decodeHl7, encodeHl7 } from '../../hl7/charset.js';
import { parse } from '../../hl7/index.js';
import { MllpSender } from '../../mllp/index.js';
import { EXIT } from '../cli-error.js';
import { readMessageFile } from '../message-file.js';

export interface SendInput {
  files: string[];
  host: string;
  port: number;
  timeoutMs: number;
  tls?: boolean;
  ca?: string;
  cert?: string;
  key?: string;
  servername?: string;
  insecure?: boolean;
  json?: boolean;
}

interface SendResult {
  message: string;
  ack: string;
  msa2: string;
  error?: string;
}

/**
 * `hl7e send`: every message of every file over one kept-open MLLP connection, in order, one line per
 * ACK (code and MSA-2). Segment terminators are normalised to \r as MLLP peers expect (v2.5.1 §2.8).
 * Exit 0 when every answer is AA/CA, 1 when any is not, 3 when the peer cannot be reached.
 */
export async function sendAction(input: SendInput, out: (line: string) => void): Promise<number> {
  const sender = new MllpSender({
    host: input.host,
    port: input.port,
    ackTimeoutMs: input.timeoutMs,
    ...(input.tls ? { tls: tlsOptions(input) } : {}),
  });
  let exit: number = EXIT.ok;
  try {
    for (const file of input.files) {
      for (const m of await readMessageFile(file)) {
        const payload = encodeHl7(m.text.replace(/\r\n|\n/g, '\r').replace(/\r+$/, '\r'), m.charset);
        const result: SendResult = { message: m.label, ack: '', msa2: '' };
        try {
          const ackBytes = await sender.send(payload);
          const ack = parse(decodeHl7(ackBytes).text);
          result.ack = ack.get('MSA-1');
          result.msa2 = ack.getRaw('MSA-2') ?? '';
          if (result.ack !== 'AA' && result.ack !== 'CA') exit = Math.max(exit, EXIT.problem);
        } catch (err) {
          const e = err as { code?: string };
          result.error = e.code ?? 'ERROR';
          exit = e.code?.startsWith('MLLP_') ? EXIT.unreachable : Math.max(exit, EXIT.problem);
        }
        out(input.json ? JSON.stringify(result) : formatLine(result));
        if (exit === EXIT.unreachable) return exit;
      }
    }
  } finally {
    await sender.close();
  }
  return exit;
}

function formatLine(r: SendResult): string {
  return r.error ? `${r.message}  ERROR  ${r.error}` : `${r.message}  ${r.ack}  ${r.msa2}`;
}

function tlsOptions(input: SendInput): ConnectionOptions {
  const opts: ConnectionOptions = { minVersion: 'TLSv1.2', rejectUnauthorized: !input.insecure };
  if (input.ca) opts.ca = readFileSync(input.ca);
  if (input.cert) opts.cert = readFileSync(input.cert);
  if (input.key) opts.key = readFileSync(input.key);
  if (input.servername) opts.servername = input.servername;
  return opts;
}
