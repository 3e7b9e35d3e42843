import fc from 'fast-check';
import iconv from 'iconv-lite';
import { describe, expect, it } from 'vitest';
import { EngineError, isEngineError } from '../errors.js';
import {
  type CharsetInfo,
  decodeHl7,
  encodeHl7,
  readMsh18FromBytes,
  resolveCharset,
  SUPPORTED_CHARSETS,
} from './charset.js';
import { readMshHeader } from './msh-header.js';

/** An ADT with MSH-18 = `charset` and `name` in PID-5. MSH-18 is the 18th field: `2.5` is MSH-12. */
function message(charset: string, name: string, sep = '|', enc = '^~\\&'): string {
  const f = [
    'MSH',
    enc,
    'SND',
    'FAC',
    'RCV',
    'RFAC',
    '20240101120000',
    '',
    'ADT^A01^ADT_A01',
    'CTRL1',
    'P',
    '2.5',
    '',
    '',
    '',
    '',
    '',
    charset,
  ];
  return `${f.join(sep)}\rPID${sep}1${sep}${sep}123^^^H^MR${sep}${sep}${name}\r`;
}

/** decodeHl7 must not touch the bytes: compare with a copy taken before. */
function decodeChecked(raw: Buffer, fallback?: string): { text: string; charset: CharsetInfo } {
  const copy = Buffer.from(raw);
  const result = decodeHl7(raw, fallback);
  expect(raw.equals(copy)).toBe(true);
  return result;
}

/** Bytes for the ISO IR87 sample, written by hand: JIS X 0208 山=3B33 田=4544 太=4240 郎=4F3A. */
const YAMADA_JIS = Buffer.from('\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B', 'latin1');

function iso2022jpMessage(charset: string): Buffer {
  const [head, tail] = message(charset, '@@').split('@@') as [string, string];
  return Buffer.concat([Buffer.from(head, 'latin1'), YAMADA_JIS, Buffer.from(tail, 'latin1')]);
}

