import type { Logger } from '../observability/logger.js';
import type { MessageSink, ReceivedMessage } from './intake.js';

/**
 * The sink of the foundation release: it records that a message was received (ids, type and size only —
 * never content) and lets intake acknowledge it. It does not store the message: durable storage (the
 * encrypted archive and the store row committed before the ACK, DESIGN rule 1) is the intake issue's
 * sink, which replaces this one in the daemon's wiring.
 */
export class ReceiveLog implements MessageSink {
  #count = 0;
  constructor(private readonly logger: Logger) {}

  get count(): number {
    return this.#count;
  }

  async accept(m: ReceivedMessage): Promise<void> {
    this.#count++;
    this.logger.info(
      {
        channel: m.channel,
        connection: m.connectionId,
        type: `${m.header.messageCode}^${m.header.triggerEvent}`,
        controlId: m.header.controlId,
        bytes: m.raw.length,
        segments: m.message.segmentCount,
        charset: m.charset.encoding,
      },
      'message received',
    );
  }
}
