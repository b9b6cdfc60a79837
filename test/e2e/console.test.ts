// The web console in headless Chromium (Debian's `chromium`, driven by playwright-core) against
// the Node server and the Worker in workerd: GET / serves the page to a browser and JSON to
// others; the page lists every published model without a token, shows versions with their labels
// and the training curves, moves and removes labels and deletes versions with the admin token
// (each removal confirmed), runs a JSON prediction, reads a digit drawn by pointer or keyboard
// with the trained demo MNIST CNN, classifies a real photo (with ../shared/fixtures), keeps its
// layout while predictions run and fits a phone. Screenshots go to test-results/. Skips visibly
// when chromium (or, for the photo, ../shared) is absent.
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useNodeBackend } from '../../cli/backend.ts';
import { convertAndPublish } from '../../converter/index.ts';
import { CONSOLE_HTML } from '../../functions/console/assets.gen.ts';
import { optionalFixtures } from '../../scripts/fixture-models.ts';
import { FIXTURES, HAVE_FIXTURES, NO_FIXTURES_REASON } from '../helpers/fixtures.ts';
import { greyPng, topLeftWhite } from '../helpers/images.ts';
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

/** A tiny dense model carrying a training record as `edgeflow train` writes it: loss over three decades, accuracy. */
async function trainedModel() {
  const files = await tinyDenseModel();
  const modelJson = JSON.parse(new TextDecoder().decode(files.get('model.json'))) as Record<string, unknown>;
  const history = Array.from({ length: 12 }, (_, i) => ({
    epoch: i + 1,
    train: { loss: 2 * 0.5 ** i, acc: 0.5 + i * 0.04 },
    validation: { loss: 2.2 * 0.52 ** i, acc: 0.48 + i * 0.039 },
  }));
  const training = { model: 'tiny', epochs: 12, backend: 'wasm', seconds: 3.2, metrics: { accuracy: 0.93 }, history };
  files.set('model.json', new TextEncoder().encode(JSON.stringify({ ...modelJson, userDefinedMetadata: { training } })));
  return files;
}

const adminGet = async (url: string) => (await fetch(url, { headers: { authorization: `Bearer ${TOKEN}` } })).json() as Promise<{ labels: Record<string, number>; versions: { version: number }[] }>;

/** Opens the console with the admin token given through its prompt. */
async function openAsAdmin(browser: Browser, url: string, viewport = { width: 1000, height: 700 }): Promise<Page> {
  const page = await browser.newPage({ viewport });
  await page.goto(url);
  await expect.poll(() => page.textContent('#server')).toContain('read-only');
  page.once('dialog', (dialog) => void dialog.accept(TOKEN));
  await page.click('#token');
  await expect.poll(() => page.textContent('#server')).toContain('admin');
  return page;
}

