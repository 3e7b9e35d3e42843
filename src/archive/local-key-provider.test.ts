import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EngineError, isEngineError } from '../errors.js';
import { LocalKeyProvider } from './local-key-provider.js';

const ctx = { 'hl7e:data-key': 'dk_0001' };

describe('LocalKeyProvider', () => {
  let dir: string;
  const opened: LocalKeyProvider[] = [];

  const openAt = async (file: string, onCreated?: (f: string) => void): Promise<LocalKeyProvider> => {
    const p = await LocalKeyProvider.open(file, onCreated ? { onCreated } : {});
    opened.push(p);
    return p;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'hl7e-lkp-'));
  });

  afterAll(async () => {
    await Promise.all(opened.map((p) => p.close()));
    await rm(dir, { recursive: true, force: true });
  });

  it('creates the key file on first open with mode 0600 and reports it', async () => {
    const file = join(dir, 'created', 'master-keys.json');
    const created: string[] = [];
    const p = await openAt(file, (f) => created.push(f));
    expect(created).toEqual([file]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    expect(doc.format).toBe('hl7e-master-keys/1');
    expect(doc.keys).toHaveLength(1);
    expect(doc.current).toBe(doc.keys[0].id);
    expect(Buffer.from(doc.keys[0].key, 'base64')).toHaveLength(32);
    expect(await p.currentMasterKeyId()).toBe(doc.current);
    // Opening again reads it; nothing is created.
    await openAt(file, (f) => created.push(f));
    expect(created).toHaveLength(1);
    expect((await readdir(join(dir, 'created'))).sort()).toEqual(['master-keys.json']);
  });

  it('wraps a 32-byte data key as iv|tag|ct and unwraps it with the same context', async () => {
    const p = await openAt(join(dir, 'wrap.json'));
    const g = await p.generateDataKey(ctx);
    expect(g.plaintext).toHaveLength(32);
    expect(g.wrappedKey).toHaveLength(12 + 16 + 32);
    expect(g.wrappedKey.includes(g.plaintext)).toBe(false);
    expect((await p.decryptDataKey(g, ctx)).equals(g.plaintext)).toBe(true);
  });

  it('refuses a wrong context, a tampered wrap and an unknown master key (no secrets in the text)', async () => {
    const p = await openAt(join(dir, 'refuse.json'));
    const g = await p.generateDataKey(ctx);
    const wrongCtx = await p.decryptDataKey(g, { 'hl7e:data-key': 'dk_0002' }).catch((e: unknown) => e);
    expect(isEngineError(wrongCtx, 'KEY_PROVIDER_REFUSED')).toBe(true);
    expect((wrongCtx as EngineError).details).toEqual({ provider: 'local', reason: 'WrapAuthFailed' });
    expect((wrongCtx as EngineError).message).toBe(
      'the key provider (local) refused the request (WrapAuthFailed)',
    );

    const tampered = Buffer.from(g.wrappedKey);
    tampered[20]! ^= 0x80;
    await expect(p.decryptDataKey({ ...g, wrappedKey: tampered }, ctx)).rejects.toMatchObject({
      details: { reason: 'WrapAuthFailed' },
    });
    await expect(p.decryptDataKey({ ...g, masterKeyId: 'lmk-9999-00000000' }, ctx)).rejects.toMatchObject({
      details: { reason: 'UnknownMasterKey' },
    });
    await expect(p.decryptDataKey({ ...g, wrappedKey: g.wrappedKey.subarray(1) }, ctx)).rejects.toMatchObject(
      {
        details: { reason: 'MalformedWrap' },
      },
    );
    // A wrap made under another key file's master key does not unwrap here.
    const other = await openAt(join(dir, 'other.json'));
    const foreign = await other.generateDataKey(ctx);
    await expect(p.decryptDataKey(foreign, ctx)).rejects.toMatchObject({ code: 'KEY_PROVIDER_REFUSED' });
  });

  it('rotates: new wraps use the new version, everything wrapped earlier still unwraps, rewrap moves it', async () => {
    const file = join(dir, 'rotate.json');
    const p = await openAt(file);
    const first = await p.currentMasterKeyId();
    const g = await p.generateDataKey(ctx);
    const { masterKeyId } = await p.rotateMasterKey();
    expect(masterKeyId).not.toBe(first);
    expect(await p.currentMasterKeyId()).toBe(masterKeyId);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    expect(doc.keys.map((k: { id: string }) => k.id)).toEqual([first, masterKeyId]);
    expect(doc.current).toBe(masterKeyId);

    expect((await p.decryptDataKey(g, ctx)).equals(g.plaintext)).toBe(true);
    expect((await p.generateDataKey(ctx)).masterKeyId).toBe(masterKeyId);
    const re = await p.rewrapDataKey(g, ctx);
    expect(re.masterKeyId).toBe(masterKeyId);
    expect((await p.decryptDataKey(re, ctx)).equals(g.plaintext)).toBe(true);
    // No temp or lock files are left behind.
    expect((await readdir(dir)).filter((f) => f.startsWith('rotate.json'))).toEqual(['rotate.json']);
  });

  it('sees a rotation made by another instance (the CLI) through the file', async () => {
    const file = join(dir, 'shared.json');
    const daemon = await openAt(file);
    const cli = await openAt(file);
    const g = await daemon.generateDataKey(ctx);
    const { masterKeyId } = await cli.rotateMasterKey();
    expect(await daemon.currentMasterKeyId()).toBe(masterKeyId);
    const after = await daemon.generateDataKey(ctx);
    expect(after.masterKeyId).toBe(masterKeyId);
    // Each instance unwraps what the other wrapped, before and after the rotation.
    expect((await cli.decryptDataKey(g, ctx)).equals(g.plaintext)).toBe(true);
    expect((await cli.decryptDataKey(after, ctx)).equals(after.plaintext)).toBe(true);
  });

  it('loses no version when two instances rotate at the same time', async () => {
    const file = join(dir, 'race.json');
    const a = await openAt(file);
    const b = await openAt(file);
    const ids = await Promise.all([a.rotateMasterKey(), b.rotateMasterKey(), a.rotateMasterKey()]);
    const doc = JSON.parse(await readFile(file, 'utf8'));
    expect(doc.keys).toHaveLength(4);
    const stored = doc.keys.map((k: { id: string }) => k.id);
    for (const { masterKeyId } of ids) expect(stored).toContain(masterKeyId);
  });

  it('refuses a malformed key file instead of replacing it', async () => {
    const file = join(dir, 'broken.json');
    await writeFile(file, '{"format":"something-else"}', { mode: 0o600 });
    await expect(LocalKeyProvider.open(file)).rejects.toMatchObject({
      code: 'KEY_PROVIDER_REFUSED',
      details: { reason: 'BadKeyFile' },
    });
    expect(await readFile(file, 'utf8')).toBe('{"format":"something-else"}');
  });

  it('refuses use after close', async () => {
    const p = await LocalKeyProvider.open(join(dir, 'closed.json'));
    await p.close();
    await expect(p.generateDataKey(ctx)).rejects.toMatchObject({ details: { reason: 'Closed' } });
  });
});
