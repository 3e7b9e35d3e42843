import { describe, expect, it } from 'vitest';
import { EngineError, isEngineError } from '../errors.js';
import { compilePath, parse } from './index.js';

const ORU = [
  'MSH|^~\\&|LAB|HOSP|EHR|HOSP|20240102030405||ORU^R01^ORU_R01|MSG0001|P|2.5.1',
  'PID|1||MRN1^^^HOSP^MR~SSN9^^^USA^SS||Doe^Jane^Q^^Dr.||19800101|F',
  'OBR|1|PL1|FL1|24323-8^Panel^LN',
  'OBX|1|NM|2345-7^Glucose^LN||95|mg/dL|70-99|N|||F',
  'OBX|2|ST|1234-5^Note^LN||a \\F\\ b \\S\\ c \\T\\ d \\R\\ e \\E\\ f',
  'OBX|3|FT|5678-9^Text^LN||line1\\.br\\line2\\H\\bold\\N\\|',
  'ZXY|1|custom^value',
].join('\r');

describe('parse', () => {
  it('reads fields, components, repetitions and subcomponents by path', () => {
    const m = parse(ORU);
    expect(m.get('MSH-9')).toBe('ORU');
    expect(m.get('MSH-9-2')).toBe('R01');
    expect(m.get('MSH-10')).toBe('MSG0001');
    expect(m.get('PID-5-1')).toBe('Doe');
    expect(m.get('PID-5')).toBe('Doe'); // first primitive, as HAPI's Terser reads it
    expect(m.get('PID-5-2')).toBe('Jane');
    expect(m.get('PID-3(2)-1')).toBe('SSN9');
    expect(m.get('PID-3[2]-5')).toBe('SS');
    expect(m.get('PID-3(3)-1')).toBe('');
    expect(m.get('OBX[3]-5')).toBe('line1\nline2bold');
    expect(m.get('OBX(2)-3-2')).toBe('Note');
    expect(m.get('PID.5.2')).toBe('Jane');
    expect(m.get('PID-5-1-1')).toBe('Doe');
    expect(m.get('ZXY-2-2')).toBe('value');
    expect(m.get('NTE-1')).toBe('');
    expect(m.getAll('OBX-3-2')).toEqual(['Glucose', 'Note', 'Text']);
    expect(m.getAll('PID-3')).toEqual(['MRN1', 'SSN9']);
  });

  it('keeps raw elements with their delimiters and escapes', () => {
    const m = parse(ORU);
    expect(m.getRaw('PID-3')).toBe('MRN1^^^HOSP^MR~SSN9^^^USA^SS');
    expect(m.getRaw('PID-3(2)')).toBe('SSN9^^^USA^SS');
    expect(m.getRaw('OBX[2]-5')).toBe('a \\F\\ b \\S\\ c \\T\\ d \\R\\ e \\E\\ f');
    expect(m.getRaw('PID-99')).toBeUndefined();
    expect(m.getRaw('MSH-1')).toBe('|');
    expect(m.getRaw('MSH-2')).toBe('^~\\&');
    expect(m.segment('MSH')?.fieldCount).toBe(12);
    expect(m.segment('OBX', 3)?.fieldCount).toBe(6); // the trailing empty field counts
  });

  it('decodes every delimiter escape', () => {
    expect(parse(ORU).get('OBX[2]-5')).toBe('a | b ^ c & d ~ e \\ f');
  });

  it('keeps formatting and highlight escapes when asked', () => {
    const m = parse(ORU, { formatting: 'keep', highlight: 'keep' });
    expect(m.get('OBX[3]-5')).toBe('line1\\.br\\line2\\H\\bold\\N\\');
  });

  it('accepts \\r, \\n and \\r\\n terminators, blank lines and a BOM', () => {
    for (const sep of ['\r', '\n', '\r\n', '\r\n\r\n']) {
      const text = `\uFEFF${ORU.split('\r').join(sep)}${sep}`;
      const m = parse(text);
      expect(m.segmentCount).toBe(7);
      expect(m.get('OBX[3]-3-1')).toBe('5678-9');
      expect(m.encode()).toBe(text);
    }
  });

  it('reads whatever encoding characters MSH-1/MSH-2 declare, including the v2.7 truncation character', () => {
    const text = 'MSH#$*@%!#|APP#FAC$X*Y\rPID#1##ID1$$$AUTH%NS2#@F@#@P@#a!';
    const m = parse(text);
    expect(m.delimiters).toMatchObject({
      field: '#',
      component: '$',
      repetition: '*',
      escape: '@',
      subcomponent: '%',
      truncation: '!',
    });
    expect(m.get('MSH-3')).toBe('|APP'); // '|' is plain data under these delimiters
    expect(m.get('MSH-4-2')).toBe('X');
    expect(m.get('MSH-4(2)')).toBe('Y');
    expect(m.get('PID-3-4-2')).toBe('NS2');
    expect(m.get('PID-4')).toBe('#');
    expect(m.get('PID-5')).toBe('!'); // \P\ is the truncation character
    expect(m.get('PID-6')).toBe('a!'); // an unescaped truncation character is data: the sender truncated here
    expect(m.encode()).toBe(text);
  });

  it('keeps Z-segments and trailing empty fields, round-tripping the input exactly', () => {
    const text = `${ORU}|||\rZZ1|a||\r`;
    const m = parse(text);
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'PID', 'OBR', 'OBX', 'OBX', 'OBX', 'ZXY', 'ZZ1']);
    expect(m.encode()).toBe(text);
  });

  it('sets values with escaping and keeps every other byte', () => {
    const m = parse(ORU);
    m.set('PID-5-2', 'Ann|Marie^X');
    m.set('PID-3(2)-4', 'NEW');
    m.set('PID-13-1', '555');
    m.set('NTE-3', 'appended');
    expect(m.get('PID-5-2')).toBe('Ann|Marie^X');
    expect(m.getRaw('PID-5')).toBe('Doe^Ann\\F\\Marie\\S\\X^Q^^Dr.');
    expect(m.get('PID-3(2)-4')).toBe('NEW');
    expect(m.getRaw('PID-13')).toBe('555');
    expect(m.get('NTE-3')).toBe('appended');
    const out = m.encode();
    expect(out.split('\r').slice(2, 7)).toEqual(ORU.split('\r').slice(2, 7));
    expect(parse(out).get('PID-5-2')).toBe('Ann|Marie^X');
    expect(() => m.set('MSH-2', 'x')).toThrow(EngineError);
    expect(() => m.set('OBX[9]-1', 'x')).toThrow(EngineError);
  });

  it('recognises the explicit null ""', () => {
    const m = parse('MSH|^~\\&|A\rPID|1||""');
    expect(m.isExplicitNull('PID-3')).toBe(true);
    expect(m.isExplicitNull('PID-1')).toBe(false);
  });

  it('gives structure as plain data for people', () => {
    const [, pid] = parse(ORU).toJSON();
    expect(pid).toEqual({
      segment: 'PID',
      fields: {
        1: '1',
        3: [
          { 1: 'MRN1', 4: 'HOSP', 5: 'MR' },
          { 1: 'SSN9', 4: 'USA', 5: 'SS' },
        ],
        5: { 1: 'Doe', 2: 'Jane', 3: 'Q', 5: 'Dr.' },
        7: '19800101',
        8: 'F',
      },
    });
  });
});

