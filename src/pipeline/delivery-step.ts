import { type BodyRef, openBody, type SealedBody, sealBody } from '../archive/delivery-bodies.js';
import type { KeyRing } from '../archive/keyring.js';
import type { RawArchive } from '../archive/raw-archive.js';
import type { DeliveryOutcome } from '../delivery/delivery-outcome.js';
import { type Destination, errorClass, type Payload } from '../delivery/destination.js';
import { retryDelayMs } from '../delivery/retry-policy.js';
import { isEngineError } from '../errors.js';
import type { AttemptRecord, DeliveryRef, DeliveryRepo, DeliveryWork } from '../store/delivery-repo.js';
import type { ReplayRepo } from '../store/replay-repo.js';
import type { MessageConverter } from './message-converter.js';
import { type DeliverJobContext, type DeliverVerdict, destinationKey } from './work-queues.js';

export interface DeliveryStepOptions {
  deliveries: DeliveryRepo;
  replays: ReplayRepo;
  archive: RawArchive;
  keys: KeyRing;
  converter: MessageConverter;
  /** `channel/destination` (work-queues.ts destinationKey) → the destination. */
  destinations: ReadonlyMap<string, Destination>;
  /** Runs a parked delivery's job now (WorkQueues.wakeDelivery). */
  wake(ref: DeliveryRef): Promise<void>;
  /** After each recorded attempt: ids, codes and counts for logs and metrics, never content. */
  onAttempt?(a: AttemptNote): void;
  now?: () => number;
}

export interface AttemptNote {
  readonly deliveryId: string;
  readonly messageId: string;
  readonly channel: string;
  readonly destination: string;
  readonly attempt: number;
  readonly outcome: AttemptRecord['outcome'];
  readonly errorClass: string | null;
  readonly delayMs?: number;
  /** When the message arrived: with `delivered`, its end-to-end latency. */
  readonly receivedAt: Date;
}

/**
 * How long a delivery held back by an earlier one of its ordering key waits before it looks again by
 * itself. The earlier one's finish wakes it at once (wakeDelivery); this only bounds the wait should a
 * wake-up be lost (a crash between commit and wake), and keeps a long-held key's followers cheap.
 */
const PARK_MS = 10 * 60_000;

/**
 * The delivery step (DESIGN: deliver): one job is one attempt at one delivery.
 *
 * 1. Load the delivery. Not pending any more (delivered, failed, held): nothing to do.
 * 2. Ordering: an earlier delivery of the same ordering key to the same destination is still pending or
 *    held → park (delayed job, no attempt used); its finish wakes this one. Check and park happen under
 *    the key's lock, as do finish and wake, so a wake-up cannot fall between them.
 * 3. Breaker open → pause the destination's queue for the rest of the open time (no attempt used).
 * 4. Build the payload: the raw message from the archive (MLLP), or the Bundle rebuilt from it by the
 *    conversion workers (FHIR; the same bytes and mapping give the same Bundle, so no PHI is kept in
 *    between).
 * 5. Send through the breaker; record the attempt with what was sent and answered, encrypted.
 *    delivered / rejected / dead-lettered (last attempt) / held (MLLP ACK timeout with onAckTimeout:
 *    hold) end it and wake the next of its key; a retry leaves it pending for BullMQ's backoff.
 */
export class DeliveryStep {
  readonly #o: DeliveryStepOptions;
  readonly #now: () => number;

  constructor(opts: DeliveryStepOptions) {
    this.#o = opts;
    this.#now = opts.now ?? Date.now;
  }