describe('decodeHl7 / encodeHl7 round trip for every supported name', () => {
  // [MSH-18, sample, iconv-lite name that writes the fixture, encoding decodeHl7 must report]
  const cases: Array<[string, string, string, string]> = [
    ['ASCII', 'Smith^John', 'utf8', 'utf8'],
    ['ASCII', 'Müller^Jörg', 'latin1', 'latin1'],
    ['ASCII', 'Müller^Jörg', 'utf8', 'utf8'],
    ['ISO IR6', 'Müller^Jörg', 'latin1', 'latin1'],
    ['8859/1', 'Müller^Jörg', 'latin1', 'latin1'],
    ['8859/2', 'Łódź^Paweł', 'iso88592', 'iso88592'],
    ['8859/3', 'Ħal Għargħur', 'iso88593', 'iso88593'],
    ['8859/4', 'Ķeņģis^Ģirts', 'iso88594', 'iso88594'],
    ['8859/5', 'Иванов^Иван', 'iso88595', 'iso88595'],
    ['8859/6', 'محمد', 'iso88596', 'iso88596'],
    ['8859/7', 'Παπαδόπουλος', 'iso88597', 'iso88597'],
    ['8859/8', 'כהן^דוד', 'iso88598', 'iso88598'],
    ['8859/9', 'Öztürk^Şahin ığ', 'iso88599', 'iso88599'],
    ['8859/15', 'Œuvre^€ Šž', 'iso885915', 'iso885915'],
    ['UNICODE UTF-8', 'Müller^山田^김민준 😀', 'utf8', 'utf8'],
    ['ISO IR14', 'ﾔﾏﾀﾞ^ﾀﾛｳ', 'shift_jis', 'shift_jis'],
    ['GB 18030-2000', '张伟^王芳 𠀀', 'gb18030', 'gb18030'],
    ['KS X 1001', '김민준^이서연', 'euc-kr', 'euc-kr'],
    ['BIG-5', '陳大文^臺大醫院', 'big5', 'big5'],
    // aliases seen in the wild
    ['ISO IR192', 'Müller 山田', 'utf8', 'utf8'],
    ['UTF-8', 'Müller 山田', 'utf8', 'utf8'],
    ['UTF8', 'Müller 山田', 'utf8', 'utf8'],
    ['ISO IR100', 'Müller', 'latin1', 'latin1'],
    ['ISO-8859-1', 'Müller', 'latin1', 'latin1'],
    ['ISO-8859-2', 'Łódź', 'iso88592', 'iso88592'],
    ['Windows-1252', 'Œuvre €—“quoted”', 'windows1252', 'windows1252'],
    ['CP1252', 'Œuvre €', 'windows1252', 'windows1252'],
    // case and spacing
    ['unicode  utf-8', 'Müller 山田', 'utf8', 'utf8'],
    [' 8859/1 ', 'Müller', 'latin1', 'latin1'],
    ['ISO_IR 100', 'Müller', 'latin1', 'latin1'],
    ['ks x 1001', '김민준', 'euc-kr', 'euc-kr'],
    ['Big5', '陳大文', 'big5', 'big5'],
    ['GB18030', '张伟', 'gb18030', 'gb18030'],
  ];

  it.each(cases)('%s with %s (%s bytes)', (msh18, name, writer, expected) => {
    const text = message(msh18, name);
    const raw = iconv.encode(text, writer);
    const { text: decoded, charset } = decodeChecked(raw);
    expect(decoded).toBe(text);
    expect(charset).toEqual({ hl7Name: msh18, encoding: expected });
    expect(readMshHeader(decoded).charset).toBe(msh18);
    expect(encodeHl7(decoded, charset).equals(raw)).toBe(true);
  });

  it.each(['ISO IR87', 'iso ir87', 'ISO 2022 IR 87', '~ISO IR87', 'ISO IR6~ISO IR87', 'ISO IR14~ISO IR87'])(
    'ISO-2022-JP for MSH-18 %s',
    (msh18) => {
      const raw = iso2022jpMessage(msh18);
      const { text, charset } = decodeChecked(raw);
      expect(text).toBe(message(msh18, '山田^太郎'));
      expect(charset).toEqual({ hl7Name: msh18.split('~')[0], encoding: 'iso-2022-jp' });
      expect(encodeHl7(text, charset).equals(raw)).toBe(true);
    },
  );

  it('ISO IR159: JIS X 0212 after ESC $ ( D', () => {
    // 丂 is JIS X 0212 0x3021; 山 is JIS X 0208 0x3B33.
    const raw = Buffer.from(`${message('ISO IR159', '\x1b$(D0!\x1b$B;3\x1b(B')}`, 'latin1');
    const { text, charset } = decodeChecked(raw);
    expect(text).toBe(message('ISO IR159', '丂山'));
    expect(charset.encoding).toBe('iso-2022-jp');
    expect(encodeHl7(text, charset).equals(raw)).toBe(true);
  });

  it('the field separator byte inside a JIS X 0208 run is not a delimiter', () => {
    // 日 is JIS 0x467C: its second byte is `|`. MSH-4 = 日本病院 (Japanese hospital).
    const text = message('ISO IR87', 'Yamada').replace('|FAC|', '|日本病院|');
    const raw = encodeHl7(text, { hl7Name: 'ISO IR87', encoding: 'iso-2022-jp' });
    expect(raw.includes(Buffer.from('F|'))).toBe(true); // the byte really is there
    expect(readMsh18FromBytes(raw)).toBe('ISO IR87');
    expect(decodeChecked(raw).text).toBe(text);
  });

  it('Big-5 trail byte equal to `|` in MSH-4 does not shift MSH-18', () => {
    // 院 is Big-5 B0 7C.
    const text = message('BIG-5', '陳大文').replace('|FAC|', '|臺大醫院|');
    const raw = iconv.encode(text, 'big5');
    expect(readMsh18FromBytes(raw)).toBe('BIG-5');
    const { text: decoded, charset } = decodeChecked(raw);
    expect(decoded).toBe(text);
    expect(charset.encoding).toBe('big5');
  });

  it('Latin-1 text right before a separator is read plainly', () => {
    const text = message('8859/1', 'Müller').replace('|FAC|', '|Hôpital José|');
    const raw = Buffer.from(text, 'latin1');
    expect(readMsh18FromBytes(raw)).toBe('8859/1');
    expect(decodeChecked(raw).text).toBe(text);
  });

  it('alternates after a non-ASCII first repetition are ignored', () => {
    const text = message('8859/1~ISO IR87', 'Müller');
    const { text: decoded, charset } = decodeChecked(Buffer.from(text, 'latin1'));
    expect(decoded).toBe(text);
    expect(charset).toEqual({ hl7Name: '8859/1', encoding: 'latin1' });
  });
});

