// Processes the benchmarks start and watch (Linux /proc): `edgeflow serve` as a child process,
// the workerd process Miniflare started, and a process's resident memory.
import { spawn, type ChildProcess } from 'node:child_process';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../scripts/edge-worker.ts';

/** RSS of a process, from /proc (Linux). */
export async function rss(pid: number | undefined): Promise<number | null> {
  if (!pid) return null;
  try {
    const status = await fs.readFile(`/proc/${pid}/status`, 'utf8');
    const kb = /VmRSS:\s+(\d+) kB/.exec(status)?.[1];
    return kb ? Number(kb) * 1024 : null;
  } catch {
    return null;
  }
}

/** The workerd process Miniflare started (a child of this process). */
export async function workerdPid(): Promise<number | undefined> {
  for (const entry of await fs.readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = await fs.readFile(`/proc/${entry}/stat`, 'utf8');
      const match = /^\d+ \(([^)]*)\) \S (\d+)/.exec(stat);
      if (match && match[1] === 'workerd' && Number(match[2]) === process.pid) return Number(entry);
    } catch {
      // process gone
    }
  }
  return undefined;
}

export interface ServeProcess {
  url: string;
  pid: number | undefined;
  stop(): Promise<void>;
}

/** `edgeflow serve --store <folder> --port 0 <args>` in a child process, once it listens. */
export async function spawnServe(folder: string, args: string[] = [], env: Record<string, string> = {}): Promise<ServeProcess> {
  const child: ChildProcess = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), 'serve', '--store', folder, '--port', '0', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      output += chunk.toString();
      const match = /at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) resolve(match[1]!);
    });
    child.once('exit', (code) => reject(new Error(`edgeflow serve exited with ${code}: ${output}`)));
  });
  return {
    url,
    pid: child.pid,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    },
  };
}
