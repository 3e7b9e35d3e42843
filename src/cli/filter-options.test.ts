import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { CliError, EXIT } from './cli-error.js';
import { listQuery, registerMessages } from './commands/messages.command.js';
import { limitOption, messageFilter } from './filter-options.js';

const NOW = Date.parse('2026-03-14T12:00:00Z');

function usageError(fn: () => unknown): CliError {
  try {
    fn();
  } catch (err) {
    if (err instanceof CliError && err.exitCode === EXIT.usage) return err;
    throw err;
  }
  throw new Error('expected a usage error');
}

describe('message filter options', () => {
  it('are the same on messages list and messages export', () => {
    const FILTERS = [
      '--channel',
      '--status',
      '--type',
      '--since',
      '--until',
      '--sender',
      '--control-id',
      '--destination',
    ];
    const program = new Command('hl7e');
    registerMessages(program);
    const filtersOf = (name: string) =>
      (
        program.commands.find((c) => c.name() === 'messages')?.commands.find((c) => c.name() === name)
          ?.options ?? []
      )
        .filter((o) => FILTERS.includes(o.long ?? ''))
        .map((o) => [o.long, o.description]);
    expect(filtersOf('list').map(([long]) => long)).toEqual(FILTERS);
    expect(filtersOf('export')).toEqual(filtersOf('list'));
  });

  it('become the admin API’s filter: trimmed, blanks left out, ages resolved once', () => {
    expect(
      messageFilter(
        { channel: ' lab ', status: 'failed', type: '', since: '2h', sender: 'LIS', controlId: 'C1' },
        NOW,
      ),
    ).toEqual({
      channel: 'lab',
      status: 'failed',
      since: '2026-03-14T10:00:00.000Z',
      sender: 'LIS',
      controlId: 'C1',
    });
  });

  it('refuse an unknown status or a time that is neither ISO nor an age, naming the option', () => {
    expect(usageError(() => messageFilter({ status: 'lost' })).message).toContain('--status: one of');
    expect(usageError(() => messageFilter({ until: 'yesterday' })).message).toContain('--until');
  });

  it('--limit: a whole number within the command’s page', () => {
    expect(limitOption('50', 1000)).toBe(50);
    for (const bad of ['0', '1001', '2.5', 'all']) {
      expect(usageError(() => limitOption(bad, 1000)).message).toBe('--limit: a whole number from 1 to 1000');
    }
  });

  it('messages list adds its page size and cursor after the filters', () => {
    expect(listQuery({ destination: 'ehr', status: 'failed', cursor: '42' }, NOW)).toEqual({
      status: 'failed',
      destination: 'ehr',
      limit: '50',
      cursor: '42',
    });
    expect(usageError(() => listQuery({ cursor: 'x' })).message).toContain('--cursor');
  });
});
