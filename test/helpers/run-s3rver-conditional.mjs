// s3rver with AWS S3's conditional writes added: PutObject honours If-None-Match: * and
// If-Match: <etag> (412 PreconditionFailed otherwise), atomically per key. s3rver 3.7.1 ignores
// both headers (DESIGN.md); AWS S3, R2 and MinIO honour them. Used by tests that need several
// processes to agree through an S3-protocol store (edgeflow watch's claims, the publish protocol).
// Started by test/helpers/s3rver.ts (conditional: true); needs `node --openssl-legacy-provider` like run-s3rver.mjs.
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });

const locks = new Map();
const unquote = (etag) => String(etag ?? '').replace(/"/g, '');
const PRECONDITION_FAILED = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>';

// First in the chain, before s3rver's own routes.
server.middleware.unshift(async (ctx, next) => {
  const ifNoneMatch = ctx.get('if-none-match');
  const ifMatch = ctx.get('if-match');
  if (ctx.method !== 'PUT' || (!ifNoneMatch && !ifMatch) || ctx.get('x-amz-copy-source')) return next();
  const [, bucketName, ...rest] = ctx.path.split('/');
  const key = rest.map(decodeURIComponent).join('/');
  const id = `${bucketName}/${key}`;
  const previous = locks.get(id) ?? Promise.resolve();
  let release;
  const mine = previous.then(() => new Promise((resolve) => (release = resolve)));
  locks.set(id, mine);
  await previous;
  try {
    const exists = await server.store.existsObject(bucketName, key);
    const etag = exists ? unquote((await server.store.getMetadata(bucketName, key)).etag) : undefined;
    if ((ifNoneMatch === '*' && exists) || (ifMatch && unquote(ifMatch) !== etag)) {
      ctx.status = 412;
      ctx.type = 'application/xml';
      ctx.body = PRECONDITION_FAILED;
      return;
    }
    await next();
  } finally {
    release();
    if (locks.get(id) === mine) locks.delete(id);
  }
});

const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
