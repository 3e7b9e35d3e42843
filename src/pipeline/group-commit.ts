import { createHash } from 'node:crypto';
import type { RawArchive } from '../archive/raw-archive.js';
import { EngineError, ERRORS, type ErrorCode, isEngineError } from '../errors.js';
import { newMessageId } from '../store/message-id.js';
import type { MessageRepo, NewMessage, PriorMessage } from '../store/message-repo.js';
import type { ReceivedMessage, Stored, Verdict } from './message-sink.js';

export interface DuplicatePolicyMs {
  readonly windowMs: number;
  readonly onCollision: 'process' | 'reject';
}

export interface GroupCommitOptions {
  repo: MessageRepo;
  archive: RawArchive;
  duplicatePolicy(channel: string): DuplicatePolicyMs;
  maxBatch: number;
  /** Waiting messages at which the sockets should stop being read (onPressure(true)). */
  highWater: number;
  /** Waiting messages past which new ones are answered AE/CE at once. */
  maxPending: number;
  commitTimeoutMs: number;
  /** Accepted messages now durable: hand them to the queue (after the ACK; the reconciler backs it up). */
  onCommitted(messages: readonly { id: string; partition: number; raw: Buffer }[]): void;
  onPressure(high: boolean): void;
  onBatch?(stats: { size: number; stored: number; duplicates: number; ms: number }): void;
  onFailure?(err: unknown, size: number): void;
}

interface Item {
  readonly m: ReceivedMessage;
  readonly verdict: Verdict;
  readonly sha256: Buffer;
  readonly since: number;
  settled: boolean;
  resolve(s: Stored): void;
  reject(e: EngineError): void;
}

/**
 * DESIGN rule 1 made fast: messages arriving together are stored together. Each batch is one archive
 * write + fdatasync per file and one INSERT, and every message in it is acknowledged only after both.
 * While a batch commits the next one gathers, so at low load a message commits alone (lowest latency)
 * and under load batches grow (highest throughput) with no timer to tune.
 */
export class GroupCommit {
  readonly #o: GroupCommitOptions;
  #waiting: Item[] = [];
  #inFlight: Item[] = [];
  #draining = false;
  #high = false;
  #closed = false;
  #idle: Promise<void> = Promise.resolve();
  #markIdle: () => void = () => {};
  readonly #sweeper: NodeJS.Timeout;

  constructor(opts: GroupCommitOptions) {
    this.#o = opts;
    this.#sweeper = setInterval(() => this.#sweep(), Math.min(250, opts.commitTimeoutMs / 4));
    this.#sweeper.unref();
  }

  /** Messages waiting for or inside a commit. */
  get backlog(): number {
    return this.#waiting.length + this.#inFlight.length;
  }

