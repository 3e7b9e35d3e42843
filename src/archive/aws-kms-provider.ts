import {
  DecryptCommand,
  DescribeKeyCommand,
  GenerateDataKeyCommand,
  KMSClient,
  type KMSClientConfig,
  KMSServiceException,
  ReEncryptCommand,
  RotateKeyOnDemandCommand,
} from '@aws-sdk/client-kms';
import { EngineError } from '../errors.js';
import type { KeyContext, KeyProvider, WrappedKey } from './key-provider.js';

export interface AwsKmsProviderOptions {
  /** Key id, key ARN, alias name or alias ARN (HL7E_KMS_KEY_ID). */
  keyId: string;
  /** Endpoint override (HL7E_KMS_ENDPOINT: a VPC endpoint, LocalStack, the test double). */
  endpoint?: string;
  /** Otherwise the standard AWS region chain (AWS_REGION, profile). */
  region?: string;
  /** Otherwise the standard AWS credential chain (env, profile, SSO, container/instance role). */
  credentials?: KMSClientConfig['credentials'];
  /** Attempts per operation including the first, with the SDK's backoff between them (default 3). */
  maxAttempts?: number;
  /** TCP connect bound per attempt (default 2 s). */
  connectTimeoutMs?: number;
  /** Request/response bound per attempt (default 3 s). */
  requestTimeoutMs?: number;
  /** Bound on a whole operation, retries included (default 10 s). */
  deadlineMs?: number;
}

const PROVIDER = 'aws-kms';
const KEY_BYTES = 32;
/** Error names the SDK and KMS use for rate limiting: worth retrying later, not a refusal. */
const THROTTLING = new Set([
  'ThrottlingException',
  'Throttling',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);
const REASON_PATTERN = /^[A-Za-z0-9_.:-]{1,80}$/;

/**
 * AWS KMS as the key provider: data keys come from GenerateDataKey (AES_256) with the key context as the
 * EncryptionContext, so a wrapped key only decrypts with the same context. The master key id recorded
 * with each wrap is `<key ARN>#<key material id>`: after a rotation (RotateKeyOnDemand or automatic)
 * KMS keeps the old material, so old wraps still decrypt, and ReEncrypt moves a wrap to the current one.
 */
export class AwsKmsProvider implements KeyProvider {
  readonly name = 'aws-kms' as const;
  readonly #keyId: string;
  readonly #client: KMSClient;
  readonly #deadlineMs: number;
  /** False once DescribeKey showed this KMS reports no key material ids (older endpoints, emulators). */
  #tracksMaterial: boolean | undefined;

  constructor(opts: AwsKmsProviderOptions) {
    this.#keyId = opts.keyId;
    this.#deadlineMs = opts.deadlineMs ?? 10_000;
    this.#client = new KMSClient({
      ...(opts.endpoint ? { endpoint: opts.endpoint } : {}),
      ...(opts.region ? { region: opts.region } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      maxAttempts: opts.maxAttempts ?? 3,
      retryMode: 'standard',
      requestHandler: {
        connectionTimeout: opts.connectTimeoutMs ?? 2_000,
        requestTimeout: opts.requestTimeoutMs ?? 3_000,
        throwOnRequestTimeout: true,
      },
    });
  }

  async generateDataKey(context: KeyContext): Promise<WrappedKey & { plaintext: Buffer }> {
    const out = await this.#call((c, o) =>
      c.send(
        new GenerateDataKeyCommand({
          KeyId: this.#keyId,
          KeySpec: 'AES_256',
          EncryptionContext: { ...context },
        }),
        o,
      ),
    );
    const plaintext = takePlaintext(out.Plaintext);
    if (!out.CiphertextBlob || !out.KeyId) {
      plaintext.fill(0);
      throw refused('IncompleteResponse');
    }
    return {
      masterKeyId: this.#masterId(out.KeyId, out.KeyMaterialId),
      wrappedKey: Buffer.from(out.CiphertextBlob),
      plaintext,
    };
  }

  async decryptDataKey(wrapped: WrappedKey, context: KeyContext): Promise<Buffer> {
    const out = await this.#call((c, o) =>
      c.send(
        new DecryptCommand({
          CiphertextBlob: wrapped.wrappedKey,
          // The key the store says wrapped it: KMS refuses a blob that some other key produced.
          KeyId: keyArnOf(wrapped.masterKeyId),
          EncryptionContext: { ...context },
        }),
        o,
      ),
    );
    return takePlaintext(out.Plaintext);
  }

  async rewrapDataKey(wrapped: WrappedKey, context: KeyContext): Promise<WrappedKey> {
    const out = await this.#call((c, o) =>
      c.send(
        new ReEncryptCommand({
          CiphertextBlob: wrapped.wrappedKey,
          SourceKeyId: keyArnOf(wrapped.masterKeyId),
          SourceEncryptionContext: { ...context },
          DestinationKeyId: this.#keyId,
          DestinationEncryptionContext: { ...context },
        }),
        o,
      ),
    );
    if (!out.CiphertextBlob || !out.KeyId) throw refused('IncompleteResponse');
    return {
      masterKeyId: this.#masterId(out.KeyId, out.DestinationKeyMaterialId),
      wrappedKey: Buffer.from(out.CiphertextBlob),
    };
  }

  /** KMS finishes an on-demand rotation asynchronously; the id returned is what DescribeKey says now. */
  async rotateMasterKey(): Promise<{ masterKeyId: string }> {
    await this.#call((c, o) => c.send(new RotateKeyOnDemandCommand({ KeyId: this.#keyId }), o));
    return { masterKeyId: await this.currentMasterKeyId() };
  }

  async currentMasterKeyId(): Promise<string> {
    const out = await this.#call((c, o) => c.send(new DescribeKeyCommand({ KeyId: this.#keyId }), o));
    const arn = out.KeyMetadata?.Arn;
    if (!arn) throw refused('IncompleteResponse');
    this.#tracksMaterial = out.KeyMetadata?.CurrentKeyMaterialId !== undefined;
    return this.#masterId(arn, out.KeyMetadata?.CurrentKeyMaterialId);
  }

  async close(): Promise<void> {
    this.#client.destroy();
  }

  #masterId(arn: string, materialId: string | undefined): string {
    return materialId && this.#tracksMaterial !== false ? `${arn}#${materialId}` : arn;
  }

  /** One KMS call under the whole-operation deadline, its errors mapped (kmsError). */
  async #call<T>(send: (client: KMSClient, opts: { abortSignal: AbortSignal }) => Promise<T>): Promise<T> {
    try {
      return await send(this.#client, { abortSignal: AbortSignal.timeout(this.#deadlineMs) });
    } catch (err) {
      throw kmsError(err);
    }
  }
}

