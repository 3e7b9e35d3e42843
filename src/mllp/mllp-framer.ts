/**
 * MLLP framing (HL7 v2.5.1 Appendix C, "Minimal Lower Layer Protocol"): every message travels as
 * `<VT> payload <FS><CR>`. This is a streaming state machine over the Buffers a socket hands us: it keeps
 * the slices of an unfinished frame and joins them once per completed frame, so neither split frames nor
 * a slow peer ever cause re-copying, and it never buffers more than `maxFrameBytes` of one frame.
 */

/** Start block, `<VT>` (0x0B). */
export const VT = 0x0b;
/** End block, `<FS>` (0x1C). */
export const FS = 0x1c;
/** Carriage return that follows the end block. */
export const CR = 0x0d;

/** The first bytes of an oversized frame handed to `onOversize`: enough to read MSH and build a NAK. */
export const OVERSIZE_HEAD_BYTES = 64 * 1024;

/**
 * Why bytes were thrown away:
 * - `before-start`: bytes outside any frame (before a VT);
 * - `interrupted`: an unfinished frame was cut short by a new VT;
 * - `truncated`: the stream ended inside a frame.
 */
export type GarbageReason = 'before-start' | 'interrupted' | 'truncated';

export interface MllpFramerOptions {
  /**
   * Largest payload accepted, in bytes (the VT/FS/CR bytes are not counted).
   * @defaultValue 1 MiB
   */
  maxFrameBytes?: number;
  /** A complete frame's payload, without VT, FS and CR. Called synchronously from `push`. */
  onFrame(frame: Buffer): void;
  /**
   * A frame went past `maxFrameBytes`: called once per such frame with its first
   * min(64 KiB, maxFrameBytes) bytes; the rest of that frame is discarded unbuffered.
   */
  onOversize?(head: Buffer, totalSoFar: number): void;
  /** Bytes discarded, reported as a count only (they may be a fragment of a message). */
  onGarbage?(byteCount: number, reason: GarbageReason): void;
}

/**
 * - `idle`: outside a frame, scanning for VT;
 * - `in-frame`: collecting payload until FS;
 * - `after-fs`: just after FS, where a CR belongs to the frame trailer;
 * - `discarding`: inside an oversized frame, dropping bytes until FS.
 */
type State = 'idle' | 'in-frame' | 'after-fs' | 'discarding';

export class MllpFramer {
  readonly maxFrameBytes: number;
  readonly #onFrame: (frame: Buffer) => void;
  readonly #onOversize: (head: Buffer, totalSoFar: number) => void;
  readonly #onGarbage: (byteCount: number, reason: GarbageReason) => void;
  #state: State = 'idle';
  /** Slices of the unfinished frame's payload, joined once when FS arrives. */
  #parts: Buffer[] = [];
  #size = 0;
  /** Bytes outside frames not yet reported, flushed at each VT and at the end of each push. */
  #garbage = 0;

  constructor(options: MllpFramerOptions) {
    const max = options.maxFrameBytes ?? 1024 * 1024;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new RangeError('maxFrameBytes must be a positive integer');
    this.maxFrameBytes = max;
    this.#onFrame = options.onFrame;
    this.#onOversize = options.onOversize ?? (() => {});
    this.#onGarbage = options.onGarbage ?? (() => {});
  }

  /** Payload bytes of the unfinished frame held in memory. */
  get bufferedBytes(): number {
    return this.#size;
  }

  /** Feeds the next bytes of the stream. Callbacks run synchronously, in stream order. */
  push(chunk: Buffer): void {
    let pos = 0;
    const len = chunk.length;
    while (pos < len) {
      switch (this.#state) {
        case 'after-fs':
          // "<FS><CR>" ends a frame; a peer that omits the CR has still ended it at FS.
          if (chunk[pos] === CR) pos++;
          this.#state = 'idle';
          break;
        case 'idle': {
          const start = chunk.indexOf(VT, pos);
          if (start === -1) {
            this.#garbage += len - pos;
            pos = len;
          } else {
            this.#garbage += start - pos;
            this.#flushGarbage();
            this.#state = 'in-frame';
            pos = start + 1;
          }
          break;
        }
        case 'in-frame':
          pos = this.#collect(chunk, pos);
          break;
        case 'discarding':
          pos = this.#discard(chunk, pos);
          break;
        default:
          this.#state satisfies never;
      }
    }
    this.#flushGarbage();
  }

