// The import rules of the house (docs/ARCHITECTURE.md): arrows point down,
//   entries (cli/, functions/worker.ts, functions/node.ts, functions/queue.ts, scripts/, bench/)
//   → routes (functions/ outside runtime/)  → runtime (functions/runtime/), pipeline (converter/),
//     training (models/)  → shared/
// and nothing imports the tests; the CLI and the scripts reach converter/, functions/ and models/
// only through their faces (converter/index.ts and node.ts, functions/node.ts, models/index.ts).
// `npm run lint` checks them.
const entries = '^(bin|cli|scripts|bench)/|^functions/(worker|node|queue)\\.ts$';
module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'shared-is-the-floor',
      comment: 'shared/ imports nothing of the project above it',
      severity: 'error',
      from: { path: '^shared/' },
      to: { path: '^(cli|converter|functions|models|scripts|bench|test)/' },
    },
    { name: 'pipeline-over-shared', comment: 'converter/ builds on shared/ only', severity: 'error', from: { path: '^converter/' }, to: { path: '^(cli|functions|models|scripts|bench|test)/' } },
    { name: 'training-over-shared', comment: 'models/ builds on shared/ only', severity: 'error', from: { path: '^models/' }, to: { path: '^(cli|converter|functions|scripts|bench|test)/' } },
    {
      name: 'runtime-over-shared',
      comment: 'functions/runtime/ builds on shared/ only',
      severity: 'error',
      from: { path: '^functions/runtime/' },
      to: { path: '^(cli|converter|models|scripts|bench|test)/|^functions/(?!runtime/)' },
    },
    {
      name: 'routes-over-runtime',
      comment: 'the routes use the runtime and shared/, not the pipeline or the entries',
      severity: 'error',
      from: { path: '^functions/', pathNot: entries },
      to: { path: '^(cli|converter|models|scripts|bench|test)/|^functions/(worker|node|queue)\\.ts$' },
    },
    {
      name: 'cli-through-faces',
      comment: 'the CLI and the scripts use the pipeline, the Node server and the training job through their public faces (benches may measure internals)',
      severity: 'error',
      from: { path: '^(cli|scripts)/' },
      to: { path: '^(converter|functions|models)/', pathNot: '^converter/(index|node)\\.ts$|^functions/node\\.ts$|^models/index\\.ts$' },
    },
    { name: 'nothing-imports-entries', comment: 'only entries import entries', severity: 'error', from: { pathNot: `${entries}|^test/` }, to: { path: entries } },
    { name: 'nothing-imports-tests', severity: 'error', from: { pathNot: '^test/' }, to: { path: '^test/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|\\.wrangler|\\.build|dist)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    moduleSystems: ['es6'],
  },
};
