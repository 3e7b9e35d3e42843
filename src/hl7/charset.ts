import { isUtf8 } from 'node:buffer';
import iconv from 'iconv-lite';
import { EngineError } from '../errors.js';
import { decodeIso2022Jp, encodeIso2022Jp, iso2022Designation } from './iso2022jp.js';

/**
 * MSH-18 character sets: find the name in a frame's bytes, decode the frame to text, encode an ACK back.
 * The raw Buffer is only read, never changed, so the archive keeps the bytes exactly as received.
 *
 * Every charset HL7 uses on the wire is ASCII-compatible in the MSH segment, so MSH-18 is read from the
 * bytes before anything is decoded. The exceptions are the 16/32-bit Unicode forms (HL7 discourages them
 * over MLLP): a frame that starts with their BOM or with the NUL pattern of `MSH` in them is decoded in
 * that form whatever MSH-18 says, as is a frame that starts with a UTF-8 BOM. The bytes decide when they
 * can: a BOM or a NUL pattern is evidence, a label is a claim.
 *
 * Decisions:
 * - Empty MSH-18 → the channel's `charset` (`fallback`), default `UNICODE UTF-8`. HL7's own default is
 *   ASCII, and UTF-8 is ASCII's superset and by far the most common real-world case; a channel whose
 *   senders write Latin-1 with an empty MSH-18 sets `charset: 8859/1` (or `ASCII`, below).
 * - `ASCII` / `ISO IR6`: senders that claim ASCII often send Latin-1 or UTF-8 bytes. Decoding them as
 *   7-bit would destroy those bytes, so: valid UTF-8 (which includes pure ASCII) → UTF-8, otherwise
 *   Latin-1. Both keep every byte (encodeHl7 gives the input back), and `encoding` records which was used.
 * - `UNICODE` (UCS-2, kept for compatibility since v2.5), `UNICODE UTF-16`, `UNICODE UTF-32`: decoded in
 *   the 16/32-bit form the bytes show (BOM or NUL pattern; byte order from them, big-endian when only the
 *   name is known). A frame whose MSH we could read as single bytes cannot be in those forms, so a label
 *   naming one on an 8-bit frame is wrong; such a frame is decoded like `ASCII` (UTF-8, else Latin-1)
 *   rather than rejected, since that keeps every byte.
 * - Declared `UNICODE UTF-8` is decoded as UTF-8 as declared: invalid sequences become U+FFFD in the text
 *   (the raw bytes are archived unchanged).
 * - Japanese: `ISO IR87` (JIS X 0208) and `ISO IR159` (JIS X 0212) are used as ISO 2022 code extensions,
 *   which in practice (JAHIS) means an ISO-2022-JP byte stream: decoded by ./iso2022jp.ts, since
 *   iconv-lite 0.7 has no ISO-2022-JP. When the first repetition is empty or ASCII-like (`~ISO IR87`,
 *   `ISO IR6~ISO IR87`, `ISO IR14~ISO IR87`, JAHIS's usual form), a later `ISO IR87`/`ISO IR159`
 *   repetition selects ISO-2022-JP too. Alternates after any other first repetition are ignored: that
 *   charset decodes the whole message. `ISO IR14` alone (JIS X 0201, 8-bit: ASCII/Roman + half-width
 *   katakana) is decoded as Shift_JIS, its superset, which also reads senders that label Shift_JIS so.
 * - `CNS 11643-1992` (EUC-TW) is not supported: iconv-lite has no CNS 11643 tables. It, like any name not
 *   below, raises HL7_UNSUPPORTED_CHARSET, whose text never quotes the name.
 *
 * Names are matched case-insensitively, with runs of spaces/underscores collapsed; DICOM spellings
 * (`ISO_IR 192`, `ISO 2022 IR 87`) and `ISO-8859-n` are accepted as aliases.
 */

/** How a message's bytes were (or will be) turned into text. */
export interface CharsetInfo {
  /** MSH-18 (first repetition) as written, e.g. 'UNICODE UTF-8'; '' when MSH-18 is empty. */
  hl7Name: string;
  /**
   * The codec actually used: a Node Buffer encoding ('utf8', 'latin1', 'utf16le') or an iconv-lite name
   * ('iso88592', 'gb18030', 'big5', 'euc-kr', 'shift_jis', 'windows1252', 'utf16be', 'utf32le', …),
   * or 'iso-2022-jp' (this engine's own codec).
   */
  encoding: string;
}

