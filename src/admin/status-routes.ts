import type { AdminContext } from './admin-context.js';
import type { AdminRoute } from './admin-server.js';
import { statusReport } from './status-report.js';

/** `GET /status` (hl7e status) and `GET /healthz` (the process answers: for a liveness probe). */
export function statusRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'GET',
      path: '/status',
      permission: 'status',
      handle: async () => ({ json: await statusReport(ctx.state, ctx.messages, ctx.deliveries) }),
    },
    {
      method: 'GET',
      path: '/healthz',
      open: true,
      handle: async () => ({ json: { ok: true } }),
    },
  ];
}
