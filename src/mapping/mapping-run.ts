import type { Hl7Message } from '../hl7/message.js';
import { compilePath } from '../hl7/path.js';
import type { Segment } from '../hl7/segment.js';
import type { ConvertContext } from './converter.js';
import { V2Element } from './v2-element.js';
import type { Vocabularies } from './vocabulary.js';

/** A resource made while mapping one message, with what the Bundle needs to place it. */
export interface MappedResource {
  /** The entry name in the message map (`patient`, `observation`), or the resource type for side resources. */
  readonly name: string;
  readonly resource: Record<string, unknown> & { resourceType: string };
  /** `urn:uuid:…`, deterministic. */
  readonly fullUrl: string;
  readonly identity: import('./mapping-files.js').IdentitySpec;
  readonly request: 'update' | 'create';
  /** For `identity: { system, from }`: the values read from the message (already joined). */
  identityValue?: string;
}

/** What was not mapped: positions only, never values (DESIGN rule 3). */
export interface MappingReport {
  /** Segments no entry took: `ZPD[1]`. */
  readonly unmappedSegments: string[];
  /** Fields with data no rule read: `PID[1]-21`, `PID[1]-5(2)` (a repetition beyond the first). */
  readonly unmappedFields: string[];
  /** Values a converter could not read: `{ location: 'PID[1]-7', dataType: 'DTM' }`. */
  readonly invalid: { location: string; dataType: string }[];
  /** Codes a vocabulary table lacks: `{ location: 'PID[1]-8', table: 'AdministrativeSex' }`. */
  readonly unknownCodes: { location: string; table: string }[];
}

/**
 * The state of mapping one message: where the current rule reads (segment occurrence and field), what
 * each segment occurrence had read from it, and the report. One per message; not shared.
 */
export class MappingRun implements ConvertContext {
  readonly message: Hl7Message;
  readonly vocabulary: Vocabularies;
  readonly report: MappingReport = {
    unmappedSegments: [],
    unmappedFields: [],
    invalid: [],
    unknownCodes: [],
  };
  readonly zoneFor: ConvertContext['zoneFor'];
  /** Segment being mapped, its 1-based occurrence among segments of its name, and the field being read. */
  segment: Segment | undefined;
  occurrence = 0;
  fieldNo = 0;
  /** Per segment position: fields read (value: true = every repetition, false = the first only). */
  readonly consumed: (boolean | undefined)[][] = [];
  segmentIndex = -1;
  /** Creates a side resource (Practitioner, Organization, Location) and returns its reference. */
  sideResource: (resourceType: string, value: Record<string, unknown>) => { reference: string };

  constructor(
    message: Hl7Message,
    vocabulary: Vocabularies,
    zoneFor: ConvertContext['zoneFor'],
    sideResource: MappingRun['sideResource'],
  ) {
    this.message = message;
    this.vocabulary = vocabulary;
    this.zoneFor = zoneFor;
    this.sideResource = sideResource;
  }

  at(segment: Segment, segmentIndex: number, occurrence: number): void {
    this.segment = segment;
    this.segmentIndex = segmentIndex;
    this.occurrence = occurrence;
    this.#source = undefined;
  }

  #source: ConditionSource | undefined;
  /** What `when` conditions of the current segment's rules read; made once per segment occurrence. */
  segmentSource(): ConditionSource {
    this.#source ??= segmentSource(this.segment as Segment, this);
    return this.#source;
  }

  consume(field: number, everyRepetition: boolean): void {
    let m = this.consumed[this.segmentIndex];
    if (m === undefined) {
      m = [];
      this.consumed[this.segmentIndex] = m;
    }
    if (everyRepetition || m[field] === undefined) m[field] = everyRepetition;
  }

  location(): string {
    const name = this.segment?.name ?? '?';
    return `${name}[${this.occurrence}]-${this.fieldNo}`;
  }

  field(n: number): V2Element {
    const seg = this.segment;
    if (seg === undefined) return new V2Element('', 0, this.message.delimiters, this.message.options);
    const raw = seg.getPartRaw(n, 1) ?? '';
    // A converter that reads a sibling field (OBX-5 reads OBX-2 and OBX-6) has used it.
    if (raw !== '') this.consume(n, false);
    return new V2Element(raw, 0, this.message.delimiters, this.message.options);
  }

  repetitions(): V2Element[] {
    const seg = this.segment;
    if (seg === undefined) return [];
    const whole = seg.getRaw(this.fieldNo);
    if (whole === '') return [];
    this.consume(this.fieldNo, true);
    const d = this.message.delimiters;
    return whole.split(d.repetition).map((rep) => new V2Element(rep, 0, d, this.message.options));
  }

  /** Values at a path as the current position sees them: set by the mapper (ancestors' occurrences first). */
  readPath: (path: string) => string[] = (path) => this.message.getAll(path);

  invalid(dataType: string): void {
    this.report.invalid.push({ location: this.location(), dataType });
  }

  unknownCode(table: string): void {
    this.report.unknownCodes.push({ location: this.location(), table });
  }
}

/** What conditions read: message paths (the current segment's own for its name) and components. */
export interface ConditionSource {
  values(path: string): string[];
  component?(n: number): string[];
}

/** Conditions in a segment map: a path on the map's own segment reads the current occurrence. */
function segmentSource(seg: Segment, run: MappingRun): ConditionSource {
  return {
    values(path: string): string[] {
      const p = compilePath(path);
      if (p.segment !== seg.name || p.occurrence !== undefined) return run.readPath(path);
      if (p.field === undefined) return [seg.raw];
      const opts = run.message.options;
      if (p.repetition !== undefined || seg.isLiteralField(p.field)) {
        return [seg.getValue(p.field, p.repetition ?? 1, p.component ?? 1, p.subcomponent ?? 1, opts)];
      }
      const n = seg.repetitionCount(p.field);
      const out: string[] = [];
      for (let r = 1; r <= n; r++)
        out.push(seg.getValue(p.field, r, p.component ?? 1, p.subcomponent ?? 1, opts));
      return out;
    },
  };
}
