import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBackends, type TestStore } from '../../test/support/store-backends.js';
import type { Db } from './db.js';
import { type AttemptRecord, type DeliveryRef, DeliveryRepo } from './delivery-repo.js';
import { newMessageId } from './message-id.js';
import { MessageRepo, type NewMessage } from './message-repo.js';

const KEY_ID = 'dk_delivery_repo_test';
let counter = 0;

function message(): NewMessage {
  counter += 1;
  const receivedAt = new Date(Date.parse('2026-02-01T08:00:00Z') + counter);
  return {
    id: newMessageId(receivedAt.getTime()),
    channel: 'lab',
    sender: 'LIS|LAB',
    controlId: `D-${counter}`,
    messageType: 'ORU^R01',
    version: '2.5.1',
    receivedAt,
    connectionId: 'conn-test',
    status: 'received',
    ackCode: 'AA',
    errorCode: null,
    partition: 0,
    collisionOf: null,
    sha256: createHash('sha256').update(`delivery repo ${counter}`).digest(),
    byteLength: 100,
    dataKeyId: KEY_ID,
    archiveFile: 'lab/2026-02-01.w1.h7a',
    archiveOffset: counter * 100,
    archiveLength: 90,
  };
}

const attempt = (
  ref: { id: string; messageId: string },
  outcome: AttemptRecord['outcome'],
  n = 1,
  errorClass: string | null = null,
): AttemptRecord => ({
  deliveryId: ref.id,
  messageId: ref.messageId,
  attempt: n,
  startedAt: new Date(),
  outcome,
  errorClass,
  statusCode: outcome === 'delivered' ? 200 : 503,
  ackCode: null,
  retryAfterMs: null,
  nextAttemptAt: null,
  bodies: [
    {
      kind: 'response',
      keyId: KEY_ID,
      iv: randomBytes(12),
      tag: randomBytes(16),
      ciphertext: randomBytes(20),
    },
  ],
});

