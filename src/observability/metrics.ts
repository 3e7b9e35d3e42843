import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Breaker state as a number, for a gauge: alert on `> 0`. */
const BREAKER_VALUE = { closed: 0, 'half-open': 1, open: 2 } as const;

export interface MetricsSources {
  /** Jobs per queue kind and state (queue depth). */
  queueDepth(): Promise<{ queue: string; state: string; jobs: number }[]>;
  breakers(): { channel: string; destination: string; state: keyof typeof BREAKER_VALUE }[];
}

/**
 * The engine's Prometheus metrics (prom-client), served at the admin API's /metrics. Labels are channel
 * and destination names, outcomes and codes from the configuration and the engine's own vocabulary —
 * never anything from a message (DESIGN rule 3: no PHI in metric labels).
 */
export class EngineMetrics {
  readonly registry = new Registry();
  readonly received: Counter<'channel'>;
  readonly acks: Counter<'channel' | 'outcome'>;
  readonly duplicates: Counter<'channel'>;
  readonly processed: Counter<'channel' | 'outcome'>;
  readonly deliveryAttempts: Counter<'channel' | 'destination' | 'outcome'>;
  readonly ackLatency: Histogram<'channel'>;
  readonly endToEnd: Histogram<'channel' | 'destination'>;
  readonly archiveRecords: Counter;

  constructor(sources?: MetricsSources) {
    const registers = [this.registry];
    this.received = new Counter({
      name: 'hl7e_messages_received_total',
      help: 'HL7 messages (frames) received, per channel',
      labelNames: ['channel'],
      registers,
    });
    this.acks = new Counter({
      name: 'hl7e_acks_total',
      help: 'ACKs sent: accept (AA/CA), error (AE/CE), reject (AR/CR)',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    this.duplicates = new Counter({
      name: 'hl7e_duplicates_total',
      help: 'messages received again (same sender, control id and content) and ACKed with their first outcome',
      labelNames: ['channel'],
      registers,
    });
    this.processed = new Counter({
      name: 'hl7e_messages_processed_total',
      help: 'messages through the processing step: processed or failed',
      labelNames: ['channel', 'outcome'],
      registers,
    });
    this.deliveryAttempts = new Counter({
      name: 'hl7e_delivery_attempts_total',
      help: 'delivery attempts by outcome: delivered, retry, rejected, failed (dead letter), held',
      labelNames: ['channel', 'destination', 'outcome'],
      registers,
    });
    this.ackLatency = new Histogram({
      name: 'hl7e_ack_latency_seconds',
      help: 'time from a complete frame to its ACK (the commit included)',
      labelNames: ['channel'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.endToEnd = new Histogram({
      name: 'hl7e_end_to_end_seconds',
      help: 'time from receipt to successful delivery',
      labelNames: ['channel', 'destination'],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 3600],
      registers,
    });
    this.archiveRecords = new Counter({
      name: 'hl7e_archive_records_total',
      help: 'raw messages written to the encrypted archive',
      registers,
    });
    if (!sources) return;
    new Gauge({
      name: 'hl7e_queue_jobs',
      help: 'jobs in the work queues by queue (process, deliver:<channel>/<destination>) and state',
      labelNames: ['queue', 'state'],
      registers,
      async collect() {
        this.reset();
        for (const d of await sources.queueDepth()) this.set({ queue: d.queue, state: d.state }, d.jobs);
      },
    });
    new Gauge({
      name: 'hl7e_circuit_breaker_state',
      help: 'per destination: 0 closed, 1 half-open, 2 open',
      labelNames: ['channel', 'destination'],
      registers,
      collect() {
        this.reset();
        for (const b of sources.breakers()) {
          this.set({ channel: b.channel, destination: b.destination }, BREAKER_VALUE[b.state]);
        }
      },
    });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
