import iconv from 'iconv-lite';

/**
 * ISO-2022-JP for MSH-18 `ISO IR87` / `ISO IR159` (JAHIS and other Japanese HL7 v2 senders), which
 * iconv-lite 0.7 does not implement. Both directions go through EUC-JP, which iconv-lite does have: a
 * JIS X 0208 pair `b1 b2` (0x21..0x7E) is EUC-JP `b1|0x80 b2|0x80`, JIS X 0212 is the same behind 0x8F,
 * and a JIS X 0201 katakana byte is 0x8E followed by `b|0x80`. So the ISO-2022 stream is rewritten to
 * EUC-JP bytes (or back) in one linear pass and iconv-lite does the table work.
 *
 * Designations understood when decoding:
 *   ESC ( B  ASCII                 ESC $ B    JIS X 0208-1983/1990
 *   ESC ( J  JIS X 0201 Roman      ESC $ @    JIS C 6226-1978 (decoded with the 0208 table)
 *   ESC ( I  JIS X 0201 katakana   ESC $ ( D  JIS X 0212-1990 (RFC 2237)
 *                                  ESC $ ( B  same as ESC $ B
 * JIS X 0201 Roman is decoded as ASCII: HL7 delimiters are bytes, and 0x5C/0x7E must stay the escape and
 * repetition characters, not become ¥ and ‾. Outside a two-byte run, 0xA1..0xDF are taken as 8-bit
 * JIS X 0201 katakana (`ISO IR14` senders); any other byte ≥ 0x80, an odd byte left in a two-byte run and
 * a two-byte code outside the tables decode to U+FFFD. Control bytes (CR, LF, …) pass through in any mode,
 * so a sender that forgets to return to ASCII before a segment break loses nothing. Unknown escape
 * sequences are kept as text (U+001B and the bytes after it), so they survive a re-encode.
 *
 * The encoder writes the canonical form: ESC $ B before a run of JIS X 0208 characters, ESC $ ( D for
 * JIS X 0212, ESC ( I for half-width katakana and ESC ( B before any ASCII byte (so every delimiter and
 * segment break is in ASCII) and at the end. A stream written that way decodes and re-encodes to the same
 * bytes; other spellings (ESC $ @, ESC ( J, 8-bit katakana, redundant escapes) decode to the same text
 * but re-encode canonically. Characters with no JIS code become `?` (iconv-lite's replacement).
 */

const ESC = 0x1b;
const REPLACEMENT = 0xff; // not a valid EUC-JP byte: iconv-lite decodes it to U+FFFD

/** The set designated to G0: what the bytes 0x21..0x7E mean. */
const Mode = { Ascii: 0, Jis0208: 1, Jis0212: 2, Katakana: 3 } as const;
type Mode = (typeof Mode)[keyof typeof Mode];

/** Decodes ISO-2022-JP (with the JIS X 0212 and katakana designations above) to a string. */
export function decodeIso2022Jp(bytes: Uint8Array): string {
  const n = bytes.length;
  let plain = true;
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    if (b === ESC || b >= 0x80) {
      plain = false;
      break;
    }
  }
  if (plain) return Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1');

  const out = Buffer.allocUnsafe(n * 2); // at most 2 EUC-JP bytes per input byte (katakana)
  let o = 0;
  let mode: Mode = Mode.Ascii;
  let i = 0;
  while (i < n) {
    const b = bytes[i]!;
    if (b === ESC) {
      const seq = designation(bytes, i);
      if (seq !== undefined) {
        mode = seq.mode;
        i += seq.length;
        continue;
      }
      out[o++] = b;
      i++;
      continue;
    }
    if (b < 0x21 || b === 0x7f) {
      out[o++] = b; // controls and space: the same in every mode
      i++;
      continue;
    }
    if (b >= 0x80) {
      if (mode === Mode.Ascii && b >= 0xa1 && b <= 0xdf) {
        out[o++] = 0x8e;
        out[o++] = b;
      } else {
        out[o++] = REPLACEMENT;
      }
      i++;
      continue;
    }
    switch (mode) {
      case Mode.Ascii:
        out[o++] = b;
        i++;
        break;
      case Mode.Katakana:
        if (b <= 0x5f) {
          out[o++] = 0x8e;
          out[o++] = b | 0x80;
        } else {
          out[o++] = REPLACEMENT;
        }
        i++;
        break;
      default: {
        const b2 = i + 1 < n ? bytes[i + 1]! : -1;
        if (b2 < 0x21 || b2 > 0x7e) {
          out[o++] = REPLACEMENT; // odd byte: the pair is broken; b2 is handled on its own
          i++;
          break;
        }
        if (mode === Mode.Jis0212) out[o++] = 0x8f;
        out[o++] = b | 0x80;
        out[o++] = b2 | 0x80;
        i += 2;
      }
    }
  }
  return iconv.decode(out.subarray(0, o), 'eucjp');
}

