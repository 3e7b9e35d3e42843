import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { loadCorpus } from '../../../test/support/corpus.js';
import { Deidentifier } from '../../deid/index.js';
import { parse } from '../../hl7/index.js';
import { CliError, EXIT } from '../cli-error.js';
import { messagesOf } from '../message-file.js';
import { exportBody, fileChunk, registerMessagesExport } from './messages-export.command.js';

function usageError(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError) return err;
    throw err;
  }
  throw new Error('expected a usage error');
}

describe('hl7e messages export: options', () => {
  it('refuses an export that is not de-identified, as a usage error', () => {
    const err = usageError(() => exportBody({ reason: 'x' }));
    expect(err.exitCode).toBe(EXIT.usage);
    expect(err.message).toContain('only de-identified export is supported');
  });

  it('refuses it through the command line too, before reaching for an engine', async () => {
    const program = new Command('hl7e').exitOverride();
    registerMessagesExport(program.command('messages'));
    const run = program.parseAsync(['messages', 'export', '--channel', 'lab', '--reason', 'x'], {
      from: 'user',
    });
    await expect(run).rejects.toMatchObject({ exitCode: EXIT.usage });
  });

  it('needs a reason and valid filters', () => {
    expect(usageError(() => exportBody({ deidentify: true })).message).toContain('--reason');
    expect(usageError(() => exportBody({ deidentify: true, reason: 'x', status: 'lost' })).message).toContain(
      '--status',
    );
    for (const limit of ['0', '10001', 'all']) {
      expect(usageError(() => exportBody({ deidentify: true, reason: 'x', limit })).message).toContain(
        '--limit',
      );
    }
    expect(
      usageError(() => exportBody({ deidentify: true, reason: 'x', keepZSegment: 'ZPD,PID' })).message,
    ).toContain('--keep-z-segment');
    expect(
      usageError(() => exportBody({ deidentify: true, reason: 'x', since: 'yesterday' })).message,
    ).toContain('--since');
  });

  it('sends the filters of messages list, times resolved, and deidentify: true', () => {
    const now = Date.parse('2026-03-14T12:00:00Z');
    expect(
      exportBody(
        {
          deidentify: true,
          reason: ' VEND-231 ',
          channel: 'lab',
          status: 'failed',
          type: 'ORU^R01',
          since: '2h',
          until: '2026-03-14T11:00:00Z',
          controlId: 'C1',
          limit: '50',
          keepZSegment: 'zpd, ZIN',
        },
        now,
      ),
    ).toEqual({
      deidentify: true,
      reason: 'VEND-231',
      channel: 'lab',
      status: 'failed',
      type: 'ORU^R01',
      since: '2026-03-14T10:00:00.000Z',
      until: '2026-03-14T11:00:00.000Z',
      controlId: 'C1',
      limit: 50,
      keepSegments: ['ZPD', 'ZIN'],
    });
  });
});

describe('hl7e messages export: the file', () => {
  // Messages with every kind of segment terminator the corpus has (\r, \n, \r\n).
  const deid = new Deidentifier({ key: Buffer.alloc(32, 9), charset: 'UNICODE UTF-8' });
  const exported = loadCorpus()
    .filter((c) => /ADT-A01-01|ORU-R01-01|messages\.txt#[1-5]$|adt_a03/.test(c.id))
    .map((c) => deid.deidentify(c.text));

  it('reads back as the same messages with what convert, parse and send read', () => {
    expect(exported.length).toBeGreaterThanOrEqual(6);
    const file = Buffer.from(exported.map((t) => fileChunk(t)).join(''), 'utf8');
    const read = messagesOf('export.hl7', file);
    expect(read.map((m) => m.charset.encoding)).toEqual(exported.map(() => 'utf8'));
    expect(read.map((m) => segmentsOf(m.text))).toEqual(exported.map(segmentsOf));
  });

  it('shows one segment per line on a terminal', () => {
    const shown = fileChunk('MSH|^~\\&|A\rPID|1\r', true);
    expect(shown).toBe('MSH|^~\\&|A\nPID|1\n\n');
    expect(fileChunk('MSH|^~\\&|A\rPID|1\r')).toBe('MSH|^~\\&|A\rPID|1\r\n');
  });
});

function segmentsOf(text: string): string[] {
  return parse(text)
    .segments()
    .map((s) => s.raw);
}