/** The HL7 table 0211 names this engine decodes and encodes (aliases are listed in the module doc). */
export const SUPPORTED_CHARSETS: readonly string[] = Object.freeze([
  'ASCII',
  '8859/1',
  '8859/2',
  '8859/3',
  '8859/4',
  '8859/5',
  '8859/6',
  '8859/7',
  '8859/8',
  '8859/9',
  '8859/15',
  'ISO IR6',
  'ISO IR14',
  'ISO IR87',
  'ISO IR159',
  'GB 18030-2000',
  'KS X 1001',
  'BIG-5',
  'UNICODE',
  'UNICODE UTF-8',
  'UNICODE UTF-16',
  'UNICODE UTF-32',
]);

/** Used when MSH-18 is empty and the channel names no charset. */
export const DEFAULT_FALLBACK_CHARSET = 'UNICODE UTF-8';

const ISO_2022_JP = 'iso-2022-jp';

interface Entry {
  readonly encoding: string;
  /** ASCII-like: decode as UTF-8 when valid, else Latin-1 (see module doc). */
  readonly sniff?: boolean;
  /** 16/32-bit Unicode: only usable when the bytes show it. */
  readonly wide?: boolean;
  /** May be the base of an ISO 2022 stream whose later MSH-18 repetitions name ISO IR87/ISO IR159. */
  readonly iso2022Base?: boolean;
  /** Names ISO IR87 / ISO IR159 (switches an ISO 2022 stream to ISO-2022-JP). */
  readonly iso2022Jp?: boolean;
  /** A multi-byte legacy charset whose trail bytes can equal a delimiter (see scanMsh18). */
  readonly dbcs?: boolean;
}

const ASCII: Entry = { encoding: 'utf8', sniff: true, iso2022Base: true };
const UTF8: Entry = { encoding: 'utf8' };
const JIS: Entry = { encoding: ISO_2022_JP, iso2022Base: true, iso2022Jp: true };
const SJIS: Entry = { encoding: 'shift_jis', iso2022Base: true, dbcs: true };
const GB18030: Entry = { encoding: 'gb18030', dbcs: true };
const BIG5: Entry = { encoding: 'big5', dbcs: true };
const EUC_KR: Entry = { encoding: 'euc-kr', dbcs: true };
const iso8859 = (n: number): Entry => ({ encoding: n === 1 ? 'latin1' : `iso8859${n}` });

/** Canonical (normalised) name → codec. Aliases normalise onto these keys. */
const TABLE = new Map<string, Entry>([
  ['ASCII', ASCII],
  ['US-ASCII', ASCII],
  ['ISO IR6', ASCII],
  ...[1, 2, 3, 4, 5, 6, 7, 8, 9, 15].map((n): [string, Entry] => [`8859/${n}`, iso8859(n)]),
  // DICOM's ISO-IR numbers for the 8859 parts.
  ['ISO IR100', iso8859(1)],
  ['ISO IR101', iso8859(2)],
  ['ISO IR109', iso8859(3)],
  ['ISO IR110', iso8859(4)],
  ['ISO IR144', iso8859(5)],
  ['ISO IR127', iso8859(6)],
  ['ISO IR126', iso8859(7)],
  ['ISO IR138', iso8859(8)],
  ['ISO IR148', iso8859(9)],
  ['ISO IR203', iso8859(15)],
  ['WINDOWS-1252', { encoding: 'windows1252' }],
  ['UNICODE UTF-8', UTF8],
  ['ISO IR192', UTF8],
  ['UNICODE', { encoding: 'utf16be', wide: true }],
  ['UNICODE UTF-16', { encoding: 'utf16be', wide: true }],
  ['UNICODE UTF-32', { encoding: 'utf32be', wide: true }],
  ['ISO IR13', SJIS],
  ['ISO IR14', SJIS],
  ['ISO IR87', JIS],
  ['ISO IR159', JIS],
  ['GB 18030-2000', GB18030],
  ['KS X 1001', EUC_KR],
  ['ISO IR149', EUC_KR],
  ['BIG-5', BIG5],
]);

/** Upper case, spaces/underscores collapsed, aliases folded onto the TABLE keys. */
function normalise(name: string): string {
  const k = name
    .trim()
    .toUpperCase()
    .replace(/[\s_]+/g, ' ');
  let m = /^ISO ?-?(?:2022 ?-?)?IR ?-?0*(\d+)$/.exec(k);
  if (m) return `ISO IR${m[1]}`;
  m = /^(?:ISO ?-?)?8859 ?[-/ ]? ?0*(\d+)$/.exec(k);
  if (m) return `8859/${m[1]}`;
  m = /^(?:UNICODE ?)?UTF ?-?(8|16|32)$/.exec(k);
  if (m) return `UNICODE UTF-${m[1]}`;
  if (/^GB ?-?18030(?: ?-\d{4})?$/.test(k)) return 'GB 18030-2000';
  if (/^KS ?X ?-?1001(?: ?[-:]\d{4})?$|^EUC-?KR$/.test(k)) return 'KS X 1001';
  if (/^BIG ?-?5$/.test(k)) return 'BIG-5';
  if (/^(?:WINDOWS|CP) ?-?1252$/.test(k)) return 'WINDOWS-1252';
  if (k === 'LATIN1' || k === 'LATIN-1') return '8859/1';
  return k;
}

