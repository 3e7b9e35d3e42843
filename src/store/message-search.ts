import type { SealedBody } from '../archive/delivery-bodies.js';
import type { Queryable } from './db.js';
import type { DeliveryStatus } from './delivery-repo.js';
import type { MessageStatus } from './message-repo.js';

export const MESSAGE_STATUSES = [
  'received',
  'processed',
  'delivered',
  'failed',
  'rejected',
] as const satisfies readonly MessageStatus[];

/** Largest page `hl7e messages list` may ask for: a page is built in memory and sent whole. */
export const MAX_PAGE = 1000;

/** What `hl7e messages list` filters on. Every field narrows; none carries or matches content. */
export interface MessageFilter {
  readonly channel?: string;
  readonly status?: MessageStatus;
  /** MSH-9: `ORU^R01` exactly, `ADT` any ADT event, `ADT^A0*` a prefix. */
  readonly type?: string;
  /** received_at ≥ since. */
  readonly since?: Date;
  /** received_at < until. */
  readonly until?: Date;
  /** `APP|FACILITY` exactly, or either part alone (MSH-3 or MSH-4). */
  readonly sender?: string;
  readonly controlId?: string;
  /**
   * Messages with a delivery to this destination. With status `failed`: its delivery there failed, or
   * the message failed before any delivery was made (processing: FHIR_INVALID, a mapping fault) —
   * the messages that did not reach it and a replay would send there.
   */
  readonly destination?: string;
  /** Keyset cursor: only messages older than this seq (the previous page's `next`). */
  readonly beforeSeq?: number;
  readonly limit: number;
}

/** One destination's delivery of a listed message. */
export interface DeliverySummary {
  readonly destination: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly errorClass: string | null;
}

/** A listed message: ids, times, codes and system names only (no PHI). */
export interface MessageListRow {
  readonly id: string;
  readonly seq: number;
  readonly receivedAt: Date;
  readonly channel: string;
  readonly sender: string;
  readonly type: string;
  readonly controlId: string;
  readonly status: MessageStatus;
  readonly ackCode: string;
  /** The last processing/delivery error code, else the intake NAK code. */
  readonly errorCode: string | null;
  readonly deliveries: readonly DeliverySummary[];
}

export interface MessagePage {
  readonly messages: readonly MessageListRow[];
  /** Cursor of the next (older) page; null on the last one. */
  readonly next: number | null;
}

/** Everything known about one message but its content. */
export interface MessageDetail {
  readonly message: {
    readonly id: string;
    readonly seq: number;
    readonly channel: string;
    readonly sender: string;
    readonly controlId: string;
    readonly type: string;
    readonly version: string;
    readonly receivedAt: Date;
    readonly connectionId: string | null;
    readonly status: MessageStatus;
    readonly ackCode: string;
    /** The intake NAK code (AE/AR), when intake refused it. */
    readonly intakeErrorCode: string | null;
    readonly lastErrorCode: string | null;
    readonly lastErrorAt: Date | null;
    readonly partition: number;
    readonly collisionOf: string | null;
    readonly duplicateCount: number;
    readonly lastDuplicateAt: Date | null;
    readonly sha256: string;
    readonly byteLength: number;
    readonly dataKeyId: string;
    readonly archive: { readonly file: string; readonly offset: number; readonly length: number };
    readonly processedAt: Date | null;
    readonly updatedAt: Date;
  };
  readonly events: readonly { readonly at: Date; readonly event: string; readonly detail: unknown }[];
  readonly deliveries: readonly DeliveryDetail[];
}

export interface DeliveryDetail {
  readonly id: string;
  readonly destination: string;
  readonly status: DeliveryStatus;
  readonly attempts: number;
  readonly createdAt: Date;
  readonly lastAttemptAt: Date | null;
  readonly deliveredAt: Date | null;
  readonly lastErrorClass: string | null;
  readonly lastErrorAt: Date | null;
  readonly lastStatus: number | null;
  readonly nextAttemptAt: Date | null;
  readonly attemptBase: number;
  readonly replayFrom: 'raw' | 'mapped' | null;
  readonly replayedAt: Date | null;
  readonly attemptLog: readonly AttemptDetail[];
}

