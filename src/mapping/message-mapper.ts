import { hash } from 'node:crypto';
import type { Hl7Message } from '../hl7/message.js';
import { compilePath } from '../hl7/path.js';
import type { Segment } from '../hl7/segment.js';
import type { ConvertContext } from './converter.js';
import { type MappedResource, type MappingReport, MappingRun } from './mapping-run.js';
import type { CompiledEntry, CompiledMessageMap } from './message-map-compiler.js';
import type { Vocabularies } from './vocabulary.js';

/** A segment occurrence in the message and the resources made from it: parents and refs walk these. */
interface Node {
  readonly segment: Segment;
  readonly parent: Node | undefined;
  /** Made on first use: most segment occurrences make no resource of their own. */
  resources: Map<string, MappedResource> | undefined;
}

export interface MapOptions {
  readonly vocabulary: Vocabularies;
  readonly zoneFor: ConvertContext['zoneFor'];
  /** A deterministic `urn:uuid:` for a key that is unique within the message. */
  readonly fullUrlFor: (key: string) => string;
}

export interface MappedMessage {
  readonly resources: MappedResource[];
  readonly report: MappingReport;
}

/** The system of identifiers derived for side resources that carry none (from what names them, hashed). */
export const SIDE_IDENTITY_SYSTEM = 'urn:hl7e:named';

/** Fields the engine itself reads from MSH for the Bundle and the Provenance. */
const ENGINE_MSH_FIELDS = [7, 9, 10];

/**
 * Runs a compiled message map over one message, segment by segment in message order. Each entry for a
 * segment makes a resource (or merges into its parent's), references are resolved at the end, and every
 * field with data that no rule read is reported.
 */
export function mapMessage(map: CompiledMessageMap, message: Hl7Message, opts: MapOptions): MappedMessage {
  const resources: MappedResource[] = [];
  const firstByName = new Map<string, MappedResource>();
  const sideByKey = new Map<string, MappedResource>();
  const pendingRefs: { node: Node; mapped: MappedResource; entry: CompiledEntry }[] = [];
  const run = new MappingRun(message, opts.vocabulary, opts.zoneFor, (type, value) => {
    const key = sideKey(type, value);
    let side = sideByKey.get(key);
    if (!side) {
      // Only an identifier with its system is a business key; "005454" alone may name two people.
      const identified =
        Array.isArray(value.identifier) && value.identifier.some((x) => x?.value && x?.system);
      side = {
        name: type,
        resource: { resourceType: type, ...value },
        fullUrl: opts.fullUrlFor(key),
        // A practitioner or location named without an id is the same one whenever it is named the same:
        // an identifier derived from what names it keeps it one resource at the destination.
        identity: identified ? 'identifier' : { system: SIDE_IDENTITY_SYSTEM, from: [] },
        request: 'update',
        ...(identified ? {} : { identityValue: hash('sha256', key, 'hex').slice(0, 32) }),
      };
      sideByKey.set(key, side);
      resources.push(side);
    }
    return { reference: side.fullUrl };
  });

  const lastSeen = new Map<string, number>();
  const occurrences = new Map<string, number>();
  const nodes: Node[] = [];
  const taken: boolean[] = [];
  const occurrenceAt: number[] = [];
  const total = message.segmentCount;
  for (let i = 0; i < total; i++) {
    const seg = message.segmentAt(i) as Segment;
    const name = seg.name;
    const occ = (occurrences.get(name) ?? 0) + 1;
    occurrences.set(name, occ);
    occurrenceAt[i] = occ;
    const parentRule = map.parents.get(name);
    let parent: Node | undefined;
    if (parentRule) {
      let best = -1;
      for (const w of parentRule.within) best = Math.max(best, lastSeen.get(w) ?? -1);
      for (const s of parentRule.stopAt) if ((lastSeen.get(s) ?? -1) > best) best = -1;
      parent = best === -1 ? undefined : nodes[best];
    }
    const node: Node = { segment: seg, parent, resources: undefined };
    nodes[i] = node;
    lastSeen.set(name, i);
    const entries = map.entries.get(name);
    if (!entries) continue;
    run.at(seg, i, occ);
    // What this occurrence's conditions read (entry `when` and rule `when` alike): ancestors first.
    const source = { values: (path: string) => readFromNode(path, node, message) };
    run.readPath = source.values;
    for (const entry of entries) {
      if (entry.parent && !(parent ? entry.parent.has(parent.segment.name) : entry.parent.size === 0))
        continue;
      if (entry.when && !entry.when(source)) continue;
      if (entry.into) {
        for (const target of entry.into) {
          const found = findUp(parent, target.name);
          if (!found) continue;
          applyInto(entry, target.rules, found, seg, run);
          taken[i] = true;
          break;
        }
        continue;
      }
      let mapped = entry.merge === undefined ? undefined : findUp(parent, entry.merge);
      if (mapped) {
        applyInto(entry, entry.rules, mapped, seg, run);
      } else {
        const resource: MappedResource['resource'] = { resourceType: entry.resourceType };
        for (const rule of entry.rules) rule(seg, resource, run);
        mapped = {
          name: entry.name,
          resource,
          fullUrl: opts.fullUrlFor(`${entry.index}:${i}`),
          identity: entry.identity,
          request: entry.request,
        };
        if (typeof entry.identity === 'object')
          mapped.identityValue = identityValue(entry.identity.from, node, message);
        resources.push(mapped);
        if (!firstByName.has(entry.name)) firstByName.set(entry.name, mapped);
      }
      taken[i] = true;
      if (node.resources === undefined) node.resources = new Map();
      node.resources.set(entry.name, mapped);
      for (const l of entry.link) {
        const target = findUp(parent, l.name);
        if (target && target !== mapped) l.set(target.resource, { reference: mapped.fullUrl });
      }
      if (entry.refs.length > 0) pendingRefs.push({ node, mapped, entry });
    }
  }
  // References last: a resource may refer to one made from a later segment (the first of its name).
  for (const { node, mapped, entry } of pendingRefs) {
    for (const r of entry.refs) {
      const target = findUp(node, r.name) ?? firstByName.get(r.name);
      if (target && target !== mapped) r.set(mapped.resource, { reference: target.fullUrl });
    }
  }
  reportUnconsumed(map, message, run, taken, occurrenceAt);
  return { resources, report: run.report };
}

