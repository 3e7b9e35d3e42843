import { ArchiveUsageRepo } from '../store/archive-usage-repo.js';
import type { AdminContext } from './admin-context.js';
import { AdminError, type AdminRoute } from './admin-server.js';
import { pruneArchive, pruneRequestProblem } from './archive-prune.js';

/** Body of `POST /archive/prune`. */
export interface PruneBody {
  readonly olderThanMs: number;
  readonly dryRun?: boolean;
  readonly reason?: string;
  readonly channel?: string;
}

/** `POST /archive/prune` (hl7e archive prune): the engine's own archive directory and store. */
export function archiveRoutes(ctx: AdminContext): AdminRoute[] {
  const usage = new ArchiveUsageRepo(ctx.db);
  return [
    {
      method: 'POST',
      path: '/archive/prune',
      permission: 'archive.prune',
      handle: async ({ operator, body }) => {
        const b = (body ?? {}) as Partial<PruneBody>;
        const problem = pruneRequestProblem(b);
        if (problem) throw new AdminError(400, 'BAD_REQUEST', problem);
        // Not checked against the configured channels: a channel since removed may have old files.
        if (
          b.channel !== undefined &&
          (typeof b.channel !== 'string' || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(b.channel))
        ) {
          throw new AdminError(400, 'BAD_REQUEST', 'channel must be a channel name');
        }
        const reason = typeof b.reason === 'string' && b.reason.trim() ? b.reason.trim() : null;
        const report = await pruneArchive(
          { archiveDir: ctx.archive.dir, usage, audit: ctx.audit },
          {
            operator,
            olderThanMs: b.olderThanMs as number,
            dryRun: b.dryRun === true,
            reason,
            ...(b.channel ? { channel: b.channel } : {}),
          },
        );
        return { json: report };
      },
    },
  ];
}
