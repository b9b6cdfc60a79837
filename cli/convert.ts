// `edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]`.
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { dtypeCounts } from '../shared/bucket/published.ts';
import { openOutputStore } from '../shared/store/open.ts';
import { convertAndPublish, type CalibrationFile } from '../converter/index.ts';
import { isImagePath } from '../shared/bucket/calibration.ts';
import { EdgeflowError } from '../shared/errors.ts';
import { checkModelName } from '../shared/names.ts';
import { parseImageSpec, parseLabels } from '../shared/options/image-spec.ts';
import { MAX_SNR_DB } from '../shared/options/quantize-spec.ts';
import { ConversionOptions, DEFAULT_QUANTIZE, DEFAULT_TOLERANCE, parseByteSize, resolveConversionOptions, type ResolvedConversionOptions } from '../shared/options/conversion.ts';
import { parseCommandLine, UsageError } from './args.ts';
import { useNodeBackend } from './backend.ts';
import { readInput } from '../converter/node.ts';
import { formatBytes, progressPrinter, table } from './format.ts';
import type { OutputReport, ServingReport } from '../shared/schemas/edgeflow-json.ts';

export const HELP = `Usage: edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]

<input>               a TF.js model folder, a model.json (shards beside it), a .zip of either,
                      a Keras .h5 / .hdf5, or a Keras 3 .keras file
--name <name>         model name: a-z, 0-9, '.', '_', '-' (1-64 chars)
--out <store>         a local folder (store root) or s3://bucket/prefix
--quantize <spec>     none | float16 | uint16 | uint8 | auto, or per-weight rules such as
                      uint8=conv*/kernel,float16=*  (default ${DEFAULT_QUANTIZE}); auto:snr=<dB>
                      searches for the smallest model whose outputs keep that SNR
--shard-size <size>   shard file size, bytes or with a unit (default 4MiB)
--calibration <path>  inputs to verify on: JSON ({"instances": [...]} or {"inputs": ...}), .npy,
                      or PNG / JPEG images (one, or a folder of them) preprocessed by the image
                      spec (--image, or inferred); default: calibration.json beside a trained
                      model, else ${8} samples generated from the input signature
--tolerance <x>       largest allowed output difference, divided by max(1, largest output)
                      (default ${DEFAULT_TOLERANCE})
--min-snr <dB>        also require every float output's SNR (signal over error power, on
                      the calibration inputs) to be at least this many dB, e.g. 40
--no-clip             use each weight's plain min/max range for uint8 / uint16
--keep-batchnorm      do not fold BatchNormalization layers into the convolution / dense
                      layer before them (folded by default where it keeps the precision)
--no-equalize         do not equalize the channel ranges of Conv2D / Dense pairs before uint8 /
                      uint16 (tried with --calibration, kept where it lowers the output noise)
--format <f>          layers (default: stored as given, served compiled to fused ops where
                      checked), graph (compiled to a TF.js graph model of fused ops), or auto
                      (graph where every layer compiles)
--labels <file>       class names of the single output, one per line (index = class), served by
                      :classify; a Teachable Machine labels.txt beside keras_model.h5 is read
                      when not given
--image <spec>        <H>x<W>[,scale=<s>][,offset=<o>][,channels=rgb|grayscale]: how :classify
                      turns an image into the input (pixel p → p*scale+offset; default scale 1,
                      offset 0; inferred from an [-1,H,W,1|3] input when not given)
`;

