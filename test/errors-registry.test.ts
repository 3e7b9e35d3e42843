import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { EngineError, ERRORS, HL7_ERROR_CONDITION } from '../src/errors.js';

// Keeps the registry, its documentation and its invariants in step (STYLE habit 2).
describe('error registry', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8');
  const conditions = new Set<string>(Object.values(HL7_ERROR_CONDITION));

  it.each(Object.keys(ERRORS))('%s is documented with its retryable flag and 0357 code', (code) => {
    const spec = ERRORS[code as keyof typeof ERRORS];
    const row = doc.split('\n').find((l) => l.startsWith(`| \`${code}\` |`));
    expect(row, `docs/errors.md has no row for ${code}`).toBeDefined();
    expect(row).toContain(`| ${spec.retryable ? 'yes' : 'no'} |`);
    expect(row).toContain(`| ${spec.hl7} |`);
    expect(conditions.has(spec.hl7)).toBe(true);
  });

  it('documents no code that does not exist', () => {
    const documented = [...doc.matchAll(/^\| `([A-Z0-9_]+)` \|/gm)].map((m) => m[1]);
    expect(documented.sort()).toEqual(Object.keys(ERRORS).sort());
  });

  it('fills templates only from details and never from anything else', () => {
    const e = new EngineError('MLLP_FRAME_TOO_LARGE', { limit: 1024 });
    expect(e.message).toBe('frame exceeds the limit of 1024 bytes');
    expect(e.retryable).toBe(false);
    expect(e.hl7Condition).toBe('104');
  });
});
