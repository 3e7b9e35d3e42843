/**
 * Mapping benchmark: parse + map HL7 v2 → FHIR R4 transaction Bundle, on the shared corpus, one core
 * (this process, one thread). Validation against base R4 (@medplum/core) is measured apart, because a
 * channel turns it on only when it wants it (`validate: true`).
 *
 * Work per message: decode bytes (MSH-18), parse, convert with the shipped mappings (the map chosen by
 * MSH-9, as a channel without `mapping:` does) into the Bundle object. SHA-256 of the raw bytes is
 * included: the ids and the Provenance derive from it. One row adds JSON serialisation (what delivery
 * sends), to show its share.
 *
 * Sets: the corpus ORU^R01s (the goal: ≥ 5,000 msg/s on one core without validation; these average
 * 4.6 kB and 22 resources), the lab channel's golden ORU^R01s (everyday size), ADT, ORM^O01, and
 * everything mapped. Method as bench:parse: a correctness pass (every message converts or says MAPPING_NONE), a
 * warm-up, then --rounds rounds of ≥ --round-ms per set, interleaved; the median round is reported.
 * It measures; it asserts nothing.
 *
 *   npm run bench:map [-- --json] [--rounds 5] [--round-ms 1000] [--warmup-ms 1000]
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { parseArgs } from 'node:util';
import { isEngineError } from '../src/errors.js';
import { validateBundle } from '../src/fhir/fhir-validator.js';
import { decodeHl7 } from '../src/hl7/charset.js';
import { parse } from '../src/hl7/index.js';
import { convertMessage } from '../src/mapping/conversion.js';
import { MappingCatalog } from '../src/mapping/mapping-catalog.js';
import { type CorpusMessage, loadCorpus } from '../test/support/corpus.js';

const { values: args } = parseArgs({
  options: {
    json: { type: 'boolean', default: false },
    rounds: { type: 'string', default: '5' },
    'round-ms': { type: 'string', default: '1000' },
    'warmup-ms': { type: 'string', default: '1000' },
  },
});
const ROUNDS = Number(args.rounds);
const ROUND_MS = Number(args['round-ms']);
const WARMUP_MS = Number(args['warmup-ms']);

const catalog = MappingCatalog.load();
for (const name of catalog.messageMapNames()) catalog.compile(name);

interface Item {
  readonly id: string;
  readonly raw: Buffer;
  readonly type: string;
}

/** Bytes as a sender would send them: the corpus text in UTF-8 (its files are UTF-8 or ASCII). */
function items(): { mapped: Item[]; unmapped: string[] } {
  const mapped: Item[] = [];
  const unmapped: string[] = [];
  for (const m of loadCorpus() as CorpusMessage[]) {
    const raw = Buffer.from(m.text, 'utf8');
    try {
      convertOne(raw);
      const msg = parse(m.text);
      mapped.push({ id: m.id, raw, type: `${msg.get('MSH-9-1')}^${msg.get('MSH-9-2')}` });
    } catch (err) {
      if (isEngineError(err, 'MAPPING_NONE')) unmapped.push(m.id);
      else throw new Error(`${m.id} does not convert: ${(err as Error).message}`);
    }
  }
  return { mapped, unmapped };
}

function convertOne(raw: Buffer): unknown {
  const message = parse(decodeHl7(raw).text);
  const rawSha256 = createHash('sha256').update(raw).digest('hex');
  return convertMessage(message, { catalog, rawSha256 }).bundle;
}

/** What delivery does on top: the Bundle as JSON text. */
function convertToJson(raw: Buffer): string {
  return JSON.stringify(convertOne(raw));
}

function convertAndValidate(raw: Buffer): number {
  const message = parse(decodeHl7(raw).text);
  const rawSha256 = createHash('sha256').update(raw).digest('hex');
  return validateBundle(convertMessage(message, { catalog, rawSha256 }).bundle).length;
}