function applyInto(
  entry: CompiledEntry,
  rules: readonly CompiledEntry['rules'][number][],
  target: MappedResource,
  seg: Segment,
  run: MappingRun,
): void {
  if (entry.at) {
    const part: Record<string, unknown> = {};
    for (const rule of rules) rule(seg, part, run);
    if (Object.keys(part).length > 0) entry.at(target.resource, part);
  } else {
    for (const rule of rules) rule(seg, target.resource, run);
  }
}

function findUp(node: Node | undefined, name: string): MappedResource | undefined {
  for (let n = node; n !== undefined; n = n.parent) {
    const hit = n.resources?.get(name);
    if (hit) return hit;
  }
  return undefined;
}

/** A path on an ancestor's segment reads that ancestor's occurrence (entry `when`, `identity.from`). */
function readFromNode(path: string, node: Node, message: Hl7Message): string[] {
  const p = compilePath(path);
  if (p.occurrence === undefined) {
    for (let n: Node | undefined = node; n !== undefined; n = n.parent) {
      if (n.segment.name !== p.segment) continue;
      if (p.field === undefined) return [n.segment.raw];
      return [
        n.segment.getValue(
          p.field,
          p.repetition ?? 1,
          p.component ?? 1,
          p.subcomponent ?? 1,
          message.options,
        ),
      ];
    }
  }
  return message.getAll(path);
}

function identityValue(paths: readonly string[], node: Node, message: Hl7Message): string | undefined {
  const parts = paths.map((p) => readFromNode(p, node, message)[0] ?? '').filter((v) => v !== '');
  return parts.length === 0 ? undefined : parts.join('-');
}

/** Side resources are one per identity: the first identifier, else the whole value. */
function sideKey(type: string, value: Record<string, unknown>): string {
  const ids = value.identifier as { system?: string; value?: string }[] | undefined;
  const id = ids?.find((x) => x.value);
  if (id?.system) return `${type}|${id.system}|${id.value}`;
  // An id without its assigning authority is only unique with the name it came with (two senders'
  // "005454" are two people): the name is part of the key.
  if (id) return `${type}||${id.value}|${JSON.stringify(value.name ?? '')}`;
  return `${type}|${JSON.stringify(value, withoutEntryReferences)}`;
}

/**
 * A side resource's identity must not depend on this message's fullUrls (a Location's partOf points at
 * another entry of this Bundle): the same location named in two messages is one Location.
 */
function withoutEntryReferences(key: string, value: unknown): unknown {
  return key === 'reference' && typeof value === 'string' && value.startsWith('urn:uuid:')
    ? undefined
    : value;
}

/** Every field with data that no rule read, every segment no entry took (positions only). */
function reportUnconsumed(
  map: CompiledMessageMap,
  message: Hl7Message,
  run: MappingRun,
  taken: boolean[],
  occurrenceAt: number[],
): void {
  const total = message.segmentCount;
  for (let i = 0; i < total; i++) {
    const seg = message.segmentAt(i) as Segment;
    const name = seg.name;
    const occ = occurrenceAt[i] as number;
    if (map.ignoredSegments.has(name)) continue;
    if (name === 'MSH') for (const f of ENGINE_MSH_FIELDS) markRead(run, i, f);
    if (!taken[i] && name !== 'MSH') {
      if (hasData(seg)) run.report.unmappedSegments.push(`${name}[${occ}]`);
      continue;
    }
    const consumed = run.consumed[i];
    const count = seg.fieldCount;
    for (let f = 1; f <= count; f++) {
      if (seg.isLiteralField(f) || seg.getRaw(f) === '') continue;
      if (map.ignoredFields.has(`${name}-${f}`)) continue;
      const read = consumed?.[f];
      if (read === undefined) run.report.unmappedFields.push(`${name}[${occ}]-${f}`);
      else if (!read && seg.repetitionCount(f) > 1) run.report.unmappedFields.push(`${name}[${occ}]-${f}(2)`);
    }
  }
}

function markRead(run: MappingRun, index: number, field: number): void {
  let m = run.consumed[index];
  if (m === undefined) {
    m = [];
    run.consumed[index] = m;
  }
  m[field] = true;
}

function hasData(seg: Segment): boolean {
  for (let f = 1; f <= seg.fieldCount; f++) if (!seg.isLiteralField(f) && seg.getRaw(f) !== '') return true;
  return false;
}
