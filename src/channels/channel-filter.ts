import { compileCondition, messageReader } from '../hl7/condition.js';
import type { Hl7Message } from '../hl7/message.js';
import type { ChannelConfig } from './channel-config.js';

export type MessageFilter = (msg: Hl7Message) => boolean;

const passAll: MessageFilter = () => true;
// Keyed by the frozen channel object: a reloaded channel is a new object and compiles afresh.
const cache = new WeakMap<ChannelConfig, MessageFilter>();

/**
 * The channel's `filter` as a predicate over a parsed message, compiled once per channel (STYLE habit 3).
 * False means: keep the message stored and ACKed, mark it filtered, do not process it. The loader has
 * already compiled the filter once to report problems, so this does not throw for a loaded channel.
 */
export function channelFilter(channel: ChannelConfig): MessageFilter {
  let f = cache.get(channel);
  if (f === undefined) {
    if (channel.filter === undefined) f = passAll;
    else {
      const holds = compileCondition(channel.filter);
      f = (msg) => holds(messageReader(msg));
    }
    cache.set(channel, f);
  }
  return f;
}