describe('parse errors', () => {
  const cases: Array<[string, string]> = [
    ['', 'HL7_EMPTY'],
    ['  \r\n', 'HL7_EMPTY'],
    ['PID|1|secret-name', 'HL7_NO_MSH'],
    ['MSH', 'HL7_BAD_ENCODING_CHARS'],
    ['MSHA^~\\&|x', 'HL7_BAD_ENCODING_CHARS'],
    ['MSH|^^\\&|x', 'HL7_BAD_ENCODING_CHARS'],
    ['MSH|^~\\&|A\rpid|1|Smith', 'HL7_BAD_SEGMENT_NAME'],
    ['MSH|^~\\&|A\rPID|1\rSmith^John went home', 'HL7_BAD_SEGMENT_NAME'],
  ];
  it.each(cases)('typed error for %j', (text, code) => {
    try {
      parse(text);
      expect.unreachable();
    } catch (err) {
      expect(isEngineError(err)).toBe(true);
      expect((err as EngineError).code).toBe(code);
      // Error texts never carry message content.
      for (const word of ['secret', 'Smith', 'John']) expect((err as Error).message).not.toContain(word);
    }
  });

  it('locates a bad segment by position', () => {
    try {
      parse('MSH|^~\\&|A\rPID|1\rOBR|1\r!!!|2');
    } catch (err) {
      expect((err as EngineError).location).toEqual({ segmentIndex: 4 });
      expect((err as EngineError).hl7Condition).toBe('100');
    }
  });

  it('rejects malformed paths', () => {
    for (const p of ['', 'PI', 'PID-x', 'PID-3(0)', 'PID[0]-1', 'PID-1-2-3-4']) {
      expect(() => compilePath(p)).toThrow(EngineError);
    }
  });
});

describe('short MSH-2', () => {
  it('reads a message whose MSH-2 defines no subcomponent separator', () => {
    const m = parse('MSH|^~\\|A|B|C|D|2024||ADT^A01|CTRL1|P|2.2\rPID|1||X&Y^Z');
    expect(m.get('MSH-10')).toBe('CTRL1');
    expect(m.get('PID-3-1')).toBe('X&Y');
    expect(m.get('PID-3-1-1')).toBe('X&Y');
    expect(m.get('PID-3-1-2')).toBe('');
    expect(m.getRaw('PID-3-1-2')).toBeUndefined();
  });
});
