/**
 * The de-identification policy as data: what happens to each field of each segment, HIPAA Safe Harbor
 * (45 CFR §164.514(b)(2)) applied to HL7 v2.x ADT/ORM/ORU and their neighbours. Field numbers are the
 * standard's (v2.5.1; v2.3–v2.8 agree on every position listed here unless noted).
 *
 * Decisions, and why:
 * - Names: every person's name goes, patients' and everyone else's (relatives, guarantors, insured,
 *   employers' contacts — which Safe Harbor names — and providers, which it does not: an XPN/XCN field
 *   rarely says whose name it holds, so all name components become `REDACTED`). Provider ids (XCN-1) are
 *   pseudonymized like patient ids, so "the same doctor" stays visible.
 * - Addresses: street, other designation, city, county and census tract go; state, country and address
 *   type stay; a US ZIP keeps its first three digits, or `000` for the three-digit areas of 20,000 people
 *   or fewer (RESTRICTED_ZIP3). Any other postal code is emptied: its prefix may name a smaller area.
 * - Dates: every date and time becomes its year (`20260314093000-0500` → `2026`): a valid DTM/DT/TS of
 *   year precision, so the message still parses and converts. Not shifted: Safe Harbor keeps the year and
 *   nothing finer, and a shift would keep intervals that the rule removes. A time zone goes with the time.
 * - Ages over 89 (§164.514(b)(2)(i)(C)): a birth date that makes the person older than 89 at the message
 *   time (MSH-7) becomes the year MSH-7's year − 90, so every such person shows as 90, "90 or older".
 *   The same holds for an OBX whose code is an age in years (AGE_CODES) with a value over 89 (→ 90).
 * - Numbers that lead back to a person (MRN, account, visit, order, SSN, licence, policy, device and
 *   document numbers) become pseudonyms: an HMAC under a random key made for one export and never stored,
 *   so the same value has the same pseudonym throughout that export (a merge, an order and its result
 *   stay related) and two exports cannot be linked. Without the key no one — the engine included — can
 *   go back, which is what §164.514(c) asks of a re-identification code.
 * - MSH-10 (message control id) is pseudonymized too: it is not patient data, but whoever holds the
 *   original feed (the vendor may) could look a message up by it. MSA-2 gets the same pseudonym.
 * - Free text (NTE comments, OBX values of type TX/FT and non-numeric ST, clinical-information and
 *   description fields) becomes `REDACTED`: it may hold anything. Coded values (CE/CWE codes and their
 *   code-system displays), units, flags, numbers and structure are kept, so a mapping can be debugged.
 * - Photos, documents and waveforms (OBX-5 ED data, RP pointers) are removed.
 * - Locations inside a facility (PL: ward, room, bed) and organisations (facility, insurer, lab) stay:
 *   they identify the care setting, not the person. Employers' names are removed (Safe Harbor lists them).
 * - Z-segments are removed whole (their content is unknown) unless an export names them to keep; a kept
 *   Z-segment, like any field not listed here, is scanned (rule `scan`).
 *
 * Fields not listed get `scan`: kept unless the value is a date (→ year), matches an identifier pattern
 * (SSN, phone, e-mail, URL, IP address, a written date → `REDACTED`), or repeats an identifier or a name
 * word found elsewhere in the same message (→ `REDACTED`): defence in depth for senders who put data in
 * the wrong field. States and countries (`region`) are kept only when they are words, so a ZIP or number
 * written in their place goes.
 *
 * Limits: the table covers the segments of ADT, ORM, ORU and the messages around them (MDM, SIU, DFT,
 * BAR, VXU, OML/OUL, REF) in v2.3–v2.8. A name in a segment or field it does not list, that appears
 * nowhere else in the message, passes the scan; a feed with such a segment needs a row here. Vehicle
 * plates and biometric ids have no field of their own in v2: they can only be in free text, which goes.
 */

