/**
 * The packages as a user outside the monorepo gets them: `pnpm build`, `pnpm pack` of each package,
 * the four tarballs installed with npm into a fresh project in a temporary folder (outside the
 * workspace, so nothing resolves through it), and then:
 *
 * - every tarball holds its LICENSE, README, `dist/` JavaScript and declarations (and, for
 *   `@fluxion/models`, the Node entry, the shipped data with their licences and the CLI);
 * - a Node ESM script trains a VAE a few steps from the installed packages on the CPU backend and
 *   on WebGPU (Dawn, the `webgpu` package, linked from the workspace: an optional peer, so npm does
 *   not install it), and the `fluxion` command answers `--help`;
 * - a TypeScript file type-checks under a default strict `tsconfig` with `skipLibCheck: false`:
 *   one for a page (`lib: es2022` only: no DOM, no `esnext`, no `@types/node`) on the main
 *   entries, one for Node (`@types/node` and DOM) on `@fluxion/models/node`;
 * - Vite bundles a page that trains a VAE from `@fluxion/models`'s main entry (no Node module
 *   may reach the bundle), and headless Chromium runs it (WebGPU on SwiftShader; where this
 *   Chromium has no WebGPU the page trains on the CPU backend and the output says so, except under
 *   FLUXION_REQUIRE_WEBGPU=1, which requires WebGPU).
 *
 * Every step that breaks fails the test with the command's output; nothing is skipped. npm may
 * fetch the two small third-party dependencies (`cli-progress` and its dependencies) from its
 * cache or the registry. Needs `/usr/bin/chromium` (scripts/setup-system.sh installs it).
 */
import { execFile } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PACKAGES = ['tensor', 'autograd', 'nn', 'models'] as const;
const CHROMIUM = '/usr/bin/chromium';
const required = process.env.FLUXION_REQUIRE_WEBGPU === '1';

const work = mkdtempSync(join(tmpdir(), 'fluxion-packaging-'));
const tarballDir = join(work, 'tarballs');
const app = join(work, 'app');

/** Runs a command; rejects with everything it printed when it fails. */
function run(
  cmd: string,
  args: string[],
  cwd: string,
  env: Record<string, string> = {},
): Promise<{ stdout: string; stderr: string }> {
  return new Promise((done, fail) =>
    execFile(
      cmd,
      args,
      {
        cwd,
        maxBuffer: 64 * 2 ** 20,
        env: { ...process.env, XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp', ...env },
      },
      (error, stdout, stderr) =>
        error
          ? fail(
              new Error(
                `${cmd} ${args.join(' ')} (in ${cwd}) failed: ${error.message}\n${stdout}\n${stderr}`,
              ),
            )
          : done({ stdout, stderr }),
    ),
  );
}

/** A package of the workspace's node_modules (its real folder in the pnpm store). */
const workspacePackage = (name: string) => join(root, 'node_modules', name);

/** The tarball of `@fluxion/<pkg>`, found after packing. */
const tarballs: Record<string, string> = {};

beforeAll(async () => {
  await run('pnpm', ['build'], root);
  mkdirSync(tarballDir, { recursive: true });
  await Promise.all(
    PACKAGES.map((p) => run('pnpm', ['pack', '--pack-destination', tarballDir], join(root, 'packages', p))),
  );
  for (const p of PACKAGES) {
    const file = readdirSync(tarballDir).find((f) => f.startsWith(`fluxion-${p}-`) && f.endsWith('.tgz'));
    if (!file) throw new Error(`pnpm pack wrote no tarball for @fluxion/${p} in ${tarballDir}`);
    tarballs[p] = join(tarballDir, file);
  }
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  await run(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      '--loglevel=error',
      ...PACKAGES.map((p) => tarballs[p]),
    ],
    app,
  );
  // Optional peers and tools, linked from the workspace rather than fetched: Dawn for WebGPU in
  // Node, and Node's types for the Node entry's type check.
  symlinkSync(workspacePackage('webgpu'), join(app, 'node_modules', 'webgpu'));
  mkdirSync(join(app, 'node_modules', '@types'), { recursive: true });
  symlinkSync(workspacePackage('@types/node'), join(app, 'node_modules', '@types', 'node'));
}, 300_000);

afterAll(() => {
  rmSync(work, { recursive: true, force: true });
});