export interface AttemptDetail {
  readonly attempt: number;
  readonly startedAt: Date;
  readonly finishedAt: Date | null;
  readonly outcome: string;
  readonly errorClass: string | null;
  readonly statusCode: number | null;
  readonly ackCode: string | null;
  readonly retryAfterMs: number | null;
  /** Which encrypted bodies were kept (`hl7e messages show --fhir` opens the request). */
  readonly bodies: readonly ('request' | 'response')[];
}

/** A delivery of a message and the request its last ending attempt sent (sealed), if one did. */
export interface SentRequest {
  readonly deliveryId: string;
  readonly destination: string;
  readonly status: DeliveryStatus;
  readonly attempt: number | null;
  readonly body: SealedBody | null;
}

/** `LIKE` pattern text for a literal. */
const likeLiteral = (s: string) => s.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * The WHERE/ORDER/LIMIT of a page, as SQL and parameters (values only ever as parameters). Newest
 * first by seq: the unique index serves the order and the cursor, so a page costs the same deep in
 * history as at the top. Fetches one row more than the page, to know whether another follows.
 */
export function buildListQuery(f: MessageFilter): { sql: string; params: unknown[] } {
  const where: string[] = [];
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  if (f.channel !== undefined) where.push(`m.channel = ${p(f.channel)}`);
  if (f.type !== undefined) where.push(typeCondition(f.type, p));
  if (f.since) where.push(`m.received_at >= ${p(f.since.toISOString())}`);
  if (f.until) where.push(`m.received_at < ${p(f.until.toISOString())}`);
  if (f.sender !== undefined) {
    const s = p(f.sender);
    where.push(
      f.sender.includes('|')
        ? `m.sender = ${s}`
        : `(m.sender = ${s} OR split_part(m.sender, '|', 1) = ${s} OR split_part(m.sender, '|', 2) = ${s})`,
    );
  }
  if (f.controlId !== undefined) where.push(`m.control_id = ${p(f.controlId)}`);
  if (f.destination !== undefined) {
    const d = p(f.destination);
    if (f.status === 'failed') {
      where.push(
        `(EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.destination = ${d} AND d.status = 'failed')` +
          ` OR (m.status = 'failed' AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id)))`,
      );
    } else {
      where.push(`EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = m.id AND d.destination = ${d})`);
    }
  }
  if (f.status !== undefined && !(f.status === 'failed' && f.destination !== undefined)) {
    where.push(`m.status = ${p(f.status)}`);
  }
  if (f.beforeSeq !== undefined) where.push(`m.seq < ${p(f.beforeSeq)}`);
  const limit = p(Math.min(Math.max(1, Math.trunc(f.limit)), MAX_PAGE) + 1);
  const sql = `SELECT m.id, m.seq, m.received_at, m.channel, m.sender, m.message_type, m.control_id, m.status,
       m.ack_code, coalesce(m.last_error_code, m.error_code) AS error_code
  FROM messages m${where.length > 0 ? `\n WHERE ${where.join('\n   AND ')}` : ''}
 ORDER BY m.seq DESC
 LIMIT ${limit}`;
  return { sql, params };
}

/**
 * messages.message_type holds `CODE^EVENT` (MSH-9.1, 9.2; the structure 9.3 is not kept). A bare code
 * matches every event of it; a trailing `*` makes a prefix; a given structure is ignored.
 */
function typeCondition(type: string, p: (v: unknown) => string): string {
  const [code = '', event, ..._structure] = type.trim().split('^');
  const wanted = event === undefined ? code : `${code}^${event}`;
  if (wanted.endsWith('*')) return `m.message_type LIKE ${p(`${likeLiteral(wanted.slice(0, -1))}%`)}`;
  if (event === undefined) {
    return `(m.message_type = ${p(code)} OR m.message_type LIKE ${p(`${likeLiteral(code)}^%`)})`;
  }
  return `m.message_type = ${p(wanted)}`;
}

/** The on-call look-ups (`hl7e messages list/show`, reveal): reads only, no content. */
export class MessageSearch {
  constructor(private readonly db: Queryable) {}

