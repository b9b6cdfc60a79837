// Server-Timing header of a prediction: load, decode, infer, encode (ms), in that order.
import type { Context } from 'hono';

export class ServerTiming {
  private readonly entries: [string, number][] = [];
  private last = performance.now();

  /** Records the time since the previous mark under name. */
  mark(name: string): number {
    const now = performance.now();
    const ms = now - this.last;
    this.last = now;
    this.entries.push([name, ms]);
    return ms;
  }

  set(name: string, ms: number): void {
    this.entries.push([name, ms]);
    this.last = performance.now();
  }

  header(): string {
    return this.entries.map(([name, ms]) => `${name};dur=${ms.toFixed(2)}`).join(', ');
  }
}

/** Marks `encode` and answers the serialized JSON with the Server-Timing header. */
export function timedJson(c: Context, timing: ServerTiming, text: string): Response {
  timing.mark('encode');
  c.header('Server-Timing', timing.header());
  c.header('Content-Type', 'application/json');
  return c.body(text);
}