// Per-message lookups hit this cache; only known names are cached, so garbage cannot grow it.
const cache = new Map<string, Entry>();

function lookup(name: string): Entry | undefined {
  const hit = cache.get(name);
  if (hit !== undefined) return hit;
  const entry = TABLE.get(normalise(name));
  if (entry !== undefined) {
    if (cache.size >= 256) cache.clear();
    cache.set(name, entry);
  }
  return entry;
}

function unsupported(): EngineError {
  // Fixed text and no details: the name could be anything the sender put in MSH-18.
  return new EngineError('HL7_UNSUPPORTED_CHARSET', {}, { segment: 'MSH', segmentIndex: 1, field: 18 });
}

function lookupOrThrow(name: string): Entry {
  const entry = lookup(name);
  if (entry === undefined) throw unsupported();
  return entry;
}

/** The entry for MSH-18's first repetition, or for the fallback when it is empty. */
function entryFor(msh18: string, fallback: string | undefined): Entry {
  if (msh18.trim() !== '') return lookupOrThrow(msh18);
  const fb = fallback === undefined || fallback.trim() === '' ? DEFAULT_FALLBACK_CHARSET : fallback;
  return lookupOrThrow(fb);
}

/**
 * The codec for an MSH-18 value (one repetition). Empty → `fallback` (the channel's charset; default
 * `UNICODE UTF-8`), with `hl7Name` left ''. Throws HL7_UNSUPPORTED_CHARSET for a name not supported
 * (the fallback included). The result is what the name alone says; `decodeHl7` may refine it from the
 * bytes (ASCII → UTF-8 or Latin-1, UTF-16/32 byte order, BOMs).
 */
export function resolveCharset(msh18: string, fallback?: string): CharsetInfo {
  return { hl7Name: msh18, encoding: entryFor(msh18, fallback).encoding };
}

// ---------------------------------------------------------------------------------------------------
// Reading MSH-18 from bytes

const CR = 0x0d;
const LF = 0x0a;
const ESC = 0x1b;

/**
 * The first repetition of MSH-18 in a frame, read from its bytes without decoding the message ('' when
 * MSH-18 is absent or empty, or the frame has no readable MSH). Skips a BOM and whitespace/control bytes
 * before `MSH`, and FHS/BHS header segments in front of it (a batch file); reads no further than the MSH
 * segment's terminator (CR or LF). The field separator is the byte after `MSH`, the repetition
 * separator the second MSH-2 character. Never throws.
 */
export function readMsh18FromBytes(raw: Buffer): string {
  try {
    return readMsh18(raw)[0] ?? '';
  } catch {
    return '';
  }
}

/** All MSH-18 repetitions (['']: empty or absent), from an 8-bit or a detected 16/32-bit frame. */
function readMsh18(raw: Uint8Array): string[] {
  const wide = detectWide(raw);
  if (wide !== undefined) {
    // Rare: decode, then scan the text's UTF-8 form (delimiters are ASCII, so that form is exact).
    return scanBothWays(Buffer.from(decodeBytes(raw, wide), 'utf8'));
  }
  return scanBothWays(raw);
}

/**
 * In UTF-8 and the single-byte charsets a delimiter byte is always that delimiter. In GB 18030, Big-5,
 * Shift_JIS (and EUC-KR's UHC extension) the second byte of a two-byte character can equal `|` or `~`,
 * so a Chinese facility name in MSH-4 could shift the field count. When the MSH segment has bytes
 * ≥ 0x80 before MSH-18, it is scanned a second time skipping the byte after each lead byte; that reading
 * wins only if it names one of those multi-byte charsets (the plain reading of a two-byte text is what
 * may be off, and the skipping reading of an 8-bit text is unlikely to land on such a name).
 */
function scanBothWays(raw: Uint8Array): string[] {
  const plain = scanMsh18(raw, false);
  if (plain === undefined) return [''];
  if (!plain.sawHigh) return plain.reps;
  const skipping = scanMsh18(raw, true);
  const name = skipping?.reps[0];
  if (name !== undefined && name !== plain.reps[0] && lookup(name)?.dbcs === true) return skipping!.reps;
  return plain.reps;
}

