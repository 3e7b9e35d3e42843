import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBackends, type TestStore } from '../../test/support/store-backends.js';
import type { Db } from './db.js';
import { type AttemptRecord, DeliveryRepo } from './delivery-repo.js';
import { newMessageId } from './message-id.js';
import { MessageRepo, type NewMessage } from './message-repo.js';
import { ReplayRepo } from './replay-repo.js';

const KEY_ID = 'dk_replay_repo_test';
let counter = 0;

function message(channel: string, type = 'ORU^R01'): NewMessage {
  counter += 1;
  const receivedAt = new Date(Date.parse('2026-03-01T08:00:00Z') + counter * 1000);
  return {
    id: newMessageId(receivedAt.getTime()),
    channel,
    sender: 'LIS|LAB',
    controlId: `RP-${counter}`,
    messageType: type,
    version: '2.5.1',
    receivedAt,
    connectionId: 'conn-test',
    status: 'received',
    ackCode: 'AA',
    errorCode: null,
    partition: 3,
    collisionOf: null,
    sha256: createHash('sha256').update(`replay repo ${counter}`).digest(),
    byteLength: 100,
    dataKeyId: KEY_ID,
    archiveFile: `${channel}/2026-03-01.w1.h7a`,
    archiveOffset: counter * 100,
    archiveLength: 90,
  };
}

describe.each(storeBackends)('ReplayRepo on $name', (backend) => {
  let store: TestStore;
  let db: Db;
  let messages: MessageRepo;
  let deliveries: DeliveryRepo;
  let replays: ReplayRepo;

  beforeAll(async () => {
    store = await backend.open('replay_repo', { dataKeyId: KEY_ID });
    db = store.db;
    messages = new MessageRepo(db);
    deliveries = new DeliveryRepo(db);
    replays = new ReplayRepo(db);
  });

  afterAll(() => store?.close());

  /** A message processed with one delivery per destination, each ended as given (or left pending). */
  async function withDeliveries(channel: string, ends: Record<string, AttemptRecord['outcome'] | 'pending'>) {
    const m = message(channel);
    await messages.insertMany([m]);
    const stored = (await messages.get(m.id))!;
    const refs = await db.transaction(async (tx) => {
      await messages.markProcessedMany(tx, [{ id: m.id, status: 'processed', errorCode: null, detail: {} }]);
      return deliveries.createPendingMany(tx, [
        { messageId: m.id, channel, seq: stored.seq, destinations: Object.keys(ends) },
      ]);
    });
    for (const r of refs) {
      const outcome = ends[r.destination];
      if (outcome === 'pending' || outcome === undefined) continue;
      await deliveries.recordAttempt({
        deliveryId: r.id,
        messageId: m.id,
        attempt: 3,
        startedAt: new Date(),
        outcome,
        errorClass: outcome === 'delivered' ? null : 'http_503',
        statusCode: null,
        ackCode: null,
        retryAfterMs: null,
        nextAttemptAt: null,
        bodies: [],
      });
    }
    return { id: m.id, refs };
  }

  it('selects dead letters by channel and destination, in arrival order', async () => {
    const a = await withDeliveries('rp-sel', { ehr: 'failed', lis: 'delivered' });
    const b = await withDeliveries('rp-sel', { ehr: 'delivered', lis: 'failed' });
    await withDeliveries('rp-sel', { ehr: 'delivered', lis: 'pending' });
    await withDeliveries('rp-other', { ehr: 'failed' });
    const all = await replays.candidates({ channel: 'rp-sel', status: 'failed' });
    expect(all.map((c) => c.id)).toEqual([a.id, b.id]);
    const toEhr = await replays.candidates({ channel: 'rp-sel', status: 'failed', destination: 'ehr' });
    expect(toEhr.map((c) => c.id)).toEqual([a.id]);
    expect(all[0]!.deliveries.map((d) => [d.destination, d.status])).toEqual([
      ['ehr', 'failed'],
      ['lis', 'delivered'],
    ]);
  });

  it('reopens a dead letter once, counting its attempts afresh, and the message with it', async () => {
    const m = await withDeliveries('rp-open', { ehr: 'failed' });
    const id = m.refs[0]!.id;
    const [first, second] = await Promise.all([
      replays.reopenDeliveries([id], 'mapped'),
      replays.reopenDeliveries([id], 'mapped'),
    ]);
    expect(first!.length + second!.length).toBe(1);
    const work = (await deliveries.load(id))!;
    expect(work).toMatchObject({ status: 'pending', attempts: 3, attemptBase: 3, replayFrom: 'mapped' });
    expect((await messages.get(m.id))!.status).toBe('processed');
    // Pending now: a second replay finds nothing to reopen.
    expect(await replays.reopenDeliveries([id], 'raw')).toEqual([]);
  });

  it('sends a message that failed in processing back to received, and only such a one', async () => {
    const m = message('rp-proc');
    await messages.insertMany([m]);
    await db.transaction((tx) =>
      messages.markProcessedMany(tx, [{ id: m.id, status: 'failed', errorCode: 'FHIR_INVALID', detail: {} }]),
    );
    const delivered = await withDeliveries('rp-proc', { ehr: 'delivered' });
    expect((await replays.candidates({ channel: 'rp-proc', status: 'failed' })).map((c) => c.id)).toEqual([
      m.id,
    ]);
    expect(await replays.reopenMessages([m.id, delivered.id])).toEqual([{ id: m.id, partition: 3 }]);
    expect((await messages.get(m.id))!.status).toBe('received');
    expect(await replays.reopenMessages([m.id])).toEqual([]);
  });
});
