// The web console (browser code, bundled by esbuild into functions/console/assets.gen.ts):
// lists every published model (POST /v2/repository/index), shows versions, labels and the
// training curves, moves and removes labels and deletes versions (admin, each removal confirmed),
// uploads by drag and drop with live status, and tries a model (:classify with an image or a
// digit drawn by pointer or keyboard, :predict with JSON). The admin token is asked once, kept
// in sessionStorage and sent only as a Bearer header.
import { metricChart } from './chart.ts';

type Json = Record<string, unknown>;
type Training = {
  epochs?: number;
  backend?: string;
  seconds?: number;
  trainedAt?: string;
  unit?: string;
  metrics?: Record<string, number>;
  history?: { epoch: number; train: Record<string, number>; validation: Record<string, number> }[];
};
type Version = { version: number; labels: string[]; sizes?: Json; quantization?: Json; report?: Json; training?: Training };

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
let token = sessionStorage.getItem('edgeflow-token') ?? '';
let current = '';
/** Class names of the current model (from its metadata), to label :predict outputs. */
let classes: string[] | null = null;

async function call(path: string, init: RequestInit = {}): Promise<{ body: Json; response: Response }> {
  const headers = new Headers(init.headers);
  if (token && path.startsWith('/admin/')) headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(path, { ...init, headers });
  const body = (await response.json().catch(() => ({}))) as Json;
  if (!response.ok) throw new Error(String(body.error ?? response.statusText));
  return { body, response };
}

function el(tag: string, text = '', attrs: Record<string, string> = {}): HTMLElement {
  const node = document.createElement(tag);
  node.textContent = text;
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  return node;
}

function button(text: string, label: string, action: () => void): HTMLElement {
  const node = el('button', text, { type: 'button', 'aria-label': label });
  node.addEventListener('click', action);
  return node;
}

async function loadModels(): Promise<void> {
  const server = (await call('/v2')).body;
  $('server').textContent = `${server.name} ${server.version} · ${token ? 'admin' : 'read-only'}`;
  // Every published version, loaded or not (public, like the prediction routes).
  const rows = (await call('/v2/repository/index', { method: 'POST' })).body as unknown as { name: string; version: string }[];
  const versions = new Map<string, number>();
  for (const row of rows) versions.set(row.name, (versions.get(row.name) ?? 0) + 1);
  $('models').replaceChildren(
    ...[...versions]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([name, count]) => {
        const a = el('a', name, { href: `#${name}` });
        if (name === current) a.setAttribute('aria-current', 'true');
        const li = el('li');
        li.append(a, el('small', `${count} version${count === 1 ? '' : 's'}`));
        return li;
      }),
  );
}

