// Runs s3rver (a real S3-protocol server) in its own process, started by test/helpers/s3rver.ts,
// and prints its port. Needs `node --openssl-legacy-provider`: s3rver encrypts list
// continuation tokens with DES. Usage: run-s3rver.mjs <directory> <bucket> [conditional]
// Two gaps between s3rver 3.7.1 and S3 are closed in front of it:
//  - atomic objects: S3 replaces an object whole; s3rver truncates the file in place and can
//    answer a PUT before the file is flushed, so a read racing a write gets a torn body
//    (shorter than its Content-Length: the client then waits forever). Here the requests on
//    one key run one at a time (a read keeps the key until its body is sent), and a PUT's
//    body is written to a temporary file that is renamed over the object.
//  - with `conditional`: PutObject honours If-None-Match: * and If-Match: <etag> (412
//    otherwise), as AWS S3, R2 and MinIO do; s3rver ignores both (docs/ARCHITECTURE.md).
import { createHash, randomUUID } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import S3rver from 's3rver';

const [directory, bucket, mode] = process.argv.slice(2);
const conditional = mode === 'conditional';
const root = path.join(directory, 'data');
const partial = path.join(directory, 'partial');
await mkdir(partial, { recursive: true });
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory: root, configureBuckets: [{ name: bucket }] });
const store = server.store;

store.putObject = async (object) => {
  const chunks = [];
  for await (const chunk of object.content) chunks.push(chunk);
  const content = Buffer.concat(chunks);
  const objectPath = store.getResourcePath(object.bucket, object.key, 'object');
  await mkdir(path.dirname(objectPath), { recursive: true });
  const temporary = path.join(partial, randomUUID());
  await writeFile(temporary, content);
  await rename(temporary, objectPath);
  const md5 = createHash('md5').update(content).digest('hex');
  await store.putMetadata(object.bucket, object.key, object.metadata, md5);
  return { size: content.length, md5 };
};

const queues = new Map();
/** Waits for the key's earlier requests; resolves to this request's release. */
async function acquire(id) {
  const previous = queues.get(id) ?? Promise.resolve();
  let release;
  const mine = new Promise((resolve) => (release = resolve));
  const tail = previous.then(() => mine);
  queues.set(id, tail);
  await previous;
  return () => {
    release();
    if (queues.get(id) === tail) queues.delete(id);
  };
}

const unquote = (etag) => String(etag ?? '').replace(/"/g, '');
const PRECONDITION_FAILED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';

async function preconditionsHold(ctx, bucketName, key) {
  const ifNoneMatch = ctx.get('if-none-match');
  const ifMatch = ctx.get('if-match');
  if (!ifNoneMatch && !ifMatch) return true;
  const exists = await store.existsObject(bucketName, key);
  const etag = exists ? unquote((await store.getMetadata(bucketName, key)).etag) : undefined;
  return !((ifNoneMatch === '*' && exists) || (ifMatch && unquote(ifMatch) !== etag));
}

// First in the chain, before s3rver's own routes; bucket-level requests (lists) pass through.
server.middleware.unshift(async (ctx, next) => {
  const [, bucketName, ...rest] = ctx.path.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  if (!bucketName || !key) return next();
  const release = await acquire(`${bucketName}/${key}`);
  try {
    if (conditional && ctx.method === 'PUT' && !ctx.get('x-amz-copy-source') && !(await preconditionsHold(ctx, bucketName, key))) {
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body = PRECONDITION_FAILED;
      release();
      return;
    }
    await next();
  } catch (error) {
    release();
    throw error;
  }
  // A body still to be streamed (GET) keeps the key until it is sent.
  if (ctx.body && typeof ctx.body.pipe === 'function') ctx.res.once('close', release);
  else release();
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
