/** Output helpers for people: tables, colour only on a TTY (and never with NO_COLOR), relative times. */

const colour = (code: number) => (text: string) =>
  process.stdout.isTTY && !process.env.NO_COLOR ? `\u001b[${code}m${text}\u001b[0m` : text;

export const red = colour(31);
export const yellow = colour(33);
export const green = colour(32);
export const dim = colour(2);

/** Columns padded to their widest cell; the header underlined with dashes. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => visible(r[i] ?? '').length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visible(c).length)))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)];
}

/** Text as it shows: without colour codes (for padding). */
function visible(text: string): string {
  return text.replace(/\u001b\[\d+m/g, '');
}

/** `3 s`, `4 min`, `2 h`, `3 d` ago-style ages from seconds. */
export function age(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined) return '-';
  if (seconds < 120) return `${seconds} s`;
  if (seconds < 7_200) return `${Math.round(seconds / 60)} min`;
  if (seconds < 172_800) return `${Math.round(seconds / 3_600)} h`;
  return `${Math.round(seconds / 86_400)} d`;
}
