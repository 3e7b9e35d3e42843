import { existsSync } from 'node:fs';
import type { ChannelConfig } from '../../channels/channel-config.js';
import { loadChannelDir } from '../../channels/channel-loader.js';
import { hasErrors, validateBundle } from '../../fhir/fhir-validator.js';
import { CliError, EXIT } from '../cli-error.js';
import { convertFile } from '../file-conversion.js';
import { loadCatalog } from '../mapping-catalog-loader.js';
import { fhirIssueLine, mappingReportLines, mappingReportSummary } from '../report-lines.js';

export interface ConvertInput {
  file: string;
  /** Use this channel's mapping, timezone, charset and validate setting; its name goes in the Provenance. */
  channel?: string;
  /** A message map by name (wins over the channel's). */
  mapping?: string;
  channelsDir: string;
  /** Site mapping folder named on the command line; default HL7E_MAPPINGS_DIR or ./mappings. */
  mappings?: string;
  report?: boolean;
  validate?: boolean;
  charset?: string;
}

export interface ConvertOutput {
  /** The Bundle JSON (stdout: nothing else goes there, so it can be piped). */
  out: (line: string) => void;
  /** The report, validation issues and warnings (stderr). */
  info: (line: string) => void;
}

/**
 * `hl7e convert FILE`: the FHIR transaction Bundle of each message (one: an object; several: an array).
 * Returns the exit code: 1 when --validate (or the channel's `validate`) finds an error.
 */
export async function convertAction(input: ConvertInput, io: ConvertOutput): Promise<number> {
  const channel = input.channel === undefined ? undefined : findChannel(input.channelsDir, input.channel);
  const catalog = loadCatalog(input.mappings);
  if (catalog.problems.length > 0) {
    io.info(`warning: ${catalog.problems.length} mapping file problem(s); run hl7e channels validate`);
  }
  const converted = await convertFile(input.file, {
    catalog,
    mapping: input.mapping ?? channel?.mapping,
    channel: channel?.name,
    timezone: channel?.timezone,
    charset: input.charset ?? channel?.charset,
  });
  const bundles = converted.map((c) => c.result.bundle);
  io.out(JSON.stringify(bundles.length === 1 ? bundles[0] : bundles, null, 2));

  const many = converted.length > 1;
  const prefix = (label: string) => (many ? `${label}: ` : '');
  if (input.report) {
    for (const c of converted) {
      for (const line of mappingReportLines(c.result.report)) io.info(`${prefix(c.label)}${line}`);
      io.info(`${prefix(c.label)}${c.result.mapping.name}: ${mappingReportSummary(c.result.report)}`);
    }
  }
  let exitCode: number = EXIT.ok;
  if (input.validate || channel?.validate) {
    for (const c of converted) {
      const issues = validateBundle(c.result.bundle);
      for (const issue of issues) io.info(`${prefix(c.label)}${fhirIssueLine(issue)}`);
      if (hasErrors(issues)) exitCode = EXIT.problem;
    }
  }
  return exitCode;
}

function findChannel(dir: string, name: string): ChannelConfig {
  if (!existsSync(dir)) throw new CliError(`channels folder not found: ${dir}`, EXIT.usage);
  const channel = loadChannelDir(dir).channels.find((c) => c.name === name);
  if (!channel) {
    throw new CliError(
      `channel ${name} is not defined in ${dir}, or its file is invalid (run hl7e channels validate)`,
      EXIT.usage,
    );
  }
  return channel;
}
