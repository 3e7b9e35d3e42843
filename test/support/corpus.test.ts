import { describe, expect, it } from 'vitest';
import { loadCorpus, segmentTerminators } from './corpus.js';

describe('loadCorpus', () => {
  const corpus = loadCorpus();
  const count = (source: string) => corpus.filter((m) => m.source === source).length;

  it('finds every message of every source', () => {
    // SOURCES.md: 139 Microsoft FHIR-Converter samples; HAPI: 18 in messages.txt, 13 in example_oml_o21.hl7,
    // one each in adt_a03, cv.04_001_chem, omd_o03_rep, segmentfinder_a24; the IG's one MDM_T02.
    expect(count('ms-fhir-converter')).toBe(139);
    expect(count('hapi-hl7v2')).toBe(35);
    expect(count('hl7-v2-to-fhir-ig')).toBe(1);
    expect(corpus.filter((m) => m.file === 'hapi-hl7v2/messages.txt')).toHaveLength(18);
    expect(corpus.filter((m) => m.file === 'hapi-hl7v2/example_oml_o21.hl7')).toHaveLength(13);
  });

  it('gives unique ids, #n only for multi-message files', () => {
    expect(new Set(corpus.map((m) => m.id)).size).toBe(corpus.length);
    expect(corpus.map((m) => m.id)).toContain('hapi-hl7v2/messages.txt#18');
    expect(corpus.map((m) => m.id)).toContain('ms-fhir-converter/messages/ADT-A01-01.hl7');
  });

  it('yields messages that start at MSH, without BOM, comment lines or blank lines', () => {
    for (const m of corpus) {
      expect(m.text.startsWith('MSH'), m.id).toBe(true);
      expect(m.text, m.id).not.toMatch(/^\/\/|^\/\*|^ \*/m);
      expect(m.text, m.id).not.toMatch(/(?:\r\n|\r(?!\n)|\n){2}/);
    }
  });

  it('keeps each file’s own segment terminators', () => {
    const byId = new Map(corpus.map((m) => [m.id, m]));
    expect(segmentTerminators(byId.get('hapi-hl7v2/example_oml_o21.hl7#1')!.text)).toBe('\\r');
    expect(segmentTerminators(byId.get('hapi-hl7v2/segmentfinder_a24.hl7')!.text)).toBe('\\r\\n');
    expect(segmentTerminators(byId.get('hapi-hl7v2/messages.txt#1')!.text)).toBe('\\n');
    expect(segmentTerminators(byId.get('hl7-v2-to-fhir-ig/samples/Message.hl7_MDM_T02.txt')!.text)).toBe(
      '\\r\\n',
    );
  });
});
