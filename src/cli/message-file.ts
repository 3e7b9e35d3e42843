import { readFile } from 'node:fs/promises';
import { type CharsetInfo, decodeHl7 } from '../hl7/charset.js';
import { isBatch, parseBatch } from '../hl7/index.js';
import { splitMessages } from '../hl7/message-splitter.js';

export interface FileMessage {
  /** `file#n`, 1-based, for output lines. */
  readonly label: string;
  readonly text: string;
  readonly charset: CharsetInfo;
}

/**
 * Reads a file of one or more messages: a batch (FHS/BHS), or messages separated by blank lines or
 * simply one after another (each starting at MSH). The file's bytes are decoded per the first MSH-18.
 */
export async function readMessageFile(file: string, fallbackCharset?: string): Promise<FileMessage[]> {
  return messagesOf(file, await readFile(file), fallbackCharset);
}

/** The messages in a file's bytes already read (`file` only labels them). */
export function messagesOf(file: string, raw: Buffer, fallbackCharset?: string): FileMessage[] {
  const { text, charset } = decodeHl7(raw, fallbackCharset);
  const texts = isBatch(text) ? parseBatch(text).messages.map((m) => m.text) : splitMessages(text);
  return texts.map((t, i) => ({ label: `${file}#${i + 1}`, text: t, charset }));
}
