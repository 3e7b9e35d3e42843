import type { AuditRow } from '../store/audit-repo.js';
import { AuditRepo } from '../store/audit-repo.js';
import type { AdminContext } from './admin-context.js';
import type { AdminRoute } from './admin-server.js';
import { intArg, timeArg } from './request-args.js';

/** One audit row as the API shows it; hashes shortened (the full head hash comes from verify). */
export interface AuditEntryView {
  readonly seq: number;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly target: string | null;
  readonly reason: string | null;
  readonly outcome: string;
  readonly prevHash: string | null;
  readonly hash: string;
}

export interface AuditListAnswer {
  readonly entries: AuditEntryView[];
  /** Pass as `after` for the next page; null when this page is the last. */
  readonly next: number | null;
}

export interface AuditVerifyAnswer {
  readonly checked: number;
  readonly ok: boolean;
  readonly firstBreak: { seq: number; problem: 'hash' | 'link' } | null;
  /** The last row of the intact chain (all of it when ok), full hash: compare with a copy kept elsewhere. */
  readonly head: { seq: number; hash: string } | null;
}

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Hex digits of each hash in a listing: enough to tell rows apart and compare by eye. */
const SHORT_HASH = 16;

/**
 * `GET /audit` (hl7e audit list) and `POST /audit/verify` (hl7e audit verify). Listing the trail is not
 * itself recorded (it shows no message content); a verification is, with what it found.
 */
export function auditRoutes(ctx: AdminContext): AdminRoute[] {
  const repo = new AuditRepo(ctx.db);
  return [
    {
      method: 'GET',
      path: '/audit',
      permission: 'audit.list',
      handle: async ({ query }) => {
        const limit = intArg(query.get('limit'), 'limit', DEFAULT_LIMIT, 1, MAX_LIMIT);
        const since = timeArg(query.get('since'), 'since');
        const until = timeArg(query.get('until'), 'until');
        const rows = await repo.list({
          afterSeq: intArg(query.get('after'), 'after', 0, 0, Number.MAX_SAFE_INTEGER),
          ...(since ? { since } : {}),
          ...(until ? { until } : {}),
          ...textParam(query, 'operator', 'actor'),
          ...textParam(query, 'action', 'action'),
          limit,
        });
        const answer: AuditListAnswer = {
          entries: rows.map(view),
          next: rows.length === limit ? (rows.at(-1) as AuditRow).seq : null,
        };
        return { json: answer };
      },
    },
    {
      method: 'POST',
      path: '/audit/verify',
      permission: 'audit.verify',
      handle: async ({ operator, body }) => {
        const { checked, firstBreak, head } = await ctx.audit.verify();
        const reason = (body as { reason?: unknown } | undefined)?.reason;
        await ctx.audit.record({
          actor: operator,
          action: 'audit.verify',
          target: `${checked} entries`,
          reason: typeof reason === 'string' && reason.trim() ? reason.trim() : null,
          outcome: firstBreak ? `broken at seq ${firstBreak.seq} (${firstBreak.problem})` : 'ok',
        });
        const answer: AuditVerifyAnswer = {
          checked,
          ok: firstBreak === null,
          firstBreak,
          head: head ? { seq: head.seq, hash: head.hash.toString('hex') } : null,
        };
        return { json: answer };
      },
    },
  ];
}

function view(r: AuditRow): AuditEntryView {
  return {
    seq: r.seq,
    at: r.at.toISOString(),
    actor: r.actor,
    action: r.action,
    target: r.target,
    reason: r.reason,
    outcome: r.outcome,
    prevHash: r.prevHash ? r.prevHash.toString('hex').slice(0, SHORT_HASH) : null,
    hash: r.hash.toString('hex').slice(0, SHORT_HASH),
  };
}

function textParam<K extends string>(q: URLSearchParams, name: string, key: K): { [k in K]?: string } {
  const v = q.get(name)?.trim();
  return (v ? { [key]: v } : {}) as { [k in K]?: string };
}
