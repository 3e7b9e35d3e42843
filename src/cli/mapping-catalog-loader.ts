import { existsSync } from 'node:fs';
import { defaultMappingsDir } from '../config/env.js';
import { MappingCatalog } from '../mapping/mapping-catalog.js';
import { CliError, EXIT } from './cli-error.js';

/**
 * The mapping catalog the CLI commands use: the site folder, then the shipped maps, as the daemon loads
 * them (`MappingCatalog.forSite`). A folder named on the command line (`--mappings DIR`) must exist: a
 * typo there would otherwise silently fall back to the shipped maps.
 */
export function loadCatalog(siteDir?: string): MappingCatalog {
  if (siteDir !== undefined && !existsSync(siteDir)) {
    throw new CliError(`mappings folder not found: ${siteDir}`, EXIT.usage);
  }
  return MappingCatalog.forSite(siteDir ?? defaultMappingsDir());
}
