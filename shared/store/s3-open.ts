// Node only: an S3Store for an `s3://bucket/prefix` location, with the SDK's usual environment
// (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_REGION, AWS_ENDPOINT_URL for R2 / MinIO / local
// servers) and the SDK's errors for a store that cannot be used at all turned into EdgeflowErrors.
// Imported only when a store is S3 (shared/store/open.ts): the AWS SDK takes ~0.2 s to import,
// which a folder store does not pay.
import { S3Client } from '@aws-sdk/client-s3';
import { EdgeflowError } from '../errors.ts';
import { S3Store } from './s3.ts';

const CREDENTIALS_HELP = 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_ENDPOINT_URL for R2 / MinIO / a local server), or configure an AWS profile';

export function openS3Store(location: string, match: RegExpExecArray, env: NodeJS.ProcessEnv): S3Store {
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
  const bucket = match[1]!;
  const client = new S3Client({
    region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'auto',
    // A connection that never opens, or a request that stalls, fails (and the SDK retries it)
    // instead of holding a watcher or the server forever.
    requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
    ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
    ...(credentials ? { credentials } : {}),
  });
  // The SDK's own errors for a store that cannot be used at all become domain errors, whichever
  // request meets them first.
  client.middlewareStack.add(
    (next) => async (args) => {
      try {
        return await next(args);
      } catch (error) {
        const name = (error as Error | undefined)?.name;
        if (name === 'CredentialsProviderError') throw new EdgeflowError('unauthorized', `no S3 credentials for ${location}: ${CREDENTIALS_HELP}`);
        if (name === 'NoSuchBucket') throw new EdgeflowError('not_found', `no bucket ${JSON.stringify(bucket)} for ${location}${endpoint ? ` at ${endpoint}` : ''} (is AWS_ENDPOINT_URL right?)`);
        throw error;
      }
    },
    { step: 'initialize', name: 'edgeflowStoreErrors' },
  );
  return new S3Store({ bucket, prefix: match[2], client });
}
