import { randomBytes } from 'node:crypto';
import { closeSync, constants, type promises as fsp, fsyncSync, mkdirSync, openSync } from 'node:fs';
import { open, readdir, stat } from 'node:fs/promises';
import { dirname, join, relative, sep } from 'node:path';
import { EngineError } from '../errors.js';
import { RECORD_HEADER_BYTES, recordLength } from './archive-record.js';

/** Where one record sits: the store row keeps this, so a record is read with one pread, no scan. */
export interface RecordLocation {
  /** Relative to the archive directory: `<channel>/<YYYY-MM-DD>.<writer>.h7a`. */
  readonly file: string;
  readonly offset: number;
  readonly length: number;
}

export interface PendingRecord {
  readonly channel: string;
  readonly receivedAt: Date;
  readonly bytes: Buffer;
}

interface OpenFile {
  handle: fsp.FileHandle;
  size: number;
}

/**
 * Append-only archive files, one per channel and UTC day for each writer (process), so that several
 * engine processes sharing a directory never interleave bytes. A batch is written file by file and
 * every touched file is fdatasync'ed before `append` resolves: the group commit's durability point
 * for the raw bytes. A failed write truncates the file back to its last good size.
 */
export class ArchiveWriter {
  readonly #dir: string;
  readonly #writer: string;
  readonly #files = new Map<string, OpenFile>();
  #tail: Promise<unknown> = Promise.resolve();

  constructor(dir: string, writerId = randomBytes(4).toString('hex')) {
    this.#dir = dir;
    this.#writer = writerId;
    mkdirSync(dir, { recursive: true, mode: 0o700 });
  }

  /** Appends records in order; resolves with their locations once all are on disk. */
  append(records: readonly PendingRecord[]): Promise<RecordLocation[]> {
    const run = this.#tail.then(() => this.#append(records));
    this.#tail = run.catch(() => {});
    return run;
  }

  async #append(records: readonly PendingRecord[]): Promise<RecordLocation[]> {
    const byFile = new Map<string, number[]>();
    records.forEach((r, i) => {
      const file = this.#fileName(r.channel, r.receivedAt);
      const list = byFile.get(file);
      if (list) list.push(i);
      else byFile.set(file, [i]);
    });
    const locations: RecordLocation[] = new Array(records.length);
    try {
      await Promise.all(
        [...byFile].map(async ([file, indexes]) => {
          const f = await this.#open(file);
          const start = f.size;
          const chunks = indexes.map((i) => (records[i] as PendingRecord).bytes);
          let offset = start;
          indexes.forEach((i, k) => {
            const length = (chunks[k] as Buffer).length;
            locations[i] = { file, offset, length };
            offset += length;
          });
          try {
            await writeFully(f.handle, Buffer.concat(chunks), start);
            await f.handle.datasync();
            f.size = offset;
          } catch (err) {
            await f.handle.truncate(start).catch(() => {});
            throw err;
          }
        }),
      );
    } catch (err) {
      throw new EngineError('ARCHIVE_WRITE_FAILED', {}, undefined, { cause: err });
    } finally {
      this.#closeStale(byFile.keys());
    }
    return locations;
  }

  async #open(file: string): Promise<OpenFile> {
    const known = this.#files.get(file);
    if (known) return known;
    const path = join(this.#dir, file);
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const handle = await open(path, constants.O_CREAT | constants.O_WRONLY, 0o600);
    const size = (await handle.stat()).size;
    syncDir(dirname(path));
    const f = { handle, size };
    this.#files.set(file, f);
    return f;
  }

  /** Closes files of earlier days that this batch did not touch (runs between batches only). */
  #closeStale(touched: Iterable<string>): void {
    const keep = new Set(touched);
    const today = new Date().toISOString().slice(0, 10);
    for (const [name, f] of this.#files) {
      if (keep.has(name) || name.includes(`/${today}.`)) continue;
      this.#files.delete(name);
      f.handle.close().catch(() => {});
    }
  }

  #fileName(channel: string, at: Date): string {
    return `${channel}/${at.toISOString().slice(0, 10)}.${this.#writer}.h7a`;
  }

  async close(): Promise<void> {
    await this.#tail;
    const files = [...this.#files.values()];
    this.#files.clear();
    await Promise.all(files.map((f) => f.handle.close()));
  }
}

async function writeFully(handle: fsp.FileHandle, buf: Buffer, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await handle.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

/** A new file's directory entry must be durable too, or a crash can lose the whole file. */
function syncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Reads the record at a location: one positioned read of exactly its length. */
export async function readRecordBytes(dir: string, loc: RecordLocation): Promise<Buffer> {
  const [read] = await readRecordBatch(dir, [loc]);
  if (read instanceof EngineError) throw read;
  return read as Buffer;
}

/**
 * Reads many records, opening each file once (processing reads runs of consecutive records of one
 * file). A record that cannot be read is an ARCHIVE_READ_FAILED in its slot; the others still load.
 */
export async function readRecordBatch(
  dir: string,
  locs: readonly RecordLocation[],
): Promise<(Buffer | EngineError)[]> {
  const out: (Buffer | EngineError)[] = new Array(locs.length);
  const byFile = new Map<string, number[]>();
  locs.forEach((loc, i) => {
    const list = byFile.get(loc.file);
    if (list) list.push(i);
    else byFile.set(loc.file, [i]);
  });
  const failed = (loc: RecordLocation, cause: unknown) =>
    new EngineError('ARCHIVE_READ_FAILED', { record: `${loc.file}@${loc.offset}` }, undefined, { cause });
  for (const [file, indexes] of byFile) {
    let handle: fsp.FileHandle | undefined;
    try {
      handle = await open(join(dir, file), 'r');
    } catch (err) {
      for (const i of indexes) out[i] = failed(locs[i] as RecordLocation, err);
      continue;
    }
    try {
      for (const i of indexes) {
        const loc = locs[i] as RecordLocation;
        try {
          const buf = Buffer.alloc(loc.length);
          const { bytesRead } = await handle.read(buf, 0, loc.length, loc.offset);
          if (bytesRead !== loc.length || recordLength(buf) !== loc.length)
            throw new Error('short or misaligned');
          out[i] = buf;
        } catch (err) {
          out[i] = failed(loc, err);
        }
      }
    } finally {
      await handle.close();
    }
  }
  return out;
}

/** Every archive file under dir, relative paths, sorted. */
export async function listArchiveFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  let channels: string[];
  try {
    channels = await readdir(dir);
  } catch {
    return out;
  }
  for (const ch of channels.sort()) {
    const sub = join(dir, ch);
    if (!(await stat(sub)).isDirectory()) continue;
    for (const f of (await readdir(sub)).sort()) {
      if (f.endsWith('.h7a')) out.push(relative(dir, join(sub, f)).split(sep).join('/'));
    }
  }
  return out;
}

/** Walks a file record by record (for verify): yields each location; stops at a torn tail. */
export async function* walkArchiveFile(
  dir: string,
  file: string,
): AsyncGenerator<RecordLocation | { file: string; offset: number; torn: true }> {
  const handle = await open(join(dir, file), 'r');
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(RECORD_HEADER_BYTES);
    let offset = 0;
    while (offset < size) {
      const { bytesRead } = await handle.read(head, 0, RECORD_HEADER_BYTES, offset);
      const length = bytesRead === RECORD_HEADER_BYTES ? recordLength(head) : undefined;
      if (length === undefined || offset + length > size) {
        yield { file, offset, torn: true };
        return;
      }
      yield { file, offset, length };
      offset += length;
    }
  } finally {
    await handle.close();
  }
}
