import type { AdminContext } from './admin-context.js';
import type { AdminRoute } from './admin-server.js';

export interface KeyRotation {
  readonly masterKeyId: string;
  readonly rewrapped: number;
  readonly total: number;
}

/**
 * `POST /keys/rotate` (hl7e keys rotate while the engine runs): a new master key version, then every
 * data key re-wrapped under it by the engine's own keyring — the embedded store belongs to the running
 * engine, so the CLI cannot do this itself. Audited with the new master key id and the counts.
 */
export function keyRoutes(ctx: AdminContext): AdminRoute[] {
  return [
    {
      method: 'POST',
      path: '/keys/rotate',
      permission: 'keys.rotate',
      handle: async (req) => {
        const body = (req.body ?? {}) as { rewrap?: boolean; reason?: string };
        const reason = body.reason?.trim() || null;
        try {
          const { masterKeyId } = await ctx.rotateMasterKey();
          const { rewrapped, total } =
            body.rewrap === false ? { rewrapped: 0, total: 0 } : await ctx.keys.rewrapAll();
          const result: KeyRotation = { masterKeyId, rewrapped, total };
          await ctx.audit.record({
            actor: req.operator,
            action: 'keys.rotate',
            target: masterKeyId,
            reason,
            outcome: `rotated; ${rewrapped} of ${total} data keys re-wrapped`,
          });
          return { json: result };
        } catch (err) {
          const code = (err as { code?: string }).code ?? 'INTERNAL';
          await ctx.audit.record({
            actor: req.operator,
            action: 'keys.rotate',
            target: null,
            reason,
            outcome: `failed: ${code}`,
          });
          throw err;
        }
      },
    },
  ];
}
