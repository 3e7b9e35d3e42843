/**
 * Fuzzing the HL7 v2 parser's contract (src/hl7):
 * - parse / readMshHeader / parseBatch either succeed or throw an EngineError — never another exception,
 *   never a hang — and an EngineError's text is its registry template (no message content);
 * - a parsed message encodes back to its input, and every read of a valid path returns a string, the
 *   same string a naive split()-based reader computes;
 * - an ACK built from any readable MSH is itself parseable and echoes the control id.
 *
 * Fixed seed by default; FUZZ_SEED / FUZZ_RUNS explore further (see fuzz-support.ts).
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
import vm from 'node:vm';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EngineError } from '../../src/errors.js';
import {
  type AckOutcome,
  ackCode,
  ackModeFor,
  buildAck,
  type Hl7Message,
  type MshHeader,
  parse,
  parseBatch,
  readMshHeader,
} from '../../src/hl7/index.js';
import { loadCorpus } from '../support/corpus.js';
import {
  assertPhiSafe,
  attempt,
  attemptSafely,
  buildPath,
  bytesAsText,
  FUZZ_RUNS,
  FUZZ_SEED,
  FUZZ_TIMEOUT,
  fragmentArb,
  fuzzParams,
  mutatedCorpusArb,
  type PathSpec,
  pathSpecArb,
  randomMessageArb,
  referenceGet,
  referenceGetRaw,
  referenceSegments,
  smallMutationArb,
} from './fuzz-support.js';

const corpus = loadCorpus();

const FIXED_PATHS = [
  'MSH',
  'MSH-0',
  'MSH-1',
  'MSH-2',
  'MSH-2-1',
  'MSH-3',
  'MSH-7',
  'MSH-9',
  'MSH-9-1',
  'MSH-9-2',
  'MSH-10',
  'MSH-12',
  'MSH-18',
  'MSH[2]-3',
  'PID-3',
  'PID-3(2)-1',
  'PID-5',
  'PID-5-1-1',
  'PID[2]-5',
  'OBX-5',
  'OBX(2)-5',
  'OBX.5.1',
  'NTE-3',
  'ZZ1-1',
  'PV1-19',
  'BTS-1',
  'FHS-9',
];

function fail(message: string): never {
  throw new Error(message);
}

function show(v: string | undefined): string {
  if (v === undefined) return 'undefined';
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…(${v.length})` : v);
}

/**
 * Everything a reader may do with a parsed message, compared with the split()-based reference where there
 * is one. Plain comparisons instead of expect(): this runs tens of thousands of times.
 */
function exerciseMessage(msg: Hl7Message, text: string, specs: readonly PathSpec[]): void {
  if (msg.encode() !== text) fail('encode() of an unmodified message differs from its input');
  if (msg.toString() !== text) fail('toString() differs from the input');
  const d = msg.delimiters;
  const segs = referenceSegments(text);
  const raws = msg.segments().map((s) => s.raw);
  if (raws.length !== segs.length || raws.some((r, i) => r !== segs[i]))
    fail(`segments differ from the reference split: ${raws.length} vs ${segs.length}`);
  const names = msg.segments().map((s) => s.name);
  for (const path of FIXED_PATHS) {
    if (typeof msg.get(path) !== 'string') fail(`get(${path}) is not a string`);
    const raw = msg.getRaw(path);
    if (raw !== undefined && typeof raw !== 'string') fail(`getRaw(${path}) is not a string`);
  }
  const small = text.length < 20_000; // getAll is quadratic in repetitions (known bug), keep it to small input
  for (const spec of specs) {
    const { path, p } = buildPath(names, spec);
    const got = msg.get(path);
    const want = referenceGet(segs, d, p);
    if (got !== want) fail(`get(${path}) = ${show(got)}, the reference reads ${show(want)}`);
    const gotRaw = msg.getRaw(path);
    const wantRaw = referenceGetRaw(segs, d, p);
    if (gotRaw !== wantRaw) fail(`getRaw(${path}) = ${show(gotRaw)}, the reference reads ${show(wantRaw)}`);
    if (msg.isExplicitNull(path) !== (wantRaw === '""')) fail(`isExplicitNull(${path}) is wrong`);
    if (small) {
      const all = msg.getAll(path);
      if (!all.every((v) => typeof v === 'string')) fail(`getAll(${path}) returned a non-string`);
    }
  }
  for (const seg of msg.segments().slice(0, 60)) {
    for (let f = 0; f <= Math.min(seg.fieldCount, 40); f++) {
      seg.getRaw(f);
      seg.getPartRaw(f, 1, 1, 1);
      seg.repetitionCount(f);
      if (typeof seg.getValue(f) !== 'string') fail(`getValue(${f}) is not a string`);
    }
  }
  if (text.length < 200_000) JSON.stringify(msg.toJSON());
}

