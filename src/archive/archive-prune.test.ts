import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  type ArchiveFileInfo,
  dayEnd,
  oldArchiveFiles,
  parseArchiveFileName,
  removeArchiveFile,
  selectPrunable,
} from './archive-prune.js';

const file = (name: string, bytes = 100): ArchiveFileInfo => {
  const parsed = parseArchiveFileName(name);
  if (!parsed) throw new Error(`bad test file name ${name}`);
  return { file: name, ...parsed, bytes };
};

describe('archive file names', () => {
  it('reads channel and UTC day from <channel>/<YYYY-MM-DD>.<writer>.h7a', () => {
    expect(parseArchiveFileName('lab-results/2026-01-05.3fa9c2d1.h7a')).toEqual({
      channel: 'lab-results',
      day: '2026-01-05',
    });
  });

  it('ignores anything else in the archive directory', () => {
    for (const name of [
      'lab/2026-01-05.h7a',
      'lab/2026-01-05.w1.h7a.tmp',
      'lab/sub/2026-01-05.w1.h7a',
      '2026-01-05.w1.h7a',
      'lab/2026-13-45.w1.h7a',
      'lab/notes.txt',
    ]) {
      expect(parseArchiveFileName(name), name).toBeUndefined();
    }
  });

  it('a day ends at the next UTC midnight', () => {
    expect(dayEnd('2026-02-28').toISOString()).toBe('2026-03-01T00:00:00.000Z');
    expect(dayEnd('2028-02-28').toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });
});

describe('selectPrunable', () => {
  const cutoff = new Date('2026-01-10T00:00:00Z');

  it('takes a file only when its whole day lies before the cutoff', () => {
    const files = [
      file('lab/2026-01-08.w1.h7a'),
      file('lab/2026-01-09.w1.h7a'), // ends exactly at the cutoff: every record is older
      file('lab/2026-01-10.w1.h7a'), // its day runs past the cutoff
    ];
    const usage = new Map(files.map((f) => [f.file, { messages: 2, unfinished: 0 }]));
    const { prune, kept } = selectPrunable(files, usage, cutoff);
    expect(prune.map((f) => f.file)).toEqual(['lab/2026-01-08.w1.h7a', 'lab/2026-01-09.w1.h7a']);
    expect(kept).toEqual([]);
    expect(selectPrunable(files, usage, new Date('2026-01-09T23:59:59.999Z')).prune).toHaveLength(1);
  });

  it('keeps a file holding a message still in flight, however old', () => {
    const files = [file('lab/2025-06-01.w1.h7a', 4096), file('lab/2025-06-01.w2.h7a', 2048)];
    const usage = new Map([
      ['lab/2025-06-01.w1.h7a', { messages: 40, unfinished: 1 }],
      ['lab/2025-06-01.w2.h7a', { messages: 12, unfinished: 0 }],
    ]);
    const { prune, kept } = selectPrunable(files, usage, cutoff);
    expect(prune).toEqual([
      {
        file: 'lab/2025-06-01.w2.h7a',
        channel: 'lab',
        day: '2025-06-01',
        bytes: 2048,
        messages: 12,
        unfinished: 0,
      },
    ]);
    expect(kept).toEqual([
      {
        file: 'lab/2025-06-01.w1.h7a',
        channel: 'lab',
        day: '2025-06-01',
        bytes: 4096,
        messages: 40,
        unfinished: 1,
      },
    ]);
  });

  it('removes a file no stored message points at (records of intake commits that failed)', () => {
    const { prune } = selectPrunable([file('adt/2025-12-01.w1.h7a', 77)], new Map(), cutoff);
    expect(prune).toEqual([
      {
        file: 'adt/2025-12-01.w1.h7a',
        channel: 'adt',
        day: '2025-12-01',
        bytes: 77,
        messages: 0,
        unfinished: 0,
      },
    ]);
  });
});

describe('archive files on disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hl7e-prune-files-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const put = (name: string, bytes: number) => {
    mkdirSync(join(dir, name, '..'), { recursive: true });
    writeFileSync(join(dir, name), Buffer.alloc(bytes, 1));
  };

  it('lists old files with their sizes, by channel, and removes them durably', async () => {
    put('lab/2026-01-01.w1.h7a', 300);
    put('lab/2026-01-01.w2.h7a', 200);
    put('lab/2026-01-20.w1.h7a', 100);
    put('adt/2026-01-02.w1.h7a', 50);
    put('adt/readme.txt', 10);
    const cutoff = new Date('2026-01-10T00:00:00Z');

    const all = await oldArchiveFiles(dir, cutoff);
    expect(all.map((f) => [f.file, f.bytes])).toEqual([
      ['adt/2026-01-02.w1.h7a', 50],
      ['lab/2026-01-01.w1.h7a', 300],
      ['lab/2026-01-01.w2.h7a', 200],
    ]);
    expect((await oldArchiveFiles(dir, cutoff, 'lab')).map((f) => f.file)).toEqual([
      'lab/2026-01-01.w1.h7a',
      'lab/2026-01-01.w2.h7a',
    ]);

    await removeArchiveFile(dir, 'lab/2026-01-01.w1.h7a');
    expect(existsSync(join(dir, 'lab/2026-01-01.w1.h7a'))).toBe(false);
    // Removed by an earlier run that crashed before reporting: still done, not an error.
    await removeArchiveFile(dir, 'lab/2026-01-01.w1.h7a');
    expect((await oldArchiveFiles(dir, cutoff, 'lab')).map((f) => f.file)).toEqual(['lab/2026-01-01.w2.h7a']);
  });

  it('finds nothing in an archive directory that does not exist yet', async () => {
    expect(await oldArchiveFiles(join(dir, 'missing'), new Date())).toEqual([]);
  });
});
