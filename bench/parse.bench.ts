/**
 * Parse benchmark: this engine's HL7 v2 parser side by side with hl7-standard, node-hl7-client and
 * @medplum/core, in one run, on the whole shared corpus (test/support/corpus.ts).
 *
 * Work per message, for every library: parse it, then read ten typical fields with the library's own
 * API (see FIELDS). Absent values are fine (''/null).
 *
 * Method: a correctness pass first (every library must read the same MSH-10 for every message; a library
 * that throws on a message has that message excluded from its timing, and both are reported). Then a
 * warm-up of ≥ --warmup-ms per library, then --rounds rounds of ≥ --round-ms per library, interleaved
 * (A B C D A B C D …) so machine noise hits all libraries alike. A round loops over the library's whole
 * message list until the time is up. Reported: the median round's msg/s and MB/s (corpus bytes, UTF-8,
 * 10^6 per MB, over time), and engine / peer ratios of the median MB/s. It measures; it asserts nothing.
 *
 *   npx tsx bench/parse.bench.ts [--json] [--rounds 5] [--round-ms 1000] [--warmup-ms 1000] [--libs a,b]
 *   node --expose-gc --import tsx bench/parse.bench.ts   # also collects garbage before every round
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { Hl7Message as MedplumMessage } from '@medplum/core';
import HL7Standard from 'hl7-standard';
import { Message as Hl7ClientMessage } from 'node-hl7-client';
import { parse } from '../src/hl7/index.js';
import { CORPUS_DIR, type CorpusMessage, loadCorpus } from '../test/support/corpus.js';

/** The ten reads: [segment, field, component], first occurrence and first repetition. */
const FIELDS: ReadonlyArray<readonly [string, number, number]> = [
  ['MSH', 9, 1], // message type (code)
  ['MSH', 10, 1], // control id
  ['MSH', 7, 1], // date/time of message
  ['PID', 3, 1], // first patient identifier
  ['PID', 5, 1], // family name
  ['PID', 5, 2], // given name
  ['PID', 7, 1], // birth date
  ['PID', 8, 1], // administrative sex
  ['PV1', 2, 1], // patient class
  ['OBX', 5, 1], // first observation value
];
const CONTROL_ID = 1; // index of MSH-10 in FIELDS

/** Goals from the project plan: engine throughput at least this many times the peer's. */
const GOALS: Record<string, number> = { '@medplum/core': 4, 'hl7-standard': 15 };

interface Library {
  readonly name: string;
  readonly version: string;
  /** Parses one message and writes the ten values into `out` (absent → ''). */
  read(text: string, out: string[]): void;
}

const dotPaths = FIELDS.map(([s, f, c]) => `${s}.${f}.${c}`);
const enginePaths = FIELDS.map(([s, f, c]) => `${s}-${f}-${c}`);

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

function versionOf(pkg: string): string {
  const file = new URL(`../node_modules/${pkg}/package.json`, import.meta.url);
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

const LIBRARIES: Library[] = [
  {
    name: 'engine',
    version: (
      JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }
    ).version,
    read(text, out) {
      const msg = parse(text);
      for (let i = 0; i < enginePaths.length; i++) out[i] = msg.get(enginePaths[i]!);
    },
  },
  {
    name: '@medplum/core',
    version: versionOf('@medplum/core'),
    read(text, out) {
      const msg = MedplumMessage.parse(text);
      for (let i = 0; i < FIELDS.length; i++) {
        const [s, f, c] = FIELDS[i]!;
        // getComponent(field, component, subcomponent?, repetition = 0); MSH field numbers as in the standard.
        out[i] = msg.getSegment(s)?.getComponent(f, c) ?? '';
      }
    },
  },
  {
    name: 'node-hl7-client',
    version: versionOf('node-hl7-client'),
    read(text, out) {
      const msg = new Hl7ClientMessage({ text });
      for (let i = 0; i < dotPaths.length; i++) out[i] = msg.get(dotPaths[i]!).toString();
    },
  },
  {
    name: 'hl7-standard',
    version: versionOf('hl7-standard'),
    read(text, out) {
      const msg = new HL7Standard(text);
      msg.transform();
      for (let i = 0; i < dotPaths.length; i++) out[i] = str(msg.get(dotPaths[i]!));
    },
  },
];

