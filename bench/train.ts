// Full training runs of the lab models, one after another, with their default settings;
// prints one summary row per model (backend, epochs, time, held-out metrics, baselines).
//   npx tsx bench/train.ts [celsius co2 co2-gru spam mnist] [--out <folder>]
// The README's training figures come from these runs. Run it alone: it keeps the CPU busy.
import { join } from 'node:path';
import { MODELS } from '../models/index.ts';
import { runTraining } from '../models/train/run.ts';

const args = process.argv.slice(2);
const outIndex = args.indexOf('--out');
const out = outIndex >= 0 ? args.splice(outIndex, 2)[1] : undefined;
const names = args.length > 0 ? args : ['celsius', 'co2', 'spam', 'mnist'];
for (const name of names) if (!MODELS[name]) throw new Error(`unknown model ${name}`);

const percent = (v: number) => `${(v * 100).toFixed(2)}%`;
const rows: string[][] = [];
for (const name of names) {
  const result = await runTraining({ model: name, ...(out ? { out: join(out, name), logdir: join(out, name, 'logs') } : {}) });
  const { record } = result;
  const metrics = Object.entries(record.metrics)
    .map(([k, v]) => `${k} ${k === 'mae' || k === 'mse' ? `${v.toPrecision(4)}${record.unit ? ` ${record.unit}${k === 'mse' ? '²' : ''}` : ''}` : percent(v)}`)
    .join(', ');
  const baselines = Object.entries(record.baselines ?? {})
    .map(([label, m]) => `${label}: mae ${m.mae!.toPrecision(4)}${record.unit ? ` ${record.unit}` : ''}`)
    .join('; ');
  rows.push([name, record.backend, `${record.epochs}`, `${record.trainSamples}`, record.seconds.toFixed(1), metrics, baselines || '-']);
  result.model.dispose();
}

const header = ['model', 'backend', 'epochs', 'train examples', 'train s', 'held-out', 'baseline'];
console.log(`\n| ${header.join(' | ')} |\n|${header.map(() => '---').join('|')}|`);
for (const row of rows) console.log(`| ${row.join(' | ')} |`);
