import { type Logger, type LoggerOptions, pino } from 'pino';
import { isEngineError } from '../errors.js';

/**
 * The engine's one logger. Log only ids, codes, counts, sizes and times — never message content,
 * names, identifiers or free text (DESIGN rule 3). Redaction is the second line of defence: any field a
 * careless call might pass under these names is censored before it is written.
 */
export const REDACT_PATHS = [
  'raw',
  'text',
  'message',
  'payload',
  'body',
  'frame',
  'hl7',
  'segment',
  'value',
  '*.raw',
  '*.text',
  '*.payload',
  '*.body',
  '*.frame',
  '*.hl7',
  '*.segment',
  '*.value',
  'err.details',
];

export function createLogger(
  options: { level?: string; name?: string } = {},
  destination?: pino.DestinationStream,
): Logger {
  const opts: LoggerOptions = {
    name: options.name ?? 'hl7e',
    level: options.level ?? process.env.HL7E_LOG_LEVEL ?? 'info',
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    base: { pid: process.pid },
    // Error objects are logged by code and class only; their stack is kept out of info logs of peers' input.
    serializers: { err: serializeError },
  };
  return destination ? pino(opts, destination) : pino(opts);
}

function serializeError(err: unknown): Record<string, unknown> {
  if (!(err instanceof Error)) return { type: typeof err };
  const e = err as Error & { code?: unknown; retryable?: unknown; location?: unknown; syscall?: unknown };
  // Only texts known to be templates (EngineError) or system errors are kept: any other error's text
  // (a JSON or library error) may quote the input it choked on. The stack keeps its frames, not its text.
  const trusted = isEngineError(err) || typeof e.syscall === 'string';
  const cause = (e as { cause?: unknown }).cause;
  const causeCode =
    cause !== null && typeof cause === 'object'
      ? ((cause as { code?: unknown }).code ?? (cause as Error).name)
      : undefined;
  return {
    type: e.name,
    code: e.code,
    // The underlying error by code only (ECONNREFUSED, 57P01, ThrottlingException): its text may quote data.
    cause: typeof causeCode === 'string' ? causeCode : undefined,
    retryable: e.retryable,
    location: e.location,
    message: trusted ? e.message : undefined,
    stack: e.stack?.split('\n').slice(1).join('\n'),
  };
}

export type { Logger };
