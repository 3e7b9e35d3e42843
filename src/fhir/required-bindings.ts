/**
 * medplum 4.5.2 does not check terminology bindings at all, so an unmapped `gender` or `status` would pass
 * here and fail at the destination. This checks `code` elements bound `required` to a value set that can
 * be enumerated offline (gender, status, Bundle.type, request.method, Quantity.comparator, …).
 *
 * Each type's bound elements are compiled once into a key → {type, codes} table (STYLE habit 3); a check
 * then walks only the keys a resource has — about half the cost of medplum's generic crawler.
 */
import { getDataType } from '@medplum/core';
import { requiredCodes } from './fhir-definitions.js';
import type { Resource } from './fhir-types.js';

interface Slot {
  /** FHIR type of the value under this JSON key (`Quantity`, `code`, `Resource`, `ObservationComponent`). */
  readonly type: string;
  /** The allowed codes, for a `code` bound `required` to an enumerable value set. */
  readonly codes?: ReadonlySet<string>;
}

const compiled = new Map<string, Map<string, Slot> | null>();

function slotsOf(typeName: string): Map<string, Slot> | undefined {
  let slots = compiled.get(typeName);
  if (slots === undefined) {
    slots = compile(typeName) ?? null;
    compiled.set(typeName, slots);
  }
  return slots ?? undefined;
}

function compile(typeName: string): Map<string, Slot> | undefined {
  let schema: ReturnType<typeof getDataType>;
  try {
    schema = getDataType(typeName);
  } catch {
    return undefined; // not a known type: medplum reports that itself
  }
  const slots = new Map<string, Slot>();
  for (const [name, element] of Object.entries(schema.elements)) {
    const binding = element.binding as { strength?: string; valueSet?: string } | undefined;
    const codes =
      binding?.strength === 'required' && binding.valueSet ? requiredCodes(binding.valueSet) : undefined;
    if (name.endsWith('[x]')) {
      // Choice of type: `value[x]` is `valueQuantity`, `valueString`, … in JSON.
      const base = name.slice(0, -3);
      for (const t of element.type) {
        slots.set(base + t.code.charAt(0).toUpperCase() + t.code.slice(1), { type: t.code });
      }
    } else if (element.type.length === 1) {
      const type = element.type[0]!.code;
      slots.set(name, type === 'code' && codes ? { type, codes } : { type });
    }
  }
  return slots;
}

/** FHIRPath expressions (`Patient.gender`, `Observation.component[1].valueQuantity.comparator`) of bad codes. */
export function findInvalidCodes(resource: Resource): string[] {
  const found: string[] = [];
  walk(resource, resource.resourceType, resource.resourceType, found, 0);
  return found;
}

function walk(value: unknown, type: string, path: string, found: string[], depth: number): void {
  if (depth > 32 || value === null || typeof value !== 'object' || Array.isArray(value)) return;
  const obj = value as Record<string, unknown>;
  if (type === 'Resource') {
    // Bundle.entry.resource, contained[]: the JSON names its own type.
    if (typeof obj.resourceType !== 'string') return;
    type = obj.resourceType;
  }
  const slots = slotsOf(type);
  if (!slots) return;
  for (const key of Object.keys(obj)) {
    const slot = slots.get(key);
    if (!slot) continue;
    const v = obj[key];
    const items = Array.isArray(v) ? v : [v];
    items.forEach((item, i) => {
      const itemPath = Array.isArray(v) ? `${path}.${key}[${i}]` : `${path}.${key}`;
      if (slot.codes) {
        if (typeof item === 'string' && !slot.codes.has(item)) found.push(itemPath);
      } else if (isComplexType(slot.type)) {
        walk(item, slot.type, itemPath, found, depth + 1);
      }
    });
  }
}

/** FHIR primitive type names start lower-case (`code`, `dateTime`); complex and resource types upper-case. */
function isComplexType(type: string): boolean {
  const c = type.charCodeAt(0);
  return c >= 65 && c <= 90;
}
