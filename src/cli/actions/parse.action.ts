import { parse } from '../../hl7/index.js';
import { readMessageFile } from '../message-file.js';

export interface ParseInput {
  file: string;
  path?: string;
  raw?: boolean;
  charset?: string;
  keepFormatting?: boolean;
}

/**
 * `hl7e parse`: the structure of each message in a file as JSON (one message: an object; several: an
 * array), or with --path the value at that path, one line per message.
 */
export async function parseAction(input: ParseInput, out: (line: string) => void): Promise<void> {
  const messages = await readMessageFile(input.file, input.charset);
  const options = input.keepFormatting ? ({ formatting: 'keep', highlight: 'keep' } as const) : {};
  const parsed = messages.map((m) => parse(m.text, options));
  if (input.path !== undefined) {
    const path = input.path;
    for (const msg of parsed) out(input.raw ? (msg.getRaw(path) ?? '') : msg.get(path));
    return;
  }
  const structures = parsed.map((msg) => ({
    charset: msg.get('MSH-18') || undefined,
    segments: msg.toJSON(),
  }));
  out(JSON.stringify(structures.length === 1 ? structures[0] : structures, null, 2));
}