/** The sum of the layout shifts Chromium reports while `action` runs (Layout Instability API). */
async function layoutShiftDuring(page: Page, action: () => Promise<void>): Promise<number> {
  await page.evaluate(() => {
    const w = window as unknown as { shift: number };
    w.shift = 0;
    new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) w.shift += (entry as unknown as { value: number }).value;
    }).observe({ type: 'layout-shift' });
  });
  await action();
  await new Promise((resolve) => setTimeout(resolve, 300));
  return page.evaluate(() => (window as unknown as { shift: number }).shift);
}

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
    await convertAndPublish(store, files, { name: 'scratch', quantize: 'float16', samples: 1, sourceId: 'scratch-1' });
    await convertAndPublish(store, files, { name: 'scratch', quantize: 'uint8', samples: 1, sourceId: 'scratch-2', tolerance: 0.2 });
    await convertAndPublish(store, await trainedModel(), { name: 'trained', samples: 1, labels: ['north', 'east', 'south', 'west'] });
    const mnist = (await demoModels()).find((m) => m.name === 'mnist-cnn')!;
    await convertAndPublish(store, mnist.files, { name: mnist.name, quantize: mnist.quantize, ...mnist.classifier, samples: 2, sourceId: 'console-mnist' });
    for (const photo of await optionalFixtures()) await convertAndPublish(store, photo.files, { name: photo.name, quantize: photo.quantize, ...photo.classifier, samples: 1 });
    server = await startNodeServer({ store, port: 0, admin: { token: TOKEN } });
    browser = await chromium.launch(LAUNCH);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 300_000);

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
    // Without a token the list still shows every published model (none is loaded yet).
    await expect.poll(() => page.textContent('#models')).toContain('trained');
    const listed = await page.$$eval('#models a', (links) => links.map((a) => a.textContent));
    expect(listed).toEqual(expect.arrayContaining(['mnist-cnn', 'scratch', 'tiny', 'trained']));
    expect(await page.textContent('#models a[href="#tiny"] + small')).toBe('2 versions');

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
    // The demo CNN is trained: it reads the 7.
    expect(top[0]).toBe('7');
    expect(await page.textContent('#bars li:first-child')).toBe(`${top[0]}${top[1].toFixed(3)}`);
    expect(await page.textContent('#timing')).toMatch(/infer;dur=/);
    await page.close();
  }, 60_000);

  it('shows the training record: figures and curves with a log-scale loss, decade ticks and titled axes', async () => {
    const page = await openAsAdmin(browser, `${server.url}/#trained`);
    await expect.poll(() => page.locator('#training svg').count()).toBe(2);
    expect(await page.textContent('#training')).toContain('v1: 12 epochs on wasm in 3.2 s');
    expect(await page.textContent('#training .metrics')).toBe('accuracy0.93');
    const loss = page.locator('#training svg[aria-label="loss (log scale) per epoch"]');
    // 2 · 0.5^11 ≈ 0.00098 to 2.2: one tick per decade, epochs at a step of 2, both axes titled, one line per series.
    expect(await loss.locator('text.tick').allTextContents()).toEqual(['1.0e-4', '1.0e-3', '0.01', '0.1', '1', '10', '2', '4', '6', '8', '10', '12']);
    expect(await loss.locator('text.axis-title').allTextContents()).toEqual(['epoch', 'loss (log scale)']);
    expect(await loss.locator('path.series title').allTextContents()).toEqual(['train', 'validation']);
    const acc = page.locator('#training svg[aria-label="acc per epoch"]');
    expect((await acc.locator('text.tick').allTextContents()).slice(0, 4)).toEqual(['0.4', '0.5', '0.6', '0.7']);
    // A JSON :predict of a model with class names shows its row as labelled bars, best first.
    const instance = Array.from({ length: 16 }, (_, i) => i / 16);
    await page.fill('#json', JSON.stringify({ instances: [instance] }));
    await page.click('#predict');
    await expect.poll(() => page.locator('#bars li').count()).toBe(4);
    const { predictions } = (await (await fetch(`${server.url}/v1/models/trained:predict`, { method: 'POST', body: JSON.stringify({ instances: [instance] }) })).json()) as { predictions: number[][] };
    const best = predictions[0]!.indexOf(Math.max(...predictions[0]!));
    expect(await page.textContent('#bars li:first-child')).toBe(`${['north', 'east', 'south', 'west'][best]}${predictions[0]![best]!.toFixed(3)}`);
    expect(await page.textContent('#raw')).toContain('predictions');
    // The README's screenshot (docs/console.png) is this one.
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-training.png'), fullPage: true });
    await page.close();
  }, 60_000);

  it('removes a label and deletes a version after a confirm (dismissed: nothing changes; a labelled version: refused)', async () => {
    const scratch = `${server.url}/admin/models/scratch`;
    await fetch(`${scratch}/labels/canary`, { method: 'PUT', headers: { authorization: `Bearer ${TOKEN}` }, body: JSON.stringify({ version: 1 }) });
    const page = await openAsAdmin(browser, `${server.url}/#scratch`);
    await expect.poll(() => page.locator('#versions tr').count()).toBe(3);
    // `latest` is managed by the server: it has no remove button.
    expect(await page.locator('[aria-label="Remove label latest"]').count()).toBe(0);

    const confirms: string[] = [];
    page.once('dialog', (dialog) => {
      confirms.push(dialog.message());
      void dialog.dismiss();
    });
    await page.click('[aria-label="Delete version 1"]');
    await expect.poll(() => confirms.length).toBe(1);
    expect(confirms[0]).toBe('Delete version 1 of scratch? Its files are removed; this cannot be undone.');
    expect((await adminGet(scratch)).versions.map((v) => v.version)).toEqual([1, 2]);

    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('[aria-label="Delete version 1"]');
    await expect.poll(() => page.textContent('#admin-status')).toContain('version 1 of scratch is labelled canary');
    expect((await adminGet(scratch)).versions.map((v) => v.version)).toEqual([1, 2]);

    page.once('dialog', (dialog) => {
      confirms.push(dialog.message());
      void dialog.accept();
    });
    await page.click('[aria-label="Remove label canary"]');
    await expect.poll(async () => (await adminGet(scratch)).labels).toEqual({ latest: 2 });
    expect(confirms[1]).toContain('Remove the label "canary" of scratch?');
    await expect.poll(() => page.locator('[aria-label="Remove label canary"]').count()).toBe(0);

    page.once('dialog', (dialog) => void dialog.accept());
    await page.click('[aria-label="Delete version 1"]');
    await expect.poll(async () => (await adminGet(scratch)).versions.map((v) => v.version)).toEqual([2]);
    await expect.poll(() => page.locator('#versions tr').count()).toBe(2);
    // The model list is redrawn after the versions table: wait for it too.
    await expect.poll(() => page.textContent('#models a[href="#scratch"] + small')).toBe('1 version');
    expect((await fetch(`${server.url}/v1/models/scratch/versions/1`)).status).toBe(404);
    await page.close();
  }, 60_000);

  it('draws a 7 with the keyboard alone; the MNIST CNN reads it; no layout shift; fits a 390 px phone', async () => {
    const page = await browser.newPage({ viewport: { width: 390, height: 844 } });
    await page.goto(`${server.url}/#mnist-cnn`);
    await expect.poll(() => page.isVisible('#draw')).toBe(true);
    // Tab reaches the canvas (it is focusable); then only keys.
    await page.focus('#image');
    for (let i = 0; i < 10 && !(await page.evaluate(() => document.activeElement?.id === 'draw')); i++) await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('draw');
    const press = async (key: string, times = 1) => {
      for (let i = 0; i < times; i++) await page.keyboard.press(key);
    };
    await press('ArrowLeft', 6);
    await press('ArrowUp', 7);
    expect(await page.textContent('#pen-state')).toBe('pen up at 8, 7');
    await press('Space');
    await press('ArrowRight', 12);
    for (let i = 0; i < 15; i++) await press(i % 2 === 0 ? 'ArrowDown' : 'ArrowLeft');
    await press('ArrowDown', 7);
    await press('Space');
    expect(await page.textContent('#pen-state')).toBe('pen up at 13, 22');
    const png = await page.evaluate(() => (document.getElementById('draw') as HTMLCanvasElement).toDataURL('image/png'));

    const boxes = () => page.evaluate(() => ['try', 'result', 'draw'].map((id) => JSON.stringify(document.getElementById(id)!.getBoundingClientRect())));
    const before = await boxes();
    const shift = await layoutShiftDuring(page, async () => {
      await press('Enter');
      await expect.poll(() => page.locator('#bars li').count()).toBe(5);
    });
    expect(shift).toBe(0);
    expect(await boxes()).toEqual(before);

    const direct = (await (
      await fetch(`${server.url}/v1/models/mnist-cnn:classify`, { method: 'POST', headers: { 'content-type': 'image/png' }, body: Buffer.from(png.split(',')[1]!, 'base64') })
    ).json()) as { result: [string, number][][] };
    expect(direct.result[0]![0]![0]).toBe('7');
    expect(await page.textContent('#bars li:first-child span:first-child')).toBe('7');
    // Its bar spans nearly the whole track (0.9+), the others little.
    const widths = await page.$$eval('#bars .bar', (bars) => bars.map((bar) => bar.getBoundingClientRect().width / bar.parentElement!.getBoundingClientRect().width));
    expect(widths[0]).toBeGreaterThan(0.9);
    expect(widths[1]).toBeLessThan(0.1);
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-phone-digit.png'), fullPage: true });
    await press('Escape');
    expect(await page.evaluate(() => Array.from((document.getElementById('draw') as HTMLCanvasElement).getContext('2d')!.getImageData(0, 0, 28, 28).data).some((v, i) => i % 4 !== 3 && v > 0))).toBe(
      false,
    );

    // Readable on a phone: nothing wider than the screen.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    await page.close();
  }, 60_000);

  it.skipIf(!HAVE_FIXTURES)(
    "classifies a real photo through the image model: the bars show the server's top label",
    async () => {
      const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
      await page.goto(`${server.url}/#nsfw-mobilenet`);
      await expect.poll(() => page.textContent('#model-h')).toBe('nsfw-mobilenet');
      const photo = await readFile(path.join(FIXTURES, 'images/cat.jpg'));
      await page.setInputFiles('#image', { name: 'cat.jpg', mimeType: 'image/jpeg', buffer: photo });
      await expect.poll(() => page.locator('#bars li').count(), { timeout: 30_000 }).toBe(5);
      const direct = (await (await fetch(`${server.url}/v1/models/nsfw-mobilenet:classify`, { method: 'POST', headers: { 'content-type': 'image/jpeg' }, body: photo })).json()) as {
        result: [string, number][][];
      };
      const [label, score] = direct.result[0]![0]!;
      expect(label).toBe('Neutral');
      expect(await page.textContent('#bars li:first-child')).toBe(`${label}${score.toFixed(3)}`);
      expect(await page.textContent('#timing')).toMatch(/decode;dur=[\d.]+.*infer;dur=/);
      await page.screenshot({ path: path.join(ARTIFACTS, 'console-photo.png') });
      await page.close();
    },
    60_000,
  );
  it.skipIf(HAVE_FIXTURES)(`classifies a real photo: ${NO_FIXTURES_REASON}`, () => {});
});

