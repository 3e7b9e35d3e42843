import { openBody } from '../archive/delivery-bodies.js';
import { isEngineError } from '../errors.js';
import { decodeHl7 } from '../hl7/charset.js';
import { ArchiveUsageRepo } from '../store/archive-usage-repo.js';
import { archiveRefOf, type StoredMessage } from '../store/message-repo.js';
import {
  MAX_PAGE,
  MESSAGE_STATUSES,
  type MessageFilter,
  MessageSearch,
  type SentRequest,
} from '../store/message-search.js';
import type { AdminContext } from './admin-context.js';
import { AdminError, type AdminRequest, type AdminRoute } from './admin-server.js';
import { intArg, timeArg } from './request-args.js';

/** Page size when the caller gives none. */
export const DEFAULT_PAGE = 50;

/** Longest reason kept in the audit trail: a sentence or a ticket reference, not a document. */
const MAX_REASON = 1000;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `POST /messages/:id/reveal` with `what: 'raw'`: the message as received. */
export interface RawReveal {
  readonly what: 'raw';
  readonly messageId: string;
  /** MSH-18 as found (may be empty) and the decoder used for `text`. */
  readonly charset: string;
  readonly encoding: string;
  readonly byteLength: number;
  readonly text: string;
  /** The exact bytes received, for a file that can be parsed or sent again as it was. */
  readonly base64: string;
}

/** One Bundle of a `what: 'fhir'` reveal. */
export interface FhirRevealEntry {
  /** Null when the message has no delivery to a FHIR destination. */
  readonly destination: string | null;
  readonly deliveryStatus: string | null;
  /** `sent`: the request body of the attempt that ended the delivery; `rebuilt`: as it would be built now. */
  readonly source: 'sent' | 'rebuilt';
  readonly attempt: number | null;
  readonly label: string;
  readonly bundle?: unknown;
  /** Why no Bundle could be built now (an error code). */
  readonly error?: string;
}

export interface FhirReveal {
  readonly what: 'fhir';
  readonly messageId: string;
  readonly bundles: readonly FhirRevealEntry[];
}

/**
 * `GET /messages` (hl7e messages list), `GET /messages/:id` (show: metadata, events, attempts — no
 * content) and `POST /messages/:id/reveal` (content, PHI: a reason is required and every reveal,
 * refused or failed ones too, is in the audit trail before any content leaves).
 */
export function messageRoutes(ctx: AdminContext): AdminRoute[] {
  const search = new MessageSearch(ctx.db);
  return [
    {
      method: 'GET',
      path: '/messages',
      permission: 'messages.list',
      handle: async (req) => ({ json: await search.list(filterOf(req.query)) }),
    },
    {
      method: 'GET',
      path: '/messages/:id',
      permission: 'messages.show',
      handle: async (req) => {
        const id = req.params.id ?? '';
        const found = UUID.test(id) ? await search.show(id) : undefined;
        if (!found) throw notFound(id);
        return { json: found };
      },
    },
    {
      method: 'POST',
      path: '/messages/:id/reveal',
      permission: 'messages.reveal',
      handle: (req) => reveal(ctx, search, req),
    },
  ];
}

/** Query string → filter; a malformed value is the caller's mistake (400), said without echoing it. */
export function filterOf(q: URLSearchParams): MessageFilter {
  const text = (name: string) => {
    const v = q.get(name)?.trim();
    return v ? v : undefined;
  };
  const time = (name: string) => timeArg(text(name), name);
  const status = text('status');
  if (status !== undefined && !(MESSAGE_STATUSES as readonly string[]).includes(status)) {
    throw new AdminError(400, 'BAD_REQUEST', `status: one of ${MESSAGE_STATUSES.join(', ')}`);
  }
  const limit = intArg(text('limit'), 'limit', DEFAULT_PAGE, 1, MAX_PAGE);
  const cursor = text('cursor');
  if (cursor !== undefined && !/^\d{1,18}$/.test(cursor)) {
    throw new AdminError(400, 'BAD_REQUEST', 'cursor: the `next` value of the previous page');
  }
  const f: Record<string, unknown> = {
    channel: text('channel'),
    status,
    type: text('type'),
    since: time('since'),
    until: time('until'),
    sender: text('sender'),
    controlId: text('controlId'),
    destination: text('destination'),
    beforeSeq: cursor === undefined ? undefined : Number(cursor),
    limit,
  };
  for (const k of Object.keys(f)) if (f[k] === undefined) delete f[k];
  return f as unknown as MessageFilter;
}

function notFound(id: string): AdminError {
  // An id that is not one is not repeated: it could be anything pasted.
  return new AdminError(404, 'NOT_FOUND', UUID.test(id) ? `no message ${id}` : 'not a message id');
}