  /** Resolves once the message is durable; rejects with a retryable EngineError (→ AE/CE) if not. */
  store(m: ReceivedMessage, verdict: Verdict): Promise<Stored> {
    if (this.#closed) return Promise.reject(new EngineError('INTAKE_UNAVAILABLE'));
    if (this.backlog >= this.#o.maxPending) return Promise.reject(new EngineError('INTAKE_OVERLOADED'));
    return new Promise<Stored>((resolve, reject) => {
      this.#waiting.push({
        m,
        verdict,
        sha256: createHash('sha256').update(m.raw).digest(),
        since: Date.now(),
        settled: false,
        resolve,
        reject,
      });
      this.#pressure();
      if (!this.#draining) {
        this.#draining = true;
        this.#idle = new Promise((r) => {
          this.#markIdle = r;
        });
        // setImmediate: frames read in the same I/O turn join the first batch.
        setImmediate(() => void this.#drain());
      }
    });
  }

  /** Stops taking messages and waits for every batch in hand to finish. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#idle;
    clearInterval(this.#sweeper);
  }

  async #drain(): Promise<void> {
    while (this.#waiting.length > 0) {
      this.#inFlight = this.#waiting.splice(0, this.#o.maxBatch);
      const started = performance.now();
      try {
        const stats = await this.#commit(this.#inFlight);
        this.#o.onBatch?.({ ...stats, size: this.#inFlight.length, ms: performance.now() - started });
      } catch (err) {
        this.#o.onFailure?.(err, this.#inFlight.length);
        const error = storageError(err);
        for (const item of this.#inFlight) {
          // A reject is answered as a reject whether or not it could be stored.
          if (item.verdict.outcome === 'reject') settle(item, { messageId: undefined, ...verdictOf(item) });
          else fail(item, error);
        }
      }
      this.#inFlight = [];
      this.#pressure();
    }
    this.#draining = false;
    this.#markIdle();
  }

  async #commit(batch: readonly Item[]): Promise<{ stored: number; duplicates: number }> {
    const prior = await this.#o.repo.findPrior(
      batch.map((it) => ({
        channel: it.m.channel,
        sender: senderOf(it.m),
        controlId: it.m.header.controlId,
        since: new Date(it.m.receivedAt.getTime() - this.#o.duplicatePolicy(it.m.channel).windowMs),
      })),
    );
    const earlier = new Map<string, PriorMessage[]>();
    for (const p of prior) push(earlier, keyOf(p.channel, p.sender, p.control_id), p);

    const fresh: {
      item: Item;
      row: Omit<NewMessage, 'dataKeyId' | 'archiveFile' | 'archiveOffset' | 'archiveLength'>;
      outcome: Stored;
    }[] = [];
    const inBatch = new Map<string, { item: Item; id: string; outcome: Stored }[]>();
    const afterCommit: { item: Item; of: () => Stored }[] = [];
    const duplicateIds: string[] = [];

    for (const item of batch) {
      const key = keyOf(item.m.channel, senderOf(item.m), item.m.header.controlId);
      const seen = earlier.get(key) ?? [];
      const same = seen.find((p) => p.content_sha256.equals(item.sha256));
      if (same) {
        duplicateIds.push(same.id);
        settle(item, { ...priorOutcome(same), duplicateOf: same.id });
        continue;
      }
      const mates = inBatch.get(key) ?? [];
      const twin = mates.find((x) => x.item.sha256.equals(item.sha256));
      if (twin) {
        afterCommit.push({ item, of: () => ({ ...twin.outcome, duplicateOf: twin.id }) });
        continue;
      }
      const collisionOf = seen[0]?.id ?? mates[0]?.id ?? null;
      let verdict: Pick<Verdict, 'outcome' | 'error' | 'ackCode'> = item.verdict;
      if (
        collisionOf &&
        item.verdict.outcome === 'accept' &&
        this.#o.duplicatePolicy(item.m.channel).onCollision === 'reject'
      ) {
        verdict = {
          outcome: 'reject',
          error: new EngineError(
            'INTAKE_DUPLICATE_COLLISION',
            {},
            { segment: 'MSH', segmentIndex: 1, field: 10 },
          ),
          ackCode: `${item.verdict.ackCode[0]}R`,
        };
      }
      const id = newMessageId(item.m.receivedAt.getTime());
      const outcome: Stored = {
        messageId: id,
        outcome: verdict.outcome,
        ...(verdict.error ? { error: verdict.error } : {}),
        ...(collisionOf ? { collisionOf } : {}),
      };
      fresh.push({
        item,
        outcome,
        row: {
          id,
          channel: item.m.channel,
          sender: senderOf(item.m),
          controlId: item.m.header.controlId,
          messageType: [item.m.header.messageCode, item.m.header.triggerEvent].filter(Boolean).join('^'),
          version: item.m.header.version,
          receivedAt: item.m.receivedAt,
          connectionId: item.m.connectionId,
          status: verdict.outcome === 'accept' ? 'received' : 'rejected',
          ackCode: verdict.ackCode,
          errorCode: verdict.error?.code ?? null,
          partition: item.verdict.partition,
          collisionOf,
          sha256: item.sha256,
          byteLength: item.m.raw.length,
        },
      });
      push(inBatch, key, { item, id, outcome });
    }

    if (fresh.length > 0) {
      const written = await this.#o.archive.write(
        fresh.map((f) => ({
          channel: f.row.channel,
          messageId: f.row.id,
          receivedAt: f.row.receivedAt,
          raw: f.item.m.raw,
        })),
      );
      await this.#o.repo.insertMany(
        fresh.map((f, i) => {
          const w = written[i] as (typeof written)[number];
          return {
            ...f.row,
            dataKeyId: w.keyId,
            archiveFile: w.location.file,
            archiveOffset: w.location.offset,
            archiveLength: w.location.length,
          };
        }),
      );
    }
    for (const f of fresh) settle(f.item, f.outcome);
    for (const d of afterCommit) {
      const s = d.of();
      if (s.messageId) duplicateIds.push(s.messageId);
      settle(d.item, s);
    }
    const accepted = fresh.filter((f) => f.row.status === 'received');
    if (accepted.length > 0)
      this.#o.onCommitted(
        accepted.map((f) => ({ id: f.row.id, partition: f.row.partition, raw: f.item.m.raw })),
      );
    if (duplicateIds.length > 0) {
      // Informational counters: a failure here must not turn committed messages into NAKs.
      await this.#o.repo.noteDuplicates(duplicateIds, new Date()).catch((err) => this.#o.onFailure?.(err, 0));
    }
    return { stored: fresh.length, duplicates: duplicateIds.length };
  }

  /** Messages that waited past the commit timeout are answered AE/CE; a late commit is harmless —
   * the sender's resend is then a duplicate and is ACKed with the stored outcome. */
  #sweep(): void {
    const limit = Date.now() - this.#o.commitTimeoutMs;
    const timedOut = (it: Item) => !it.settled && it.since < limit;
    if (!this.#waiting.some(timedOut) && !this.#inFlight.some(timedOut)) return;
    const error = new EngineError('INTAKE_UNAVAILABLE');
    for (const it of this.#inFlight) if (timedOut(it)) fail(it, error);
    this.#waiting = this.#waiting.filter((it) => {
      if (!timedOut(it)) return true;
      fail(it, error);
      return false;
    });
    this.#pressure();
  }

  #pressure(): void {
    const n = this.backlog;
    if (!this.#high && n >= this.#o.highWater) {
      this.#high = true;
      this.#o.onPressure(true);
    } else if (this.#high && n <= this.#o.highWater / 2) {
      this.#high = false;
      this.#o.onPressure(false);
    }
  }
}

