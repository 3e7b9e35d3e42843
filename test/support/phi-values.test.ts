import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parse } from '../../src/hl7/index.js';
import { loadCorpus } from './corpus.js';
import { PhiScanner } from './phi-scan.js';
import { compressionRatio } from './phi-sources.js';
import {
  engineText,
  extractPhi,
  judge,
  type Needle,
  PHI_KINDS,
  phiFilter,
  textRuns,
  tokensOf,
} from './phi-values.js';

/** Made-up people: every value recognisable. */
const MESSAGE = [
  'MSH|^~\\&|LABSYS|FAKELAB|HL7E|HOSP|20260301111500||ORU^R01^ORU_R01|CTRL770001|P|2.5.1',
  'PID|1||ZQPV440001^^^FAKEHOSP^MR~123-45-6789^^^USA^SS||Quorvelling^Tibbetsa^Marigold||19610203|F|||4417 Zanzibar Crescent^Apt 12^Wuppingham^ST^99501||(555)317-2468^PRN^PH^^^555^3172468~tibbetsa.q@example.org^NET^Internet^tibbetsa.q@example.org|||||ACCT88001234|999-88-7777',
  'NK1|1|Quorvelling^Bartholomewa|MTH',
  'PV1|1|I|WARD^1^2||||7788^Drabblesworth^Ignatia^^^Dr',
  'OBR|1|PLC55201^EHR|FIL55201^LAB|718-7^Hemoglobin^LN',
  'OBX|1|TX|11526-1^Pathology^LN||Biopsy of the left zarnwick gland shows mild\\.br\\fibrosis with scattered florbid cells and no sign of malignancy in the sampled tissue.||||||F',
  'OBX|2|NM|718-7^Hemoglobin^LN||13.5|g/dL|12-16|N|||F',
  'NTE|1||Patient Tibbetsa reports dizziness after the morning walk',
  '',
].join('\r');

const synthetic = [{ id: 'synthetic', file: 'synthetic', source: 'test', text: MESSAGE }];
const phi = extractPhi(synthetic, 'test patient hospital ward hemoglobin');
const values = (kind: string) => phi.needles.filter((n) => n.kind === kind).map((n) => n.value);

describe('extractPhi', () => {
  it('reads names, identifiers, birth date, address, phones and free text from their positions', () => {
    expect(values('name')).toEqual(
      expect.arrayContaining([
        'Quorvelling',
        'Tibbetsa',
        'Marigold',
        'Bartholomewa',
        'Drabblesworth',
        'Ignatia',
      ]),
    );
    expect(values('identifier')).toEqual(
      expect.arrayContaining([
        'ZQPV440001',
        '123-45-6789',
        'ACCT88001234',
        '999-88-7777',
        'PLC55201',
        'FIL55201',
      ]),
    );
    // As written, as a digit run, and as FHIR writes a birthDate.
    expect(values('birthDate').sort()).toEqual(['1961-02-03', '19610203']);
    expect(values('address')).toEqual(
      expect.arrayContaining(['4417 Zanzibar Crescent', 'Apt 12', 'Wuppingham']),
    );
    expect(values('phone')).toEqual(
      expect.arrayContaining(['(555)317-2468', '5553172468', '555 3172468', 'tibbetsa.q@example.org']),
    );
    // Free text: the TX line break (\.br\) splits runs; NTE-3 whole; the NM value is no text.
    expect(values('freeText')).toEqual(
      expect.arrayContaining([
        'Biopsy of the left zarnwick gland shows mild',
        'Patient Tibbetsa reports dizziness after the morning walk',
      ]),
    );
    expect(values('freeText').join(' ')).not.toContain('13.5');
  });

  it('drops what is no evidence: short, generic, in clear by design', () => {
    const filter = phiFilter([parse(MESSAGE)], 'delivery failed for channel lab');
    const verdict = (value: string, kind: Needle['kind']) => {
      const j = judge({ value, kind, where: 'x' }, filter);
      return 'dropped' in j ? j.dropped : j.forms.map((f) => f.display);
    };
    expect(verdict('Li', 'name')).toBe('short');
    expect(verdict('Ann', 'name')).toBe('short');
    expect(verdict('Test Patient', 'name')).toBe('generic');
    expect(verdict('DELIVERY', 'name')).toBe('generic'); // a word of the engine's own text
    expect(verdict('Wuppingham', 'address')).toEqual(['Wuppingham']);
    expect(verdict('12345', 'identifier')).toBe('short');
    expect(verdict('MR12', 'identifier')).toBe('short');
    expect(verdict('CTRL770001', 'identifier')).toBe('inClear'); // MSH-10
    expect(verdict('FAKELAB', 'name')).toBe('inClear'); // MSH-4
    expect(verdict('1961', 'birthDate')).toBe('notADate');
    expect(verdict('196102031200-0500', 'birthDate')).toEqual([
      '196102031200-0500',
      '19610203',
      '1961-02-03',
    ]);
    expect(verdict('555-123', 'phone')).toBe('short');
    expect(verdict('delivery failed for channel lab', 'freeText')).toBe('engineText');
  });

  it('cuts free text into runs of at most 8 words, so a truncated copy is found too', () => {
    const words = Array.from({ length: 19 }, (_, i) => `w${i}`);
    expect(textRuns(`${words.join(' ')}\nshort line here`)).toEqual([
      words.slice(0, 8).join(' '),
      words.slice(8, 16).join(' '),
      words.slice(11).join(' '),
      'short line here',
    ]);
  });

  it('finds hundreds of values of every kind in the corpus, none of them generic alone', () => {
    const corpus = extractPhi(loadCorpus(), engineText(new URL('../../', import.meta.url).pathname));
    expect(corpus.unreadable).toEqual([]);
    expect(corpus.needles.length).toBeGreaterThan(600);
    for (const kind of PHI_KINDS) expect(corpus.byKind[kind], kind).toBeGreaterThan(40);
    for (const n of corpus.needles) expect(n.tokens.join('').length, n.value).toBeGreaterThanOrEqual(4);
  });
});