export async function convertCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    argv,
    HELP,
    {
      name: { type: 'string' },
      out: { type: 'string' },
      quantize: { type: 'string' },
      'shard-size': { type: 'string' },
      calibration: { type: 'string' },
      tolerance: { type: 'string' },
      'min-snr': { type: 'string' },
      'no-clip': { type: 'boolean', default: false },
      'keep-batchnorm': { type: 'boolean', default: false },
      'no-equalize': { type: 'boolean', default: false },
      format: { type: 'string' },
      labels: { type: 'string' },
      image: { type: 'string' },
    },
    ['name', 'out'],
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const input = positionals[0];
  if (!input || positionals.length > 1) throw new UsageError('needs exactly one <input>');
  // Everything that can be checked without the input is checked before any work starts.
  const name = checkModelName(values.name!);
  const labels = await readLabels(values.labels, input);
  const options = conversionOptions({ ...values, labels: labels?.names });
  const store = await openOutputStore(values.out!);
  const calibrationFiles = values.calibration === undefined ? undefined : await readCalibration(values.calibration);
  const progress = progressPrinter();
  progress('backend', await useNodeBackend());
  if (labels && !values.labels) progress('read', `class labels from ${labels.file}: ${labels.names.length} classes`);
  const files = await readInput(input);
  const result = await convertAndPublish(store, files, {
    name,
    ...options,
    clipOutliers: !values['no-clip'],
    ...(calibrationFiles ? { calibrationFiles } : {}),
    onProgress: ({ stage, detail }) => progress(stage, detail),
  });
  console.log(summary(result));
  return 0;
}

async function readOptionFile(flag: string, file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new EdgeflowError('bad_request', `${flag} ${file}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'a folder, not a file' : (error as Error).message}`);
  }
}

/** --calibration: one file, or the PNG / JPEG images of a folder (sorted by name). */
async function readCalibration(path: string): Promise<CalibrationFile[]> {
  if (!(await stat(path).catch(() => undefined))?.isDirectory()) return [{ path, bytes: await readOptionFile('--calibration', path) }];
  const names = (await readdir(path)).filter(isImagePath).sort();
  if (names.length === 0) throw new EdgeflowError('bad_request', `--calibration ${path}: the folder has no PNG or JPEG images (*.png, *.jpg, *.jpeg)`);
  return Promise.all(names.map(async (name) => ({ path: join(path, name), bytes: await readOptionFile('--calibration', join(path, name)) })));
}

