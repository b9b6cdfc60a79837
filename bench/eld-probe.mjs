// Preloaded into `edgeflow serve` by bench/load.ts (NODE_OPTIONS=--import): the event-loop delay
// of the serving thread, as the largest delay seen in each 100 ms slice, appended to the file
// EDGEFLOW_ELD_LOG as "<epoch ms> <max delay ms>" lines (worker threads are not measured).
import { appendFileSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { isMainThread } from 'node:worker_threads';

const file = process.env.EDGEFLOW_ELD_LOG;
if (file && isMainThread) {
  const histogram = monitorEventLoopDelay({ resolution: 5 });
  histogram.enable();
  let lines = '';
  setInterval(() => {
    lines += `${Date.now()} ${(histogram.max / 1e6).toFixed(1)}\n`;
    histogram.reset();
    if (lines.length > 400) {
      appendFileSync(file, lines);
      lines = '';
    }
  }, 100).unref();
}
