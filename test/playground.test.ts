/**
 * The browser playground (`examples/playground`), for real: the page is built with Vite, served on
 * 127.0.0.1, and driven in Debian's headless Chromium through playwright-core. Chromium runs WebGPU
 * on SwiftShader (its software adapter) with `--enable-unsafe-webgpu`, so the page trains a VAE with
 * WGSL kernels; the test checks that the loss fell and that the sample grid was drawn (the canvas is
 * not blank). Where this Chromium has no WebGPU, the same test checks the page's CPU fallback notice
 * and training on the CPU instead; its name covers both cases and its output says which ran. A
 * second test hides `navigator.gpu`, as a browser without WebGPU would, and checks the notice and a
 * training step on the CPU backend. Two more open the other tabs: the text tab trains a character
 * model on names for a few steps (the loss falls, the 10 sampled names change), and the audio tab
 * trains the spectrogram VAE for two steps, then the button "7" generates a clip (8,192 samples at
 * 8 kHz in a Web Audio buffer, not silent) and draws its spectrogram.
 *
 * Needs `/usr/bin/chromium` (`apt-get install chromium`, done by scripts/setup-system.sh); without
 * it the tests are skipped, except under FLUXION_REQUIRE_WEBGPU=1 (CI), where they fail.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium, type Page } from 'playwright-core';
import { afterAll, describe, expect, test } from 'vitest';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless=new',
  '--enable-unsafe-webgpu',
  '--no-sandbox',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
];
const required = process.env.FLUXION_REQUIRE_WEBGPU === '1';
const haveChromium = existsSync(CHROMIUM);

/** What the page exposes as `window.fluxionPlayground` (see examples/playground/src/main.ts). */
interface PageState {
  backend: 'webgpu' | 'cpu' | null;
  tab: string;
  adapter: string;
  notice: string | null;
  step: number;
  losses: Record<string, number[]>;
  samplesDrawn: number;
  done: boolean;
  error: string | null;
  timings: Record<string, number>;
  text: {
    ready: boolean;
    step: number;
    done: boolean;
    error: string | null;
    losses: { loss: number[] };
    samples: string[];
    firstSamples: string[];
    samplesDrawn: number;
  };
  audio: {
    ready: boolean;
    step: number;
    done: boolean;
    error: string | null;
    clipLength: number;
    losses: Record<string, number[]>;
    gridsDrawn: number;
    clips: number;
    lastClip: {
      digit: number;
      length: number;
      bufferLength: number;
      sampleRate: number;
      duration: number;
      rms: number;
      peak: number;
      bufferRms: number;
      spectrogram: [number, number];
      playback: string;
    } | null;
  };
}

function buildPage(outDir: string): Promise<void> {
  const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
  const args = [
    vite,
    'build',
    'examples/playground',
    '--outDir',
    outDir,
    '--emptyOutDir',
    '--logLevel',
    'warn',
  ];
  return new Promise((done, fail) =>
    execFile(process.execPath, args, { cwd: root }, (error, stdout, stderr) =>
      error ? fail(new Error(`vite build failed:\n${stdout}${stderr}`)) : done(),
    ),
  );
}

const TYPES: Record<string, string> = {
  '.html': 'text/html',
  '.js': 'text/javascript',
  '.css': 'text/css',
  '.bin': 'application/octet-stream',
};

/** A static file server for the built page on 127.0.0.1 (a secure context, as WebGPU requires). */
async function serve(dir: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    const file = join(dir, path.endsWith('/') ? `${path}index.html` : path);
    if (!file.startsWith(dir) || !existsSync(file)) {
      res.statusCode = 404;
      res.end('not found');
      return;
    }
    res.setHeader('content-type', TYPES[extname(file)] ?? 'application/octet-stream');
    res.end(readFileSync(file));
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/` };
}

/** Opens the page with `query`, waits until it reaches its step limit, returns its state and canvas ink. */
async function trainInPage(page: Page, url: string, query: string) {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console error: ${m.text()}`);
  });
  await page.goto(`${url}?${query}`);
  await page.waitForFunction(() => window.fluxionPlayground?.done || window.fluxionPlayground?.error, null, {
    timeout: 100_000,
    polling: 250,
  });
  const state = (await page.evaluate(() => window.fluxionPlayground)) as unknown as PageState;
  const ink = await page.evaluate(() => {
    const canvas = document.getElementById('samples') as HTMLCanvasElement;
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
    let bright = 0;
    let sum = 0;
    let sumSq = 0;
    const n = data.length / 4;
    for (let i = 0; i < data.length; i += 4) {
      const v = data[i];
      if (v > 60) bright++;
      sum += v;
      sumSq += v * v;
    }
    const mean = sum / Math.max(1, n);
    return {
      fraction: bright / Math.max(1, n),
      std: Math.sqrt(Math.max(0, sumSq / Math.max(1, n) - mean * mean)),
    };
  });
  const notice = await page.evaluate(() => {
    const el = document.getElementById('notice');
    return el && !el.hidden ? (el.textContent ?? '') : null;
  });
  return { state, ink, notice, problems };
}

