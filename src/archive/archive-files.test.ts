import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EngineError } from '../errors.js';
import {
  ArchiveWriter,
  listArchiveFiles,
  type PendingRecord,
  type RecordLocation,
  readRecordBytes,
  walkArchiveFile,
} from './archive-files.js';
import {
  type ArchiveRecord,
  decodeRecord,
  encodeRecord,
  RECORD_HEADER_BYTES,
  recordLength,
} from './archive-record.js';

const DAY1 = new Date('2026-01-05T10:00:00.000Z');
const DAY1_LATE = new Date('2026-01-05T23:59:59.999Z');
const DAY2 = new Date('2026-01-06T00:00:00.000Z');

function record(size = 64, keyId = 'dk_test'): ArchiveRecord {
  return {
    messageId: randomUUID(),
    keyId,
    iv: randomBytes(12),
    tag: randomBytes(16),
    ciphertext: randomBytes(size),
  };
}

function pending(channel: string, receivedAt: Date, size = 64): PendingRecord & { rec: ArchiveRecord } {
  const rec = record(size);
  return { channel, receivedAt, bytes: encodeRecord(rec), rec };
}

async function walk(dir: string, file: string) {
  const out = [];
  for await (const entry of walkArchiveFile(dir, file)) out.push(entry);
  return out;
}

async function readError(dir: string, loc: RecordLocation): Promise<unknown> {
  return readRecordBytes(dir, loc).then(
    () => undefined,
    (err: unknown) => err,
  );
}

let root: string;
let n = 0;
/** A fresh, not yet existing archive directory under the file's temp root. */
const freshDir = () => join(root, `archive-${++n}`);

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'hl7e-archive-files-'));
});

afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

describe('archive-record', () => {
  it('encodes and decodes every field', () => {
    const rec = record(200, 'dk_0123456789abcdef');
    const buf = encodeRecord(rec);
    expect(buf.subarray(0, 4).toString('latin1')).toBe('H7AR');
    expect(buf.length).toBe(RECORD_HEADER_BYTES + rec.keyId.length + 200);
    expect(recordLength(buf)).toBe(buf.length);
    const back = decodeRecord(buf, 'x@0');
    expect(back.messageId).toBe(rec.messageId);
    expect(back.keyId).toBe(rec.keyId);
    expect(back.iv.equals(rec.iv)).toBe(true);
    expect(back.tag.equals(rec.tag)).toBe(true);
    expect(back.ciphertext.equals(rec.ciphertext)).toBe(true);
  });

  it('reports no length for short headers, wrong magic or an unknown version', () => {
    const buf = encodeRecord(record());
    expect(recordLength(buf.subarray(0, RECORD_HEADER_BYTES - 1))).toBeUndefined();
    const badMagic = Buffer.from(buf);
    badMagic.write('XXXX', 0, 'latin1');
    expect(recordLength(badMagic)).toBeUndefined();
    const badVersion = Buffer.from(buf);
    badVersion[4] = 2;
    expect(recordLength(badVersion)).toBeUndefined();
  });

  it('refuses to decode a buffer that is not exactly one record, naming only the location', () => {
    const buf = encodeRecord(record());
    for (const bad of [buf.subarray(0, buf.length - 1), Buffer.concat([buf, Buffer.from([0])])]) {
      let caught: unknown;
      try {
        decodeRecord(bad, 'lab/2026-01-05.w.h7a@128');
      } catch (err) {
        caught = err;
      }
      expect(caught).toBeInstanceOf(EngineError);
      expect((caught as EngineError).code).toBe('ARCHIVE_READ_FAILED');
      expect((caught as EngineError).message).toContain('lab/2026-01-05.w.h7a@128');
    }
  });

  it('rejects malformed parts when encoding', () => {
    expect(() => encodeRecord({ ...record(), iv: randomBytes(11) })).toThrow(RangeError);
    expect(() => encodeRecord({ ...record(), tag: randomBytes(15) })).toThrow(RangeError);
    expect(() => encodeRecord({ ...record(), keyId: 'k'.repeat(256) })).toThrow(RangeError);
    expect(() => encodeRecord({ ...record(), messageId: 'not-a-uuid' })).toThrow(RangeError);
  });
});

