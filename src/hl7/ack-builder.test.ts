import { describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import { buildAck, buildRejectForUnreadable, commitAckWanted, parse, readMshHeader } from './index.js';

const MSG =
  'MSH|^~\\&|LAB^1.2.3^ISO|NORTH|EHR|SOUTH|20240102030405||ORU^R01^ORU_R01|CTRL\\F\\42|P|2.5.1|||||USA|8859/1\rPID|1||X';
const now = new Date('2024-05-06T07:08:09.010Z');

describe('buildAck', () => {
  it('swaps sender and receiver, echoes control id, version, processing id and charset', () => {
    const ack = parse(buildAck(readMshHeader(MSG), { outcome: 'accept', controlId: 'ACK1', now }));
    expect(ack.getRaw('MSH-3')).toBe('EHR');
    expect(ack.getRaw('MSH-4')).toBe('SOUTH');
    expect(ack.getRaw('MSH-5')).toBe('LAB^1.2.3^ISO');
    expect(ack.getRaw('MSH-6')).toBe('NORTH');
    expect(ack.getRaw('MSH-9')).toBe('ACK^R01^ACK');
    expect(ack.get('MSH-10')).toBe('ACK1');
    expect(ack.get('MSH-11')).toBe('P');
    expect(ack.get('MSH-12')).toBe('2.5.1');
    expect(ack.get('MSH-18')).toBe('8859/1');
    expect(ack.get('MSA-1')).toBe('AA');
    expect(ack.getRaw('MSA-2')).toBe('CTRL\\F\\42'); // echoed exactly as the sender encoded it
    expect(ack.segment('ERR')).toBeUndefined();
    expect(ack.get('MSH-7')).toMatch(/^\d{14}\.\d{3}[+-]\d{4}$/);
  });

  it('gives every ACK a unique MSH-10', () => {
    const h = readMshHeader(MSG);
    const ids = new Set(
      Array.from({ length: 10_000 }, () => parse(buildAck(h, { outcome: 'accept' })).get('MSH-10')),
    );
    expect(ids.size).toBe(10_000);
    for (const id of ids) expect(id.length).toBeLessThanOrEqual(20);
  });

  it('writes ERR with the table 0357 code and the location for AE/AR (v2.5+)', () => {
    const err = new EngineError('HL7_MISSING_FIELD', {}, { segment: 'PID', segmentIndex: 2, field: 3 });
    const ack = parse(buildAck(readMshHeader(MSG), { outcome: 'error', error: err }));
    expect(ack.get('MSA-1')).toBe('AE');
    expect(ack.getRaw('ERR-2')).toBe('PID^2^3');
    expect(ack.getRaw('ERR-3')).toBe('101^Required field missing^HL70357');
    expect(ack.get('ERR-4')).toBe('E');
    expect(ack.get('ERR-5')).toBe('HL7_MISSING_FIELD');
    expect(ack.get('MSA-3')).toBe(err.message);
  });

  it('uses ERR-1 (ELD) before v2.5', () => {
    const old = MSG.replace('|2.5.1|', '|2.3|');
    const ack = parse(
      buildAck(readMshHeader(old), {
        outcome: 'reject',
        error: { condition: '200', location: { segment: 'MSH', segmentIndex: 1, field: 9 } },
      }),
    );
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.getRaw('ERR-1')).toBe('MSH^1^9^200&Unsupported message type&HL70357');
    expect(ack.getRaw('MSH-9')).toBe('ACK^R01');
  });

  it('answers in enhanced mode with commit codes when MSH-15/16 are valued', () => {
    const enhanced = MSG.replace('|2.5.1|||||USA|', '|2.5.1|||AL|NE|USA|');
    const h = readMshHeader(enhanced);
    expect(parse(buildAck(h, { outcome: 'accept' })).get('MSA-1')).toBe('CA');
    expect(parse(buildAck(h, { outcome: 'error' })).get('MSA-1')).toBe('CE');
    expect(parse(buildAck(h, { outcome: 'reject' })).get('MSA-1')).toBe('CR');
    // A configured enhanced mode applies even when the message leaves MSH-15/16 empty.
    expect(parse(buildAck(readMshHeader(MSG), { outcome: 'accept', mode: 'enhanced' })).get('MSA-1')).toBe(
      'CA',
    );
  });

  it('follows MSH-15 on whether a commit ACK is wanted (table 0155)', () => {
    const header = (t: string) => ({ acceptAckType: t, applicationAckType: 'AL' });
    expect(commitAckWanted(header('NE'), 'enhanced', 'accept')).toBe(false);
    expect(commitAckWanted(header('ER'), 'enhanced', 'accept')).toBe(false);
    expect(commitAckWanted(header('ER'), 'enhanced', 'error')).toBe(true);
    expect(commitAckWanted(header('SU'), 'enhanced', 'reject')).toBe(false);
    expect(commitAckWanted(header('AL'), 'enhanced', 'reject')).toBe(true);
    expect(commitAckWanted(header(''), 'original', 'accept')).toBe(true);
  });

  it('uses the message delimiters', () => {
    const odd = 'MSH#$*@%#APP#FAC#R#F#2024##ADT$A01#C1#P#2.4';
    const ack = buildAck(readMshHeader(odd), { outcome: 'accept' });
    expect(ack.startsWith('MSH#$*@%#R#F#APP#FAC#')).toBe(true);
    expect(parse(ack).getRaw('MSA-2')).toBe('C1');
    expect(parse(ack).getRaw('MSH-9')).toBe('ACK$A01$ACK');
  });

  it('rejects unreadable input with AR, an ERR and no content', () => {
    const ack = parse(buildRejectForUnreadable(new EngineError('HL7_NO_MSH', {}, { segmentIndex: 1 })));
    expect(ack.get('MSA-1')).toBe('AR');
    expect(ack.get('MSA-2')).toBe('');
    expect(ack.getRaw('ERR-3')).toBe('100^Segment sequence error^HL70357');
  });
});

describe('readMshHeader', () => {
  it('reads MSH of a message whose body is broken', () => {
    const h = readMshHeader(`${MSG}\r!!garbage segment`);
    expect(h).toMatchObject({
      messageCode: 'ORU',
      triggerEvent: 'R01',
      messageStructure: 'ORU_R01',
      controlId: 'CTRL\\F\\42',
      version: '2.5.1',
      charset: '8859/1',
    });
  });
});
