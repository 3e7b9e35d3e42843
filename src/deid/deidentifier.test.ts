import { describe, expect, it } from 'vitest';
import { isEngineError } from '../errors.js';
import { parse } from '../hl7/index.js';
import { Deidentifier } from './deidentifier.js';
import { MARKER } from './policy.js';

const KEY_A = Buffer.alloc(32, 1);
const KEY_B = Buffer.alloc(32, 2);

const ADT = [
  'MSH|^~\\&|ADT|GOOD HEALTH|EHR|GHH|20260314093015-0500||ADT^A01^ADT_A01|CTRL0001|P|2.5.1||||||8859/1',
  'EVN|A01|20260314093000',
  'PID|1||MRN123456^^^GHH^MR~123-45-6789^^^SSA^SS||Quixote^Alonso^Q^Jr^Dr||19510203|M||2106-3^White^CDCREC|12 Windmill Way^Apt 3^La Mancha^TX^78701-1234^USA^H||(806)555-0199^PRN^PH^alonso@example.org|||||ACCT998877^^^GHH^AN|123456789|D1234567^TX^20300101',
  'NK1|1|Panza^Sancho|FND|4 Road^^Argamasilla^NM^89301|555-201-3344',
  `PV1|1|I|W3^301^A||||1234^Welby^Marcus^^^Dr^MD||${'|'.repeat(10)}VN20260314001${'|'.repeat(25)}20260314090000`,
  'ZPD|Rocinante|20260101',
  'NTE|1||Patient Alonso Quixote prefers Spanish; call 806-555-0199',
].join('\r');

const ORU = [
  'MSH|^~\\&|LIS|LAB|EHR|GHH|20260315120000||ORU^R01^ORU_R01|CTRL0002|P|2.5.1',
  'PID|1||MRN123456^^^GHH^MR||Quixote^Alonso||19510203|M',
  'ORC|RE|ORD555^EHR|FIL777^LIS',
  'OBR|1|ORD555^EHR|FIL777^LIS|24323-8^Comprehensive metabolic panel^LN|||20260315080000|||||||||1234^Welby^Marcus',
  'OBX|1|NM|2345-7^Glucose^LN||98|mg/dL^mg/dL^UCUM|70-99|N|||F|||20260315081500',
  'OBX|2|CWE|600-7^Bacteria identified^LN||3092008^Staphylococcus aureus^SCT^^^^^^seen by Dr Welby|||A|||F',
  'OBX|3|TX|8251-1^Service comment^LN||Called Sancho Panza at home re: result|||||F',
  'OBX|4|ST|5778-6^Color of Urine^LN||>1000|||||F',
  'OBX|5|ST|5767-9^Appearance of Urine^LN||cloudy, per nurse Dulcinea|||||F',
  'OBX|6|ED|18748-4^Diagnostic imaging study^LN||LIS^IM^JPEG^Base64^/9j/4AAQSkZJRg==|||||F',
  'OBX|7|NM|30525-0^Age^LN||95|a^year^UCUM|||||F',
  'OBX|8|DT|21112-8^Birth date^LN||19510203|||||F',
  'NTE|1|L|Specimen hemolysed.',
].join('\r');

const MERGE = [
  'MSH|^~\\&|ADT|GOOD HEALTH|EHR|GHH|20260316100000||ADT^A40^ADT_A39|CTRL0003|P|2.5.1',
  'EVN|A40|20260316100000',
  'PID|1||MRN999^^^GHH^MR||Quixote^Alonso',
  'MRG|MRN123456^^^GHH^MR',
].join('\r');

function field(text: string, path: string): string {
  return parse(text).getRaw(path) ?? '';
}

