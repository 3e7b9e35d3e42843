import { EngineError } from '../errors.js';
import { type Delimiters, readDelimiters } from './delimiters.js';
import { escape, type UnescapeOptions, unescape as unescapeValue } from './escape.js';
import { compilePath, type Hl7Path } from './path.js';
import { nthPart, replacePart, Segment } from './segment.js';

export interface ParseOptions extends UnescapeOptions {}

const CR = 13;
const LF = 10;

/**
 * A parsed HL7 v2 message. Parsing finds segment boundaries and checks segment names (one indexOf pass);
 * everything below that is split only when read. The input text is kept as it is, so `encode()` of an
 * unmodified message returns it byte for byte (terminators, trailing empties and all).
 */
export class Hl7Message {
  readonly text: string;
  readonly delimiters: Delimiters;
  readonly options: ParseOptions;
  /** Start and end (exclusive, terminator excluded) of each segment in `text`. */
  readonly #starts: number[];
  readonly #ends: number[];
  #segments: (Segment | undefined)[];
  /** Segments added after parsing, appended on encode. */
  #added: Segment[] = [];
  #edited = false;
  readonly #markEdited = () => {
    this.#edited = true;
  };

  /** @internal use `parse()` */
  constructor(text: string, starts: number[], ends: number[], delimiters: Delimiters, options: ParseOptions) {
    this.text = text;
    this.#starts = starts;
    this.#ends = ends;
    this.delimiters = delimiters;
    this.options = options;
    this.#segments = new Array(starts.length);
  }

  get segmentCount(): number {
    return this.#starts.length + this.#added.length;
  }

  /** The segment at a 0-based position in the message. */
  segmentAt(index: number): Segment | undefined {
    const parsed = this.#starts.length;
    if (index >= parsed) return this.#added[index - parsed];
    let seg = this.#segments[index];
    if (seg === undefined) {
      const start = this.#starts[index];
      if (start === undefined) return undefined;
      const raw = this.text.slice(start, this.#ends[index]);
      seg = new Segment(raw, segmentName(raw, this.delimiters.field), this.delimiters, this.#markEdited);
      this.#segments[index] = seg;
    }
    return seg;
  }

  /** Whether the segment at a 0-based position has this name, without building the Segment. */
  #nameAt(index: number, name: string): boolean {
    const parsed = this.#starts.length;
    if (index >= parsed) return this.#added[index - parsed]?.name === name;
    // Names were checked to be exactly three characters at parse time.
    return name.length === 3 && this.text.startsWith(name, this.#starts[index]!);
  }

  /** The n-th (1-based) segment with this name. */
  segment(name: string, occurrence = 1): Segment | undefined {
    let seen = 0;
    const total = this.segmentCount;
    for (let i = 0; i < total; i++) {
      if (this.#nameAt(i, name) && ++seen === occurrence) return this.segmentAt(i);
    }
    return undefined;
  }

  /** All segments in order, or all with one name. */
  segments(name?: string): Segment[] {
    const out: Segment[] = [];
    const total = this.segmentCount;
    for (let i = 0; i < total; i++) {
      if (name === undefined || this.#nameAt(i, name)) out.push(this.segmentAt(i)!);
    }
    return out;
  }

  /**
   * The decoded primitive value at a path ('' when absent). Omitted parts default to the first
   * occurrence, repetition, component and subcomponent (HAPI Terser semantics): `PID-5` is the family name.
   */
  get(path: string): string {
    const p = compilePath(path);
    const seg = this.segment(p.segment, p.occurrence ?? 1);
    if (seg === undefined) return '';
    if (p.field === undefined) return seg.raw;
    return seg.getValue(p.field, p.repetition ?? 1, p.component ?? 1, p.subcomponent ?? 1, this.options);
  }

  /** The encoded text of the element a path names (delimiters and escapes as on the wire); undefined when absent. */
  getRaw(path: string): string | undefined {
    const p = compilePath(path);
    const seg = this.segment(p.segment, p.occurrence ?? 1);
    if (seg === undefined) return undefined;
    if (p.field === undefined) return seg.raw;
    return seg.getPartRaw(p.field, p.repetition, p.component, p.subcomponent);
  }

  /**
   * Every value a path matches: all occurrences of the segment unless `[n]` is given, all repetitions of
   * the field unless `(n)` is given. `getAll('OBX-5')` reads the value of every OBX.
   */
  getAll(path: string): string[] {
    const p = compilePath(path);
    const out: string[] = [];
    const segs =
      p.occurrence === undefined ? this.segments(p.segment) : [this.segment(p.segment, p.occurrence)];
    for (const seg of segs) {
      if (seg === undefined) continue;
      if (p.field === undefined) {
        out.push(seg.raw);
        continue;
      }
      if (p.repetition !== undefined || seg.isLiteralField(p.field)) {
        out.push(
          seg.getValue(p.field, p.repetition ?? 1, p.component ?? 1, p.subcomponent ?? 1, this.options),
        );
        continue;
      }
      // Split the repetitions once: reading them one by one from the field start would be quadratic.
      const field = seg.getRaw(p.field);
      if (field === '') continue;
      for (const rep of field.split(this.delimiters.repetition)) {
        out.push(readRepetition(rep, this.delimiters, p.component ?? 1, p.subcomponent ?? 1, this.options));
      }
    }
    return out;
  }

  /** True when the element holds the HL7 explicit null `""` (v2.5.1 §2.5.3: "delete the value"). */
  isExplicitNull(path: string): boolean {
    return this.getRaw(path) === '""';
  }

  /**
   * Sets the primitive at a path to a text value (escaped for the wire). A missing segment is appended
   * when the path names the next occurrence; missing fields and parts are padded with empties.
   */
  set(path: string, value: string): this {
    return this.setRaw(path, escape(value, this.delimiters));
  }

  /** Like `set`, but the value is already encoded (it may carry delimiters on purpose). */
  setRaw(path: string, rawValue: string): this {
    const p = compilePath(path);
    if (p.field === undefined || p.field < 1) throw new EngineError('HL7_BAD_PATH');
    const seg = this.segment(p.segment, p.occurrence ?? 1) ?? this.#appendFor(p);
    if (seg.isLiteralField(p.field)) throw new EngineError('HL7_BAD_PATH');
    const d = this.delimiters;
    let value = rawValue;
    if (p.component !== undefined || p.repetition !== undefined) {
      const field = seg.getRaw(p.field);
      const rep = p.repetition ?? 1;
      if (p.component !== undefined) {
        const repText = seg.getPartRaw(p.field, rep) ?? '';
        let compValue = rawValue;
        if (p.subcomponent !== undefined) {
          const compText = seg.getPartRaw(p.field, rep, p.component) ?? '';
          compValue = replacePart(compText, d.subcomponent, p.subcomponent, rawValue);
        }
        value = replacePart(
          field,
          d.repetition,
          rep,
          replacePart(repText, d.component, p.component, compValue),
        );
      } else {
        value = replacePart(field, d.repetition, rep, rawValue);
      }
    }
    seg.setRaw(p.field, value);
    return this;
  }

  #appendFor(p: Hl7Path): Segment {
    const existing = this.segments(p.segment).length;
    if ((p.occurrence ?? 1) !== existing + 1) throw new EngineError('HL7_BAD_PATH');
    return this.appendSegment(p.segment);
  }

  /** Appends an empty segment (or one from raw wire text without terminator) and returns it. */
  appendSegment(name: string, raw = name): Segment {
    if (!/^[A-Z][A-Z0-9]{2}$/.test(name) || !raw.startsWith(name))
      throw new EngineError('HL7_BAD_SEGMENT_NAME');
    const seg = new Segment(raw, name, this.delimiters, this.#markEdited);
    this.#added.push(seg);
    this.#edited = true;
    return seg;
  }

  /** Wire text. Unmodified: the input exactly. Modified: edited segments replaced, original terminators kept. */
  encode(): string {
    if (!this.#edited) return this.text;
    const text = this.text;
    const starts = this.#starts;
    const ends = this.#ends;
    let out = text.slice(0, starts[0]);
    for (let i = 0; i < starts.length; i++) {
      const seg = this.#segments[i];
      out += seg ? seg.raw : text.slice(starts[i], ends[i]);
      out += text.slice(ends[i], starts[i + 1] ?? text.length);
    }
    if (this.#added.length > 0) {
      const last = ends.length - 1;
      const tail = text.slice(ends[last]!);
      const terminator = tail.startsWith('\r\n') ? '\r\n' : tail.startsWith('\n') ? '\n' : '\r';
      if (tail === '') out += terminator;
      out += this.#added.map((s) => s.raw).join(terminator) + terminator;
    }
    return out;
  }

  toString(): string {
    return this.encode();
  }

  /**
   * The message as nested plain data for people and tools: one entry per segment, fields keyed by number
   * (only non-empty ones), components and subcomponents as objects keyed by number, repetitions as arrays.
   * Values are decoded.
   */
  toJSON(): Array<{ segment: string; fields: Record<string, unknown> }> {
    const d = this.delimiters;
    return this.segments().map((seg) => {
      const fields: Record<string, unknown> = {};
      for (let f = 1; f <= seg.fieldCount; f++) {
        const raw = seg.getRaw(f);
        if (raw === '') continue;
        if (seg.isLiteralField(f)) {
          fields[f] = raw;
          continue;
        }
        const reps = raw.split(d.repetition).map((rep) => structure(rep, d, this.options));
        fields[f] = reps.length === 1 ? reps[0] : reps;
      }
      return { segment: seg.name, fields };
    });
  }
}

function structure(rep: string, d: Delimiters, options: ParseOptions): unknown {
  const comps = rep.split(d.component);
  const decode = (s: string): unknown => {
    const subs = d.subcomponent === '' ? [s] : s.split(d.subcomponent);
    if (subs.length === 1) return unescapeValue(s, d, options);
    return numbered(subs.map((x) => unescapeValue(x, d, options)));
  };
  if (comps.length === 1) return decode(rep);
  return numbered(comps.map(decode));
}

function readRepetition(
  rep: string,
  d: Delimiters,
  component: number,
  subcomponent: number,
  options: ParseOptions,
): string {
  const comp = nthPart(rep, d.component, component);
  const sub = comp === undefined ? undefined : nthPart(comp, d.subcomponent, subcomponent);
  return sub ? unescapeValue(sub, d, options) : '';
}

function numbered(values: unknown[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  values.forEach((v, i) => {
    if (v !== '') out[i + 1] = v;
  });
  return out;
}

function segmentName(raw: string, fieldSep: string): string {
  const sep = raw.indexOf(fieldSep);
  return sep === -1 ? raw : raw.slice(0, sep);
}

/**
 * Parses one HL7 v2 message. Accepts \r, \n and \r\n as segment terminators (v2.5.1 §2.8 specifies
 * \r; real senders and files use all three), ignores blank lines and a leading byte-order mark or
 * whitespace, and checks every segment name. Throws EngineError (HL7_*) with a location; the error text
 * never contains message content.
 */
export function parse(text: string, options: ParseOptions = {}): Hl7Message {
  let pos = 0;
  const len = text.length;
  // Leading BOM or whitespace, as files and some senders produce.
  while (pos < len) {
    const c = text.charCodeAt(pos);
    if (c === 0xfeff || c === CR || c === LF || c === 32 || c === 9) pos++;
    else break;
  }
  if (pos >= len) throw new EngineError('HL7_EMPTY');
  if (!text.startsWith('MSH', pos)) throw new EngineError('HL7_NO_MSH', {}, { segmentIndex: 1 });
  const delimiters = readDelimiters(text, pos);
  const starts: number[] = [];
  const ends: number[] = [];
  const fieldSep = delimiters.field;
  let nextCr = text.indexOf('\r', pos);
  let nextLf = text.indexOf('\n', pos);
  while (pos < len) {
    if (nextCr !== -1 && nextCr < pos) nextCr = text.indexOf('\r', pos);
    if (nextLf !== -1 && nextLf < pos) nextLf = text.indexOf('\n', pos);
    let end = nextCr === -1 ? nextLf : nextLf === -1 ? nextCr : Math.min(nextCr, nextLf);
    if (end === -1) end = len;
    if (end > pos) {
      checkSegmentName(text, pos, end, fieldSep, starts.length + 1);
      starts.push(pos);
      ends.push(end);
    }
    pos = end + 1;
  }
  return new Hl7Message(text, starts, ends, delimiters, options);
}

/** Segment IDs are three characters, an upper-case letter then letters or digits (v2.5.1 §2.5.2). */
function checkSegmentName(text: string, start: number, end: number, fieldSep: string, index: number): void {
  const ok =
    end - start >= 3 &&
    isUpper(text.charCodeAt(start)) &&
    isUpperOrDigit(text.charCodeAt(start + 1)) &&
    isUpperOrDigit(text.charCodeAt(start + 2)) &&
    (end - start === 3 || text[start + 3] === fieldSep);
  if (!ok) throw new EngineError('HL7_BAD_SEGMENT_NAME', { segmentIndex: index }, { segmentIndex: index });
}

function isUpper(c: number): boolean {
  return c >= 65 && c <= 90;
}

function isUpperOrDigit(c: number): boolean {
  return (c >= 65 && c <= 90) || (c >= 48 && c <= 57);
}
