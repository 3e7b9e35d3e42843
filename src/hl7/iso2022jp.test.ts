import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { decodeIso2022Jp, encodeIso2022Jp, iso2022Designation } from './iso2022jp.js';

const bytes = (s: string): Buffer => Buffer.from(s, 'latin1');
const latin1 = (b: Buffer): string => b.toString('latin1');

describe('decodeIso2022Jp', () => {
  it('decodes JIS X 0208 runs between ESC $ B and ESC ( B', () => {
    expect(decodeIso2022Jp(bytes('\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B'))).toBe('山田^太郎');
  });

  it('treats ESC $ @ (1978) like ESC $ B and ESC ( J like ASCII', () => {
    // ESC ( J: 0x5C and 0x7E stay `\` and `~` so that HL7 delimiters survive.
    expect(decodeIso2022Jp(bytes('\x1b$@;3ED\x1b(J|\\~^'))).toBe('山田|\\~^');
    expect(decodeIso2022Jp(bytes('\x1b$(B;3\x1b(B'))).toBe('山');
  });

  it('decodes JIS X 0212 after ESC $ ( D', () => {
    expect(decodeIso2022Jp(bytes('\x1b$(D0!\x1b(B'))).toBe('丂');
  });

  it('decodes half-width katakana after ESC ( I and as 8-bit bytes', () => {
    expect(decodeIso2022Jp(bytes('\x1b(I4F\x1b(B'))).toBe('ｴﾆ');
    expect(decodeIso2022Jp(bytes('\x1b(I1\x1b(B'))).toBe('ｱ');
    expect(decodeIso2022Jp(bytes('A\xb1B'))).toBe('AｱB');
  });

  it('lets controls through in any mode and does not need a final ESC ( B', () => {
    expect(decodeIso2022Jp(bytes('\x1b$B;3\r\nED'))).toBe('山\r\n田');
    expect(decodeIso2022Jp(bytes('\x1b$B;3'))).toBe('山');
  });

  it('writes U+FFFD for broken input and keeps going', () => {
    expect(decodeIso2022Jp(bytes('\x1b$B;\x1b(BA'))).toBe('\uFFFDA'); // odd byte
    expect(decodeIso2022Jp(bytes('\x1b$B;3;'))).toBe('山\uFFFD'); // odd byte at the end
    expect(decodeIso2022Jp(bytes('A\x80B\xffC'))).toBe('A\uFFFDB\uFFFDC');
    expect(decodeIso2022Jp(bytes('\x1b(I\x7e\x1b(B'))).toBe('\uFFFD'); // outside JIS X 0201 katakana
  });

  it('keeps unknown escape sequences as text', () => {
    expect(decodeIso2022Jp(bytes('A\x1b$AB'))).toBe('A\x1b$AB');
    expect(decodeIso2022Jp(bytes('\x1b'))).toBe('\x1b');
  });

  it('reads a subarray without looking outside it', () => {
    const whole = bytes('XX\x1b$B;3\x1b(BYY');
    expect(decodeIso2022Jp(whole.subarray(2, 10))).toBe('山');
  });
});

describe('encodeIso2022Jp', () => {
  it('writes the canonical form, ending in ASCII', () => {
    expect(latin1(encodeIso2022Jp('山田^太郎'))).toBe('\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B');
    expect(latin1(encodeIso2022Jp('山'))).toBe('\x1b$B;3\x1b(B');
    expect(latin1(encodeIso2022Jp('丂山'))).toBe('\x1b$(D0!\x1b$B;3\x1b(B');
    expect(latin1(encodeIso2022Jp('ｱ'))).toBe('\x1b(I1\x1b(B');
    expect(latin1(encodeIso2022Jp('MSH|^~\\&|'))).toBe('MSH|^~\\&|');
  });

  it('sizes its output for the worst case: every character switches the set', () => {
    for (const unit of ['山|', 'ｱ|', '丂|', 'ｱ山', '丂ｱ山|']) {
      const text = unit.repeat(200);
      expect(decodeIso2022Jp(encodeIso2022Jp(text))).toBe(text);
    }
  });

  it('puts every delimiter and segment break in ASCII mode', () => {
    expect(latin1(encodeIso2022Jp('山\r田'))).toBe('\x1b$B;3\x1b(B\r\x1b$BED\x1b(B');
  });

  it('writes ? for characters outside the JIS sets, and full-width forms for ¥ ‾', () => {
    expect(latin1(encodeIso2022Jp('a😀b'))).toBe('a?b');
    expect(decodeIso2022Jp(encodeIso2022Jp('¥‾'))).toBe('￥￣');
  });

  it('round-trips any text of ASCII, JIS X 0208, JIS X 0212 and katakana characters', () => {
    // Characters iconv-lite's EUC-JP can write and read back (one of each kind).
    const jis = [...'山田太郎日本病院東京都渋谷区あいうアイウ①Ⅰ〒ー・丂Łｱｲﾞ'];
    const ascii = [...'ABC xyz 012 |^~\\&\r\n'];
    const char = fc.constantFrom(...jis, ...ascii);
    fc.assert(
      fc.property(fc.array(char, { maxLength: 40 }), (chars) => {
        const text = chars.join('');
        const encoded = encodeIso2022Jp(text);
        expect(encoded.every((b) => b < 0x80)).toBe(true); // 7-bit
        expect(decodeIso2022Jp(encoded)).toBe(text);
        expect(encodeIso2022Jp(decodeIso2022Jp(encoded)).equals(encoded)).toBe(true);
      }),
    );
  });

  it('agrees with EUC-JP on the JIS X 0208 table', () => {
    // Every valid two-byte JIS X 0208 code decodes to what iconv-lite's EUC-JP says for code | 0x8080.
    for (let b1 = 0x21; b1 <= 0x7e; b1++) {
      const row: number[] = [];
      for (let b2 = 0x21; b2 <= 0x7e; b2++) row.push(b1, b2);
      const viaEuc = iconv.decode(Buffer.from(row.map((b) => b | 0x80)), 'eucjp');
      const jis = Buffer.concat([bytes('\x1b$B'), Buffer.from(row), bytes('\x1b(B')]);
      expect(decodeIso2022Jp(jis)).toBe(viaEuc);
    }
  });
});

describe('iso2022Designation', () => {
  it('reports length and whether the set is ASCII', () => {
    expect(iso2022Designation(bytes('\x1b(B'), 0)).toEqual({ ascii: true, length: 3 });
    expect(iso2022Designation(bytes('\x1b(J'), 0)).toEqual({ ascii: true, length: 3 });
    expect(iso2022Designation(bytes('\x1b(I'), 0)).toEqual({ ascii: false, length: 3 });
    expect(iso2022Designation(bytes('\x1b$B'), 0)).toEqual({ ascii: false, length: 3 });
    expect(iso2022Designation(bytes('\x1b$(D'), 0)).toEqual({ ascii: false, length: 4 });
    expect(iso2022Designation(bytes('\x1b$A'), 0)).toBeUndefined();
    expect(iso2022Designation(bytes('\x1b'), 0)).toBeUndefined();
  });
});
