// Node only: turns a --store / --out argument into an ObjectStore.
// `s3://bucket/prefix` uses the AWS SDK's usual environment (AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY, AWS_REGION) plus AWS_ENDPOINT_URL for R2 / MinIO / local servers.
import { LocalFolderStore } from './local.ts';
import { S3Store } from './s3.ts';
import type { ObjectStore } from './types.ts';

export function openStore(location: string, env: NodeJS.ProcessEnv = process.env): ObjectStore {
  const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(location);
  if (!match) {
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(location)) throw new Error(`unsupported store ${location}: use a folder path or s3://bucket/prefix`);
    return new LocalFolderStore(location);
  }
  const endpoint = env.AWS_ENDPOINT_URL_S3 ?? env.AWS_ENDPOINT_URL;
  const credentials =
    env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN } : undefined;
  return new S3Store({
    bucket: match[1]!,
    prefix: match[2],
    clientConfig: {
      region: env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'auto',
      // A connection that never opens, or a request that stalls, fails (and the SDK retries it)
      // instead of holding a watcher or the server forever.
      requestHandler: { connectionTimeout: 10_000, socketTimeout: 60_000 },
      ...(endpoint ? { endpoint, forcePathStyle: true } : {}),
      ...(credentials ? { credentials } : {}),
    },
  });
}