/** What happens to one value (a component, or a subcomponent where a data type splits one). */
export type ValueRule =
  /** As is, not scanned: codes, units, flags, numbers, structure. */
  | 'keep'
  /** Kept unless it looks like a date or an identifier, or repeats one found in this message. */
  | 'scan'
  /** Emptied. */
  | 'remove'
  /** Free text: `REDACTED`; the exact value is also hunted in scanned fields. */
  | 'text'
  /** A person's or place's name: `REDACTED`; its words are also hunted in scanned fields. */
  | 'name'
  /** An identifying number: the export's pseudonym for it. */
  | 'id'
  /** A date or time: its year. */
  | 'date'
  /** A birth date: its year, grouped at 90 for the oldest. */
  | 'birthdate'
  /** A postal code: the first three digits of a US ZIP, `000` for a small area, else emptied. */
  | 'zip'
  /** A state or country: kept when it is only letters (not a misplaced ZIP or number), like `scan` else. */
  | 'region'
  /** An OBX-5 of type ST: kept when it is a number-like result (`>1000`, `1:40`, `3+`), else `REDACTED`. */
  | 'result';

/** A component's rule: one for the whole component, or one per subcomponent (EIP, NDL). */
export type ComponentRule = ValueRule | { readonly sub: Readonly<Record<number, ValueRule>> };

export type ComponentMap = Readonly<Record<number, ComponentRule>>;

/** The replacement of names and free text. */
export const MARKER = 'REDACTED';

const EI: Readonly<Record<number, ValueRule>> = { 1: 'id', 2: 'keep', 3: 'keep', 4: 'keep' };
const CWE_CODES: ComponentMap = {
  1: 'keep',
  2: 'keep',
  3: 'keep',
  4: 'keep',
  5: 'keep',
  6: 'keep',
  7: 'keep',
  8: 'keep',
  // CWE-9 original text is what a person typed.
  9: 'text',
  10: 'keep',
  11: 'keep',
  12: 'keep',
  13: 'keep',
  14: 'keep',
  15: 'keep',
  16: 'keep',
  17: 'keep',
  18: 'keep',
  19: 'keep',
  20: 'keep',
  21: 'keep',
  22: 'keep',
};

