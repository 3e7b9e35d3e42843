/**
 * Counts of what was not mapped, per channel and position (`ZPD`, `PID-21`): "other converters drop whole
 * OBX groups without a word; this one must say what it did not map". Positions only, never values.
 */
export class MappingGaps {
  readonly #counts = new Map<string, Map<string, number>>();
  #changed = false;

  record(channel: string, positions: readonly string[]): void {
    if (positions.length === 0) return;
    let byPosition = this.#counts.get(channel);
    if (!byPosition) {
      byPosition = new Map();
      this.#counts.set(channel, byPosition);
    }
    for (const p of positions) byPosition.set(p, (byPosition.get(p) ?? 0) + 1);
    this.#changed = true;
  }

  /** Totals since start: `{ channel: { ZPD: 12, 'PID-21': 3 } }`. */
  snapshot(): Record<string, Record<string, number>> {
    const out: Record<string, Record<string, number>> = {};
    for (const [channel, m] of this.#counts) out[channel] = Object.fromEntries(m);
    return out;
  }

  /** True once after each change: lets the daemon log the totals only when they moved. */
  takeChanged(): boolean {
    const c = this.#changed;
    this.#changed = false;
    return c;
  }
}
