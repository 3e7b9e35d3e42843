import { EngineError } from '../errors.js';

/**
 * A compiled field path. The grammar is HAPI's Terser grammar with 1-based indexes throughout:
 *
 *   SEG[occurrence]-field(repetition)-component-subcomponent
 *
 * `PID-5-1`, `PID-3(2)-1` (second repetition of PID-3), `OBX[3]-5` (fifth field of the third OBX),
 * `PID-5-1-1`. `OBX(3)` is accepted for the occurrence as HAPI writes it, `[2]` for a repetition, and
 * `.` as well as `-` between the parts (`PID.5.1`, the notation of the HL7 standard's own tables).
 * Omitted parts are undefined: reading takes the first occurrence/repetition/component/subcomponent.
 */
export interface Hl7Path {
  readonly segment: string;
  readonly occurrence: number | undefined;
  readonly field: number | undefined;
  readonly repetition: number | undefined;
  readonly component: number | undefined;
  readonly subcomponent: number | undefined;
}

const PATH_RE =
  /^([A-Z][A-Z0-9]{2})(?:[[(](\d+)[\])])?(?:[-.](\d+)(?:[[(](\d+)[\])])?(?:[-.](\d+)(?:[-.](\d+))?)?)?$/;

const cache = new Map<string, Hl7Path>();
const CACHE_LIMIT = 10_000;

export function compilePath(path: string): Hl7Path {
  const hit = cache.get(path);
  if (hit) return hit;
  const m = PATH_RE.exec(path.trim().toUpperCase());
  if (!m) throw new EngineError('HL7_BAD_PATH');
  const compiled: Hl7Path = Object.freeze({
    segment: m[1]!,
    occurrence: index(m[2]),
    field: m[3] === undefined ? undefined : Number(m[3]),
    repetition: index(m[4]),
    component: index(m[5]),
    subcomponent: index(m[6]),
  });
  if (compiled.field === 0 && compiled.segment !== 'MSH') {
    // Field 0 is the segment name, readable only as such; it has no parts.
    if (compiled.component !== undefined || compiled.repetition !== undefined)
      throw new EngineError('HL7_BAD_PATH');
  }
  if (cache.size >= CACHE_LIMIT) cache.clear();
  cache.set(path, compiled);
  return compiled;
}

function index(raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (n < 1) throw new EngineError('HL7_BAD_PATH');
  return n;
}

export function formatPath(p: Hl7Path): string {
  let out = p.segment;
  if (p.occurrence !== undefined) out += `[${p.occurrence}]`;
  if (p.field === undefined) return out;
  out += `-${p.field}`;
  if (p.repetition !== undefined) out += `(${p.repetition})`;
  if (p.component !== undefined) out += `-${p.component}`;
  if (p.subcomponent !== undefined) out += `-${p.subcomponent}`;
  return out;
}
