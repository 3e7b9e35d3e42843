import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv } from 'ajv';
import { type FileProblem, formatProblem, readYamlFile, schemaProblems } from '../config/yaml-file.js';
import { resolveCharset } from '../hl7/charset.js';
import { CONDITION_MESSAGES, compileCondition, isConditionError } from '../hl7/condition.js';
import { compilePath } from '../hl7/path.js';
import schema from './channel.schema.json' with { type: 'json' };
import {
  CHANNEL_DEFAULTS,
  type ChannelConfig,
  type DestinationInput,
  destinationWithDefaults,
} from './channel-config.js';
import { inlineSecretWarnings } from './secret-hygiene.js';

/** One problem in one channel file, pointing at the line and key an analyst has to fix. */
export type ChannelProblem = FileProblem;
export { formatProblem };

export interface LoadChannelOptions {
  /**
   * Checks the mapping a channel names (undefined: the default map for each accepted type) against the
   * mapping catalog; each returned text becomes a problem at the `mapping` key (line 1 when absent).
   */
  checkMapping?: (name: string | undefined, accept: readonly string[] | undefined) => string[];
}

export interface LoadedChannels {
  channels: ChannelConfig[];
  problems: ChannelProblem[];
  /** Things that work but should not be so: secrets written inline (secret-hygiene.ts). */
  warnings: ChannelProblem[];
}

// Compiled once at load (STYLE habit 3); `useDefaults` fills in the documented defaults.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: false });
type RawChannel = Omit<ChannelConfig, 'file' | 'ack' | 'duplicates' | 'ordering' | 'destinations'> &
  Partial<Pick<ChannelConfig, 'ack' | 'duplicates' | 'ordering'>> & {
    destinations?: readonly DestinationInput[];
  };
const validate = ajv.compile<RawChannel>(schema);

/** Reads every `*.yaml`/`*.yml` in a folder. Problems are collected, never thrown, so all show at once. */
export function loadChannelDir(dir: string, options: LoadChannelOptions = {}): LoadedChannels {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  const channels: ChannelConfig[] = [];
  const problems: ChannelProblem[] = [];
  const warnings: ChannelProblem[] = [];
  for (const file of files) {
    const result = loadChannelFile(file, options);
    if ('channel' in result) {
      channels.push(result.channel);
      warnings.push(...result.warnings);
    } else problems.push(...result.problems);
  }
  problems.push(...crossChannelProblems(channels));
  return { channels, problems, warnings };
}

export function loadChannelFile(
  file: string,
  options: LoadChannelOptions = {},
): { channel: ChannelConfig; warnings: ChannelProblem[] } | { problems: ChannelProblem[] } {
  const read = readYamlFile(file);
  if ('problems' in read) return read;
  const yaml = read.yaml;
  const value = yaml.value;
  if (!validate(value)) {
    return { problems: schemaProblems(validate.errors ?? [], yaml, CONDITION_MESSAGES.shape) };
  }
  const problems: ChannelProblem[] = [];
  const lineOf = (path: string[]) => yaml.lineOf(path);
  try {
    resolveCharset(value.charset);
  } catch {
    problems.push({
      file,
      line: lineOf(['charset']),
      key: 'charset',
      message: 'unsupported character set name',
    });
  }
  try {
    compilePath(value.ordering?.key ?? CHANNEL_DEFAULTS.ordering.key);
  } catch {
    problems.push({
      file,
      line: lineOf(['ordering', 'key']),
      key: 'ordering.key',
      message: 'invalid field path',
    });
  }
  if (!isTimeZone(value.timezone ?? CHANNEL_DEFAULTS.timezone)) {
    problems.push({ file, line: lineOf(['timezone']), key: 'timezone', message: 'unknown time zone' });
  }
  if (value.filter !== undefined) {
    try {
      compileCondition(value.filter);
    } catch (err) {
      if (!isConditionError(err)) throw err;
      const path = ['filter', ...err.at];
      problems.push({
        file,
        line: lineOf(path),
        key: path.join('.'),
        message: CONDITION_MESSAGES[err.problem],
      });
    }
  }
  if (options.checkMapping) {
    for (const message of options.checkMapping(value.mapping, value.accept)) {
      problems.push({ file, line: lineOf(['mapping']), key: 'mapping', message });
    }
  }
  const seen = new Set<string>();
  (value.destinations ?? []).forEach((d, i) => {
    if (seen.has(d.name)) {
      problems.push({
        file,
        line: lineOf(['destinations', String(i), 'name']),
        key: `destinations.${i}.name`,
        message: 'destination name is used twice in this channel',
      });
    }
    seen.add(d.name);
    if (Boolean(d.fhir) === Boolean(d.mllp)) {
      problems.push({
        file,
        line: lineOf(['destinations', String(i)]),
        key: `destinations.${i}`,
        message: 'a destination needs exactly one of fhir or mllp',
      });
    }
  });
  if (problems.length > 0) return { problems };
  // ajv fills defaults only inside objects that exist; these may be left out whole.
  const d = CHANNEL_DEFAULTS;
  return {
    warnings: inlineSecretWarnings(value, file, lineOf),
    channel: deepFreeze({
      ...value,
      ack: { ...d.ack, ...value.ack },
      duplicates: { ...d.duplicates, ...value.duplicates },
      ordering: { ...d.ordering, ...value.ordering },
      validate: value.validate ?? d.validate,
      timezone: value.timezone ?? d.timezone,
      destinations: (value.destinations ?? []).map(destinationWithDefaults),
      file,
    }),
  };
}

const OFFSET_ZONE = /^[+-](?:0\d|1[0-4]):[0-5]\d$/;

/** IANA names as this Node's ICU knows them (`UTC` included); fixed offsets are checked by shape. */
function isTimeZone(tz: string): boolean {
  if (OFFSET_ZONE.test(tz)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function crossChannelProblems(channels: ChannelConfig[]): ChannelProblem[] {
  const problems: ChannelProblem[] = [];
  const names = new Map<string, string>();
  const ports = new Map<string, string>();
  for (const c of channels) {
    const other = names.get(c.name);
    if (other)
      problems.push({ file: c.file, line: 1, key: 'name', message: `name already used by ${other}` });
    names.set(c.name, c.file);
    const { host, port } = c.source.mllp;
    if (port === 0 || !c.enabled) continue;
    const portKey = `${host}:${port}`;
    const taken = ports.get(portKey);
    if (taken)
      problems.push({
        file: c.file,
        line: 1,
        key: 'source.mllp.port',
        message: `port ${port} already used by ${taken}`,
      });
    ports.set(portKey, c.file);
  }
  return problems;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
