import { type ReplayEvent, replay } from '../pipeline/replay.js';
import { ReplayRepo, type ReplaySelection } from '../store/replay-repo.js';
import type { AdminContext } from './admin-context.js';
import { AdminError, type AdminRoute } from './admin-server.js';
import { timeArg } from './request-args.js';

interface ReplayBody {
  ids?: string[];
  channel?: string;
  status?: 'failed' | 'held';
  since?: string;
  until?: string;
  destination?: string;
  type?: string;
  from?: 'raw' | 'mapped';
  dryRun?: boolean;
  reason?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * `POST /replay` (hl7e replay): answers with NDJSON — progress lines, previews on a dry run, a summary.
 * Audited when it starts (so a replay cut short is on record too) and when it ends, with its counts.
 */
export function replayRoutes(ctx: AdminContext): AdminRoute[] {
  const replays = new ReplayRepo(ctx.db);
  return [
    {
      method: 'POST',
      path: '/replay',
      permission: 'replay',
      handle: async (req) => {
        const body = (req.body ?? {}) as ReplayBody;
        const given = body.reason?.trim();
        if (!given) throw new AdminError(400, 'REASON_REQUIRED', 'a replay needs --reason');
        const reason: string = given;
        const from = body.from ?? 'raw';
        if (from !== 'raw' && from !== 'mapped')
          throw new AdminError(400, 'BAD_REQUEST', 'from must be raw or mapped');
        const selection = selectionOf(body);
        const dryRun = body.dryRun === true;
        // A preview shows content (the Bundle sent and the one that would be): only for those who may see it.
        const withPreviews = dryRun && from === 'raw' && ctx.roles.allows(req.operator, 'messages.reveal');
        const action = dryRun ? 'replay.preview' : 'replay';
        const target = describe(selection);
        await ctx.audit.record({ actor: req.operator, action, target, reason, outcome: 'started' });
        async function* run(): AsyncGenerator<ReplayEvent> {
          try {
            for await (const e of replay({ selection, from, dryRun }, { ...ctx, replays })) {
              if (e.type === 'preview' && !withPreviews) continue;
              if (e.type === 'summary') {
                const s = e;
                await ctx.audit.record({
                  actor: req.operator,
                  action,
                  target,
                  reason,
                  outcome: `done: ${s.replayedDeliveries} deliveries, ${s.reprocessed} reprocessed, skipped ${s.skipped.inFlight} in flight, ${s.skipped.alreadyDelivered} delivered, ${s.skipped.notReplayable} not replayable`,
                });
              }
              yield e;
            }
          } catch (err) {
            const code = (err as { code?: string }).code ?? 'INTERNAL';
            await ctx.audit.record({
              actor: req.operator,
              action,
              target,
              reason,
              outcome: `failed: ${code}`,
            });
            ctx.logger.error({ err, correlationId: req.correlationId }, 'replay failed');
            throw err;
          }
        }
        return { stream: run() };
      },
    },
  ];
}

function selectionOf(b: ReplayBody): ReplaySelection {
  if (b.ids && b.ids.length > 0) {
    const bad = b.ids.find((id) => !UUID.test(id));
    if (bad !== undefined) throw new AdminError(400, 'BAD_REQUEST', 'message ids are UUIDs');
    return { ids: b.ids, ...(b.destination ? { destination: b.destination } : {}) };
  }
  if (!b.channel) throw new AdminError(400, 'BAD_REQUEST', 'name message ids, or --channel with --status');
  if (b.status !== 'failed' && b.status !== 'held')
    throw new AdminError(400, 'BAD_REQUEST', '--status must be failed or held');
  const since = timeArg(b.since, 'since');
  const until = timeArg(b.until, 'until');
  return {
    channel: b.channel,
    status: b.status,
    ...(since ? { since } : {}),
    ...(until ? { until } : {}),
    ...(b.destination ? { destination: b.destination } : {}),
    ...(b.type ? { type: b.type } : {}),
  };
}

/** The audit target: ids (the first 20 and a count) or the filter — never content. */
function describe(s: ReplaySelection): string {
  if ('ids' in s) {
    const shown = s.ids.slice(0, 20).join(',');
    return `${s.ids.length} message(s): ${shown}${s.ids.length > 20 ? ',…' : ''}${s.destination ? ` to ${s.destination}` : ''}`;
  }
  const parts = [`channel=${s.channel}`, `status=${s.status}`];
  if (s.since) parts.push(`since=${s.since.toISOString()}`);
  if (s.until) parts.push(`until=${s.until.toISOString()}`);
  if (s.destination) parts.push(`destination=${s.destination}`);
  if (s.type) parts.push(`type=${s.type}`);
  return parts.join(' ');
}
