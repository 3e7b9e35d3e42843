import type { Converter } from '../converter.js';

/**
 * Every repetition of the field as one text, one line per repetition (NTE-3 comments, TX/FT report lines):
 * a rule without `[]` would keep only the first and report the rest.
 */
export const textLines: Converter = (_el, ctx) => {
  const text = ctx
    .repetitions()
    .map((r) => r.fullText())
    .join('\n');
  return text.trim() === '' ? undefined : text;
};