/** Component maps of the data types that carry identifiers; components not listed are scanned. */
export const DATA_TYPES = {
  /** Person name: family (with its FN subcomponents), given, second names; suffix, prefix, degree. */
  XPN: {
    1: 'name',
    2: 'name',
    3: 'name',
    4: 'remove',
    5: 'remove',
    6: 'remove',
    7: 'keep',
    8: 'keep',
    9: 'keep',
    10: 'date',
    11: 'keep',
    12: 'date',
    13: 'date',
    14: 'remove',
    // v2.7 "called by": a nickname.
    15: 'name',
  },
  /** Person with id (providers, staff, contacts): id → pseudonym, name as XPN. */
  XCN: {
    1: 'id',
    2: 'name',
    3: 'name',
    4: 'name',
    5: 'remove',
    6: 'remove',
    7: 'remove',
    8: 'keep',
    9: 'keep',
    10: 'keep',
    11: 'remove',
    12: 'keep',
    13: 'keep',
    14: 'keep',
    15: 'keep',
    16: 'keep',
    17: 'date',
    18: 'keep',
    19: 'date',
    20: 'date',
    21: 'remove',
    22: 'keep',
    23: 'keep',
    24: 'remove',
    25: 'keep',
  },
  /** Performing person and time (TXA-22): XCN-1..14, then the time the action was performed. */
  PPN: {
    1: 'id',
    2: 'name',
    3: 'name',
    4: 'name',
    5: 'remove',
    6: 'remove',
    7: 'remove',
    8: 'keep',
    9: 'keep',
    10: 'keep',
    11: 'remove',
    12: 'keep',
    13: 'keep',
    14: 'keep',
    15: 'date',
    18: 'date',
    20: 'date',
    21: 'date',
    22: 'remove',
  },
  /** Interpreter/technician (OBR-32..35): CNN in component 1's subcomponents, then a period. */
  NDL: {
    1: {
      sub: { 1: 'id', 2: 'name', 3: 'name', 4: 'name', 5: 'remove', 6: 'remove', 7: 'remove' },
    },
    2: 'date',
    3: 'date',
  },
  /** Extended identifier (MRN, account, visit number): id → pseudonym; assigning authority, type kept. */
  CX: {
    1: 'id',
    2: 'remove',
    3: 'keep',
    4: 'keep',
    5: 'keep',
    6: 'keep',
    7: 'date',
    8: 'date',
    9: 'keep',
    10: 'keep',
    11: 'remove',
    12: 'keep',
  },
  /** Entity identifier (order, document, device numbers). */
  EI,
  /** Placer/filler pair of EIs (parent order, specimen id). */
  EIP: { 1: { sub: EI }, 2: { sub: EI } },
  /** Address: street, city, county, census tract go; state, country, type stay; ZIP cut to 3 digits. */
  XAD: {
    1: 'text',
    2: 'text',
    3: 'name',
    4: 'region',
    5: 'zip',
    6: 'region',
    7: 'keep',
    8: 'text',
    9: 'remove',
    10: 'remove',
    11: 'keep',
    12: 'date',
    13: 'date',
    14: 'date',
    15: 'keep',
    16: 'keep',
    17: 'keep',
    18: 'keep',
    19: 'name',
    20: 'text',
    21: 'keep',
    22: 'keep',
    23: 'id',
  },
  /** Location with address (RXA-11): the place stays, the street address goes. */
  LA2: { 9: 'text', 10: 'text', 11: 'name', 12: 'region', 13: 'zip', 14: 'region', 15: 'keep', 16: 'text' },
  /** Telephone, fax, e-mail: only the use and equipment codes (and preference order) stay. */
  XTN: {
    1: 'text',
    2: 'keep',
    3: 'keep',
    4: 'text',
    5: 'remove',
    6: 'remove',
    7: 'text',
    8: 'remove',
    9: 'remove',
    10: 'remove',
    11: 'remove',
    12: 'text',
    13: 'date',
    14: 'date',
    15: 'keep',
    16: 'keep',
    17: 'remove',
    18: 'keep',
  },
  /** An employer or group as an organisation: its name goes, its ids become pseudonyms. */
  EMPLOYER: { 1: 'name', 2: 'keep', 3: 'id', 4: 'remove', 5: 'keep', 6: 'keep', 7: 'keep', 10: 'id' },
  /** Driver's licence: number → pseudonym; issuing state kept. */
  DLN: { 1: 'id', 2: 'keep', 3: 'date' },
  /** Practitioner licence (PRD-7). */
  PLN: { 1: 'id', 2: 'keep', 3: 'keep', 4: 'date' },
  /** Authorization (IN1-14): number, date, source. */
  AUI: { 1: 'id', 2: 'date', 3: 'keep' },
  /** A coded value: codes and their code-system displays stay; the original text goes. */
  CWE: CWE_CODES,
  /** Formatted coded value: the formatted texts go. */
  CF: { 1: 'keep', 2: 'text', 3: 'keep', 4: 'keep', 5: 'text', 6: 'keep', 7: 'keep', 8: 'keep', 9: 'text' },
  /** Encapsulated data (photos, documents, waveforms): the kind stays, the data goes. */
  ED: { 1: 'keep', 2: 'keep', 3: 'keep', 4: 'keep', 5: 'remove' },
  /** Reference pointer: the pointer goes. */
  RP: { 1: 'remove', 2: 'keep', 3: 'keep', 4: 'keep' },
} as const satisfies Record<string, ComponentMap>;

export type DataType = keyof typeof DATA_TYPES;

/** A field's rule: one value rule for each of its components, a data type, or OBX-5 (typed by OBX-2). */
export type FieldRule = ValueRule | DataType | 'obx-value';

/**
 * Segment → field → rule. A field-level `text`/`name`/`remove` applies to each whole repetition; `keep`
 * to the whole field; any other value rule to each component.
 */