describe('ArchiveWriter', () => {
  it('appends records across calls and reads each back by (file, offset, length)', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    try {
      const first = [pending('lab', DAY1, 10), pending('lab', DAY1, 300), pending('lab', DAY1, 0)];
      const second = [pending('lab', DAY1_LATE, 77), pending('lab', DAY1, 1)];
      const loc1 = await w.append(first);
      const loc2 = await w.append(second);
      const all = [...first, ...second];
      const locs = [...loc1, ...loc2];

      // One file for the day; records laid end to end in append order.
      expect(new Set(locs.map((l) => l.file))).toEqual(new Set(['lab/2026-01-05.w1.h7a']));
      let offset = 0;
      locs.forEach((l, i) => {
        expect(l.offset).toBe(offset);
        expect(l.length).toBe(all[i]!.bytes.length);
        offset += l.length;
      });
      expect((await stat(join(dir, 'lab/2026-01-05.w1.h7a'))).size).toBe(offset);

      for (const [i, loc] of locs.entries()) {
        const bytes = await readRecordBytes(dir, loc);
        expect(bytes.equals(all[i]!.bytes)).toBe(true);
        const rec = decodeRecord(bytes, `${loc.file}@${loc.offset}`);
        expect(rec.messageId).toBe(all[i]!.rec.messageId);
        expect(rec.ciphertext.equals(all[i]!.rec.ciphertext)).toBe(true);
      }
    } finally {
      await w.close();
    }
  });

  it('names files per channel, UTC day and writer, and lists them sorted', async () => {
    const dir = freshDir();
    const w1 = new ArchiveWriter(dir, 'w1');
    const w2 = new ArchiveWriter(dir, 'w2');
    try {
      const batch = [pending('lab', DAY1), pending('adt', DAY1), pending('lab', DAY2), pending('lab', DAY1)];
      const locs = await w1.append(batch);
      expect(locs.map((l) => l.file)).toEqual([
        'lab/2026-01-05.w1.h7a',
        'adt/2026-01-05.w1.h7a',
        'lab/2026-01-06.w1.h7a',
        'lab/2026-01-05.w1.h7a',
      ]);
      // Within one file of a batch, records follow each other in batch order.
      expect(locs[3]!.offset).toBe(locs[0]!.offset + locs[0]!.length);
      expect(locs[1]!.offset).toBe(0);
      expect(locs[2]!.offset).toBe(0);

      // A second writer (another process) on the same directory never shares a file.
      const [other] = await w2.append([pending('lab', DAY1)]);
      expect(other).toEqual({ file: 'lab/2026-01-05.w2.h7a', offset: 0, length: batch[0]!.bytes.length });

      // Files that are not archive files are ignored.
      await writeFile(join(dir, 'README'), 'not an archive');
      await writeFile(join(dir, 'lab', 'notes.txt'), 'not an archive');
      await mkdir(join(dir, 'empty-channel'));
      expect(await listArchiveFiles(dir)).toEqual([
        'adt/2026-01-05.w1.h7a',
        'lab/2026-01-05.w1.h7a',
        'lab/2026-01-05.w2.h7a',
        'lab/2026-01-06.w1.h7a',
      ]);
      for (const [i, loc] of locs.entries()) {
        expect((await readRecordBytes(dir, loc)).equals(batch[i]!.bytes)).toBe(true);
      }
    } finally {
      await w1.close();
      await w2.close();
    }
  });

  it('lists nothing for a directory that does not exist', async () => {
    expect(await listArchiveFiles(join(root, 'no-such-archive'))).toEqual([]);
  });

  it('generates a writer id when none is given', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir);
    try {
      const [loc] = await w.append([pending('lab', DAY1)]);
      expect(loc!.file).toMatch(/^lab\/2026-01-05\.[0-9a-f]{8}\.h7a$/);
    } finally {
      await w.close();
    }
  });

  it('continues an existing file after a restart with the same writer id', async () => {
    const dir = freshDir();
    const before = pending('lab', DAY1, 50);
    const w1 = new ArchiveWriter(dir, 'w1');
    const [a] = await w1.append([before]);
    await w1.close();

    const after = pending('lab', DAY1, 60);
    const w2 = new ArchiveWriter(dir, 'w1');
    try {
      const [b] = await w2.append([after]);
      expect(b).toEqual({ file: a!.file, offset: a!.length, length: after.bytes.length });
      expect((await readRecordBytes(dir, a!)).equals(before.bytes)).toBe(true);
      expect((await readRecordBytes(dir, b!)).equals(after.bytes)).toBe(true);
    } finally {
      await w2.close();
    }
  });

  it('keeps the archive private: directories 0700 and files 0600, nothing for group or others', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    try {
      const [loc] = await w.append([pending('lab', DAY1)]);
      for (const path of [dir, join(dir, 'lab')]) {
        const s = await stat(path);
        expect(s.isDirectory()).toBe(true);
        expect(s.mode & 0o777).toBe(0o700);
      }
      const f = await stat(join(dir, loc!.file));
      expect(f.mode & 0o777).toBe(0o600);
      expect(f.mode & 0o077).toBe(0);
    } finally {
      await w.close();
    }
  });

  it('serialises concurrent appends without interleaving bytes', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    try {
      const batches = Array.from({ length: 10 }, (_, i) => [
        pending('lab', DAY1, 10 + i),
        pending('lab', DAY1, 200 + i),
      ]);
      const results = await Promise.all(batches.map((b) => w.append(b)));
      const locs = results.flat().sort((x, y) => x.offset - y.offset);
      let offset = 0;
      for (const l of locs) {
        expect(l.offset).toBe(offset);
        offset += l.length;
      }
      for (const [i, batch] of batches.entries()) {
        for (const [k, p] of batch.entries()) {
          expect((await readRecordBytes(dir, results[i]![k]!)).equals(p.bytes)).toBe(true);
        }
      }
    } finally {
      await w.close();
    }
  });
});