describe('Deidentifier: Safe Harbor identifiers', () => {
  const out = new Deidentifier({ key: KEY_A }).deidentify(ADT);

  it('writes a message that parses, in the same delimiters, segments ending in CR', () => {
    expect(out.endsWith('\r')).toBe(true);
    expect(out).not.toContain('\n');
    const m = parse(out);
    expect(m.segments().map((s) => s.name)).toEqual(['MSH', 'EVN', 'PID', 'NK1', 'PV1', 'NTE']);
    expect(m.get('MSH-9')).toBe('ADT');
    expect(m.getRaw('MSH-9')).toBe('ADT^A01^ADT_A01');
    expect(m.get('MSH-12')).toBe('2.5.1');
  });

  it('replaces names of patients, relatives and providers', () => {
    expect(field(out, 'PID-5')).toBe(`${MARKER}^${MARKER}^${MARKER}^^`);
    expect(field(out, 'NK1-2')).toBe(`${MARKER}^${MARKER}`);
    const doctor = field(out, 'PV1-7').split('^');
    expect(doctor.slice(1, 3)).toEqual([MARKER, MARKER]);
    expect(doctor[0]).toMatch(/^\d{15}$/);
    expect(out).not.toMatch(/Quixote|Alonso|Panza|Sancho|Welby|Marcus/);
  });

  it('keeps state, country and the first three ZIP digits; 000 for a small ZIP area', () => {
    expect(field(out, 'PID-11')).toBe(`${MARKER}^${MARKER}^${MARKER}^TX^787^USA^H`);
    // 893 is one of the Safe Harbor three-digit areas of 20,000 people or fewer.
    expect(field(out, 'NK1-4')).toBe(`${MARKER}^^${MARKER}^NM^000`);
    expect(out).not.toMatch(/Windmill|La Mancha|78701|Argamasilla|89301/);
  });

  it('keeps only the year of every date, as a valid year-precision DTM', () => {
    expect(field(out, 'MSH-7')).toBe('2026');
    expect(field(out, 'EVN-2')).toBe('2026');
    expect(field(out, 'PID-7')).toBe('1951');
    expect(field(out, 'PV1-44')).toBe('2026');
    expect(field(out, 'PID-20')).toMatch(/^[0-9A-Z]{12}\^TX\^2030$/);
  });

  it('removes phone numbers, e-mail, SSN and licence numbers', () => {
    expect(field(out, 'PID-13')).toBe(`${MARKER}^PRN^PH^${MARKER}`);
    expect(field(out, 'NK1-5')).toBe(MARKER);
    expect(out).not.toMatch(/555|alonso@|123-45-6789|123456789|D1234567/);
  });

  it('pseudonymizes MRN, account and visit numbers and the control id', () => {
    expect(field(out, 'PID-3')).toMatch(/^[0-9A-Z]{12}\^\^\^GHH\^MR~[0-9A-Z]{12}\^\^\^SSA\^SS$/);
    expect(field(out, 'PID-18')).toMatch(/^[0-9A-Z]{12}\^\^\^GHH\^AN$/);
    expect(field(out, 'PID-19')).toMatch(/^\d{15}$/);
    expect(field(out, 'PV1-19')).toMatch(/^[0-9A-Z]{12}$/);
    expect(field(out, 'MSH-10')).toMatch(/^[0-9A-Z]{12}$/);
    expect(out).not.toMatch(/MRN123456|ACCT998877|VN20260314001|CTRL0001/);
  });

  it('replaces free text and removes Z-segments', () => {
    expect(field(out, 'NTE-3')).toBe(MARKER);
    expect(out).not.toMatch(/ZPD|Rocinante/);
  });

  it('keeps coded values', () => {
    expect(field(out, 'PID-8')).toBe('M');
    expect(field(out, 'PID-10')).toBe('2106-3^White^CDCREC');
    expect(field(out, 'NK1-3')).toBe('FND');
    expect(field(out, 'PV1-3')).toBe('W3^301^A');
  });

  it('writes the given charset into MSH-18 (the export file is UTF-8)', () => {
    const relabelled = new Deidentifier({ key: KEY_A, charset: 'UNICODE UTF-8' }).deidentify(ADT);
    expect(field(relabelled, 'MSH-18')).toBe('UNICODE UTF-8');
    expect(field(out, 'MSH-18')).toBe('8859/1');
  });
});

