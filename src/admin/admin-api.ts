import type { AdminContext } from './admin-context.js';
import { AdminServer } from './admin-server.js';
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
  return server;
}
