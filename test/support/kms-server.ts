import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  randomBytes,
  randomUUID,
} from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A local stand-in for AWS KMS that speaks its wire protocol (AWS JSON 1.1: POST / with
 * `X-Amz-Target: TrentService.<Op>`, base64 blobs, `{"__type","message"}` errors), so tests run the real
 * @aws-sdk/client-kms against it. Symmetric keys only, with versioned key material: the ciphertext blob
 * names the key and the material that encrypted it, so Decrypt still works after RotateKeyOnDemand, and
 * the EncryptionContext is authenticated (a different context is InvalidCiphertextException, as in KMS).
 *
 * Requests must carry a SigV4 Authorization header; with `credentials` the signature is verified too.
 */
export interface KmsTestServerOptions {
  region?: string;
  account?: string;
  /** Keys that exist from the start (aliases without the `alias/` prefix). */
  keys?: ReadonlyArray<{ alias?: string }>;
  /** When given, SigV4 signatures are checked against this secret (else any well-formed header passes). */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export type KmsFailMode = 'none' | 'http500' | 'hang' | 'throttle';

export interface KmsTestKey {
  readonly keyId: string;
  readonly arn: string;
}

interface KeyMaterial {
  readonly id: string;
  readonly key: Buffer;
}

interface Key extends KmsTestKey {
  readonly createdAt: number;
  readonly description: string;
  readonly materials: KeyMaterial[];
  enabled: boolean;
}

type Json = Record<string, unknown>;

class KmsError extends Error {
  constructor(
    readonly type: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

const BLOB_MAGIC = Buffer.from('TKMS', 'latin1');
const MAX_BODY = 1 << 20;

export class KmsTestServer {
  /** Requests received per operation (every attempt, including failed and retried ones). */
  readonly calls: Record<string, number> = {};
  readonly #region: string;
  readonly #account: string;
  readonly #credentials: KmsTestServerOptions['credentials'];
  readonly #keys = new Map<string, Key>();
  readonly #aliases = new Map<string, string>();
  readonly #server: Server;
  #mode: KmsFailMode = 'none';

  constructor(opts: KmsTestServerOptions = {}) {
    this.#region = opts.region ?? 'us-east-1';
    this.#account = opts.account ?? '111122223333';
    this.#credentials = opts.credentials;
    for (const k of opts.keys ?? []) this.createKey(k);
    this.#server = createServer((req, res) => {
      this.#handle(req, res).catch(() => {
        if (!res.headersSent) res.writeHead(500).end();
      });
    });
  }

  /** Creates a key directly (as CreateKey does over the wire). */
  createKey(opts: { alias?: string; description?: string } = {}): KmsTestKey {
    const keyId = randomUUID();
    const key: Key = {
      keyId,
      arn: `arn:aws:kms:${this.#region}:${this.#account}:key/${keyId}`,
      createdAt: Date.now() / 1000,
      description: opts.description ?? '',
      materials: [newMaterial()],
      enabled: true,
    };
    this.#keys.set(keyId, key);
    if (opts.alias) this.#aliases.set(`alias/${opts.alias}`, keyId);
    return { keyId, arn: key.arn };
  }

  /** DisableKey/EnableKey: a disabled key refuses crypto operations with DisabledException. */
  setKeyEnabled(keyId: string, enabled: boolean): void {
    this.#resolve(keyId).enabled = enabled;
  }

  /** How many versions of key material a key has (1 + rotations). */
  materialCount(keyId: string): number {
    return this.#resolve(keyId).materials.length;
  }

  /** Simulated outages: http500 answers KMSInternalException, hang never answers, throttle is 400 ThrottlingException. */
  fail(mode: KmsFailMode): void {
    this.#mode = mode;
  }

  async start(): Promise<{ endpoint: string }> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = this.#server.address() as AddressInfo;
    return { endpoint: `http://127.0.0.1:${port}` };
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    const target = header(req, 'x-amz-target');
    const op = target?.startsWith('TrentService.') ? target.slice('TrentService.'.length) : undefined;
    this.calls[op ?? '(none)'] = (this.calls[op ?? '(none)'] ?? 0) + 1;
    if (this.#mode === 'hang') return; // the socket stays open, unanswered, until close()
    try {
      if (this.#mode === 'http500') throw new KmsError('KMSInternalException', 'internal failure', 500);
      this.#authenticate(req, body);
      if (this.#mode === 'throttle') throw new KmsError('ThrottlingException', 'rate exceeded');
      if (req.method !== 'POST' || (req.url ?? '/').split('?')[0] !== '/') {
        throw new KmsError('UnknownOperationException', 'unsupported request', 404);
      }
      if (header(req, 'content-type') !== 'application/x-amz-json-1.1') {
        throw new KmsError('SerializationException', 'expected application/x-amz-json-1.1');
      }
      let input: Json;
      try {
        input = body.length ? (JSON.parse(body.toString('utf8')) as Json) : {};
      } catch {
        throw new KmsError('SerializationException', 'body is not JSON');
      }
      if (typeof input !== 'object' || input === null || Array.isArray(input)) {
        throw new KmsError('SerializationException', 'body is not a JSON object');
      }
      const output = this.#dispatch(op, input);
      send(res, 200, output);
    } catch (err) {
      const e = err instanceof KmsError ? err : new KmsError('KMSInternalException', 'internal failure', 500);
      send(res, e.status, { __type: e.type, message: e.message }, e.type);
    }
  }

  #dispatch(op: string | undefined, input: Json): Json {
    switch (op) {
      case 'CreateKey': {
        const k = this.createKey({ description: optString(input, 'Description') ?? '' });
        return { KeyMetadata: this.#metadata(this.#resolve(k.keyId)) };
      }
      case 'DescribeKey':
        return { KeyMetadata: this.#metadata(this.#resolve(reqString(input, 'KeyId'))) };
      case 'GenerateDataKey': {
        const key = this.#usable(reqString(input, 'KeyId'));
        const plaintext = randomBytes(dataKeyBytes(input));
        const material = current(key);
        return {
          CiphertextBlob: this.#encrypt(
            key,
            material,
            plaintext,
            context(input, 'EncryptionContext'),
          ).toString('base64'),
          Plaintext: plaintext.toString('base64'),
          KeyId: key.arn,
          KeyMaterialId: material.id,
        };
      }
      case 'Encrypt': {
        const key = this.#usable(reqString(input, 'KeyId'));
        const plaintext = reqBlob(input, 'Plaintext');
        if (plaintext.length === 0 || plaintext.length > 4096)
          throw new KmsError('ValidationException', 'bad plaintext');
        const material = current(key);
        return {
          CiphertextBlob: this.#encrypt(
            key,
            material,
            plaintext,
            context(input, 'EncryptionContext'),
          ).toString('base64'),
          KeyId: key.arn,
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          KeyMaterialId: material.id,
        };
      }
      case 'Decrypt': {
        const { key, material, plaintext } = this.#decrypt(
          reqBlob(input, 'CiphertextBlob'),
          optString(input, 'KeyId'),
          context(input, 'EncryptionContext'),
        );
        return {
          KeyId: key.arn,
          Plaintext: plaintext.toString('base64'),
          EncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          KeyMaterialId: material.id,
        };
      }
      case 'ReEncrypt': {
        const source = this.#decrypt(
          reqBlob(input, 'CiphertextBlob'),
          optString(input, 'SourceKeyId'),
          context(input, 'SourceEncryptionContext'),
        );
        const dest = this.#usable(reqString(input, 'DestinationKeyId'));
        const material = current(dest);
        return {
          CiphertextBlob: this.#encrypt(
            dest,
            material,
            source.plaintext,
            context(input, 'DestinationEncryptionContext'),
          ).toString('base64'),
          SourceKeyId: source.key.arn,
          KeyId: dest.arn,
          SourceEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          DestinationEncryptionAlgorithm: 'SYMMETRIC_DEFAULT',
          SourceKeyMaterialId: source.material.id,
          DestinationKeyMaterialId: material.id,
        };
      }
      case 'RotateKeyOnDemand': {
        const key = this.#usable(reqString(input, 'KeyId'));
        key.materials.push(newMaterial());
        return { KeyId: key.arn };
      }
      default:
        throw new KmsError('UnknownOperationException', 'unknown operation');
    }
  }

  #resolve(id: string): Key {
    let keyId = id;
    const aliasArn = id.match(/^arn:aws:kms:[^:]+:\d+:(alias\/.+)$/);
    const keyArn = id.match(/^arn:aws:kms:[^:]+:\d+:key\/(.+)$/);
    if (aliasArn?.[1]) keyId = this.#aliases.get(aliasArn[1]) ?? '';
    else if (id.startsWith('alias/')) keyId = this.#aliases.get(id) ?? '';
    else if (keyArn?.[1]) keyId = keyArn[1];
    const key = this.#keys.get(keyId);
    if (!key || (keyArn && key.arn !== id)) throw new KmsError('NotFoundException', 'key does not exist');
    return key;
  }

  #usable(id: string): Key {
    const key = this.#resolve(id);
    if (!key.enabled) throw new KmsError('DisabledException', 'key is disabled');
    return key;
  }

  #encrypt(key: Key, material: KeyMaterial, plaintext: Buffer, ctx: Buffer): Buffer {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', material.key, iv);
    const keyId = Buffer.from(key.keyId, 'latin1');
    const materialId = Buffer.from(material.id, 'latin1');
    cipher.setAAD(Buffer.concat([keyId, materialId, ctx]));
    const ct = Buffer.concat([cipher.update(plaintext), cipher.final()]);
    return Buffer.concat([
      BLOB_MAGIC,
      Buffer.from([1, keyId.length]),
      keyId,
      Buffer.from([materialId.length]),
      materialId,
      iv,
      cipher.getAuthTag(),
      ct,
    ]);
  }

  #decrypt(
    blob: Buffer,
    expectedKeyId: string | undefined,
    ctx: Buffer,
  ): { key: Key; material: KeyMaterial; plaintext: Buffer } {
    const invalid = () =>
      new KmsError('InvalidCiphertextException', 'ciphertext or encryption context is invalid');
    if (blob.length < 7 || !blob.subarray(0, 4).equals(BLOB_MAGIC) || blob[4] !== 1) throw invalid();
    let at = 5;
    const keyIdLen = blob[at++] ?? 0;
    const keyId = blob.toString('latin1', at, at + keyIdLen);
    at += keyIdLen;
    const materialLen = blob[at++] ?? 0;
    const materialId = blob.toString('latin1', at, at + materialLen);
    at += materialLen;
    if (blob.length < at + 28) throw invalid();
    const key = this.#keys.get(keyId);
    if (!key) throw invalid();
    if (expectedKeyId !== undefined && this.#resolve(expectedKeyId) !== key) {
      throw new KmsError('IncorrectKeyException', 'ciphertext was not encrypted under the given key');
    }
    if (!key.enabled) throw new KmsError('DisabledException', 'key is disabled');
    const material = key.materials.find((m) => m.id === materialId);
    if (!material) throw invalid();
    try {
      const decipher = createDecipheriv('aes-256-gcm', material.key, blob.subarray(at, at + 12));
      decipher.setAAD(Buffer.concat([Buffer.from(keyId, 'latin1'), Buffer.from(materialId, 'latin1'), ctx]));
      decipher.setAuthTag(blob.subarray(at + 12, at + 28));
      const plaintext = Buffer.concat([decipher.update(blob.subarray(at + 28)), decipher.final()]);
      return { key, material, plaintext };
    } catch {
      throw invalid();
    }
  }

  #metadata(key: Key): Json {
    return {
      AWSAccountId: this.#account,
      KeyId: key.keyId,
      Arn: key.arn,
      CreationDate: key.createdAt,
      Enabled: key.enabled,
      Description: key.description,
      KeyUsage: 'ENCRYPT_DECRYPT',
      KeyState: key.enabled ? 'Enabled' : 'Disabled',
      Origin: 'AWS_KMS',
      KeyManager: 'CUSTOMER',
      CustomerMasterKeySpec: 'SYMMETRIC_DEFAULT',
      KeySpec: 'SYMMETRIC_DEFAULT',
      EncryptionAlgorithms: ['SYMMETRIC_DEFAULT'],
      MultiRegion: false,
      CurrentKeyMaterialId: current(key).id,
    };
  }

  /** SigV4 as KMS checks it: header present and well-formed; with credentials, the signature itself. */
  #authenticate(req: IncomingMessage, body: Buffer): void {
    const auth = header(req, 'authorization');
    if (!auth) throw new KmsError('MissingAuthenticationTokenException', 'missing authentication token');
    const m = auth.match(
      /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$/,
    );
    const amzDate = header(req, 'x-amz-date');
    if (!m || !amzDate)
      throw new KmsError('IncompleteSignatureException', 'authorization header is malformed');
    const [, accessKeyId, date, region, service, signedHeaders, signature] = m as unknown as string[];
    if (!this.#credentials) return;
    if (accessKeyId !== this.#credentials.accessKeyId) {
      throw new KmsError(
        'UnrecognizedClientException',
        'the security token included in the request is invalid',
      );
    }
    const names = signedHeaders!.split(';');
    const canonicalHeaders = names
      .map((n) => `${n}:${(header(req, n) ?? '').trim().replace(/\s+/g, ' ')}\n`)
      .join('');
    const canonicalRequest = [
      req.method,
      (req.url ?? '/').split('?')[0],
      '',
      canonicalHeaders,
      signedHeaders,
      sha256(body),
    ].join('\n');
    const scope = `${date}/${region}/${service}/aws4_request`;
    const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(Buffer.from(canonicalRequest))].join(
      '\n',
    );
    let k = hmac(`AWS4${this.#credentials.secretAccessKey}`, date!);
    for (const part of [region!, service!, 'aws4_request']) k = hmac(k, part);
    if (hmac(k, stringToSign).toString('hex') !== signature) {
      throw new KmsError('InvalidSignatureException', 'the request signature does not match');
    }
  }
}

