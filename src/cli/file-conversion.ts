import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { EngineError, isEngineError } from '../errors.js';
import { encodeHl7 } from '../hl7/charset.js';
import { parse } from '../hl7/index.js';
import { type ConversionResult, convertMessage } from '../mapping/conversion.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import { CliError, EXIT } from './cli-error.js';
import { messagesOf } from './message-file.js';

/** What a conversion depends on besides the message: from the command line or a channel file. */
export interface ConversionSettings {
  readonly catalog: MappingCatalog;
  /** A message map by name; default: the one whose `accepts` matches MSH-9. */
  readonly mapping?: string;
  /** Channel name, recorded in the Provenance. */
  readonly channel?: string;
  readonly timezone?: string;
  /** Character set assumed when MSH-18 is empty. */
  readonly charset?: string;
}

export interface ConvertedMessage {
  /** `file#n`, 1-based. */
  readonly label: string;
  readonly result: ConversionResult;
}

/**
 * Converts every message in a file as the engine would. The SHA-256 the ids and the Provenance derive
 * from is taken over the message's bytes: the file's bytes when it holds one message, else each message's
 * text encoded back in the file's character set.
 *
 * Failures become one CliError line `CODE: text` (prefixed `file#n: ` when the file holds several
 * messages): the engine's error texts carry positions and codes only, never message content. Exit 2 for
 * input the engine cannot convert (malformed, no map for its type, no such map), 1 for an invalid map.
 */
export async function convertFile(file: string, settings: ConversionSettings): Promise<ConvertedMessage[]> {
  // Read once: the bytes are both what is split into messages and what a single message's SHA-256 is of.
  const bytes = await readFile(file);
  const messages = messagesOf(file, bytes, settings.charset);
  const many = messages.length > 1;
  if (messages.length === 0) throw failure(new EngineError('HL7_NOT_A_MESSAGE'), undefined);
  return messages.map((m) => {
    try {
      const raw = many ? encodeHl7(m.text, m.charset) : bytes;
      const result = convertMessage(parse(m.text), {
        catalog: settings.catalog,
        rawSha256: createHash('sha256').update(raw).digest('hex'),
        mapping: settings.mapping,
        channel: settings.channel,
        timezone: settings.timezone,
      });
      return { label: m.label, result };
    } catch (err) {
      throw failure(err, many ? m.label : undefined);
    }
  });
}

function failure(err: unknown, label: string | undefined): unknown {
  if (!isEngineError(err)) return err;
  const exitCode = err.code === 'MAPPING_INVALID' ? EXIT.problem : EXIT.usage;
  return new CliError(`${label ? `${label}: ` : ''}${err.code}: ${err.message}`, exitCode);
}
