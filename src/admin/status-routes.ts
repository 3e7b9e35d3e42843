import type { AdminContext } from './admin-context.js';
import type { AdminRoute } from './admin-server.js';
import { statusReport } from './status-report.js';

/**
 * `GET /status` (hl7e status); open, for probes and scrapers (no PHI): `GET /healthz` (the process
 * answers: liveness), `GET /readyz` (store, queue and every listener ready: readiness), `GET /metrics`.
 */
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
    {
      method: 'GET',
      path: '/readyz',
      open: true,
      handle: async () => {
        const check = async (fn: () => Promise<unknown>) =>
          fn().then(
            () => true,
            () => false,
          );
        const [store, queue] = await Promise.all([
          check(() => ctx.db.query('SELECT 1')),
          check(() => ctx.state.processDepth()),
        ]);
        const listeners = ctx.state.listeners().every((l) => l.up);
        const ready = store && queue && listeners;
        return { status: ready ? 200 : 503, json: { ready, store, queue, listeners } };
      },
    },
    {
      method: 'GET',
      path: '/metrics',
      open: true,
      handle: async () => {
        const { contentType, body } = await ctx.metrics.text();
        return { text: body, contentType };
      },
    },
  ];
}