/** The Node script the installed packages run: a few VAE steps on MNIST, samples, a PNG grid. */
const NODE_SCRIPT = `
import * as main from '@fluxion/models';
import * as node from '@fluxion/models/node';
import { currentBackend, initWebGPU, setBackend } from '@fluxion/tensor';
import { grad } from '@fluxion/autograd';
import { Dense } from '@fluxion/nn';

const want = process.argv[2];
let adapter = null;
if (want === 'webgpu') adapter = (await initWebGPU()).adapterInfo.description;
else setBackend('cpu');
const { train } = node.splitDataset(node.loadMnist(), 1000);
const vae = main.createModel('vae', { seed: 0 });
const { history } = await main.fit(vae, train, { epochs: 1, batchSize: 32, maxSteps: 4 });
const samples = vae.sample(4);
const pixels = await samples.data();
samples.dispose();
console.log(JSON.stringify({
  backend: currentBackend(),
  adapter,
  losses: history.loss,
  pixels: pixels.length,
  png: node.imageGrid(pixels, 4, 28, 28, 2).length,
  sameClasses: main.Vae === node.Vae && main.createModel === node.createModel,
  extras: typeof grad === 'function' && typeof Dense === 'function',
}));
process.exit(0);
`;

async function runNodeScript(backend: 'cpu' | 'webgpu') {
  writeFileSync(join(app, 'train.mjs'), NODE_SCRIPT);
  const { stdout } = await run(process.execPath, ['train.mjs', backend], app);
  const line = stdout.trim().split('\n').at(-1) ?? '';
  const result = JSON.parse(line) as {
    backend: string;
    adapter: string | null;
    losses: number[];
    pixels: number;
    png: number;
    sameClasses: boolean;
    extras: boolean;
  };
  console.log(
    `Node on ${backend}${result.adapter ? ` (${result.adapter})` : ''}: VAE losses ${result.losses.map((l) => l.toFixed(1)).join(', ')}`,
  );
  expect(result.backend).toBe(backend);
  expect(result.losses).toHaveLength(4);
  expect(result.losses.every(Number.isFinite)).toBe(true);
  expect(result.pixels).toBe(4 * 784);
  expect(result.png).toBeGreaterThan(100);
  expect(result.sameClasses, 'the main and the Node entry share one copy of the classes').toBe(true);
  expect(result.extras).toBe(true);
}

/** The code a page would hold, type-checked without DOM, Node or esnext declarations. */
const PAGE_TS = `
import { batches, createModel, type GenerativeModel, type ImageDataset, splitDataset } from '@fluxion/models';
import { grad, noGrad } from '@fluxion/autograd';
import { Adam, Dense } from '@fluxion/nn';
import { initWebGPU, sum, type Tensor, tensor, type WebGPUOptions } from '@fluxion/tensor';

export async function demo(data: ImageDataset): Promise<number> {
  using x = tensor([[1, 2], [3, 4]]);
  {
    using _off = noGrad();
  }
  const options: WebGPUOptions = { powerPreference: 'high-performance' };
  const backend = await initWebGPU(options);
  const device = backend.device; // opaque without the WebGPU declarations
  const model: GenerativeModel = createModel('vae', { seed: 0 });
  const { train } = splitDataset(data, 10);
  for (const batch of batches(train, 4, { seed: 0, epoch: 0 })) await model.trainStep(batch);
  const layer = new Dense(2, 1);
  const optimizer = new Adam(layer.parameters(), { lr: 1e-3 });
  const dx: Tensor = grad((t: Tensor) => sum(t))(x);
  void device;
  void optimizer;
  return (await dx.data())[0] ?? 0;
}
`;

/** Node code on the Node entry, type-checked with @types/node and DOM. */
const NODE_TS = `
import { writeFileSync } from 'node:fs';
import { createModel, imageGrid, loadMnist, runCli, saveCheckpoint, splitDataset } from '@fluxion/models/node';

const { train } = splitDataset(loadMnist(), 1000);
const vae = createModel('vae');
await saveCheckpoint('runs/vae', vae, { epoch: 0, step: 0, globalStep: 0 }, {}, { batchSize: 32 });
writeFileSync('grid.png', imageGrid(train.images, 4, 28, 28, 2));
process.exitCode = await runCli(['--help']);
`;

/** A strict tsconfig as \`tsc --init\` writes it, without skipLibCheck and with only \`lib\`. */
function tsconfig(file: string, lib: string[], types: string[]) {
  return {
    compilerOptions: {
      module: 'nodenext',
      target: 'es2022',
      lib,
      types,
      strict: true,
      noUncheckedIndexedAccess: true,
      exactOptionalPropertyTypes: true,
      verbatimModuleSyntax: true,
      isolatedModules: true,
      moduleDetection: 'force',
      skipLibCheck: false,
      noEmit: true,
    },
    files: [file],
  };
}

