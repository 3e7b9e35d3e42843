import { createHash } from 'node:crypto';
import { existsSync, readdirSync, realpathSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { type FileProblem, readYamlFile, schemaProblems, type YamlFile } from '../config/yaml-file.js';
import { EngineError } from '../errors.js';
import { CONDITION_MESSAGES, compileCondition, isConditionError } from '../hl7/condition.js';
import schema from './mapping.schema.json' with { type: 'json' };
import type {
  DatatypeMapSpec,
  EntrySpec,
  MappingKind,
  MessageMapSpec,
  RuleSpec,
  SegmentMapSpec,
} from './mapping-files.js';
import { type CompiledMessageMap, compileMessageMap } from './message-map-compiler.js';
import { BUILTIN_CONVERTERS } from './primitives/index.js';
import {
  builtinConverter,
  type CompiledCondition,
  type ComponentRule,
  compileComponentRule,
  compileFieldRule,
  datatypeConverter,
  type ElementConverter,
  type FieldRule,
  type RuleEnvironment,
} from './rule-compiler.js';
import type { Vocabularies } from './vocabulary.js';
import { loadVocabularies } from './vocabulary-loader.js';

/** What compiling one message map collects: the files it used (for its version), problems, data-type maps. */
interface BuildState {
  readonly used: Map<string, string>;
  readonly problems: FileProblem[];
  readonly datatypes: Map<string, ElementConverter | 'compiling' | undefined>;
}

/** One mapping file as loaded: its parsed spec, where it is, and the hash of its bytes. */
export interface MappingSource<T = unknown> {
  readonly kind: MappingKind;
  readonly name: string;
  readonly spec: T;
  readonly sha256: string;
  readonly yaml: YamlFile;
}

/** The mappings that ship with the engine: `mappings/` at the package root (src/mapping/../../mappings). */
export const BUILTIN_MAPPINGS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', 'mappings');

/**
 * The folders a catalog is loaded from, site first: `siteDir` (HL7E_MAPPINGS_DIR, default ./mappings)
 * when it exists, then the shipped maps. Run from the repository root, ./mappings *is* the shipped folder
 * (also through a link): listed once.
 */
export function siteMappingDirs(siteDir: string): string[] {
  const builtin = realpathSync(BUILTIN_MAPPINGS_DIR);
  const site = resolve(siteDir);
  if (!existsSync(site)) return [builtin];
  const real = realpathSync(site);
  return real === builtin ? [builtin] : [real, builtin];
}

const ajv = new Ajv({ allErrors: true, strict: true, strictRequired: false, allowUnionTypes: true });
const validateFile = ajv.compile(schema);
const KIND_KEY: Record<MappingKind, string> = {
  messages: 'message',
  segments: 'segment',
  datatypes: 'datatype',
};
/** Bumped when the engine's reading of mapping files changes: part of every mapping version hash. */
const MAPPING_FORMAT_VERSION = 'hl7e-mapping/1';

/**
 * Every mapping the engine can use: the site's folders first, then the shipped ones (a site file of the
 * same name wins). Message maps compile on first use into plain functions and stay cached; `check()`
 * compiles one and returns every problem, for `hl7e channels validate`.
 */
export class MappingCatalog {
  readonly vocabulary: Vocabularies;
  readonly problems: FileProblem[];
  readonly #sources: Record<MappingKind, Map<string, MappingSource>>;
  readonly #compiled = new Map<string, CompiledMessageMap | FileProblem[]>();
  /** MSH-9 → default map name, found once per message type. */
  readonly #defaults = new Map<string, string | undefined>();

  private constructor(
    sources: Record<MappingKind, Map<string, MappingSource>>,
    vocabulary: Vocabularies,
    problems: FileProblem[],
  ) {
    this.#sources = sources;
    this.vocabulary = vocabulary;
    this.problems = problems;
  }

  /** Loads `messages/`, `segments/`, `datatypes/` and `vocabulary/` of each folder (earlier folders win). */
  static load(dirs: readonly string[] = [BUILTIN_MAPPINGS_DIR]): MappingCatalog {
    const problems: FileProblem[] = [];
    const sources: Record<MappingKind, Map<string, MappingSource>> = {
      messages: new Map(),
      segments: new Map(),
      datatypes: new Map(),
    };
    for (const dir of dirs) {
      for (const kind of Object.keys(sources) as MappingKind[]) {
        const folder = join(dir, kind);
        if (!existsSync(folder)) continue;
        for (const f of readdirSync(folder).sort()) {
          if (!/\.ya?ml$/.test(f)) continue;
          const name = f.replace(/\.ya?ml$/, '');
          if (sources[kind].has(name)) continue;
          const loaded = loadSource(kind, name, join(folder, f));
          if ('problems' in loaded) problems.push(...loaded.problems);
          else sources[kind].set(name, loaded.source);
        }
      }
    }
    const vocab = loadVocabularies(dirs.map((d) => join(d, 'vocabulary')).filter((d) => existsSync(d)));
    for (const p of vocab.problems)
      problems.push({ file: p.file, line: p.line, key: '', message: p.message });
    return new MappingCatalog(sources, vocab.vocabularies, problems);
  }

  /** The site's folder (when it exists and is not the shipped one) before the shipped mappings. */
  static forSite(siteDir: string): MappingCatalog {
    return MappingCatalog.load(siteMappingDirs(siteDir));
  }

  /** Every problem of every file: schema problems and what compiling each message map finds. */
  checkAll(): FileProblem[] {
    const seen = new Set<string>();
    const out: FileProblem[] = [];
    for (const p of [...this.problems, ...this.messageMapNames().flatMap((n) => this.check(n))]) {
      const key = `${p.file}:${p.line}:${p.key}:${p.message}`;
      if (!seen.has(key)) {
        seen.add(key);
        out.push(p);
      }
    }
    return out;
  }

  messageMapNames(): string[] {
    return [...this.#sources.messages.keys()];
  }

  source(kind: MappingKind, name: string): MappingSource | undefined {
    return this.#sources[kind].get(name);
  }

  /** The message map chosen for a message type when the channel names none: the first whose `accepts` matches. */
  defaultFor(code: string, event: string): string | undefined {
    const key = `${code}^${event}`;
    if (this.#defaults.has(key)) return this.#defaults.get(key);
    const name = this.#findDefault(code, event);
    // Bounded: message types are few, but MSH-9 is sender-controlled text.
    if (this.#defaults.size < 1000) this.#defaults.set(key, name);
    return name;
  }

  #findDefault(code: string, event: string): string | undefined {
    // An exact pattern (`ADT^A01`) wins over a wildcard (`ADT^*`), whatever the file names' order.
    let wildcard: string | undefined;
    for (const [name, src] of this.#sources.messages) {
      const spec = this.#resolveMessageSpec(name, [])?.spec ?? (src.spec as MessageMapSpec);
      for (const pattern of spec.accepts ?? []) {
        const [c = '', e] = pattern.split('^');
        if (!glob(c, code) || (e !== undefined && !glob(e, event))) continue;
        if (!pattern.includes('*') && e !== undefined) return name;
        wildcard ??= name;
      }
    }
    return wildcard;
  }

  /** Compiles (once) the message map; throws MAPPING_NOT_FOUND / MAPPING_INVALID. */
  compile(name: string): CompiledMessageMap {
    const result = this.#compile(name);
    if (Array.isArray(result)) {
      if (!this.#sources.messages.has(name)) throw new EngineError('MAPPING_NOT_FOUND', { name });
      const first = result[0];
      throw new EngineError('MAPPING_INVALID', {
        name,
        detail: first ? `${first.key} (line ${first.line})` : '?',
      });
    }
    return result;
  }

  /** Every problem compiling this message map would hit: file, line, key. */
  check(name: string): FileProblem[] {
    const result = this.#compile(name);
    return Array.isArray(result) ? result : [];
  }

  #compile(name: string): CompiledMessageMap | FileProblem[] {
    const hit = this.#compiled.get(name);
    if (hit) return hit;
    const result = this.#build(name);
    this.#compiled.set(name, result);
    return result;
  }

  #build(name: string): CompiledMessageMap | FileProblem[] {
    const problems: FileProblem[] = [];
    const resolved = this.#resolveMessageSpec(name, problems);
    if (!resolved) {
      if (problems.length === 0)
        problems.push({ file: '', line: 1, key: 'mapping', message: `mapping ${name} is not defined` });
      return problems;
    }
    const { spec, files } = resolved;
    const build: BuildState = {
      used: new Map<string, string>(files.map((s) => [`messages/${s.name}`, s.sha256])),
      problems,
      datatypes: new Map(),
    };
    const msgSource = this.#sources.messages.get(name) as MappingSource;

    const segmentMaps = new Map<string, { resourceType: string; rules: FieldRule[] } | undefined>();
    const segmentMap = (mapName: string, key: string) => {
      if (segmentMaps.has(mapName)) return segmentMaps.get(mapName);
      const src = this.#sources.segments.get(mapName);
      if (!src) {
        problems.push(at(msgSource, key, `segment map ${mapName} is not defined`));
        segmentMaps.set(mapName, undefined);
        return undefined;
      }
      build.used.set(`segments/${mapName}`, src.sha256);
      const base = src.spec as SegmentMapSpec;
      const override = spec.segments?.[mapName];
      const rules: FieldRule[] = [];
      const removed = new Set(override?.remove ?? []);
      const env = this.#env(build, src);
      const siteEnv = this.#env(build, msgSource);
      base.rules.forEach((r, i) => {
        if (removed.has(r.to)) return;
        const compiled = compileFieldRule(r, env, `rules.${i}`);
        if (compiled) rules.push(compiled);
      });
      (override?.add ?? []).forEach((r: RuleSpec, i) => {
        const compiled = compileFieldRule(r, siteEnv, `segments.${mapName}.add.${i}`);
        if (compiled) rules.push(compiled);
      });
      const out = { resourceType: base.resource, rules };
      segmentMaps.set(mapName, out);
      return out;
    };

    const compiled = compileMessageMap(name, spec, {
      segmentMap,
      condition: (c, key) => conditionOrProblem(c, (m) => problems.push(at(msgSource, key, m))),
      problem: (key, message) => problems.push(at(msgSource, key, message)),
      version: () => versionHash(build.used),
    });
    return problems.length > 0 ? problems : compiled;
  }

  /** The message map with its `extends` chain folded in; the files it came from, base first. */
  #resolveMessageSpec(
    name: string,
    problems: FileProblem[],
    seen: string[] = [],
  ): { spec: MessageMapSpec; files: MappingSource[] } | undefined {
    const src = this.#sources.messages.get(name);
    if (!src) return undefined;
    const own = src.spec as MessageMapSpec;
    if (own.extends === undefined) return { spec: own, files: [src] };
    if (seen.includes(name)) {
      problems.push(at(src, 'extends', 'extends itself (a cycle)'));
      return undefined;
    }
    const base = this.#resolveMessageSpec(own.extends, problems, [...seen, name]);
    if (!base) {
      if (!seen.includes(own.extends))
        problems.push(at(src, 'extends', `mapping ${own.extends} is not defined`));
      return undefined;
    }
    return { spec: extendMessageMap(base.spec, own), files: [...base.files, src] };
  }

  /** What the rule compiler may ask while compiling a rule of `src`; problems point into `src`. */
  #env(build: BuildState, src: MappingSource): RuleEnvironment {
    const problem = (key: string, message: string) => build.problems.push(at(src, key, message));
    return {
      converter: (type, key) => this.#converter(type, build, src, key),
      hasVocabulary: (table, key) => {
        const hash = this.vocabulary.hashOf(table);
        if (hash === undefined) {
          problem(key, `vocabulary ${table} is not defined`);
          return false;
        }
        build.used.set(`vocabulary/${table}`, hash);
        return true;
      },
      condition: (spec, key) => conditionOrProblem(spec, (m) => problem(key, m)),
      problem,
    };
  }

  #converter(
    type: string,
    build: BuildState,
    from: MappingSource,
    key: string,
  ): ElementConverter | undefined {
    const { datatypes, problems, used } = build;
    const src = this.#sources.datatypes.get(type);
    if (!src) {
      const builtin = BUILTIN_CONVERTERS[type];
      if (builtin) return builtinConverter(builtin);
      problems.push(at(from, key, `type ${type} is neither a data-type map nor a built-in converter`));
      return undefined;
    }
    const state = datatypes.get(type);
    if (state === 'compiling') {
      problems.push(at(src, 'rules', `data-type map ${type} uses itself`));
      return undefined;
    }
    if (datatypes.has(type)) return state as ElementConverter | undefined;
    datatypes.set(type, 'compiling');
    used.set(`datatypes/${type}`, src.sha256);
    const spec = src.spec as DatatypeMapSpec;
    const rules: ComponentRule[] = [];
    const env = this.#env(build, src);
    spec.rules.forEach((r, i) => {
      const compiled = compileComponentRule(r, env, `rules.${i}`);
      if (compiled) rules.push(compiled);
    });
    const conv = datatypeConverter(rules);
    datatypes.set(type, conv);
    return conv;
  }
}