/** MSH-3 and MSH-4 identify the sender for duplicate detection. */
export function senderOf(m: ReceivedMessage): string {
  return `${m.header.sendingApplication}|${m.header.sendingFacility}`;
}

function keyOf(channel: string, sender: string, controlId: string): string {
  return `${channel}\u0000${sender}\u0000${controlId}`;
}

function push<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

function verdictOf(item: Item): Omit<Stored, 'messageId'> {
  return { outcome: item.verdict.outcome, ...(item.verdict.error ? { error: item.verdict.error } : {}) };
}

function priorOutcome(p: PriorMessage): Stored {
  const rejected = p.ack_code.endsWith('R');
  const code = p.error_code as ErrorCode | null;
  return {
    messageId: p.id,
    outcome: rejected ? 'reject' : 'accept',
    ...(rejected && code && code in ERRORS ? { error: new EngineError(code) } : {}),
  };
}

function settle(item: Item, s: Stored): void {
  if (item.settled) return;
  item.settled = true;
  item.resolve(s);
}

function fail(item: Item, e: EngineError): void {
  if (item.settled) return;
  item.settled = true;
  item.reject(e);
}

function storageError(err: unknown): EngineError {
  // The cause (a pg or fs error) stays attached for the log's error serializer; the NAK text is fixed.
  return new EngineError('INTAKE_UNAVAILABLE', {}, undefined, {
    cause: isEngineError(err) ? err : undefined,
  });
}
