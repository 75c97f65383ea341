/**
 * The text tab: a character model of `@fluxion/models` (`charrnn`, a GRU, or `charlm`, a small
 * Transformer) learns the 32,033 names of `names.txt` live, one batch of names per step, and every
 * `sampleEvery` steps writes 10 names sampled from it, always from the same random stream, so
 * that what changes between two lists is the model.
 */
import {
  createTextModel,
  disposeTextBatch,
  encodeLines,
  type LinesDataset,
  lineBatches,
  pictureGenerator,
  type TextBatch,
  type TextModel,
  type TextModelKind,
  textModelConfig,
} from '@fluxion/models';
import { namesDataset } from './data.js';
import { drawLosses } from './draw.js';
import {
  byId,
  epochBatches,
  freeModel,
  idleLoop,
  type LoopState,
  parameterCount,
  runParam,
  seed,
  showError,
  type TrainingLoop,
  tabButtons,
  tabControls,
  tabLoop,
  tabStatus,
  typedBatch,
  typedLr,
} from './page.js';

/** Names written per sample list. */
const SAMPLE_COUNT = 10;
/**
 * Warm-up steps of the learning rate in the page: the models' default (100 steps) is for long
 * runs; a page that shows progress within seconds ramps up over 10.
 */
const WARMUP = 10;

/** The text tab's progress, as `window.fluxionPlayground.text`. */
export interface TextState extends LoopState {
  /** Set once the names are split and the first model is built. */
  ready: boolean;
  model: TextModelKind;
  epoch: number;
  /** Parameters of the model. */
  parameters: number;
  /** The latest names sampled, and those sampled before any training step. */
  samples: string[];
  firstSamples: string[];
  /** The step of the latest samples. */
  sampleStep: number;
  /** How many sample lists were written. */
  samplesDrawn: number;
  /** Softmax temperature of the samples. */
  temperature: number;
  /** Milliseconds spent splitting the names and on the first step. */
  timings: { data: number; firstStep: number };
}

/** The text tab's state, before {@link setupTextTab} runs. */
export const textState: TextState = {
  ready: false,
  model: runParam('text', 'model') === 'charlm' ? 'charlm' : 'charrnn',
  ...idleLoop(),
  parameters: 0,
  samples: [],
  firstSamples: [],
  sampleStep: 0,
  samplesDrawn: 0,
  temperature: 0.8,
  timings: { data: 0, firstStep: 0 },
};

/**
 * Splits the names, builds the model chosen in the tab (or by `?model=` with `?tab=text`), writes
 * its first (untrained) samples and wires the tab's controls; `?autostart=1` starts training.
 */
export async function setupTextTab(): Promise<void> {
  const state = textState;
  const ui = {
    ...tabControls('text', 'text-', 64),
    model: byId<HTMLSelectElement>('text-model'),
    temperature: byId<HTMLInputElement>('text-temperature'),
    samples: byId<HTMLOListElement>('text-samples'),
    samplesCaption: byId<HTMLElement>('text-samples-caption'),
  };
  ui.model.value = state.model;
  if (runParam('text', 'temperature')) ui.temperature.value = runParam('text', 'temperature') ?? '';

  ui.status.textContent = 'splitting the names…';
  const t = performance.now();
  const names: LinesDataset = namesDataset();
  const known = new Set([...names.train, ...names.test]);
  const items = encodeLines(names.tokenizer, names.train);
  const boundaryId = names.tokenizer.boundaryId as number;
  state.timings.data = Math.round(performance.now() - t);

  let model: TextModel | null = null;
  let loop!: TrainingLoop;

  const { update: updateStatus, repaint } = tabStatus(ui, state, () => {
    const loss = state.losses.loss;
    const last = loss?.length ? ` · loss ${loss[loss.length - 1].toFixed(3)} nats/char` : '';
    return (
      `${state.model} (${state.parameters.toLocaleString('en')} parameters) · step ${state.step}` +
      ` · epoch ${state.epoch} · ${state.stepsPerSecond.toFixed(2)} steps/s${last}`
    );
  });

  const temperature = () => {
    const v = Number(ui.temperature.value);
    return Number.isFinite(v) && v > 0 ? Math.min(v, 5) : 0.8;
  };

  /** Writes 10 names sampled from a fresh copy of the same stream (so only the model differs). */
  const writeSamples = async (current: TextModel) => {
    state.temperature = temperature();
    const sampled = await current.sample(SAMPLE_COUNT, {
      temperature: state.temperature,
      generator: pictureGenerator(seed),
    });
    state.samples = sampled;
    if (state.samplesDrawn === 0) state.firstSamples = sampled;
    state.samplesDrawn++;
    state.sampleStep = state.step;
    ui.samples.replaceChildren(
      ...sampled.map((name) => {
        const li = document.createElement('li');
        li.textContent = name === '' ? '(empty)' : name;
        if (name !== '' && !known.has(name)) li.className = 'new';
        return li;
      }),
    );
    ui.samplesCaption.textContent =
      `${SAMPLE_COUNT} names sampled after ${state.step} steps at temperature ${state.temperature}` +
      ' (highlighted: not in the data set, made up by the model)';
  };

  const newModel = async () => {
    if (model) freeModel(model);
    const kind = ui.model.value === 'charlm' ? 'charlm' : 'charrnn';
    const lr = typedLr(ui.lr);
    const current = createTextModel(
      textModelConfig(kind, names, { seed, warmup: WARMUP, ...(lr !== undefined ? { lr } : {}) }),
      names.tokenizer,
    );
    model = current;
    const batchSize = typedBatch(ui.batch, 64, 8, 512);
    const nextBatch = epochBatches<TextBatch>(state, (epoch) =>
      lineBatches(items, { boundaryId }, { batchSize, seed, epoch }),
    );
    Object.assign(state, {
      model: kind,
      samplesDrawn: 0,
      parameters: parameterCount(current),
    });
    loop = tabLoop('text', state, {
      next: nextBatch,
      train: (batch) => current.trainStep(batch),
      free: disposeTextBatch,
      sample: () => writeSamples(current),
      changed: repaint,
      what: 'Text training',
    });
    drawLosses(ui.loss, state.losses);
    await loop.exclusive(() => writeSamples(current));
  };

  await newModel();
  state.ready = true;
  updateStatus();
  const failed = (e: unknown) => showError('Text tab', e, state);
  const reset = tabButtons('text', ui, state, () => loop, newModel, updateStatus, failed);
  ui.model.addEventListener('change', () => void reset().catch(failed));
}
