import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameMessage, type GarbageReason, MllpFramer, OVERSIZE_HEAD_BYTES } from './mllp-framer.js';

type Event = ['frame', string] | ['oversize', string, number] | ['garbage', number, GarbageReason];

function framerWithLog(maxFrameBytes?: number) {
  const events: Event[] = [];
  const framer = new MllpFramer({
    ...(maxFrameBytes === undefined ? {} : { maxFrameBytes }),
    onFrame: (f) => events.push(['frame', f.toString('latin1')]),
    onOversize: (head, total) => events.push(['oversize', head.toString('latin1'), total]),
    onGarbage: (n, reason) => events.push(['garbage', n, reason]),
  });
  return { framer, events };
}

/** Test streams are written with visible markers: `<` = VT, `>` = FS, `^` = CR. */
function bytes(s: string): Buffer {
  return Buffer.from(s.replaceAll('<', '\x0b').replaceAll('>', '\x1c').replaceAll('^', '\x0d'), 'latin1');
}

function run(chunks: Buffer[], maxFrameBytes?: number): Event[] {
  const { framer, events } = framerWithLog(maxFrameBytes);
  for (const c of chunks) framer.push(c);
  framer.end();
  return events;
}

/** Garbage reports of one kind may be split across pushes; compare their sums. */
function normalise(events: Event[]): Event[] {
  const out: Event[] = [];
  for (const e of events) {
    const last = out.at(-1);
    if (e[0] === 'garbage' && last?.[0] === 'garbage' && last[2] === e[2]) last[1] += e[1];
    else out.push([...e] as Event);
  }
  return out;
}