describe('Deidentifier: results stay usable', () => {
  const out = new Deidentifier({ key: KEY_A }).deidentify(ORU);
  const obx = (n: number, f: number) => field(out, `OBX[${n}]-${f}`);

  it('keeps numeric and coded results, units, ranges and flags', () => {
    expect([obx(1, 3), obx(1, 5), obx(1, 6), obx(1, 7), obx(1, 8)]).toEqual([
      '2345-7^Glucose^LN',
      '98',
      'mg/dL^mg/dL^UCUM',
      '70-99',
      'N',
    ]);
    expect(obx(2, 5)).toBe(`3092008^Staphylococcus aureus^SCT^^^^^^${MARKER}`);
    expect(field(out, 'OBR-4')).toBe('24323-8^Comprehensive metabolic panel^LN');
  });

  it('replaces free-text results, keeps number-like ST results, removes encapsulated data', () => {
    expect(obx(3, 5)).toBe(MARKER);
    expect(obx(4, 5)).toBe('>1000');
    expect(obx(5, 5)).toBe(MARKER);
    expect(obx(6, 5)).toBe('LIS^IM^JPEG^Base64^');
    expect(obx(8, 5)).toBe('1951');
    expect(field(out, 'NTE-3')).toBe(MARKER);
    expect(out).not.toMatch(/Sancho|Dulcinea|hemolysed|4AAQSkZJRg/);
  });

  it('reports an age over 89 as 90', () => {
    expect(obx(7, 5)).toBe('90');
  });

  it('keeps the order relation: the same placer and filler numbers in ORC and OBR', () => {
    expect(field(out, 'ORC-2')).toBe(field(out, 'OBR-2'));
    expect(field(out, 'ORC-3')).toBe(field(out, 'OBR-3'));
    expect(field(out, 'ORC-2')).not.toContain('ORD555');
    expect(field(out, 'ORC-2').endsWith('^EHR')).toBe(true);
  });
});

describe('Deidentifier: pseudonyms', () => {
  it('are stable within one export, across messages and fields (an MRN and the MRG that merges it)', () => {
    const d = new Deidentifier({ key: KEY_A });
    const adt = d.deidentify(ADT);
    const oru = d.deidentify(ORU);
    const merge = d.deidentify(MERGE);
    const mrn = field(adt, 'PID-3(1)-1');
    expect(field(oru, 'PID-3-1')).toBe(mrn);
    expect(field(merge, 'MRG-1-1')).toBe(mrn);
    expect(field(merge, 'PID-3-1')).not.toBe(mrn);
    expect(field(oru, 'OBR-16-1')).toBe(field(adt, 'PV1-7-1'));
  });

  it('differ between exports (another key)', () => {
    const a = new Deidentifier({ key: KEY_A }).deidentify(ADT);
    const b = new Deidentifier({ key: KEY_B }).deidentify(ADT);
    for (const path of ['PID-3(1)-1', 'PID-18-1', 'PID-19', 'PV1-19-1', 'MSH-10', 'PV1-7-1']) {
      expect(field(a, path), path).not.toBe(field(b, path));
    }
  });

  it('refuse a short key', () => {
    expect(() => new Deidentifier({ key: Buffer.alloc(16) })).toThrow(RangeError);
  });
});

