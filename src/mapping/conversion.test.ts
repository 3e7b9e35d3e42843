import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isEngineError } from '../errors.js';
import type { Bundle } from '../fhir/fhir-types.js';
import { parse } from '../hl7/index.js';
import { convertMessage } from './conversion.js';
import { MappingCatalog } from './mapping-catalog.js';

// Made-up messages: what every Bundle promises, whatever the message type.
const catalog = MappingCatalog.load();
const adt = (controlId: string) =>
  [
    `MSH|^~\\&|REG|HOSP|HL7E|HOSP|20260105100000-0500||ADT^A01^ADT_A01|${controlId}|P|2.5.1`,
    'EVN|A01|20260105100000-0500',
    'PID|1||M100^^^HOSP^MR||Quill^Ada||19800101|F',
    'PV1|1|I|4W^412^B^HOSP||||DOC1^Attend^Alice|||MED||||||||IP|V1^^^HOSP^VN',
  ].join('\r');

function convert(text: string): Bundle {
  const rawSha256 = createHash('sha256').update(text).digest('hex');
  return convertMessage(parse(text), { catalog, rawSha256 }).bundle;
}

const urls = (b: Bundle) => (b.entry ?? []).map((e) => e.request?.url);

describe('convertMessage', () => {
  it('gives the same Bundle for the same bytes and mappings', () => {
    expect(JSON.stringify(convert(adt('C1')))).toBe(JSON.stringify(convert(adt('C1'))));
  });

  it('keys patients, practitioners and locations the same way in two messages', () => {
    const first = convert(adt('C1'));
    const second = convert(adt('C2'));
    expect(second.id).not.toBe(first.id);
    expect(second.identifier).toEqual({ value: 'C2' });
    // Every conditional URL but the Provenance's (one per message) is the same: replays and later
    // messages update the same resources.
    const conditional = (b: Bundle) => urls(b).filter((u) => !u?.startsWith('Provenance/'));
    expect(conditional(second)).toEqual(conditional(first));
    expect(conditional(first).some((u) => u?.startsWith('Location?identifier='))).toBe(true);
  });

  it('says MAPPING_NONE for a type no map covers, naming only the type', () => {
    const siu = 'MSH|^~\\&|S|F|R|F|20260105||SIU^S12|X1|P|2.5.1\rPID|1||SECRET-ID||Secret^Name';
    try {
      convert(siu);
      expect.unreachable();
    } catch (err) {
      expect(isEngineError(err, 'MAPPING_NONE')).toBe(true);
      expect((err as Error).message).toBe('no mapping for message type SIU^S12');
    }
  });
});