describe('16/32-bit Unicode frames', () => {
  const name = 'Müller^山田 😀';
  it.each([
    ['UNICODE UTF-16', 'utf16le', true, 'utf16le'],
    ['UNICODE UTF-16', 'utf16le', false, 'utf16le'],
    ['UNICODE UTF-16', 'utf16be', true, 'utf16be'],
    ['UNICODE UTF-16', 'utf16be', false, 'utf16be'],
    ['UNICODE', 'utf16be', false, 'utf16be'],
    ['UNICODE UTF-32', 'utf32le', true, 'utf32le'],
    ['UNICODE UTF-32', 'utf32be', false, 'utf32be'],
    ['', 'utf16le', true, 'utf16le'],
  ])('%s as %s (BOM %s)', (msh18, writer, bom, expected) => {
    const text = (bom ? '\uFEFF' : '') + message(msh18, name);
    const raw = iconv.encode(text, writer, { addBOM: false });
    expect(readMsh18FromBytes(raw)).toBe(msh18);
    const { text: decoded, charset } = decodeChecked(raw);
    expect(decoded).toBe(text);
    expect(charset).toEqual({ hl7Name: msh18, encoding: expected });
    expect(readMshHeader(decoded).controlId).toBe('CTRL1');
    expect(encodeHl7(decoded, charset).equals(raw)).toBe(true);
  });

  it('an 8-bit frame labelled UTF-16 is decoded like ASCII (UTF-8, else Latin-1)', () => {
    const utf8 = Buffer.from(message('UNICODE UTF-16', 'Müller'), 'utf8');
    expect(decodeChecked(utf8).charset).toEqual({ hl7Name: 'UNICODE UTF-16', encoding: 'utf8' });
    const latin1 = Buffer.from(message('UNICODE', 'Müller'), 'latin1');
    const { text, charset } = decodeChecked(latin1);
    expect(charset.encoding).toBe('latin1');
    expect(text).toBe(message('UNICODE', 'Müller'));
  });

  it('still rejects an unknown name in a 16-bit frame', () => {
    const raw = iconv.encode(message('KOI8-R', 'x'), 'utf16le');
    expect(() => decodeHl7(raw)).toThrow(EngineError);
  });
});

describe('BOMs', () => {
  it('a UTF-8 BOM is kept as U+FEFF and outweighs the label', () => {
    const text = `\uFEFF${message('8859/1', 'Müller')}`;
    const raw = Buffer.from(text, 'utf8');
    expect(readMsh18FromBytes(raw)).toBe('8859/1');
    const { text: decoded, charset } = decodeChecked(raw);
    expect(decoded).toBe(text);
    expect(charset).toEqual({ hl7Name: '8859/1', encoding: 'utf8' });
    expect(readMshHeader(decoded).charset).toBe('8859/1');
    expect(encodeHl7(decoded, charset).equals(raw)).toBe(true);
  });
});