interface Job {
  readonly name: string;
  readonly items: readonly Item[];
  readonly run: (raw: Buffer) => unknown;
}

/** Loops over the job's messages for at least `ms`; returns messages per second. */
function round(job: Job, ms: number): number {
  let n = 0;
  const start = performance.now();
  let now = start;
  while (now - start < ms) {
    for (const it of job.items) job.run(it.raw);
    n += job.items.length;
    now = performance.now();
  }
  return (n * 1000) / (now - start);
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] as number;
}

const { mapped, unmapped } = items();
/** The shipped lab channel's golden ORU^R01s: lab results of everyday size (0.8–1.5 kB, 1–2 OBR). */
const GOLDEN_DIR = new URL('../channels/lab-results.tests/', import.meta.url);
const golden: Item[] = readdirSync(GOLDEN_DIR)
  .filter((f) => f.endsWith('.hl7'))
  .sort()
  .map((f) => ({ id: f, raw: readFileSync(new URL(f, GOLDEN_DIR)), type: 'ORU^R01' }));
const byType = (re: RegExp) => mapped.filter((i) => re.test(i.type));
const jobs: Job[] = [
  { name: 'ORU^R01 parse+map', items: byType(/^ORU\^R01$/), run: convertOne },
  { name: 'ORU^R01 parse+map+JSON', items: byType(/^ORU\^R01$/), run: convertToJson },
  { name: 'golden lab ORU^R01 parse+map', items: golden, run: convertOne },
  { name: 'ADT parse+map', items: byType(/^ADT\^/), run: convertOne },
  { name: 'ORM^O01 parse+map', items: byType(/^ORM\^O01$/), run: convertOne },
  { name: 'all mapped parse+map', items: mapped, run: convertOne },
  { name: 'ORU^R01 parse+map+validate', items: byType(/^ORU\^R01$/), run: convertAndValidate },
  { name: 'all mapped parse+map+validate', items: mapped, run: convertAndValidate },
].filter((j) => j.items.length > 0);

// Warm-up (JIT, the FHIR definitions load on the first validation), then interleaved rounds.
for (const job of jobs) round(job, WARMUP_MS);
const rates = new Map<string, number[]>(jobs.map((j) => [j.name, []]));
for (let r = 0; r < ROUNDS; r++) {
  for (const job of jobs) {
    (globalThis as { gc?: () => void }).gc?.();
    rates.get(job.name)?.push(round(job, ROUND_MS));
  }
}

const results = jobs.map((j) => {
  const rs = rates.get(j.name) as number[];
  return {
    set: j.name,
    messages: j.items.length,
    msgPerSec: Math.round(median(rs)),
    min: Math.round(Math.min(...rs)),
    max: Math.round(Math.max(...rs)),
  };
});
const machine = { cpu: cpus()[0]?.model ?? '?', cores: cpus().length, node: process.version };
if (args.json) {
  console.log(JSON.stringify({ machine, rounds: ROUNDS, roundMs: ROUND_MS, unmapped, results }, null, 2));
} else {
  console.log(`bench:map — ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}; one thread`);
  console.log(`corpus: ${mapped.length} messages mapped, ${unmapped.length} without a map (MAPPING_NONE)`);
  console.log(`median of ${ROUNDS} rounds × ≥${ROUND_MS} ms (min–max in brackets)\n`);
  for (const r of results) {
    console.log(
      `${r.set.padEnd(34)} ${String(r.messages).padStart(4)} msgs  ${String(r.msgPerSec).padStart(7)} msg/s  [${r.min}–${r.max}]`,
    );
  }
  const oru = results.find((r) => r.set === 'ORU^R01 parse+map');
  if (oru)
    console.log(
      `\ngoal ORU^R01 ≥ 5,000 msg/s on one core without validation: ${oru.msgPerSec >= 5000 ? 'met' : 'NOT met'}`,
    );
}
