// `edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]`.
import { readFile } from 'node:fs/promises';
import { dtypeCounts } from '../shared/bucket/published.ts';
import { openStore } from '../shared/store/open.ts';
import { parseCalibrationJson, parseNpy } from '../converter/calibration.ts';
import { convertAndPublish, ToleranceError } from '../converter/convert.ts';
import { ConversionError } from '../shared/errors.ts';
import { DEFAULT_QUANTIZE, DEFAULT_SHARD_BYTES, DEFAULT_TOLERANCE, parseByteSize } from '../shared/options/conversion.ts';
import { parseCommandLine } from './args.ts';
import { useNodeBackend } from './backend.ts';
import { readInput } from '../converter/read/files.ts';
import { formatBytes, progressPrinter, table } from './format.ts';

const HELP = `Usage: edgeflow convert <input> --name <name> --out <folder | s3://bucket/prefix> [options]

<input>               a TF.js model folder, a model.json (shards beside it), a .zip of either,
                      a Keras .h5 / .hdf5, or a Keras 3 .keras file
--name <name>         model name: a-z, 0-9, '.', '_', '-' (1-64 chars)
--out <store>         a local folder (store root) or s3://bucket/prefix
--quantize <spec>     none | float16 | uint16 | uint8 | auto, or per-weight rules such as
                      uint8=conv*/kernel,float16=*  (default ${DEFAULT_QUANTIZE})
--shard-size <size>   shard file size, bytes or with a unit (default 4MiB)
--calibration <file>  inputs to verify on: JSON ({"instances": [...]} or {"inputs": ...}) or .npy
                      (default: ${8} generated samples from the input signature)
--tolerance <x>       largest allowed output difference, divided by max(1, largest output)
                      (default ${DEFAULT_TOLERANCE})
--no-clip             use each weight's plain min/max range for uint8 / uint16
--keep-batchnorm      do not fold BatchNormalization layers into the convolution / dense
                      layer before them (folded by default where it keeps the precision)
`;

export async function convertCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandLine(
    'convert',
    HELP,
    argv,
    {
      name: { type: 'string' },
      out: { type: 'string' },
      quantize: { type: 'string', default: DEFAULT_QUANTIZE },
      'shard-size': { type: 'string' },
      calibration: { type: 'string' },
      tolerance: { type: 'string' },
      'no-clip': { type: 'boolean', default: false },
      'keep-batchnorm': { type: 'boolean', default: false },
    },
    ['name', 'out'],
  );
  if (typeof parsed === 'number') return parsed;
  const { values, positionals } = parsed;
  const input = positionals[0];
  if (!input || positionals.length > 1) {
    console.error(`edgeflow convert: needs exactly one <input>\n\n${HELP}`);
    return 2;
  }
  const name = values.name!;
  const out = values.out!;
  const progress = progressPrinter();
  try {
    const tolerance = values.tolerance === undefined ? DEFAULT_TOLERANCE : Number(values.tolerance);
    if (!Number.isFinite(tolerance) || tolerance < 0) throw new ConversionError(`--tolerance must be a number ≥ 0, got ${values.tolerance}`);
    const shardBytes = values['shard-size'] ? parseByteSize(values['shard-size']) : DEFAULT_SHARD_BYTES;
    const calibrationFile = values.calibration;
    const calibrationBytes = calibrationFile ? await readFile(calibrationFile) : undefined;
    const store = openStore(out);
    progress('backend', await useNodeBackend());
    const files = await readInput(input);
    const result = await convertAndPublish(store, files, {
      name,
      quantize: values.quantize,
      shardBytes,
      tolerance,
      clipOutliers: !values['no-clip'],
      foldBatchNorm: !values['keep-batchnorm'],
      calibration:
        calibrationBytes &&
        ((inputs) => (calibrationFile!.endsWith('.npy') ? parseNpy(calibrationBytes, inputs, calibrationFile) : parseCalibrationJson(calibrationBytes.toString('utf8'), inputs, calibrationFile))),
      onProgress: ({ stage, detail }) => progress(stage, detail),
    });
    console.log(summary(result));
    return 0;
  } catch (error) {
    if (error instanceof ConversionError || error instanceof ToleranceError) {
      console.error(`edgeflow convert: ${error.message}`);
      return 1;
    }
    console.error(`edgeflow convert: ${(error as Error).stack ?? error}`);
    return 1;
  }
}

function summary(result: Awaited<ReturnType<typeof convertAndPublish>>): string {
  const { metadata, report } = result;
  const dtypes = Object.entries(dtypeCounts(metadata.quantization.weights));
  const seconds = Object.values(result.timings).reduce((a, b) => a + b, 0) / 1000;
  return (
    '\n' +
    table([
      ['model', `${result.name} (${metadata.format}, from ${metadata.source.format})`],
      ['size before', `${formatBytes(metadata.sizes.source)} source, ${formatBytes(metadata.sizes.float32)} as float32`],
      ['size after', formatBytes(metadata.sizes.converted)],
      ['ratio', `${(metadata.sizes.float32 / metadata.sizes.converted).toFixed(2)}x smaller than float32`],
      ['dtypes', dtypes.map(([dtype, count]) => `${dtype}: ${count}`).join(', ')],
      ...(metadata.optimizations ? [['BatchNorm folded', `${metadata.optimizations.batchNormFolded} layer(s)`]] : []),
      ['drift', `max abs ${report.maxAbsError.toPrecision(3)}, mean abs ${report.meanAbsError.toPrecision(3)}, relative ${report.relativeError.toPrecision(3)} (tolerance ${report.tolerance})`],
      ['top-1 agreement', report.top1Agreement === null ? 'n/a (not a classifier output)' : `${(report.top1Agreement * 100).toFixed(1)}% of ${report.samples} samples`],
      ['version', result.existing ? `${result.version} (already published)` : `${result.version} published`],
      ['time', `${seconds.toFixed(1)} s`],
    ])
  );
}
