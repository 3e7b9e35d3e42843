import { it } from 'vitest';
import { Client, Message } from 'node-hl7-client';
import { MllpListener } from './mllp-listener.js';
import { ackFor } from '../../test/support/mllp-ack.js';
import { testMessage } from '../../test/support/mllp-test-client.js';
import { setTimeout as sleep } from 'node:timers/promises';
it('dbg', async () => {
  let conns = 0; const got: string[] = [];
  const l = new MllpListener({ port: 0, maxPendingFrames: 100, handler: async (f) => { got.push(f.toString().split('|')[9]!); return ackFor(f); }, onHandlerError: () => undefined, onEvent: (e) => { if (e.type === 'connection') conns++; } });
  const { port } = await l.listen();
  const client = new Client({ host: '127.0.0.1' });
  const acks: string[] = [];
  const conn = client.createConnection({ port, waitAck: true }, async (res) => { acks.push(res.getMessage().toString().split('MSA|')[1]!); });
  await new Promise((r) => conn.once('connect', r));
  console.log('connected');
  for (const id of ['N1', 'N2', 'N3']) { await conn.sendMessage(new Message({ text: testMessage(id) })); console.log('sent', id); }
  await sleep(500);
  console.log('node-hl7-client no-wait: conns', conns, 'handled', got, 'acks', acks);
  await conn.close();
  await l.close();
}, 10000);
