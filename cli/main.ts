// `edgeflow <command>`: dispatches to the command modules, and is the one place that turns an
// error into output and an exit code:
//   UsageError (cli/args.ts)  the message and the command's help, exit 2
//   EdgeflowError (any code)  `edgeflow <command>: <message>`, exit 1
//   anything else             a bug: `edgeflow <command>: internal error: <message>`, exit 1,
//                             with the stack when EDGEFLOW_DEBUG=1
import { readFileSync } from 'node:fs';
import { EdgeflowError } from '../shared/errors.ts';
import { UsageError } from './args.ts';

const USAGE = `edgeflow: convert TensorFlow.js / Keras models and serve them at the edge

Usage:
  edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]
  edgeflow serve --store <folder | s3://bucket/prefix> [--port 8080]
  edgeflow watch --store <folder | s3://bucket/prefix> [--interval 5s]
  edgeflow train <model> [--epochs n] [--batch-size n] [--backend auto|tensorflow|wasm|cpu] (--out <folder> | --upload <store>)
  edgeflow --version

Run 'edgeflow <command> --help' for a command's options.`;

interface Command {
  run: (argv: string[]) => Promise<number>;
  help: string;
}

/** A command that runs TF.js, with its console notes (the "install our node backend" banner) off. */
const quietly =
  (run: Command['run']): Command['run'] =>
  async (argv) => {
    (await import('./quiet.ts')).quietTensorFlow();
    return run(argv);
  };

const commands: Record<string, () => Promise<Command>> = {
  convert: async () => {
    const { convertCommand, HELP } = await import('./convert.ts');
    return { run: quietly(convertCommand), help: HELP };
  },
  train: async () => {
    const { trainCommand, HELP } = await import('./train.ts');
    return { run: quietly(trainCommand), help: HELP };
  },
  // Quiets TF.js itself, in the processes that serve (a cluster primary loads no TF.js).
  serve: async () => {
    const { serveCommand, HELP } = await import('./serve.ts');
    return { run: serveCommand, help: HELP };
  },
  watch: async () => {
    const { watchCommand, HELP } = await import('./watch.ts');
    return { run: quietly(watchCommand), help: HELP };
  },
};

export function version(): string {
  return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** Prints what went wrong in `edgeflow <command>` and returns the exit code. */
export function reportError(command: string, help: string, error: unknown): number {
  const who = command ? `edgeflow ${command}` : 'edgeflow';
  if (error instanceof UsageError) {
    console.error(`${who}: ${error.message}\n\n${help}`);
    return 2;
  }
  if (error instanceof EdgeflowError) {
    console.error(`${who}: ${error.message}`);
    return 1;
  }
  const bug = error instanceof Error ? error : new Error(String(error));
  console.error(`${who}: internal error: ${bug.message}`);
  console.error(process.env.EDGEFLOW_DEBUG === '1' ? bug.stack : '(a bug in edgeflow; run with EDGEFLOW_DEBUG=1 for the stack trace)');
  return 1;
}

export async function main(argv: string[]): Promise<number> {
  // The AWS SDK's Node 20 end-of-support notice is not the user's business on every run
  // (documented switch: aws/aws-sdk-js-v3#7983); an explicit setting wins.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
  const [name, ...rest] = argv;
  if (name === '--version' || name === '-v') {
    console.log(`edgeflow ${version()}`);
    return 0;
  }
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    console.log(USAGE);
    return name ? 0 : 1;
  }
  const load = commands[name];
  if (!load) return reportError('', USAGE, new UsageError(`unknown command ${JSON.stringify(name)}`));
  const command = await load();
  try {
    return await command.run(rest);
  } catch (error) {
    return reportError(name, command.help, error);
  }
}
