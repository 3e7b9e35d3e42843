/**
 * Splits text holding several HL7 v2 messages (a file, a paste) into one text per message. Pure.
 *
 * Rules:
 * - A message starts at a line beginning with `MSH` and runs until the next `MSH` line, a blank line
 *   (empty or whitespace only) or the end of the text. Lines may end in \r, \n or \r\n, mixed.
 * - Each message's text is sliced from the input as it is: its segment terminators are kept, including
 *   the last segment's; blank lines after it are not part of it. Nothing is normalized.
 * - Lines outside any message that do not look like a segment (comment headers such as `/* ... *\/` or
 *   `// note`, prose) are skipped. Segment-like lines outside a message (`PID|...` with no MSH before it)
 *   are kept as a chunk of their own, so the parser reports them (HL7_NO_MSH) instead of them vanishing.
 * - Batch envelope segments (FHS, BHS, BTS, FTS) end the current message and are dropped; use
 *   `parseBatch` when the envelope itself matters.
 * - A leading byte-order mark is dropped.
 */
export function splitMessages(text: string): string[] {
  const out: string[] = [];
  const len = text.length;
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  /** Start of the chunk being collected, -1 when none. */
  let chunkStart = -1;
  /** End of the chunk's last segment, its terminator included. */
  let chunkEnd = -1;
  const close = () => {
    if (chunkStart !== -1) out.push(text.slice(chunkStart, chunkEnd));
    chunkStart = -1;
  };

  while (pos < len) {
    const lineStart = pos;
    let eol = pos;
    while (eol < len) {
      const c = text.charCodeAt(eol);
      if (c === CR || c === LF) break;
      eol++;
    }
    // The line's terminator: \r\n, \r, \n, or none at the end of the text.
    let next = eol;
    if (next < len) next += text.charCodeAt(next) === CR && text.charCodeAt(next + 1) === LF ? 2 : 1;
    pos = next;

    if (isBlank(text, lineStart, eol)) {
      close();
    } else if (text.startsWith('MSH', lineStart)) {
      close();
      chunkStart = lineStart;
      chunkEnd = next;
    } else if (isEnvelope(text, lineStart)) {
      close();
    } else if (chunkStart !== -1) {
      chunkEnd = next;
    } else if (looksLikeSegment(text, lineStart, eol)) {
      // An orphan segment: starts a chunk the parser will reject with HL7_NO_MSH.
      chunkStart = lineStart;
      chunkEnd = next;
    }
    // else: a comment or other non-HL7 line outside any message — skipped.
  }
  close();
  return out;
}

const CR = 13;
const LF = 10;

function isBlank(text: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c !== 32 && c !== 9 && c !== 0xfeff) return false;
  }
  return true;
}

function isEnvelope(text: string, start: number): boolean {
  const name = text.slice(start, start + 3);
  return name === 'FHS' || name === 'BHS' || name === 'BTS' || name === 'FTS';
}

/** Three-character segment ID (upper-case letter, then letters or digits) followed by a non-alphanumeric. */
function looksLikeSegment(text: string, start: number, end: number): boolean {
  if (end - start < 4) return false;
  return /^[A-Z][A-Z0-9]{2}[^A-Za-z0-9\s]/.test(text.slice(start, start + 4));
}
