import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { type FileHandle, link, mkdir, open, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { EngineError } from '../errors.js';
import type { KeyContext, KeyProvider, WrappedKey } from './key-provider.js';

/**
 * Master keys in a local JSON file (mode 0600): the zero-setup default, for development. Production uses
 * AWS KMS, where the master key never leaves the HSM.
 *
 *   { "format": "hl7e-master-keys/1", "current": "<id>", "keys": [{ "id", "key" (base64, 32 B), "createdAt" }] }
 *
 * A data key is wrapped with AES-256-GCM under the current master key; the additional data is the
 * canonical JSON of { masterKeyId, ...context }, and wrappedKey = iv (12) | tag (16) | ciphertext (32).
 * Rotation appends a version and makes it current; older versions stay so earlier wraps still unwrap.
 * Another process (the `hl7e keys rotate` CLI) may rotate while the daemon runs: every operation stats the
 * file and re-reads it when it was replaced. Writers take a lock file and replace the file atomically
 * (temp file + fsync + rename + directory fsync), so a rotation is never lost to a concurrent one.
 */
export interface LocalKeyProviderOptions {
  /** Called once when open() created the file (the daemon warns that the key file is for development). */
  onCreated?(file: string): void;
  /** How long rotateMasterKey waits for another writer's lock (default 5 s). */
  lockTimeoutMs?: number;
}

const FORMAT = 'hl7e-master-keys/1';
const KEY_BYTES = 32;
const IV_BYTES = 12;
const TAG_BYTES = 16;
const WRAPPED_BYTES = IV_BYTES + TAG_BYTES + KEY_BYTES;
/** A lock older than this was left by a writer that died mid-rotation (a rotation holds it for ms). */
const STALE_LOCK_MS = 30_000;
const ID_PATTERN = /^[A-Za-z0-9_.:-]{1,100}$/;
const BASE64_PATTERN = /^[A-Za-z0-9+/]+={0,2}$/;

interface MasterKey {
  readonly id: string;
  readonly key: Buffer;
  readonly createdAt: string;
}

interface KeyFile {
  readonly current: string;
  readonly keys: readonly MasterKey[];
  /** inode, size and mtime when read: a rename by another writer changes at least the inode. */
  readonly stamp: string;
}

interface KeyFileJson {
  format: string;
  current: string;
  keys: Array<{ id: string; key: string; createdAt: string }>;
}

export class LocalKeyProvider implements KeyProvider {
  readonly name = 'local' as const;
  readonly #file: string;
  readonly #lockTimeoutMs: number;
  #state: KeyFile;
  #byId: Map<string, MasterKey>;
  #serial: Promise<unknown> = Promise.resolve();
  #closed = false;

  private constructor(file: string, state: KeyFile, opts: LocalKeyProviderOptions) {
    this.#file = file;
    this.#lockTimeoutMs = opts.lockTimeoutMs ?? 5_000;
    this.#state = state;
    this.#byId = new Map(state.keys.map((k) => [k.id, k]));
  }

  /** Opens the key file, creating it (one fresh master key) if it does not exist. */
  static async open(file: string, opts: LocalKeyProviderOptions = {}): Promise<LocalKeyProvider> {
    let state = await loadKeyFile(file, true);
    if (!state) {
      if (await createKeyFile(file)) opts.onCreated?.(file);
      state = await loadKeyFile(file, false);
    }
    return new LocalKeyProvider(file, state!, opts);
  }

  async generateDataKey(context: KeyContext): Promise<WrappedKey & { plaintext: Buffer }> {
    await this.#refresh();
    const master = this.#current();
    const plaintext = randomBytes(KEY_BYTES);
    return { masterKeyId: master.id, wrappedKey: wrap(master, plaintext, context), plaintext };
  }

  async decryptDataKey(wrapped: WrappedKey, context: KeyContext): Promise<Buffer> {
    await this.#refresh();
    return this.#unwrap(wrapped, context);
  }

  async rewrapDataKey(wrapped: WrappedKey, context: KeyContext): Promise<WrappedKey> {
    await this.#refresh();
    const plaintext = this.#unwrap(wrapped, context);
    try {
      const master = this.#current();
      return { masterKeyId: master.id, wrappedKey: wrap(master, plaintext, context) };
    } finally {
      plaintext.fill(0);
    }
  }

  rotateMasterKey(): Promise<{ masterKeyId: string }> {
    this.#assertOpen();
    const run = this.#serial.then(() => this.#rotate());
    this.#serial = run.catch(() => {});
    return run;
  }

  async currentMasterKeyId(): Promise<string> {
    await this.#refresh();
    return this.#state.current;
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const k of this.#state.keys) k.key.fill(0);
  }

  async #rotate(): Promise<{ masterKeyId: string }> {
    const release = await acquireLock(`${this.#file}.lock`, this.#lockTimeoutMs);
    try {
      // Re-read under the lock: the version list on disk, not ours, is what gets extended.
      const fresh = (await loadKeyFile(this.#file, false))!;
      const id = newMasterKeyId(fresh.keys.length + 1);
      const keys = [...fresh.keys, { id, key: randomBytes(KEY_BYTES), createdAt: new Date().toISOString() }];
      try {
        await writeAtomically(this.#file, serialize(id, keys));
      } finally {
        for (const k of keys) k.key.fill(0);
      }
      this.#swap((await loadKeyFile(this.#file, false))!);
      return { masterKeyId: id };
    } finally {
      await release();
    }
  }

  /** Re-reads the file when another writer replaced it (one stat per operation). */
  async #refresh(): Promise<void> {
    this.#assertOpen();
    let stamp: string;
    try {
      stamp = stampOf(await stat(this.#file));
    } catch (err) {
      throw unavailable(err);
    }
    if (stamp !== this.#state.stamp) this.#swap((await loadKeyFile(this.#file, false))!);
  }

  #swap(next: KeyFile): void {
    const previous = this.#state;
    this.#state = next;
    this.#byId = new Map(next.keys.map((k) => [k.id, k]));
    // Callers use key material synchronously after #refresh resolves, so the old copies are unused now.
    for (const k of previous.keys) k.key.fill(0);
    if (this.#closed) for (const k of next.keys) k.key.fill(0);
  }

  #current(): MasterKey {
    const master = this.#byId.get(this.#state.current);
    if (!master) throw refused('BadKeyFile');
    return master;
  }

  #unwrap(wrapped: WrappedKey, context: KeyContext): Buffer {
    const master = this.#byId.get(wrapped.masterKeyId);
    if (!master) throw refused('UnknownMasterKey');
    const w = wrapped.wrappedKey;
    if (w.length !== WRAPPED_BYTES) throw refused('MalformedWrap');
    try {
      const decipher = createDecipheriv('aes-256-gcm', master.key, w.subarray(0, IV_BYTES), {
        authTagLength: TAG_BYTES,
      });
      decipher.setAAD(wrapAad(master.id, context));
      decipher.setAuthTag(w.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
      return Buffer.concat([decipher.update(w.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]);
    } catch (err) {
      throw refused('WrapAuthFailed', err);
    }
  }

  #assertOpen(): void {
    if (this.#closed) throw refused('Closed');
  }
}

function wrap(master: MasterKey, plaintext: Buffer, context: KeyContext): Buffer {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', master.key, iv, { authTagLength: TAG_BYTES });
  cipher.setAAD(wrapAad(master.id, context));
  const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return Buffer.concat([iv, cipher.getAuthTag(), ct]);
}

/** Canonical JSON of { masterKeyId, ...context }: members sorted by name, no whitespace. */
function wrapAad(masterKeyId: string, context: KeyContext): Buffer {
  if (Object.hasOwn(context, 'masterKeyId')) throw new RangeError('key context may not name masterKeyId');
  const members = [...Object.entries(context), ['masterKeyId', masterKeyId] as const].sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  );
  return Buffer.from(`{${members.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(',')}}`);
}

function newMasterKeyId(version: number): string {
  return `lmk-${String(version).padStart(4, '0')}-${randomBytes(4).toString('hex')}`;
}

function serialize(current: string, keys: readonly MasterKey[]): string {
  const doc: KeyFileJson = {
    format: FORMAT,
    current,
    keys: keys.map((k) => ({ id: k.id, key: k.key.toString('base64'), createdAt: k.createdAt })),
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function stampOf(s: { ino: number; size: number; mtimeMs: number }): string {
  return `${s.ino}:${s.size}:${s.mtimeMs}`;
}

/** undefined only when `missingOk` and the file does not exist. */
async function loadKeyFile(file: string, missingOk: boolean): Promise<KeyFile | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, 'r');
  } catch (err) {
    if (missingOk && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw unavailable(err);
  }
  let text: string;
  let stamp: string;
  try {
    stamp = stampOf(await fh.stat());
    text = await fh.readFile('utf8');
  } catch (err) {
    throw unavailable(err);
  } finally {
    await fh.close();
  }
  return { ...parseKeyFile(text), stamp };
}

function parseKeyFile(text: string): Omit<KeyFile, 'stamp'> {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw refused('BadKeyFile');
  }
  const d = doc as Partial<KeyFileJson> | null;
  if (
    !d ||
    d.format !== FORMAT ||
    typeof d.current !== 'string' ||
    !Array.isArray(d.keys) ||
    d.keys.length === 0
  ) {
    throw refused('BadKeyFile');
  }
  const keys: MasterKey[] = [];
  const seen = new Set<string>();
  for (const k of d.keys as unknown[]) {
    const e = k as Partial<KeyFileJson['keys'][number]> | null;
    if (
      !e ||
      typeof e.id !== 'string' ||
      !ID_PATTERN.test(e.id) ||
      seen.has(e.id) ||
      typeof e.key !== 'string' ||
      !BASE64_PATTERN.test(e.key) ||
      typeof e.createdAt !== 'string'
    ) {
      throw refused('BadKeyFile');
    }
    const key = Buffer.from(e.key, 'base64');
    if (key.length !== KEY_BYTES) throw refused('BadKeyFile');
    seen.add(e.id);
    keys.push({ id: e.id, key, createdAt: e.createdAt });
  }
  if (!seen.has(d.current)) throw refused('BadKeyFile');
  return { current: d.current, keys };
}

/** Creates the file with one master key unless it exists; false when another process created it first. */
async function createKeyFile(file: string): Promise<boolean> {
  const id = newMasterKeyId(1);
  const key = randomBytes(KEY_BYTES);
  const text = serialize(id, [{ id, key, createdAt: new Date().toISOString() }]);
  key.fill(0);
  try {
    await mkdir(dirname(file), { recursive: true, mode: 0o700 });
    const temp = await writeTemp(file, text);
    try {
      // link() fails if the name exists: two first starts cannot both create (and one lose its key).
      await link(temp, file);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(temp).catch(() => {});
    }
    await syncDir(dirname(file));
    return true;
  } catch (err) {
    throw unavailable(err);
  }
}

async function writeAtomically(file: string, text: string): Promise<void> {
  let temp: string | undefined;
  try {
    temp = await writeTemp(file, text);
    await rename(temp, file);
    temp = undefined;
    await syncDir(dirname(file));
  } catch (err) {
    throw unavailable(err);
  } finally {
    if (temp) await unlink(temp).catch(() => {});
  }
}

async function writeTemp(file: string, text: string): Promise<string> {
  const temp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  const fh = await open(temp, 'wx', 0o600);
  try {
    await fh.writeFile(text, 'utf8');
    await fh.sync();
  } catch (err) {
    await fh.close();
    await unlink(temp).catch(() => {});
    throw err;
  }
  await fh.close();
  return temp;
}

/** Makes a rename durable; platforms that cannot fsync a directory skip it. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EISDIR' && code !== 'EINVAL' && code !== 'EPERM' && code !== 'ENOTSUP') throw err;
  } finally {
    await fh.close();
  }
}

async function acquireLock(path: string, timeoutMs: number): Promise<() => Promise<void>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fh = await open(path, 'wx', 0o600);
      await fh.writeFile(String(process.pid));
      await fh.close();
      return () => unlink(path).catch(() => {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw unavailable(err);
    }
    const held = await stat(path).catch(() => undefined);
    if (held && Date.now() - held.mtimeMs > STALE_LOCK_MS) {
      await unlink(path).catch(() => {});
      continue;
    }
    if (Date.now() >= deadline) throw unavailable(new Error('key file lock timeout'));
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function refused(reason: string, cause?: unknown): EngineError {
  return new EngineError(
    'KEY_PROVIDER_REFUSED',
    { provider: 'local', reason },
    undefined,
    cause === undefined ? undefined : { cause },
  );
}

function unavailable(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  return new EngineError('KEY_PROVIDER_UNAVAILABLE', { provider: 'local' }, undefined, { cause: err });
}
