import {
  BrokenCircuitError,
  CircuitState,
  CountBreaker,
  circuitBreaker,
  handleWhenResult,
  type CircuitBreakerPolicy as Policy,
} from 'cockatiel';
import type { CircuitBreakerPolicy } from '../channels/channel-config.js';
import type { DeliveryOutcome } from './delivery-outcome.js';

export type BreakerState = 'closed' | 'open' | 'half-open';

/** What a call through the breaker came to: the destination's answer, or "not now, for this long". */
export type BreakerResult =
  | { readonly kind: 'answered'; readonly outcome: DeliveryOutcome }
  | { readonly kind: 'open'; readonly retryInMs: number };

export interface BreakerEvents {
  onStateChange?(state: BreakerState): void;
}

/** A call refused after a failed half-open probe comes back after this long at the least. */
const HALF_OPEN_WAIT_MS = 1_000;

/**
 * One destination's circuit breaker, on cockatiel's (STANDARDS: a maintained library, not a hand-rolled
 * one). A retryable outcome (5xx, 429, timeout, network, NAK, ACK timeout) counts as a failure; a
 * success or a permanent rejection as a success — a destination that answers 400 is up. It opens when,
 * among the last `max(20, minimumRequests)` calls with at least `minimumRequests` of them, the share of
 * failures reaches `failureRatio`; after `openMs` it lets one probe through (half-open), whose success
 * closes it and whose failure opens it again.
 *
 * State is per engine process: each process learns the destination's health from its own calls.
 */
export class DestinationBreaker {
  readonly #policy: Policy;
  readonly #openMs: number;
  readonly #now: () => number;
  #openedAt = 0;

  constructor(config: CircuitBreakerPolicy, events: BreakerEvents = {}, now: () => number = Date.now) {
    this.#openMs = config.openMs;
    this.#now = now;
    this.#policy = circuitBreaker(
      handleWhenResult((r) => (r as DeliveryOutcome).kind === 'retry'),
      {
        halfOpenAfter: config.openMs,
        breaker: new CountBreaker({
          // cockatiel takes thresholds in (0, 1) only and opens when failures exceed threshold·total; the
          // schema allows 1 ("open when every call failed"), which a threshold just under 1 means.
          threshold: Math.min(config.failureRatio, 1 - 1e-9),
          size: Math.max(20, config.minimumRequests),
          minimumNumberOfCalls: config.minimumRequests,
        }),
      },
    );
    this.#policy.onBreak(() => {
      this.#openedAt = this.#now();
      events.onStateChange?.('open');
    });
    this.#policy.onHalfOpen(() => events.onStateChange?.('half-open'));
    this.#policy.onReset(() => events.onStateChange?.('closed'));
  }

  get state(): BreakerState {
    switch (this.#policy.state) {
      case CircuitState.Closed:
        return 'closed';
      case CircuitState.HalfOpen:
        return 'half-open';
      default:
        return this.openFor() > 0 ? 'open' : 'half-open';
    }
  }

  /** Milliseconds until an open breaker lets a probe through; 0 when calls may go now. */
  openFor(): number {
    if (this.#policy.state !== CircuitState.Open) return 0;
    return Math.max(0, this.#openedAt + this.#openMs - this.#now());
  }

  /**
   * Runs `call` unless the breaker is open. While half-open, calls other than the probe wait for its
   * verdict (cockatiel) and then run, or are refused if it opened the breaker again.
   */
  async call(call: () => Promise<DeliveryOutcome>): Promise<BreakerResult> {
    try {
      return { kind: 'answered', outcome: await this.#policy.execute(call) };
    } catch (err) {
      if (!(err instanceof BrokenCircuitError)) throw err;
      const wait = this.openFor();
      return { kind: 'open', retryInMs: wait > 0 ? wait : Math.min(HALF_OPEN_WAIT_MS, this.#openMs) };
    }
  }
}
