import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { type BreakerState, DestinationBreaker } from './circuit-breaker.js';
import type { DeliveryOutcome } from './delivery-outcome.js';

const OK: DeliveryOutcome = { kind: 'delivered', status: 200, body: '' };
const DOWN: DeliveryOutcome = { kind: 'retry', reason: 'status', status: 503 };
const BAD: DeliveryOutcome = { kind: 'rejected', status: 400, body: '' };

function breaker(openMs = 150) {
  const states: BreakerState[] = [];
  const b = new DestinationBreaker(
    { failureRatio: 0.5, minimumRequests: 4, openMs },
    { onStateChange: (s) => states.push(s) },
  );
  return { b, states };
}

describe('DestinationBreaker', () => {
  it('stays closed below minimumRequests, opens at the failure ratio, and then refuses calls', async () => {
    const { b, states } = breaker();
    for (let i = 0; i < 3; i++) expect((await b.call(async () => DOWN)).kind).toBe('answered');
    expect(b.state).toBe('closed');
    await b.call(async () => DOWN);
    expect(b.state).toBe('open');
    expect(states).toEqual(['open']);
    let called = false;
    const r = await b.call(async () => {
      called = true;
      return OK;
    });
    expect(called).toBe(false);
    expect(r.kind).toBe('open');
    if (r.kind === 'open') expect(r.retryInMs).toBeGreaterThan(0);
    expect(r.kind === 'open' && r.retryInMs <= 150).toBe(true);
  });

  it('takes failureRatio 1 (open only when every call failed), which cockatiel alone refuses', async () => {
    const b = new DestinationBreaker({ failureRatio: 1, minimumRequests: 4, openMs: 1_000 });
    for (let i = 0; i < 3; i++) await b.call(async () => DOWN);
    await b.call(async () => OK);
    expect(b.state).toBe('closed');
    const c = new DestinationBreaker({ failureRatio: 1, minimumRequests: 4, openMs: 1_000 });
    for (let i = 0; i < 4; i++) await c.call(async () => DOWN);
    expect(c.state).toBe('open');
  });

  it('counts a permanent rejection as the destination answering, not failing', async () => {
    const { b } = breaker();
    for (let i = 0; i < 10; i++) await b.call(async () => BAD);
    expect(b.state).toBe('closed');
  });

  it('lets one probe through after openMs: a success closes it, a failure opens it again', async () => {
    const { b, states } = breaker(100);
    for (let i = 0; i < 4; i++) await b.call(async () => DOWN);
    await sleep(120);
    expect(b.openFor()).toBe(0);
    expect((await b.call(async () => DOWN)).kind).toBe('answered');
    expect(b.state).toBe('open');
    await sleep(120);
    // While the probe is out, other calls wait for its verdict (cockatiel), then go once it closed.
    let release: (() => void) | undefined;
    let othersRan = 0;
    const probe = b.call(() => new Promise<DeliveryOutcome>((r) => (release = () => r(OK))));
    const others = [1, 2].map(() =>
      b.call(async () => {
        othersRan++;
        return OK;
      }),
    );
    while (!release) await sleep(5);
    await sleep(20);
    expect(othersRan).toBe(0);
    release();
    expect((await probe).kind).toBe('answered');
    expect((await Promise.all(others)).map((r) => r.kind)).toEqual(['answered', 'answered']);
    expect(othersRan).toBe(2);
    expect(b.state).toBe('closed');
    expect(states).toEqual(['open', 'half-open', 'open', 'half-open', 'closed']);
  });
});
