import type { ChannelConfig } from '../channels/channel-config.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import {
  type BundleResult,
  bundleItem,
  type ConvertItem,
  type ConvertResult,
  convertItem,
} from './conversion-step.js';

/** Converts a processing step's messages: in this thread, or in worker threads (conversion-pool.ts). */
export interface MessageConverter {
  convert(items: readonly ConvertItem[]): Promise<ConvertResult[]>;
  /** The delivery step's Bundles (conversion-step.ts bundleItem). */
  bundles(items: readonly ConvertItem[]): Promise<BundleResult[]>;
  close(): Promise<void>;
}

/** In this thread: for tests, tools and HL7E_CONVERT_WORKERS=0. */
export class InlineConverter implements MessageConverter {
  readonly #channels: ReadonlyMap<string, ChannelConfig>;
  readonly #catalog: MappingCatalog;
  readonly #orderSecret: Uint8Array | undefined;

  constructor(
    channels: ReadonlyMap<string, ChannelConfig>,
    catalog: MappingCatalog,
    orderSecret?: Uint8Array,
  ) {
    this.#channels = channels;
    this.#catalog = catalog;
    this.#orderSecret = orderSecret;
  }

  async convert(items: readonly ConvertItem[]): Promise<ConvertResult[]> {
    return items.map((item) => convertItem(item, this.#channels, this.#catalog, this.#orderSecret));
  }

  async bundles(items: readonly ConvertItem[]): Promise<BundleResult[]> {
    return items.map((item) => bundleItem(item, this.#channels, this.#catalog));
  }

  async close(): Promise<void> {}
}
