/**
 * Raw bytes of messages this process just committed, held for its own processing step so the hot path
 * does not read back and decrypt what it wrote a few milliseconds before. Bounded by bytes, oldest out
 * first; a miss (evicted, restarted, another process) reads the archive as usual. Memory only: nothing
 * here outlives the process or leaves it (DESIGN rule 3 is about data at rest).
 */
export class RawHandoff {
  readonly #budget: number;
  readonly #held = new Map<string, Buffer>();
  #bytes = 0;

  constructor(budgetBytes: number) {
    this.#budget = budgetBytes;
  }

  put(id: string, raw: Buffer): void {
    if (this.#budget <= 0 || raw.length > this.#budget) return;
    this.#held.set(id, raw);
    this.#bytes += raw.length;
    for (const [oldId, old] of this.#held) {
      if (this.#bytes <= this.#budget) break;
      this.#held.delete(oldId);
      this.#bytes -= old.length;
    }
  }

  /** The bytes for `id`, once: taking removes them. */
  take(id: string): Buffer | undefined {
    const raw = this.#held.get(id);
    if (raw) {
      this.#held.delete(id);
      this.#bytes -= raw.length;
    }
    return raw;
  }

  get size(): number {
    return this.#held.size;
  }
}