// ---------------------------------------------------------------------------------------------------------

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
    'round-ms': { type: 'string', default: '1000' },
    'warmup-ms': { type: 'string', default: '1000' },
    libs: { type: 'string' },
    help: { type: 'boolean', default: false },
  },
});
if (args.help) {
  console.log(
    'usage: tsx bench/parse.bench.ts [--json] [--rounds N] [--round-ms MS] [--warmup-ms MS] [--libs engine,hl7-standard,...]',
  );
  process.exit(0);
}
const ROUNDS = Math.max(1, Number(args.rounds));
const ROUND_MS = Math.max(1, Number(args['round-ms']));
const WARMUP_MS = Math.max(0, Number(args['warmup-ms']));
const selected = args.libs?.split(',').map((s) => s.trim());
const libraries = selected ? LIBRARIES.filter((l) => selected.includes(l.name)) : LIBRARIES;
if (libraries.length === 0) throw new Error(`no library matches --libs ${args.libs}`);

const gc = (globalThis as { gc?: () => void }).gc;
const log = args.json ? () => {} : (line = '') => console.log(line);
let sink = 0;

interface Prepared {
  lib: Library;
  messages: CorpusMessage[];
  bytes: number;
  threw: Array<{ id: string; error: string }>;
  mismatches: Array<{ id: string; got: string; expected: string }>;
}

interface Round {
  ms: number;
  messages: number;
  bytes: number;
}

function byteLength(ms: CorpusMessage[]): number {
  return ms.reduce((n, m) => n + Buffer.byteLength(m.text, 'utf8'), 0);
}

/** Correctness pass: who throws on what, and who reads a different MSH-10 than most libraries do. */
function prepare(corpus: CorpusMessage[]): Prepared[] {
  const prepared: Prepared[] = libraries.map((lib) => ({
    lib,
    messages: [],
    bytes: 0,
    threw: [],
    mismatches: [],
  }));
  const out = new Array<string>(FIELDS.length).fill('');
  for (const m of corpus) {
    const ids = new Map<Prepared, string>();
    for (const p of prepared) {
      try {
        out.fill('');
        p.lib.read(m.text, out);
        ids.set(p, out[CONTROL_ID]!);
        p.messages.push(m);
      } catch (err) {
        p.threw.push({ id: m.id, error: err instanceof Error ? err.message : String(err) });
      }
    }
    // Reference: the value most libraries read (ties: the earlier library in the list).
    const votes = new Map<string, number>();
    for (const v of ids.values()) votes.set(v, (votes.get(v) ?? 0) + 1);
    let expected: string | undefined;
    let best = 0;
    for (const [v, n] of votes) {
      if (n > best) {
        best = n;
        expected = v;
      }
    }
    for (const [p, got] of ids) {
      if (got !== expected) p.mismatches.push({ id: m.id, got, expected: expected ?? '' });
    }
  }
  for (const p of prepared) p.bytes = byteLength(p.messages);
  return prepared;
}

function runRound(p: Prepared, minMs: number): Round {
  const out = new Array<string>(FIELDS.length).fill('');
  const { lib, messages } = p;
  let count = 0;
  let bytes = 0;
  let elapsed = 0;
  gc?.();
  const start = performance.now();
  do {
    for (let i = 0; i < messages.length; i++) {
      lib.read(messages[i]!.text, out);
      for (let k = 0; k < out.length; k++) sink += out[k]!.length;
    }
    count += messages.length;
    bytes += p.bytes;
    elapsed = performance.now() - start;
  } while (elapsed < minMs);
  return { ms: elapsed, messages: count, bytes };
}

const msgPerSec = (r: Round) => (r.messages * 1000) / r.ms;
const mbPerSec = (r: Round) => r.bytes / 1e6 / (r.ms / 1000);

