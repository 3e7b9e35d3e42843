import { diffJson, type JsonChange } from './json-diff.js';

export interface GoldenComparison {
  /**
   * `same`: byte for byte. `ids-only`: equal once the ids derived from the mapping version are set aside
   * (any mapping edit changes every fullUrl; the content did not change). `changed`: see `changes`.
   */
  readonly status: 'same' | 'ids-only' | 'changed';
  /** Differences of the id-neutral forms, in document order. */
  readonly changes: JsonChange[];
}

/**
 * Compares an expected Bundle (or array of Bundles, one per message) with the one just made. Every
 * `urn:uuid:` id derives from the mapping version, so a one-rule change would otherwise turn every
 * fullUrl, reference and conditional URL into a difference and drown the change that matters.
 */
export function compareGolden(expectedText: string, actual: unknown): GoldenComparison {
  if (expectedText === goldenText(actual)) return { status: 'same', changes: [] };
  const changes = diffJson(withNeutralIds(JSON.parse(expectedText)), withNeutralIds(actual));
  return { status: changes.length === 0 ? 'ids-only' : 'changed', changes };
}

/** How a golden file is written: 2-space JSON and a trailing newline, so files diff well in review. */
export function goldenText(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/**
 * The value with each id that depends on the mapping version replaced by a label naming its place:
 * the Bundle id → `<id of bundle>`, entry i's uuid (wherever it occurs: fullUrl, references, `PUT
 * Provenance/…`, derived identifiers) → `<id of entry[i]>`, the version hash in the Provenance policy →
 * `<version>`.
 */
export function withNeutralIds(value: unknown): unknown {
  const bundles = Array.isArray(value) ? value : [value];
  let text = JSON.stringify(value);
  bundles.forEach((b, n) => {
    const prefix = Array.isArray(value) ? `[${n}] ` : '';
    if (b === null || typeof b !== 'object') return;
    const bundle = b as { id?: unknown; entry?: { fullUrl?: unknown }[] };
    const ids: [string, string][] = [];
    if (typeof bundle.id === 'string' && bundle.id.length >= 8) ids.push([bundle.id, `${prefix}bundle`]);
    (Array.isArray(bundle.entry) ? bundle.entry : []).forEach((e, i) => {
      const url = e?.fullUrl;
      if (typeof url === 'string' && url.startsWith('urn:uuid:') && url.length > 17) {
        ids.push([url.slice('urn:uuid:'.length), `${prefix}entry[${i}]`]);
      }
    });
    for (const [id, label] of ids) text = text.replaceAll(id, `<id of ${label}>`);
  });
  text = text.replace(/(urn:hl7e:mapping:[^:"]*:)[0-9a-f]{64}/g, '$1<version>');
  return JSON.parse(text);
}
