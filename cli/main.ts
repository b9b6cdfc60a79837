// `edgeflow <command>`: dispatches to the command modules.

const USAGE = `edgeflow: convert TensorFlow.js / Keras models and serve them at the edge

Usage:
  edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]
  edgeflow serve --store <folder | s3://bucket/prefix> [--port 8080]
  edgeflow watch --store <folder | s3://bucket/prefix> [--interval 5s]
  edgeflow train <model> [--epochs n] [--batch-size n] [--backend auto|tensorflow|wasm|cpu] [--out <folder>] [--upload <store>]

Run 'edgeflow <command> --help' for a command's options.`;

type Command = (argv: string[]) => Promise<number>;

const commands: Record<string, () => Promise<Command>> = {
  convert: async () => (await import('./convert.ts')).convertCommand,
  train: async () => (await import('./train.ts')).trainCommand,
  serve: async () => (await import('./serve.ts')).serveCommand,
  watch: async () => (await import('./watch.ts')).watchCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const load = commands[name];
  if (!load) {
    console.error(`edgeflow: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return 2;
  }
  return (await load())(rest);
}
