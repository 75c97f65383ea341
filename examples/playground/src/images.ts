/**
 * The image tab: a VAE or GAN of `@fluxion/models` (MLP, convolutional or conditional) learns the
 * packed MNIST digits live, drawing the loss curves every step and a grid of 64 samples every
 * `sampleEvery` steps.
 */
import { createModel, type GenerativeModel, type ModelConfig, type ModelKind } from '@fluxion/models';
import { memoryStats } from '@fluxion/tensor';
import { BatchStream, type Digits, loadDigits } from './data.js';
import { drawGrid, drawLosses } from './draw.js';
import {
  byId,
  clearError,
  framePainter,
  freeModel,
  type LoopState,
  runNumber,
  runParam,
  type SharedState,
  seed,
  shared,
  showError,
  TrainingLoop,
  whereText,
} from './page.js';

/** The image tab's progress (published at the top level of `window.fluxionPlayground`). */
export interface ImagesState extends LoopState {
  model: ModelKind;
  epoch: number;
  /** How many times the sample grid was drawn. */
  samplesDrawn: number;
  /** Milliseconds spent loading the digits and on the first step. */
  timings: { data: number; firstStep: number };
}

const KINDS: readonly ModelKind[] = ['vae', 'gan', 'convvae', 'dcgan', 'cvae', 'cgan'];
const initialKind = runParam('images', 'model') as ModelKind | null;

/**
 * The image tab's state, before {@link setupImagesTab} runs: its fields live at the top level of
 * the page state (`window.fluxionPlayground.step`, `.losses`, …), as before the page had tabs.
 */
export const imagesState: SharedState & ImagesState = Object.assign(shared, {
  model: initialKind && KINDS.includes(initialKind) ? initialKind : 'vae',
  step: 0,
  epoch: 0,
  losses: {},
  samplesDrawn: 0,
  running: false,
  done: false,
  error: null,
  stepsPerSecond: 0,
  timings: { data: 0, firstStep: 0 },
});

/**
 * Loads the digits, builds the model chosen in the page (or by `?model=`), and wires the image
 * tab's controls. Starts training at once with `?autostart=1`.
 */
export async function setupImagesTab(): Promise<void> {
  const state = imagesState;
  const maxSteps = runNumber('images', 'steps', Number.POSITIVE_INFINITY);
  const sampleEvery = Math.round(runNumber('images', 'sampleEvery', 25));
  const ui = {
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
  ui.model.value = state.model;
  const batchParam = runParam('images', 'batch');
  if (batchParam) ui.batch.value = String(Math.round(runNumber('images', 'batch', 64)));
  ui.lr.value = runParam('images', 'lr') ?? '';

  let model: GenerativeModel | null = null;
  let stream: BatchStream;
  let loop!: TrainingLoop;

  const updateStatus = () => {
    const last = Object.entries(state.losses)
      .map(([name, values]) => `${name} ${values[values.length - 1]?.toFixed(3)}`)
      .join(' · ');
    ui.status.textContent =
      `${whereText()} · step ${state.step} · epoch ${state.epoch} · ${state.stepsPerSecond.toFixed(2)} steps/s` +
      `${last ? ` · ${last}` : ''} · ${memoryStats().liveTensors} live tensors` +
      (state.done ? ' · done' : '');
    ui.start.textContent = state.running
      ? 'Pause'
      : state.done
        ? 'Done'
        : state.step > 0
          ? 'Resume'
          : 'Start';
    ui.start.disabled = state.done;
  };
  const repaint = framePainter(() => {
    drawLosses(ui.loss, state.losses);
    updateStatus();
  });

  const drawSamples = async () => {
    if (!model) return;
    const images = model.sample(64);
    try {
      drawGrid(ui.samples, await images.data(), 64);
    } finally {
      images.dispose();
    }
    state.samplesDrawn++;
    ui.samplesCaption.textContent = `64 samples after ${state.step} steps (${state.model})`;
  };

  const newModel = (digits: Digits) => {
    if (model) freeModel(model);
    const kind = ui.model.value as ModelKind;
    const lr = Number(ui.lr.value);
    const overrides: Partial<ModelConfig> = { seed };
    if (ui.lr.value.trim() !== '' && Number.isFinite(lr) && lr > 0) overrides.lr = lr;
    const current = createModel(kind, overrides);
    model = current;
    const batch = Math.max(8, Math.min(512, Math.round(Number(ui.batch.value)) || 64));
    stream = new BatchStream(digits, batch, seed);
    Object.assign(state, { model: kind, step: 0, epoch: 0, losses: {}, done: false, error: null });
    loop = new TrainingLoop(state, {
      maxSteps,
      step: async () => {
        const batch = stream.take();
        try {
          return await current.trainStep(batch);
        } finally {
          batch.images.dispose();
          batch.labels.dispose();
        }
      },
      afterStep: async () => {
        state.epoch = stream.epochs;
        if (state.step === 1) state.timings.firstStep = loop.firstStepMs;
        if (state.step % sampleEvery === 0 || state.step === maxSteps) await drawSamples();
      },
      changed: repaint,
      failed: (e) => showError('Training', e, state),
    });
    clearError();
    ui.samplesCaption.textContent = 'samples appear here once training starts';
    ui.samples.getContext('2d')?.clearRect(0, 0, ui.samples.width, ui.samples.height);
    drawLosses(ui.loss, state.losses);
  };

  const reset = async (digits: Digits) => {
    await loop.dispose();
    newModel(digits);
    updateStatus();
  };

  ui.status.textContent = 'loading digits…';
  const t = performance.now();
  const digits = await loadDigits(new URL('mnist-digits.bin', document.baseURI).href);
  state.timings.data = Math.round(performance.now() - t);
  newModel(digits);
  updateStatus();
  ui.start.disabled = false;
  ui.reset.disabled = false;
  ui.start.addEventListener('click', () => (state.running ? void loop.pause() : loop.start()));
  ui.reset.addEventListener('click', () => void reset(digits));
  ui.model.addEventListener('change', () => void reset(digits));
  if (runParam('images', 'autostart') === '1') loop.start();
}
