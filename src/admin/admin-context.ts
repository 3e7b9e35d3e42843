import type { KeyRing } from '../archive/keyring.js';
import type { RawArchive } from '../archive/raw-archive.js';
import type { ChannelConfig } from '../channels/channel-config.js';
import type { AuditLog } from '../observability/audit-log.js';
import type { Logger } from '../observability/logger.js';
import type { EngineMetrics } from '../observability/metrics.js';
import type { MessageConverter } from '../pipeline/message-converter.js';
import type { Db } from '../store/db.js';
import type { DeliveryRef, DeliveryRepo } from '../store/delivery-repo.js';
import type { MessageRepo } from '../store/message-repo.js';
import type { RoleMap } from './roles.js';
import type { EngineState } from './status-report.js';

/**
 * What the admin routes work with: the daemon's own modules (DESIGN: admin/ must not bypass the store's or
 * pipeline's functions), handed over by daemon.ts.
 */
export interface AdminContext {
  readonly state: EngineState;
  readonly db: Db;
  readonly messages: MessageRepo;
  readonly deliveries: DeliveryRepo;
  readonly audit: AuditLog;
  readonly keys: KeyRing;
  readonly archive: RawArchive;
  readonly converter: MessageConverter;
  readonly channels: ReadonlyMap<string, ChannelConfig>;
  /** Enqueues deliveries made pending again (WorkQueues.enqueueDelivery). */
  enqueueDeliveries(refs: readonly DeliveryRef[]): Promise<unknown>;
  /** Wakes processing of messages made `received` again (WorkQueues.enqueueProcess). */
  enqueueProcessing(items: readonly { id: string; partition: number }[]): Promise<unknown>;
  /** A new master key version at the key provider (KeyProvider.rotateMasterKey). */
  rotateMasterKey(): Promise<{ masterKeyId: string }>;
  /** For routes that need a second permission (a replay preview reveals content). */
  readonly roles: RoleMap;
  readonly metrics: EngineMetrics;
  readonly logger: Logger;
}