describe('readMsh18FromBytes', () => {
  const read = (s: string): string => readMsh18FromBytes(Buffer.from(s, 'latin1'));

  it('reads with unusual field and repetition separators', () => {
    expect(read(message('8859/1', 'x', '#'))).toBe('8859/1');
    expect(read(message('8859/1', 'x', '*', '^~\\&'))).toBe('8859/1');
    expect(read(message('8859/1!ISO IR87', 'x', '|', '^!\\&'))).toBe('8859/1');
    expect(read(message('UNICODE UTF-8', 'x', '|', '^~\\&#'))).toBe('UNICODE UTF-8'); // v2.7 truncation char
  });

  it('returns the first repetition', () => {
    expect(read(message('8859/1~ISO IR87', 'x'))).toBe('8859/1');
    expect(read(message('~ISO IR87', 'x'))).toBe('');
  });

  it('returns the value as written, spaces included', () => {
    expect(read(message(' unicode utf-8 ', 'x'))).toBe(' unicode utf-8 ');
  });

  it('is tolerant of bytes before MSH', () => {
    const m = message('8859/1', 'x');
    expect(read(`\xEF\xBB\xBF${m}`)).toBe('8859/1');
    expect(read(`\x0B${m}`)).toBe('8859/1');
    expect(read(`\r\n  ${m}`)).toBe('8859/1');
  });

  it('reads the MSH after batch headers', () => {
    const m = message('8859/2', 'x');
    expect(read(`FHS|^~\\&|A\rBHS|^~\\&|A\r${m}BTS|1\rFTS|1\r`)).toBe('8859/2');
  });

  it('handles MSH-18 at the end of the segment, followed by more fields, or absent', () => {
    const m = message('8859/1', 'x');
    expect(read(m.replace('8859/1\r', '8859/1|EN^English|UNICODE UTF-8\r'))).toBe('8859/1');
    expect(read(m.replace('\r', '\n'))).toBe('8859/1');
    expect(read('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5')).toBe('');
    expect(read('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||8859/1')).toBe('8859/1');
    expect(read('MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5||||||')).toBe('');
  });

  it('never reads past the first segment', () => {
    const short = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\r';
    expect(read(`${short}PID|1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18|19\r`)).toBe('');
    expect(read(`${short.replace('\r', '\n')}PID|1|2|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18|19\r`)).toBe(
      '',
    );
  });

  it('returns "" for garbage and never throws', () => {
    for (const s of [
      '',
      'M',
      'MSH',
      'MSH|',
      'MSHA|x',
      'MSH\r|^~',
      'PID|1|2',
      'hello world',
      '\0\0\0\0',
      '\xff\xfe',
    ]) {
      expect(read(s)).toBe('');
    }
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
        const raw = Buffer.from(bytes);
        expect(typeof readMsh18FromBytes(raw)).toBe('string');
        expect(typeof readMsh18FromBytes(Buffer.concat([Buffer.from('MSH|^~\\&|'), raw]))).toBe('string');
      }),
    );
  });

  it('agrees with readMshHeader on decoded text', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('|', '#', '*', '!'),
        fc.array(fc.stringMatching(/^[A-Za-z0-9 .^&]{0,8}$/), { minLength: 0, maxLength: 22 }),
        (sep, fields) => {
          const text = `MSH${sep}^~\\&${sep}${fields.join(sep)}\rPID${sep}1\r`;
          expect(read(text)).toBe(readMshHeader(text).charset);
        },
      ),
    );
  });
});

describe('resolveCharset', () => {
  it('resolves every supported name', () => {
    for (const name of SUPPORTED_CHARSETS) {
      expect(resolveCharset(name).hl7Name).toBe(name);
      expect(resolveCharset(name).encoding).not.toBe('');
    }
  });

  it('maps names to codecs', () => {
    expect(resolveCharset('8859/1').encoding).toBe('latin1');
    expect(resolveCharset('8859/2').encoding).toBe('iso88592');
    expect(resolveCharset('ISO IR87').encoding).toBe('iso-2022-jp');
    expect(resolveCharset('ISO IR159').encoding).toBe('iso-2022-jp');
    expect(resolveCharset('GB 18030-2000').encoding).toBe('gb18030');
    expect(resolveCharset('KS X 1001').encoding).toBe('euc-kr');
    expect(resolveCharset('BIG-5').encoding).toBe('big5');
    expect(resolveCharset('ASCII').encoding).toBe('utf8');
  });

  it('empty → fallback, default UNICODE UTF-8', () => {
    expect(resolveCharset('')).toEqual({ hl7Name: '', encoding: 'utf8' });
    expect(resolveCharset('', '8859/2')).toEqual({ hl7Name: '', encoding: 'iso88592' });
    expect(resolveCharset('', '')).toEqual({ hl7Name: '', encoding: 'utf8' });
    expect(resolveCharset('8859/1', '8859/2').encoding).toBe('latin1');
  });

  it('throws a fixed-text HL7_UNSUPPORTED_CHARSET for unknown names', () => {
    for (const name of ['DOE^JOHN 19700101', 'CNS 11643-1992', 'KOI8-R', 'ISO IR999', '8859/16']) {
      let caught: unknown;
      try {
        resolveCharset(name);
      } catch (err) {
        caught = err;
      }
      expect(isEngineError(caught, 'HL7_UNSUPPORTED_CHARSET')).toBe(true);
      const err = caught as EngineError;
      expect(err.message).toBe('MSH-18 names a character set this engine does not support');
      expect(err.message).not.toContain(name);
      expect(JSON.stringify(err.details)).toBe('{}');
      expect(err.location).toEqual({ segment: 'MSH', segmentIndex: 1, field: 18 });
      expect(err.hl7Condition).toBe('102');
    }
    expect(() => resolveCharset('', 'NOPE')).toThrow(EngineError);
  });

  it('does not list CNS 11643 as supported', () => {
    expect(SUPPORTED_CHARSETS).not.toContain('CNS 11643-1992');
  });
});