function loadSource(
  kind: MappingKind,
  name: string,
  file: string,
): { source: MappingSource } | { problems: FileProblem[] } {
  const read = readYamlFile(file);
  if ('problems' in read) return read;
  const yaml = read.yaml;
  if (!validateFile(yaml.value)) {
    return { problems: schemaProblems(validateFile.errors ?? [], yaml, CONDITION_MESSAGES.shape) };
  }
  const key = KIND_KEY[kind];
  if (typeof yaml.value !== 'object' || yaml.value === null || !(key in yaml.value)) {
    return { problems: [{ file, line: 1, key, message: `a file in ${kind}/ needs the key ${key}` }] };
  }
  const sha256 = createHash('sha256').update(yaml.text).digest('hex');
  return { source: { kind, name, spec: yaml.value, sha256, yaml } };
}

function at(src: MappingSource, key: string, message: string): FileProblem {
  return { file: src.yaml.file, line: src.yaml.lineOf(key.split('.')), key, message };
}

function conditionOrProblem(spec: unknown, problem: (m: string) => void): CompiledCondition | undefined {
  try {
    return compileCondition(spec as never) as CompiledCondition;
  } catch (err) {
    problem(
      isConditionError(err)
        ? `${CONDITION_MESSAGES[err.problem]} (at ${err.at.join('.') || 'the condition'})`
        : 'invalid condition',
    );
    return undefined;
  }
}