  async run(job: DeliverJobContext): Promise<DeliverVerdict> {
    const dest = this.#o.destinations.get(destinationKey(job));
    if (!dest) return { kind: 'done' };
    const work = await this.#o.deliveries.load(job.deliveryId);
    if (work?.status !== 'pending') return { kind: 'done' };
    if (work.blocked && work.orderKey !== null && (await this.#park(work, job))) return { kind: 'parked' };

    const open = dest.openFor();
    if (open > 0) return { kind: 'paused', ms: open };

    // The store's count is the truth (a re-added job starts at 0); a replay's job counts on from its base.
    const attempt = Math.max(work.attempts, work.attemptBase + job.attemptsMade) + 1;
    const startedAt = new Date(this.#now());
    const payload = await this.#payload(work, dest);
    if ('fault' in payload) {
      // The message can no longer be built into what this destination takes (e.g. its mapping was
      // removed): repeating cannot help. Dead-lettered with the code; a replay after a fix brings it back.
      await this.#finish(work, {
        attempt,
        startedAt,
        outcome: 'failed',
        errorClass: payload.fault,
        statusCode: null,
        ackCode: null,
        retryAfterMs: null,
        nextAttemptAt: null,
        bodies: [],
      });
      return { kind: 'done' };
    }

    const r = await dest.attempt(payload);
    if (r.kind === 'open') return { kind: 'paused', ms: r.retryInMs };
    const o = r.outcome;
    const policy = dest.config.retry;
    const verdict = this.#verdict(o, attempt - work.attemptBase, dest);
    const delayMs =
      verdict === 'retry'
        ? retryDelayMs(policy, attempt - work.attemptBase, o.kind === 'retry' ? o.retryAfterMs : undefined)
        : undefined;
    const bodies = await this.#bodies(work.id, attempt, r.sent, o, verdict);
    const record: Omit<AttemptRecord, 'deliveryId' | 'messageId'> = {
      attempt,
      startedAt,
      outcome: verdict,
      errorClass: errorClass(o),
      // MLLP answers carry no status (0): its ACK code says it.
      statusCode: o.status || null,
      ackCode: o.ackCode ?? null,
      retryAfterMs: o.kind === 'retry' ? (o.retryAfterMs ?? null) : null,
      nextAttemptAt: delayMs === undefined ? null : new Date(this.#now() + delayMs),
      bodies,
    };
    if (verdict === 'retry') {
      await this.#o.deliveries.recordAttempt({ ...record, deliveryId: work.id, messageId: work.messageId });
      this.#note(work, record, delayMs);
      return { kind: 'retry', delayMs: delayMs as number };
    }
    await this.#finish(work, record);
    return { kind: 'done' };
  }

  /** What this attempt (counted since the last replay) means for the delivery. */
  #verdict(o: DeliveryOutcome, attempt: number, dest: Destination): AttemptRecord['outcome'] {
    if (o.kind === 'delivered') return 'delivered';
    if (o.kind === 'rejected') return 'rejected';
    // The peer may hold the message: a person decides rather than the engine guessing (onAckTimeout).
    if (o.reason === 'ack-timeout' && dest.config.mllp?.onAckTimeout === 'hold') return 'held';
    return attempt >= dest.config.retry.attempts ? 'failed' : 'retry';
  }

  /** Parks the job if, under the key's lock, an earlier delivery still holds it back. */
  async #park(work: DeliveryWork, job: DeliverJobContext): Promise<boolean> {
    const key = { channel: work.channel, destination: work.destination, orderKey: work.orderKey as string };
    return this.#o.deliveries.withOrderLock(key, async (tx) => {
      const again = await this.#o.deliveries.load(work.id, tx);
      if (!again?.blocked) return false;
      await job.park(PARK_MS);
      return true;
    });
  }

  /** Records an attempt that ends the delivery, and wakes the next delivery of its ordering key. */
  async #finish(work: DeliveryWork, record: Omit<AttemptRecord, 'deliveryId' | 'messageId'>): Promise<void> {
    const full: AttemptRecord = { ...record, deliveryId: work.id, messageId: work.messageId };
    let next: string | undefined;
    if (work.orderKey === null) {
      await this.#o.deliveries.recordAttempt(full);
    } else {
      const key = { channel: work.channel, destination: work.destination, orderKey: work.orderKey };
      next = await this.#o.deliveries.withOrderLock(key, async (tx) => {
        if (!(await this.#o.deliveries.recordAttempt(full, tx))) return undefined;
        // A held delivery keeps holding its key back: its followers stay parked.
        if (record.outcome === 'held') return undefined;
        return this.#o.deliveries.nextInOrder({ ...key, seq: work.seq }, tx);
      });
    }
    this.#note(work, record);
    if (next) {
      // After commit. A lost wake-up costs at most PARK_MS: the parked job looks again by itself.
      await this.#o.wake({ id: next, channel: work.channel, destination: work.destination }).catch(() => {});
    }
  }

  /** The raw bytes, or the Bundle rebuilt from them; a permanent fault as its code. */
  async #payload(work: DeliveryWork, dest: Destination): Promise<Payload | { fault: string }> {
    if (work.replayFrom === 'mapped') {
      // Replayed as it was sent before: the body the last ended attempt sent, unchanged.
      const last = await this.#o.replays.lastRequest(work.id);
      if (last) {
        const text = await openBody(
          this.#o.keys,
          { deliveryId: work.id, attempt: last.attempt, kind: 'request' },
          last.body,
        );
        return dest.needs === 'bundle'
          ? { kind: 'bundle', body: text }
          : { kind: 'raw', raw: Buffer.from(text, 'latin1') };
      }
      // Nothing was sent before (it failed before sending): the raw message is all there is.
    }
    let raw: Buffer;
    try {
      raw = await this.#o.archive.read({
        channel: work.channel,
        messageId: work.messageId,
        sha256: work.contentSha256,
        location: work.archive,
      });
    } catch (err) {
      // Key provider or disk trouble is retried by BullMQ (the thrown error fails the attempt).
      if (!isEngineError(err) || err.retryable) throw err;
      return { fault: err.code };
    }
    if (dest.needs === 'raw') return { kind: 'raw', raw };
    const [built] = await this.#o.converter.bundles([
      { channel: work.channel, raw, sha256: work.contentSha256 },
    ]);
    if (!built) throw new Error('converter returned no result');
    if (built.ok) return { kind: 'bundle', body: built.body };
    if (built.retryable) throw Object.assign(new Error('bundle could not be built'), { code: built.code });
    return { fault: built.code };
  }

  /**
   * What to keep, encrypted: the request and the answer of the attempt that ends the delivery (what was
   * delivered, or why not), and the answer of a retried one (a 503's body, an AE) — the request of a
   * retry is the one the final attempt keeps.
   */
  async #bodies(
    deliveryId: string,
    attempt: number,
    sent: string,
    o: DeliveryOutcome,
    verdict: AttemptRecord['outcome'],
  ): Promise<SealedBody[]> {
    const out: SealedBody[] = [];
    const seal = (kind: BodyRef['kind'], text: string) =>
      sealBody(this.#o.keys, { deliveryId, attempt, kind }, text).then((b) => out.push(b));
    if (verdict !== 'retry') await seal('request', sent);
    if (o.body) await seal('response', o.body);
    return out;
  }

  #note(work: DeliveryWork, record: Omit<AttemptRecord, 'deliveryId' | 'messageId'>, delayMs?: number): void {
    this.#o.onAttempt?.({
      deliveryId: work.id,
      messageId: work.messageId,
      channel: work.channel,
      destination: work.destination,
      attempt: record.attempt,
      outcome: record.outcome,
      errorClass: record.errorClass,
      receivedAt: work.receivedAt,
      ...(delayMs === undefined ? {} : { delayMs }),
    });
  }
}