const ACK_CONTROL_ID = 'FUZZACK1';
const NOW = new Date(Date.UTC(2024, 0, 2, 3, 4, 5, 678));

/** An ACK for any readable header must build, parse, and echo the control id into MSA-2. */
function checkAck(h: MshHeader, outcome: AckOutcome, error: EngineError | undefined): void {
  const ack = attempt('buildAck', () => buildAck(h, { outcome, error, controlId: ACK_CONTROL_ID, now: NOW }));
  if (!ack.ok) fail(`buildAck threw ${ack.error.code}`);
  const parsed = attempt('parse(ack)', () => parse(ack.value));
  if (!parsed.ok) fail(`the ACK does not parse: ${parsed.error.code}`);
  const m = parsed.value;
  if (m.getRaw('MSA-2') !== h.controlId) fail(`MSA-2 = ${show(m.getRaw('MSA-2'))}, not the control id`);
  if (m.get('MSA-1') !== ackCode(ackModeFor(h), outcome)) fail(`MSA-1 = ${show(m.get('MSA-1'))}`);
  if (m.getRaw('MSH-10') !== ACK_CONTROL_ID) fail(`the ACK's MSH-10 = ${show(m.getRaw('MSH-10'))}`);
  if (error && h.delimiters.escape !== '' && m.get('MSA-3') !== error.message)
    fail(`MSA-3 = ${show(m.get('MSA-3'))}, not the error text`);
}

interface Tally {
  inputs: number;
  parsed: number;
  headers: number;
  batches: number;
}

const newTally = (): Tally => ({ inputs: 0, parsed: 0, headers: 0, batches: 0 });

/** The whole contract for one input: all three entry points, then reads of whatever was accepted. */
function checkInput(text: string, specs: readonly PathSpec[], outcome: AckOutcome, tally: Tally): void {
  tally.inputs++;
  const parsed = attemptSafely('parse', text, () => parse(text));
  const header = attemptSafely('readMshHeader', text, () => readMshHeader(text));
  const batch = attemptSafely('parseBatch', text, () => parseBatch(text));

  if (parsed.ok) {
    tally.parsed++;
    const msg = parsed.value;
    exerciseMessage(msg, text, specs);
    if (!header.ok) fail(`readMshHeader rejects (${header.error.code}) a message parse accepts`);
    const h = header.value;
    for (const k of ['field', 'component', 'repetition', 'escape', 'subcomponent', 'truncation'] as const) {
      if (h.delimiters[k] !== msg.delimiters[k])
        fail(`readMshHeader reads another ${k} delimiter than parse`);
    }
    if (h.controlId !== (msg.getRaw('MSH-10') ?? '')) fail('readMshHeader and parse disagree on MSH-10');
    if (h.sendingApplication !== (msg.getRaw('MSH-3') ?? ''))
      fail('readMshHeader and parse disagree on MSH-3');
    // A plain message (one MSH, no envelope segments) is a batch of one: itself, from its MSH on.
    const segs = msg.segments();
    if (!segs.slice(1).some((s) => ['MSH', 'FHS', 'BHS', 'BTS', 'FTS'].includes(s.name))) {
      if (!batch.ok) fail(`parseBatch rejects (${batch.error.code}) a single message parse accepts`);
      const only = batch.value.messages;
      if (only.length !== 1 || only[0]!.encode() !== text.slice(text.indexOf('MSH')))
        fail('parseBatch of a single message does not give that message');
    }
  }
  if (header.ok) {
    tally.headers++;
    checkAck(header.value, outcome, parsed.ok ? undefined : parsed.error);
  }
  if (batch.ok) {
    tally.batches++;
    // Every message is a verbatim slice of the input, in order.
    let cursor = 0;
    for (const m of batch.value.messages) {
      const at = text.indexOf(m.text, cursor);
      if (at === -1) fail('a batch message is not a slice of the input');
      cursor = at + m.text.length;
    }
    for (const m of batch.value.messages.slice(0, 3)) exerciseMessage(m, m.text, specs.slice(0, 4));
  }
}

const specsArb = fc.array(pathSpecArb, { minLength: 1, maxLength: 16 });
const outcomeArb = fc.constantFrom<AckOutcome>('accept', 'error', 'reject');

