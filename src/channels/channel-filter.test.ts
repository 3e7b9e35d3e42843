import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from '../hl7/index.js';
import { channelFilter } from './channel-filter.js';
import { loadChannelDir } from './channel-loader.js';

const dir = mkdtempSync(join(tmpdir(), 'hl7e-filter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const adt = (processingId: string, event: string, idType: string) =>
  parse(
    [
      `MSH|^~\\&|REG|HOSP|HL7E|HOSP|20240315103000||ADT^${event}^ADT_A01|C1|${processingId}|2.5.1`,
      `PID|1||555^^^HOSP^PI~777^^^HOSP^${idType}||Doe^Jane`,
    ].join('\r'),
  );

describe('channelFilter', () => {
  it('runs the shipped adt-inbound filter on parsed messages: test traffic (MSH-11 T) is filtered', () => {
    const { channels } = loadChannelDir(new URL('../../channels/', import.meta.url).pathname);
    const channel = channels.find((c) => c.name === 'adt-inbound')!;
    const passes = channelFilter(channel);
    expect(passes(adt('P', 'A01', 'MR'))).toBe(true);
    expect(passes(adt('T', 'A01', 'MR'))).toBe(false);
    expect(passes(adt('D', 'A01', 'MR'))).toBe(true);
  });

  it('combines conditions over repetitions and is compiled once per channel', () => {
    writeFileSync(
      join(dir, 'c.yaml'),
      `name: filtered
source: { mllp: { port: 0 } }
filter:
  all:
    - not: { path: MSH-11-1, equals: T }
    - any:
        - { path: MSH-9-2, in: [A01, A04] }
        - { path: PID-3-5, matches: '^MR$' }
`,
    );
    const { channels, problems } = loadChannelDir(dir);
    expect(problems).toEqual([]);
    const channel = channels[0]!;
    const passes = channelFilter(channel);
    expect(channelFilter(channel)).toBe(passes);
    expect(passes(adt('P', 'A08', 'SS'))).toBe(false);
    expect(passes(adt('P', 'A04', 'SS'))).toBe(true);
    // The second PID-3 repetition carries MR.
    expect(passes(adt('P', 'A08', 'MR'))).toBe(true);
    expect(passes(adt('T', 'A04', 'MR'))).toBe(false);
  });

  it('passes everything when the channel has no filter', () => {
    const { channels } = loadChannelDir(new URL('../../channels/', import.meta.url).pathname);
    const orders = channels.find((c) => c.name === 'orders')!;
    expect(channelFilter(orders)(adt('T', 'A01', 'MR'))).toBe(true);
  });
});
