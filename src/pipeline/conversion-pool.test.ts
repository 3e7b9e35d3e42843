import { createHash } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { testChannel } from '../../test/support/channel-config.js';
import { isEngineError } from '../errors.js';
import { BUILTIN_MAPPINGS_DIR, MappingCatalog } from '../mapping/mapping-catalog.js';
import { ConversionPool } from './conversion-pool.js';
import type { ConvertItem } from './conversion-step.js';
import { InlineConverter } from './message-converter.js';

// The worker script as the daemon runs it: the build `npm test` makes first (pretest).
const WORKER = new URL('../../dist/pipeline/conversion-worker.js', import.meta.url);

const channel = testChannel('pool', [
  { name: 'ehr', fhir: { baseUrl: 'http://127.0.0.1:9/fhir', mode: 'transaction', timeoutMs: 1000 } },
]);

function item(text: string): ConvertItem {
  const raw = Buffer.from(text);
  return { channel: 'pool', raw, sha256: createHash('sha256').update(raw).digest() };
}

const ADT = item(
  'MSH|^~\\&|REG|HOSP|HL7E|HOSP|20260105100000||ADT^A01^ADT_A01|C1|P|2.5.1\rPID|1||M1^^^HOSP^MR||Doe^Jo||19800101|F\rZPD|1|x',
);
const SIU = item('MSH|^~\\&|S|F|R|F|20260105||SIU^S12|X1|P|2.5.1\rPID|1||M1');
const BROKEN = item('not a message');

let pool: ConversionPool | undefined;
afterEach(async () => {
  await pool?.close();
  pool = undefined;
});

describe('ConversionPool', () => {
  it('gives the same results as converting inline', async () => {
    pool = new ConversionPool({
      size: 1,
      mappingsDir: BUILTIN_MAPPINGS_DIR,
      channels: [channel],
      workerUrl: WORKER,
    });
    await pool.start();
    const inline = new InlineConverter(new Map([['pool', channel]]), MappingCatalog.load());
    const items = [ADT, SIU, BROKEN];
    const [fromPool, fromInline] = await Promise.all([pool.convert(items), inline.convert(items)]);
    expect(fromPool).toEqual(fromInline);
    expect(fromPool[0]).toMatchObject({
      ok: true,
      outcome: { route: 'all', detail: { mapping: 'ADT_A01' } },
    });
    expect(fromPool[1]).toMatchObject({
      ok: true,
      outcome: { route: 'mllp', detail: { notMapped: 'MAPPING_NONE' } },
    });
    expect(fromPool[2]).toMatchObject({ ok: false, code: 'HL7_NO_MSH', retryable: false });
  });

  it('spreads batches over its workers', async () => {
    pool = new ConversionPool({
      size: 2,
      mappingsDir: BUILTIN_MAPPINGS_DIR,
      channels: [channel],
      workerUrl: WORKER,
    });
    await pool.start();
    const all = await Promise.all(Array.from({ length: 6 }, () => pool?.convert([ADT]) ?? []));
    for (const r of all) expect(r[0]).toMatchObject({ ok: true });
  });

  it('fails the batches of a worker that dies with a retryable error, and replaces the worker', async () => {
    const errors: unknown[] = [];
    pool = new ConversionPool({
      size: 1,
      mappingsDir: BUILTIN_MAPPINGS_DIR,
      channels: [channel],
      workerUrl: WORKER,
      onWorkerError: (err) => errors.push(err),
    });
    await pool.start();
    // Enough work that the batch is still in the worker when it ends.
    const pending = pool.convert(Array.from({ length: 400 }, () => ADT));
    await pool.terminateWorker(0);
    await expect(pending).rejects.toSatisfy((err: unknown) => isEngineError(err, 'PIPELINE_CONVERT_FAILED'));
    // Replaced: the next batch converts once the new worker has loaded its mappings.
    let again: Awaited<ReturnType<ConversionPool['convert']>> | undefined;
    for (let i = 0; i < 50 && again === undefined; i++) {
      await new Promise((r) => setTimeout(r, 100));
      again = await pool.convert([ADT]).catch(() => undefined);
    }
    expect(again?.[0]).toMatchObject({ ok: true });
  });
});