describe('decodeHl7 fallbacks and errors', () => {
  it('empty MSH-18 uses the fallback', () => {
    const text = message('', 'Łódź');
    const raw = iconv.encode(text, 'iso88592');
    const { text: decoded, charset } = decodeChecked(raw, '8859/2');
    expect(decoded).toBe(text);
    expect(charset).toEqual({ hl7Name: '', encoding: 'iso88592' });
    expect(encodeHl7(decoded, charset).equals(raw)).toBe(true);
  });

  it('empty MSH-18 without a fallback is UTF-8', () => {
    const raw = Buffer.from(message('', 'Müller 山田'), 'utf8');
    expect(decodeChecked(raw).charset).toEqual({ hl7Name: '', encoding: 'utf8' });
  });

  it('an ASCII fallback sniffs UTF-8 or Latin-1', () => {
    const raw = Buffer.from(message('', 'Müller'), 'latin1');
    expect(decodeChecked(raw, 'ASCII').charset).toEqual({ hl7Name: '', encoding: 'latin1' });
  });

  it('declared UTF-8 stays UTF-8 even when the bytes are not', () => {
    const raw = Buffer.from(message('UNICODE UTF-8', 'Müller'), 'latin1');
    const { text, charset } = decodeChecked(raw);
    expect(charset.encoding).toBe('utf8');
    expect(text).toContain('M\uFFFDller');
  });

  it('an unknown MSH-18 throws without quoting it', () => {
    const raw = Buffer.from(message('DOE^JOHN', 'x'), 'latin1');
    expect(() => decodeHl7(raw)).toThrow(/^MSH-18 names a character set this engine does not support$/);
  });

  it('a frame with no MSH decodes with the fallback (the parser reports it)', () => {
    const raw = Buffer.from('hello', 'latin1');
    expect(decodeChecked(raw, '8859/1')).toEqual({
      text: 'hello',
      charset: { hl7Name: '', encoding: 'latin1' },
    });
  });
});

describe('encodeHl7', () => {
  it('writes ? for what the charset cannot hold', () => {
    const c = (encoding: string): CharsetInfo => ({ hl7Name: '', encoding });
    expect(encodeHl7('Ł😀x', c('latin1')).toString('latin1')).toBe('??x');
    expect(encodeHl7('a😀', c('iso88592')).toString('latin1')).toMatch(/^a\?+$/);
  });

  it('never turns ¥ or ‾ into the escape or repetition character', () => {
    for (const encoding of ['shift_jis', 'iso-2022-jp']) {
      const out = encodeHl7('¥‾', { hl7Name: '', encoding });
      expect(out.includes(0x5c)).toBe(false);
      expect(out.includes(0x7e)).toBe(false);
    }
  });

  it('ASCII text is the same bytes in every ASCII-compatible charset', () => {
    const ack = 'MSH|^~\\&|R|F|S|F|20240101||ACK^A01^ACK|X1|P|2.5\rMSA|AA|CTRL1\r';
    for (const name of SUPPORTED_CHARSETS.filter((n) => !n.startsWith('UNICODE') || n === 'UNICODE UTF-8')) {
      expect(encodeHl7(ack, resolveCharset(name)).toString('latin1')).toBe(ack);
    }
  });

  it('rejects an unknown codec', () => {
    expect(() => encodeHl7('x', { hl7Name: '', encoding: 'no-such-codec' })).toThrow(EngineError);
  });
});
