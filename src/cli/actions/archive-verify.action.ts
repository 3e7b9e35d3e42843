import { listArchiveFiles, walkArchiveFile } from '../../archive/archive-files.js';
import type { EngineEnv } from '../../config/env.js';
import { isEngineError } from '../../errors.js';
import { EXIT } from '../cli-error.js';
import { withOfflineEngine } from '../offline-engine.js';

interface Row {
  id: string;
  seq: number;
  channel: string;
  content_sha256: Buffer;
  archive_file: string;
  archive_offset: number;
  archive_length: number;
  archive_pruned_at: Date | null;
}

export interface VerifyReport {
  records: number;
  ok: number;
  failed: { messageId: string; code: string; record: string }[];
  /** Messages whose raw record retention removed (archive prune): nothing to read, not a failure. */
  pruned: number;
  files: number;
  /** Records on disk no store row points at: written before a commit that then failed. Harmless. */
  unreferenced: number;
  /** Files whose last record is incomplete (a crash mid-append before the commit). Harmless. */
  tornTails: number;
}

const PAGE = 500;

/**
 * `hl7e archive verify`: every stored message's archive record is read through its index entry,
 * authenticated (AES-GCM under its data key, bound to channel and message id) and compared with the
 * SHA-256 the store recorded at intake. Prints ids, codes and record positions — never content.
 */
export async function archiveVerifyAction(
  env: EngineEnv,
  opts: { channel?: string; json?: boolean; maxListed?: number },
  out: (line: string) => void,
): Promise<number> {
  const report = await withOfflineEngine(env, async ({ db, archive }) => {
    const r: VerifyReport = {
      records: 0,
      ok: 0,
      failed: [],
      pruned: 0,
      files: 0,
      unreferenced: 0,
      tornTails: 0,
    };
    for (let after = 0; ; ) {
      const { rows } = await db.query<Row>(
        `SELECT id, seq, channel, content_sha256, archive_file, archive_offset, archive_length, archive_pruned_at
           FROM messages
          WHERE seq > $1 AND ($3::text IS NULL OR channel = $3) ORDER BY seq LIMIT $2`,
        [after, PAGE, opts.channel ?? null],
      );
      for (const m of rows) {
        if (m.archive_pruned_at) {
          r.pruned++;
          continue;
        }
        r.records++;
        const location = { file: m.archive_file, offset: m.archive_offset, length: m.archive_length };
        try {
          await archive.read({ channel: m.channel, messageId: m.id, sha256: m.content_sha256, location });
          r.ok++;
        } catch (err) {
          r.failed.push({
            messageId: m.id,
            code: isEngineError(err) ? err.code : 'UNKNOWN',
            record: `${m.archive_file}@${m.archive_offset}`,
          });
        }
      }
      if (rows.length < PAGE) break;
      after = (rows.at(-1) as Row).seq;
    }
    for (const file of await listArchiveFiles(archive.dir)) {
      if (opts.channel && !file.startsWith(`${opts.channel}/`)) continue;
      r.files++;
      const { rows } = await db.query<{ archive_offset: number }>(
        'SELECT archive_offset FROM messages WHERE archive_file = $1',
        [file],
      );
      const referenced = new Set(rows.map((x) => x.archive_offset));
      for await (const rec of walkArchiveFile(archive.dir, file)) {
        if ('torn' in rec) r.tornTails++;
        else if (!referenced.has(rec.offset)) r.unreferenced++;
      }
    }
    return r;
  });

  if (opts.json) {
    out(JSON.stringify(report, null, 2));
  } else {
    const n = (x: number) => x.toLocaleString('en-US');
    out(`archive verify: ${plural(report.records, 'record')} in ${plural(report.files, 'file')}`);
    out(`  ok                     ${n(report.ok)}`);
    out(`  failed                 ${n(report.failed.length)}`);
    for (const f of report.failed.slice(0, opts.maxListed ?? 20))
      out(`    ${f.messageId}  ${f.code}  ${f.record}`);
    if (report.failed.length > (opts.maxListed ?? 20))
      out(`    … ${report.failed.length - (opts.maxListed ?? 20)} more (--json lists all)`);
    if (report.pruned > 0)
      out(`  pruned (retention)     ${n(report.pruned)}  (raw record removed by archive prune)`);
    out(
      `  unreferenced records   ${n(report.unreferenced)}  (written before a commit that failed; harmless)`,
    );
    out(`  torn file tails        ${n(report.tornTails)}  (a crash mid-append; harmless)`);
  }
  return report.failed.length === 0 ? EXIT.ok : EXIT.problem;
}

function plural(count: number, noun: string): string {
  return `${count.toLocaleString('en-US')} ${noun}${count === 1 ? '' : 's'}`;
}
