import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { escape, parse, readMshHeader } from '../../src/hl7/index.js';
import { CORPUS_DIR, loadCorpus } from '../support/corpus.js';

describe('corpus', () => {
  const corpus = loadCorpus();

  it('holds the shared corpus', () => {
    expect(corpus.length).toBeGreaterThanOrEqual(170);
  });

  it.each(corpus.map((c) => [c.id, c.text] as const))(
    '%s parses, reads and round-trips byte for byte',
    (_id, text) => {
      const m = parse(text);
      const h = readMshHeader(text);
      expect(m.get('MSH-9-1')).toBe(h.messageCode);
      expect(m.getRaw('MSH-10')).toBe(h.controlId);
      expect(m.get('MSH-9-1')).toMatch(/^[A-Z]{3}$/);
      for (const seg of m.segments()) {
        for (let f = 1; f <= seg.fieldCount; f++) {
          // every field decodes without error, and re-encoding what it decodes to reads back the same
          const reps = Math.max(seg.repetitionCount(f), 1);
          for (let r = 1; r <= reps; r++) {
            const v = seg.getValue(f, r);
            if (!seg.isLiteralField(f))
              expect(
                parse(
                  `MSH${m.delimiters.field}${m.get('MSH-2')}\rZZZ${m.delimiters.field}${escape(v, m.delimiters)}`,
                ).get('ZZZ-1'),
              ).toBe(v);
          }
        }
      }
      expect(m.encode()).toBe(text);
    },
  );
});

describe('heavy escaping (HAPI uuencoded_escaped.txt as an OBX-5)', () => {
  const field = readFileSync(join(CORPUS_DIR, 'hapi-hl7v2/uuencoded_escaped.txt'), 'latin1').replace(
    /[\r\n]+$/,
    '',
  );
  const text = `MSH|^~\\&|A|B|C|D|20240101||ORU^R01|1|P|2.5\rOBX|1|ED|||${field}\r`;

  it('decodes every escape so the uuencoded file is intact', () => {
    const m = parse(text);
    const decoded = m.get('OBX-5');
    expect(decoded.startsWith('begin 644 WAV.DAT\r\n')).toBe(true);
    const body = uudecode(decoded);
    // The payload is a PDF despite its name: a single wrong escape would corrupt these bytes.
    expect(body.subarray(0, 8).toString('latin1')).toBe('%PDF-1.0');
    expect(body.subarray(-8).toString('latin1')).toContain('%%EOF');
    expect(parse(`MSH|^~\\&|A\rOBX|1|ED|||${escape(decoded, m.delimiters)}`).get('OBX-5')).toBe(decoded);
    expect(m.encode()).toBe(text);
  });
});

function uudecode(text: string): Buffer {
  const out: number[] = [];
  for (const line of text.split(/\r\n|\n|\r/).slice(1)) {
    if (line === '' || line === '`' || line.startsWith('end')) continue;
    const n = (line.charCodeAt(0) - 32) & 63;
    const bytes: number[] = [];
    for (let i = 1; i + 3 < line.length + 3 && bytes.length < n; i += 4) {
      const c = [0, 1, 2, 3].map((k) => ((line.charCodeAt(i + k) || 32) - 32) & 63);
      bytes.push((c[0]! << 2) | (c[1]! >> 4), ((c[1]! & 15) << 4) | (c[2]! >> 2), ((c[2]! & 3) << 6) | c[3]!);
    }
    out.push(...bytes.slice(0, n));
  }
  return Buffer.from(out);
}
