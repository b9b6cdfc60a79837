// `edgeflow train <model>`: trains one of the models under models/, prints the backend it chose and
// the held-out evaluation, writes TensorBoard logs / CSV / PNG, and saves or uploads the model.
import { MODELS, runTraining, TrainingOptions, type TrainJobOptions } from '../models/index.ts';
import { parseCommandLine, UsageError } from './args.ts';

export const HELP = `Usage: edgeflow train <model> (--out <folder> | --upload <store>) [options]

Models:
${Object.values(MODELS)
  .map((m) => `  ${m.name.padEnd(9)} ${m.summary} (defaults: ${m.defaults.epochs} epochs, batch ${m.defaults.batchSize})`)
  .join('\n')}

Options:
  --epochs n               epochs to train (default: the model's)
  --batch-size n           examples per step (default: the model's)
  --backend b              auto | tensorflow | webgpu | wasm | cpu (default auto: tfjs-node-gpu with
                           a GPU, else WebGPU on a GPU, else tfjs-node, else the fastest pure
                           backend with every kernel needed)
  --allow-software-gpu     let webgpu (and auto) use a software adapter (Mesa's lavapipe)
  --out <folder>           save the trained TF.js layers model (model.json + weights) there
  --upload <store>         write it to uploads/<name>/<id>/ of a folder or s3://bucket/prefix store
                           (one of --out and --upload, or both, is required)
  --name <name>            model name in the store (default: the model's name)
  --logdir <folder>        TensorBoard logs, history.csv, history.png (default runs/<model>-<time>)
  --limit n                train on at most n examples (quick runs)
  --seed n                 seed of the data shuffles and splits (default 42)
Regularization:
  --dropout r              dropout rate (0 turns it off)
  --batch-norm             add BatchNormalization
  --l2 f                   L2 weight penalty
  --learning-rate r        Adam's learning rate
  --lr-schedule s          constant | exponential[:decay] | step[:every[:factor]] | cosine[:floor]
  --clip-norm n            clip gradients to this global norm
  --early-stopping n       stop after n epochs without improvement of the (validation) loss
  --validation-split f     fraction of the training data used for validation (0 for none)`;

function number(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${name} needs a number, got ${JSON.stringify(text)}`);
  return value;
}

/** argv to the training job's options (checked by its schema, TrainingOptions, when it runs); 0 after --help. */
export function parseTrainArgs(argv: string[]): TrainJobOptions | 0 {
  const parsed = parseCommandLine(argv, HELP, {
    epochs: { type: 'string' },
    'batch-size': { type: 'string' },
    backend: { type: 'string' },
    'allow-software-gpu': { type: 'boolean' },
    out: { type: 'string' },
    upload: { type: 'string' },
    name: { type: 'string' },
    logdir: { type: 'string' },
    limit: { type: 'string' },
    seed: { type: 'string' },
    dropout: { type: 'string' },
    'batch-norm': { type: 'boolean' },
    l2: { type: 'string' },
    'learning-rate': { type: 'string' },
    'lr-schedule': { type: 'string' },
    'clip-norm': { type: 'string' },
    'early-stopping': { type: 'string' },
    'validation-split': { type: 'string' },
  });
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError(positionals.length === 0 ? 'which model? give one of ' + Object.keys(MODELS).join(', ') : `one model at a time, got ${positionals.join(' ')}`);
  // A bad --backend is a usage mistake; the job's schema words it.
  const backend = TrainingOptions.shape.backend.safeParse(values.backend);
  if (!backend.success) throw new UsageError(backend.error.issues[0]!.message);
  if (values.out === undefined && values.upload === undefined) throw new UsageError('give --out <folder> or --upload <store> (or both): without either the trained model would be thrown away');
  const options: TrainJobOptions = { model: positionals[0]!, ...(backend.data ? { backend: backend.data } : {}) };
  const numeric: Array<[keyof TrainJobOptions, string]> = [
    ['epochs', 'epochs'],
    ['batchSize', 'batch-size'],
    ['limit', 'limit'],
    ['seed', 'seed'],
    ['dropout', 'dropout'],
    ['l2', 'l2'],
    ['learningRate', 'learning-rate'],
    ['clipNorm', 'clip-norm'],
    ['earlyStopping', 'early-stopping'],
    ['validationSplit', 'validation-split'],
  ];
  const record = options as unknown as Record<string, unknown>;
  for (const [key, flag] of numeric) {
    const value = number(flag, values[flag as keyof typeof values] as string | undefined);
    if (value !== undefined) record[key] = value;
  }
  if (values['batch-norm']) options.batchNorm = true;
  if (values['allow-software-gpu']) options.allowSoftwareGpu = true;
  for (const [key, flag] of [
    ['out', 'out'],
    ['upload', 'upload'],
    ['name', 'name'],
    ['logdir', 'logdir'],
    ['lrSchedule', 'lr-schedule'],
  ] as const) {
    const value = values[flag];
    if (value !== undefined) record[key] = value;
  }
  return options;
}

export async function trainCommand(argv: string[]): Promise<number> {
  const options = parseTrainArgs(argv);
  if (options === 0) return 0;
  const result = await runTraining(options);
  result.model.dispose();
  return 0;
}
