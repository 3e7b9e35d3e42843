/**
 * One registry of the engine's error codes (STYLE habit 2). Every error the engine raises on purpose is an
 * `EngineError` with a stable string code from here, a `retryable` flag, and — where it concerns an HL7
 * message — the HL7 table 0357 code and the location an ERR segment is built from.
 *
 * Error texts are fixed templates filled only with positions, sizes and codes: never message content
 * (DESIGN rule 3). `test/errors-registry.test.ts` keeps this table and docs/errors.md in step.
 */

/** HL7 table 0357 "Message error condition codes" (v2.5+), the values an ERR-3 may carry. */
export const HL7_ERROR_CONDITION = {
  messageAccepted: '0',
  segmentSequenceError: '100',
  requiredFieldMissing: '101',
  dataTypeError: '102',
  tableValueNotFound: '103',
  valueTooLong: '104',
  unsupportedMessageType: '200',
  unsupportedEventCode: '201',
  unsupportedProcessingId: '202',
  unsupportedVersionId: '203',
  unknownKeyIdentifier: '204',
  duplicateKeyIdentifier: '205',
  applicationRecordLocked: '206',
  applicationInternalError: '207',
} as const;
export type Hl7ErrorCondition = (typeof HL7_ERROR_CONDITION)[keyof typeof HL7_ERROR_CONDITION];

interface ErrorSpec {
  /** Fixed text; `{name}` placeholders are filled from the error's numeric/code details only. */
  readonly message: string;
  /** True when the same input may succeed later (storage down, timeout); false for bad input. */
  readonly retryable: boolean;
  /** The table 0357 condition an ERR segment reports for this error. */
  readonly hl7: Hl7ErrorCondition;
}

