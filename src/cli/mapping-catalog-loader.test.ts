import { mkdirSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUILTIN_MAPPINGS_DIR } from '../mapping/mapping-catalog.js';
import { CliError } from './cli-error.js';
import { loadCatalog, mappingDirs } from './mapping-catalog-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'hl7e-catalog-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('mappingDirs', () => {
  it('puts an existing site folder before the shipped one', () => {
    const site = join(dir, 'site');
    mkdirSync(site);
    expect(mappingDirs(site)).toEqual([site, BUILTIN_MAPPINGS_DIR]);
  });

  it('skips a site folder that does not exist', () => {
    expect(mappingDirs(join(dir, 'absent'))).toEqual([BUILTIN_MAPPINGS_DIR]);
  });

  it('lists the shipped folder once when the site folder is the same (run from the repository root)', () => {
    const link = join(dir, 'link');
    symlinkSync(BUILTIN_MAPPINGS_DIR, link);
    expect(mappingDirs(link)).toEqual([BUILTIN_MAPPINGS_DIR]);
    expect(mappingDirs(BUILTIN_MAPPINGS_DIR)).toEqual([BUILTIN_MAPPINGS_DIR]);
  });
});

describe('loadCatalog', () => {
  it('refuses a folder named on the command line that does not exist', () => {
    expect(() => loadCatalog(join(dir, 'typo'))).toThrow(CliError);
  });

  it('loads the shipped maps', () => {
    expect(loadCatalog(join(dir, 'site')).messageMapNames()).toContain('ADT_A01');
  });
});