/** Encodes a string as canonical ISO-2022-JP (see above); always ends in ASCII mode. */
export function encodeIso2022Jp(text: string): Buffer {
  // Pure ASCII (the usual ACK) needs no tables.
  if (!NON_ASCII.test(text)) return Buffer.from(text, 'latin1');
  // iconv-lite's EUC-JP maps ¥ and ‾ to 0x5C and 0x7E, which would turn a character of content into
  // the HL7 escape or repetition character; use their full-width JIS X 0208 forms instead.
  const euc = iconv.encode(text.replace(/\u00a5/g, '\uffe5').replace(/\u203e/g, '\uffe3'), 'eucjp');
  const n = euc.length;
  // Worst case is 3 bytes per EUC-JP byte: a two-byte character and an ASCII one, alternating, each
  // behind its 3-byte designation (9 bytes for 3); plus the final ESC ( B.
  const out = Buffer.allocUnsafe(n * 3 + 3);
  let o = 0;
  let mode: Mode = Mode.Ascii;
  const switchTo = (next: Mode): void => {
    if (mode === next) return;
    mode = next;
    const seq = ESCAPES[next];
    for (let k = 0; k < seq.length; k++) out[o++] = seq[k]!;
  };
  let i = 0;
  while (i < n) {
    const b = euc[i]!;
    if (b < 0x80) {
      switchTo(Mode.Ascii);
      out[o++] = b;
      i++;
    } else if (b === 0x8e && i + 1 < n) {
      switchTo(Mode.Katakana);
      out[o++] = euc[i + 1]! & 0x7f;
      i += 2;
    } else if (b === 0x8f && i + 2 < n) {
      switchTo(Mode.Jis0212);
      out[o++] = euc[i + 1]! & 0x7f;
      out[o++] = euc[i + 2]! & 0x7f;
      i += 3;
    } else if (b >= 0xa1 && i + 1 < n) {
      switchTo(Mode.Jis0208);
      out[o++] = b & 0x7f;
      out[o++] = euc[i + 1]! & 0x7f;
      i += 2;
    } else {
      // Not produced by iconv-lite's encoder; kept defensive.
      switchTo(Mode.Ascii);
      out[o++] = 0x3f;
      i++;
    }
  }
  switchTo(Mode.Ascii);
  return Buffer.from(out.subarray(0, o));
}

const NON_ASCII = /[^\u0000-\u007f]/;

/** The designation the encoder writes for each mode. */
const ESCAPES: Record<Mode, readonly number[]> = {
  [Mode.Ascii]: [ESC, 0x28, 0x42], // ESC ( B
  [Mode.Jis0208]: [ESC, 0x24, 0x42], // ESC $ B
  [Mode.Jis0212]: [ESC, 0x24, 0x28, 0x44], // ESC $ ( D
  [Mode.Katakana]: [ESC, 0x28, 0x49], // ESC ( I
};

/** The designation starting at bytes[i] (an ESC), or undefined when it is not one we know. */
function designation(bytes: Uint8Array, i: number): { mode: Mode; length: number } | undefined {
  const b1 = bytes[i + 1];
  const b2 = bytes[i + 2];
  if (b1 === 0x28) {
    if (b2 === 0x42 || b2 === 0x4a) return { mode: Mode.Ascii, length: 3 }; // ( B, ( J
    if (b2 === 0x49) return { mode: Mode.Katakana, length: 3 }; // ( I
    return undefined;
  }
  if (b1 !== 0x24) return undefined;
  if (b2 === 0x42 || b2 === 0x40) return { mode: Mode.Jis0208, length: 3 }; // $ B, $ @
  if (b2 === 0x28) {
    const b3 = bytes[i + 3];
    if (b3 === 0x44) return { mode: Mode.Jis0212, length: 4 }; // $ ( D
    if (b3 === 0x42 || b3 === 0x40) return { mode: Mode.Jis0208, length: 4 }; // $ ( B, $ ( @
  }
  return undefined;
}

/**
 * The ISO-2022-JP designation at bytes[i] (an ESC): its length and whether it returns to ASCII (ESC ( B,
 * ESC ( J). For the MSH scanner, which must not take the bytes of a two-byte or katakana run for
 * delimiters. Undefined when the bytes are not a designation this module knows.
 */
export function iso2022Designation(
  bytes: Uint8Array,
  i: number,
): { ascii: boolean; length: number } | undefined {
  const seq = designation(bytes, i);
  return seq === undefined ? undefined : { ascii: seq.mode === Mode.Ascii, length: seq.length };
}
