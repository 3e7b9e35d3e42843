import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeBackends, type TestStore } from '../../test/support/store-backends.js';
import type { SealedBody } from '../archive/delivery-bodies.js';
import type { Db } from './db.js';
import { type AttemptRecord, DeliveryRepo } from './delivery-repo.js';
import { newMessageId } from './message-id.js';
import { MessageRepo, type NewMessage } from './message-repo.js';
import { buildListQuery, type MessageFilter, MessageSearch } from './message-search.js';

describe('buildListQuery', () => {
  const q = (f: Partial<MessageFilter>) => buildListQuery({ limit: 50, ...f });

  it('without filters: newest first by seq, one row more than the page', () => {
    const { sql, params } = q({});
    expect(sql).not.toContain('WHERE');
    expect(sql).toMatch(/ORDER BY m\.seq DESC\s+LIMIT \$1$/);
    expect(params).toEqual([51]);
  });

  it('passes every value as a parameter, never in the SQL text', () => {
    const evil = "x' OR 1=1 --";
    const { sql, params } = q({
      channel: evil,
      sender: evil,
      controlId: evil,
      destination: evil,
      type: evil,
      status: 'failed',
    });
    expect(sql).not.toContain('OR 1=1');
    expect(params).toContain(evil);
  });

  it('type: exact with an event, every event of a bare code, a prefix with *, the structure ignored', () => {
    expect(q({ type: 'ORU^R01' })).toMatchObject({ params: ['ORU^R01', 51] });
    expect(q({ type: 'ORU^R01' }).sql).toContain('m.message_type = $1');
    expect(q({ type: 'ORU^R01^ORU_R01' }).params).toEqual(['ORU^R01', 51]);
    const bare = q({ type: 'ADT' });
    expect(bare.sql).toContain('(m.message_type = $1 OR m.message_type LIKE $2)');
    expect(bare.params).toEqual(['ADT', 'ADT^%', 51]);
    expect(q({ type: 'ADT^A0*' }).params).toEqual(['ADT^A0%', 51]);
    // LIKE's own wildcards in a name are literals.
    expect(q({ type: 'Z_1' }).params).toEqual(['Z_1', 'Z\\_1^%', 51]);
  });

  it('sender: exact with both parts, either part alone otherwise', () => {
    expect(q({ sender: 'LIS|LAB' }).sql).toContain('m.sender = $1');
    expect(q({ sender: 'LAB' }).sql).toContain(
      "(m.sender = $1 OR split_part(m.sender, '|', 1) = $1 OR split_part(m.sender, '|', 2) = $1)",
    );
  });

  it('times, control id, channel and cursor each add one condition', () => {
    const since = new Date('2026-01-01T00:00:00Z');
    const until = new Date('2026-01-02T00:00:00Z');
    const { sql, params } = q({ channel: 'lab', since, until, controlId: 'C1', beforeSeq: 99 });
    expect(sql).toContain('m.channel = $1');
    expect(sql).toContain('m.received_at >= $2');
    expect(sql).toContain('m.received_at < $3');
    expect(sql).toContain('m.control_id = $4');
    expect(sql).toContain('m.seq < $5');
    expect(params).toEqual(['lab', since.toISOString(), until.toISOString(), 'C1', 99, 51]);
  });

  it('destination: a delivery there; with status failed, not delivered there instead of m.status', () => {
    const any = q({ destination: 'ehr', status: 'delivered' });
    expect(any.sql).toContain('d.destination = $1)');
    expect(any.sql).toContain('m.status = $2');
    const failed = q({ destination: 'ehr', status: 'failed' });
    expect(failed.sql).toContain("d.destination = $1 AND d.status = 'failed'");
    expect(failed.sql).toContain("m.status = 'failed' AND NOT EXISTS");
    expect(failed.sql).not.toContain('m.status = $');
    expect(failed.params).toEqual(['ehr', 51]);
  });

  it('clamps the page size to 1..1000', () => {
    expect(q({ limit: 5000 }).params).toEqual([1001]);
    expect(q({ limit: 0 }).params).toEqual([2]);
  });
});

