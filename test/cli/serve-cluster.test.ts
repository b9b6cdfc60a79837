// `edgeflow serve --workers 2`: two serving processes on one port answer predictions; a worker
// that dies is replaced while the other keeps answering; SIGTERM stops the primary and every
// worker; the primary loads no TF.js (it forks before importing the server), and a worker serving
// a compiled model no tfjs-converter; a port in use, a bad flag or a missing store is said once,
// as one line, with no worker left running.
import { execFileSync, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { parseServeFlags } from '../../cli/serve-flags.ts';
import { convertAndPublish } from '../../converter/convert.ts';
import { repoRoot } from '../../scripts/edge-worker.ts';
import { LocalFolderStore } from '../../shared/store/local.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

let folder: string;
const body = JSON.stringify({ instances: [Array.from({ length: 16 }, (_, i) => i / 16)] });

beforeAll(async () => {
  await useNodeBackend();
  folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-cluster-'));
  await convertAndPublish(new LocalFolderStore(folder), await tinyDenseModel(), { name: 'dense', samples: 2 });
});

afterAll(async () => {
  await rm(folder, { recursive: true, force: true });
});

/** The serving workers the primary forked (tsx's esbuild service is a child too: not counted). */
const childPids = (pid: number): number[] => {
  try {
    return execFileSync('ps', ['-o', 'pid=,args=', '--ppid', String(pid)], { encoding: 'utf8' })
      .split('\n')
      .filter((line) => line.includes('edgeflow.mjs serve'))
      .map((line) => Number.parseInt(line, 10));
  } catch {
    return [];
  }
};

function startServe(args: string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), 'serve', '--store', folder, ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const waitFor = (pattern: RegExp, ms = 60_000) =>
    new Promise<RegExpExecArray>((resolve, reject) => {
      const started = Date.now();
      const poll = setInterval(() => {
        const match = pattern.exec(output);
        if (match) {
          clearInterval(poll);
          resolve(match);
        } else if (Date.now() - started > ms || child.exitCode !== null) {
          clearInterval(poll);
          reject(new Error(`no ${pattern} in: ${output}`));
        }
      }, 50);
    });
  return { child, waitFor, output: () => output };
}

/** Preloaded into the primary and its workers: says what each loaded, and each worker's start of listening. */
const preload = path.join(repoRoot, 'test/helpers/loaded-packages.cjs');

describe('edgeflow serve --workers', () => {
  it('serves from two processes on one port, replaces a worker that dies, stops them all on SIGTERM', async () => {
    const { child, waitFor, output } = startServe(['--port', '0', '--workers', '2'], { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}` });
    try {
      const url = (await waitFor(/at (http:\/\/127\.0\.0\.1:\d+)[\s\S]*try:/))[1]!;
      expect(output()).toMatch(/2 serving processes/);
      // Both listen before one is killed: were the other still starting, the port (0: chosen by the
      // first listener) would close with the last listening worker and its replacement get another.
      await waitFor(/worker \d+ listening[\s\S]*worker \d+ listening/);
      const predict = () => fetch(`${url}/v1/models/dense:predict`, { method: 'POST', body });
      expect((await Promise.all(Array.from({ length: 12 }, predict))).map((r) => r.status)).toEqual(Array(12).fill(200));
      const workers = childPids(child.pid!);
      expect(workers).toHaveLength(2);
      process.kill(workers[0]!, 'SIGKILL');
      await waitFor(new RegExp(`worker ${workers[0]} exited \\(SIGKILL\\); starting another`));
      expect((await predict()).status).toBe(200);
      const replaced = childPids(child.pid!);
      expect(replaced).toHaveLength(2);
      expect(replaced).not.toContain(workers[0]);
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      for (const pid of replaced) expect(() => process.kill(pid, 0)).toThrow();
    } finally {
      for (const pid of childPids(child.pid!)) process.kill(pid, 'SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('the primary forks before importing the server: it loads no TF.js, its workers do (not tfjs-converter: a compiled model needs none)', async () => {
    const { child, waitFor, output } = startServe(['--port', '0', '--workers', '2'], { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}` });
    try {
      const url = (await waitFor(/at (http:\/\/127\.0\.0\.1:\d+)[\s\S]*try:/))[1]!;
      expect((await fetch(`${url}/v1/models/dense:predict`, { method: 'POST', body })).status).toBe(200);
      // Both workers started (one may still be importing TF.js when the first answers).
      await waitFor(/worker \d+ listening[\s\S]*worker \d+ listening/);
      // 'close': once every process holding the output pipes (the workers too) has written its last line.
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      const loaded = (who: string) => [...output().matchAll(new RegExp(`loaded packages \\(${who}\\): (.*)`, 'g'))].map((m) => m[1]!.split(', '));
      expect(loaded('primary')).toHaveLength(1);
      expect(loaded('primary')[0]!.filter((name) => name.startsWith('@tensorflow/'))).toEqual([]);
      expect(loaded('worker')).toHaveLength(2);
      for (const packages of loaded('worker')) expect(packages).toContain('@tensorflow/tfjs-core');
      // The model is a layers model served compiled, as a plan of kernels: no GraphModel, so no tfjs-converter.
      expect(loaded('worker').flat()).not.toContain('@tensorflow/tfjs-converter');
    } finally {
      for (const pid of childPids(child.pid!)) process.kill(pid, 'SIGKILL');
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });

  it('--workers, --max-in-flight and --max-image-pixels take whole numbers ≥ 1 (0 would serve nothing)', () => {
    expect(parseServeFlags({ store: 's', workers: '3', 'max-in-flight': '8', 'max-image-pixels': '1000000' })).toMatchObject({ workers: 3, limits: { maxInFlight: 8, maxImagePixels: 1_000_000 } });
    for (const [flag, text] of [
      ['workers', '0'],
      ['workers', '1.5'],
      ['max-in-flight', '0'],
      ['max-image-pixels', '0'],
      ['max-image-pixels', '4e6.5'],
    ]) {
      expect(() => parseServeFlags({ store: 's', [flag!]: text })).toThrow(new RegExp(`--${flag} needs a whole number ≥ 1, got "${text}"`));
    }
  });

  it('a bad flag or store with --workers 2: one line from the primary (it forks before checking them), and no worker keeps running', async () => {
    const running = (marker: string) =>
      execFileSync('ps', ['-eo', 'args='], { encoding: 'utf8' })
        .split('\n')
        .filter((line) => line.includes('edgeflow.mjs serve') && line.includes(marker));
    for (const [args, message] of [
      [['--port', 'http'], `edgeflow serve: --port needs a port number 0-65535 (0 picks a free one), got "http"`],
      [['--port', '0', '--index-ttl', 'soon'], `edgeflow serve: --index-ttl needs a non-negative number, got "soon"`],
      [['--port', '0', '--store', 'gone-store'], `edgeflow serve: store gone-store: no such folder (publish into it first with 'edgeflow convert <input> --name <name> --out gone-store')`],
    ] as const) {
      const { child, output } = startServe([...args, '--workers', '2']);
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      expect(output().trim().split('\n')).toEqual([message]);
      expect(running(args.join(' '))).toEqual([]);
    }
  });

  it('a port in use is one line from the primary, and nothing keeps running', async () => {
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const { child, output } = startServe(['--port', String(port), '--workers', '2']);
    try {
      const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
      expect(code).toBe(1);
      const lines = output().trim().split('\n');
      expect(lines).toEqual([`edgeflow serve: port ${port} on 127.0.0.1 is in use: stop what listens there or pick another --port (0 picks a free one)`]);
    } finally {
      blocker.close();
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
