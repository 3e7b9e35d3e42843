import { parse } from '../../src/hl7/index.js';
import { MllpSender } from '../../src/mllp/index.js';

export interface SendLog {
  /** MSA-1 of every ACK received, in order (a resent message contributes one entry per attempt). */
  readonly codes: { controlId: string; code: string; at: number; ms: number }[];
  /** Control ids answered AA/CA. */
  readonly accepted: Set<string>;
  /** Transport failures (connection lost, ACK timeout) that led to a resend. */
  failures: number;
  /** Transport failures by error code. */
  readonly failureCodes: Record<string, number>;
}

/**
 * A sender as interface engines behave: one message at a time per connection, waiting for its ACK;
 * AE/CE or a lost connection → the same bytes are sent again after a pause; AR/CR → give up on it.
 */
export async function sendAllResending(
  port: number,
  messages: readonly { controlId: string; text: string }[],
  log: SendLog,
  opts: { ackTimeoutMs?: number; retryDelayMs?: number; onAck?: () => void; stop?: () => boolean } = {},
): Promise<void> {
  const sender = new MllpSender({
    host: '127.0.0.1',
    port,
    ackTimeoutMs: opts.ackTimeoutMs ?? 15_000,
    connectTimeoutMs: 2_000,
    reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
  });
  try {
    for (const m of messages) {
      for (;;) {
        if (opts.stop?.()) return;
        const started = performance.now();
        let code: string;
        try {
          const ack = parse((await sender.send(m.text)).toString('utf8'));
          code = ack.get('MSA-1');
        } catch (err) {
          log.failures++;
          const code = (err as { code?: string }).code ?? 'unknown';
          log.failureCodes[code] = (log.failureCodes[code] ?? 0) + 1;
          await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 100));
          continue;
        }
        log.codes.push({ controlId: m.controlId, code, at: Date.now(), ms: performance.now() - started });
        opts.onAck?.();
        if (code === 'AA' || code === 'CA') {
          log.accepted.add(m.controlId);
          break;
        }
        if (code === 'AR' || code === 'CR') break;
        await new Promise((r) => setTimeout(r, opts.retryDelayMs ?? 100));
      }
    }
  } finally {
    await sender.close();
  }
}

export function newSendLog(): SendLog {
  return { codes: [], accepted: new Set(), failures: 0, failureCodes: {} };
}

/** A synthetic ADT^A08 for patient n: names and identifiers are made up and greppable. */
export function syntheticAdt(controlId: string, patient: number, seq: number): string {
  const mrn = `MRNX${String(patient).padStart(5, '0')}`;
  return [
    `MSH|^~\\&|CRASHSYS|CRASHFAC|HL7E|HOSP|20261125120000||ADT^A08^ADT_A01|${controlId}|P|2.5.1`,
    `EVN|A08|20261125120000`,
    `PID|1||${mrn}^^^HOSP^MR||Zyxwvname${patient}^Qponfirst^M||19700101|F|||${seq} Qqqstreet Road^^Springfield^IL^62701`,
    `PV1|1|I|WARD^${seq % 40}^1`,
  ].join('\r');
}
