import { EngineError, type Hl7ErrorCondition, type Hl7Location } from '../errors.js';
import { newControlId } from './control-id.js';
import { formatHl7Timestamp } from './datetime.js';
import { DEFAULT_DELIMITERS, type Delimiters, encodingCharacters } from './delimiters.js';
import { escape } from './escape.js';
import type { MshHeader } from './msh-header.js';

/**
 * General acknowledgments (HL7 v2.5.1 §2.9 "Message processing rules").
 *
 * Original mode (MSH-15 and MSH-16 both empty): AA accept, AE error, AR reject.
 * Enhanced mode (either valued): the intake answers with a *commit* acknowledgment, CA/CE/CR, sent or not
 * according to MSH-15 (table 0155: AL always, NE never, ER only on error/reject, SU only on success).
 */
export type AckOutcome = 'accept' | 'error' | 'reject';
export type AckMode = 'original' | 'enhanced';
export type AckCode = 'AA' | 'AE' | 'AR' | 'CA' | 'CE' | 'CR';

const CODES = {
  original: { accept: 'AA', error: 'AE', reject: 'AR' },
  enhanced: { accept: 'CA', error: 'CE', reject: 'CR' },
} as const satisfies Record<AckMode, Record<AckOutcome, AckCode>>;

/** The text of each table 0357 code, written into ERR-3.2. */
const CONDITION_TEXT: Record<Hl7ErrorCondition, string> = {
  '0': 'Message accepted',
  '100': 'Segment sequence error',
  '101': 'Required field missing',
  '102': 'Data type error',
  '103': 'Table value not found',
  '104': 'Value too long',
  '200': 'Unsupported message type',
  '201': 'Unsupported event code',
  '202': 'Unsupported processing id',
  '203': 'Unsupported version id',
  '204': 'Unknown key identifier',
  '205': 'Duplicate key identifier',
  '206': 'Application record locked',
  '207': 'Application internal error',
};

/** The acknowledgment mode a message asks for; `configured` applies when MSH-15/16 are empty. */
export function ackModeFor(
  header: Pick<MshHeader, 'acceptAckType' | 'applicationAckType'>,
  configured: AckMode = 'original',
): AckMode {
  return header.acceptAckType !== '' || header.applicationAckType !== '' ? 'enhanced' : configured;
}

export function ackCode(mode: AckMode, outcome: AckOutcome): AckCode {
  return CODES[mode][outcome];
}

/** Whether a commit ACK is due for this outcome (MSH-15, table 0155). Original mode always answers. */
export function commitAckWanted(
  header: Pick<MshHeader, 'acceptAckType' | 'applicationAckType'>,
  mode: AckMode,
  outcome: AckOutcome,
): boolean {
  if (mode === 'original') return true;
  switch (header.acceptAckType.toUpperCase()) {
    case 'NE':
      return false;
    case 'ER':
      return outcome !== 'accept';
    case 'SU':
      return outcome === 'accept';
    default:
      // AL, and empty in enhanced mode: a sender that waits is better served by an answer than by silence.
      return true;
  }
}

/** What went wrong, for ERR/MSA-3. `text` must be free of message content (it is sent to the peer). */
export interface AckError {
  condition: Hl7ErrorCondition;
  location?: Hl7Location | undefined;
  /** Stable engine code (e.g. HL7_NO_MSH) for ERR-5. */
  code?: string;
  text?: string;
}

export interface AckOptions {
  outcome: AckOutcome;
  mode?: AckMode;
  error?: AckError | EngineError;
  /** MSH-10 of the ACK; a new unique id when omitted. */
  controlId?: string;
  now?: Date;
}

/**
 * Builds the ACK for a message header: applications and facilities swapped, MSH-10 new and unique,
 * MSA-2 = the message's MSH-10 exactly, version, processing id and charset (MSH-18) echoed, and an ERR
 * segment (table 0357 code and location) for anything but an accept. Returns wire text with \r
 * terminators; encode it in the message's charset before sending.
 */
