// Preloaded with `node --require` (NODE_OPTIONS reaches cluster workers too): at exit, prints
// which npm packages the process loaded through require (TF.js is CommonJS, so it shows here),
// as `loaded packages (primary|worker): a, b`. Lets a test check what a process imported. The
// primary also says `worker <pid> listening` as each worker starts listening.
const cluster = require('node:cluster');

if (cluster.isPrimary) cluster.on('listening', (worker) => process.stderr.write(`worker ${worker.process.pid} listening\n`));

process.on('exit', () => {
  const names = Object.keys(require.cache).map((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]);
  const packages = [...new Set(names.filter(Boolean))].sort();
  process.stderr.write(`loaded packages (${cluster.isPrimary ? 'primary' : 'worker'}): ${packages.join(', ')}\n`);
});
