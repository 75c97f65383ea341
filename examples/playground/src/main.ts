/**
 * The playground page: picks a backend (WebGPU through `navigator.gpu`, or the CPU backend with a
 * visible notice), loads the packed MNIST digits, and trains the chosen model live, drawing the
 * loss curves every step and a grid of samples every `sampleEvery` steps.
 *
 * URL parameters (also what the browser test uses): `model` (vae, gan, convvae, dcgan, cvae, cgan),
 * `batch`, `lr`, `seed`, `steps` (stop after this many), `sampleEvery` (default 25), `autostart=1`,
 * `backend=cpu` (skip WebGPU), `matmul` (subgroup, register or shared: skip the timed trial that
 * picks the matmul kernel). The page's progress is mirrored in `window.fluxionPlayground`.
 */

import { createModel, type GenerativeModel, type ModelConfig, type ModelKind } from '@fluxion/models';
import { initWebGPU, memoryStats, setBackend } from '@fluxion/tensor';
import { BatchStream, type Digits, loadDigits } from './data.js';
import { drawGrid, drawLosses } from './draw.js';

/** What the page is doing, for people (the status line) and for tests (`window.fluxionPlayground`). */
export interface PlaygroundState {
  backend: 'webgpu' | 'cpu' | null;
  /** The adapter's description on WebGPU. */
  adapter: string;
  /** The fallback notice shown, if any. */
  notice: string | null;
  model: ModelKind;
  step: number;
  epoch: number;
  losses: Record<string, number[]>;
  /** How many times the sample grid was drawn. */
  samplesDrawn: number;
  running: boolean;
  /** Set when a `steps` limit was reached. */
  done: boolean;
  error: string | null;
  stepsPerSecond: number;
  /** Milliseconds spent choosing the backend, loading the digits, and on the first step. */
  timings: { backend: number; data: number; firstStep: number };
}

declare global {
  interface Window {
    fluxionPlayground: PlaygroundState;
  }
}

const KINDS: readonly ModelKind[] = ['vae', 'gan', 'convvae', 'dcgan', 'cvae', 'cgan'];
const params = new URLSearchParams(location.search);
const numberParam = (name: string, fallback: number) => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isFinite(v) && v > 0 ? v : fallback;
};
const maxSteps = numberParam('steps', Number.POSITIVE_INFINITY);
const sampleEvery = Math.round(numberParam('sampleEvery', 25));
const seed = Math.round(numberParam('seed', 0));

const byId = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const ui = {
  notice: byId<HTMLDivElement>('notice'),
  error: byId<HTMLDivElement>('error'),
  model: byId<HTMLSelectElement>('model'),
  batch: byId<HTMLInputElement>('batch'),
  lr: byId<HTMLInputElement>('lr'),
  start: byId<HTMLButtonElement>('start'),
  reset: byId<HTMLButtonElement>('reset'),
  status: byId<HTMLDivElement>('status'),
  samples: byId<HTMLCanvasElement>('samples'),
  samplesCaption: byId<HTMLElement>('samples-caption'),
  loss: byId<HTMLCanvasElement>('loss'),
};

const initialKind = params.get('model') as ModelKind | null;
const state: PlaygroundState = {
  backend: null,
  adapter: '',
  notice: null,
  model: initialKind && KINDS.includes(initialKind) ? initialKind : 'vae',
  step: 0,
  epoch: 0,
  losses: {},
  samplesDrawn: 0,
  running: false,
  done: false,
  error: null,
  stepsPerSecond: 0,
  timings: { backend: 0, data: 0, firstStep: 0 },
};
window.fluxionPlayground = state;
ui.model.value = state.model;
if (params.has('batch')) ui.batch.value = String(Math.round(numberParam('batch', 64)));
if (params.has('lr')) ui.lr.value = params.get('lr') ?? '';

function showNotice(text: string): void {
  state.notice = text;
  ui.notice.textContent = text;
  ui.notice.hidden = false;
}

function showError(e: unknown): void {
  const message = e instanceof Error ? e.message : String(e);
  state.error = message;
  state.running = false;
  ui.error.textContent = `Training stopped: ${message}`;
  ui.error.hidden = false;
  console.error(e);
}

/** WebGPU when the browser has it, else the CPU backend with a notice saying why. */
async function chooseBackend(): Promise<void> {
  if (params.get('backend') === 'cpu') {
    setBackend('cpu');
    state.backend = 'cpu';
    showNotice('Training on the CPU backend, as asked with ?backend=cpu.');
    return;
  }
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    setBackend('cpu');
    state.backend = 'cpu';
    showNotice(
      'WebGPU is not available in this browser (navigator.gpu is missing), so Fluxion trains on its ' +
        'CPU backend instead: the same code on plain JavaScript loops, many times slower. A browser ' +
        'with WebGPU enabled trains on the GPU.',
    );
    return;
  }
  try {
    const variant = params.get('matmul');
    const matmulVariant =
      variant === 'subgroup' || variant === 'register' || variant === 'shared' ? variant : 'auto';
    const backend = await initWebGPU({ matmulVariant });
    const { description, vendor, architecture } = backend.adapterInfo;
    state.backend = 'webgpu';
    state.adapter = description || [vendor, architecture].filter(Boolean).join(' ') || 'a WebGPU adapter';
  } catch (e) {
    setBackend('cpu');
    state.backend = 'cpu';
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    showNotice(`WebGPU is present but gave no device (${reason}); training on the CPU backend instead.`);
  }
}

