import { readFileSync } from 'node:fs';
import type { ErrorObject } from 'ajv';
import { isMap, isScalar, LineCounter, parseDocument, type Node as YamlNode } from 'yaml';

/** One problem in one config file, pointing at the line and key a person has to fix. */
export interface FileProblem {
  file: string;
  line: number;
  key: string;
  message: string;
}

export interface YamlFile {
  file: string;
  /** The raw bytes' text, for hashing. */
  text: string;
  value: unknown;
  /** Line (1-based) of the deepest node that exists along a key path. */
  lineOf(path: readonly string[]): number;
}

/** Reads and parses a YAML file keeping line positions; syntax errors come back as problems. */
export function readYamlFile(file: string): { yaml: YamlFile } | { problems: FileProblem[] } {
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
  return {
    yaml: {
      file,
      text,
      value: doc.toJS() as unknown,
      lineOf: (path) => lineFor(doc.contents, path, lineCounter),
    },
  };
}

/**
 * ajv's errors as problems: a failed `oneOf` (the condition forms) comes with one error per form, so keep
 * only the `oneOf` error, and drop even that when the same object has a plainer error (an unknown key, a
 * wrong type); a failed if/then repeats its branch's errors as "must match then schema": dropped.
 */
export function schemaProblems(
  errors: readonly ErrorObject[],
  yaml: YamlFile,
  oneOfMessage: string | ((key: string) => string),
): FileProblem[] {
  const relevant = errors.filter((e) => e.keyword !== 'if');
  const oneOfs = relevant.filter((e) => e.keyword === 'oneOf');
  const kept = relevant.filter(
    (e) =>
      !oneOfs.some(
        (o) => o !== e && o.instancePath === e.instancePath && e.schemaPath.startsWith(`${o.schemaPath}/`),
      ),
  );
  return kept
    .filter((e) => e.keyword !== 'oneOf' || !kept.some((o) => o !== e && o.instancePath === e.instancePath))
    .map((e) => schemaProblem(e, yaml, oneOfMessage));
}

/** An ajv error as a problem an analyst can act on: file, line, dotted key, plain message. */
function schemaProblem(
  e: ErrorObject,
  yaml: YamlFile,
  oneOfMessage: string | ((key: string) => string),
): FileProblem {
  const path = e.instancePath.split('/').slice(1).map(decodeURIComponent);
  let key = path.join('.');
  let message = e.message ?? 'invalid';
  if (e.keyword === 'additionalProperties') {
    path.push(String((e.params as { additionalProperty: string }).additionalProperty));
    key = path.join('.');
    message = 'unknown key';
  } else if (e.keyword === 'enum') {
    message = `must be one of: ${(e.params as { allowedValues: unknown[] }).allowedValues.join(', ')}`;
  } else if (e.keyword === 'oneOf') {
    message = typeof oneOfMessage === 'string' ? oneOfMessage : oneOfMessage(key);
  } else if (e.keyword === 'required') {
    key = [...path, String((e.params as { missingProperty: string }).missingProperty)].join('.');
    message = 'required key is missing';
  }
  return { file: yaml.file, line: yaml.lineOf(path), key, message };
}

/** `file:line: key: message`, the form editors and terminals link. */
export function formatProblem(p: FileProblem): string {
  return `${p.file}:${p.line}: ${p.key ? `${p.key}: ` : ''}${p.message}`;
}

function lineFor(root: YamlNode | null, path: readonly string[], lc: LineCounter): number {
  let node: unknown = root;
  let line = 1;
  for (const part of path) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === part);
      if (!pair) break;
      const keyNode = pair.key as YamlNode;
      if (keyNode.range) line = lc.linePos(keyNode.range[0]).line;
      node = pair.value;
    } else if (node && typeof node === 'object' && 'items' in node) {
      const next = (node as { items: unknown[] }).items[Number(part)];
      const range = (next as YamlNode | undefined)?.range;
      if (range) line = lc.linePos(range[0]).line;
      node = next;
    } else break;
  }
  return line;
}
