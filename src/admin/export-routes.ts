import { randomBytes } from 'node:crypto';
import { Deidentifier } from '../deid/index.js';
import { isEngineError } from '../errors.js';
import { decodeHl7 } from '../hl7/charset.js';
import { archiveRefOf, type StoredMessage } from '../store/message-repo.js';
import { MAX_PAGE, type MessageFilter, MessageSearch } from '../store/message-search.js';
import type { AdminContext } from './admin-context.js';
import { AdminError, type AdminRequest, type AdminRoute } from './admin-server.js';
import { EXPORT_DEFAULT_LIMIT, EXPORT_MAX_LIMIT } from './export-limits.js';
import { filterOf } from './message-routes.js';

/** The charset every exported message is written in (the CLI writes the text as UTF-8). */
export const EXPORT_CHARSET = 'UNICODE UTF-8';

/** Messages read from the store and the archive at a time. */
const BATCH = 100;
const MAX_REASON = 1000;

/** The filters of `hl7e messages list` that an export takes, by the names the list's query uses. */
const FILTERS = [
  'channel',
  'status',
  'type',
  'since',
  'until',
  'sender',
  'controlId',
  'destination',
] as const;

/** `POST /messages/export`, one NDJSON line each: messages oldest first, skipped ones, then a summary. */
export type ExportEvent =
  | { readonly type: 'message'; readonly messageId: string; readonly text: string }
  /** A message that could not be read or parsed: its code only (nothing of its content). */
  | { readonly type: 'skipped'; readonly messageId: string; readonly code: string }
  | {
      readonly type: 'summary';
      readonly selected: number;
      readonly exported: number;
      readonly skipped: number;
    };

/**
 * `POST /messages/export` (hl7e messages export): the messages a filter selects, de-identified per HIPAA
 * Safe Harbor (src/deid/), as NDJSON. Only de-identified export exists: a request without
 * `deidentify: true` is refused. Each export makes its own random pseudonym key, kept in memory for the
 * request only, so its pseudonyms cannot be linked with another export's.
 *
 * Audited like a reveal (the export leaves the engine, if de-identified): when it starts — so an export
 * cut short is on record — and when it ends, with its counts; a failure with its code.
 */
export function exportRoutes(
  ctx: Pick<AdminContext, 'db' | 'messages' | 'archive' | 'audit' | 'channels' | 'logger'>,
): AdminRoute[] {
  const search = new MessageSearch(ctx.db);
  return [
    {
      method: 'POST',
      path: '/messages/export',
      permission: 'messages.export',
      handle: async (req) => {
        const request = readRequest(req);
        const target = describe(request);
        const entry = {
          actor: req.operator,
          action: 'messages.export' as const,
          target,
          reason: request.reason,
        };
        let ids: string[];
        try {
          ids = await select(search, request.filter, request.limit);
        } catch (err) {
          await ctx.audit.record({ ...entry, outcome: `failed: ${codeOf(err)}` });
          throw err;
        }
        // Recorded before anything is sent: if the trail cannot be written, nothing leaves.
        await ctx.audit.record({ ...entry, outcome: `started: ${ids.length} selected` });
        const deid = new Deidentifier({
          key: randomBytes(32),
          keepSegments: request.keepSegments,
          charset: EXPORT_CHARSET,
        });
        async function* run(): AsyncGenerator<ExportEvent> {
          let exported = 0;
          let skipped = 0;
          try {
            for (let i = 0; i < ids.length; i += BATCH) {
              for (const e of await exportBatch(ctx, deid, ids.slice(i, i + BATCH))) {
                if (e.type === 'message') exported++;
                else skipped++;
                yield e;
              }
            }
          } catch (err) {
            await ctx.audit.record({
              ...entry,
              outcome: `failed: ${codeOf(err)} after ${exported} exported`,
            });
            ctx.logger.error({ err, correlationId: req.correlationId }, 'de-identified export failed');
            throw err;
          }
          await ctx.audit.record({ ...entry, outcome: `done: ${exported} exported, ${skipped} skipped` });
          ctx.logger.info(
            { operator: req.operator, correlationId: req.correlationId, exported, skipped },
            'de-identified export',
          );
          yield { type: 'summary', selected: ids.length, exported, skipped };
        }
        return { stream: run() };
      },
    },
  ];
}

interface ExportRequest {
  readonly filter: MessageFilter;
  readonly limit: number;
  readonly reason: string;
  readonly keepSegments: readonly string[];
}

