import { createHash } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '../../test/support/postgres.js';
import { KeyRing } from '../archive/keyring.js';
import { LocalKeyProvider } from '../archive/local-key-provider.js';
import { RawArchive } from '../archive/raw-archive.js';
import { parse } from '../hl7/index.js';
import { AuditLog } from '../observability/audit-log.js';
import { createLogger } from '../observability/logger.js';
import { AuditRepo } from '../store/audit-repo.js';
import { DataKeyRepo } from '../store/data-key-repo.js';
import { newMessageId } from '../store/message-id.js';
import { MessageRepo } from '../store/message-repo.js';
import { type OpenedStore, openStore } from '../store/open-store.js';
import { AdminServer } from './admin-server.js';
import { type ExportEvent, exportRoutes } from './export-routes.js';
import { RoleMap } from './roles.js';

// The export route against a real Postgres store and a real encrypted archive, over HTTP: what it
// refuses, who may call it, what it streams, and what the audit trail says.

const TOKEN = 'export-test-token';

const MESSAGES: { channel: string; raw: Buffer; status: 'received' | 'rejected' }[] = [
  {
    channel: 'adt',
    status: 'received',
    raw: Buffer.from(
      'MSH|^~\\&|ADT|GHH|EHR|GHH|20260314093015||ADT^A01|CTRL-A1|P|2.5.1\rPID|1||MRN123456^^^GHH^MR||Quixote^Alonso||19510203|M|||12 Windmill Way^^La Mancha^TX^78701\r',
    ),
  },
  {
    channel: 'lab',
    status: 'received',
    raw: Buffer.from(
      'MSH|^~\\&|LIS|LAB|EHR|GHH|20260315120000||ORU^R01|CTRL-L1|P|2.5.1\rPID|1||MRN123456^^^GHH^MR||Quixote^Alonso\rOBX|1|NM|2345-7^Glucose^LN||98|mg/dL|||||F\r',
    ),
  },
  // Refused at intake: archived, but not HL7 the parser can read.
  { channel: 'lab', status: 'rejected', raw: Buffer.from('NOT HL7 AT ALL, patient Quixote\r') },
  // Latin-1 as MSH-18 says: the export is UTF-8 and says so.
  {
    channel: 'adt',
    status: 'received',
    raw: Buffer.from(
      'MSH|^~\\&|ADT|GHH|EHR|GHH|20260316080000||ADT^A08|CTRL-A2|P|2.5.1||||||8859/1\rPID|1||MRN777^^^GHH^MR||Müller^Jörg\rPV1|1|I|Sälen^12^A\r',
      'latin1',
    ),
  },
];

let tdb: TestDatabase;
let dir: string;
let store: OpenedStore;
let provider: LocalKeyProvider;
let keyring: KeyRing;
let archive: RawArchive;
let server: AdminServer;
let url: string;
const ids: string[] = [];