/** SHA-256 over every file the map used (sorted by kind/name) and the format version. */
function versionHash(used: Map<string, string>): string {
  const h = createHash('sha256').update(MAPPING_FORMAT_VERSION);
  for (const key of [...used.keys()].sort()) h.update(`\n${key}=${used.get(key)}`);
  return h.digest('hex');
}

/** Folds a map that `extends` another: own entries replace the base's of the same name and segment. */
function extendMessageMap(base: MessageMapSpec, own: MessageMapSpec): MessageMapSpec {
  const same = (a: EntrySpec, b: EntrySpec) => a.segment === b.segment && (a.name ?? '') === (b.name ?? '');
  const removed = new Set(own.remove ?? []);
  const resources: EntrySpec[] = (base.resources ?? [])
    .filter((e) => !removed.has(e.name ?? ''))
    .map((e) => (own.resources ?? []).find((o) => same(o, e)) ?? e);
  for (const o of own.resources ?? []) if (!resources.includes(o)) resources.push(o);
  const segments: Record<string, { add?: RuleSpec[]; remove?: string[] }> = {};
  for (const src of [base.segments ?? {}, own.segments ?? {}]) {
    for (const [k, v] of Object.entries(src)) {
      const prev = segments[k] ?? {};
      segments[k] = {
        add: [...(prev.add ?? []), ...(v.add ?? [])],
        remove: [...(prev.remove ?? []), ...(v.remove ?? [])],
      };
    }
  }
  return {
    message: own.message,
    description: own.description ?? base.description,
    // Not inherited: a site's variant of a shipped map is used where a channel names it, and becomes a
    // default for some message types only if it says so itself.
    accepts: own.accepts,
    ignore: [...(base.ignore ?? []), ...(own.ignore ?? [])],
    resources,
    segments,
  };
}

function glob(pattern: string, value: string): boolean {
  if (!pattern.includes('*')) return pattern === value;
  const re = new RegExp(`^${pattern.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
  return re.test(value);
}
