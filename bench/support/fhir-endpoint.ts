/**
 * The local FHIR endpoint of bench:deliver, run as a child process (fork) of the benchmark so that its
 * HTTP work — parsing requests, JSON-parsing ~10 kB Bundles, answering — does not share an event loop
 * with the MLLP senders: there it would delay both the senders' schedule (inflating ACK latency) and its
 * own arrival timestamps (inflating end-to-end latency). Its CPU is accounted apart (its pid).
 *
 * Every transaction POST is answered 200 with a minimal transaction-response (one `200 OK` entry per
 * request entry, as FHIR R4 http.html#transaction-response has it) and recorded as (Bundle
 * identifier.value = MSH-10, arrival time). Arrival time is process.hrtime (CLOCK_MONOTONIC, one clock
 * for every process on the machine), taken when the whole body has arrived, so the parent can subtract
 * its own send times. Anything else is answered 400 and counted as unattributed.
 *
 * "down" closes the listening socket (new connections are refused: ECONNREFUSED) and closes kept-alive
 * connections once idle; a request already being received is still answered, with `Connection: close`,
 * so a down never loses an answer to a request the endpoint recorded (which would be counted as a
 * duplicate when the engine sends it again). "up" listens again on the same port.
 *
 * Protocol (IPC): the child sends {type:'ready', port}; the parent sends {id, cmd} with cmd down | up |
 * arrivals (with `from`: the index of the first arrival wanted) | stop, and gets {id, ...answer}.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export type EndpointRequest =
  | { readonly cmd: 'down' | 'up' | 'stop' }
  | { readonly cmd: 'arrivals'; readonly from: number };
export type EndpointCommand = EndpointRequest & { readonly id: number };

export interface EndpointAnswer {
  readonly id: number;
  /** hrtime ms when the command took effect (down: listening socket closed; up: listening again). */
  readonly at: number;
  /** down: when the last open connection had closed. */
  readonly idleAt?: number;
  /** arrivals: control ids and arrival times from index `from` on. */
  readonly ids?: readonly string[];
  readonly times?: readonly number[];
  readonly unattributed?: number;
  /** TCP connections accepted since start. */
  readonly connections?: number;
}

const now = (): number => Number(process.hrtime.bigint()) / 1e6;

const ids: string[] = [];
const times: number[] = [];
let unattributed = 0;
let connections = 0;
let closing = false;
const open = new Set<Socket>();

/** transaction-response bodies by entry count, built once. */
const responses = new Map<number, string>();
function transactionResponse(entries: number): string {
  let text = responses.get(entries);
  if (text === undefined) {
    text = JSON.stringify({
      resourceType: 'Bundle',
      type: 'transaction-response',
      entry: Array.from({ length: entries }, () => ({ response: { status: '200 OK' } })),
    });
    responses.set(entries, text);
  }
  return text;
}

function controlIdOf(body: string): { id: string; entries: number } | undefined {
  try {
    const b = JSON.parse(body) as {
      resourceType?: unknown;
      type?: unknown;
      identifier?: { value?: unknown };
      entry?: unknown;
    };
    const id = b.identifier?.value;
    if (b.resourceType !== 'Bundle' || b.type !== 'transaction' || typeof id !== 'string') return undefined;
    return { id, entries: Array.isArray(b.entry) ? b.entry.length : 0 };
  } catch {
    return undefined;
  }
}

function handle(req: IncomingMessage, res: ServerResponse): void {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const at = now();
    const found = req.method === 'POST' ? controlIdOf(Buffer.concat(chunks).toString('utf8')) : undefined;
    const close = closing ? { connection: 'close' } : {};
    if (!found) {
      unattributed++;
      res.writeHead(400, { 'content-type': 'application/fhir+json', ...close });
      res.end('{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"invalid"}]}');
      return;
    }
    ids.push(found.id);
    times.push(at);
    res.writeHead(200, { 'content-type': 'application/fhir+json', ...close });
    res.end(transactionResponse(found.entries));
  });
}

const server = createServer({ keepAliveTimeout: 30_000 }, handle);
server.on('connection', (s: Socket) => {
  connections++;
  open.add(s);
  s.once('close', () => open.delete(s));
});

async function down(): Promise<{ at: number; idleAt: number }> {
  closing = true;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const at = now();
  // Node ≥ 19 closes idle kept-alive connections in close(); once more for ones idle since.
  server.closeIdleConnections();
  const sweep = setInterval(() => server.closeIdleConnections(), 20);
  // A request still arriving after this long is a stuck client: cut it (the engine times out and retries).
  const cut = setTimeout(() => server.closeAllConnections(), 5_000);
  await closed;
  clearInterval(sweep);
  clearTimeout(cut);
  return { at, idleAt: now() };
}

async function up(port: number): Promise<number> {
  closing = false;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return now();
}

async function answer(m: EndpointCommand, port: number): Promise<EndpointAnswer> {
  switch (m.cmd) {
    case 'down':
      return { id: m.id, ...(await down()) };
    case 'up':
      return { id: m.id, at: await up(port) };
    case 'arrivals':
      return {
        id: m.id,
        at: now(),
        ids: ids.slice(m.from),
        times: times.slice(m.from),
        unattributed,
        connections,
      };
    case 'stop':
      if (server.listening) await down();
      return { id: m.id, at: now() };
  }
}

if (process.send) {
  server.listen(0, '127.0.0.1', () => {
    const port = (server.address() as AddressInfo).port;
    process.on('message', (m: EndpointCommand) => {
      void answer(m, port).then(
        (a) => process.send?.(a),
        (err: unknown) => process.send?.({ id: m.id, at: now(), error: String(err) }),
      );
    });
    process.send?.({ type: 'ready', port });
  });
  // The benchmark went away (crash): nothing else would end this process. Ctrl-C reaches the whole
  // process group: the benchmark still needs this process for its cleanup, and ends it itself.
  process.on('disconnect', () => process.exit(0));
  process.on('SIGINT', () => {});
}
