import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { UsageError } from '../../cli/args.ts';
import { reportError } from '../../cli/main.ts';
import { EdgeflowError } from '../../shared/errors.ts';
import { runEdgeflow } from '../helpers/cli.ts';

const PACKAGE = fileURLToPath(new URL('../../package.json', import.meta.url));

let work: string;

/** The environment with every AWS_* variable removed, and no AWS profile or instance metadata to find. */
function withoutAws(): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('AWS_')));
  return {
    ...env,
    HOME: work,
    AWS_CONFIG_FILE: path.join(work, 'no-aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'no-aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

const edgeflow = (args: string[], env: NodeJS.ProcessEnv = process.env) => runEdgeflow(args, { env: { ...env, EDGEFLOW_DEBUG: '' }, cwd: work });

const STACK = /^\s+at /m;
const NOISE = /NodeVersionSupportWarning|looks like you are running TensorFlow\.js in Node\.js|install our node backend/;

/** One error line, `edgeflow <command>: ...`, and nothing of a stack or the libraries' notices. */
function expectOneLine(result: { stdout: string; stderr: string }, command: string, message: RegExp) {
  expect(result.stderr).toMatch(new RegExp(`^edgeflow ${command}: ${message.source}`, 'm'));
  expect(result.stderr).not.toMatch(STACK);
  expect(result.stderr + result.stdout).not.toMatch(NOISE);
  expect(result.stderr).not.toMatch(/internal error/);
}

let model: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'edgeflow-cli-errors-'));
  // Any model folder will do: every case below fails before the input is read.
  model = path.join(work, 'model');
  await mkdir(model);
  await writeFile(path.join(model, 'model.json'), '{}');
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('ordinary mistakes: one line, exit 1, checked before any work', () => {
  it('an invalid model name', async () => {
    const result = await edgeflow(['convert', model, '--name', 'Bad Name', '--out', path.join(work, 'store')]);
    expect(result.code).toBe(1);
    expectOneLine(result, 'convert', /invalid model name "Bad Name"/);
    expect(result.stderr).not.toMatch(/backend/);
  });

  it('a shard size that is not a size', async () => {
    const result = await edgeflow(['convert', model, '--name', 'tiny', '--out', path.join(work, 'store'), '--shard-size', 'lots']);
    expect(result.code).toBe(1);
    expectOneLine(result, 'convert', /bad size "lots": use bytes or a unit like 4MiB/);
  });

  it('a store URL of an unsupported kind', async () => {
    const result = await edgeflow(['convert', model, '--name', 'tiny', '--out', 'gs://bucket/models']);
    expect(result.code).toBe(1);
    expectOneLine(result, 'convert', /unsupported store gs:\/\/bucket\/models: use a folder path or s3:\/\/bucket\/prefix/);
  });

  it('an SNR floor that is not a number of dB, or a bad auto:snr= spec', async () => {
    for (const [args, message] of [
      [['--min-snr', 'loud'], /--min-snr must be a number of dB from 0 to 200, got loud/],
      [['--quantize', 'auto:snr=much'], /bad --quantize "auto:snr=much": expected auto:snr=<dB>/],
    ] as const) {
      const result = await edgeflow(['convert', model, '--name', 'tiny', '--out', path.join(work, 'store'), ...args]);
      expect(result.code).toBe(1);
      expectOneLine(result, 'convert', message);
    }
  });

  it('a calibration file that is not there', async () => {
    const result = await edgeflow(['convert', model, '--name', 'tiny', '--out', path.join(work, 'store'), '--calibration', path.join(work, 'nope.json')]);
    expect(result.code).toBe(1);
    expectOneLine(result, 'convert', /--calibration .*nope\.json: no such file/);
  });

  it('S3 without credentials names the variables to set, without the SDK Node-version notice', async () => {
    for (const args of [
      ['convert', model, '--name', 'tiny', '--out', 's3://bucket/team'],
      ['watch', '--store', 's3://bucket/team', '--once'],
    ]) {
      const result = await edgeflow(args, withoutAws());
      expect(result.code, result.stderr).toBe(1);
      expectOneLine(result, args[0]!, /no S3 credentials for s3:\/\/bucket\/team: /);
      for (const variable of ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_ENDPOINT_URL']) expect(result.stderr).toContain(variable);
      expect(result.stderr).not.toMatch(/CredentialsProviderError|node >=22/);
    }
  });

  it('convert --out a file is refused before reading or converting anything', async () => {
    const file = path.join(work, 'README.md');
    await writeFile(file, '# not a store\n');
    const result = await edgeflow(['convert', model, '--name', 'tiny', '--out', file]);
    expect(result.code).toBe(1);
    expectOneLine(result, 'convert', /.*README\.md is a file, not a folder/);
    expect(result.stderr).not.toMatch(/backend|read /);
    expect(await readFile(file, 'utf8')).toBe('# not a store\n');
    const under = await edgeflow(['convert', model, '--name', 'tiny', '--out', path.join(file, 'store')]);
    expect(under.code).toBe(1);
    expectOneLine(under, 'convert', /.*README\.md.store is under a file, not a folder/);
  });

  it('serve and watch refuse a store folder that does not exist', async () => {
    const missing = path.join(work, 'no-such-store');
    const serve = await edgeflow(['serve', '--store', missing, '--port', '0']);
    expect(serve.code).toBe(1);
    expectOneLine(serve, 'serve', /store .*no-such-store: no such folder/);
    expect(serve.stdout).not.toMatch(/none published yet/);
    const watch = await edgeflow(['watch', '--store', missing, '--once']);
    expect(watch.code).toBe(1);
    expectOneLine(watch, 'watch', /store .*no-such-store: no such folder/);
    await expect(readdir(missing)).rejects.toThrow();
  });

  it('serve refuses a port that is not one', async () => {
    const result = await edgeflow(['serve', '--store', work, '--port', '99999']);
    expect(result.code).toBe(1);
    expectOneLine(result, 'serve', /--port needs a port number 0-65535/);
  });
});

describe('usage errors: the message and the help, exit 2', () => {
  it('train without --out or --upload would throw the model away', async () => {
    const result = await edgeflow(['train', 'celsius', '--epochs', '1']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^edgeflow train: .*--out.*--upload/m);
    expect(result.stderr).toMatch(/Usage: edgeflow train <model>/);
    expect(result.stderr).not.toMatch(STACK);
    expect(result.stdout).not.toMatch(/model: celsius/);
  });

  it('an unknown flag and an unknown command', async () => {
    const flag = await edgeflow(['convert', model, '--name', 'tiny', '--out', work, '--frobnicate']);
    expect(flag.code).toBe(2);
    expect(flag.stderr).toMatch(/^edgeflow convert: Unknown option '--frobnicate'/m);
    expect(flag.stderr).toMatch(/Usage: edgeflow convert <input>/);
    const command = await edgeflow(['frobnicate']);
    expect(command.code).toBe(2);
    expect(command.stderr).toMatch(/^edgeflow: unknown command "frobnicate"/m);
  });
});

describe('edgeflow --version', () => {
  it('prints the package version with --version and -v, and the usage lists it', async () => {
    const { version } = JSON.parse(await readFile(PACKAGE, 'utf8')) as { version: string };
    for (const flag of ['--version', '-v']) {
      const result = await edgeflow([flag]);
      expect(result.code).toBe(0);
      expect(result.stdout).toBe(`edgeflow ${version}\n`);
    }
    expect((await edgeflow(['--help'])).stdout).toMatch(/edgeflow --version/);
  });
});

describe('a real run is quiet', () => {
  it('edgeflow train prints no TF.js "install our node backend" banner', async () => {
    const out = path.join(work, 'celsius');
    const result = await edgeflow(['train', 'celsius', '--epochs', '1', '--limit', '64', '--out', out, '--logdir', path.join(work, 'logs')]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/saved: /);
    expect(result.stdout + result.stderr).not.toMatch(NOISE);
  }, 120_000);
});

describe('reportError (cli/main.ts)', () => {
  const printed = (fn: () => number) => {
    const lines: string[] = [];
    const spy = vi.spyOn(console, 'error').mockImplementation((line: string) => void lines.push(line));
    try {
      return { code: fn(), text: lines.join('\n') };
    } finally {
      spy.mockRestore();
    }
  };

  it('EdgeflowError of any code: the message, exit 1; UsageError: the message and the help, exit 2', () => {
    expect(printed(() => reportError('serve', 'HELP', new EdgeflowError('backend', 'no backend')))).toEqual({ code: 1, text: 'edgeflow serve: no backend' });
    expect(printed(() => reportError('serve', 'HELP', new EdgeflowError('not_found', 'gone')))).toEqual({ code: 1, text: 'edgeflow serve: gone' });
    expect(printed(() => reportError('serve', 'HELP', new UsageError('--port is odd')))).toEqual({ code: 2, text: 'edgeflow serve: --port is odd\n\nHELP' });
  });

  it('anything else is a bug: "internal error", with the stack only when EDGEFLOW_DEBUG=1', () => {
    const bug = new TypeError("Cannot read properties of undefined (reading 'x')");
    const before = process.env.EDGEFLOW_DEBUG;
    try {
      delete process.env.EDGEFLOW_DEBUG;
      const quiet = printed(() => reportError('convert', 'HELP', bug));
      expect(quiet.code).toBe(1);
      expect(quiet.text).toMatch(/^edgeflow convert: internal error: Cannot read properties of undefined \(reading 'x'\)\n/);
      expect(quiet.text).toMatch(/EDGEFLOW_DEBUG=1/);
      expect(quiet.text).not.toMatch(STACK);
      process.env.EDGEFLOW_DEBUG = '1';
      const debug = printed(() => reportError('convert', 'HELP', bug));
      expect(debug.code).toBe(1);
      expect(debug.text).toMatch(STACK);
    } finally {
      if (before === undefined) delete process.env.EDGEFLOW_DEBUG;
      else process.env.EDGEFLOW_DEBUG = before;
    }
  });
});