export const SEGMENT_POLICY: Readonly<Record<string, Readonly<Record<number, FieldRule>>>> = {
  MSH: {
    3: 'keep',
    4: 'keep',
    5: 'keep',
    6: 'keep',
    7: 'date',
    8: 'remove',
    9: 'keep',
    10: 'id',
    11: 'keep',
    12: 'keep',
    13: 'keep',
    15: 'keep',
    16: 'keep',
    17: 'keep',
    18: 'keep',
    19: 'keep',
    20: 'keep',
    21: 'keep',
  },
  MSA: { 1: 'keep', 2: 'id', 3: 'text' },
  ERR: { 7: 'text', 8: 'text' },
  SFT: { 1: 'keep', 2: 'keep', 3: 'keep', 4: 'keep', 6: 'date' },
  EVN: { 1: 'keep', 2: 'date', 3: 'date', 5: 'XCN', 6: 'date', 7: 'keep' },
  PID: {
    2: 'CX',
    3: 'CX',
    4: 'CX',
    5: 'XPN',
    6: 'XPN',
    7: 'birthdate',
    8: 'keep',
    9: 'XPN',
    10: 'keep',
    11: 'XAD',
    // County: a subdivision below the state.
    12: 'remove',
    13: 'XTN',
    14: 'XTN',
    15: 'keep',
    16: 'keep',
    17: 'keep',
    18: 'CX',
    19: 'id',
    20: 'DLN',
    21: 'CX',
    22: 'keep',
    // Birth place: a city or a hospital's name.
    23: 'name',
    29: 'date',
    33: 'date',
    40: 'XTN',
  },
  PD1: { 3: 'keep', 4: 'XCN', 10: 'CX', 13: 'date', 14: 'name', 17: 'date', 18: 'date' },
  NK1: {
    2: 'XPN',
    3: 'keep',
    4: 'XAD',
    5: 'XTN',
    6: 'XTN',
    7: 'keep',
    8: 'date',
    9: 'date',
    10: 'text',
    12: 'CX',
    13: 'EMPLOYER',
    16: 'birthdate',
    26: 'XPN',
    30: 'XPN',
    31: 'XTN',
    32: 'XAD',
    33: 'CX',
    37: 'id',
    38: 'name',
    40: 'XTN',
    41: 'XTN',
  },
  PV1: {
    2: 'keep',
    3: 'keep',
    5: 'CX',
    6: 'keep',
    7: 'XCN',
    8: 'XCN',
    9: 'XCN',
    17: 'XCN',
    19: 'CX',
    25: 'date',
    30: 'date',
    35: 'date',
    44: 'date',
    45: 'date',
    50: 'CX',
    52: 'XCN',
  },
  PV2: {
    3: 'keep',
    5: 'text',
    6: 'text',
    8: 'date',
    9: 'date',
    12: 'text',
    13: 'XCN',
    14: 'date',
    17: 'date',
    26: 'date',
    28: 'date',
    29: 'date',
    33: 'date',
    46: 'date',
    47: 'date',
    48: 'date',
  },
  DB1: { 3: 'CX', 5: 'date', 6: 'date', 7: 'date', 8: 'date' },
  MRG: { 1: 'CX', 2: 'CX', 3: 'CX', 4: 'CX', 5: 'CX', 6: 'CX', 7: 'XPN' },
  ROL: { 1: 'EI', 3: 'keep', 4: 'XCN', 5: 'date', 6: 'date', 11: 'XAD', 12: 'XTN' },
  PRT: {
    1: 'EI',
    4: 'keep',
    5: 'XCN',
    8: 'keep',
    9: 'keep',
    10: 'EI',
    11: 'date',
    12: 'date',
    14: 'XAD',
    15: 'XTN',
    16: 'EI',
    17: 'date',
    18: 'date',
    // Device lot and serial numbers (Safe Harbor: device identifiers and serial numbers).
    19: 'id',
    20: 'id',
    21: 'EI',
  },
  CTD: { 2: 'XPN', 3: 'XAD', 5: 'XTN' },
  PRD: { 2: 'XPN', 3: 'XAD', 5: 'XTN', 7: 'PLN', 8: 'date', 9: 'date' },
  GT1: {
    2: 'CX',
    3: 'XPN',
    4: 'XPN',
    5: 'XAD',
    6: 'XTN',
    7: 'XTN',
    8: 'birthdate',
    12: 'id',
    13: 'date',
    14: 'date',
    // Guarantor employer name (an XPN), address, phone, employee id.
    16: 'XPN',
    17: 'XAD',
    18: 'XTN',
    19: 'CX',
    21: 'EMPLOYER',
    24: 'date',
    29: 'CX',
    31: 'date',
    32: 'date',
    42: 'XPN',
    45: 'XPN',
    46: 'XTN',
    49: 'text',
    51: 'EMPLOYER',
    56: 'name',
  },
  IN1: {
    2: 'keep',
    4: 'keep',
    5: 'XAD',
    6: 'XPN',
    7: 'XTN',
    8: 'id',
    9: 'EMPLOYER',
    10: 'CX',
    11: 'EMPLOYER',
    12: 'date',
    13: 'date',
    14: 'AUI',
    15: 'keep',
    16: 'XPN',
    17: 'keep',
    18: 'birthdate',
    19: 'XAD',
    24: 'date',
    26: 'date',
    28: 'id',
    29: 'date',
    30: 'XCN',
    36: 'id',
    44: 'XAD',
    49: 'CX',
    51: 'date',
    52: 'name',
  },
  // Nearly every IN2 field is about the insured person, their employer or their military service.
  IN2: {
    1: 'CX',
    2: 'id',
    3: 'XCN',
    // "Employer information data": senders put the employer's name here.
    4: 'name',
    6: 'id',
    7: 'XPN',
    8: 'id',
    9: 'XPN',
    10: 'id',
    12: 'text',
    13: 'text',
    17: 'date',
    22: 'XPN',
    23: 'text',
    26: 'CX',
    40: 'XPN',
    44: 'date',
    45: 'date',
    46: 'text',
    49: 'XPN',
    50: 'XTN',
    52: 'XPN',
    53: 'XTN',
    55: 'date',
    56: 'date',
    58: 'XTN',
    61: 'CX',
    63: 'XTN',
    64: 'XTN',
    69: 'EMPLOYER',
    70: 'EMPLOYER',
  },
  IN3: { 2: 'CX', 3: 'XCN', 5: 'date', 6: 'date', 7: 'XCN', 8: 'date', 9: 'date', 12: 'date' },
  ACC: { 1: 'date', 3: 'text', 7: 'XCN', 8: 'text', 9: 'text', 11: 'XAD' },
  PDA: { 4: 'date', 5: 'XCN', 7: 'date', 8: 'XCN' },
  ARV: { 5: 'text', 6: 'date' },
  CON: {
    4: 'EI',
    5: 'text',
    6: 'text',
    7: 'text',
    8: 'text',
    9: 'text',
    12: 'date',
    13: 'date',
    14: 'date',
    15: 'date',
    24: 'XPN',
  },
  ORC: {
    1: 'keep',
    2: 'EI',
    3: 'EI',
    4: 'EI',
    5: 'keep',
    8: 'EIP',
    9: 'date',
    10: 'XCN',
    11: 'XCN',
    12: 'XCN',
    14: 'XTN',
    15: 'date',
    19: 'XCN',
    21: 'keep',
    22: 'XAD',
    23: 'XTN',
    24: 'XAD',
    27: 'date',
    33: 'CX',
  },
  TQ1: { 7: 'date', 8: 'date' },
  OBR: {
    2: 'EI',
    3: 'EI',
    4: 'keep',
    6: 'date',
    7: 'date',
    8: 'date',
    10: 'XCN',
    // Relevant clinical information: free text.
    13: 'text',
    14: 'date',
    16: 'XCN',
    17: 'XTN',
    // Placer/filler fields: senders' own numbers (often accession numbers).
    18: 'id',
    19: 'id',
    20: 'id',
    21: 'id',
    22: 'date',
    24: 'keep',
    25: 'keep',
    28: 'XCN',
    29: 'EIP',
    32: 'NDL',
    33: 'NDL',
    34: 'NDL',
    35: 'NDL',
    36: 'date',
    39: 'text',
    43: 'text',
    44: 'keep',
    45: 'keep',
    53: 'CX',
  },
  OBX: {
    1: 'keep',
    2: 'keep',
    3: 'keep',
    4: 'keep',
    5: 'obx-value',
    6: 'keep',
    7: 'keep',
    8: 'keep',
    11: 'keep',
    12: 'date',
    13: 'text',
    14: 'date',
    16: 'XCN',
    17: 'keep',
    // Equipment instance (device serial) and observation instance identifiers.
    18: 'EI',
    19: 'date',
    21: 'EI',
    23: 'keep',
    24: 'XAD',
    25: 'XCN',
    33: 'EIP',
  },
  NTE: { 1: 'keep', 2: 'keep', 3: 'text', 4: 'keep', 5: 'XCN', 6: 'date', 7: 'date', 8: 'date' },
  SPM: {
    2: 'EIP',
    3: 'EIP',
    4: 'keep',
    14: 'text',
    17: 'date',
    18: 'date',
    19: 'date',
    30: 'CX',
    31: 'CX',
    32: 'EI',
  },
  SAC: { 1: 'EI', 2: 'EI', 3: 'EI', 4: 'EI', 5: 'EI', 7: 'date', 10: 'EI', 13: 'EI' },
  DG1: { 3: 'keep', 5: 'date', 6: 'keep', 16: 'XCN', 19: 'date', 20: 'EI' },
  PR1: { 3: 'keep', 5: 'date', 8: 'XCN', 11: 'XCN', 12: 'XCN', 19: 'EI' },
  AL1: { 2: 'keep', 3: 'keep', 4: 'keep', 6: 'date' },
  IAM: { 3: 'keep', 7: 'EI', 11: 'date', 12: 'text', 13: 'date', 14: 'XPN', 18: 'XCN', 20: 'date' },
  PRB: { 2: 'date', 3: 'keep', 4: 'EI', 7: 'date', 8: 'date', 9: 'date', 16: 'date' },
  TXA: {
    4: 'date',
    5: 'XCN',
    6: 'date',
    7: 'date',
    8: 'date',
    9: 'XCN',
    10: 'XCN',
    11: 'XCN',
    12: 'EI',
    13: 'EI',
    14: 'EI',
    15: 'EI',
    // Unique document file name.
    16: 'id',
    22: 'PPN',
    23: 'XCN',
  },
  SCH: {
    1: 'EI',
    2: 'EI',
    12: 'XCN',
    13: 'XTN',
    14: 'XAD',
    16: 'XCN',
    17: 'XTN',
    18: 'XAD',
    20: 'XCN',
    21: 'XTN',
    23: 'EI',
    24: 'EI',
    26: 'EI',
    27: 'EI',
  },
  AIS: { 4: 'date' },
  AIG: { 8: 'date' },
  AIL: { 6: 'date' },
  AIP: { 3: 'XCN', 6: 'date' },
  RF1: {
    6: 'EI',
    7: 'date',
    8: 'date',
    9: 'date',
    11: 'EI',
    13: 'date',
    14: 'text',
    20: 'XCN',
    21: 'text',
    22: 'date',
    23: 'XTN',
    24: 'text',
  },
  AUT: { 4: 'date', 5: 'date', 6: 'EI', 9: 'date' },
  FT1: { 2: 'id', 3: 'id', 4: 'date', 5: 'date', 20: 'XCN', 21: 'XCN', 23: 'EI', 24: 'XCN' },
  RXO: { 14: 'XCN' },
  RXE: { 13: 'XCN', 14: 'XCN' },
  RXD: { 3: 'date', 10: 'XCN' },
  RXA: { 3: 'date', 4: 'date', 10: 'XCN', 11: 'LA2', 16: 'date', 22: 'date' },
  ODS: { 4: 'text' },
  QRD: { 1: 'date', 4: 'id', 8: 'XCN' },
};