function isBreak(b: number): boolean {
  return b === CR || b === LF;
}

function isAlnum(b: number): boolean {
  return (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5a) || (b >= 0x61 && b <= 0x7a);
}

function startsWith3(raw: Uint8Array, p: number, a: number, b: number, c: number): boolean {
  return raw[p] === a && raw[p + 1] === b && raw[p + 2] === c;
}

/** Offset of the MSH segment: after BOMs, whitespace/control bytes and up to 4 FHS/BHS segments. */
function findMsh(raw: Uint8Array): number {
  const n = raw.length;
  let p = 0;
  for (let seg = 0; seg < 5; seg++) {
    for (;;) {
      if (startsWith3(raw, p, 0xef, 0xbb, 0xbf)) p += 3;
      else if (p < n && raw[p]! <= 0x20) p++;
      else break;
    }
    if (p + 4 > n) return -1;
    if (startsWith3(raw, p, 0x4d, 0x53, 0x48)) return p; // MSH
    const isHeader = startsWith3(raw, p, 0x46, 0x48, 0x53) || startsWith3(raw, p, 0x42, 0x48, 0x53); // FHS BHS
    if (!isHeader) return -1;
    while (p < n && !isBreak(raw[p]!)) p++;
  }
  return -1;
}

interface Msh18Scan {
  reps: string[];
  /** A byte ≥ 0x80 occurred before the end of MSH-18. */
  sawHigh: boolean;
}

/**
 * Walks the MSH segment to MSH-18. ISO-2022-JP designations are followed so that the bytes of a
 * two-byte run are not taken for delimiters; `skipLeadTrail` skips the byte after each byte ≥ 0x81.
 */
function scanMsh18(raw: Uint8Array, skipLeadTrail: boolean): Msh18Scan | undefined {
  const n = raw.length;
  const p = findMsh(raw);
  if (p < 0) return undefined;
  const sep = raw[p + 3]!;
  if (isBreak(sep) || isAlnum(sep) || sep >= 0x80) return undefined;
  // MSH-2: the encoding characters; the second one is the repetition separator.
  let i = p + 4;
  let rep = -1;
  for (let k = 0; i < n && raw[i] !== sep && !isBreak(raw[i]!); i++, k++) {
    if (k === 1) rep = raw[i]!;
  }
  // Separator 1 is MSH-1 itself; MSH-n lies between separators n-1 and n, so MSH-18 starts after
  // separator 17. raw[i] is separator 2 (or the segment's end).
  let count = 1;
  let fieldStart = -1;
  let inJis = false;
  let sawHigh = false;
  let value = '';
  while (i < n) {
    const b = raw[i]!;
    if (isBreak(b)) break;
    if (b === ESC) {
      const seq = iso2022Designation(raw, i);
      if (seq !== undefined) {
        inJis = !seq.ascii;
        i += seq.length;
        continue;
      }
    }
    if (b >= 0x80) {
      sawHigh = true;
      if (skipLeadTrail && b >= 0x81 && b <= 0xfe && i + 1 < n && !isBreak(raw[i + 1]!)) {
        i += 2;
        continue;
      }
    }
    if (b === sep && !inJis) {
      if (fieldStart >= 0) {
        value = latin1(raw, fieldStart, i);
        fieldStart = -2;
        break;
      }
      count++;
      if (count === 17) fieldStart = i + 1;
    }
    i++;
  }
  if (fieldStart >= 0) value = latin1(raw, fieldStart, i); // MSH-18 ran to the segment's end
  const reps = rep >= 0 && rep !== sep ? value.split(String.fromCharCode(rep)) : [value];
  return { reps, sawHigh };
}

function latin1(raw: Uint8Array, start: number, end: number): string {
  return Buffer.from(raw.buffer, raw.byteOffset + start, end - start).toString('latin1');
}

// ---------------------------------------------------------------------------------------------------
// 16/32-bit detection

type WideEncoding = 'utf16le' | 'utf16be' | 'utf32le' | 'utf32be';

