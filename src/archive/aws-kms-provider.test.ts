import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type KmsTestKey, KmsTestServer } from '../../test/support/kms-server.js';
import { EngineError, isEngineError } from '../errors.js';
import { AwsKmsProvider, type AwsKmsProviderOptions } from './aws-kms-provider.js';

const credentials = { accessKeyId: 'AKIDTESTTESTTEST', secretAccessKey: 'test-secret-not-real' };
const ctx = { 'hl7e:data-key': 'dk_0001' };

describe('AwsKmsProvider against the KMS wire protocol', () => {
  const kms = new KmsTestServer({ credentials, keys: [{ alias: 'hl7e' }] });
  let endpoint: string;
  let key: KmsTestKey;
  const providers: AwsKmsProvider[] = [];

  const provider = (opts: Partial<AwsKmsProviderOptions> = {}): AwsKmsProvider => {
    const p = new AwsKmsProvider({ keyId: key.arn, endpoint, region: 'us-east-1', credentials, ...opts });
    providers.push(p);
    return p;
  };

  beforeAll(async () => {
    ({ endpoint } = await kms.start());
    key = kms.createKey();
  });

  afterEach(() => kms.fail('none'));

  afterAll(async () => {
    await Promise.all(providers.map((p) => p.close()));
    await kms.close();
  });

  it('generates a 32-byte data key and decrypts its wrap with the same context', async () => {
    const p = provider();
    const g = await p.generateDataKey(ctx);
    expect(g.plaintext).toHaveLength(32);
    expect(g.masterKeyId.startsWith(`${key.arn}#`)).toBe(true);
    expect(g.wrappedKey.includes(g.plaintext)).toBe(false);
    const back = await p.decryptDataKey({ masterKeyId: g.masterKeyId, wrappedKey: g.wrappedKey }, ctx);
    expect(back.equals(g.plaintext)).toBe(true);
    expect(await p.currentMasterKeyId()).toBe(g.masterKeyId);
  });

  it('accepts an alias as the key id', async () => {
    const p = provider({ keyId: 'alias/hl7e' });
    const g = await p.generateDataKey(ctx);
    expect(g.masterKeyId).toMatch(/^arn:aws:kms:us-east-1:\d+:key\/[0-9a-f-]+#[0-9a-f]{64}$/);
    expect((await p.decryptDataKey(g, ctx)).equals(g.plaintext)).toBe(true);
  });

  it('refuses a different encryption context (KEY_PROVIDER_REFUSED, InvalidCiphertextException)', async () => {
    const p = provider();
    const g = await p.generateDataKey(ctx);
    const err = await p.decryptDataKey(g, { 'hl7e:data-key': 'dk_other' }).catch((e: unknown) => e);
    expect(isEngineError(err, 'KEY_PROVIDER_REFUSED')).toBe(true);
    expect((err as EngineError).details).toEqual({
      provider: 'aws-kms',
      reason: 'InvalidCiphertextException',
    });
    expect((err as EngineError).retryable).toBe(false);
    // Tampered wraps too.
    const bad = Buffer.from(g.wrappedKey);
    bad[bad.length - 1]! ^= 1;
    await expect(p.decryptDataKey({ ...g, wrappedKey: bad }, ctx)).rejects.toMatchObject({
      code: 'KEY_PROVIDER_REFUSED',
    });
  });

  it('rotates the master key: old wraps still decrypt, rewrap moves them to the new material', async () => {
    const p = provider();
    const before = await p.currentMasterKeyId();
    const g = await p.generateDataKey(ctx);
    const rotated = await p.rotateMasterKey();
    expect(rotated.masterKeyId).not.toBe(before);
    expect(await p.currentMasterKeyId()).toBe(rotated.masterKeyId);
    expect((await p.decryptDataKey(g, ctx)).equals(g.plaintext)).toBe(true);

    const re = await p.rewrapDataKey(g, ctx);
    expect(re.masterKeyId).toBe(rotated.masterKeyId);
    expect(re.wrappedKey.equals(g.wrappedKey)).toBe(false);
    expect((await p.decryptDataKey(re, ctx)).equals(g.plaintext)).toBe(true);
    expect((await p.generateDataKey(ctx)).masterKeyId).toBe(rotated.masterKeyId);
  });

  it('maps service exceptions to KEY_PROVIDER_REFUSED with the exception name', async () => {
    const missing = provider({ keyId: 'alias/does-not-exist' });
    await expect(missing.generateDataKey(ctx)).rejects.toMatchObject({
      code: 'KEY_PROVIDER_REFUSED',
      details: { provider: 'aws-kms', reason: 'NotFoundException' },
    });
    const disabled = kms.createKey();
    kms.setKeyEnabled(disabled.keyId, false);
    await expect(provider({ keyId: disabled.keyId }).generateDataKey(ctx)).rejects.toMatchObject({
      details: { reason: 'DisabledException' },
    });
    const wrongSecret = provider({ credentials: { ...credentials, secretAccessKey: 'wrong' } });
    await expect(wrongSecret.currentMasterKeyId()).rejects.toMatchObject({
      details: { reason: 'InvalidSignatureException' },
    });
  });

  it('rejects unsigned requests on the wire (the double enforces SigV4)', async () => {
    const res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'x-amz-target': 'TrentService.DescribeKey', 'content-type': 'application/x-amz-json-1.1' },
      body: JSON.stringify({ KeyId: key.keyId }),
    });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ __type: 'MissingAuthenticationTokenException' });
  });

  it('turns a hung KMS into KEY_PROVIDER_UNAVAILABLE within its bounds', async () => {
    const p = provider({ maxAttempts: 2, requestTimeoutMs: 300, deadlineMs: 2_000 });
    kms.fail('hang');
    const before = kms.calls.GenerateDataKey ?? 0;
    const t0 = Date.now();
    const err = await p.generateDataKey(ctx).catch((e: unknown) => e);
    const elapsed = Date.now() - t0;
    expect(isEngineError(err, 'KEY_PROVIDER_UNAVAILABLE')).toBe(true);
    expect((err as EngineError).retryable).toBe(true);
    expect((err as EngineError).message).toBe('the key provider (aws-kms) could not be reached');
    expect(elapsed).toBeLessThan(2_500);
    expect((kms.calls.GenerateDataKey ?? 0) - before).toBe(2);
  });

  it('bounds a whole operation by its deadline even when attempts would take longer', async () => {
    const p = provider({ maxAttempts: 5, requestTimeoutMs: 5_000, deadlineMs: 400 });
    kms.fail('hang');
    const t0 = Date.now();
    await expect(p.currentMasterKeyId()).rejects.toMatchObject({ code: 'KEY_PROVIDER_UNAVAILABLE' });
    expect(Date.now() - t0).toBeLessThan(1_500);
  });

  it('maps HTTP 500 and throttling to KEY_PROVIDER_UNAVAILABLE after the SDK retries', async () => {
    const p = provider({ maxAttempts: 3 });
    kms.fail('http500');
    const before = kms.calls.DescribeKey ?? 0;
    await expect(p.currentMasterKeyId()).rejects.toMatchObject({ code: 'KEY_PROVIDER_UNAVAILABLE' });
    expect((kms.calls.DescribeKey ?? 0) - before).toBe(3);
    kms.fail('throttle');
    await expect(p.currentMasterKeyId()).rejects.toMatchObject({ code: 'KEY_PROVIDER_UNAVAILABLE' });
    kms.fail('none');
    expect(await p.currentMasterKeyId()).toMatch(/^arn:aws:kms:/);
  });

  it('maps a refused connection to KEY_PROVIDER_UNAVAILABLE', async () => {
    const closed = new KmsTestServer();
    const { endpoint: gone } = await closed.start();
    await closed.close();
    const p = provider({ endpoint: gone, maxAttempts: 1 });
    await expect(p.currentMasterKeyId()).rejects.toBeInstanceOf(EngineError);
    await expect(p.currentMasterKeyId()).rejects.toMatchObject({ code: 'KEY_PROVIDER_UNAVAILABLE' });
  });
});