let digits: Digits;
let model: GenerativeModel | null = null;
let stream: BatchStream;
let loop: Promise<void> = Promise.resolve();

function newModel(): void {
  if (model) for (const m of Object.values(model.modules())) m.dispose();
  const kind = ui.model.value as ModelKind;
  const lr = Number(ui.lr.value);
  const overrides: Partial<ModelConfig> = { seed };
  if (ui.lr.value.trim() !== '' && Number.isFinite(lr) && lr > 0) overrides.lr = lr;
  model = createModel(kind, overrides);
  const batch = Math.max(8, Math.min(512, Math.round(Number(ui.batch.value)) || 64));
  stream = new BatchStream(digits, batch, seed);
  Object.assign(state, { model: kind, step: 0, epoch: 0, losses: {}, done: false, error: null });
  ui.error.hidden = true;
  ui.samplesCaption.textContent = 'samples appear here once training starts';
  const ctx = ui.samples.getContext('2d');
  ctx?.clearRect(0, 0, ui.samples.width, ui.samples.height);
  drawLosses(ui.loss, state.losses);
}

async function drawSamples(): Promise<void> {
  if (!model) return;
  const images = model.sample(64);
  try {
    drawGrid(ui.samples, await images.data(), 64);
  } finally {
    images.dispose();
  }
  state.samplesDrawn++;
  ui.samplesCaption.textContent = `64 samples after ${state.step} steps (${state.model})`;
}

function updateStatus(): void {
  const where =
    state.backend === 'webgpu' ? `WebGPU on ${state.adapter}` : state.backend === 'cpu' ? 'CPU backend' : '…';
  const last = Object.entries(state.losses)
    .map(([name, values]) => `${name} ${values[values.length - 1]?.toFixed(3)}`)
    .join(' · ');
  const memory = memoryStats();
  ui.status.textContent =
    `${where} · step ${state.step} · epoch ${state.epoch} · ${state.stepsPerSecond.toFixed(2)} steps/s` +
    `${last ? ` · ${last}` : ''} · ${memory.liveTensors} live tensors` +
    (state.done ? ' · done' : '');
  ui.start.textContent = state.running ? 'Pause' : state.done ? 'Done' : state.step > 0 ? 'Resume' : 'Start';
  ui.start.disabled = state.done;
}

let drawPending = false;
function scheduleDraw(): void {
  if (drawPending) return;
  drawPending = true;
  requestAnimationFrame(() => {
    drawPending = false;
    drawLosses(ui.loss, state.losses);
    updateStatus();
  });
}

/** Trains until paused, reset, failed, or the `steps` limit. */
async function train(): Promise<void> {
  let lastYield = performance.now();
  let lastTime = performance.now();
  while (state.running && model) {
    if (state.step >= maxSteps) {
      state.running = false;
      state.done = true;
      break;
    }
    const batch = stream.take();
    let losses: Record<string, number>;
    try {
      losses = await model.trainStep(batch);
    } finally {
      batch.images.dispose();
      batch.labels.dispose();
    }
    for (const [name, value] of Object.entries(losses)) (state.losses[name] ??= []).push(value);
    state.step++;
    state.epoch = stream.epochs;
    const now = performance.now();
    if (state.step === 1) state.timings.firstStep = Math.round(now - lastTime);
    const rate = 1000 / Math.max(1, now - lastTime);
    lastTime = now;
    state.stepsPerSecond = state.step === 1 ? rate : 0.9 * state.stepsPerSecond + 0.1 * rate;
    if (state.step % sampleEvery === 0 || state.step === maxSteps) await drawSamples();
    scheduleDraw();
    // The CPU backend never waits for anything: give the page a chance to paint now and then.
    if (now - lastYield > 40) {
      await new Promise((resolve) => setTimeout(resolve, 0));
      lastYield = performance.now();
    }
  }
  scheduleDraw();
}

function start(): void {
  if (state.running || !model) return;
  if (state.step >= maxSteps) return;
  state.running = true;
  updateStatus();
  loop = train().catch(showError);
}

async function pause(): Promise<void> {
  state.running = false;
  await loop;
  updateStatus();
}

async function reset(): Promise<void> {
  await pause();
  newModel();
  updateStatus();
}

async function main(): Promise<void> {
  let t = performance.now();
  const lap = () => {
    const now = performance.now();
    const ms = now - t;
    t = now;
    return Math.round(ms);
  };
  ui.status.textContent = 'choosing a backend…';
  await chooseBackend();
  state.timings.backend = lap();
  ui.status.textContent = 'loading digits…';
  digits = await loadDigits(new URL('mnist-digits.bin', document.baseURI).href);
  state.timings.data = lap();
  newModel();
  updateStatus();
  ui.start.disabled = false;
  ui.reset.disabled = false;
  ui.start.addEventListener('click', () => (state.running ? void pause() : start()));
  ui.reset.addEventListener('click', () => void reset());
  ui.model.addEventListener('change', () => void reset());
  if (params.get('autostart') === '1') start();
}

main().catch(showError);
