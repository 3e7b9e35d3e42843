/**
 * Pathological inputs (each ≤ about 1 MB), run in a child process by parser.fuzz.test.ts so that a hang
 * is caught by design: the parent kills the child at a deadline and reports the case that was running
 * (a synchronous infinite loop inside a vitest worker could never be interrupted by a test timeout).
 *
 *   node --import tsx test/fuzz/pathological-runner.ts [case...]
 *
 * Prints one line per case: `START <name>`, then `DONE <json>` with the outcome (`ok` or the EngineError
 * code) — or `FAIL <json>` when something other than an EngineError was thrown.
 */
import { EngineError } from '../../src/errors.js';
import { parse, parseBatch, readMshHeader } from '../../src/hl7/index.js';

const MB = 1 << 20;
const H = 'MSH|^~\\&|APP|FAC|RAPP|RFAC|20240101000000||ORU^R01|CTRL1|P|2.5\r';

/** Reads what a mapping would read, so laziness cannot hide slow paths. */
function readAll(text: string, paths: string[]): string {
  const m = parse(text);
  if (m.encode() !== text) throw new Error('encode() does not return the input');
  let sizes = 0;
  for (const p of paths) {
    sizes += m.get(p).length;
    sizes += m.getRaw(p)?.length ?? 0;
  }
  for (const seg of m.segments().slice(0, 50)) {
    for (let f = 0; f <= Math.min(seg.fieldCount, 40); f++) sizes += seg.getValue(f).length;
  }
  return `${m.segmentCount} segments, ${sizes} chars read`;
}

function header(text: string): string {
  const h = readMshHeader(text);
  return `controlId ${h.controlId.length} chars`;
}

function batch(text: string): string {
  const b = parseBatch(text);
  return `${b.messages.length} messages`;
}

