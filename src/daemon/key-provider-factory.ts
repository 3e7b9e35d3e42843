import { AwsKmsProvider } from '../archive/aws-kms-provider.js';
import type { KeyProvider } from '../archive/key-provider.js';
import { LocalKeyProvider } from '../archive/local-key-provider.js';
import type { EngineEnv } from '../config/env.js';
import type { Logger } from '../observability/logger.js';

/** AWS KMS when HL7E_KMS_KEY_ID is set; otherwise the local master-key file (development default). */
export async function openKeyProvider(env: EngineEnv, logger?: Logger): Promise<KeyProvider> {
  if (env.kmsKeyId) {
    return new AwsKmsProvider({
      keyId: env.kmsKeyId,
      ...(env.kmsEndpoint ? { endpoint: env.kmsEndpoint } : {}),
    });
  }
  return LocalKeyProvider.open(env.masterKeyFile, {
    onCreated: (file) =>
      logger?.warn(
        { file },
        'created a local master key for the raw archive: for development only; set HL7E_KMS_KEY_ID to use AWS KMS',
      ),
  });
}
