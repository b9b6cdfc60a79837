// Cooperative pacing of a conversion that shares its thread with serving (a Worker isolate runs
// its queue() consumer and its fetch() handler on one thread): pause() yields a macrotask turn, so
// requests that arrived meanwhile are answered between calibration passes, model loads and
// steps, and refuses the conversion once it has run past its time budget. Time in a Worker
// advances only across I/O and timers; each pause is one, so the budget is checked there.
import { ConversionError } from '../shared/errors.ts';

export type Pause = () => Promise<void>;

/** No pacing: a conversion in a thread of its own (the CLI, Node's isolated conversions). */
export const NO_PAUSE: Pause = async () => {};

/** One macrotask turn: setImmediate where there is one (Node), else a 0 ms timer (Workers). */
export const macrotask = (): Promise<void> => new Promise((resolve) => (typeof setImmediate === 'function' ? setImmediate(resolve) : setTimeout(resolve, 0)));

/** A pause that yields a macrotask turn, and throws a permanent ConversionError once maxMs have passed since the pacer was made. */
export function pacer(maxMs: number, scope: string, hint = ''): Pause {
  const started = Date.now();
  return async () => {
    await macrotask();
    const spent = Date.now() - started;
    if (spent > maxMs) throw new ConversionError(`the conversion ran for more than ${Math.round(maxMs / 1000)} s, the time budget ${scope}, and was stopped${hint ? `: ${hint}` : ''}`);
  };
}
