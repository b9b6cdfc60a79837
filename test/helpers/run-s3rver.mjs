// Runs s3rver in its own process (started by test/helpers/s3rver.ts) and prints its port.
// Needs `node --openssl-legacy-provider`: s3rver encrypts list continuation tokens with DES.
import S3rver from 's3rver';

const [directory, bucket] = process.argv.slice(2);
const server = new S3rver({ port: 0, address: '127.0.0.1', silent: true, directory, configureBuckets: [{ name: bucket }] });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.on('SIGTERM', () => server.close().then(() => process.exit(0)));