describe('the fuzz checks themselves', () => {
  it('the PHI check accepts registry templates and rejects error text carrying message content', () => {
    const input = 'MSH|^~\\&|A\rPID|1||SMITHERS^JOHN\r';
    expect(() =>
      assertPhiSafe(new EngineError('HL7_BAD_SEGMENT_NAME', { segmentIndex: 2 }, { segmentIndex: 2 }), input),
    ).not.toThrow();
    expect(() =>
      assertPhiSafe(new EngineError('HL7_BAD_SEGMENT_NAME', { segmentIndex: 'SMITHERS' }), input),
    ).toThrow(/non-numeric detail/);
    const leaky = new EngineError('HL7_EMPTY');
    Object.defineProperty(leaky, 'message', { value: 'segment name SMITHERS is invalid' });
    expect(() => assertPhiSafe(leaky, input)).toThrow(/repeats input content "SMITHE"/);
  });

  it('the reference reader and the parser agree on a hand-checked message', () => {
    const text = 'MSH|^~\\&|A\rPID|1||1^^^M~2^^^N||DOE&X^JANE\\S\\Q\r\nPID|2';
    const m = parse(text);
    const segs = referenceSegments(text);
    const p = (
      occurrence: number,
      field: number,
      repetition?: number,
      component?: number,
      subcomponent?: number,
    ) => ({
      segment: 'PID',
      occurrence,
      field,
      repetition,
      component,
      subcomponent,
    });
    expect(referenceGet(segs, m.delimiters, p(1, 3, 2, 4))).toBe('N');
    expect(referenceGet(segs, m.delimiters, p(1, 5, undefined, 2))).toBe('JANE^Q');
    expect(referenceGet(segs, m.delimiters, p(1, 5, undefined, 1, 2))).toBe('X');
    expect(referenceGetRaw(segs, m.delimiters, p(2, 1))).toBe('2');
    expect(m.get('PID-5-2')).toBe('JANE^Q');
  });
});

describe('parser fuzz: random input', () => {
  it(
    'random bytes (latin1 and utf8) and bytes after MSH: only EngineError, reads match the reference',
    () => {
      const tally = newTally();
      const input = fc.oneof(
        bytesAsText,
        bytesAsText.map((t) => `MSH${t}`),
        fc
          .tuple(
            fc.constantFrom('MSH|^~\\&|', 'MSH|^~\\&#|', ' \uFEFFMSH|^~\\&|', 'FHS|^~\\&|\rBHS|^~\\&\r'),
            bytesAsText,
          )
          .map(([a, b]) => a + b),
        fc.array(fragmentArb, { maxLength: 40 }).map((parts) => `MSH|^~\\&|${parts.join('')}`),
      );
      fc.assert(
        fc.property(input, specsArb, outcomeArb, (text, specs, outcome) =>
          checkInput(text, specs, outcome, tally),
        ),
        fuzzParams(2_500),
      );
      if (FUZZ_RUNS === undefined) expect(tally.parsed).toBeGreaterThan(tally.inputs / 5);
    },
    FUZZ_TIMEOUT,
  );

  it(
    'random message-shaped text with random encoding characters: same contract',
    () => {
      const tally = newTally();
      fc.assert(
        fc.property(randomMessageArb, specsArb, outcomeArb, (text, specs, outcome) =>
          checkInput(text, specs, outcome, tally),
        ),
        fuzzParams(2_500),
      );
      if (FUZZ_RUNS === undefined) expect(tally.parsed).toBeGreaterThan(tally.inputs / 5);
    },
    FUZZ_TIMEOUT,
  );
});

describe('parser fuzz: mutated corpus messages', () => {
  it(
    'deleted, inserted, replaced bytes, duplicated segments, swapped delimiters, escapes, truncation, huge fields, unusual MSH-2',
    () => {
      const tally = newTally();
      fc.assert(
        fc.property(mutatedCorpusArb(corpus), specsArb, outcomeArb, (text, specs, outcome) =>
          checkInput(text, specs, outcome, tally),
        ),
        fuzzParams(2_000),
      );
      // The mutations must leave enough messages parseable for the read checks to mean something.
      if (FUZZ_RUNS === undefined) {
        expect(tally.parsed).toBeGreaterThan(tally.inputs / 3);
        expect(tally.batches).toBeGreaterThan(tally.inputs / 4);
      }
    },
    FUZZ_TIMEOUT,
  );

  it(
    'every unmutated corpus message passes the same checks',
    () => {
      const tally = newTally();
      const specs = fc.sample(specsArb, { seed: FUZZ_SEED, numRuns: corpus.length });
      corpus.forEach((c, i) => {
        checkInput(c.text, specs[i]!, 'error', tally);
      });
      expect(tally.parsed).toBe(corpus.length);
    },
    FUZZ_TIMEOUT,
  );
});

