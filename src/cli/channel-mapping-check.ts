import type { LoadChannelOptions } from '../channels/channel-loader.js';
import { type FileProblem, formatProblem } from '../config/yaml-file.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import type { MessageMapSpec } from '../mapping/mapping-files.js';

export interface ChannelMappingCheck {
  /** For `loadChannelDir`: one short text per problem, placed at the channel's `mapping` key. */
  readonly checkMapping: NonNullable<LoadChannelOptions['checkMapping']>;
  /** The problems inside the mapping files the channels use, each once, at their own file:line:key. */
  readonly problems: FileProblem[];
  /** Message maps checked, in the order first met. */
  readonly checked: string[];
}

/**
 * Which message maps a channel would use, and whether each compiles: the map it names; else, for each
 * concrete `accept` pattern (`ORU^R01`), the default map for that type; for a pattern with a wildcard or
 * no event (`ADT^A*`, `ADT`), every map accepting some type of that message code; with no `accept` at
 * all, every message map.
 */
export function channelMappingCheck(catalog: MappingCatalog): ChannelMappingCheck {
  const problems: FileProblem[] = [];
  const seen = new Set<string>();
  const checked: string[] = [];
  const results = new Map<string, string[]>();
  const names = catalog.messageMapNames();

  const check = (name: string): string[] => {
    const hit = results.get(name);
    if (hit) return hit;
    checked.push(name);
    let out: string[] = [];
    if (!names.includes(name)) {
      out = [`mapping ${name} is not defined`];
    } else {
      const found = catalog.check(name);
      for (const p of found) {
        const key = formatProblem(p);
        if (!seen.has(key)) problems.push(p);
        seen.add(key);
      }
      if (found.length > 0) out = [`mapping ${name} has ${found.length} problem(s), listed below`];
    }
    results.set(name, out);
    return out;
  };

  const checkMapping = (name: string | undefined, accept: readonly string[] | undefined): string[] => {
    if (name !== undefined) return check(name);
    if (accept === undefined) return names.flatMap(check);
    const out: string[] = [];
    for (const pattern of accept) {
      const [code = '', event] = pattern.split('^');
      if (event !== undefined && !/\*/.test(pattern)) {
        const chosen = catalog.defaultFor(code, event);
        if (chosen === undefined) out.push(`no mapping accepts ${pattern}`);
        else out.push(...check(chosen));
        continue;
      }
      const candidates = names.filter((n) =>
        acceptsOf(catalog, n).some((a) => overlaps(code, a.split('^')[0] ?? '')),
      );
      if (candidates.length === 0) out.push(`no mapping accepts ${pattern}`);
      for (const n of candidates) out.push(...check(n));
    }
    return [...new Set(out)];
  };

  return { checkMapping, problems, checked };
}

/** A message map's `accepts`, inherited through `extends` when it has none of its own. */
function acceptsOf(catalog: MappingCatalog, name: string): string[] {
  const seen = new Set<string>();
  let current: string | undefined = name;
  while (current !== undefined && !seen.has(current)) {
    seen.add(current);
    const spec = catalog.source('messages', current)?.spec as MessageMapSpec | undefined;
    if (spec?.accepts) return [...spec.accepts];
    current = spec?.extends;
  }
  return [];
}

/** Whether two message-code patterns (`ADT`, `A*`, `*`) can match the same code. */
function overlaps(a: string, b: string): boolean {
  return glob(a).test(b) || glob(b).test(a);
}

function glob(p: string): RegExp {
  return new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*')}$`);
}