/** A 16/32-bit frame by its BOM, or by the NUL pattern of ASCII text (`M\0S\0…`) in its first bytes. */
function detectWide(raw: Uint8Array): WideEncoding | undefined {
  if (raw.length < 4) return undefined;
  const [b0, b1, b2, b3] = [raw[0]!, raw[1]!, raw[2]!, raw[3]!];
  if (b0 === 0xff && b1 === 0xfe) return b2 === 0 && b3 === 0 ? 'utf32le' : 'utf16le';
  if (b0 === 0xfe && b1 === 0xff) return 'utf16be';
  if (b0 === 0 && b1 === 0 && b2 === 0xfe && b3 === 0xff) return 'utf32be';
  if (b0 !== 0 && b1 === 0 && b2 === 0 && b3 === 0) return 'utf32le';
  if (b0 === 0 && b1 === 0 && b2 === 0 && b3 !== 0) return 'utf32be';
  if (b0 !== 0 && b1 === 0 && b2 !== 0 && b3 === 0) return 'utf16le';
  if (b0 === 0 && b1 !== 0 && b2 === 0 && b3 !== 0) return 'utf16be';
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Decoding and encoding

/**
 * Decodes a frame to text per its MSH-18 (first repetition; see the module doc for later ones), or
 * `fallback` when MSH-18 is empty. A BOM is kept in the text as U+FEFF (the parser skips it), so that
 * `encodeHl7(text, charset)` gives back the same bytes for any valid input in the canonical form.
 * Throws HL7_UNSUPPORTED_CHARSET for an unknown name. Does not modify `raw`.
 */
export function decodeHl7(raw: Buffer, fallback?: string): { text: string; charset: CharsetInfo } {
  const wide = detectWide(raw);
  if (wide !== undefined) {
    // The bytes show the form; MSH-18 (or the fallback) only has to be a name we know.
    const text = decodeBytes(raw, wide);
    const hl7Name = scanBothWays(Buffer.from(text, 'utf8'))[0] ?? '';
    entryFor(hl7Name, fallback);
    return { text, charset: { hl7Name, encoding: wide } };
  }
  const reps = scanBothWays(raw);
  const hl7Name = reps[0] ?? '';
  const entry = entryFor(hl7Name, fallback);
  let encoding: string;
  if (raw[0] === 0xef && raw[1] === 0xbb && raw[2] === 0xbf) {
    encoding = 'utf8'; // a UTF-8 BOM outweighs the label
  } else if (
    (hl7Name.trim() === '' || entry.iso2022Base === true) &&
    reps.some((r, k) => k > 0 && lookup(r)?.iso2022Jp === true)
  ) {
    encoding = ISO_2022_JP; // `~ISO IR87`, `ISO IR6~ISO IR87`, …: an ISO 2022 stream
  } else if (entry.sniff === true || entry.wide === true) {
    encoding = isUtf8(raw) ? 'utf8' : 'latin1';
  } else {
    encoding = entry.encoding;
  }
  return { text: decodeBytes(raw, encoding), charset: { hl7Name, encoding } };
}

function decodeBytes(raw: Uint8Array, encoding: string): string {
  const buf = Buffer.isBuffer(raw) ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength);
  switch (encoding) {
    case 'utf8':
    case 'latin1':
    case 'utf16le':
      return buf.toString(encoding);
    case ISO_2022_JP:
      return decodeIso2022Jp(buf);
    default:
      return iconv.decode(buf, encoding, { stripBOM: false });
  }
}

const NON_LATIN1 = /[^\u0000-\u00ff]/u;
const NON_LATIN1_ALL = /[^\u0000-\u00ff]/gu;

/**
 * Encodes text (an ACK, a message to send) in a charset from `decodeHl7` or `resolveCharset`.
 * Characters the charset cannot represent become `?`. No BOM is added. Throws HL7_UNSUPPORTED_CHARSET
 * when `charset.encoding` is not a codec this module knows.
 */
export function encodeHl7(text: string, charset: CharsetInfo): Buffer {
  const encoding = charset.encoding;
  switch (encoding) {
    case 'utf8':
    case 'utf16le':
      return Buffer.from(text, encoding);
    case 'latin1':
      // Node would keep only the low byte of a character above U+00FF; write `?` as iconv-lite does.
      return Buffer.from(NON_LATIN1.test(text) ? text.replace(NON_LATIN1_ALL, '?') : text, 'latin1');
    case ISO_2022_JP:
      return encodeIso2022Jp(text);
    case 'shift_jis':
    case 'eucjp':
    case 'euc-jp':
      // iconv-lite maps ¥ and ‾ onto 0x5C and 0x7E, the HL7 escape and repetition characters.
      return iconv.encode(text.replace(/\u00a5/g, '\uffe5').replace(/\u203e/g, '\uffe3'), encoding);
    default:
      if (!iconv.encodingExists(encoding)) throw unsupported();
      return iconv.encode(text, encoding, { addBOM: false });
  }
}
