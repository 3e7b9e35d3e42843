import { describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import { isBatch, parseBatch } from './index.js';

const m = (id: string) => `MSH|^~\\&|A|B|C|D|20240101||ADT^A01|${id}|P|2.5\rPID|1||${id}X\r`;

describe('parseBatch', () => {
  it('splits FHS/BHS/BTS/FTS into messages with their exact raw text', () => {
    const text = `FHS|^~\\&|SENDER\rBHS|^~\\&|SENDER\r${m('1')}${m('2')}BTS|2\rBHS|^~\\&\r${m('3')}BTS|1\rFTS|2\r`;
    expect(isBatch(text)).toBe(true);
    const b = parseBatch(text);
    expect(b.messages.map((x) => x.get('MSH-10'))).toEqual(['1', '2', '3']);
    expect(b.messages[1]!.encode()).toBe(m('2'));
    expect(b.fileHeader?.getRaw(3)).toBe('SENDER');
    expect(b.batchHeaders).toHaveLength(2);
    expect(b.declaredMessageCount).toBe(3);
    expect(b.declaredBatchCount).toBe(2);
    expect(b.countMismatch).toBe(false);
  });

  it('flags a trailer count that disagrees (a truncated transfer)', () => {
    const b = parseBatch(`BHS|^~\\&\r${m('1')}BTS|5\r`);
    expect(b.messages).toHaveLength(1);
    expect(b.countMismatch).toBe(true);
  });

  it('accepts plain messages and LF terminators', () => {
    const b = parseBatch((m('1') + m('2')).replace(/\r/g, '\n'));
    expect(b.messages).toHaveLength(2);
    expect(b.fileHeader).toBeUndefined();
  });

  it('rejects segments outside any message with a typed error', () => {
    expect(() => parseBatch('BHS|^~\\&\rPID|1\r')).toThrow(EngineError);
    expect(() => parseBatch('hello')).toThrow(EngineError);
  });
});