export function buildAck(header: MshHeader, options: AckOptions): string {
  const mode = options.mode ?? ackModeFor(header);
  const code = ackCode(mode, options.outcome);
  const d = header.delimiters;
  const version = header.version || '2.5.1';
  const msh = [
    'MSH',
    encodingCharacters(d),
    header.receivingApplication,
    header.receivingFacility,
    header.sendingApplication,
    header.sendingFacility,
    escape(formatHl7Timestamp(options.now ?? new Date()), d),
    '',
    ackType(header, d, version),
    options.controlId ?? newControlId(),
    escape(header.processingId || 'P', d),
    escape(version, d),
  ];
  if (header.charset !== '') {
    // MSH-13..17 empty, MSH-18 echoes the charset the ACK is encoded in.
    msh.push('', '', '', '', '', header.charset);
  }
  const segments = [msh.join(d.field)];
  const err = options.error === undefined ? undefined : toAckError(options.error);
  const msa = ['MSA', code, header.controlId];
  if (err?.text) msa.push(escape(err.text, d));
  segments.push(msa.join(d.field));
  if (err && options.outcome !== 'accept') segments.push(errSegment(err, d, version));
  return `${segments.join('\r')}\r`;
}

/**
 * An AR/CR for input whose MSH cannot be read (garbage inside a frame): default delimiters, empty
 * routing fields, an empty MSA-2 because there is no control id to echo.
 */
export function buildRejectForUnreadable(
  error: AckError | EngineError,
  mode: AckMode = 'original',
  controlId?: string,
): string {
  const header: MshHeader = {
    delimiters: DEFAULT_DELIMITERS,
    sendingApplication: '',
    sendingFacility: '',
    receivingApplication: '',
    receivingFacility: '',
    dateTime: '',
    messageCode: '',
    triggerEvent: '',
    messageStructure: '',
    controlId: '',
    processingId: 'P',
    version: '2.5.1',
    acceptAckType: '',
    applicationAckType: '',
    charset: '',
  };
  return buildAck(header, { outcome: 'reject', mode, error, ...(controlId ? { controlId } : {}) });
}

function ackType(h: MshHeader, d: Delimiters, version: string): string {
  // MSH-9 of an ACK: ACK^<trigger>^ACK from v2.3.1 on (message structure added), ACK^<trigger> before.
  const trigger = escape(h.triggerEvent, d);
  if (compareVersion(version, '2.3.1') >= 0) return ['ACK', trigger, 'ACK'].join(d.component);
  return trigger ? ['ACK', trigger].join(d.component) : 'ACK';
}

function toAckError(e: AckError | EngineError): AckError {
  if (e instanceof EngineError) {
    return { condition: e.hl7Condition, location: e.location, code: e.code, text: e.message };
  }
  return e;
}

/** ERR per version: ERR-2/3/4 (+5, 8) from v2.5, the ELD in ERR-1 before (v2.4 §2.16.5). */
function errSegment(err: AckError, d: Delimiters, version: string): string {
  const loc = err.location ?? {};
  const c = d.component;
  const s = d.subcomponent || d.component;
  const conditionText = CONDITION_TEXT[err.condition];
  const num = (n: number | undefined) => (n === undefined ? '' : String(n));
  if (compareVersion(version, '2.5') < 0) {
    const eld = [
      loc.segment ?? '',
      num(loc.segmentIndex),
      num(loc.field),
      [err.condition, conditionText, 'HL70357'].join(s),
    ];
    return ['ERR', eld.join(c)].join(d.field);
  }
  const erl = [
    loc.segment ?? '',
    num(loc.segmentIndex),
    num(loc.field),
    num(loc.repetition),
    num(loc.component),
    num(loc.subcomponent),
  ];
  const hasLocation = loc.segment !== undefined || loc.segmentIndex !== undefined;
  const fields = [
    'ERR',
    '',
    hasLocation ? trimTrailing(erl).join(c) : '',
    [err.condition, conditionText, 'HL70357'].join(c),
    'E',
    err.code ? [err.code, '', '99HL7E'].join(c) : '',
    '',
    '',
    err.text ? escape(err.text, d) : '',
  ];
  return trimTrailing(fields).join(d.field);
}

function trimTrailing(parts: string[]): string[] {
  let n = parts.length;
  while (n > 1 && parts[n - 1] === '') n--;
  return parts.slice(0, n);
}

/** Compares dotted HL7 version ids numerically ('2.10' > '2.9'); non-numeric parts compare as 0. */
export function compareVersion(a: string, b: string): number {
  const pa = a.split('.');
  const pb = b.split('.');
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const x = Number.parseInt(pa[i] ?? '0', 10) || 0;
    const y = Number.parseInt(pb[i] ?? '0', 10) || 0;
    if (x !== y) return x - y;
  }
  return 0;
}