/**
 * OBX-2 value type → the rule for OBX-5. Numbers and codes stay; free text goes; dates become years;
 * person, address and identifier types get their data type's rule. An unknown or missing type is
 * treated as free text.
 */
export const OBX_VALUE_RULES: Readonly<Record<string, FieldRule>> = {
  NM: 'keep',
  SN: 'keep',
  NA: 'keep',
  MA: 'keep',
  CQ: 'keep',
  MO: 'keep',
  NR: 'keep',
  ID: 'keep',
  IS: 'keep',
  HD: 'keep',
  CE: 'CWE',
  CWE: 'CWE',
  CNE: 'CWE',
  CF: 'CF',
  ST: 'result',
  TX: 'text',
  FT: 'text',
  DT: 'date',
  DTM: 'date',
  TS: 'date',
  DR: 'date',
  TM: 'remove',
  ED: 'ED',
  RP: 'RP',
  PN: 'XPN',
  XPN: 'XPN',
  CN: 'XCN',
  XCN: 'XCN',
  AD: 'XAD',
  XAD: 'XAD',
  TN: 'remove',
  XTN: 'XTN',
  CX: 'CX',
  EI: 'EI',
  XON: 'EMPLOYER',
};

/** LOINC codes of an age observation (OBX-3): a value over 89 years is reported as 90. */
export const AGE_CODES: ReadonlySet<string> = new Set(['30525-0', '21612-7', '29553-5']);

/** Units (OBX-6) that mean years; empty units on an age code are read as years too. */
export const YEAR_UNITS: ReadonlySet<string> = new Set(['', 'a', 'yr', 'yrs', 'y', 'year', 'years']);

/**
 * Three-digit ZIP areas with 20,000 people or fewer (HHS Safe Harbor guidance, 2000 Census): their
 * prefix is reported as `000`.
 */
export const RESTRICTED_ZIP3: ReadonlySet<string> = new Set([
  '036',
  '059',
  '063',
  '102',
  '203',
  '556',
  '692',
  '790',
  '821',
  '823',
  '830',
  '831',
  '878',
  '879',
  '884',
  '890',
  '893',
]);