const CASES: Record<string, () => string> = {
  'escape chars: a 1 MB field of \\': () =>
    readAll(`${H}OBX|1|TX|||${'\\'.repeat(MB)}\r`, ['OBX-5', 'OBX-5-2']),
  'escape chars: 1 MB of \\X': () => readAll(`${H}OBX|1|TX|||${'\\X'.repeat(MB / 2)}`, ['OBX-5']),
  'escape chars: 1 MB of \\E\\': () => readAll(`${H}OBX|1|TX|||${'\\E\\'.repeat(MB / 3)}`, ['OBX-5']),
  'escape chars: one unterminated escape before 1 MB': () =>
    readAll(`${H}OBX|1|TX|||\\X${'A'.repeat(MB)}`, ['OBX-5']),
  'escape chars: a 1 MB hex escape': () => readAll(`${H}OBX|1|ED|||\\X${'C3A9'.repeat(MB / 4)}\\`, ['OBX-5']),
  'escape chars: 1 MB of \\.br\\': () => readAll(`${H}NTE|1||${'\\.br\\'.repeat(MB / 5)}`, ['NTE-3']),
  'escape chars: 100k × \\.sk1000\\ (100 MB decoded)': () =>
    readAll(`${H}NTE|1||${'\\.sk1000\\'.repeat(100_000)}`, ['NTE-3']),
  'segments: 100k PID with CR': () =>
    readAll(H + 'PID|1|x\r'.repeat(100_000), ['PID[100000]-2', 'PID[99999]-1', 'ZZZ-1']),
  'segments: 100k with LF, CRLF and blank lines': () =>
    readAll(`${H}${'PID|1\n\r\n\n'.repeat(100_000)}OBX|9`, ['OBX-1', 'PID[50000]-1']),
  'segments: 1 MB of terminators only': () => readAll(`${H}${'\r\n'.repeat(MB / 2)}`, ['PID-1']),
  'segments: LFs, then one CR at the end': () => readAll(`${H}${'PID|1\n'.repeat(150_000)}\r`, ['PID-1']),
  'no terminator: 1 MB after MSH': () => readAll(`MSH|^~\\&|${'A'.repeat(MB)}`, ['MSH-3', 'MSH-30']),
  'no terminator: 1 MB of garbage': () => readAll('x'.repeat(MB), ['PID-1']),
  'no terminator: 1 MB of field separators': () =>
    readAll(`${H}OBX${'|'.repeat(MB)}`, ['OBX-30', 'OBX-99999']),
  'components: 1 MB of ^': () => readAll(`${H}OBX|1|TX|||${'^'.repeat(MB)}`, ['OBX-5-8', 'OBX-5(2)-1']),
  'repetitions: 1 MB of ~ (get, getRaw)': () =>
    readAll(`${H}OBX|1|TX|||${'~'.repeat(MB)}`, ['OBX-5(3)-1', 'OBX-5(1000000)']),
  'subcomponents: 1 MB of &': () => readAll(`${H}OBX|1|TX|||${'&'.repeat(MB)}`, ['OBX-5-1-3']),
  'toJSON: 1 MB of ~^&': () => String(parse(`${H}OBX|1|TX|||${'~^&'.repeat(MB / 3)}`).toJSON().length),
  'MSH-2: 1 MB of encoding characters': () => readAll(`MSH|${'^'.repeat(MB)}|A`, ['MSH-3']),
  'MSH-2: 1 MB of distinct characters': () =>
    readAll(
      `MSH|${Array.from({ length: MB / 4 }, (_, i) => String.fromCharCode(0x4e00 + (i % 20_000))).join('')}|A`,
      ['MSH-3'],
    ),
  'leading whitespace: 1 MB before MSH': () => readAll(`${' '.repeat(MB)}${H}PID|1`, ['PID-1']),
  'readMshHeader: 1 MB of whitespace': () => header(`${'\u00A0'.repeat(MB)}MSH|^~\\&|A`),
  'readMshHeader: 1 MB MSH segment': () => header(`MSH|^~\\&|${'|'.repeat(MB)}`),
  'parseBatch: 50k messages': () =>
    batch(`FHS|^~\\&\rBHS|^~\\&\r${`${H}PID|1\r`.repeat(50_000)}BTS|50000\rFTS|1\r`),
  'parseBatch: 100k BTS lines': () => batch(`BHS|^~\\&\r${'BTS|1\r'.repeat(100_000)}`),
  'parseBatch: 1 MB without terminator': () => batch(`BHS|^~\\&|${'A'.repeat(MB)}`),
  'parseBatch: 1 MB of garbage': () => batch('-'.repeat(MB)),
};

/** Known bug (see the fuzz report): getAll over many repetitions is quadratic. */
const KNOWN_SLOW: Record<string, () => string> = {
  'getAll over 100k repetitions': () =>
    String(parse(`${H}OBX|1|TX|||${'~'.repeat(100_000)}`).getAll('OBX-5').length),
};

function run(name: string, fn: () => string): void {
  process.stdout.write(`START ${name}\n`);
  const heapBefore = process.memoryUsage().heapUsed;
  try {
    const result = fn();
    const heapMB = Math.round((process.memoryUsage().heapUsed - heapBefore) / MB);
    process.stdout.write(`DONE ${JSON.stringify({ name, outcome: 'ok', result, heapMB })}\n`);
  } catch (e) {
    if (e instanceof EngineError) {
      process.stdout.write(`DONE ${JSON.stringify({ name, outcome: e.code, message: e.message })}\n`);
    } else {
      const error = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
      process.stdout.write(`FAIL ${JSON.stringify({ name, error })}\n`);
    }
  }
}

const all = { ...CASES, ...KNOWN_SLOW };
const wanted = process.argv.slice(2);
const names = wanted.length > 0 ? wanted : Object.keys(CASES);
process.stdout.write(`COUNT ${names.length}\n`);
for (const name of names) {
  const fn = all[name];
  if (!fn) {
    process.stdout.write(`FAIL ${JSON.stringify({ name, error: 'no such case' })}\n`);
    continue;
  }
  run(name, fn);
}