describe('PhiScanner', () => {
  const scanner = new PhiScanner(phi.needles);
  const found = (haystack: string | Uint8Array) => scanner.scan('t', haystack).map((h) => h.needle.value);

  it('finds a value whatever its case, quoting or JSON escaping', () => {
    expect(found('{"msg":"x","family":"QUORVELLING"}')).toEqual(['Quorvelling']);
    expect(found('PID|1||ZQPV440001^^^FAKEHOSP^MR')).toEqual(['ZQPV440001']);
    expect(found('{"text":"Patient Tibbetsa reports\\ndizziness after the morning walk"}')).toContain(
      'Patient Tibbetsa reports dizziness after the morning walk',
    );
    expect(found('born 1961-02-03')).toEqual(['1961-02-03']);
    expect(found('call 555-317-2468')).toEqual(['(555)317-2468']);
    expect(found(Buffer.from('\x00\x17Wuppingham\xff'.split('').map((c) => c.charCodeAt(0))))).toEqual([
      'Wuppingham',
    ]);
  });

  it('looks for short values in texts only: in bytes, random bytes would spell them', () => {
    expect(found('x Apt 12 x')).toEqual(['Apt 12']);
    expect(found(Buffer.from('x Apt 12 x'))).toEqual([]);
    expect(found(Buffer.from('x Tibbetsa x'))).toEqual(['Tibbetsa']);
  });

  it('finds nothing inside longer words and numbers', () => {
    expect(found('Quorvellington 1961020345 x19610203 55531724680')).toEqual([]);
    expect(found('"time":17400005553172468')).toEqual([]);
  });

  it('reports each value once per source, with a count and the words around it', () => {
    const [hit] = scanner.scan('log', 'a Quorvelling b\nc quorvelling d');
    expect(hit).toMatchObject({ source: 'log', count: 2, context: 'a quorvelling b' });
  });
});

describe('compressionRatio', () => {
  it('tells ciphertext from text', () => {
    expect(compressionRatio(Buffer.from(MESSAGE.repeat(20)))).toBeLessThan(0.3);
    expect(compressionRatio(randomBytes(20_000))).toBeGreaterThan(0.95);
  });
});

describe('tokensOf', () => {
  it('is letters and digits, lower-cased, Unicode aware', () => {
    expect(tokensOf('RODOLFO SEBASTIÁN, (555)317-2468')).toEqual([
      'rodolfo',
      'sebastián',
      '555',
      '317',
      '2468',
    ]);
  });
});
