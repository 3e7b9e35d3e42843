import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

// DESIGN "Dependencies point inward": hl7/, mapping/ and fhir/ do no I/O; only pipeline/ imports
// bullmq/ioredis; only store/ imports pg/PGlite. Checked on the import statements themselves.
const SRC = new URL('../src/', import.meta.url).pathname;

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return files(p);
    return p.endsWith('.ts') && !p.endsWith('.test.ts') ? [p] : [];
  });
}

function imports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(/^\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]/gm)].map((m) => m[1]!);
}

const PURE = ['hl7', 'mapping', 'fhir', 'channels', 'deid'];
const IO_MODULES =
  /^(node:)?(net|tls|fs|fs\/promises|http|https|child_process|dgram|dns|cluster|worker_threads)$|^(bullmq|ioredis|pg|@electric-sql\/pglite|pino|@aws-sdk\/.*)$/;
const OWNERS: Array<[RegExp, string]> = [
  [/^(bullmq|ioredis)$/, 'pipeline'],
  [/^(pg|@electric-sql\/pglite)$/, 'store'],
];

describe('architecture', () => {
  const all = files(SRC).map((f) => ({
    file: relative(SRC, f),
    folder: relative(SRC, f).split('/')[0]!,
    deps: imports(f),
  }));

  it('finds the source', () => {
    expect(all.length).toBeGreaterThan(10);
  });

  it('keeps the pure modules free of I/O', () => {
    // Reading configuration is the one allowed I/O, and only in the loaders.
    const loaders = [
      'channels/channel-loader.ts',
      'mapping/mapping-catalog.ts',
      'mapping/vocabulary-loader.ts',
    ];
    const offenders = all.filter(
      (f) => PURE.includes(f.folder) && !loaders.includes(f.file) && f.deps.some((d) => IO_MODULES.test(d)),
    );
    expect(offenders.map((f) => f.file)).toEqual([]);
  });

  it('lets only the owning folder import queue and database clients', () => {
    const offenders = all.flatMap((f) =>
      f.deps.flatMap((d) =>
        OWNERS.filter(([re, owner]) => re.test(d) && f.folder !== owner).map(() => `${f.file} → ${d}`),
      ),
    );
    expect(offenders).toEqual([]);
  });

  it('keeps hl7/ from knowing channels, pipeline or FHIR', () => {
    const offenders = all.filter(
      (f) =>
        f.folder === 'hl7' && f.deps.some((d) => /\.\.\/(channels|pipeline|fhir|mapping|mllp)\//.test(d)),
    );
    expect(offenders.map((f) => f.file)).toEqual([]);
  });
});