/** --labels <file>, else the labels.txt Teachable Machine writes beside keras_model.h5. */
async function readLabels(file: string | undefined, input: string): Promise<{ names: string[]; file: string } | undefined> {
  if (file !== undefined) return { names: parseLabels((await readOptionFile('--labels', file)).toString('utf8')), file };
  if (!/\.(h5|hdf5|keras)$/i.test(basename(input))) return undefined;
  const beside = join(dirname(input), 'labels.txt');
  const text = await readFile(beside, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : { names: parseLabels(text), file: beside };
}

/** The conversion flags through the one schema of conversion options (shared/options/conversion.ts). */
function conversionOptions(values: {
  quantize?: string;
  'shard-size'?: string;
  tolerance?: string;
  'min-snr'?: string;
  'keep-batchnorm'?: boolean;
  'no-equalize'?: boolean;
  format?: string;
  labels?: string[];
  image?: string;
}): ResolvedConversionOptions {
  const parsed = ConversionOptions.safeParse({
    labels: values.labels,
    image: values.image === undefined ? undefined : parseImageSpec(values.image),
    quantize: values.quantize,
    shardBytes: values['shard-size'] === undefined ? undefined : parseByteSize(values['shard-size']),
    tolerance: values.tolerance === undefined ? undefined : Number(values.tolerance),
    minSnrDb: values['min-snr'] === undefined ? undefined : Number(values['min-snr']),
    keepBatchNorm: values['keep-batchnorm'],
    ...(values['no-equalize'] ? { equalize: false } : {}),
    format: values.format,
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    if (issue.path[0] === 'labels') throw new EdgeflowError('bad_request', `--labels: ${issue.message}`);
    if (issue.path[0] === 'format') throw new EdgeflowError('bad_request', `--format must be layers, graph or auto, got ${JSON.stringify(values.format)}`);
    if (issue.path[0] === 'minSnrDb') throw new EdgeflowError('bad_request', `--min-snr must be a number of dB from 0 to ${MAX_SNR_DB}, got ${values['min-snr']}`);
    throw new EdgeflowError('bad_request', issue.path[0] === 'tolerance' ? `--tolerance must be a number ≥ 0, got ${values.tolerance}` : issue.message);
  }
  return resolveConversionOptions(parsed.data);
}

function describeServing(serving: ServingReport): string {
  if (serving.runtime === 'compiled-graph') return `compiled to fused graph ops at load (same outputs as the layers model, ${serving.speedup ?? '?'}x its speed)`;
  if (serving.runtime === 'layers') return `the layers runtime (${serving.reason ?? 'as stored'})`;
  return serving.ops
    ? `graph model: ${Object.entries(serving.ops)
        .map(([op, n]) => `${op} ${n}`)
        .join(', ')}`
    : 'graph model';
}

function describeOutput(output: OutputReport): string {
  if (output.kind === 'integer') return `integer output: ${((output.agreement ?? 1) * 100).toFixed(1)}% of elements unchanged`;
  return output.snrDb === null ? 'unchanged' : `SNR ${output.snrDb.toFixed(1)} dB, max abs error ${output.maxAbsError.toPrecision(3)}`;
}

function summary(result: Awaited<ReturnType<typeof convertAndPublish>>): string {
  const { metadata, report } = result;
  const dtypes = Object.entries(dtypeCounts(metadata.quantization.weights));
  const seconds = Object.values(result.timings).reduce((a, b) => a + b, 0) / 1000;
  const files = result.modelFiles.files;
  const modelJsonBytes = files.get('model.json')?.byteLength ?? 0;
  const weightBytes = metadata.sizes.converted - modelJsonBytes;
  return (
    '\n' +
    table([
      ['model', `${result.name} (${metadata.format}, from ${metadata.source.format})`],
      ...(metadata.serving ? [['serving', describeServing(metadata.serving)]] : []),
      ['size before', `${formatBytes(metadata.sizes.source)} source, ${formatBytes(metadata.sizes.float32)} as float32`],
      ['size after', `${formatBytes(metadata.sizes.converted)} (weights ${formatBytes(weightBytes)}, model.json ${formatBytes(modelJsonBytes)})`],
      ['ratio', weightBytes > 0 ? `weights ${(metadata.sizes.float32 / weightBytes).toFixed(2)}x smaller than float32` : 'n/a (no weights)'],
      ['dtypes', dtypes.map(([dtype, count]) => `${dtype}: ${count}`).join(', ')],
      ...(metadata.labels ? [['labels', `${metadata.labels.length} classes: ${metadata.labels.slice(0, 5).join(', ')}${metadata.labels.length > 5 ? ', ...' : ''}`]] : []),
      ...(metadata.image ? [['image input', `${metadata.image.height}x${metadata.image.width} ${metadata.image.channels}, pixel*${metadata.image.scale}+${metadata.image.offset}`]] : []),
      ...(metadata.optimizations?.batchNormFolded ? [['BatchNorm folded', `${metadata.optimizations.batchNormFolded} layer(s)`]] : []),
      ['calibration', report.calibration],
      [
        'drift',
        `max abs ${report.maxAbsError.toPrecision(3)}, mean abs ${report.meanAbsError.toPrecision(3)}, relative ${report.relativeError.toPrecision(3)} (tolerance ${report.tolerance}${report.minSnrDb === undefined ? '' : `, SNR ≥ ${report.minSnrDb} dB`})`,
      ],
      ...(report.outputs ?? []).map((output) => [`  ${output.name}`, describeOutput(output)]),
      ['top-1 agreement', report.top1Agreement === null ? 'n/a (not a classifier output)' : `${(report.top1Agreement * 100).toFixed(1)}% of ${report.samples} samples`],
      ['version', result.existing ? `${result.version} (already published)` : `${result.version} published`],
      ['time', `${seconds.toFixed(1)} s`],
    ])
  );
}