/** Copies the SDK's plaintext into a Buffer we own and zeroes the SDK's copy. */
function takePlaintext(p: Uint8Array | undefined): Buffer {
  if (!p || p.length !== KEY_BYTES) {
    p?.fill(0);
    throw refused('BadDataKeyLength');
  }
  const out = Buffer.from(p);
  p.fill(0);
  return out;
}

function keyArnOf(masterKeyId: string): string {
  const i = masterKeyId.indexOf('#');
  return i < 0 ? masterKeyId : masterKeyId.slice(0, i);
}

/**
 * Network failures, timeouts, 5xx and throttling are KEY_PROVIDER_UNAVAILABLE (retry later); a KMS
 * service exception (AccessDenied, InvalidCiphertext, Disabled, NotFound, …) is KEY_PROVIDER_REFUSED
 * with its exception name as the reason. KMS messages are kept only as the cause, never in the text.
 */
export function kmsError(err: unknown): EngineError {
  if (err instanceof EngineError) return err;
  const e = err as { name?: unknown; $fault?: unknown; $metadata?: { httpStatusCode?: number } } | null;
  const name = typeof e?.name === 'string' ? e.name : '';
  const status = e?.$metadata?.httpStatusCode;
  const isService =
    err instanceof KMSServiceException || (typeof status === 'number' && e?.$fault !== undefined);
  const transient =
    !isService || e?.$fault === 'server' || (status !== undefined && status >= 500) || THROTTLING.has(name);
  if (transient)
    return new EngineError('KEY_PROVIDER_UNAVAILABLE', { provider: PROVIDER }, undefined, { cause: err });
  return new EngineError(
    'KEY_PROVIDER_REFUSED',
    { provider: PROVIDER, reason: REASON_PATTERN.test(name) ? name : 'ServiceException' },
    undefined,
    { cause: err },
  );
}

function refused(reason: string): EngineError {
  return new EngineError('KEY_PROVIDER_REFUSED', { provider: PROVIDER, reason });
}
