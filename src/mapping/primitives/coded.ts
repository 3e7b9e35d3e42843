import type { CodeableConcept, Coding } from '../../fhir/fhir-types.js';
import type { ConvertContext } from '../converter.js';
import type { V2Element } from '../v2-element.js';
import type { Vocabularies } from '../vocabulary.js';

/** Where a coding-system name the CodingSystem table lacks goes: a URN keeping the name, valid as a FHIR uri. */
export const LOCAL_CODING_SYSTEM_PREFIX = 'urn:hl7e:coding-system:';

const HL7_TABLE_PREFIX = 'http://terminology.hl7.org/CodeSystem/v2-';

function isDigits(s: string, from: number): boolean {
  if (from >= s.length) return false;
  for (let i = from; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** `2.16.840.1.113883.6.1`: digits separated by single dots. */
function isOid(s: string): boolean {
  let prevDot = true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 46) {
      if (prevDot) return false;
      prevDot = true;
    } else if (c >= 48 && c <= 57) {
      prevDot = false;
    } else {
      return false;
    }
  }
  return !prevDot && s.includes('.');
}

/**
 * A coding-system name (CWE-3, HL7 table 0396) → FHIR system URI:
 * 1. the `CodingSystem` vocabulary table (`LN` → http://loinc.org, …);
 * 2. `HL7nnnn` → http://terminology.hl7.org/CodeSystem/v2-nnnn (the IG's v2 table code systems);
 * 3. a value that already is a URI (`http…`, `urn:`) is kept, an OID becomes `urn:oid:…`;
 * 4. anything else (`99zzz`, `L`, local names) → `urn:hl7e:coding-system:<name>` (percent-encoded), so the
 *    sender's name survives and the result is still a valid uri.
 * Undefined for an empty name.
 */
export function codingSystemUri(name: string, vocabulary: Vocabularies): string | undefined {
  const n = name.trim();
  if (n === '') return undefined;
  // The table's `code` column holds the URI (a coding-system name maps to a system, not to a code in one).
  const fromTable = vocabulary.lookup('CodingSystem', n)?.code;
  if (fromTable) return fromTable;
  if (n.length === 7 && (n.startsWith('HL7') || n.startsWith('hl7')) && isDigits(n, 3)) {
    return HL7_TABLE_PREFIX + n.slice(3);
  }
  if (n.startsWith('http://') || n.startsWith('https://') || n.startsWith('urn:')) return n;
  if (isOid(n)) return `urn:oid:${n}`;
  return LOCAL_CODING_SYSTEM_PREFIX + encodeURIComponent(n);
}

/**
 * One CWE triplet (code, display, system name at `first`, `first+1`, `first+2`) and its version → Coding.
 * `needCode`: a triplet without a code is no coding (its display goes to CodeableConcept.text instead).
 */
function triplet(
  el: V2Element,
  first: number,
  versionAt: number,
  vocabulary: Vocabularies,
  needCode: boolean,
): Coding | undefined {
  const code = el.text(first).trim();
  const display = el.text(first + 1).trim();
  if (code === '' && (needCode || display === '')) return undefined;
  const coding: Coding = {};
  const system = codingSystemUri(el.text(first + 2), vocabulary);
  if (system !== undefined) coding.system = system;
  const version = el.text(versionAt).trim();
  if (version !== '') coding.version = version;
  if (code !== '') coding.code = code;
  if (display !== '') coding.display = display;
  return coding;
}

/**
 * CWE/CE/CNE → CodeableConcept per the IG's CWE[CodeableConcept]: coding[] from the triplets 1-3 (version
 * 7), 4-6 (version 8) and, v2.7+, 10-12 (version 13); `text` = CWE-9 original text, else the first triplet's
 * text, else the first coding's display. A triplet with no identifier makes no coding (a coding without a
 * code identifies nothing); its text still reaches `text`. Undefined for an empty element or `""`.
 */
export function toCodeableConcept(
  el: V2Element,
  ctx: Pick<ConvertContext, 'vocabulary'>,
): CodeableConcept | undefined {
  if (el.isEmpty || el.isNull) return undefined;
  const v = ctx.vocabulary;
  const codings: Coding[] = [];
  const c1 = triplet(el, 1, 7, v, true);
  if (c1) codings.push(c1);
  const c2 = triplet(el, 4, 8, v, true);
  if (c2) codings.push(c2);
  const c3 = triplet(el, 10, 13, v, true);
  if (c3) codings.push(c3);
  const text = el.text(9).trim() || el.text(2).trim() || codings[0]?.display || '';
  if (codings.length === 0 && text === '') return undefined;
  const cc: CodeableConcept = {};
  if (codings.length > 0) cc.coding = codings;
  if (text !== '') cc.text = text;
  return cc;
}

/**
 * The first triplet as a Coding, per the IG's CWE[Coding] (code 1, display 2, system 3, version 7). A
 * display alone still makes a Coding here (there is no `text` to put it in). Undefined when 1 and 2 are empty.
 */
export function toCoding(el: V2Element, ctx: Pick<ConvertContext, 'vocabulary'>): Coding | undefined {
  if (el.isEmpty || el.isNull) return undefined;
  return triplet(el, 1, 7, ctx.vocabulary, false);
}
