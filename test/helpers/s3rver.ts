// Starts s3rver (a real S3-protocol server) in a child process on loopback, with one bucket.
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { S3Client } from '@aws-sdk/client-s3';

export interface RunningS3 {
  endpoint: string;
  bucket: string;
  client: S3Client;
  /** Environment for child processes (the CLI) to reach this server. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * conditional: AWS-style If-None-Match / If-Match on PutObject (s3rver ignores them), for tests
 * where several processes agree through the store. Objects are replaced atomically either way
 * (run-s3rver.mjs).
 */
export async function startS3rver(bucket = 'edgeflow-test', options: { conditional?: boolean } = {}): Promise<RunningS3> {
  const script = new URL('./run-s3rver.mjs', import.meta.url).pathname;
  const directory = await mkdtemp(path.join(tmpdir(), 'edgeflow-s3rver-'));
  const args = ['--openssl-legacy-provider', script, directory, bucket, ...(options.conditional ? ['conditional'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout! }).once('line', resolve);
    child.once('exit', (code) => reject(new Error(`s3rver exited with ${code}`)));
  });
  const { port } = JSON.parse(line) as { port: number };
  const endpoint = `http://127.0.0.1:${port}`;
  const env = { AWS_ENDPOINT_URL: endpoint, AWS_REGION: 'us-east-1', AWS_ACCESS_KEY_ID: 'S3RVER', AWS_SECRET_ACCESS_KEY: 'S3RVER' };
  const client = new S3Client({ endpoint, region: env.AWS_REGION, forcePathStyle: true, credentials: { accessKeyId: 'S3RVER', secretAccessKey: 'S3RVER' } });
  return {
    endpoint,
    bucket,
    client,
    env,
    close: async () => {
      client.destroy();
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        // s3rver waits for open keep-alive connections to end; do not let one hold a test.
        const forced = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(forced);
      }
      await rm(directory, { recursive: true, force: true });
    },
  };
}