const KEY_ID = 'dk_message_search_test';
const BASE = Date.parse('2026-03-01T10:00:00Z');
const minutes = (n: number) => new Date(BASE + n * 60_000);

function sealed(kind: SealedBody['kind']): SealedBody {
  return { kind, keyId: KEY_ID, iv: randomBytes(12), tag: randomBytes(16), ciphertext: randomBytes(24) };
}

describe.each(storeBackends)('MessageSearch on $name', (backend) => {
  let store: TestStore;
  let db: Db;
  let search: MessageSearch;
  /** Control id → message id. */
  const ids: Record<string, string> = {};
  const sentBody = sealed('request');

  const list = async (f: Partial<MessageFilter>) =>
    (await search.list({ limit: 50, ...f })).messages.map((m) => m.controlId);

  beforeAll(async () => {
    store = await backend.open('message_search', { dataKeyId: KEY_ID });
    db = store.db;
    const messages = new MessageRepo(db);
    const deliveries = new DeliveryRepo(db);
    const row = (
      n: number,
      over: Partial<NewMessage> & Pick<NewMessage, 'channel' | 'messageType' | 'sender'>,
    ): NewMessage => ({
      id: newMessageId(minutes(n).getTime()),
      controlId: `C${n}`,
      version: '2.5.1',
      receivedAt: minutes(n),
      connectionId: 'conn-1',
      status: 'received',
      ackCode: 'AA',
      errorCode: null,
      partition: 0,
      collisionOf: null,
      sha256: createHash('sha256').update(`search ${n}`).digest(),
      byteLength: 100 + n,
      dataKeyId: KEY_ID,
      archiveFile: `${over.channel}/2026-03-01.w1.h7a`,
      archiveOffset: n * 200,
      archiveLength: 150,
      ...over,
    });
    const lab = { channel: 'lab', messageType: 'ORU^R01', sender: 'LIS|FAKELAB' };
    const rows = [
      row(1, lab), // delivered to ehr
      row(2, lab), // ehr refused it (400): failed
      row(3, { channel: 'lab', messageType: 'ADT^A08', sender: 'ADT|HOSP' }), // failed in processing
      row(4, { channel: 'adt', messageType: 'ADT^A01', sender: 'ADT|HOSP' }), // still received
      row(5, lab), // delivered to ehr, dead-lettered at mllp
      row(6, { ...lab, status: 'rejected', ackCode: 'AR', errorCode: 'INTAKE_DUPLICATE_COLLISION' }),
    ];
    await messages.insertMany(rows);
    for (const r of rows) ids[r.controlId] = r.id;
    // Read before the transaction: PGlite has one connection, which the transaction holds.
    const seqs: Record<string, number> = {};
    for (const r of rows) seqs[r.id] = (await messages.get(r.id))?.seq as number;
    const seqOf = (id: string) => seqs[id] as number;

    const refs = await db.transaction(async (tx) => {
      await messages.markProcessedMany(tx, [
        { id: ids.C1 as string, status: 'processed', errorCode: null, detail: { resources: 3 } },
        { id: ids.C2 as string, status: 'processed', errorCode: null, detail: { resources: 3 } },
        {
          id: ids.C3 as string,
          status: 'failed',
          errorCode: 'FHIR_INVALID',
          detail: { error: 'FHIR_INVALID' },
        },
        { id: ids.C5 as string, status: 'processed', errorCode: null, detail: { resources: 3 } },
      ]);
      return deliveries.createPendingMany(tx, [
        {
          messageId: ids.C1 as string,
          channel: 'lab',
          seq: seqOf(ids.C1 as string),
          destinations: ['ehr'],
        },
        {
          messageId: ids.C2 as string,
          channel: 'lab',
          seq: seqOf(ids.C2 as string),
          destinations: ['ehr'],
        },
        {
          messageId: ids.C5 as string,
          channel: 'lab',
          seq: seqOf(ids.C5 as string),
          destinations: ['ehr', 'mllp'],
        },
      ]);
    });
    const attempt = (
      i: number,
      outcome: AttemptRecord['outcome'],
      n: number,
      errorClass: string | null,
      statusCode: number | null,
      bodies: SealedBody[] = [],
    ): AttemptRecord => {
      const ref = refs[i] as { id: string };
      const messageId = i === 0 ? ids.C1 : i === 1 ? ids.C2 : ids.C5;
      return {
        deliveryId: ref.id,
        messageId: messageId as string,
        attempt: n,
        startedAt: new Date(BASE + 3_600_000 + i * 1000 + n),
        outcome,
        errorClass,
        statusCode,
        ackCode: null,
        retryAfterMs: null,
        nextAttemptAt: null,
        bodies,
      };
    };
    await deliveries.recordAttempt(attempt(0, 'delivered', 1, null, 200, [sealed('request')]));
    await deliveries.recordAttempt(attempt(1, 'retry', 1, 'http_503', 503, [sealed('response')]));
    await deliveries.recordAttempt(
      attempt(1, 'rejected', 2, 'http_400', 400, [sentBody, sealed('response')]),
    );
    await deliveries.recordAttempt(attempt(2, 'delivered', 1, null, 200));
    await deliveries.recordAttempt(attempt(3, 'failed', 1, 'ack_timeout', null));
    search = new MessageSearch(db);
  });

  afterAll(() => store?.close());

  it('lists newest first with codes and a per-destination summary, no content columns', async () => {
    const page = await search.list({ limit: 50 });
    expect(page.next).toBeNull();
    expect(page.messages.map((m) => m.controlId)).toEqual(['C6', 'C5', 'C4', 'C3', 'C2', 'C1']);
    const byId = Object.fromEntries(page.messages.map((m) => [m.controlId, m]));
    expect(byId.C2).toMatchObject({
      id: ids.C2,
      channel: 'lab',
      sender: 'LIS|FAKELAB',
      type: 'ORU^R01',
      status: 'failed',
      ackCode: 'AA',
      errorCode: 'DELIVERY_FAILED',
      deliveries: [{ destination: 'ehr', status: 'failed', attempts: 2, errorClass: 'http_400' }],
    });
    expect(byId.C2?.receivedAt).toEqual(minutes(2));
    expect(byId.C5?.deliveries).toEqual([
      { destination: 'ehr', status: 'delivered', attempts: 1, errorClass: null },
      { destination: 'mllp', status: 'failed', attempts: 1, errorClass: 'ack_timeout' },
    ]);
    expect(byId.C3).toMatchObject({ status: 'failed', errorCode: 'FHIR_INVALID', deliveries: [] });
    // The intake NAK code when nothing later went wrong.
    expect(byId.C6).toMatchObject({
      status: 'rejected',
      ackCode: 'AR',
      errorCode: 'INTAKE_DUPLICATE_COLLISION',
    });
    expect(Object.keys(byId.C1 ?? {}).sort()).toEqual([
      'ackCode',
      'channel',
      'controlId',
      'deliveries',
      'errorCode',
      'id',
      'receivedAt',
      'sender',
      'seq',
      'status',
      'type',
    ]);
  });

  it('filters by channel, status, type, sender, control id and time', async () => {
    expect(await list({ channel: 'adt' })).toEqual(['C4']);
    expect(await list({ status: 'failed' })).toEqual(['C5', 'C3', 'C2']);
    expect(await list({ status: 'failed', channel: 'lab', type: 'ORU^R01' })).toEqual(['C5', 'C2']);
    expect(await list({ type: 'ADT' })).toEqual(['C4', 'C3']);
    expect(await list({ type: 'ADT^A0*' })).toEqual(['C4', 'C3']);
    expect(await list({ type: 'ADT^A01^ADT_A01' })).toEqual(['C4']);
    expect(await list({ type: 'AD' })).toEqual([]);
    expect(await list({ sender: 'FAKELAB' })).toEqual(['C6', 'C5', 'C2', 'C1']);
    expect(await list({ sender: 'ADT' })).toEqual(['C4', 'C3']);
    expect(await list({ sender: 'ADT|HOSP' })).toEqual(['C4', 'C3']);
    expect(await list({ sender: 'ADT|FAKELAB' })).toEqual([]);
    expect(await list({ controlId: 'C2' })).toEqual(['C2']);
    expect(await list({ since: minutes(3), until: minutes(5) })).toEqual(['C4', 'C3']);
  });

  it('destination: messages with a delivery there; with failed, those that did not get there', async () => {
    expect(await list({ destination: 'ehr' })).toEqual(['C5', 'C2', 'C1']);
    expect(await list({ destination: 'mllp' })).toEqual(['C5']);
    expect(await list({ destination: 'ehr', status: 'delivered' })).toEqual(['C1']);
    // C5 failed at mllp but reached ehr; C3 failed before any delivery.
    expect(await list({ destination: 'ehr', status: 'failed' })).toEqual(['C3', 'C2']);
    expect(await list({ destination: 'mllp', status: 'failed' })).toEqual(['C5', 'C3']);
    expect(await list({ destination: 'nowhere' })).toEqual([]);
  });

  it('pages by keyset: each page continues below the last seq, the last page has no next', async () => {
    const seen: string[] = [];
    let cursor: number | undefined;
    let pages = 0;
    do {
      const page = await search.list({ limit: 4, ...(cursor === undefined ? {} : { beforeSeq: cursor }) });
      seen.push(...page.messages.map((m) => m.controlId));
      cursor = page.next ?? undefined;
      pages++;
      if (cursor !== undefined) expect(page.messages.at(-1)?.seq).toBe(cursor);
    } while (cursor !== undefined);
    expect(pages).toBe(2);
    expect(seen).toEqual(['C6', 'C5', 'C4', 'C3', 'C2', 'C1']);
    // An exactly full last page says so: no empty page after it.
    expect((await search.list({ limit: 6 })).next).toBeNull();
  });

  it('shows metadata, events in order, and each delivery with its attempts and kept bodies', async () => {
    const d = await search.show(ids.C2 as string);
    expect(d?.message).toMatchObject({
      id: ids.C2,
      controlId: 'C2',
      status: 'failed',
      lastErrorCode: 'DELIVERY_FAILED',
      intakeErrorCode: null,
      byteLength: 102,
      archive: { file: 'lab/2026-03-01.w1.h7a', offset: 400, length: 150 },
    });
    expect(d?.message.sha256).toBe(createHash('sha256').update('search 2').digest('hex'));
    expect(d?.events.map((e) => [e.event, e.detail])).toEqual([['processed', { resources: 3 }]]);
    expect(d?.deliveries).toHaveLength(1);
    expect(d?.deliveries[0]).toMatchObject({
      destination: 'ehr',
      status: 'failed',
      attempts: 2,
      lastErrorClass: 'http_400',
      lastStatus: 400,
      attemptBase: 0,
      replayFrom: null,
    });
    expect(
      d?.deliveries[0]?.attemptLog.map((a) => [a.attempt, a.outcome, a.errorClass, a.statusCode, a.bodies]),
    ).toEqual([
      [1, 'retry', 'http_503', 503, ['response']],
      [2, 'rejected', 'http_400', 400, ['request', 'response']],
    ]);
    expect(await search.show(newMessageId())).toBeUndefined();
  });

  it('finds the request the ending attempt sent, still sealed; none for a delivery that sent nothing kept', async () => {
    const [ehr] = await search.sentRequests(ids.C2 as string);
    expect(ehr).toMatchObject({ destination: 'ehr', status: 'failed', attempt: 2 });
    expect(ehr?.body?.ciphertext.equals(sentBody.ciphertext)).toBe(true);
    expect(ehr?.body).toMatchObject({ kind: 'request', keyId: KEY_ID });
    const c5 = await search.sentRequests(ids.C5 as string);
    expect(c5.map((s) => [s.destination, s.attempt, s.body])).toEqual([
      ['ehr', null, null],
      ['mllp', null, null],
    ]);
    expect(await search.sentRequests(ids.C3 as string)).toEqual([]);
  });
});