  async list(f: MessageFilter): Promise<MessagePage> {
    const { sql, params } = buildListQuery(f);
    const { rows } = await this.db.query<{
      id: string;
      seq: number;
      received_at: Date;
      channel: string;
      sender: string;
      message_type: string;
      control_id: string;
      status: MessageStatus;
      ack_code: string;
      error_code: string | null;
    }>(sql, params);
    const page = rows.slice(0, Math.min(Math.max(1, Math.trunc(f.limit)), MAX_PAGE));
    const byMessage = await this.#deliverySummaries(page.map((r) => r.id));
    return {
      messages: page.map((r) => ({
        id: r.id,
        seq: r.seq,
        receivedAt: r.received_at,
        channel: r.channel,
        sender: r.sender,
        type: r.message_type,
        controlId: r.control_id,
        status: r.status,
        ackCode: r.ack_code,
        errorCode: r.error_code,
        deliveries: byMessage.get(r.id) ?? [],
      })),
      next: rows.length > page.length ? (page.at(-1)?.seq ?? null) : null,
    };
  }

  async #deliverySummaries(ids: readonly string[]): Promise<Map<string, DeliverySummary[]>> {
    const out = new Map<string, DeliverySummary[]>();
    if (ids.length === 0) return out;
    const { rows } = await this.db.query<{
      message_id: string;
      destination: string;
      status: DeliveryStatus;
      attempts: number;
      last_error_class: string | null;
    }>(
      `SELECT message_id, destination, status, attempts, last_error_class FROM deliveries
        WHERE message_id = ANY($1::uuid[]) ORDER BY destination`,
      [ids],
    );
    for (const r of rows) {
      const list = out.get(r.message_id) ?? [];
      list.push({
        destination: r.destination,
        status: r.status,
        attempts: r.attempts,
        errorClass: r.last_error_class,
      });
      out.set(r.message_id, list);
    }
    return out;
  }

  /** The message's metadata, its events in order, and its deliveries with every attempt. */
  async show(id: string): Promise<MessageDetail | undefined> {
    const { rows } = await this.db.query<{
      id: string;
      seq: number;
      channel: string;
      sender: string;
      control_id: string;
      message_type: string;
      version: string;
      received_at: Date;
      connection_id: string | null;
      status: MessageStatus;
      ack_code: string;
      error_code: string | null;
      last_error_code: string | null;
      last_error_at: Date | null;
      partition: number;
      collision_of: string | null;
      duplicate_count: number;
      last_duplicate_at: Date | null;
      content_sha256: Buffer;
      byte_length: number;
      data_key_id: string;
      archive_file: string;
      archive_offset: number;
      archive_length: number;
      processed_at: Date | null;
      updated_at: Date;
    }>(
      `SELECT id, seq, channel, sender, control_id, message_type, version, received_at, connection_id, status,
              ack_code, error_code, last_error_code, last_error_at, partition, collision_of, duplicate_count,
              last_duplicate_at, content_sha256, byte_length, data_key_id, archive_file, archive_offset,
              archive_length, processed_at, updated_at
         FROM messages WHERE id = $1`,
      [id],
    );
    const m = rows[0];
    if (!m) return undefined;
    const [events, deliveries, attempts] = await Promise.all([
      this.db.query<{ at: Date; event: string; detail: unknown }>(
        'SELECT at, event, detail FROM message_events WHERE message_id = $1 ORDER BY id',
        [id],
      ),
      this.db.query<{
        id: string;
        destination: string;
        status: DeliveryStatus;
        attempts: number;
        created_at: Date;
        last_attempt_at: Date | null;
        delivered_at: Date | null;
        last_error_class: string | null;
        last_error_at: Date | null;
        last_status: number | null;
        next_attempt_at: Date | null;
        attempt_base: number;
        replay_from: 'raw' | 'mapped' | null;
        replayed_at: Date | null;
      }>(
        `SELECT id, destination, status, attempts, created_at, last_attempt_at, delivered_at, last_error_class,
                last_error_at, last_status, next_attempt_at, attempt_base, replay_from, replayed_at
           FROM deliveries WHERE message_id = $1 ORDER BY destination`,
        [id],
      ),
      this.db.query<{
        delivery_id: string;
        attempt: number;
        started_at: Date;
        finished_at: Date | null;
        outcome: string;
        error_class: string | null;
        status_code: number | null;
        ack_code: string | null;
        retry_after_ms: number | null;
        bodies: string[] | null;
      }>(
        `SELECT a.delivery_id, a.attempt, a.started_at, a.finished_at, a.outcome, a.error_class, a.status_code,
                a.ack_code, a.retry_after_ms,
                (SELECT array_agg(b.kind ORDER BY b.kind) FROM delivery_bodies b
                  WHERE b.delivery_id = a.delivery_id AND b.attempt = a.attempt) AS bodies
           FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id
          WHERE d.message_id = $1
          ORDER BY a.delivery_id, a.id`,
        [id],
      ),
    ]);
    const attemptsOf = new Map<string, AttemptDetail[]>();
    for (const a of attempts.rows) {
      const list = attemptsOf.get(a.delivery_id) ?? [];
      list.push({
        attempt: a.attempt,
        startedAt: a.started_at,
        finishedAt: a.finished_at,
        outcome: a.outcome,
        errorClass: a.error_class,
        statusCode: a.status_code,
        ackCode: a.ack_code,
        retryAfterMs: a.retry_after_ms,
        bodies: (a.bodies ?? []) as ('request' | 'response')[],
      });
      attemptsOf.set(a.delivery_id, list);
    }
    return {
      message: {
        id: m.id,
        seq: m.seq,
        channel: m.channel,
        sender: m.sender,
        controlId: m.control_id,
        type: m.message_type,
        version: m.version,
        receivedAt: m.received_at,
        connectionId: m.connection_id,
        status: m.status,
        ackCode: m.ack_code,
        intakeErrorCode: m.error_code,
        lastErrorCode: m.last_error_code,
        lastErrorAt: m.last_error_at,
        partition: m.partition,
        collisionOf: m.collision_of,
        duplicateCount: m.duplicate_count,
        lastDuplicateAt: m.last_duplicate_at,
        sha256: m.content_sha256.toString('hex'),
        byteLength: m.byte_length,
        dataKeyId: m.data_key_id,
        archive: { file: m.archive_file, offset: m.archive_offset, length: m.archive_length },
        processedAt: m.processed_at,
        updatedAt: m.updated_at,
      },
      events: events.rows,
      deliveries: deliveries.rows.map((d) => ({
        id: d.id,
        destination: d.destination,
        status: d.status,
        attempts: d.attempts,
        createdAt: d.created_at,
        lastAttemptAt: d.last_attempt_at,
        deliveredAt: d.delivered_at,
        lastErrorClass: d.last_error_class,
        lastErrorAt: d.last_error_at,
        lastStatus: d.last_status,
        nextAttemptAt: d.next_attempt_at,
        attemptBase: d.attempt_base,
        replayFrom: d.replay_from,
        replayedAt: d.replayed_at,
        attemptLog: attemptsOf.get(d.id) ?? [],
      })),
    };
  }

  /**
   * Each delivery of the message with the request its latest ending attempt sent (the delivery step
   * keeps the request only of an attempt that ended the delivery): the Bundle or HL7 that was
   * delivered, or refused. Still sealed: the caller opens it, and audits that it did.
   */
  async sentRequests(messageId: string): Promise<SentRequest[]> {
    const { rows } = await this.db.query<{
      delivery_id: string;
      destination: string;
      status: DeliveryStatus;
      attempt: number | null;
      data_key_id: string | null;
      iv: Buffer | null;
      tag: Buffer | null;
      ciphertext: Buffer | null;
    }>(
      `SELECT d.id AS delivery_id, d.destination, d.status, b.attempt, b.data_key_id, b.iv, b.tag, b.ciphertext
         FROM deliveries d
         LEFT JOIN LATERAL (
           SELECT attempt, data_key_id, iv, tag, ciphertext FROM delivery_bodies
            WHERE delivery_id = d.id AND kind = 'request' ORDER BY attempt DESC LIMIT 1) b ON true
        WHERE d.message_id = $1
        ORDER BY d.destination`,
      [messageId],
    );
    return rows.map((r) => ({
      deliveryId: r.delivery_id,
      destination: r.destination,
      status: r.status,
      attempt: r.attempt,
      body:
        r.data_key_id && r.iv && r.tag && r.ciphertext
          ? { kind: 'request', keyId: r.data_key_id, iv: r.iv, tag: r.tag, ciphertext: r.ciphertext }
          : null,
    }));
  }
}
