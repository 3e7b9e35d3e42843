import { describe, expect, it } from 'vitest';
import { AdminError } from './admin-server.js';
import { DEFAULT_PAGE, filterOf } from './message-routes.js';

const parse = (query: string) => filterOf(new URLSearchParams(query));

function refusal(query: string): { code: string; message: string } {
  try {
    parse(query);
  } catch (err) {
    expect(err).toBeInstanceOf(AdminError);
    return { code: (err as AdminError).code, message: (err as AdminError).message };
  }
  throw new Error(`accepted: ${query}`);
}

describe('filterOf (GET /messages query)', () => {
  it('takes every filter, times as dates, the cursor as a seq', () => {
    expect(
      parse(
        'channel=lab&status=failed&type=ORU%5ER01&since=2026-03-01T10:00:00Z&until=2026-03-02T00:00:00.000Z' +
          '&sender=LIS%7CLAB&controlId=C1&destination=ehr&limit=20&cursor=1234',
      ),
    ).toEqual({
      channel: 'lab',
      status: 'failed',
      type: 'ORU^R01',
      since: new Date('2026-03-01T10:00:00Z'),
      until: new Date('2026-03-02T00:00:00Z'),
      sender: 'LIS|LAB',
      controlId: 'C1',
      destination: 'ehr',
      limit: 20,
      beforeSeq: 1234,
    });
  });

  it('leaves out what is absent or blank, and pages by the default size', () => {
    expect(parse('channel=&type=%20')).toEqual({ limit: DEFAULT_PAGE });
  });

  it('refuses malformed values as 400 without repeating them', () => {
    for (const q of [
      'status=lost',
      'limit=0',
      'limit=1001',
      'limit=ten',
      'since=yesterday-ish',
      'cursor=abc',
      'cursor=-1',
    ]) {
      const r = refusal(q);
      expect(r.code, q).toBe('BAD_REQUEST');
      const given = q.split('=')[1] as string;
      if (given.length > 3) expect(r.message, q).not.toContain(given);
    }
  });
});
