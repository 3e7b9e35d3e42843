import { describe, expect, it } from 'vitest';
import { parse } from './message.js';
import { splitMessages } from './message-splitter.js';

const A = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5';
const B = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A08|2|P|2.5';

describe('splitMessages', () => {
  it('returns one message unchanged, terminators and all', () => {
    for (const t of ['\r', '\n', '\r\n']) {
      const text = `${A}${t}PID|1||123${t}`;
      expect(splitMessages(text)).toEqual([text]);
    }
    expect(splitMessages(`${A}\rPID|1`)).toEqual([`${A}\rPID|1`]);
  });

  it('splits at every MSH line', () => {
    expect(splitMessages(`${A}\nPID|1\n${B}\nPID|2\n`)).toEqual([`${A}\nPID|1\n`, `${B}\nPID|2\n`]);
    expect(splitMessages(`${A}\r${B}\r`)).toEqual([`${A}\r`, `${B}\r`]);
  });

  it('splits at blank lines and leaves them out, whatever the line ending', () => {
    expect(splitMessages(`${A}\nPID|1\n\n${B}\nPID|2\n\n\n`)).toEqual([`${A}\nPID|1\n`, `${B}\nPID|2\n`]);
    // CR-only files separate messages with empty CR "lines".
    expect(splitMessages(`${A}\rPID|1\r\r\r${B}\rPID|2\r\r\r`)).toEqual([`${A}\rPID|1\r`, `${B}\rPID|2\r`]);
    expect(splitMessages(`${A}\r\nPID|1\r\n  \r\n${B}\r\n`)).toEqual([`${A}\r\nPID|1\r\n`, `${B}\r\n`]);
  });

  it('keeps mixed terminators as they are', () => {
    const text = `${A}\r\nEVN|A01\rPID|1\n`;
    expect(splitMessages(text)).toEqual([text]);
  });

  it('skips comment headers and notes between messages', () => {
    const text = `/*\n * Example messages\n */\n${A}\nPID|1\n\n// *** note\n${B}\nPID|2\n\n/*\n * end\n */\n`;
    expect(splitMessages(text)).toEqual([`${A}\nPID|1\n`, `${B}\nPID|2\n`]);
  });

  it('drops a byte-order mark and leading blank lines', () => {
    expect(splitMessages(`\uFEFF${A}\nPID|1`)).toEqual([`${A}\nPID|1`]);
    expect(splitMessages(`\n\r\n${A}\r`)).toEqual([`${A}\r`]);
  });

  it('keeps orphan segments as their own chunk so parsing reports them', () => {
    const chunks = splitMessages(`PID|1||123\nPV1|1|I\n\n${A}\n`);
    expect(chunks).toEqual(['PID|1||123\nPV1|1|I\n', `${A}\n`]);
    expect(() => parse(chunks[0]!)).toThrow(expect.objectContaining({ code: 'HL7_NO_MSH' }));
  });

  it('keeps a non-segment line inside a message (the parser rejects it)', () => {
    expect(splitMessages(`${A}\n// inline note\nPID|1\n`)).toEqual([`${A}\n// inline note\nPID|1\n`]);
  });

  it('drops batch envelope segments', () => {
    const text = `FHS|^~\\&|X\rBHS|^~\\&|X\r${A}\rPID|1\r${B}\rBTS|2\rFTS|1\r`;
    expect(splitMessages(text)).toEqual([`${A}\rPID|1\r`, `${B}\r`]);
  });

  it('returns nothing for empty or non-HL7 text', () => {
    expect(splitMessages('')).toEqual([]);
    expect(splitMessages('\n\r\n  \n')).toEqual([]);
    expect(splitMessages('hello world\n// nothing here')).toEqual([]);
  });

  it('finds non-default field separators', () => {
    const text = 'MSH^~|\\&^S^F\r\nPID^1\r\n';
    expect(splitMessages(`${text}\r\n${text}`)).toEqual([text, text]);
  });

  it('yields texts that parse and encode back to themselves', () => {
    const file = `${A}\nPID|1||123^^^MR~456\n\n${B}\r\nPID|2\r\n`;
    for (const m of splitMessages(file)) expect(parse(m).encode()).toBe(m);
  });
});