describe('MllpFramer', () => {
  const a = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5^PID|1||X^';
  const b = 'MSH|^~\\&|A|B|C|D|20240101||ADT^A01|2|P|2.5^';
  const two = bytes(`<${a}>^<${b}>^`);
  const expected: Event[] = [
    ['frame', bytes(a).toString('latin1')],
    ['frame', bytes(b).toString('latin1')],
  ];

  it('reads one frame', () => {
    expect(run([bytes(`<${a}>^`)])).toEqual([expected[0]]);
  });

  it('reads a two-frame stream split at every byte offset, including between FS and CR', () => {
    for (let i = 0; i <= two.length; i++) {
      expect(run([two.subarray(0, i), two.subarray(i)]), `split at ${i}`).toEqual(expected);
    }
  });

  it('reads a two-frame stream split at every pair of offsets', () => {
    for (let i = 0; i <= two.length; i++) {
      for (let j = i; j <= two.length; j++) {
        const chunks = [two.subarray(0, i), two.subarray(i, j), two.subarray(j)];
        expect(run(chunks), `split at ${i},${j}`).toEqual(expected);
      }
    }
  });

  it('reads a stream fed one byte at a time', () => {
    expect(run([...two].map((byte) => Buffer.from([byte])))).toEqual(expected);
  });

  it('reads several frames arriving in one chunk', () => {
    const chunk = bytes(`<1>^<2>^<3>^<4>^`);
    expect(run([chunk])).toEqual([
      ['frame', '1'],
      ['frame', '2'],
      ['frame', '3'],
      ['frame', '4'],
    ]);
  });

  it('discards bytes before VT, reporting only their count', () => {
    expect(run([bytes(`noise<1>^`)])).toEqual([
      ['garbage', 5, 'before-start'],
      ['frame', '1'],
    ]);
    expect(normalise(run([bytes('no'), bytes('ise'), bytes('<1>^xy')]))).toEqual([
      ['garbage', 5, 'before-start'],
      ['frame', '1'],
      ['garbage', 2, 'before-start'],
    ]);
  });

  it('accepts FS without the trailing CR: the frame ends at FS', () => {
    expect(run([bytes('<1><2>')])).toEqual([
      ['frame', '1'],
      ['frame', '2'],
    ]);
    expect(run([bytes('<1>x<2>^')])).toEqual([
      ['frame', '1'],
      ['garbage', 1, 'before-start'],
      ['frame', '2'],
    ]);
  });

  it('delivers a frame at FS without waiting for the CR', () => {
    const { framer, events } = framerWithLog();
    framer.push(bytes('<1>'));
    expect(events).toEqual([['frame', '1']]);
    framer.push(bytes('^'));
    expect(events).toEqual([['frame', '1']]);
  });

  it('abandons an unfinished frame when a VT starts a new one', () => {
    expect(run([bytes('<abc<def>^')])).toEqual([
      ['garbage', 4, 'interrupted'],
      ['frame', 'def'],
    ]);
    expect(run([bytes('<abc'), bytes('<def>^')])).toEqual([
      ['garbage', 4, 'interrupted'],
      ['frame', 'def'],
    ]);
  });

  it('reports an empty frame as an empty payload', () => {
    expect(run([bytes('<>^<>')])).toEqual([
      ['frame', ''],
      ['frame', ''],
    ]);
  });

  it('reports a frame cut short by the end of the stream as truncated', () => {
    const { framer, events } = framerWithLog();
    framer.push(bytes('<1>^<partial'));
    framer.end();
    framer.push(bytes('<2>^'));
    expect(events).toEqual([
      ['frame', '1'],
      ['garbage', 8, 'truncated'],
      ['frame', '2'],
    ]);
  });

  it('accepts a frame of exactly maxFrameBytes', () => {
    expect(run([bytes('<12345>^')], 5)).toEqual([['frame', '12345']]);
  });

  it('reports an oversize frame once with its head, drops the rest, and reads the next frame', () => {
    const events = run([bytes('<0123456789'), bytes('abcdefghij'), bytes('klm>^<ok>^')], 8);
    expect(events).toEqual([
      ['oversize', '01234567', 10],
      ['frame', 'ok'],
    ]);
  });

  it('reports an oversize frame that completes within one chunk', () => {
    expect(run([bytes('<0123456789>^<ok>^')], 8)).toEqual([
      ['oversize', '01234567', 10],
      ['frame', 'ok'],
    ]);
  });

  it('ends an oversize frame at a VT that starts a new one', () => {
    expect(run([bytes('<0123456789'), bytes('abc<ok>^')], 8)).toEqual([
      ['oversize', '01234567', 10],
      ['frame', 'ok'],
    ]);
  });

  it('never buffers more than maxFrameBytes of a huge frame, and hands over at most 64 KiB of head', () => {
    const limit = 256 * 1024;
    const heads: number[] = [];
    let frames = 0;
    let peak = 0;
    const framer = new MllpFramer({
      maxFrameBytes: limit,
      onFrame: () => frames++,
      onOversize: (head) => heads.push(head.length),
    });
    const chunk = Buffer.alloc(64 * 1024, 0x41);
    framer.push(Buffer.from([0x0b]));
    for (let i = 0; i < 320; i++) {
      framer.push(chunk); // 20 MiB in all
      peak = Math.max(peak, framer.bufferedBytes);
    }
    framer.push(bytes('>^<ok>^'));
    expect(heads).toEqual([OVERSIZE_HEAD_BYTES]);
    expect(peak).toBeLessThanOrEqual(limit);
    expect(framer.bufferedBytes).toBe(0);
    expect(frames).toBe(1);
  });

  it('hands over a head no longer than a small limit', () => {
    const events = run([bytes(`<${'x'.repeat(100)}>^`)], 10);
    expect(events).toEqual([['oversize', 'x'.repeat(10), 100]]);
  });

  it('copies each frame out of the chunks it came from', () => {
    const chunk = bytes('<abc>^');
    let frame: Buffer | undefined;
    new MllpFramer({ onFrame: (f) => (frame = f) }).push(chunk);
    chunk.fill(0);
    expect(frame?.toString()).toBe('abc');
  });

  it('recovers every frame from random frames, garbage and chunk boundaries', () => {
    const payload = fc
      .uint8Array({ maxLength: 40 })
      .map((u) => Buffer.from(u.filter((x) => x !== 0x0b && x !== 0x1c)));
    fc.assert(
      fc.property(
        fc.array(fc.record({ payload, cr: fc.boolean(), junk: fc.boolean() }), { maxLength: 8 }),
        fc.array(fc.nat(), { maxLength: 6 }),
        (frames, cuts) => {
          // Junk between frames never holds VT and never starts with CR (that would be the trailer's).
          const stream = Buffer.concat(
            frames.flatMap((f) => [
              Buffer.from([0x0b]),
              f.payload,
              Buffer.from(f.cr ? [0x1c, 0x0d] : [0x1c]),
              ...(f.junk ? [Buffer.from('zz')] : []),
            ]),
          );
          const points = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((x, y) => x - y);
          const chunks = [0, ...points].map((p, i) => stream.subarray(p, [...points, stream.length][i]));
          const got = run(chunks).filter((e) => e[0] === 'frame');
          expect(got).toEqual(frames.map((f) => ['frame', f.payload.toString('latin1')]));
        },
      ),
    );
  });
});

describe('frameMessage', () => {
  it('wraps a payload in VT … FS CR', () => {
    expect([...frameMessage('AB')]).toEqual([0x0b, 0x41, 0x42, 0x1c, 0x0d]);
    expect(frameMessage('é', 'latin1')).toEqual(Buffer.from([0x0b, 0xe9, 0x1c, 0x0d]));
    expect(frameMessage(Buffer.alloc(0))).toEqual(Buffer.from([0x0b, 0x1c, 0x0d]));
  });
});