function median(rounds: Round[]): Round {
  const sorted = [...rounds].sort((a, b) => msgPerSec(a) - msgPerSec(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows
    .map((r) =>
      r
        .map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

// ---------------------------------------------------------------------------------------------------------

const corpus = loadCorpus();
const corpusBytes = byteLength(corpus);
log(`HL7 v2 parse + read ${FIELDS.length} fields, ${libraries.length} libraries, one run`);
log(`corpus: ${corpus.length} messages, ${fmt(corpusBytes)} bytes (${CORPUS_DIR})`);
log(`fields: ${enginePaths.join(', ')}`);
log(
  `node ${process.version}, ${cpus()[0]?.model ?? 'cpu?'} ×${cpus().length}; warm-up ${WARMUP_MS} ms each, ` +
    `${ROUNDS} interleaved rounds of ≥${ROUND_MS} ms each${gc ? ', gc before each round' : ''}`,
);
log();

const prepared = prepare(corpus);
log('correctness (MSH-10 of every message; reference: the value most libraries read)');
let clean = true;
for (const p of prepared) {
  if (p.threw.length > 0) {
    clean = false;
    log(`  ${p.lib.name} threw on ${p.threw.length} message(s), excluded from its timing:`);
    for (const t of p.threw) log(`    ${t.id}: ${t.error}`);
  }
  if (p.mismatches.length > 0) {
    clean = false;
    log(`  ${p.lib.name} read a different MSH-10 on ${p.mismatches.length} message(s):`);
    for (const m of p.mismatches)
      log(`    ${m.id}: got ${JSON.stringify(m.got)}, expected ${JSON.stringify(m.expected)}`);
  }
}
if (clean) log('  all libraries read the same MSH-10 on every message');
log();

for (const p of prepared) runRound(p, WARMUP_MS);
const rounds = new Map<Prepared, Round[]>(prepared.map((p) => [p, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const p of prepared) rounds.get(p)!.push(runRound(p, ROUND_MS));
}

const results = prepared.map((p) => {
  const rs = rounds.get(p)!;
  const med = median(rs);
  return {
    library: p.lib.name,
    version: p.lib.version,
    messages: p.messages.length,
    bytes: p.bytes,
    excluded: p.threw,
    mismatches: p.mismatches,
    rounds: rs.map((r) => ({
      ms: r.ms,
      messages: r.messages,
      msgPerSec: msgPerSec(r),
      mbPerSec: mbPerSec(r),
    })),
    median: { msgPerSec: msgPerSec(med), mbPerSec: mbPerSec(med) },
    min: { msgPerSec: Math.min(...rs.map(msgPerSec)) },
    max: { msgPerSec: Math.max(...rs.map(msgPerSec)) },
  };
});

const engine = results.find((r) => r.library === 'engine');
const ratios = engine
  ? results
      .filter((r) => r !== engine)
      .map((r) => ({
        engine: engine.library,
        peer: r.library,
        ratio: engine.median.mbPerSec / r.median.mbPerSec,
        goal: GOALS[r.library],
      }))
  : [];

if (args.json) {
  console.log(
    JSON.stringify(
      {
        node: process.version,
        cpu: cpus()[0]?.model,
        cpus: cpus().length,
        corpus: { dir: CORPUS_DIR, messages: corpus.length, bytes: corpusBytes },
        settings: { rounds: ROUNDS, roundMs: ROUND_MS, warmupMs: WARMUP_MS, gc: Boolean(gc) },
        fields: enginePaths,
        results,
        ratios,
        sink,
      },
      null,
      2,
    ),
  );
} else {
  const rows = [['library', 'version', 'messages', 'msg/s (median)', 'MB/s', 'msg/s min..max', 'excluded']];
  for (const r of results) {
    rows.push([
      r.library,
      r.version,
      String(r.messages),
      fmt(r.median.msgPerSec),
      fmt(r.median.mbPerSec, 2),
      `${fmt(r.min.msgPerSec)}..${fmt(r.max.msgPerSec)}`,
      String(r.excluded.length),
    ]);
  }
  log(table(rows));
  log();
  if (ratios.length > 0) {
    const ratioRows = ratios.map((x) => [
      `${x.engine} / ${x.peer}`,
      `= ${fmt(x.ratio, 1)}x`,
      x.goal === undefined ? '' : `(goal ≥ ${x.goal}x: ${x.ratio >= x.goal ? 'met' : 'NOT met'})`,
    ]);
    log(table(ratioRows));
    log('(ratios of median MB/s)');
  }
  log(`checksum ${sink}`);
}
