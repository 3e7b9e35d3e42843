import { closeSync, fsyncSync, openSync } from 'node:fs';
import { rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { listArchiveFiles } from './archive-files.js';

/** One archive file as prune sees it: `<channel>/<YYYY-MM-DD>.<writer>.h7a`, and its size. */
export interface ArchiveFileInfo {
  readonly file: string;
  readonly channel: string;
  /** The UTC day its records were received (the writer names files by receivedAt). */
  readonly day: string;
  readonly bytes: number;
}

/** What the store says about the messages whose raw record is in one file. */
export interface FileUsage {
  readonly messages: number;
  /** Still in flight: not yet processed, or with a delivery pending or held — they need their raw record. */
  readonly unfinished: number;
}

export interface PruneCandidate extends ArchiveFileInfo, FileUsage {}

export interface PruneSelection {
  /** Old enough and every message in it finished: may go. */
  readonly prune: PruneCandidate[];
  /** Old enough but holding a message still in flight: stays. */
  readonly kept: PruneCandidate[];
}

const DAY_MS = 86_400_000;
const FILE_NAME = /^([^/]+)\/(\d{4}-\d{2}-\d{2})\.[^/]+\.h7a$/;

/**
 * A cutoff closer to now than this is refused: yesterday's file may still take a batch that a writer
 * began before midnight and has not committed yet (its rows are not in the store, so the "finished"
 * check cannot see them). A day after the file's day ended, no writer touches it again.
 */
export const MIN_PRUNE_AGE_MS = DAY_MS;

/** Channel and day of an archive file name; undefined for anything else in the directory. */
export function parseArchiveFileName(file: string): { channel: string; day: string } | undefined {
  const m = FILE_NAME.exec(file);
  if (!m || Number.isNaN(Date.parse(`${m[2]}T00:00:00Z`))) return undefined;
  return { channel: m[1] as string, day: m[2] as string };
}

/** The instant a file's day ends: every record in it was received before this. */
export function dayEnd(day: string): Date {
  return new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS);
}

/**
 * Which files a prune removes: whole files only, those whose whole day lies before the cutoff and
 * whose messages are all finished. A file the store knows nothing about (every record written before
 * an intake commit that failed) holds nothing anyone can read: it goes with its day.
 */
export function selectPrunable(
  files: readonly ArchiveFileInfo[],
  usage: ReadonlyMap<string, FileUsage>,
  cutoff: Date,
): PruneSelection {
  const prune: PruneCandidate[] = [];
  const kept: PruneCandidate[] = [];
  for (const f of files) {
    if (dayEnd(f.day).getTime() > cutoff.getTime()) continue;
    const u = usage.get(f.file) ?? { messages: 0, unfinished: 0 };
    (u.unfinished > 0 ? kept : prune).push({ ...f, messages: u.messages, unfinished: u.unfinished });
  }
  return { prune, kept };
}

/** The archive's files whose whole day ended before the cutoff (optionally one channel's), with sizes. */
export async function oldArchiveFiles(
  dir: string,
  cutoff: Date,
  channel?: string,
): Promise<ArchiveFileInfo[]> {
  const out: ArchiveFileInfo[] = [];
  for (const file of await listArchiveFiles(dir)) {
    const name = parseArchiveFileName(file);
    if (!name || (channel !== undefined && name.channel !== channel)) continue;
    if (dayEnd(name.day).getTime() > cutoff.getTime()) continue;
    const { size } = await stat(join(dir, file));
    out.push({ file, ...name, bytes: size });
  }
  return out;
}

/** Removes one archive file and makes the removal durable; a file already gone counts as removed. */
export async function removeArchiveFile(dir: string, file: string): Promise<void> {
  const path = join(dir, file);
  await rm(path, { force: true });
  const fd = openSync(dirname(path), 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