async function reveal(
  ctx: AdminContext,
  search: MessageSearch,
  req: AdminRequest,
): Promise<{ json: unknown }> {
  const body = (req.body ?? {}) as { what?: unknown; reason?: unknown };
  const what = body.what;
  if (what !== 'raw' && what !== 'fhir') {
    throw new AdminError(400, 'BAD_REQUEST', "what: 'raw' or 'fhir'");
  }
  const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
  if (!reason) {
    throw new AdminError(
      400,
      'REASON_REQUIRED',
      'revealing content needs a reason (it goes to the audit trail)',
    );
  }
  if (reason.length > MAX_REASON) {
    throw new AdminError(400, 'BAD_REQUEST', `reason: at most ${MAX_REASON} characters`);
  }
  const id = req.params.id ?? '';
  const entry = {
    actor: req.operator,
    action: 'messages.reveal' as const,
    target: `${UUID.test(id) ? id : 'invalid-id'} ${what}`,
    reason,
  };
  let content: RawReveal | FhirReveal;
  try {
    const m = UUID.test(id) ? await ctx.messages.get(id) : undefined;
    if (!m) throw notFound(id);
    content = what === 'raw' ? await revealRaw(ctx, m) : await revealFhir(ctx, search, m);
  } catch (err) {
    const code = err instanceof AdminError || isEngineError(err) ? err.code : 'INTERNAL';
    await ctx.audit.record({ ...entry, outcome: `failed: ${code}` });
    if (err instanceof AdminError) throw err;
    if (isEngineError(err)) {
      throw new AdminError(
        err.retryable ? 503 : 422,
        err.code,
        `the ${what} content of ${id} could not be read (${err.code})`,
      );
    }
    throw err;
  }
  // Recorded before anything is sent: if the trail cannot be written, nothing is revealed.
  await ctx.audit.record({ ...entry, outcome: 'allowed' });
  ctx.logger.info(
    { messageId: id, what, operator: req.operator, correlationId: req.correlationId },
    'message content revealed',
  );
  return { json: content };
}

async function readRaw(ctx: AdminContext, m: StoredMessage): Promise<Buffer> {
  // Retention removed its archive file (hl7e archive prune): say so, rather than a failed read.
  const prunedAt = await new ArchiveUsageRepo(ctx.db).prunedAt(m.id);
  if (prunedAt) {
    throw new AdminError(
      410,
      'ARCHIVE_PRUNED',
      `the raw content of ${m.id} was pruned from the archive at ${prunedAt.toISOString()} (hl7e archive prune); its states and attempts remain`,
    );
  }
  return ctx.archive.read(archiveRefOf(m));
}

async function revealRaw(ctx: AdminContext, m: StoredMessage): Promise<RawReveal> {
  const raw = await readRaw(ctx, m);
  let text: string;
  let charset = '';
  let encoding: string;
  try {
    // As processing reads it: MSH-18, else the channel's charset (conversion-step.ts parseItem).
    const decoded = decodeHl7(raw, ctx.channels.get(m.channel)?.charset);
    text = decoded.text;
    charset = decoded.charset.hl7Name;
    encoding = decoded.charset.encoding;
  } catch {
    // An MSH-18 this engine cannot decode: the bytes one-to-one, so nothing is lost.
    text = raw.toString('latin1');
    encoding = 'latin1';
  }
  return {
    what: 'raw',
    messageId: m.id,
    charset,
    encoding,
    byteLength: raw.length,
    text,
    base64: raw.toString('base64'),
  };
}

/**
 * For each delivery to a FHIR destination, the Bundle it sent in the attempt that ended it (delivered or
 * refused); where none was sent yet, the Bundle as the channel's mapping builds it now, labelled so.
 */
async function revealFhir(ctx: AdminContext, search: MessageSearch, m: StoredMessage): Promise<FhirReveal> {
  const channel = ctx.channels.get(m.channel);
  /** True/false by the channel's config; undefined for a destination no longer configured. */
  const isFhir = (name: string) => {
    const d = channel?.destinations.find((x) => x.name === name);
    return d ? d.fhir !== undefined : undefined;
  };
  let built: Promise<{ bundle: unknown } | { error: string }> | undefined;
  const buildNow = () => {
    built ??= rebuild(ctx, m);
    return built;
  };
  const rebuiltLabel = 'not delivered yet: the Bundle as it would be built now';
  const bundles: FhirRevealEntry[] = [];
  for (const s of await search.sentRequests(m.id)) {
    const fhir = isFhir(s.destination);
    if (fhir === false) continue;
    const sent = await openSent(ctx, s);
    // A destination gone from the config: its body tells whether it took FHIR.
    if (sent !== undefined && (fhir === true || sent.trimStart().startsWith('{'))) {
      bundles.push({
        destination: s.destination,
        deliveryStatus: s.status,
        source: 'sent',
        attempt: s.attempt,
        label:
          s.status === 'delivered'
            ? `delivered in attempt ${s.attempt}`
            : `sent in attempt ${s.attempt}, not accepted (${s.status})`,
        bundle: parseJson(sent),
      });
    } else if (fhir === true) {
      bundles.push({
        destination: s.destination,
        deliveryStatus: s.status,
        source: 'rebuilt',
        attempt: null,
        label: rebuiltLabel,
        ...(await buildNow()),
      });
    }
  }
  if (bundles.length === 0) {
    bundles.push({
      destination: null,
      deliveryStatus: null,
      source: 'rebuilt',
      attempt: null,
      label: `no FHIR delivery: the Bundle as it would be built now`,
      ...(await buildNow()),
    });
  }
  const failed = bundles.find((b) => b.error !== undefined);
  if (failed && bundles.every((b) => b.error !== undefined)) {
    throw new AdminError(422, failed.error as string, `no Bundle for ${m.id}: ${failed.error}`);
  }
  return { what: 'fhir', messageId: m.id, bundles };
}

async function openSent(ctx: AdminContext, s: SentRequest): Promise<string | undefined> {
  if (!s.body || s.attempt === null) return undefined;
  return openBody(ctx.keys, { deliveryId: s.deliveryId, attempt: s.attempt, kind: 'request' }, s.body);
}

async function rebuild(
  ctx: AdminContext,
  m: StoredMessage,
): Promise<{ bundle: unknown } | { error: string }> {
  const raw = await readRaw(ctx, m);
  const [r] = await ctx.converter.bundles([{ channel: m.channel, raw, sha256: m.content_sha256 }]);
  if (!r) return { error: 'PIPELINE_CONVERT_FAILED' };
  return r.ok ? { bundle: parseJson(r.body) } : { error: r.code };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