async function showModel(name: string): Promise<void> {
  current = name;
  $('model').hidden = false;
  $('model-h').textContent = name;
  const meta = (await call(`/v1/models/${name}/metadata`).catch(() => ({ body: {} as Json }))).body;
  const edgeflow = (meta.edgeflow ?? {}) as { image?: { height: number; width: number; channels: string } | null; labels?: string[] | null };
  const image = edgeflow.image ?? null;
  classes = edgeflow.labels ?? null;
  $('draw-box').hidden = !(image && image.height === 28 && image.width === 28 && image.channels === 'grayscale');
  $('json').setAttribute('placeholder', '{"instances": [[...]]}');
  $('label-box').hidden = !token;
  if (!token) {
    $('versions').replaceChildren(el('p', 'Versions, labels and training curves need the admin token.'));
    $('training').replaceChildren();
    return;
  }
  const model = (await call(`/admin/models/${name}`)).body as { versions: Version[]; labels: Record<string, number> };
  const table = el('table');
  table.append(rowOf(['version', 'labels', 'sizes', 'dtypes', 'drift', 'calibration', ''], 'th'));
  for (const v of model.versions) {
    const report = (v.report ?? {}) as Json;
    const sizes = Object.entries((v.sizes ?? {}) as Record<string, number>).map(([k, n]) => `${k} ${(n / 1024).toFixed(1)} KiB`);
    const dtypes = Object.entries((v.quantization?.dtypes ?? {}) as Record<string, number>).map(([k, n]) => `${k}×${n}`);
    const drift = typeof report.maxAbsError === 'number' ? `max ${report.maxAbsError.toPrecision(2)}${report.passed === false ? ' (failed)' : ''}` : '';
    const tr = rowOf([`v${v.version}`, '', sizes.join(', '), dtypes.join(', '), drift, String(report.calibrationKind ?? '')], 'td');
    const chips = v.labels.map((label) => {
      const chip = el('span', label, { class: 'chip' });
      // `latest` is managed by the server: it always names the newest version.
      if (label !== 'latest') chip.append(button('×', `Remove label ${label}`, () => void removeLabel(name, label)));
      return chip;
    });
    tr.children[1]!.append(...chips);
    const actions = el('td', '', { class: 'actions' });
    actions.append(
      button(`label → v${v.version}`, `Point the label at v${v.version}`, () => void admin(() => moveLabel(name, $<HTMLInputElement>('label').value.trim(), v.version))),
      button('Delete', `Delete version ${v.version}`, () => void deleteVersion(name, v.version)),
    );
    tr.append(actions);
    table.append(tr);
  }
  const wrap = el('div', '', { class: 'scroll' });
  wrap.append(table);
  $('versions').replaceChildren(wrap);
  showTraining(model);
}

function rowOf(cells: string[], tag: 'td' | 'th'): HTMLElement {
  const tr = el('tr');
  for (const cell of cells) tr.append(el(tag, cell));
  return tr;
}

/** The training record of the version `latest` names (else the newest that has one): figures and curves. */
function showTraining(model: { versions: Version[]; labels: Record<string, number> }): void {
  const box = $('training');
  const trained = model.versions.filter((v) => v.training);
  const version = trained.find((v) => v.version === model.labels.latest) ?? trained[trained.length - 1];
  const training = version?.training;
  if (!version || !training) return void box.replaceChildren();
  const summary = `v${version.version}: ${training.epochs ?? '?'} epochs on ${training.backend ?? '?'}${training.seconds !== undefined ? ` in ${training.seconds.toFixed(1)} s` : ''}`;
  const metrics = el('dl', '', { class: 'metrics' });
  for (const [metric, value] of Object.entries(training.metrics ?? {}))
    metrics.append(el('dt', metric), el('dd', `${Number(value.toPrecision(4))}${training.unit && !/accuracy|precision|recall/.test(metric) ? ` ${training.unit}` : ''}`));
  const history = training.history ?? [];
  const names = [...new Set(history.flatMap((e) => Object.keys(e.train)))].sort((a, b) => Number(b === 'loss') - Number(a === 'loss'));
  const charts = el('div', '', { class: 'charts' });
  for (const metric of names) {
    const chart = metricChart(metric, [
      { name: 'train', className: 'train', points: history.map((e) => [e.epoch, e.train[metric] ?? NaN]) },
      { name: 'validation', className: 'validation', points: history.map((e) => [e.epoch, e.validation[metric] ?? NaN]) },
    ]);
    if (chart) charts.append(chart);
  }
  const legend = el('p', '', { class: 'legend' });
  legend.append(el('span', 'train', { class: 'train' }), el('span', 'validation', { class: 'validation' }));
  box.replaceChildren(el('h3', 'Training'), el('p', summary), metrics, ...(charts.childElementCount ? [legend, charts] : []));
}

/** Runs an admin change, shows its error (if any) in the status line, and redraws the model. */
async function admin(change: () => Promise<unknown>): Promise<void> {
  $('admin-status').textContent = '';
  try {
    await change();
  } catch (error) {
    $('admin-status').textContent = `Error: ${(error as Error).message}`;
  }
  await showModel(current);
  await loadModels();
}

