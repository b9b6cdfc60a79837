// The web console (browser code, bundled by esbuild into functions/console/assets.gen.ts):
// lists models, versions and labels, uploads by drag and drop with live status, and tries a
// model (:classify with an image or a drawn digit, :predict with JSON). The admin token is
// asked once, kept in sessionStorage and sent only as a Bearer header.
type Json = Record<string, unknown>;
type Version = { version: number; labels: string[]; sizes?: Json; quantization?: Json; report?: Json; createdAt?: string };

const $ = <T extends HTMLElement = HTMLElement>(id: string) => document.getElementById(id) as T;
let token = sessionStorage.getItem('edgeflow-token') ?? '';
let current = '';

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

async function loadModels(): Promise<void> {
  const server = (await call('/v2')).body;
  $('server').textContent = `${server.name} ${server.version} · ${token ? 'admin' : 'read-only'}`;
  const names = token ? ((await call('/admin/models')).body.models as { name: string }[]).map((m) => m.name) : ((server.models as { name: string }[] | undefined) ?? []).map((m) => m.name);
  const list = $('models');
  list.replaceChildren(
    ...names.map((name) => {
      const a = el('a', name, { href: `#${name}` });
      if (name === current) a.setAttribute('aria-current', 'true');
      const li = el('li');
      li.append(a);
      return li;
    }),
  );
}

async function showModel(name: string): Promise<void> {
  current = name;
  $('model').hidden = false;
  $('model-h').textContent = name;
  const meta = (await call(`/v1/models/${name}/metadata`).catch(() => ({ body: {} as Json }))).body;
  const image = ((meta.edgeflow as Json | undefined)?.image as { height: number; width: number; channels: string } | null) ?? null;
  $('draw-box').hidden = !(image && image.height === 28 && image.width === 28 && image.channels === 'grayscale');
  $('json').setAttribute('placeholder', '{"instances": [[...]]}');
  const box = $('versions');
  if (!token) {
    box.replaceChildren(el('p', 'Versions and labels need the admin token.'));
    return;
  }
  const model = (await call(`/admin/models/${name}`)).body as { versions: Version[]; labels: Record<string, number> };
  const table = el('table');
  table.append(el('tr'));
  table.firstChild!.replaceWith(rowOf(['version', 'labels', 'sizes', 'dtypes', 'drift', 'calibration', ''], 'th'));
  for (const v of model.versions) {
    const report = (v.report ?? {}) as Json;
    const sizes = Object.entries((v.sizes ?? {}) as Record<string, number>).map(([k, n]) => `${k} ${(n / 1024).toFixed(1)} KiB`);
    const dtypes = Object.entries((v.quantization?.dtypes ?? {}) as Record<string, number>).map(([k, n]) => `${k}×${n}`);
    const drift = typeof report.maxAbsError === 'number' ? `max ${report.maxAbsError.toPrecision(2)}${report.passed === false ? ' (failed)' : ''}` : '';
    const tr = rowOf([`v${v.version}`, v.labels.join(', '), sizes.join(', '), dtypes.join(', '), drift, String(report.calibrationKind ?? '')], 'td');
    const td = el('td');
    const button = el('button', `label → v${v.version}`, { type: 'button', 'aria-label': `Point the label at v${v.version}` });
    button.addEventListener('click', () => void moveLabel(name, $<HTMLInputElement>('label').value.trim(), v.version));
    td.append(button);
    tr.append(td);
    table.append(tr);
  }
  const wrap = el('div', '', { class: 'scroll' });
  wrap.append(table);
  box.replaceChildren(wrap);
}

function rowOf(cells: string[], tag: 'td' | 'th'): HTMLElement {
  const tr = el('tr');
  for (const cell of cells) tr.append(el(tag, cell));
  return tr;
}

async function moveLabel(name: string, label: string, version: number): Promise<void> {
  $('admin-status').textContent = '';
  await call(`/admin/models/${name}/labels/${label}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ version }) });
  await showModel(name);
}

window.addEventListener('unhandledrejection', (e) => {
  $('admin-status').textContent = `Error: ${(e.reason as Error)?.message ?? e.reason}`;
});

function showResult(body: Json, response: Response): void {
  const rows = ((body.result as [string, number][][] | undefined)?.[0] ?? []).slice(0, 5);
  $('bars').replaceChildren(
    ...rows.map(([label, score]) => {
      const li = el('li');
      const bar = el('span', '', { class: 'bar', style: `width:${(score * 100).toFixed(1)}%` });
      const track = el('span');
      track.append(bar);
      li.append(el('span', label), track, el('span', score.toFixed(3)));
      return li;
    }),
  );
  $('raw').textContent = rows.length ? '' : JSON.stringify(body).slice(0, 2000);
  $('timing').textContent = response.headers.get('server-timing') ?? '';
}

async function run(path: string, body: BodyInit, type: string): Promise<void> {
  try {
    const { body: answer, response } = await call(path, { method: 'POST', headers: { 'content-type': type }, body });
    showResult(answer, response);
  } catch (error) {
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

function setupDrawing(): void {
  const canvas = $<HTMLCanvasElement>('draw');
  const ctx = canvas.getContext('2d')!;
  const clear = () => {
    ctx.fillStyle = '#000';
    ctx.fillRect(0, 0, 28, 28);
  };
  clear();
  let down = false;
  canvas.addEventListener('pointerdown', () => (down = true));
  window.addEventListener('pointerup', () => (down = false));
  canvas.addEventListener('pointermove', (e) => {
    if (!down) return;
    const r = canvas.getBoundingClientRect();
    ctx.fillStyle = '#fff';
    ctx.beginPath();
    ctx.arc(((e.clientX - r.left) / r.width) * 28, ((e.clientY - r.top) / r.height) * 28, 1.5, 0, Math.PI * 2);
    ctx.fill();
  });
  $('clear').addEventListener('click', clear);
  $('send-draw').addEventListener('click', () => canvas.toBlob((blob) => blob && void run(`/v1/models/${current}:classify`, blob, 'image/png'), 'image/png'));
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
