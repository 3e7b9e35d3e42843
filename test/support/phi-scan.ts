import { type Needle, type PhiKind, tokensOf } from './phi-values.js';

/** Where one needle was found in one source. */
export interface PhiHit {
  readonly source: string;
  readonly needle: Needle;
  /** How often in that source. */
  count: number;
  /** The words around the first occurrence, to see what wrote it. */
  readonly context: string;
}

/** JSON string escapes (`\n`, `\"`, `\u00e9`) read as spaces, so `"a\nb"` in a log line is the words a, b. */
const JSON_ESCAPES = /\\(?:u[0-9a-fA-F]{4}|[nrtbf"\\/])/g;
const CONTEXT_WORDS = 6;

/**
 * In bytes (ciphertext, binary columns), only needles with at least this many letters and digits are
 * looked for. Random bytes spell a given 4-letter word, in either case, about once in 128^4 ≈ 3·10^8
 * positions, so megabytes of ciphertext and a hundred short names make a false hit a coin flip per
 * run; at 8 characters the odds are below 10^-7. A plaintext leak carries whole messages, long values
 * included, and the compression check (phi-sources.ts) says whether bytes are ciphertext at all.
 */
export const MIN_BINARY_CHARS = 8;

/**
 * Finds needles (phi-values.ts) in texts and bytes by token sequence: each needle is indexed by its
 * first token, and a haystack is walked token by token once, so thousands of needles cost one pass
 * over each source. Texts are read line by line (no value spans a line break once its free text is
 * cut into runs); bytes are read as UTF-8, where invalid sequences separate words.
 */
export class PhiScanner {
  readonly #byFirst = new Map<string, Needle[]>();
  readonly size: number;
  /** How many needles are looked for in bytes. */
  readonly binarySize: number;

  constructor(needles: readonly Needle[]) {
    for (const n of needles) {
      const first = n.tokens[0];
      if (first === undefined) continue;
      this.#byFirst.set(first, [...(this.#byFirst.get(first) ?? []), n]);
    }
    this.size = needles.length;
    this.binarySize = needles.filter((n) => n.tokens.join('').length >= MIN_BINARY_CHARS).length;
  }

  scan(source: string, haystack: string | Uint8Array): PhiHit[] {
    const binary = typeof haystack !== 'string';
    const text = binary ? Buffer.from(haystack).toString('utf8') : haystack;
    const hits = new Map<Needle, PhiHit>();
    for (const line of text.split('\n')) {
      const tokens = tokensOf(line.replace(JSON_ESCAPES, ' '));
      for (let i = 0; i < tokens.length; i++) {
        const candidates = this.#byFirst.get(tokens[i] as string);
        if (!candidates) continue;
        for (const needle of candidates) {
          if (binary && needle.tokens.join('').length < MIN_BINARY_CHARS) continue;
          if (!needle.tokens.every((t, k) => tokens[i + k] === t)) continue;
          const hit = hits.get(needle);
          if (hit) hit.count++;
          else {
            const from = Math.max(0, i - CONTEXT_WORDS);
            const context = tokens.slice(from, i + needle.tokens.length + CONTEXT_WORDS).join(' ');
            hits.set(needle, { source, needle, count: 1, context });
          }
        }
      }
    }
    return [...hits.values()];
  }
}

/** Hits as counts per source and kind: `{ logs: { name: 3 } }`. */
export function hitCounts(hits: readonly PhiHit[]): Record<string, Partial<Record<PhiKind, number>>> {
  const out: Record<string, Partial<Record<PhiKind, number>>> = {};
  for (const h of hits) {
    const bySource = out[h.source] ?? {};
    bySource[h.needle.kind] = (bySource[h.needle.kind] ?? 0) + 1;
    out[h.source] = bySource;
  }
  return out;
}

/**
 * A readable leak report: one line per hit, at most `max` — where, which kind of value from which
 * corpus position, and the words around it. The values are the corpus' public sample data.
 */
export function formatHits(hits: readonly PhiHit[], max = 40): string {
  const lines = hits
    .slice(0, max)
    .map(
      (h) =>
        `${h.source}: ${h.needle.kind} "${h.needle.value}" (${h.needle.where}) ×${h.count} … ${h.context} …`,
    );
  if (hits.length > max) lines.push(`… and ${hits.length - max} more`);
  return lines.join('\n');
}