const moveLabel = (name: string, label: string, version: number) =>
  call(`/admin/models/${name}/labels/${encodeURIComponent(label)}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });

async function removeLabel(name: string, label: string): Promise<void> {
  if (!confirm(`Remove the label "${label}" of ${name}? Requests through it will answer 404 until it is set again.`)) return;
  await admin(() => call(`/admin/models/${name}/labels/${encodeURIComponent(label)}`, { method: 'DELETE' }));
}

async function deleteVersion(name: string, version: number): Promise<void> {
  if (!confirm(`Delete version ${version} of ${name}? Its files are removed; this cannot be undone.`)) return;
  await admin(() => call(`/admin/models/${name}/versions/${version}`, { method: 'DELETE' }));
}

window.addEventListener('unhandledrejection', (e) => {
  $('admin-status').textContent = `Error: ${(e.reason as Error)?.message ?? e.reason}`;
});

/** Label and score pairs, best first: a :classify result, or a :predict row named by the model's classes. */
function scored(body: Json): [string, number][] | null {
  const result = body.result as [string, number][][] | undefined;
  if (result) return result[0] ?? [];
  const row = (body.predictions as unknown[] | undefined)?.[0];
  if (!classes || !Array.isArray(row)) return null;
  const values = row.flat(4) as number[];
  const pairs: [string, number][] | null =
    values.length === classes.length
      ? classes.map((label, i) => [label, values[i]!])
      : values.length === 1 && classes.length === 2
        ? [
            [classes[1]!, values[0]!],
            [classes[0]!, 1 - values[0]!],
          ]
        : null;
  return pairs?.sort((a, b) => b[1] - a[1]) ?? null;
}

function showResult(body: Json, response: Response): void {
  const rows = (scored(body) ?? []).slice(0, 5);
  $('bars').replaceChildren(
    ...rows.map(([label, score]) => {
      const li = el('li');
      const bar = el('span', '', { class: 'bar', style: `width:${(Math.min(1, Math.max(0, score)) * 100).toFixed(1)}%` });
      const track = el('span');
      track.append(bar);
      li.append(el('span', label), track, el('span', score.toFixed(3)));
      return li;
    }),
  );
  $('raw').textContent = body.result ? '' : JSON.stringify(body).slice(0, 2000);
  $('timing').textContent = response.headers.get('server-timing') ?? '';
}

async function run(path: string, body: BodyInit, type: string): Promise<void> {
  // The result box keeps its size while a prediction runs: only this line's text changes.
  $('timing').textContent = 'running…';
  try {
    const { body: answer, response } = await call(path, { method: 'POST', headers: { 'content-type': type }, body });
    showResult(answer, response);
  } catch (error) {
    $('bars').replaceChildren();
    $('timing').textContent = '';
    $('raw').textContent = `Error: ${(error as Error).message}`;
  }
}

function upload(files: FileList): void {
  const name = prompt('Model name', current || 'my-model');
  if (!name) return;
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  const xhr = new XMLHttpRequest();
  const progress = $<HTMLProgressElement>('progress');
  progress.hidden = false;
  xhr.upload.onprogress = (e) => {
    progress.value = e.lengthComputable ? e.loaded / e.total : 0;
  };
  xhr.onload = () => {
    const answer = JSON.parse(xhr.responseText || '{}') as Json;
    if (xhr.status !== 202) return void ($('upload-status').textContent = `Error: ${answer.error}`);
    void poll(String(answer.id));
  };
  xhr.open('POST', `/admin/models/${encodeURIComponent(name)}/uploads`);
  xhr.setRequestHeader('authorization', `Bearer ${token}`);
  xhr.send(form);
}

async function poll(id: string): Promise<void> {
  for (;;) {
    const status = (await call(`/admin/uploads/${id}`)).body;
    $('upload-status').textContent = `${status.name ?? ''} ${status.state}${status.version ? ` v${status.version}` : ''}${status.error ? `: ${status.error}` : ''}`;
    if (status.state === 'published' || status.state === 'failed') break;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  await loadModels();
}

/**
 * The draw-a-digit canvas (28x28, white on black): a pointer draws; so does the keyboard, with
 * a pen: arrow keys move it (Shift: 3 pixels), Space lowers or lifts it, Enter classifies the
 * drawing, Escape clears it.
 */
function setupDrawing(): void {
  const canvas = $<HTMLCanvasElement>('draw');
  const ctx = canvas.getContext('2d')!;
  const pen = { x: 14, y: 14, down: false };
  const dot = (x: number, y: number) => {
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(x, y, 1.5, 0, Math.PI * 2);
    ctx.fill();
  };
  const showPen = () => {
    const marker = $('pen');
    marker.style.left = `${(pen.x / 28) * 100}%`;
    marker.style.top = `${(pen.y / 28) * 100}%`;
    marker.classList.toggle('down', pen.down);
    $('pen-state').textContent = `pen ${pen.down ? 'down' : 'up'} at ${pen.x}, ${pen.y}`;
  };
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 28, 28);
  };
  const send = () => canvas.toBlob((blob) => blob && void run(`/v1/models/${current}:classify`, blob, 'image/png'), 'image/png');
  clear();
  showPen();
  let down = false;
  canvas.addEventListener('pointerdown', () => (down = true));
  window.addEventListener('pointerup', () => (down = false));
  canvas.addEventListener('pointermove', (e) => {
    if (!down) return;
    const r = canvas.getBoundingClientRect();
    dot(((e.clientX - r.left) / r.width) * 28, ((e.clientY - r.top) / r.height) * 28);
  });
  const moves: Record<string, [number, number]> = { ArrowLeft: [-1, 0], ArrowRight: [1, 0], ArrowUp: [0, -1], ArrowDown: [0, 1] };
  canvas.addEventListener('keydown', (e) => {
    const move = moves[e.key];
    if (move) {
      for (let step = 0; step < (e.shiftKey ? 3 : 1); step++) {
        pen.x = Math.min(27, Math.max(0, pen.x + move[0]));
        pen.y = Math.min(27, Math.max(0, pen.y + move[1]));
        if (pen.down) dot(pen.x + 0.5, pen.y + 0.5);
      }
    } else if (e.key === ' ') {
      pen.down = !pen.down;
      if (pen.down) dot(pen.x + 0.5, pen.y + 0.5);
    } else if (e.key === 'Enter') send();
    else if (e.key === 'Escape') clear();
    else return;
    e.preventDefault();
    showPen();
  });
  $('clear').addEventListener('click', clear);
  $('send-draw').addEventListener('click', send);
}

function setup(): void {
  $('token').addEventListener('click', () => {
    token = prompt('Admin token (kept for this tab only)') ?? '';
    sessionStorage.setItem('edgeflow-token', token);
    void loadModels().then(() => (current ? showModel(current) : undefined));
  });
  const drop = $('drop');
  const input = $<HTMLInputElement>('files');
  input.addEventListener('change', () => input.files && upload(input.files));
  drop.addEventListener('dragover', (e) => {
    e.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (e) => {
    e.preventDefault();
    drop.classList.remove('over');
    if (e.dataTransfer?.files.length) upload(e.dataTransfer.files);
  });
  $<HTMLInputElement>('image').addEventListener('change', (e) => {
    const file = (e.target as HTMLInputElement).files?.[0];
    if (file) void run(`/v1/models/${current}:classify`, file, file.type);
  });
  $('predict').addEventListener('click', () => void run(`/v1/models/${current}:predict`, $<HTMLTextAreaElement>('json').value, 'application/json'));
  setupDrawing();
  const route = () => {
    const name = decodeURIComponent(location.hash.slice(1));
    if (name) void showModel(name).then(loadModels);
  };
  window.addEventListener('hashchange', route);
  void loadModels().then(route);
}

setup();
