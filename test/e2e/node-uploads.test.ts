// `edgeflow serve --watch` as a real subprocess with EDGEFLOW_ADMIN_TOKEN in its environment:
// an upload through the admin API is converted in the same process (woken at once, no poll
// wait) and answers predictions; the token never appears in its output. Without a token the
// admin API is refused.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { repoRoot } from '../../scripts/edge-worker.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const TOKEN = 'serve-admin-token-0c9d8e7f';
const children: ChildProcess[] = [];
const folders: string[] = [];

afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL');
  for (const folder of folders) await rm(folder, { recursive: true, force: true });
});

async function serve(env: Record<string, string>, extra: string[]): Promise<{ url: string; lines: string[]; stop: () => Promise<number | null> }> {
  const folder = await mkdtemp(path.join(tmpdir(), 'edgeflow-upload-serve-'));
  folders.push(folder);
  const { EDGEFLOW_ADMIN_TOKEN: _, ...inherited } = process.env;
  const child = spawn(process.execPath, [path.join(repoRoot, 'bin/edgeflow.mjs'), 'serve', '--store', folder, '--port', '0', ...extra], {
    cwd: repoRoot,
    env: { ...inherited, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: string[] = [];
  const url = await new Promise<string>((resolve, reject) => {
    for (const stream of [child.stdout!, child.stderr!]) {
      createInterface({ input: stream }).on('line', (line) => {
        lines.push(line);
        const match = / at (http:\/\/\S+)$/.exec(line);
        if (match) resolve(match[1]!);
      });
    }
    child.once('exit', (code) => reject(new Error(`serve exited with ${code}: ${lines.join('\n')}`)));
  });
  // Wait for the banner to finish (the admin line comes last).
  for (let i = 0; i < 100 && !lines.some((l) => l.startsWith('admin:')); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  return {
    url,
    lines,
    stop: () => {
      const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      return exited;
    },
  };
}

describe('edgeflow serve with the admin API', () => {
  it('--watch: upload → converted in-process → predictions; the token is never printed', async () => {
    await useNodeBackend();
    const model = await tinyDenseModel();
    const server = await serve({ EDGEFLOW_ADMIN_TOKEN: TOKEN }, ['--watch']);
    expect(server.lines).toContain('admin:  on (Bearer EDGEFLOW_ADMIN_TOKEN), uploads converted here');
    const form = new FormData();
    for (const [name, bytes] of model) form.append('files', new Blob([bytes as Uint8Array<ArrayBuffer>]), name);
    const started = performance.now();
    const response = await fetch(`${server.url}/admin/models/tiny/uploads?quantize=uint8&tolerance=0.2`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` }, body: form });
    expect(response.status).toBe(202);
    const accepted = (await response.json()) as { id: string; delivery: string };
    expect(accepted.delivery).toBe('converted by this server (--watch)');
    let status: Record<string, unknown> = {};
    for (let i = 0; i < 300 && status.state !== 'published' && status.state !== 'failed'; i++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      status = (await (await fetch(`${server.url}/admin/uploads/${accepted.id}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as Record<string, unknown>;
    }
    expect(status).toMatchObject({ state: 'published', version: 1, convertedBy: expect.stringMatching(/^serve:\d+$/) });
    const predict = await fetch(`${server.url}/v1/models/tiny:predict`, { method: 'POST', body: JSON.stringify({ instances: [Array(16).fill(0.1)] }) });
    expect(predict.status).toBe(200);
    console.log(`node serve --watch: upload → published ${status.latencyMs} ms; → first prediction ${(performance.now() - started).toFixed(0)} ms`);

    const wrong = await fetch(`${server.url}/admin/models`, { headers: { authorization: 'Bearer not-it' } });
    expect(wrong.status).toBe(403);
    expect(await server.stop()).toBe(0);
    expect(server.lines.join('\n')).not.toContain(TOKEN);
    expect(server.lines.some((l) => l.includes(`${accepted.id}: tiny version 1 published`))).toBe(true);
  });

  it('without EDGEFLOW_ADMIN_TOKEN the admin API is refused', async () => {
    const server = await serve({}, []);
    expect(server.lines).toContain('admin:  off (set EDGEFLOW_ADMIN_TOKEN to enable /admin)');
    const response = await fetch(`${server.url}/admin/models`, { headers: { authorization: 'Bearer anything' } });
    expect(response.status).toBe(403);
    expect(((await response.json()) as { error: string }).error).toMatch(/admin API is disabled/);
    expect(await server.stop()).toBe(0);
  });
});