/** Brightness spread and size of a canvas's pixels (a blank or one-colour canvas has std 0). */
async function canvasInk(page: Page, id: string) {
  return page.evaluate((canvasId) => {
    const canvas = document.getElementById(canvasId) as HTMLCanvasElement;
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data ?? [];
    let sum = 0;
    let sumSq = 0;
    const n = Math.max(1, data.length / 4);
    for (let i = 0; i < data.length; i += 4) {
      const v = (data[i] + data[i + 1] + data[i + 2]) / 3;
      sum += v;
      sumSq += v * v;
    }
    const m = sum / n;
    return { width: canvas.width, height: canvas.height, std: Math.sqrt(Math.max(0, sumSq / n - m * m)) };
  }, id);
}

/**
 * How long a new tab's run may take. Idle, the text run takes about 15 s and the audio one about
 * 30 s (most of it compiling pipelines on SwiftShader); on a machine busy with other work, many
 * times that.
 */
const TAB_WAIT_MS = 240_000;

/** Opens the page with `query` and waits until the tab `tab` reaches its step limit (or fails). */
async function trainTab(page: Page, query: string, tab: 'text' | 'audio') {
  const problems: string[] = [];
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  await page.goto(`${url}?${query}`);
  await page.waitForFunction(
    (name) => window.fluxionPlayground?.[name]?.done || window.fluxionPlayground?.error,
    tab,
    { timeout: TAB_WAIT_MS, polling: 250 },
  );
  const state = (await page.evaluate(() => window.fluxionPlayground)) as unknown as PageState;
  return { state, problems };
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

type Result = Awaited<ReturnType<typeof trainInPage>>;

/** The run ended without error after `steps` steps and drew the sample grid (the canvas is not blank). */
function expectSamplesDrawn({ state, ink, problems }: Result, steps: number) {
  expect(state.error, problems.join('\n')).toBeNull();
  expect(state.step).toBe(steps);
  expect(state.samplesDrawn).toBeGreaterThanOrEqual(1);
  expect(ink.fraction).toBeGreaterThan(0.02);
  expect(ink.fraction).toBeLessThan(0.95);
  expect(ink.std).toBeGreaterThan(10);
}

/** The VAE's loss (−ELBO, nats per image) fell by at least 10 % from the first steps to the last. */
function expectLossFell({ state }: Result) {
  const loss = state.losses.loss;
  expect(loss.every(Number.isFinite)).toBe(true);
  const first = mean(loss.slice(0, 3));
  const last = mean(loss.slice(-3));
  console.log(
    `${state.backend}: VAE −ELBO ${first.toFixed(1)} → ${last.toFixed(1)} nats in ${loss.length} steps`,
  );
  expect(last).toBeLessThan(0.9 * first);
}

let browser: Browser | null = null;
let server: Server | null = null;
let url = '';
const outDir = mkdtempSync(join(tmpdir(), 'fluxion-playground-'));

if (haveChromium) {
  // Build the page while the browser starts.
  [browser] = await Promise.all([
    chromium.launch({ executablePath: CHROMIUM, args: ARGS }),
    buildPage(outDir).then(async () => {
      ({ server, url } = await serve(outDir));
    }),
  ]);
}

afterAll(async () => {
  await browser?.close();
  server?.close();
  rmSync(outDir, { recursive: true, force: true });
});

describe.skipIf(!haveChromium && !required)('playground in headless Chromium', () => {
  test('chromium is installed', () => {
    expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: run scripts/setup-system.sh`).toBe(true);
  });

  test('trains a VAE live on WebGPU: the loss falls and samples are drawn (or, where this Chromium has no WebGPU, shows the CPU fallback notice)', async () => {
    const page = await (browser as Browser).newPage();
    try {
      // matmul=register skips the timed trial that picks a matmul kernel family at start-up, which
      // compiles and runs all three: seconds on a software adapter, and not what is tested here.
      const query = 'model=vae&steps=10&sampleEvery=5&batch=32&matmul=register&autostart=1';
      const result = await trainInPage(page, url, query);
      if (result.state.backend === 'webgpu') {
        console.log(
          `WebGPU in Chromium on ${result.state.adapter}; timings ${JSON.stringify(result.state.timings)}`,
        );
        expect(result.notice).toBeNull();
      } else {
        console.log(
          `this Chromium has no WebGPU adapter: checked the CPU fallback instead (${result.notice})`,
        );
        expect(result.notice).toMatch(/CPU backend/);
      }
      expectSamplesDrawn(result, 10);
      expectLossFell(result);
    } finally {
      await page.close();
    }
  });

  test('without navigator.gpu the page shows the CPU fallback notice and trains on the CPU backend', async () => {
    const page = await (browser as Browser).newPage();
    await page.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, 'gpu', { get: () => undefined, configurable: true });
    });
    try {
      const result = await trainInPage(page, url, 'model=vae&steps=1&sampleEvery=1&batch=16&autostart=1');
      expect(result.state.backend).toBe('cpu');
      expect(result.notice).toMatch(/WebGPU is not available in this browser.*CPU backend/s);
      // One clear message, whichever tab is open: the notice above the tabs, not one per tab.
      const notices = await page.evaluate(
        () => document.querySelectorAll('.notice:not(.error):not([hidden])').length,
      );
      expect(notices).toBe(1);
      expectSamplesDrawn(result, 1);
      expect(Number.isFinite(result.state.losses.loss[0])).toBe(true);
    } finally {
      await page.close();
    }
  });

  test('text tab: a character model trains on names; the loss falls and the sampled names change', async () => {
    const page = await (browser as Browser).newPage();
    try {
      const query = 'tab=text&steps=12&sampleEvery=6&batch=32&matmul=register&autostart=1';
      const { state, problems } = await trainTab(page, query, 'text');
      const text = state.text;
      expect(text.error, `${state.error ?? ''}\n${problems.join('\n')}`).toBeNull();
      expect(state.tab).toBe('text');
      expect(text.step).toBe(12);
      // Samples before training, after 6 and after 12 steps.
      expect(text.samplesDrawn).toBe(3);
      expect(text.samples).toHaveLength(10);
      expect(text.samples.join(',')).not.toBe(text.firstSamples.join(','));
      const shown = await page.locator('#text-samples li').allTextContents();
      expect(shown).toEqual(text.samples.map((name) => (name === '' ? '(empty)' : name)));
      const loss = text.losses.loss;
      expect(loss).toHaveLength(12);
      expect(loss.every(Number.isFinite)).toBe(true);
      const first = mean(loss.slice(0, 3));
      const last = mean(loss.slice(-3));
      console.log(
        `text tab on ${state.backend}: ${first.toFixed(3)} → ${last.toFixed(3)} nats/char in 12 steps; ` +
          `names before: ${text.firstSamples.join(' ')}; after: ${text.samples.join(' ')}`,
      );
      // Uniform guessing is ln 27 ≈ 3.30 nats; 12 steps take the GRU to about 2.95.
      expect(first).toBeGreaterThan(3.1);
      expect(last).toBeLessThan(first - 0.15);
      // The image tab stayed closed: it loaded nothing and trained nothing.
      expect(state.step).toBe(0);
      expect(await page.locator('#tab-images').isHidden()).toBe(true);
    } finally {
      await page.close();
    }
  }, 300_000);

  test('audio tab: the spectrogram VAE trains, and a digit button generates a non-silent 8 kHz clip and draws its spectrogram', async () => {
    const page = await (browser as Browser).newPage();
    try {
      const query = 'tab=audio&steps=2&sampleEvery=2&batch=4&griffinLim=8&matmul=register&autostart=1';
      const { state, problems } = await trainTab(page, query, 'audio');
      const audio = state.audio;
      expect(audio.error, `${state.error ?? ''}\n${problems.join('\n')}`).toBeNull();
      expect(audio.step).toBe(2);
      expect(audio.losses.loss).toHaveLength(2);
      expect(audio.losses.loss.every(Number.isFinite)).toBe(true);
      // The ten digits' spectrograms, before training and after step 2.
      expect(audio.gridsDrawn).toBe(2);
      expect((await canvasInk(page, 'audio-grid')).std).toBeGreaterThan(5);
      expect((await canvasInk(page, 'audio-clip')).std).toBe(0);

      await page.click('#audio-digits button[data-digit="7"]');
      await page.waitForFunction(
        () => window.fluxionPlayground.audio.clips >= 1 || window.fluxionPlayground.error,
        null,
        { timeout: TAB_WAIT_MS, polling: 250 },
      );
      const after = (await page.evaluate(() => window.fluxionPlayground)) as unknown as PageState;
      expect(after.error, problems.join('\n')).toBeNull();
      const clip = after.audio.lastClip;
      console.log(`audio tab on ${state.backend}: ${JSON.stringify(clip)}`);
      expect(clip).not.toBeNull();
      if (!clip) return;
      expect(clip.digit).toBe(7);
      expect(clip.length).toBe(8192);
      expect(after.audio.clipLength).toBe(8192);
      // The Web Audio buffer: 8,192 samples at the data's 8 kHz, 1.024 s, audible.
      expect(clip.playback).toBe('playing');
      expect(clip.bufferLength).toBe(8192);
      expect(clip.sampleRate).toBe(8000);
      expect(clip.duration).toBeCloseTo(1.024, 3);
      expect(clip.bufferRms).toBeGreaterThan(0.01);
      // Not silent as generated: a clip of zeros (or NaN) fails here.
      expect(clip.rms).toBeGreaterThan(1e-6);
      expect(clip.peak).toBeGreaterThan(1e-5);
      expect(clip.peak).toBeLessThanOrEqual(1);
      // Its log-mel spectrogram, 64 bands × 129 frames, drawn 4 × 3 canvas pixels per value.
      expect(clip.spectrogram).toEqual([64, 129]);
      const ink = await canvasInk(page, 'audio-clip');
      expect([ink.width, ink.height]).toEqual([129 * 4, 64 * 3]);
      expect(ink.std).toBeGreaterThan(10);
    } finally {
      await page.close();
    }
  }, 480_000);
});