describe.skipIf(!haveChromium)('the console in headless Chromium, the Worker in workerd', () => {
  let worker: RunningWorker;
  let browser: Browser;
  let bundleGzip = 0;

  beforeAll(async () => {
    await useNodeBackend();
    const bundle = await buildWorker();
    bundleGzip = bundle.gzipBytes;
    worker = await startWorker(bundle, { uploadQueue: true, vars: { EDGEFLOW_ADMIN_TOKEN: TOKEN, MAX_IMAGE_PIXELS: '1000' } });
    const mnist = (await demoModels()).find((m) => m.name === 'mnist-cnn')!;
    await convertAndPublish(worker.store, mnist.files, { name: mnist.name, quantize: mnist.quantize, ...mnist.classifier, samples: 1 });
    browser = await chromium.launch(LAUNCH);
    await mkdir(ARTIFACTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await worker?.dispose();
  });

  it('the Worker bundle with the console in it stays within 500 KiB gzip', () => {
    console.log(`worker bundle: ${(bundleGzip / 1024).toFixed(1)} KiB gzip (console page ${(CONSOLE_HTML.length / 1024).toFixed(1)} KiB raw)`);
    expect(bundleGzip).toBeLessThanOrEqual(500 * 1024);
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

  it("an image over the Worker's MAX_IMAGE_PIXELS (1000 here) shows the 413 message; one within it classifies", async () => {
    const page = await browser.newPage({ viewport: { width: 1000, height: 700 } });
    await page.goto(`${worker.url}/#mnist-cnn`);
    await expect.poll(() => page.isVisible('#draw')).toBe(true);
    await page.setInputFiles('#image', { name: 'big.png', mimeType: 'image/png', buffer: Buffer.from(greyPng(topLeftWhite(32))) });
    await expect.poll(() => page.textContent('#raw')).toBe('Error: body: a 32x32 image (1024 pixels) exceeds the limit of 1000 pixels: send it downscaled');
    await page.setInputFiles('#image', { name: 'small.png', mimeType: 'image/png', buffer: Buffer.from(greyPng(topLeftWhite(28))) });
    await expect.poll(() => page.locator('#bars li').count()).toBe(5);
    expect(await page.textContent('#raw')).toBe('');
    await page.close();
  }, 60_000);
});
