import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Vocabularies, VocabularyEntry } from './vocabulary.js';

/** One row of a vocabulary file: the v2 code and what it maps to. */
export interface VocabularyRow extends VocabularyEntry {
  readonly v2: string;
  readonly comment?: string;
}

/** Something wrong in a vocabulary file; `line` is 1-based, 0 when the whole file or directory is meant. */
export interface VocabularyProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

const HEADER = ['v2', 'code', 'system', 'display'] as const;
const TABLE_NAME = /^[A-Za-z0-9_-]+$/;
// RFC 3986 scheme followed by something: http://…, urn:oid:…, urn:iso:std:…
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/;

interface CsvRecord {
  readonly line: number;
  readonly cells: string[];
}

/**
 * RFC 4180 CSV: quoted fields may hold commas, doubled quotes and line breaks; records end at CRLF or LF;
 * a leading UTF-8 BOM is dropped. Fully blank lines are skipped.
 */
export function parseCsv(text: string): {
  records: CsvRecord[];
  problems: { line: number; message: string }[];
} {
  const records: CsvRecord[] = [];
  const problems: { line: number; message: string }[] = [];
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  let line = 1;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const start = line;
    const cells: string[] = [];
    let cell = '';
    let broken = false;
    for (;;) {
      if (text[i] === '"') {
        const quoteLine = line;
        i++;
        let closed = false;
        while (i < n) {
          const ch = text[i]!;
          if (ch === '"') {
            if (text[i + 1] === '"') {
              cell += '"';
              i += 2;
              continue;
            }
            i++;
            closed = true;
            break;
          }
          if (ch === '\n') line++;
          cell += ch;
          i++;
        }
        if (!closed) {
          problems.push({ line: quoteLine, message: 'quoted field is not closed' });
          return { records, problems };
        }
        if (i < n && text[i] !== ',' && text[i] !== '\n' && text[i] !== '\r') {
          problems.push({ line, message: 'text after a closing quote' });
          broken = true;
        }
      }
      // Unquoted part (or garbage after a closing quote, reported above).
      while (i < n && text[i] !== ',' && text[i] !== '\n' && !(text[i] === '\r' && text[i + 1] === '\n')) {
        cell += text[i];
        i++;
      }
      cells.push(cell);
      cell = '';
      if (i < n && text[i] === ',') {
        i++;
        continue;
      }
      break;
    }
    if (text[i] === '\r') i++;
    if (text[i] === '\n') i++;
    line++;
    if (broken) continue;
    if (cells.length === 1 && cells[0]!.trim() === '') continue;
    records.push({ line: start, cells });
  }
  return { records, problems };
}

/** Parses one vocabulary file's text; `rows` is undefined when the header is wrong (the file is not a table). */
export function parseVocabularyCsv(
  file: string,
  text: string,
): { rows: VocabularyRow[] | undefined; problems: VocabularyProblem[] } {
  const parsed = parseCsv(text);
  const problems: VocabularyProblem[] = parsed.problems.map((p) => ({ file, ...p }));
  const [header, ...body] = parsed.records;
  const columns = header?.cells ?? [];
  const headerOk =
    (columns.length === 4 || (columns.length === 5 && columns[4] === 'comment')) &&
    HEADER.every((name, k) => columns[k] === name);
  if (!headerOk) {
    problems.push({
      file,
      line: header?.line ?? 1,
      message: 'header must be exactly v2,code,system,display (optionally followed by comment)',
    });
    return { rows: undefined, problems };
  }
  const rows: VocabularyRow[] = [];
  const firstLine = new Map<string, number>();
  for (const { line, cells } of body) {
    if (cells.length > columns.length) {
      problems.push({ file, line, message: `row has ${cells.length} columns, the header ${columns.length}` });
      continue;
    }
    const [v2 = '', code = '', system = '', display = '', comment = ''] = cells.map((c) => c.trim());
    if (v2 === '') {
      problems.push({ file, line, message: 'v2 code is empty' });
      continue;
    }
    // An empty FHIR code says "known, and nothing in FHIR stands for it" (the comment says why): such a
    // value is left out without being reported as an unknown code.
    if (code === '' && comment === '') {
      problems.push({ file, line, message: 'code is empty: give a comment saying why it maps to nothing' });
      continue;
    }
    const seen = firstLine.get(v2);
    if (seen !== undefined) {
      problems.push({ file, line, message: `v2 code ${v2} repeats the row on line ${seen}` });
      continue;
    }
    if (system !== '' && !URI.test(system)) {
      problems.push({ file, line, message: 'system is not a URI' });
      continue;
    }
    firstLine.set(v2, line);
    rows.push({
      v2,
      code,
      ...(system !== '' && { system }),
      ...(display !== '' && { display }),
      ...(comment !== '' && { comment }),
    });
  }
  return { rows, problems };
}

