import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';
import { resolveCharset } from '../hl7/charset.js';
import { compilePath } from '../hl7/path.js';
import schema from './channel.schema.json' with { type: 'json' };
import { CHANNEL_DEFAULTS, type ChannelConfig } from './channel-config.js';

/** One problem in one channel file, pointing at the line and key an analyst has to fix. */
export interface ChannelProblem {
  file: string;
  line: number;
  key: string;
  message: string;
}

export interface LoadedChannels {
  channels: ChannelConfig[];
  problems: ChannelProblem[];
}

// Compiled once at load (STYLE habit 3); `useDefaults` fills in the documented defaults.
const ajv = new Ajv({ allErrors: true, useDefaults: true, strict: true, allowUnionTypes: false });
type RawChannel = Omit<ChannelConfig, 'file' | 'ack' | 'duplicates' | 'ordering' | 'destinations'> &
  Partial<Pick<ChannelConfig, 'ack' | 'duplicates' | 'ordering' | 'destinations'>>;
const validate = ajv.compile<RawChannel>(schema);

/** Reads every `*.yaml`/`*.yml` in a folder. Problems are collected, never thrown, so all show at once. */
export function loadChannelDir(dir: string): LoadedChannels {
  const files = readdirSync(dir)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort()
    .map((f) => join(dir, f));
  const channels: ChannelConfig[] = [];
  const problems: ChannelProblem[] = [];
  for (const file of files) {
    const result = loadChannelFile(file);
    if ('channel' in result) channels.push(result.channel);
    else problems.push(...result.problems);
  }
  problems.push(...crossChannelProblems(channels));
  return { channels, problems };
}

export function loadChannelFile(file: string): { channel: ChannelConfig } | { problems: ChannelProblem[] } {
  const text = readFileSync(file, 'utf8');
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => ({
        file,
        line: lineCounter.linePos(e.pos[0]).line,
        key: '',
        message: `YAML syntax: ${e.code}`,
      })),
    };
  }
  const value = doc.toJS() as unknown;
  if (!validate(value)) {
    return { problems: (validate.errors ?? []).map((e) => toProblem(e, doc.contents, lineCounter, file)) };
  }
  const problems: ChannelProblem[] = [];
  const lineOf = (path: string[]) => lineFor(doc.contents, path, lineCounter);
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
    channel: deepFreeze({
      ...value,
      ack: { ...d.ack, ...value.ack },
      duplicates: { ...d.duplicates, ...value.duplicates },
      ordering: { ...d.ordering, ...value.ordering },
      destinations: value.destinations ?? [],
      file,
    }),
  };
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

function toProblem(e: ErrorObject, root: YamlNode | null, lc: LineCounter, file: string): ChannelProblem {
  const path = e.instancePath.split('/').slice(1).map(decodeURIComponent);
  let key = path.join('.');
  let message = e.message ?? 'invalid';
  if (e.keyword === 'additionalProperties') {
    const extra = String((e.params as { additionalProperty: string }).additionalProperty);
    path.push(extra);
    key = path.join('.');
    message = 'unknown key';
  } else if (e.keyword === 'enum') {
    message = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  } else if (e.keyword === 'required') {
    const missing = String((e.params as { missingProperty: string }).missingProperty);
    key = [...path, missing].join('.');
    message = 'required key is missing';
  }
  return { file, line: lineFor(root, path, lc), key, message };
}

/** Line of the deepest YAML node that exists along a path (1-based). */
function lineFor(root: YamlNode | null, path: string[], lc: LineCounter): number {
  let node: unknown = root;
  let line = 1;
  for (const part of path) {
    if (!isMap(node) && !(node && typeof node === 'object' && 'items' in node)) break;
    const collection = node as { items: Array<{ key?: unknown; value?: unknown }> | unknown[] };
    let next: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (!pair) break;
      const keyNode = pair.key as YamlNode;
      if (keyNode.range) line = lc.linePos(keyNode.range[0]).line;
      next = pair.value;
    } else {
      next = (collection.items as unknown[])[Number(part)];
      const range = (next as YamlNode | undefined)?.range;
      if (range) line = lc.linePos(range[0]).line;
    }
    node = next;
  }
  return line;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

export function formatProblem(p: ChannelProblem): string {
  return `${p.file}:${p.line}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}
