import { Hl7Message } from '@medplum/core';
import { Hl7Client } from '@medplum/hl7';
import { Client, type InboundResponse, Message } from 'node-hl7-client';
import { afterEach, describe, expect, it } from 'vitest';
import { MllpListener } from '../../src/mllp/index.js';
import { ackFor, controlIds } from '../support/mllp-ack.js';
import { testMessage } from '../support/mllp-test-client.js';

// Other projects' MLLP clients as real senders against the engine's listener: one kept-open connection,
// ten distinct messages, each handled exactly once and each ACK naming its own message.
//
// Both clients are driven one message at a time, as MLLP senders are meant to work (HL7 v2.5.1
// Appendix C), because each breaks otherwise — see the notes beside each test.

const IDS = Array.from({ length: 10 }, (_, i) => `PEER${String(i).padStart(4, '0')}`);

const cleanups: Array<() => unknown> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A listener answering AA, counting how often each control id reached the handler. */
async function startCountingListener() {
  const handled = new Map<string, number>();
  let connections = 0;
  const listener = new MllpListener({
    port: 0,
    handler: async (frame) => {
      const id = controlIds(frame).msh10;
      handled.set(id, (handled.get(id) ?? 0) + 1);
      return ackFor(frame);
    },
    onHandlerError: () => undefined,
    onEvent: (e) => {
      if (e.type === 'connection') connections++;
    },
  });
  const { port } = await listener.listen();
  cleanups.push(() => listener.close());
  return { port, handled, connections: () => connections };
}

describe('peer MLLP clients against MllpListener', () => {
  it('node-hl7-client 3.2.0: each message handled once, each ACK answering it', async () => {
    const { port, handled, connections } = await startCountingListener();
    const client = new Client({ host: '127.0.0.1' });
    const pending: Array<(ack: string) => void> = [];
    const connection = client.createConnection({ port, waitAck: true }, (res: InboundResponse) => {
      pending.shift()?.(res.getMessage().toString());
    });
    cleanups.push(() => connection.close());
    // Sending before 'connect' makes this client open a second socket; sending again before the ACK
    // (waitAck) makes its queue flush loop spin forever. So: wait for the connection, then one at a time.
    await new Promise<void>((resolve) => connection.once('connect', () => resolve()));
    const answers: string[] = [];
    for (const id of IDS) {
      const ack = new Promise<string>((resolve) => pending.push(resolve));
      await connection.sendMessage(new Message({ text: testMessage(id) }));
      answers.push(controlIds(await ack).msa2 ?? '');
    }
    expect(answers).toEqual(IDS);
    expect(Object.fromEntries(handled)).toEqual(Object.fromEntries(IDS.map((id) => [id, 1])));
    expect(connections()).toBe(1);
  });

  it('@medplum/hl7 4.5.2 Hl7Client: each message handled once, each ACK answering it', async () => {
    const { port, handled, connections } = await startCountingListener();
    const client = new Hl7Client({ host: '127.0.0.1', port });
    cleanups.push(() => client.close());
    // Its connection ends a frame only where a TCP read ends with FS CR, so ACKs that arrive together
    // (as they do when several sends are in flight) are lost on its side; hence one at a time.
    const answers: string[] = [];
    for (const id of IDS) {
      const ack = await client.sendAndWait(Hl7Message.parse(testMessage(id)), { timeoutMs: 10_000 });
      answers.push(ack.getSegment('MSA')?.getField(2)?.toString() ?? '');
      expect(ack.getSegment('MSA')?.getField(1)?.toString()).toBe('AA');
    }
    expect(answers).toEqual(IDS);
    expect(Object.fromEntries(handled)).toEqual(Object.fromEntries(IDS.map((id) => [id, 1])));
    expect(connections()).toBe(1);
  });
});
