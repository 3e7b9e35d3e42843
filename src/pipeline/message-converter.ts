import type { ChannelConfig } from '../channels/channel-config.js';
import type { MappingCatalog } from '../mapping/mapping-catalog.js';
import { type ConvertItem, type ConvertResult, convertItem } from './conversion-step.js';

/** Converts a processing step's messages: in this thread, or in worker threads (conversion-pool.ts). */
export interface MessageConverter {
  convert(items: readonly ConvertItem[]): Promise<ConvertResult[]>;
  close(): Promise<void>;
}

/** In this thread: for tests, tools and HL7E_CONVERT_WORKERS=0. */
export class InlineConverter implements MessageConverter {
  readonly #channels: ReadonlyMap<string, ChannelConfig>;
  readonly #catalog: MappingCatalog;

  constructor(channels: ReadonlyMap<string, ChannelConfig>, catalog: MappingCatalog) {
    this.#channels = channels;
    this.#catalog = catalog;
  }

  async convert(items: readonly ConvertItem[]): Promise<ConvertResult[]> {
    return items.map((item) => convertItem(item, this.#channels, this.#catalog));
  }

  async close(): Promise<void> {}
}