/** The body, checked; a refusal names the field, never echoes a value. */
function readRequest(req: AdminRequest): ExportRequest {
  const body = (req.body ?? {}) as Record<string, unknown>;
  if (body.deidentify !== true) {
    throw new AdminError(
      400,
      'DEIDENTIFY_REQUIRED',
      'only de-identified export is supported: send deidentify: true',
    );
  }
  const reason = typeof body.reason === 'string' ? body.reason.trim() : '';
  if (!reason) {
    throw new AdminError(400, 'REASON_REQUIRED', 'an export needs a reason (it goes to the audit trail)');
  }
  if (reason.length > MAX_REASON) {
    throw new AdminError(400, 'BAD_REQUEST', `reason: at most ${MAX_REASON} characters`);
  }
  const q = new URLSearchParams();
  for (const name of FILTERS) {
    const v = body[name];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') throw new AdminError(400, 'BAD_REQUEST', `${name}: a string`);
    q.set(name, v);
  }
  const filter = filterOf(q);
  const limitValue = body.limit ?? EXPORT_DEFAULT_LIMIT;
  const limit = Number(limitValue);
  if (!Number.isInteger(limit) || limit < 1 || limit > EXPORT_MAX_LIMIT || typeof limitValue === 'boolean') {
    throw new AdminError(400, 'BAD_REQUEST', `limit: a whole number from 1 to ${EXPORT_MAX_LIMIT}`);
  }
  const keep = body.keepSegments ?? [];
  if (!Array.isArray(keep) || !keep.every((s) => typeof s === 'string' && /^Z[A-Z0-9]{2}$/i.test(s))) {
    throw new AdminError(400, 'BAD_REQUEST', 'keepSegments: Z-segment names (ZPD, ZXX)');
  }
  return { filter, limit, reason, keepSegments: keep.map((s: string) => s.toUpperCase()) };
}

/** The audit target: the filter as given (ids, names, codes and times only). */
function describe(r: ExportRequest): string {
  const f = r.filter as unknown as Record<string, unknown>;
  const parts = FILTERS.flatMap((k) => {
    const v = f[k];
    if (v === undefined) return [];
    return [`${k}=${v instanceof Date ? v.toISOString() : String(v)}`];
  });
  parts.push(`limit=${r.limit}`);
  if (r.keepSegments.length > 0) parts.push(`keep=${r.keepSegments.join(',')}`);
  return `deidentified ${parts.join(' ')}`;
}

/** The ids the filter selects (the newest `limit`, as `messages list` pages them), oldest first. */
async function select(search: MessageSearch, filter: MessageFilter, limit: number): Promise<string[]> {
  const ids: string[] = [];
  let beforeSeq: number | undefined;
  while (ids.length < limit) {
    const page = await search.list({
      ...filter,
      limit: Math.min(MAX_PAGE, limit - ids.length),
      ...(beforeSeq === undefined ? {} : { beforeSeq }),
    });
    for (const m of page.messages) ids.push(m.id);
    if (page.next === null) break;
    beforeSeq = page.next;
  }
  return ids.reverse();
}

async function exportBatch(
  ctx: Pick<AdminContext, 'messages' | 'archive' | 'channels'>,
  deid: Deidentifier,
  ids: readonly string[],
): Promise<ExportEvent[]> {
  const rows = await Promise.all(ids.map((id) => ctx.messages.get(id)));
  const found = rows.filter((m): m is StoredMessage => m !== undefined);
  const raws = await ctx.archive.readMany(found.map(archiveRefOf));
  const byId = new Map<string, ExportEvent>();
  found.forEach((m, i) => {
    byId.set(m.id, exportOne(ctx, deid, m, raws[i]));
  });
  // A row gone since the selection (pruned meanwhile) is skipped, in its place.
  return ids.map((id) => byId.get(id) ?? { type: 'skipped', messageId: id, code: 'NOT_FOUND' });
}

function exportOne(
  ctx: Pick<AdminContext, 'channels'>,
  deid: Deidentifier,
  m: StoredMessage,
  read: { raw: Buffer } | { error: unknown } | undefined,
): ExportEvent {
  if (!read || 'error' in read) {
    return { type: 'skipped', messageId: m.id, code: codeOf(read?.error) };
  }
  try {
    // As processing reads it: MSH-18, else the channel's charset (conversion-step.ts parseItem).
    const { text } = decodeHl7(read.raw, ctx.channels.get(m.channel)?.charset);
    return { type: 'message', messageId: m.id, text: deid.deidentify(text) };
  } catch (err) {
    return { type: 'skipped', messageId: m.id, code: codeOf(err) };
  }
}

/** An error's code for the trail and the stream: an engine or system code (ENOENT), never its text. */
function codeOf(err: unknown): string {
  if (err instanceof AdminError || isEngineError(err)) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? code : 'INTERNAL';
}
