import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { ChannelConfig } from '../../channels/channel-config.js';
import { formatProblem, loadChannelDir } from '../../channels/channel-loader.js';
import { isEngineError } from '../../errors.js';
import type { Bundle } from '../../fhir/fhir-types.js';
import { hasErrors, validateBundle } from '../../fhir/fhir-validator.js';
import type { MappingCatalog } from '../../mapping/mapping-catalog.js';
import { CliError, EXIT } from '../cli-error.js';
import { convertFile } from '../file-conversion.js';
import { compareGolden, goldenText } from '../golden-compare.js';
import { formatChange } from '../json-diff.js';
import { loadCatalog } from '../mapping-catalog-loader.js';
import { fhirIssueLine } from '../report-lines.js';

export interface ChannelsTestInput {
  dir: string;
  /** Write the Bundles made now as the expected files (how an analyst accepts a change). */
  update?: boolean;
  /** Site mapping folder named on the command line; default HL7E_MAPPINGS_DIR or ./mappings. */
  mappings?: string;
}

/** Differences shown per file; the rest are counted. */
const MAX_DIFF_LINES = 20;

type Status = 'ok' | 'FAIL' | 'new' | 'updated';

interface FileResult {
  status: Status;
  note: string;
  details: string[];
}

/**
 * `hl7e channels test [DIR]`: for each channel file `<name>.yaml`, every `<name>.tests/*.hl7` is converted
 * with the channel's mapping, timezone and charset and compared with `<same name>.json`. Changes are
 * printed as JSON paths with the expected and actual values: golden files are made-up test data, not
 * patient data, so showing their values is the point here (the engine's own errors never do).
 * Returns 1 when a file fails, has no expected file yet (without --update) or a channel file is invalid.
 */
export async function channelsTestAction(
  input: ChannelsTestInput,
  out: (line: string) => void,
): Promise<number> {
  if (!existsSync(input.dir)) throw new CliError(`channels folder not found: ${input.dir}`, EXIT.usage);
  const catalog = loadCatalog(input.mappings);
  if (catalog.problems.length > 0) {
    out(`warning: ${catalog.problems.length} mapping file problem(s); run hl7e channels validate`);
  }
  const { channels, problems } = loadChannelDir(input.dir);
  for (const p of problems) out(`invalid  ${formatProblem(p)}`);
  const counts: Record<Status, number> = { ok: 0, FAIL: 0, new: 0, updated: 0 };
  let failed = problems.length > 0;

  for (const channel of channels) {
    const testsDir = join(input.dir, `${basename(channel.file).replace(/\.ya?ml$/, '')}.tests`);
    const files = existsSync(testsDir)
      ? readdirSync(testsDir)
          .filter((f) => f.endsWith('.hl7'))
          .sort()
      : [];
    if (files.length === 0) {
      out(`${channel.name}: no golden files (${testsDir})`);
      continue;
    }
    out(`${channel.name} (${testsDir})`);
    for (const f of files) {
      const r = await testFile(join(testsDir, f), channel, catalog, input.update ?? false);
      counts[r.status]++;
      if (r.status === 'FAIL' || (r.status === 'new' && !input.update)) failed = true;
      out(`  ${r.status.padEnd(8)}${f}${r.note ? ` ${r.note}` : ''}`);
      for (const d of r.details) out(`          ${d}`);
    }
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  out(
    `${total} golden file(s): ${counts.ok} ok, ${counts.FAIL} failed, ${counts.new} new, ${counts.updated} updated`,
  );
  return failed ? EXIT.problem : EXIT.ok;
}

async function testFile(
  hl7File: string,
  channel: ChannelConfig,
  catalog: MappingCatalog,
  update: boolean,
): Promise<FileResult> {
  const jsonFile = hl7File.replace(/\.hl7$/, '.json');
  const jsonName = basename(jsonFile);
  let actual: unknown;
  try {
    const converted = await convertFile(hl7File, {
      catalog,
      mapping: channel.mapping,
      channel: channel.name,
      timezone: channel.timezone,
      charset: channel.charset,
    });
    const bundles = converted.map((c) => c.result.bundle);
    actual = bundles.length === 1 ? bundles[0] : bundles;
  } catch (err) {
    if (err instanceof CliError) return { status: 'FAIL', note: '', details: [err.message] };
    if (isEngineError(err)) return { status: 'FAIL', note: '', details: [`${err.code}: ${err.message}`] };
    throw err;
  }

  let result: FileResult;
  if (!existsSync(jsonFile)) {
    if (!update)
      return { status: 'new', note: `(no ${jsonName}; run with --update to write it)`, details: [] };
    writeFileSync(jsonFile, goldenText(actual));
    result = { status: 'new', note: `(wrote ${jsonName})`, details: [] };
  } else {
    const expectedText = readFileSync(jsonFile, 'utf8');
    let comparison: ReturnType<typeof compareGolden> | undefined;
    try {
      comparison = compareGolden(expectedText, actual);
    } catch {
      comparison = undefined;
    }
    if (comparison?.status === 'same') {
      result = { status: 'ok', note: '', details: [] };
    } else if (update) {
      writeFileSync(jsonFile, goldenText(actual));
      result = { status: 'updated', note: `(wrote ${jsonName})`, details: diffLines(comparison) };
    } else if (comparison === undefined) {
      return { status: 'FAIL', note: `(${jsonName} is not valid JSON)`, details: [] };
    } else if (comparison.status === 'ids-only') {
      result = {
        status: 'ok',
        note: '(only the mapping version changed; --update refreshes the ids)',
        details: [],
      };
    } else {
      result = { status: 'FAIL', note: '', details: diffLines(comparison) };
    }
  }
  // The expected file is what a destination would be sent: it has to be valid FHIR R4 itself.
  const expected = JSON.parse(readFileSync(jsonFile, 'utf8')) as Bundle | Bundle[];
  const bundles = Array.isArray(expected) ? expected : [expected];
  bundles.forEach((b, i) => {
    const issues = validateBundle(b);
    const prefix = bundles.length > 1 ? `[${i}] ` : '';
    for (const issue of issues) result.details.push(`${prefix}${fhirIssueLine(issue)}`);
    if (hasErrors(issues)) result.status = 'FAIL';
  });
  return result;
}

function diffLines(comparison: ReturnType<typeof compareGolden> | undefined): string[] {
  if (comparison === undefined) return [];
  const lines = comparison.changes.slice(0, MAX_DIFF_LINES).map((c) => formatChange(c));
  const more = comparison.changes.length - MAX_DIFF_LINES;
  if (more > 0) lines.push(`… ${more} more change(s)`);
  return lines;
}
