// Durations as people write them on a command line ("5s", "500ms", "2m"), for the CLI's flags.
import { EdgeflowError } from './errors.ts';

/** "5s", "500ms", "2m", or a number of seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)?$/.exec(text.trim());
  if (!match) throw new EdgeflowError('bad_request', `bad duration ${JSON.stringify(text)}: use e.g. 5s, 500ms or 2m`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Number(match[1]) * unit;
}