describe.each(storeBackends)('DeliveryRepo on $name', (backend) => {
  let store: TestStore;
  let db: Db;
  let messages: MessageRepo;
  let repo: DeliveryRepo;

  beforeAll(async () => {
    store = await backend.open('delivery_repo', { dataKeyId: KEY_ID });
    db = store.db;
    messages = new MessageRepo(db);
    repo = new DeliveryRepo(db);
  });

  afterAll(() => store?.close());

  /** Stores and processes `n` messages and gives each one delivery per destination, all with `orderKey`. */
  async function processed(
    n: number,
    destinations: string[],
    orderKey?: string,
  ): Promise<{ messageId: string; refs: DeliveryRef[] }[]> {
    const rows = Array.from({ length: n }, message);
    await messages.insertMany(rows);
    const stored = await Promise.all(rows.map(async (m) => (await messages.get(m.id))!));
    return db.transaction(async (tx) => {
      await messages.markProcessedMany(
        tx,
        rows.map((m) => ({ id: m.id, status: 'processed' as const, errorCode: null, detail: {} })),
      );
      const out = [];
      for (const m of stored) {
        const refs = await repo.createPendingMany(tx, [
          {
            messageId: m.id,
            channel: m.channel,
            seq: m.seq,
            destinations,
            ...(orderKey ? { orderKey } : {}),
          },
        ]);
        out.push({ messageId: m.id, refs });
      }
      return out;
    });
  }

  it('holds a key back behind its earliest unfinished delivery, per destination, and names the next', async () => {
    const key = '-4242424242424242';
    const [a, b, c] = await processed(3, ['ehr', 'lis'], key);
    const ehr = (x: typeof a) => ({ id: x!.refs[0]!.id, messageId: x!.messageId });
    expect((await repo.load(ehr(a).id))!.blocked).toBe(false);
    expect((await repo.load(ehr(b).id))!).toMatchObject({ blocked: true, orderKey: key, destination: 'ehr' });
    expect((await repo.load(ehr(c).id))!.blocked).toBe(true);

    // A retry keeps the key held back; the end of the first one frees the second, not the third.
    expect(await repo.recordAttempt(attempt(ehr(a), 'retry', 1, 'http_503'))).toBe(true);
    expect((await repo.load(ehr(b).id))!.blocked).toBe(true);
    const work = (await repo.load(ehr(a).id))!;
    const next = await repo.withOrderLock(
      { channel: 'lab', destination: 'ehr', orderKey: key },
      async (tx) => {
        expect(await repo.recordAttempt(attempt(ehr(a), 'delivered', 2), tx)).toBe(true);
        return repo.nextInOrder({ channel: 'lab', destination: 'ehr', orderKey: key, seq: work.seq }, tx);
      },
    );
    expect(next).toBe(ehr(b).id);
    expect((await repo.load(ehr(b).id))!.blocked).toBe(false);
    expect((await repo.load(ehr(c).id))!.blocked).toBe(true);
    // The other destination's deliveries of the same key are their own line.
    expect((await repo.load(b!.refs[1]!.id))!.blocked).toBe(true);
    expect((await repo.load(a!.refs[1]!.id))!.blocked).toBe(false);

    // A dead letter does not hold the key back; a held delivery does.
    await repo.recordAttempt(attempt(ehr(b), 'failed', 1, 'http_503'));
    expect((await repo.load(ehr(c).id))!.blocked).toBe(false);
    await repo.recordAttempt(
      attempt({ id: a!.refs[1]!.id, messageId: a!.messageId }, 'held', 1, 'ack_timeout'),
    );
    expect((await repo.load(b!.refs[1]!.id))!.blocked).toBe(true);
  });

  it('records each attempt once, and ends the delivery only once', async () => {
    const [m] = await processed(1, ['ehr']);
    const ref = { id: m!.refs[0]!.id, messageId: m!.messageId };
    await repo.recordAttempt(attempt(ref, 'retry', 1, 'timeout'));
    await repo.recordAttempt(attempt(ref, 'delivered', 2));
    // A second finisher (another process that ran the same job) changes nothing.
    expect(await repo.recordAttempt(attempt(ref, 'delivered', 3))).toBe(false);
    const { rows } = await db.query<{ attempt: number; outcome: string; error_class: string | null }>(
      'SELECT attempt, outcome, error_class FROM delivery_attempts WHERE delivery_id = $1 ORDER BY attempt',
      [ref.id],
    );
    expect(rows).toEqual([
      { attempt: 1, outcome: 'retry', error_class: 'timeout' },
      { attempt: 2, outcome: 'delivered', error_class: null },
    ]);
    const d = (await repo.load(ref.id))!;
    expect(d).toMatchObject({ status: 'delivered', attempts: 2 });
    const bodies = await db.query('SELECT 1 FROM delivery_bodies WHERE delivery_id = $1', [ref.id]);
    expect(bodies.rowCount).toBe(2);
  });

  it('marks the message delivered when all its deliveries are, failed when one is dead-lettered', async () => {
    const [m, n] = await processed(2, ['ehr', 'lis']);
    const one = (x: typeof m, i: number) => ({ id: x!.refs[i]!.id, messageId: x!.messageId });
    await Promise.all([
      repo.recordAttempt(attempt(one(m, 0), 'delivered')),
      repo.recordAttempt(attempt(one(m, 1), 'delivered')),
    ]);
    expect((await messages.get(m!.messageId))!.status).toBe('delivered');

    await repo.recordAttempt(attempt(one(n, 0), 'delivered'));
    expect((await messages.get(n!.messageId))!.status).toBe('processed');
    await repo.recordAttempt(attempt(one(n, 1), 'failed', 12, 'http_503'));
    const { rows } = await db.query<{ status: string; last_error_code: string }>(
      'SELECT status, last_error_code FROM messages WHERE id = $1',
      [n!.messageId],
    );
    expect(rows[0]).toEqual({ status: 'failed', last_error_code: 'DELIVERY_FAILED' });
  });

  it('sums up each destination: pending, retrying, held back, held and dead letters', async () => {
    const key = '77';
    const [a] = await processed(3, ['status-dest'], key);
    const one = (x: typeof a) => ({ id: x!.refs[0]!.id, messageId: x!.messageId });
    await repo.recordAttempt(attempt(one(a), 'retry', 1, 'http_503'));
    const [d] = await processed(1, ['status-dest']);
    await repo.recordAttempt(attempt(one(d), 'failed', 3, 'http_400'));
    const s = (await repo.destinationStats()).find((x) => x.destination === 'status-dest')!;
    expect(s).toMatchObject({ pending: 3, retrying: 1, heldBack: 2, held: 0, failed: 1 });
    expect(s.oldestPendingAt).toBeInstanceOf(Date);
    expect(['http_400', 'http_503']).toContain(s.lastErrorClass);
  });
});