describe('parser fuzz: pathological inputs do not hang', () => {
  const runner = fileURLToPath(new URL('./pathological-runner.ts', import.meta.url));
  const root = fileURLToPath(new URL('../../', import.meta.url));

  /** Runs cases in a child process that is killed at the deadline, so a hang fails instead of blocking. */
  function runCases(args: string[], timeoutMs: number) {
    const child = spawnSync(process.execPath, ['--import', 'tsx', runner, ...args], {
      cwd: root,
      encoding: 'utf8',
      timeout: timeoutMs,
      maxBuffer: 16 << 20,
    });
    const lines = child.stdout.split('\n');
    const count = Number(lines.find((l) => l.startsWith('COUNT '))?.slice(6));
    const started = lines.filter((l) => l.startsWith('START ')).map((l) => l.slice(6));
    const done = lines.filter((l) => l.startsWith('DONE ')).map((l) => JSON.parse(l.slice(5)));
    const failed = lines.filter((l) => l.startsWith('FAIL ')).map((l) => JSON.parse(l.slice(5)));
    const finished = new Set([...done, ...failed].map((r: { name: string }) => r.name));
    const unfinished = started.filter((n) => !finished.has(n));
    return { child, count, started, done, failed, unfinished };
  }

  it('each ≤ 1 MB pathological input finishes (escape storms, 100k segments, no terminator, …)', () => {
    const r = runCases([], 60_000);
    expect(r.child.stderr).not.toMatch(/Error/);
    expect(r.unfinished, 'a case hung or crashed the process').toEqual([]);
    expect(r.failed, 'threw something other than an EngineError').toEqual([]);
    expect(r.child.status).toBe(0);
    expect(r.count).toBeGreaterThan(20);
    expect(r.done).toHaveLength(r.count);
    for (const d of r.done as Array<{ outcome: string; message?: string }>) {
      if (d.outcome !== 'ok') expect(d.outcome).toMatch(/^HL7_/);
    }
  }, 70_000);

  // Found by this suite: getAll used to walk every repetition from the start of the field (O(n²): 40k
  // repetitions took ~10 s). It splits once now; a generous deadline catches a regression as a hang.
  it('getAll over 100k repetitions does not hang', () => {
    const r = runCases(['getAll over 100k repetitions'], 30_000);
    expect(r.unfinished).toEqual([]);
    expect(r.done).toHaveLength(1);
  }, 40_000);
});

describe('parser fuzz: bounded memory', () => {
  function collectGarbage(): (() => void) | undefined {
    const g = (globalThis as { gc?: () => void }).gc;
    if (typeof g === 'function') return g;
    try {
      v8.setFlagsFromString('--expose-gc');
      const fn: unknown = vm.runInNewContext('gc');
      return typeof fn === 'function' ? (fn as () => void) : undefined;
    } catch {
      return undefined;
    }
  }

  it('parsing and reading 20k mutated messages does not grow the heap', () => {
    const gc = collectGarbage();
    const texts = (chunk: number) =>
      fc.sample(mutatedCorpusArb(corpus, smallMutationArb), { seed: FUZZ_SEED + chunk, numRuns: 1_000 });
    const paths = [
      'MSH-9-1',
      'MSH-10',
      'PID-3',
      'PID-5-1',
      'PID-5-2',
      'OBX-5',
      'OBX[2]-3-1',
      'PV1-19',
      'NTE-3',
    ];
    let reads = 0;
    const round = (chunk: number) => {
      for (const text of texts(chunk)) {
        try {
          const m = parse(text);
          for (const p of paths) reads += m.get(p).length;
          for (const seg of m.segments()) {
            for (let f = 1; f <= Math.min(seg.fieldCount, 25); f++) reads += seg.getValue(f).length;
          }
          readMshHeader(text);
        } catch (e) {
          if (!(e instanceof EngineError)) throw e;
        }
      }
    };
    round(0); // warm-up: caches, JIT
    gc?.();
    const before = process.memoryUsage().heapUsed;
    for (let chunk = 1; chunk <= 20; chunk++) round(chunk);
    gc?.();
    const growth = process.memoryUsage().heapUsed - before;
    expect(reads).toBeGreaterThan(0);
    if (process.env.FUZZ_VERBOSE)
      console.log(`heap growth ${(growth / 2 ** 20).toFixed(1)} MB, gc ${gc ? 'forced' : 'unavailable'}`);
    // Nothing is retained between messages; with a forced GC the growth is noise. Without one, garbage
    // may still be uncollected, so the bound is looser.
    expect(growth).toBeLessThan((gc ? 64 : 200) * 2 ** 20);
  }, 60_000);
});
