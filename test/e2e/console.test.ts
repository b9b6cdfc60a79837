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
import { repoRoot } from '../../scripts/edge-worker.ts';
import { MemoryStore } from '../../shared/store/memory.ts';
import { tinyDenseModel } from '../helpers/tiny-models.ts';

const CHROMIUM = '/usr/bin/chromium';
const TOKEN = 'console-admin-token-4f1e';
const ARTIFACTS = path.join(repoRoot, 'test-results');
const haveChromium = existsSync(CHROMIUM);
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
    server = await startNodeServer({ store, port: 0, admin: { token: TOKEN } });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    });
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
    await page.click('#models a');
    await expect.poll(() => page.locator('#versions tr').count()).toBe(3);
    expect(await page.textContent('#versions')).toContain('latest');

    // Point `stable` at v2, then roll it back to v1 with the console's buttons, checked through the admin API.
    const labels = async () => ((await (await fetch(`${server.url}/admin/models/tiny`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as { labels: Record<string, number> }).labels;
    await page.click('[aria-label="Point the label at v2"]');
    await expect.poll(labels).toMatchObject({ latest: 2, stable: 2 });
    await page.click('[aria-label="Point the label at v1"]');
    await expect.poll(labels).toMatchObject({ latest: 2, stable: 1 });
    await page.fill('#label', 'latest');
    await page.click('[aria-label="Point the label at v1"]');
    await expect.poll(() => page.textContent('#admin-status')).toContain('label latest is managed');

    await page.fill('#json', JSON.stringify({ instances: [Array(16).fill(0.1)] }));
    await page.click('#predict');
    await expect.poll(() => page.textContent('#raw')).toContain('predictions');
    await page.screenshot({ path: path.join(ARTIFACTS, 'console-node.png') });
    await page.close();
  }, 60_000);
});
