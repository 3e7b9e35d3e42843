import {
  CHANNEL_DEFAULTS,
  type ChannelConfig,
  type DestinationInput,
  destinationWithDefaults,
} from '../../src/channels/channel-config.js';

/** A channel as the loader would produce it (defaults applied), for tests that need no channel file. */
export function testChannel(name: string, destinations: readonly DestinationInput[] = []): ChannelConfig {
  return {
    name,
    enabled: true,
    source: { mllp: { host: '127.0.0.1', port: 0, maxMessageBytes: 1_048_576, idleTimeoutMs: 60_000 } },
    ack: CHANNEL_DEFAULTS.ack,
    charset: 'UNICODE UTF-8',
    duplicates: CHANNEL_DEFAULTS.duplicates,
    ordering: CHANNEL_DEFAULTS.ordering,
    validate: CHANNEL_DEFAULTS.validate,
    timezone: CHANNEL_DEFAULTS.timezone,
    destinations: destinations.map(destinationWithDefaults),
    file: `${name}.yaml`,
  };
}
