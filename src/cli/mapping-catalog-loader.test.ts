import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliError } from './cli-error.js';
import { loadCatalog } from './mapping-catalog-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'hl7e-catalog-loader-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('loadCatalog', () => {
  it('refuses a folder named on the command line that does not exist', () => {
    expect(() => loadCatalog(join(dir, 'typo'))).toThrow(CliError);
  });

  it('loads the shipped maps', () => {
    mkdirSync(join(dir, 'site'), { recursive: true });
    expect(loadCatalog(join(dir, 'site')).messageMapNames()).toContain('ADT_A01');
  });
});