function newMaterial(): KeyMaterial {
  return { id: randomBytes(32).toString('hex'), key: randomBytes(32) };
}

function current(key: Key): KeyMaterial {
  return key.materials[key.materials.length - 1]!;
}

function dataKeyBytes(input: Json): number {
  const spec = input.KeySpec;
  const n = input.NumberOfBytes;
  if (spec !== undefined && n !== undefined)
    throw new KmsError('ValidationException', 'KeySpec or NumberOfBytes');
  if (spec === 'AES_256') return 32;
  if (spec === 'AES_128') return 16;
  if (typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 1024) return n;
  throw new KmsError('ValidationException', 'KeySpec or NumberOfBytes is required');
}

/** The encryption context as authenticated data: canonical (sorted) JSON, empty when absent. */
function context(input: Json, field: string): Buffer {
  const v = input[field];
  if (v === undefined) return Buffer.alloc(0);
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new KmsError('ValidationException', `${field} must be a map`);
  }
  const entries = Object.entries(v as Json);
  if (entries.some(([, value]) => typeof value !== 'string')) {
    throw new KmsError('ValidationException', `${field} values must be strings`);
  }
  if (entries.length === 0) return Buffer.alloc(0);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return Buffer.from(JSON.stringify(entries));
}

function reqString(input: Json, field: string): string {
  const v = input[field];
  if (typeof v !== 'string' || v === '') throw new KmsError('ValidationException', `${field} is required`);
  return v;
}

function optString(input: Json, field: string): string | undefined {
  const v = input[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string') throw new KmsError('ValidationException', `${field} must be a string`);
  return v;
}

function reqBlob(input: Json, field: string): Buffer {
  const v = reqString(input, field);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v))
    throw new KmsError('SerializationException', `${field} is not base64`);
  return Buffer.from(v, 'base64');
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name.toLowerCase()];
  return Array.isArray(v) ? v.join(',') : v;
}

function send(res: ServerResponse, status: number, body: Json, errorType?: string): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/x-amz-json-1.1',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': randomUUID(),
    ...(errorType ? { 'x-amzn-errortype': errorType } : {}),
  });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw new KmsError('ValidationException', 'request too large', 413);
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

function hmac(key: string | Buffer, data: string): Buffer {
  return createHmac('sha256', key).update(data).digest();
}