async function post(
  operator: string,
  body: unknown,
): Promise<{ status: number; events: ExportEvent[]; error?: string }> {
  const res = await fetch(`${url}/messages/export`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${TOKEN}`,
      'x-hl7e-operator': operator,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
  const text = await res.text();
  if (!res.ok)
    return { status: res.status, events: [], error: (JSON.parse(text) as { error: string }).error };
  return {
    status: res.status,
    events: text
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as ExportEvent),
  };
}

const texts = (events: ExportEvent[]) =>
  events.flatMap((e) => (e.type === 'message' ? [{ id: e.messageId, message: parse(e.text) }] : []));

beforeAll(async () => {
  tdb = await createTestDatabase('export_routes');
  dir = await mkdtemp(join(tmpdir(), 'hl7e-export-'));
  store = await openStore({ databaseUrl: tdb.url, dataDir: dir });
  provider = await LocalKeyProvider.open(join(dir, 'keys', 'master-keys.json'));
  keyring = new KeyRing({
    provider,
    repo: new DataKeyRepo(store.db),
    maxAgeMs: 86_400_000,
    maxRecords: 1_000,
    cacheMs: 60_000,
  });
  archive = new RawArchive(join(dir, 'raw-archive'), keyring, 'exporttest');
  const repo = new MessageRepo(store.db);
  for (const [i, m] of MESSAGES.entries()) {
    const receivedAt = new Date(Date.UTC(2026, 2, 14 + i, 12));
    const id = newMessageId(receivedAt.getTime());
    ids.push(id);
    const [archived] = await archive.write([{ channel: m.channel, messageId: id, receivedAt, raw: m.raw }]);
    if (!archived) throw new Error('not archived');
    await repo.insertMany([
      {
        id,
        channel: m.channel,
        sender: 'APP|FAC',
        controlId: `C${i}`,
        messageType: m.status === 'rejected' ? '' : 'ADT^A01',
        version: '2.5.1',
        receivedAt,
        connectionId: 'c1',
        status: m.status,
        ackCode: m.status === 'rejected' ? 'AR' : 'AA',
        errorCode: m.status === 'rejected' ? 'HL7_NO_MSH' : null,
        partition: 0,
        collisionOf: null,
        sha256: createHash('sha256').update(m.raw).digest(),
        byteLength: m.raw.length,
        dataKeyId: archived.keyId,
        archiveFile: archived.location.file,
        archiveOffset: archived.location.offset,
        archiveLength: archived.location.length,
      },
    ]);
  }
  const rolesFile = join(dir, 'roles.yaml');
  await writeFile(rolesFile, 'operators:\n  ann: [analyst]\n  audrey: [auditor]\n');
  const logger = createLogger({ level: 'silent' });
  server = new AdminServer({
    host: '127.0.0.1',
    port: 0,
    token: TOKEN,
    roles: RoleMap.load(rolesFile),
    logger,
  }).add(
    ...exportRoutes({
      db: store.db,
      messages: repo,
      archive,
      audit: new AuditLog(new AuditRepo(store.db)),
      channels: new Map(),
      logger,
    }),
  );
  ({ url } = await server.listen());
});

afterAll(async () => {
  await server?.close();
  await archive?.close();
  await keyring?.close();
  await provider?.close();
  await store?.close();
  await tdb?.drop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('POST /messages/export', () => {
  it('refuses an export that is not de-identified, or has no reason', async () => {
    expect((await post('ann', { reason: 'INC-1' })).error).toBe('DEIDENTIFY_REQUIRED');
    expect((await post('ann', { deidentify: 'yes', reason: 'INC-1' })).error).toBe('DEIDENTIFY_REQUIRED');
    expect((await post('ann', { deidentify: true })).error).toBe('REASON_REQUIRED');
    expect((await post('ann', { deidentify: true, reason: 'x', limit: 0 })).status).toBe(400);
    expect((await post('ann', { deidentify: true, reason: 'x', since: 'yesterday' })).status).toBe(400);
    expect((await post('ann', { deidentify: true, reason: 'x', keepSegments: ['PID'] })).status).toBe(400);
  });

  it('is for analysts, on-call and admins, not auditors', async () => {
    expect((await post('audrey', { deidentify: true, reason: 'INC-1' })).status).toBe(403);
  });

  it('streams every selected message de-identified, oldest first, then a summary', async () => {
    const { status, events } = await post('ann', { deidentify: true, reason: 'vendor ticket MAP-12' });
    expect(status).toBe(200);
    expect(events.map((e) => (e.type === 'summary' ? 'summary' : `${e.type} ${e.messageId}`))).toEqual([
      `message ${ids[0]}`,
      `message ${ids[1]}`,
      `skipped ${ids[2]}`,
      `message ${ids[3]}`,
      'summary',
    ]);
    expect(events.at(-1)).toEqual({ type: 'summary', selected: 4, exported: 3, skipped: 1 });
    expect(events[2]).toMatchObject({ type: 'skipped', code: expect.stringMatching(/^HL7_/) });
    const all = JSON.stringify(events);
    for (const secret of [
      'Quixote',
      'Alonso',
      'MRN123456',
      'Windmill',
      '78701',
      '19510203',
      'Müller',
      'CTRL-',
    ]) {
      expect(all).not.toContain(secret);
    }
    const [adt, oru, latin] = texts(events);
    // One export, one pseudonym per MRN: the ADT and the ORU are still about the same patient.
    expect(adt?.message.get('PID-3')).toBe(oru?.message.get('PID-3'));
    expect(adt?.message.get('PID-3')).toMatch(/^[0-9A-Z]{12}$/);
    expect(adt?.message.getRaw('PID-11')).toBe('REDACTED^^REDACTED^TX^787');
    expect(oru?.message.getRaw('OBX-5')).toBe('98');
    expect(latin?.message.get('MSH-18')).toBe('UNICODE UTF-8');
    expect(latin?.message.get('PV1-3')).toBe('Sälen');
  });

  it('gives another export other pseudonyms', async () => {
    const first = texts((await post('ann', { deidentify: true, reason: 'a', channel: 'lab' })).events);
    const second = texts((await post('ann', { deidentify: true, reason: 'b', channel: 'lab' })).events);
    expect(first[0]?.message.get('PID-3')).not.toBe(second[0]?.message.get('PID-3'));
  });

  it('selects with the filters of messages list, and records who exported what and why', async () => {
    const { events } = await post('ann', {
      deidentify: true,
      reason: 'INC-4711 ADT mapping',
      channel: 'adt',
      since: '2026-03-01T00:00:00Z',
      limit: 10,
    });
    expect(texts(events).map((t) => t.id)).toEqual([ids[0], ids[3]]);
    const rows = await new AuditRepo(store.db).list({ action: 'messages.export', actor: 'ann' });
    const mine = rows.filter((r) => r.reason === 'INC-4711 ADT mapping');
    expect(mine.map((r) => r.outcome)).toEqual(['started: 2 selected', 'done: 2 exported, 0 skipped']);
    expect(mine[0]?.target).toBe('deidentified channel=adt since=2026-03-01T00:00:00.000Z limit=10');
  });
});
