/**
 * The image tab: a VAE or GAN of `@fluxion/models` (MLP, convolutional or conditional) learns the
 * packed MNIST digits live, drawing the loss curves every step and a grid of 64 samples every
 * `sampleEvery` steps.
 */
import { createModel, type GenerativeModel, type ModelConfig, type ModelKind } from '@fluxion/models';
import { BatchStream, type Digits, loadDigits } from './data.js';
import { drawGrid, drawLosses } from './draw.js';
import {
  byId,
  freeModel,
  idleLoop,
  type LoopState,
  runParam,
  type SharedState,
  seed,
  shared,
  type TrainingLoop,
  tabButtons,
  tabControls,
  tabLoop,
  tabStatus,
  typedBatch,
  typedLr,
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
  ...idleLoop(),
  samplesDrawn: 0,
  timings: { data: 0, firstStep: 0 },
});

/**
 * Loads the digits, builds the model chosen in the page (or by `?model=`), and wires the image
 * tab's controls. Starts training at once with `?autostart=1`.
 */
export async function setupImagesTab(): Promise<void> {
  const state = imagesState;
  const ui = {
    ...tabControls('images', '', 64),
    model: byId<HTMLSelectElement>('model'),
    samples: byId<HTMLCanvasElement>('samples'),
    samplesCaption: byId<HTMLElement>('samples-caption'),
  };
  ui.model.value = state.model;

  let model: GenerativeModel | null = null;
  let stream: BatchStream;
  let loop!: TrainingLoop;

  const { update: updateStatus, repaint } = tabStatus(ui, state, () => {
    const last = Object.entries(state.losses)
      .map(([name, values]) => `${name} ${values[values.length - 1]?.toFixed(3)}`)
      .join(' · ');
    return `step ${state.step} · epoch ${state.epoch} · ${state.stepsPerSecond.toFixed(2)} steps/s${last ? ` · ${last}` : ''}`;
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
    const lr = typedLr(ui.lr);
    const overrides: Partial<ModelConfig> = { seed };
    if (lr !== undefined) overrides.lr = lr;
    const current = createModel(kind, overrides);
    model = current;
    stream = new BatchStream(digits, typedBatch(ui.batch, 64, 8, 512), seed);
    state.model = kind;
    loop = tabLoop('images', state, {
      next: () => stream.take(),
      train: (batch) => current.trainStep(batch),
      free: (batch) => {
        batch.images.dispose();
        batch.labels.dispose();
      },
      afterStep: () => {
        state.epoch = stream.epochs;
      },
      sample: drawSamples,
      changed: repaint,
      what: 'Training',
    });
    ui.samplesCaption.textContent = 'samples appear here once training starts';
    ui.samples.getContext('2d')?.clearRect(0, 0, ui.samples.width, ui.samples.height);
    drawLosses(ui.loss, state.losses);
  };

  ui.status.textContent = 'loading digits…';
  const t = performance.now();
  const digits = await loadDigits(new URL('mnist-digits.bin', document.baseURI).href);
  state.timings.data = Math.round(performance.now() - t);
  newModel(digits);
  updateStatus();
  const reset = tabButtons(
    'images',
    ui,
    state,
    () => loop,
    () => newModel(digits),
    updateStatus,
  );
  ui.model.addEventListener('change', () => void reset());
}
