import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { splitMessages } from '../../src/hl7/message-splitter.js';

/**
 * The shared HL7 v2 test corpus (see ../shared/corpus/SOURCES.md): public sample messages from other
 * projects, read in place from `shared/corpus` beside the project root (`../shared/corpus` from the repo
 * root, as in CI). `HL7_CORPUS_DIR` overrides the location.
 */
export const CORPUS_DIR: string =
  process.env.HL7_CORPUS_DIR ?? fileURLToPath(new URL('../../../shared/corpus/', import.meta.url));

export interface CorpusMessage {
  /** Path relative to the corpus root, plus `#n` (1-based) when the file holds several messages. */
  readonly id: string;
  /** Path relative to the corpus root, with `/` separators. */
  readonly file: string;
  /** The source project folder: `ms-fhir-converter`, `hapi-hl7v2`, `hl7-v2-to-fhir-ig`. */
  readonly source: string;
  /** The message as it is in the file: segment terminators untouched (a leading BOM dropped). */
  readonly text: string;
}

/** Where the messages are: folder (relative to the corpus root) and which file names in it. */
const SOURCES: Array<{ dir: string; match: (name: string) => boolean }> = [
  { dir: 'ms-fhir-converter/messages', match: (n) => n.endsWith('.hl7') },
  { dir: 'hapi-hl7v2', match: (n) => !NOT_MESSAGES.has(`hapi-hl7v2/${n}`) },
  { dir: 'hl7-v2-to-fhir-ig/samples', match: (n) => n.endsWith('.txt') },
];

/**
 * Files in those folders that are not HL7 messages. `uuencoded_escaped.txt` is only the escaped text of
 * one field value (a uuencoded WAV file with \X0D\ escapes): no MSH, no segments.
 */
const NOT_MESSAGES = new Set(['hapi-hl7v2/uuencoded_escaped.txt']);

let cache: CorpusMessage[] | undefined;

/**
 * Every HL7 v2 message in the corpus, in a stable order (source, then file name, then position in the
 * file). Files holding several messages are split with the engine's `splitMessages` (comment headers
 * skipped, split at MSH lines and blank lines). Throws when the corpus is missing or a listed file yields
 * no message, so a moved corpus never turns into a silently empty test.
 */
export function loadCorpus(): CorpusMessage[] {
  if (cache) return cache;
  if (!existsSync(CORPUS_DIR)) {
    throw new Error(`HL7 corpus not found at ${CORPUS_DIR} (expected shared/corpus beside the project root)`);
  }
  const out: CorpusMessage[] = [];
  for (const { dir, match } of SOURCES) {
    const abs = join(CORPUS_DIR, dir);
    const names = readdirSync(abs, { withFileTypes: true })
      .filter((e) => e.isFile() && match(e.name))
      .map((e) => e.name)
      .sort();
    for (const name of names) {
      const file = relative(CORPUS_DIR, join(abs, name)).split(sep).join('/');
      const texts = splitMessages(readFileSync(join(abs, name), 'utf8'));
      if (texts.length === 0) throw new Error(`corpus file ${file} holds no HL7 message`);
      texts.forEach((text, i) => {
        if (!text.startsWith('MSH'))
          throw new Error(`corpus file ${file}: chunk ${i + 1} does not start at MSH`);
        out.push({
          id: texts.length > 1 ? `${file}#${i + 1}` : file,
          file,
          source: file.slice(0, file.indexOf('/')),
          text,
        });
      });
    }
  }
  cache = out;
  return out;
}

/** Which segment terminators a message uses: '\r', '\n', '\r\n', or several joined by '+' when mixed. */
export function segmentTerminators(text: string): string {
  const kinds = new Set<string>();
  for (const m of text.matchAll(/\r\n|\r|\n/g)) kinds.add(m[0]);
  if (kinds.size === 0) return 'none';
  return [...kinds]
    .map((k) => JSON.stringify(k).slice(1, -1))
    .sort()
    .join('+');
}
