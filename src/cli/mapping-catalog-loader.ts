import { existsSync, realpathSync } from 'node:fs';
import { resolve } from 'node:path';
import { defaultMappingsDir } from '../config/env.js';
import { BUILTIN_MAPPINGS_DIR, MappingCatalog } from '../mapping/mapping-catalog.js';
import { CliError, EXIT } from './cli-error.js';

/**
 * The folders a catalog is loaded from, site first: `siteDir` (HL7E_MAPPINGS_DIR, default ./mappings)
 * when it exists, then the shipped maps. Run from the repository root, ./mappings *is* the shipped folder:
 * listed once.
 */
export function mappingDirs(siteDir: string = defaultMappingsDir()): string[] {
  const builtin = realpathSync(BUILTIN_MAPPINGS_DIR);
  const site = resolve(siteDir);
  if (!existsSync(site)) return [builtin];
  const real = realpathSync(site);
  return real === builtin ? [builtin] : [real, builtin];
}

/**
 * The mapping catalog the CLI commands use (see `mappingDirs`). A folder named on the command line
 * (`--mappings DIR`) must exist: a typo there would otherwise silently fall back to the shipped maps.
 */
export function loadCatalog(siteDir?: string): MappingCatalog {
  if (siteDir !== undefined && !existsSync(siteDir)) {
    throw new CliError(`mappings folder not found: ${siteDir}`, EXIT.usage);
  }
  return MappingCatalog.load(mappingDirs(siteDir));
}