  /** The stream ended: an unfinished frame is reported as truncated garbage and the framer resets. */
  end(): void {
    if (this.#state === 'in-frame') {
      this.#garbage += this.#size + 1; // its VT included
      this.#release();
      this.#flushGarbage('truncated');
    }
    this.#flushGarbage();
    this.#state = 'idle';
  }

  /** InFrame: takes bytes up to the next FS; a VT before it abandons the frame (a new one starts). */
  #collect(chunk: Buffer, pos: number): number {
    const fs = chunk.indexOf(FS, pos);
    const stop = fs === -1 ? chunk.length : fs;
    const vt = chunk.subarray(pos, stop).indexOf(VT);
    if (vt !== -1) {
      // The sender restarted mid-frame: what came before cannot be trusted as a message.
      this.#append(chunk.subarray(pos, pos + vt));
      if (this.#state === 'in-frame') {
        this.#garbage += this.#size + 1;
        this.#release();
        this.#flushGarbage('interrupted');
      }
      this.#state = 'in-frame'; // an oversize detected by #append is over too: this VT starts anew
      return pos + vt + 1;
    }
    this.#append(chunk.subarray(pos, stop));
    if (fs === -1) return chunk.length;
    if (this.#state === 'in-frame') {
      // Always a copy: the frame must not pin the (possibly much larger) chunks it came from.
      const frame = Buffer.concat(this.#parts, this.#size);
      this.#release();
      this.#state = 'after-fs';
      this.#onFrame(frame);
    } else {
      this.#state = 'after-fs'; // the oversized frame ended in this very slice
    }
    return fs + 1;
  }

  /** Discarding: skips to the oversized frame's FS; a VT before it starts a new frame instead. */
  #discard(chunk: Buffer, pos: number): number {
    const fs = chunk.indexOf(FS, pos);
    const stop = fs === -1 ? chunk.length : fs;
    const vt = chunk.subarray(pos, stop).indexOf(VT);
    if (vt !== -1) {
      this.#state = 'in-frame';
      return pos + vt + 1;
    }
    if (fs === -1) return chunk.length;
    this.#state = 'after-fs';
    return fs + 1;
  }

  /** Adds payload bytes, switching to Discarding (and reporting once) when they pass the limit. */
  #append(slice: Buffer): void {
    if (slice.length === 0) return;
    const total = this.#size + slice.length;
    if (total <= this.maxFrameBytes) {
      this.#parts.push(slice);
      this.#size = total;
      return;
    }
    this.#parts.push(slice);
    const head = Buffer.concat(this.#parts, Math.min(OVERSIZE_HEAD_BYTES, this.maxFrameBytes));
    this.#release();
    this.#state = 'discarding';
    this.#onOversize(head, total);
  }

  #release(): void {
    this.#parts = [];
    this.#size = 0;
  }

  #flushGarbage(reason: GarbageReason = 'before-start'): void {
    if (this.#garbage === 0) return;
    const count = this.#garbage;
    this.#garbage = 0;
    this.#onGarbage(count, reason);
  }
}

/** Wraps one payload in an MLLP frame: `<VT> payload <FS><CR>`. */
export function frameMessage(payload: Buffer | string, encoding: BufferEncoding = 'utf8'): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload, encoding) : payload;
  const out = Buffer.allocUnsafe(body.length + 3);
  out[0] = VT;
  body.copy(out, 1);
  out[body.length + 1] = FS;
  out[body.length + 2] = CR;
  return out;
}
