import { readAdminFile } from '../../admin/admin-file.js';
import type { KeyRotation } from '../../admin/key-routes.js';
import type { EngineEnv } from '../../config/env.js';
import { openKeyProvider } from '../../daemon/key-provider-factory.js';
import { AdminClient } from '../admin-client.js';
import { CliError, EXIT } from '../cli-error.js';
import { withOfflineEngine } from '../offline-engine.js';

/**
 * `hl7e keys rotate`: a new master key version (local key file: a new key appended and made current;
 * AWS KMS: RotateKeyOnDemand — KMS keeps the old material), then every stored data key is re-wrapped
 * under it. Records are never re-encrypted: they stay bound to their data keys, which stay readable.
 * A running engine notices the new master key within seconds and starts a new data key under it.
 */
export async function keysRotateAction(
  env: EngineEnv,
  opts: { rewrap: boolean; reason?: string },
  out: (line: string) => void,
): Promise<number> {
  const where = env.kmsKeyId ? 'AWS KMS' : `local key file ${env.masterKeyFile}`;
  // A running engine owns the store (always so with the embedded one): it rotates and re-wraps itself,
  // with the operator's role checked and the rotation audited.
  if (readAdminFile(env.dataDir)) {
    try {
      const r = await AdminClient.connect(env.dataDir).post<KeyRotation>('/keys/rotate', {
        rewrap: opts.rewrap,
        ...(opts.reason ? { reason: opts.reason } : {}),
      });
      out(`master key rotated: ${r.masterKeyId}  (${where}, by the running engine)`);
      out(
        opts.rewrap
          ? `data keys re-wrapped: ${r.rewrapped} of ${r.total}`
          : 'data keys not re-wrapped (--no-rewrap): they stay readable under the previous master key version',
      );
      return EXIT.ok;
    } catch (err) {
      // A stale admin.json (an engine that crashed): rotate without it.
      if (!(err instanceof CliError && err.exitCode === EXIT.unreachable)) throw err;
    }
  }
  const provider = await openKeyProvider(env);
  let masterKeyId: string;
  try {
    ({ masterKeyId } = await provider.rotateMasterKey());
  } finally {
    await provider.close();
  }
  out(`master key rotated: ${masterKeyId}  (${where})`);
  if (opts.rewrap) {
    const { rewrapped, total } = await withOfflineEngine(env, ({ keyring }) => keyring.rewrapAll());
    out(`data keys re-wrapped: ${rewrapped} of ${total}`);
  } else {
    out('data keys not re-wrapped (--no-rewrap): they stay readable under the previous master key version');
  }
  out('a running engine switches to a new data key within seconds; everything written before stays readable');
  return EXIT.ok;
}