export const ERRORS = {
  // --- HL7 v2 parsing (src/hl7) ---
  HL7_EMPTY: { message: 'message is empty', retryable: false, hl7: '100' },
  HL7_NO_MSH: { message: 'message does not start with an MSH segment', retryable: false, hl7: '100' },
  HL7_BAD_ENCODING_CHARS: {
    message: 'MSH-1/MSH-2 encoding characters are missing, repeated or invalid',
    retryable: false,
    hl7: '102',
  },
  HL7_BAD_SEGMENT_NAME: {
    message: 'segment {segmentIndex} has an invalid segment name',
    retryable: false,
    hl7: '100',
  },
  HL7_MISSING_FIELD: { message: 'required field {location} is empty', retryable: false, hl7: '101' },
  HL7_BAD_PATH: { message: 'invalid field path', retryable: false, hl7: '207' },
  HL7_UNSUPPORTED_CHARSET: {
    message: 'MSH-18 names a character set this engine does not support',
    retryable: false,
    hl7: '102',
  },
  HL7_BAD_BATCH: {
    message: 'batch structure is invalid at segment {segmentIndex}',
    retryable: false,
    hl7: '100',
  },
  HL7_NOT_A_MESSAGE: { message: 'frame holds no HL7 v2 message', retryable: false, hl7: '100' },
  // --- MLLP transport (src/mllp) ---
  MLLP_FRAME_TOO_LARGE: {
    message: 'frame exceeds the limit of {limit} bytes',
    retryable: false,
    hl7: '104',
  },
  MLLP_ACK_TIMEOUT: { message: 'no ACK within {timeoutMs} ms', retryable: true, hl7: '207' },
  MLLP_CONNECTION_CLOSED: {
    message: 'connection closed before the ACK arrived',
    retryable: true,
    hl7: '207',
  },
  MLLP_NOT_CONNECTED: { message: 'could not connect to the MLLP peer', retryable: true, hl7: '207' },
  MLLP_BAD_ACK: {
    message: 'the peer answered with something that is not an HL7 ACK',
    retryable: true,
    hl7: '207',
  },
  MLLP_SENDER_CLOSED: { message: 'the MLLP sender is closed', retryable: false, hl7: '207' },
  // --- intake and handling ---
  INTAKE_REJECTED_TYPE: {
    message: 'message type is not accepted by this channel',
    retryable: false,
    hl7: '200',
  },
  INTAKE_UNAVAILABLE: { message: 'the engine could not store the message', retryable: true, hl7: '207' },
  INTAKE_OVERLOADED: { message: 'the engine is over its intake limit', retryable: true, hl7: '207' },
  INTAKE_DUPLICATE_COLLISION: {
    message: 'MSH-10 repeats an earlier message from this sender with different content',
    retryable: false,
    hl7: '205',
  },
  // --- store (src/store) ---
  STORE_UNAVAILABLE: { message: 'the message store is unreachable', retryable: true, hl7: '207' },
  STORE_QUERY_FAILED: { message: 'a store query failed (SQLSTATE {sqlstate})', retryable: true, hl7: '207' },
  STORE_MIGRATION_FAILED: {
    message: 'store migration {version} failed (SQLSTATE {sqlstate})',
    retryable: false,
    hl7: '207',
  },
  STORE_LOCKED: {
    message: 'the embedded store is in use by a running engine (pid {pid})',
    retryable: false,
    hl7: '207',
  },
  // --- archive and keys (src/archive) ---
  ARCHIVE_WRITE_FAILED: { message: 'the raw archive could not be written', retryable: true, hl7: '207' },
  ARCHIVE_READ_FAILED: { message: 'archive record {record} could not be read', retryable: false, hl7: '207' },
  ARCHIVE_DECRYPT_FAILED: {
    message: 'archive record {record} failed authentication (wrong key, channel or message id)',
    retryable: false,
    hl7: '207',
  },
  ARCHIVE_DIGEST_MISMATCH: {
    message: 'archive record {record} does not match its stored digest',
    retryable: false,
    hl7: '207',
  },
  KEY_PROVIDER_UNAVAILABLE: {
    message: 'the key provider ({provider}) could not be reached',
    retryable: true,
    hl7: '207',
  },
  KEY_PROVIDER_REFUSED: {
    message: 'the key provider ({provider}) refused the request ({reason})',
    retryable: false,
    hl7: '207',
  },
  KEY_UNKNOWN: { message: 'data key {keyId} is not in the store', retryable: false, hl7: '207' },
  KEY_DESTROYED: {
    message:
      'data key {keyId} was destroyed by retention (crypto-shredding): its records cannot be decrypted',
    retryable: false,
    hl7: '207',
  },
  // --- queue (src/pipeline) ---
  PIPELINE_CHANNEL_UNKNOWN: {
    message: 'the message belongs to a channel that is no longer configured',
    retryable: false,
    hl7: '207',
  },
  PIPELINE_CONVERT_FAILED: {
    message: 'the conversion step failed; the batch will be retried',
    retryable: true,
    hl7: '207',
  },
  QUEUE_UNAVAILABLE: { message: 'the work queue backend is unreachable', retryable: true, hl7: '207' },
  // --- delivery (src/delivery, src/pipeline/delivery-step.ts) ---
  DELIVERY_FAILED: {
    message: 'a delivery was rejected by its destination or used up its attempts',
    retryable: false,
    hl7: '207',
  },
  // --- mapping (src/mapping) and FHIR output (src/fhir) ---
  MAPPING_NONE: {
    message: 'no mapping for message type {messageType}',
    retryable: false,
    hl7: '200',
  },
  MAPPING_NOT_FOUND: { message: 'mapping {name} is not defined', retryable: false, hl7: '207' },
  MAPPING_INVALID: { message: 'mapping {name} is invalid: {detail}', retryable: false, hl7: '207' },
  MAPPING_BAD_VALUE: {
    message: 'value at {location} is not a valid {dataType}',
    retryable: false,
    hl7: '102',
  },
  FHIR_INVALID: {
    message: '{resourceType} failed FHIR R4 validation at {path} ({issue})',
    retryable: false,
    hl7: '207',
  },
  // --- configuration ---
  CONFIG_INVALID: { message: 'configuration is invalid: {detail}', retryable: false, hl7: '207' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** Where in a message an error is: 1-based, as an ERR-2 (ERL) location reports it. */
export interface Hl7Location {
  segment?: string;
  /** 1-based position of the segment within the message. */
  segmentIndex?: number;
  field?: number;
  repetition?: number;
  component?: number;
  subcomponent?: number;
}

/** Details are numbers and codes only — they are interpolated into the text and must never carry PHI. */
export type ErrorDetails = Record<string, string | number | undefined>;

export class EngineError extends Error {
  override readonly name = 'EngineError';
  readonly code: ErrorCode;
  readonly retryable: boolean;
  readonly hl7Condition: Hl7ErrorCondition;
  readonly location: Hl7Location | undefined;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, details: ErrorDetails = {}, location?: Hl7Location, options?: ErrorOptions) {
    const spec: ErrorSpec = ERRORS[code];
    super(
      fill(spec.message, { ...details, location: location ? formatLocation(location) : undefined }),
      options,
    );
    this.code = code;
    this.retryable = spec.retryable;
    this.hl7Condition = spec.hl7;
    this.location = location;
    this.details = details;
  }
}

export function isEngineError(err: unknown, code?: ErrorCode): err is EngineError {
  return err instanceof EngineError && (code === undefined || err.code === code);
}

/** `PID[1]-5(1)-1-1` style, the same grammar paths use. */
export function formatLocation(loc: Hl7Location): string {
  let out = loc.segment ?? '?';
  if (loc.segmentIndex !== undefined) out += `@${loc.segmentIndex}`;
  if (loc.field !== undefined) out += `-${loc.field}`;
  if (loc.repetition !== undefined) out += `(${loc.repetition})`;
  if (loc.component !== undefined) out += `-${loc.component}`;
  if (loc.subcomponent !== undefined) out += `-${loc.subcomponent}`;
  return out;
}

function fill(template: string, values: ErrorDetails): string {
  return template.replace(/\{(\w+)\}/g, (_, key: string) => String(values[key] ?? '?'));
}