/** The page bundled by Vite: a few VAE steps on synthetic digits from @fluxion/models's main entry. */
const PAGE_HTML = `<!doctype html>
<html><head><meta charset="utf-8"><title>fluxion packaging</title></head>
<body><script type="module" src="./main.ts"></script></body></html>
`;
const PAGE_MAIN = `
import { batches, createModel, type ImageDataset } from '@fluxion/models';
import { initWebGPU, setBackend } from '@fluxion/tensor';

const result = { backend: '', losses: [] as number[], error: null as string | null, done: false };
(window as unknown as { result: typeof result }).result = result;

async function main() {
  if ((navigator as { gpu?: unknown }).gpu) {
    try {
      await initWebGPU();
      result.backend = 'webgpu';
    } catch {
      setBackend('cpu');
      result.backend = 'cpu';
    }
  } else {
    setBackend('cpu');
    result.backend = 'cpu';
  }
  // 256 "digits": a bar at one of 8 rows or 8 columns, so that the VAE has something to learn.
  const count = 256;
  const images = new Float32Array(count * 784);
  const labels = new Int32Array(count);
  for (let n = 0; n < count; n++) {
    const k = n % 16;
    labels[n] = k % 10;
    for (let i = 0; i < 28; i++) {
      for (let j = 0; j < 28; j++) {
        const on = k < 8 ? Math.abs(i - (3 + 3 * k)) <= 1 : Math.abs(j - (3 + 3 * (k - 8))) <= 1;
        images[n * 784 + i * 28 + j] = on ? 1 : 0;
      }
    }
  }
  const data: ImageDataset = { images, labels, count, height: 28, width: 28 };
  const vae = createModel('vae', { seed: 0 });
  for (let epoch = 0; result.losses.length < 16; epoch++) {
    for (const batch of batches(data, 32, { seed: 0, epoch })) {
      const { loss } = await vae.trainStep(batch);
      batch.images.dispose();
      batch.labels.dispose();
      result.losses.push(loss);
      if (result.losses.length >= 16) break;
    }
  }
  const samples = vae.sample(4);
  await samples.data();
  samples.dispose();
}
main()
  .catch((e) => {
    result.error = String((e as Error)?.stack ?? e);
  })
  .finally(() => {
    result.done = true;
  });
`;

/** A static file server on 127.0.0.1 (a secure context, as WebGPU requires). */
async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const types: Record<string, string> = { '.html': 'text/html', '.js': 'text/javascript' };
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', types[extname(file)] ?? 'application/octet-stream');
    res.end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

