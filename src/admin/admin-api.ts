import type { AdminContext } from './admin-context.js';
import { AdminServer } from './admin-server.js';
import { archiveRoutes } from './archive-routes.js';
import { auditRoutes } from './audit-routes.js';
import { exportRoutes } from './export-routes.js';
import { keyRoutes } from './key-routes.js';
import { messageRoutes } from './message-routes.js';
import { replayRoutes } from './replay-routes.js';
import type { RoleMap } from './roles.js';
import { statusRoutes } from './status-routes.js';

/** Builds the admin API with every route group; daemon.ts starts it last and stops it first. */
export function createAdminApi(
  ctx: AdminContext,
  opts: { host: string; port: number; token: string; roles: RoleMap },
): AdminServer {
  const server = new AdminServer({
    ...opts,
    logger: ctx.logger,
    // A refusal is audited like the access it refused (HIPAA audit controls): who, what, when.
    onDenied: async (operator, permission, target) => {
      await ctx.audit.record({
        actor: operator,
        action: 'access.denied',
        target: `${permission} ${target}`,
        reason: null,
        outcome: 'denied',
      });
    },
  });
  server.add(...statusRoutes(ctx));
  server.add(...messageRoutes(ctx));
  server.add(...auditRoutes(ctx), ...archiveRoutes(ctx));
  server.add(...replayRoutes(ctx));
  server.add(...keyRoutes(ctx));
  server.add(...exportRoutes(ctx));
  return server;
}
