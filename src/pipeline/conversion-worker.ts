/**
 * A conversion worker thread (conversion-pool.ts starts it): parse, filter, map and validate off the
 * event loop that answers MLLP, so a processing batch never holds an ACK back. It loads its own mapping
 * catalog from the same folders as the daemon and answers each batch with plain-data results.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ChannelConfig } from '../channels/channel-config.js';
import { MappingCatalog } from '../mapping/mapping-catalog.js';
import { bundleItem, type ConvertItem, convertItem } from './conversion-step.js';

export interface ConversionWorkerData {
  readonly mappingsDir: string;
  readonly channels: readonly ChannelConfig[];
  /** The ordering-key secret (ordering.ts deliveryOrderKey). */
  readonly orderSecret?: Uint8Array;
}

export interface ConversionRequest {
  readonly id: number;
  /** convert: processing outcomes; bundle: the delivery step's Bundles. */
  readonly kind: 'convert' | 'bundle';
  readonly items: readonly ConvertItem[];
}

const port = parentPort;
if (port) {
  const data = workerData as ConversionWorkerData;
  const channels = new Map(data.channels.map((c) => [c.name, c]));
  const catalog = MappingCatalog.forSite(data.mappingsDir);
  // Compile every message map now: the first message should not pay for it.
  catalog.checkAll();
  port.on('message', (req: ConversionRequest) => {
    const results =
      req.kind === 'bundle'
        ? req.items.map((item) => bundleItem(item, channels, catalog))
        : req.items.map((item) => convertItem(item, channels, catalog, data.orderSecret));
    port.postMessage({ id: req.id, results });
  });
  port.postMessage({ ready: true });
}