interface CompiledTable {
  readonly exact: ReadonlyMap<string, VocabularyEntry>;
  readonly folded: ReadonlyMap<string, VocabularyEntry>;
  readonly hash: string;
}

function compile(rows: readonly VocabularyRow[], hash: string): CompiledTable {
  const exact = new Map<string, VocabularyEntry>();
  const folded = new Map<string, VocabularyEntry>();
  for (const row of rows) {
    if (exact.has(row.v2)) continue;
    const entry: VocabularyEntry = Object.freeze({
      code: row.code,
      ...(row.system !== undefined && { system: row.system }),
      ...(row.display !== undefined && { display: row.display }),
    });
    exact.set(row.v2, entry);
    // The first row wins a case-insensitive clash; exact matches still find the others.
    const key = row.v2.toLowerCase();
    if (!folded.has(key)) folded.set(key, entry);
  }
  return { exact, folded, hash };
}

class TableVocabularies implements Vocabularies {
  constructor(private readonly tables: ReadonlyMap<string, CompiledTable>) {}

  has(table: string): boolean {
    return this.tables.has(table);
  }

  lookup(table: string, v2Code: string): VocabularyEntry | undefined {
    const t = this.tables.get(table);
    if (t === undefined) return undefined;
    return t.exact.get(v2Code) ?? t.folded.get(v2Code.toLowerCase());
  }

  hashOf(table: string): string | undefined {
    return this.tables.get(table)?.hash;
  }
}

function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

function csvCell(value: string | undefined): string {
  const v = value ?? '';
  return /[",\r\n]/.test(v) ? `"${v.replaceAll('"', '""')}"` : v;
}

/**
 * In-memory tables (tests, engine-built tables). Each table's hash is the SHA-256 of its rows written as a
 * vocabulary CSV (LF line ends), so the same rows give the same mapping version as the same file would.
 */
export function vocabulariesFromTables(
  tables: Readonly<Record<string, readonly VocabularyRow[]>>,
): Vocabularies {
  const compiled = new Map<string, CompiledTable>();
  for (const [name, rows] of Object.entries(tables)) {
    const text = [
      'v2,code,system,display,comment',
      ...rows.map((r) => [r.v2, r.code, r.system, r.display, r.comment].map(csvCell).join(',')),
    ].join('\n');
    compiled.set(name, compile(rows, sha256(`${text}\n`)));
  }
  return new TableVocabularies(compiled);
}

/**
 * Loads every `*.csv` in each directory; the table name is the file name without `.csv`, and a table in an
 * earlier directory hides the same table in later ones. Rows with problems are left out and reported; a file
 * with a bad header is not loaded at all. Config I/O: the only place in src/mapping that reads files.
 */
export function loadVocabularies(dirs: readonly string[]): {
  vocabularies: Vocabularies;
  problems: VocabularyProblem[];
} {
  const compiled = new Map<string, CompiledTable>();
  const problems: VocabularyProblem[] = [];
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir, { withFileTypes: true })
        .filter((e) => e.isFile() && e.name.toLowerCase().endsWith('.csv'))
        .map((e) => e.name)
        .sort();
    } catch (err) {
      problems.push({
        file: dir,
        line: 0,
        message: `directory not readable (${(err as NodeJS.ErrnoException).code})`,
      });
      continue;
    }
    for (const name of names) {
      const table = name.slice(0, -'.csv'.length);
      if (compiled.has(table)) continue;
      const file = join(dir, name);
      if (!TABLE_NAME.test(table)) {
        problems.push({ file, line: 0, message: 'table name must be letters, digits, _ or -' });
        continue;
      }
      let bytes: Buffer;
      try {
        bytes = readFileSync(file);
      } catch (err) {
        problems.push({
          file,
          line: 0,
          message: `file not readable (${(err as NodeJS.ErrnoException).code})`,
        });
        continue;
      }
      let decoded: string;
      try {
        // ignoreBOM keeps a BOM in the text; parseCsv drops it.
        decoded = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
      } catch {
        problems.push({ file, line: 0, message: 'file is not UTF-8' });
        continue;
      }
      const parsed = parseVocabularyCsv(file, decoded);
      problems.push(...parsed.problems);
      if (parsed.rows === undefined) continue;
      compiled.set(table, compile(parsed.rows, sha256(bytes)));
    }
  }
  return { vocabularies: new TableVocabularies(compiled), problems };
}
