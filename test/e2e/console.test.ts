// The web console in headless Chromium (Debian's `chromium`, driven by playwright-core) against
// the Node server: GET / serves the page to a browser and JSON to others, the page lists the
// models, shows versions with their labels, moves a label with the admin token, and runs a
// JSON prediction. Screenshots go to test-results/. Skips visibly when chromium is absent.
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/index.ts';
import { CONSOLE_HTML } from '../../functions/console/assets.gen.ts';
import { type NodeServer, startNodeServer } from '../../functions/node.ts';
import { buildConsolePage } from '../../scripts/build-console.ts';
import { buildWorker, repoRoot, type RunningWorker, startWorker } from '../../scripts/edge-worker.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { demoModels } from '../../scripts/demo-models.ts';
import { loadMnistDigits } from '../helpers/mnist.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-admin-token-4f1e';
const ARTIFACTS = path.join(repoRoot, 'test-results');
const haveChromium = existsSync(CHROMIUM);
const LAUNCH = {
  executablePath: CHROMIUM,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
};
if (!haveChromium) console.warn(`SKIP console e2e: ${CHROMIUM} is absent (apt-get install chromium)`);

it('functions/console/assets.gen.ts is built from the current console/ sources', () => {
  expect(CONSOLE_HTML, 'run: npx tsx scripts/build-console.ts').toBe(buildConsolePage());
});

describe.skipIf(!haveChromium)('the console in headless Chromium, Node server', () => {
  let server: NodeServer;
  let browser: Browser;

  beforeAll(async () => {
    await useNodeBackend();
    const store = new MemoryStore();
    const files = await tinyDenseModel();
    await convertAndPublish(store, files, { name: 'tiny', quantize: 'float16', samples: 2, sourceId: 'console-a' });
    await convertAndPublish(store, files, { name: 'tiny', quantize: 'uint8', samples: 2, sourceId: 'console-b', tolerance: 0.2 });
    const mnist = (await demoModels()).find((m) => m.name === 'mnist-cnn')!;
    await convertAndPublish(store, mnist.files, { name: mnist.name, quantize: mnist.quantize, ...mnist.classifier, samples: 2, sourceId: 'console-mnist' });
    server = await startNodeServer({ store, port: 0, admin: { token: TOKEN } });
    browser = await chromium.launch(LAUNCH);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 60_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  it('GET / answers HTML to a browser and JSON to a JSON client', async () => {
    const html = await fetch(`${server.url}/`, { headers: { accept: 'text/html' } });
    expect(html.headers.get('content-type')).toMatch(/^text\/html/);
    expect(await html.text()).toContain('<title>edgeflow console</title>');
    const json = await fetch(`${server.url}/`);
    expect(((await json.json()) as { platform: string }).platform).toBe('node');
  });

  it('lists the models read-only, then with the token shows versions, moves a label and predicts', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(`${server.url}/`);
    await expect.poll(() => page.textContent('#server')).toContain('read-only');

    // The token is asked once through a prompt and kept in sessionStorage, never in the URL.
    page.once('dialog', (dialog) => void dialog.accept(TOKEN));
    await page.click('#token');
    await expect.poll(() => page.textContent('#models')).toContain('tiny');
    expect(page.url()).not.toContain(TOKEN);
    await page.click('#models a[href="#tiny"]');
    await expect.poll(() => page.locator('#versions tr').count()).toBe(3);
    expect(await page.textContent('#versions')).toContain('latest');

    // Point `stable` at v2, then roll it back to v1 with the console's buttons, checked through the admin API.
    const labels = async () => ((await (await fetch(`${server.url}/admin/models/tiny`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { labels: Record<string, number> }).labels;
    await page.click('[aria-label="Point the label at v2"]');
    await expect.poll(labels).toMatchObject({ latest: 2, stable: 2 });
    await page.click('[aria-label="Point the label at v1"]');
    await expect.poll(labels).toMatchObject({ latest: 2, stable: 1 });
    await page.fill('#json', JSON.stringify({ instances: [Array(16).fill(0.1)] }));
    await page.click('#predict');
    await expect.poll(() => page.textContent('#raw')).toContain('predictions');
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-node.png') });
    await page.fill('#label', 'latest');
    await page.click('[aria-label="Point the label at v1"]');
    await expect.poll(() => page.textContent('#admin-status')).toContain('label latest is managed');

    await page.close();
  }, 60_000);

  it('draws a real MNIST digit into the canvas and shows :classify as labelled bars with Server-Timing', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${server.url}/#mnist-cnn`);
    await expect.poll(() => page.isVisible('#draw')).toBe(true);
    const digits = loadMnistDigits();
    const seven = digits.labels.indexOf(7);
    const pixels = Array.from(digits.pixels.subarray(seven * 784, (seven + 1) * 784), (v) => Math.round(v * 255));
    const png = await page.evaluate((grey) => {
      const canvas = document.getElementById('draw') as HTMLCanvasElement;
      const ctx = canvas.getContext('2d')!;
      const image = ctx.createImageData(28, 28);
      grey.forEach((g, i) => image.data.set([g, g, g, 255], i * 4));
      ctx.putImageData(image, 0, 0);
      return canvas.toDataURL('image/png');
    }, pixels);
    await page.click('#send-draw');
    await expect.poll(() => page.locator('#bars li').count()).toBe(5);
    // The page shows what the server answers for the same PNG (the demo CNN has fixed, untrained weights).
    const bytes = Buffer.from(png.split(',')[1]!, 'base64');
    const direct = (await (await fetch(`${server.url}/v1/models/mnist-cnn:classify`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: bytes })).json()) as {
      result: [string, number][][];
    };
    const top = direct.result[0]![0]!;
    expect(await page.textContent('#bars li:first-child')).toBe(`${top[0]}${top[1].toFixed(3)}`);
    expect(await page.textContent('#timing')).toMatch(/infer;dur=/);
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-phone-digit.png') });
    await page.close();
  }, 60_000);
});

describe.skipIf(!haveChromium)('the console in headless Chromium, the Worker in workerd', () => {
  let worker: RunningWorker;
  let browser: Browser;

  beforeAll(async () => {
    await useNodeBackend();
    worker = await startWorker(await buildWorker(), { uploadQueue: true, vars: { EDGEFLOW_ADMIN_TOKEN: TOKEN } });
    browser = await chromium.launch(LAUNCH);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.dispose();
  });

  it('uploads model files with progress, watches the upload publish, and the model is listed and predicts', async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(`${worker.url}/`);
    page.once('dialog', (dialog) => void dialog.accept(TOKEN));
    await page.click('#token');
    await expect.poll(() => page.textContent('#server')).toContain('admin');
    const files = await tinyDenseModel();
    page.once('dialog', (dialog) => void dialog.accept('uploaded'));
    await page.setInputFiles(
      '#files',
      [...files].map(([name, bytes]) => ({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(bytes) })),
    );
    await expect.poll(() => page.textContent('#upload-status'), { timeout: 60_000 }).toMatch(/published v1|failed/);
    expect(await page.textContent('#upload-status')).toContain('uploaded published v1');
    await expect.poll(() => page.textContent('#models')).toContain('uploaded');
    await page.click('#models a[href="#uploaded"]');
    await page.fill('#json', JSON.stringify({ instances: [Array(16).fill(0.1)] }));
    await page.click('#predict');
    await expect.poll(() => page.textContent('#raw')).toContain('predictions');
    expect(await page.getAttribute('#progress', 'value')).toBe('1');
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-workerd-upload.png') });
    await page.close();
  }, 90_000);
});
