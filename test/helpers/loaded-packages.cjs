// Preloaded with `node --require` (NODE_OPTIONS reaches cluster workers too): at exit, prints
// which npm packages the process loaded through require (TF.js is CommonJS, so it shows here),
// as `loaded packages (primary|worker): a, b`. Lets a test check what a process imported.
const cluster = require('node:cluster');

process.on('exit', () => {
  const names = Object.keys(require.cache).map((file) => /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(file)?.[1]);
  const packages = [...new Set(names.filter(Boolean))].sort();
  process.stderr.write(`loaded packages (${cluster.isPrimary ? 'primary' : 'worker'}): ${packages.join(', ')}\n`);
});
