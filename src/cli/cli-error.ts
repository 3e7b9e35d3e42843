import { isEngineError } from '../errors.js';

/**
 * Exit codes of `hl7e` (documented in README):
 *   0 success · 1 the command ran and found a problem (a NAK, an invalid channel, something needing
 *   attention) · 2 usage or input error · 3 could not reach a peer, service or running engine · 4 refused
 *   (admin token or role).
 */
export const EXIT = { ok: 0, problem: 1, usage: 2, unreachable: 3, denied: 4 } as const;

/** An expected failure: printed as one line, no stack trace. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.usage,
  ) {
    super(message);
  }
}

/** One line for an expected error; a stack only for a bug (and only with HL7E_DEBUG set). */
export function describeFailure(err: unknown): { line: string; exitCode: number } {
  if (err instanceof CliError) return { line: err.message, exitCode: err.exitCode };
  if (isEngineError(err)) {
    const exitCode =
      err.code.startsWith('MLLP_') || err.code.endsWith('_UNAVAILABLE') ? EXIT.unreachable : EXIT.usage;
    return { line: `${err.code}: ${err.message}`, exitCode };
  }
  const e = err as NodeJS.ErrnoException;
  if (e && typeof e.code === 'string' && typeof e.syscall === 'string') {
    const where = e.path ?? (e as { address?: string }).address ?? '';
    return {
      line: `${e.code}: ${e.syscall} ${where}`.trim(),
      exitCode: e.syscall === 'connect' ? EXIT.unreachable : EXIT.usage,
    };
  }
  const detail = process.env.HL7E_DEBUG
    ? `\n${(err as Error)?.stack ?? String(err)}`
    : ' (set HL7E_DEBUG=1 for details)';
  return { line: `internal error${detail}`, exitCode: EXIT.problem };
}