describe('Deidentifier: ages over 89', () => {
  const at = (dob: string, msh7: string) =>
    field(
      new Deidentifier({ key: KEY_A }).deidentify(
        `MSH|^~\\&|A|B|C|D|${msh7}||ADT^A08|1|P|2.5.1\rPID|1||X1^^^H^MR||Doe^Jane||${dob}|F`,
      ),
      'PID-7',
    );

  it('sets the birth year to the message year − 90 for anyone older than 89', () => {
    expect(at('19300101', '20260314')).toBe('1936');
    expect(at('1900', '2026')).toBe('1936');
    expect(at('19360314', '20260314')).toBe('1936');
  });

  it('keeps the birth year of someone 89 years old', () => {
    expect(at('19360315', '20260314')).toBe('1936');
    expect(at('19370101', '20260314')).toBe('1937');
  });

  it('reckons from now when MSH-7 holds no date', () => {
    const now = () => new Date('2026-06-01T00:00:00Z');
    const out = new Deidentifier({ key: KEY_A, now }).deidentify(
      'MSH|^~\\&|A|B|C|D|||ADT^A08|1|P|2.5.1\rPID|1||X1^^^H^MR||Doe^Jane||19200101|F',
    );
    expect(field(out, 'PID-7')).toBe('1936');
  });
});

describe('Deidentifier: fields the policy does not list', () => {
  const d = () => new Deidentifier({ key: KEY_A });

  it('turns dates into years and replaces values that look like identifiers', () => {
    const out = d().deidentify(
      [
        'MSH|^~\\&|A|B|C|D|20260314||ADT^A08|1|P|2.5.1',
        'PID|1||X1^^^H^MR||Doe^Jane',
        [
          'PV2',
          ...Array<string>(49).fill(''),
          '20260101',
          'mail jdoe@example.com',
          'see http://x.test/p',
          '123-45-6789',
          '(555) 123-4567',
          '10.1.2.3',
          '2.16.840.1.113883',
          'on 03/14/2026',
          'Jane Doe',
          'just text',
        ].join('|'),
      ].join('\r'),
    );
    const pv2 = (n: number) => field(out, `PV2-${n}`);
    expect(pv2(50)).toBe('2026');
    for (const n of [51, 52, 53, 54, 55, 57, 58]) expect(pv2(n), `PV2-${n}`).toBe(MARKER);
    // An OID is not an IP address; text with no identifier in it stays.
    expect(pv2(56)).toBe('2.16.840.1.113883');
    expect(pv2(59)).toBe('just text');
  });

  it('keeps a Z-segment named to keep, scanned like any unlisted field', () => {
    const out = new Deidentifier({ key: KEY_A, keepSegments: ['zpd'] }).deidentify(ADT);
    expect(field(out, 'ZPD-1')).toBe('Rocinante');
    expect(field(out, 'ZPD-2')).toBe('2026');
  });
});

describe('Deidentifier: encoding', () => {
  it('works in the message’s own delimiters and escapes', () => {
    const text = [
      'MSH*:!?%*A*B*C*D*20260314**ORU:R01*1*P*2.5.1',
      'PID*1**M1:::H:MR**O?T?Brien:Pat',
      'OBX*1*NM*2345-7:Glucose:LN**98*mg/dL*70?F?99',
    ].join('\r');
    const out = new Deidentifier({ key: KEY_A }).deidentify(text);
    const m = parse(out);
    expect(m.delimiters.component).toBe(':');
    expect(m.getRaw('PID-5')).toBe(`${MARKER}:${MARKER}`);
    expect(m.getRaw('OBX-7')).toBe('70?F?99');
    expect(m.getRaw('PID-3')).toMatch(/^[0-9A-Z]{12}:::H:MR$/);
  });

  it('keeps the explicit null ""', () => {
    const out = new Deidentifier({ key: KEY_A }).deidentify(
      'MSH|^~\\&|A|B|C|D|20260314||ADT^A08|1|P|2.5.1\rPID|1||X1^^^H^MR||""||""',
    );
    expect(field(out, 'PID-5')).toBe('""');
    expect(field(out, 'PID-7')).toBe('""');
  });

  it('throws the parser’s error, without content, for a message that does not parse', () => {
    let err: unknown;
    try {
      new Deidentifier({ key: KEY_A }).deidentify('PID|1||SECRET-MRN');
    } catch (e) {
      err = e;
    }
    expect(isEngineError(err)).toBe(true);
    expect(String((err as Error).message)).not.toContain('SECRET');
  });
});
