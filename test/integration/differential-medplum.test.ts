import { Hl7Message as MedplumMessage, type Hl7Segment as MedplumSegment } from '@medplum/core';
import { describe, expect, it } from 'vitest';
import { parse, type Segment } from '../../src/hl7/index.js';
import { loadCorpus } from '../support/corpus.js';

/**
 * Differential test: for every corpus message, the engine's parse and @medplum/core's `Hl7Message.parse`
 * must agree on the segments (names, order) and on the raw (encoded) text of every field, and of every
 * repetition/component of it.
 *
 * How @medplum/core 4.5.2 represents a message (its src/hl7.ts):
 * - segments: `text.split(/[\r\n]+/)`, each split on the field separator into `seg.fields`;
 *   `fields[0]` is the segment name. Each field is split on the repetition separator, then on the
 *   component separator, into `field.components[rep][comp]` (0-based); subcomponents and escapes are
 *   left alone, so `field.toString()` (joins them back) is the field's raw text as on the wire.
 * - numbering: `seg.getField(n)` is HL7's field n. For non-MSH segments that is `fields[n]`. For MSH,
 *   MSH-1 (the field separator) is not in `fields` at all, so `getField(1)` and `getField(2)` are
 *   synthesized from the parse context and `getField(n)` for n > 2 is `fields[n - 1]` (`fields[1]` is the
 *   MSH-2 text). So a segment has `fields.length - 1` fields, MSH has `fields.length`.
 */

/** Medplum's field count, numbered as HL7 numbers them (see above). */
function medplumFieldCount(seg: MedplumSegment): number {
  return seg.name === 'MSH' ? seg.fields.length : seg.fields.length - 1;
}

/** Medplum's raw text of HL7 field n ('' when absent). */
function medplumRaw(seg: MedplumSegment, n: number): string {
  return seg.getField(n)?.toString() ?? '';
}

/**
 * Medplum's segments, minus one artifact: `split(/[\r\n]+/)` on a message that ends with its segment
 * terminator (as HL7 says every segment does) leaves a trailing '' that medplum turns into a segment named
 * ''. Dropped only in that exact position and shape; any other nameless segment is compared (and fails).
 */
function medplumSegments(msg: MedplumMessage, text: string): MedplumSegment[] {
  const segs = msg.segments;
  const last = segs[segs.length - 1];
  if (last && /[\r\n]$/.test(text) && last.name === '' && last.toString() === '') return segs.slice(0, -1);
  return segs;
}

/**
 * Where medplum is lossy: MSH-2. `getField(2)` is rebuilt from five fixed positions of the text
 * (`text.charAt(4..7)`), always four characters. When MSH-2 has only three (`MSH|^~}|`, an old form
 * without subcomponent separator, hapi-hl7v2/messages.txt#4) medplum takes the next field separator as
 * the subcomponent separator and reports `^~}|`. The engine's `^~}` is the text as sent; the comparison
 * of that one field is skipped for such messages only.
 */
function medplumMsh2IsWrong(engineMsh2: string): boolean {
  return engineMsh2.length < 4;
}

interface Stats {
  fields: number;
  nonEmptyFields: number;
  components: number;
}
const stats: Stats = { fields: 0, nonEmptyFields: 0, components: 0 };

/** All differences between the engine's and medplum's view of one segment, as readable strings. */
function diffSegment(where: string, eng: Segment, mp: MedplumSegment): string[] {
  const diffs: string[] = [];
  const engCount = eng.fieldCount;
  const mpCount = medplumFieldCount(mp);
  if (engCount !== mpCount) diffs.push(`${where}: field count engine ${engCount}, medplum ${mpCount}`);
  const isMsh = eng.name === 'MSH';
  // One past the end as well: both must report an absent field as ''.
  for (let n = 1; n <= Math.max(engCount, mpCount) + 1; n++) {
    const e = eng.getRaw(n);
    if (isMsh && n === 2 && medplumMsh2IsWrong(e)) continue;
    const m = medplumRaw(mp, n);
    stats.fields++;
    if (m !== '') stats.nonEmptyFields++;
    if (e !== m) {
      diffs.push(`${where}-${n}: engine ${JSON.stringify(e)}, medplum ${JSON.stringify(m)}`);
      continue;
    }
    // MSH-1/MSH-2 are delimiters, not data with repetitions and components.
    if (e === '' || (isMsh && n <= 2)) continue;
    const field = mp.getField(n);
    if (!field) continue;
    if (eng.repetitionCount(n) !== field.components.length) {
      diffs.push(
        `${where}-${n}: repetitions engine ${eng.repetitionCount(n)}, medplum ${field.components.length}`,
      );
    }
    field.components.forEach((comps, r) => {
      comps.forEach((comp, c) => {
        stats.components++;
        const ec = eng.getPartRaw(n, r + 1, c + 1);
        if (ec !== comp) {
          diffs.push(
            `${where}-${n}(${r + 1})-${c + 1}: engine ${JSON.stringify(ec)}, medplum ${JSON.stringify(comp)}`,
          );
        }
      });
      // One past the last component is absent for the engine too.
      const past = eng.getPartRaw(n, r + 1, comps.length + 1);
      if (past !== undefined) {
        diffs.push(
          `${where}-${n}(${r + 1})-${comps.length + 1}: engine ${JSON.stringify(past)}, medplum absent`,
        );
      }
    });
  }
  return diffs;
}

const corpus = loadCorpus();

describe('differential: engine vs @medplum/core Hl7Message.parse, raw fields', () => {
  it.each(corpus.map((m) => [m.id, m.text] as const))('%s', (_id, text) => {
    const eng = parse(text);
    const mp = MedplumMessage.parse(text);
    const engSegs = eng.segments();
    const mpSegs = medplumSegments(mp, text);

    expect(engSegs.map((s) => s.name)).toEqual(mpSegs.map((s) => s.name));

    const diffs: string[] = [];
    const seen = new Map<string, number>();
    engSegs.forEach((seg, i) => {
      const occurrence = (seen.get(seg.name) ?? 0) + 1;
      seen.set(seg.name, occurrence);
      diffs.push(...diffSegment(`${seg.name}[${occurrence}]`, seg, mpSegs[i]!));
    });
    expect(diffs).toEqual([]);
  });

  // Guards the test itself: it must compare real content, so an engine returning '' everywhere fails.
  it('compared a meaningful amount of content', () => {
    expect(stats.nonEmptyFields).toBeGreaterThan(10_000);
    expect(stats.components).toBeGreaterThan(10_000);
  });
});