describe('packages installed from their tarballs, outside the workspace', () => {
  test('each tarball holds LICENSE, README, the built entries and their declarations; models ships its data with their licences', async () => {
    const listings: Record<string, string[]> = {};
    for (const p of PACKAGES) {
      const { stdout } = await run('tar', ['tzf', tarballs[p]], work);
      listings[p] = stdout.trim().split('\n');
      for (const f of ['LICENSE', 'README.md', 'package.json', 'dist/index.js', 'dist/index.d.ts']) {
        expect(listings[p], `@fluxion/${p} lacks ${f}`).toContain(`package/${f}`);
      }
      expect(listings[p].filter((f) => f.includes('/test/'))).toEqual([]);
      const manifest = JSON.parse(
        readFileSync(join(app, 'node_modules', '@fluxion', p, 'package.json'), 'utf8'),
      );
      expect(manifest.license).toBe('MIT');
      expect(manifest.exports['.'].types).toBe('./dist/index.d.ts');
      expect(manifest.engines.node).toBeDefined();
      expect(JSON.stringify(manifest.dependencies ?? {})).not.toContain('workspace:');
    }
    for (const f of [
      'dist/node.js',
      'dist/node.d.ts',
      'bin/fluxion.mjs',
      'data/mnist/mnist-10k-images-idx3-ubyte.gz',
      'data/mnist/LICENSE-CC-BY-SA-3.0',
      'data/text/LICENSE-makemore',
      'data/audio/LICENSE-CC-BY-SA-4.0',
      'assets/mnist-classifier.safetensors',
    ]) {
      expect(listings.models, `@fluxion/models lacks ${f}`).toContain(`package/${f}`);
    }
    const tensor = JSON.parse(
      readFileSync(join(app, 'node_modules', '@fluxion', 'tensor', 'package.json'), 'utf8'),
    );
    expect(tensor.peerDependenciesMeta.webgpu.optional).toBe(true);
    const models = JSON.parse(
      readFileSync(join(app, 'node_modules', '@fluxion', 'models', 'package.json'), 'utf8'),
    );
    expect(Object.keys(models.dependencies)).not.toContain('mnist');
  });

  test('a Node ESM script trains on the CPU backend', async () => {
    await runNodeScript('cpu');
  });

  test('a Node ESM script trains on WebGPU (the webgpu package, Dawn)', async () => {
    await runNodeScript('webgpu');
  });

  test('the fluxion command of the installed package answers --help', async () => {
    const { stdout, stderr } = await run(join(app, 'node_modules', '.bin', 'fluxion'), ['--help'], app);
    expect(`${stdout}${stderr}`).toMatch(/train/);
  });

  test('the declarations type-check under a default strict tsconfig: a page without DOM, Node or esnext, and Node code', async () => {
    const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    writeFileSync(join(app, 'page.ts'), PAGE_TS);
    writeFileSync(join(app, 'node.ts'), NODE_TS);
    writeFileSync(join(app, 'tsconfig.page.json'), JSON.stringify(tsconfig('page.ts', ['es2022'], [])));
    writeFileSync(
      join(app, 'tsconfig.node.json'),
      JSON.stringify(tsconfig('node.ts', ['es2022', 'dom'], ['node'])),
    );
    await Promise.all([
      run(process.execPath, [tsc, '-p', 'tsconfig.page.json'], app),
      run(process.execPath, [tsc, '-p', 'tsconfig.node.json'], app),
    ]);
  });

  test('Vite bundles a page on the main entry of @fluxion/models, and it trains in headless Chromium', async () => {
    const page = join(app, 'page');
    mkdirSync(page, { recursive: true });
    writeFileSync(join(page, 'index.html'), PAGE_HTML);
    writeFileSync(join(page, 'main.ts'), PAGE_MAIN);
    // Whatever tree shaking would drop: esbuild, bundling for the browser, refuses any Node module
    // (`node:*`, a builtin, or a package that needs one) that the main entries reach.
    const esbuild = await build({
      stdin: {
        contents:
          "export * from '@fluxion/models'; export * from '@fluxion/nn'; export * from '@fluxion/autograd';",
        resolveDir: app,
      },
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      logLevel: 'silent',
    }).catch((e: Error) => e);
    expect(
      esbuild instanceof Error ? esbuild.message : 'bundled',
      'the main entries reach a Node module',
    ).toBe('bundled');
    const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
    const dist = join(page, 'dist');
    const { stdout, stderr } = await run(
      process.execPath,
      [vite, 'build', page, '--outDir', dist, '--emptyOutDir'],
      app,
    );
    const log = `${stdout}${stderr}`;
    expect(log, 'a Node module reached the bundle').not.toMatch(/externalized for browser compatibility/);
    const js = readdirSync(join(dist, 'assets')).filter((f) => f.endsWith('.js'));
    for (const f of js)
      expect(readFileSync(join(dist, 'assets', f), 'utf8')).not.toContain('__vite-browser-external');
    console.log(`Vite built the page: ${js.join(', ')}`);

    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless=new',
        '--enable-unsafe-webgpu',
        '--no-sandbox',
        '--disable-gpu-sandbox',
        '--no-first-run',
      ],
    });
    const { server, url } = await serve(dist);
    try {
      const tab = await browser.newPage();
      const problems: string[] = [];
      tab.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      await tab.goto(url);
      await tab.waitForFunction(
        () => (window as unknown as { result?: { done: boolean } }).result?.done,
        null,
        {
          timeout: 100_000,
          polling: 250,
        },
      );
      const result = (await tab.evaluate(() => (window as unknown as { result: unknown }).result)) as {
        backend: string;
        losses: number[];
        error: string | null;
      };
      expect(result.error, problems.join('\n')).toBeNull();
      expect(problems).toEqual([]);
      const first = result.losses.slice(0, 3).reduce((a, b) => a + b, 0) / 3;
      const last = result.losses.slice(-3).reduce((a, b) => a + b, 0) / 3;
      console.log(
        `Chromium on ${result.backend}${result.backend === 'cpu' ? ' (this Chromium has no WebGPU adapter)' : ''}: VAE −ELBO ${first.toFixed(1)} → ${last.toFixed(1)} in ${result.losses.length} steps`,
      );
      if (required) expect(result.backend).toBe('webgpu');
      expect(result.losses).toHaveLength(16);
      expect(result.losses.every(Number.isFinite)).toBe(true);
      expect(last).toBeLessThan(first);
    } finally {
      await browser.close();
      server.close();
    }
  });
});