describe('readRecordBytes', () => {
  it('fails with ARCHIVE_READ_FAILED for a missing file, a misaligned location or a wrong length', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    let locs: RecordLocation[];
    try {
      locs = await w.append([pending('lab', DAY1, 40), pending('lab', DAY1, 40)]);
    } finally {
      await w.close();
    }
    const [a, b] = locs as [RecordLocation, RecordLocation];
    const bad: RecordLocation[] = [
      { ...a, file: 'lab/2026-01-07.w1.h7a' },
      { ...b, offset: b.offset + 1 },
      { ...a, length: a.length - 1 },
      { ...b, length: b.length + 1 },
    ];
    for (const loc of bad) {
      const err = await readError(dir, loc);
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('ARCHIVE_READ_FAILED');
      expect((err as EngineError).message).toContain(`${loc.file}@${loc.offset}`);
    }
  });
});

describe('walkArchiveFile', () => {
  it('yields every record location in order', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    let locs: RecordLocation[];
    try {
      locs = [
        ...(await w.append([pending('lab', DAY1, 5), pending('lab', DAY1, 500)])),
        ...(await w.append([pending('lab', DAY1, 0)])),
      ];
    } finally {
      await w.close();
    }
    expect(await walk(dir, locs[0]!.file)).toEqual(locs);
  });

  it('reports a torn tail (file cut mid-record) and earlier records stay readable', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    const recs = [pending('lab', DAY1, 30), pending('lab', DAY1, 40), pending('lab', DAY1, 50)];
    let locs: RecordLocation[];
    try {
      locs = await w.append(recs);
    } finally {
      await w.close();
    }
    const [a, b, c] = locs as [RecordLocation, RecordLocation, RecordLocation];
    const path = join(dir, c.file);

    // Cut inside the last record's ciphertext.
    await truncate(path, c.offset + c.length - 7);
    expect(await walk(dir, c.file)).toEqual([a, b, { file: c.file, offset: c.offset, torn: true }]);
    expect((await readRecordBytes(dir, a)).equals(recs[0]!.bytes)).toBe(true);
    expect((await readRecordBytes(dir, b)).equals(recs[1]!.bytes)).toBe(true);
    expect(((await readError(dir, c)) as EngineError).code).toBe('ARCHIVE_READ_FAILED');

    // Cut inside the last record's header.
    await truncate(path, c.offset + 10);
    expect(await walk(dir, c.file)).toEqual([a, b, { file: c.file, offset: c.offset, torn: true }]);
    expect((await readRecordBytes(dir, b)).equals(recs[1]!.bytes)).toBe(true);

    // Cut exactly at a record boundary: nothing torn.
    await truncate(path, c.offset);
    expect(await walk(dir, c.file)).toEqual([a, b]);
  });

  it('stops at garbage that is not a record header', async () => {
    const dir = freshDir();
    const w = new ArchiveWriter(dir, 'w1');
    let a: RecordLocation;
    try {
      [a] = (await w.append([pending('lab', DAY1, 30)])) as [RecordLocation];
    } finally {
      await w.close();
    }
    const path = join(dir, a.file);
    const good = await readFile(path);
    await writeFile(path, Buffer.concat([good, Buffer.alloc(RECORD_HEADER_BYTES + 20, 0x41)]));
    expect(await walk(dir, a.file)).toEqual([a, { file: a.file, offset: a.length, torn: true }]);
  });
});
