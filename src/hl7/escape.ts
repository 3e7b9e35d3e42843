import { type Delimiters, encodingCharacters } from './delimiters.js';

/**
 * HL7 v2 escape sequences (v2.5.1 §2.7 "Use of escape sequences in text fields").
 * Decoding turns a wire value into the text it stands for; encoding does the reverse so that
 * `unescape(escape(v)) === v` for any text v.
 */
export interface UnescapeOptions {
  /**
   * FT/TX formatting commands (§2.7.6: \.br\ \.sp\ \.fi\ \.nf\ \.in\ \.ti\ \.sk\ \.ce\):
   * 'text' (default) renders them as plain-text line breaks and spaces; 'keep' leaves them escaped.
   */
  formatting?: 'text' | 'keep';
  /** \H\ (start highlighting) and \N\ (normal text), §2.7.1: 'drop' (default) removes them, 'keep' leaves them. */
  highlight?: 'drop' | 'keep';
  /** How the bytes of \Xhh..\ decode (§2.7.3). Default: UTF-8 when the bytes are valid UTF-8, else Latin-1. */
  hexDecoder?: (bytes: Buffer) => string;
}

const DEFAULT_OPTIONS: Required<Omit<UnescapeOptions, 'hexDecoder'>> = {
  formatting: 'text',
  highlight: 'drop',
};

export function unescape(value: string, d: Delimiters, options?: UnescapeOptions): string {
  const esc = d.escape;
  // Fast path: most values carry no escape character at all.
  if (esc === '' || value.indexOf(esc) === -1) return value;
  const formatting = options?.formatting ?? DEFAULT_OPTIONS.formatting;
  const highlight = options?.highlight ?? DEFAULT_OPTIONS.highlight;
  let out = '';
  let pos = 0;
  while (pos < value.length) {
    const open = value.indexOf(esc, pos);
    if (open === -1) break;
    const close = value.indexOf(esc, open + 1);
    if (close === -1) break; // an unterminated sequence is kept as literal text
    out += value.slice(pos, open);
    const seq = value.slice(open + 1, close);
    const decoded = decodeSequence(seq, d, formatting, highlight, options?.hexDecoder);
    out += decoded ?? value.slice(open, close + 1);
    pos = close + 1;
  }
  return out + value.slice(pos);
}

/** Returns the text a sequence stands for, or undefined to keep it literally (unknown or kept on purpose). */
function decodeSequence(
  seq: string,
  d: Delimiters,
  formatting: 'text' | 'keep',
  highlight: 'drop' | 'keep',
  hexDecoder: ((bytes: Buffer) => string) | undefined,
): string | undefined {
  switch (seq) {
    case 'F':
      return d.field;
    case 'S':
      return d.component;
    case 'T':
      return d.subcomponent;
    case 'R':
      return d.repetition;
    case 'E':
      return d.escape;
    case 'P':
      // v2.7 §2.7.1: \P\ is the truncation character. Before 2.7 it was undefined; decoding it is harmless.
      return d.truncation || undefined;
    case 'H':
    case 'N':
      return highlight === 'drop' ? '' : undefined;
    case '':
      return undefined;
  }
  const kind = seq[0];
  if (kind === 'X' || kind === 'x') return decodeHex(seq.slice(1), hexDecoder);
  if (kind === '.') return formatting === 'text' ? renderFormatting(seq.slice(1)) : undefined;
  // \Zxx\ (locally defined), \Cxxyy\ and \Mxxyyzz\ (ISO 2022 charset switches): kept for the reader.
  return undefined;
}

function decodeHex(hex: string, hexDecoder: ((bytes: Buffer) => string) | undefined): string | undefined {
  if (hex.length === 0 || hex.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(hex)) return undefined;
  const bytes = Buffer.from(hex, 'hex');
  if (hexDecoder) return hexDecoder(bytes);
  const utf8 = bytes.toString('utf8');
  return utf8.includes('\uFFFD') ? bytes.toString('latin1') : utf8;
}

/** FT formatting commands (§2.7.6) rendered as plain text. */
function renderFormatting(cmd: string): string | undefined {
  const name = cmd.slice(0, 2);
  const arg = cmd.slice(2).trim();
  const n = arg === '' ? 1 : Number.parseInt(arg, 10);
  switch (name) {
    case 'br':
      return arg === '' ? '\n' : undefined;
    case 'sp':
      return Number.isFinite(n) && n >= 0 ? '\n'.repeat(Math.min(Math.max(n, 1), 100)) : undefined;
    case 'sk':
      return Number.isFinite(n) && n >= 0 ? ' '.repeat(Math.min(n, 1000)) : undefined;
    case 'ce':
      return '\n';
    case 'fi':
    case 'nf':
    case 'in':
    case 'ti':
      // Word-wrap and indentation have no plain-text rendering; they only change layout.
      return Number.isFinite(n) || arg === '' ? '' : undefined;
    default:
      return undefined;
  }
}

const escapePatterns = new WeakMap<Delimiters, RegExp>();

function escapePattern(d: Delimiters): RegExp {
  let re = escapePatterns.get(d);
  if (!re) {
    const chars = [
      d.field,
      d.component,
      d.repetition,
      d.escape,
      d.subcomponent,
      d.truncation,
      '\r',
      '\n',
    ].filter((c) => c !== '');
    re = new RegExp(
      `[${chars.map((c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}]`,
      'g',
    );
    escapePatterns.set(d, re);
  }
  return re;
}

/** Encodes text for the wire: delimiters become \F\ \S\ \T\ \R\ \E\ (\P\), line breaks \.br\ and \X0D\. */
export function escape(value: string, d: Delimiters): string {
  const re = escapePattern(d);
  re.lastIndex = 0;
  if (!re.test(value)) return value;
  const e = d.escape;
  re.lastIndex = 0;
  return value.replace(re, (c) => {
    switch (c) {
      case d.escape:
        return `${e}E${e}`;
      case d.field:
        return `${e}F${e}`;
      case d.component:
        return `${e}S${e}`;
      case d.subcomponent:
        return `${e}T${e}`;
      case d.repetition:
        return `${e}R${e}`;
      case d.truncation:
        return `${e}P${e}`;
      case '\n':
        // \.br\ cannot be written when '.' is itself an encoding character: \X0A\ says the same.
        return (d.field + encodingCharacters(d)).includes('.') ? `${e}X0A${e}` : `${e}.br${e}`;
      default:
        return `${e}X0D${e}`;
    }
  });
}
