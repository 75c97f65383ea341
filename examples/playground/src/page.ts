/**
 * What the playground's tabs share: the URL parameters, the backend choice (WebGPU through
 * `navigator.gpu`, else Fluxion's CPU backend with one notice at the top of the page saying so),
 * the error box, the page state mirrored in `window.fluxionPlayground`, and a training loop that
 * each tab drives with its own step.
 */
import { initWebGPU, memoryStats, setBackend } from '@fluxion/tensor';
import { drawLosses } from './draw.js';

/** The tabs of the page. */
export const TABS = ['images', 'text', 'audio'] as const;
/** One of {@link TABS}. */
export type TabName = (typeof TABS)[number];

/** How a training loop is doing; each tab's state extends it. */
export interface LoopState {
  step: number;
  running: boolean;
  /** Set when a `steps` limit was reached. */
  done: boolean;
  error: string | null;
  stepsPerSecond: number;
  losses: Record<string, number[]>;
}

/** What the page shares across tabs, for people (the notice) and for tests. */
export interface SharedState {
  backend: 'webgpu' | 'cpu' | null;
  /** The adapter's description on WebGPU. */
  adapter: string;
  /** The one notice shown when the page trains without WebGPU, if any. */
  notice: string | null;
  /** The tab on show. */
  tab: TabName;
  /** The last error of any tab (also shown in the error box). */
  error: string | null;
}

export const params = new URLSearchParams(location.search);

/**
 * A positive number from the URL, or `fallback` when it is absent or not a positive number.
 *
 * @example
 * ```ts
 * numberParam('steps', Number.POSITIVE_INFINITY); // 10 for ?steps=10
 * ```
 */
export function numberParam(name: string, fallback: number): number {
  const v = Number(params.get(name));
  return params.has(name) && Number.isFinite(v) && v > 0 ? v : fallback;
}

/** The tab named by `?tab=`, images by default. */
export const initialTab: TabName = TABS.includes(params.get('tab') as TabName)
  ? (params.get('tab') as TabName)
  : 'images';

/**
 * A URL parameter that configures a run (`steps`, `sampleEvery`, `batch`, `lr`, `autostart`): it
 * applies to the tab named by `?tab=` only, so that `?tab=text&steps=20` leaves the image tab
 * unlimited. `seed` and `matmul` apply to every tab.
 */
export function runParam(tab: TabName, name: string): string | null {
  return tab === initialTab ? params.get(name) : null;
}

/** {@link numberParam} for {@link runParam}s. */
export function runNumber(tab: TabName, name: string, fallback: number): number {
  return tab === initialTab ? numberParam(name, fallback) : fallback;
}

/** The seed of every tab's initialisation, noise and batch order (`?seed=`, default 0). */
export const seed = Math.round(numberParam('seed', 0));

/**
 * The element with `id`, typed; an error naming the id when the page has none.
 *
 * @example
 * ```ts
 * const start = byId<HTMLButtonElement>('text-start');
 * ```
 */
export function byId<T extends HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`the page has no element #${id}`);
  return element as T;
}

/** The page state shared by the tabs; `main.ts` adds each tab's own and publishes it. */
export const shared: SharedState = {
  backend: null,
  adapter: '',
  notice: null,
  tab: initialTab,
  error: null,
};

function showNotice(text: string): void {
  shared.notice = text;
  const notice = byId<HTMLDivElement>('notice');
  notice.textContent = text;
  notice.hidden = false;
}

/**
 * Shows `e` in the page's error box as `<what> stopped: <message>` and records it in `state`
 * (and in the shared state) for tests.
 */
export function showError(
  what: string,
  e: unknown,
  state?: { error: string | null; running?: boolean },
): void {
  const message = e instanceof Error ? e.message : String(e);
  if (state) {
    state.error = message;
    if ('running' in state) state.running = false;
  }
  shared.error = message;
  const box = byId<HTMLDivElement>('error');
  box.textContent = `${what} stopped: ${message}`;
  box.hidden = false;
  console.error(e);
}

/** Hides the error box (a tab was reset). */
export function clearError(): void {
  byId<HTMLDivElement>('error').hidden = true;
}

/**
 * Picks the backend once for every tab: WebGPU when the browser has it, else the CPU backend with
 * a notice saying plainly why (no `navigator.gpu`, no adapter or device, or `?backend=cpu`).
 */
export async function chooseBackend(): Promise<void> {
  if (params.get('backend') === 'cpu') {
    setBackend('cpu');
    shared.backend = 'cpu';
    showNotice('Training on the CPU backend, as asked with ?backend=cpu.');
    return;
  }
  const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
  if (!gpu) {
    setBackend('cpu');
    shared.backend = 'cpu';
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
    shared.backend = 'webgpu';
    shared.adapter = description || [vendor, architecture].filter(Boolean).join(' ') || 'a WebGPU adapter';
  } catch (e) {
    setBackend('cpu');
    shared.backend = 'cpu';
    const reason = e instanceof Error ? e.message.split('\n')[0] : String(e);
    showNotice(`WebGPU is present but gave no device (${reason}); training on the CPU backend instead.`);
  }
}

/** Where the page computes, for status lines. */
export function whereText(): string {
  return shared.backend === 'webgpu'
    ? `WebGPU on ${shared.adapter}`
    : shared.backend === 'cpu'
      ? 'CPU backend'
      : '…';
}

/**
 * Frees a model's optimizer state and its networks' parameters and buffers (a reset builds a new
 * one; the old one's GPU buffers should not wait for the garbage collector).
 */
export function freeModel(model: {
  modules(): Record<string, { dispose(): void }>;
  optimizers(): Record<string, { dispose(): void }>;
}): void {
  for (const optimizer of Object.values(model.optimizers())) optimizer.dispose();
  for (const module of Object.values(model.modules())) module.dispose();
}

/** Every loop of the page, so that starting one pauses the others (they would share the GPU). */
const loops = new Set<TrainingLoop>();

/** Options of a {@link TrainingLoop}. */
export interface TrainingLoopOptions {
  /** Stop (and set `done`) after this many steps. */
  maxSteps: number;
  /** One training step; its losses are appended to the state's series. */
  step: () => Promise<Record<string, number>>;
  /** Runs after each step (and its bookkeeping), inside the loop's turn on the GPU. */
  afterStep?: () => Promise<void>;
  /** Called whenever the state changed (to repaint the status line and the loss curves). */
  changed: () => void;
  /** Shows an error that stopped the loop. */
  failed: (e: unknown) => void;
}

/**
 * A pausable training loop over a tab's step function, writing its progress into `state`. Work
 * that must not interleave with a step (sampling on a button press) goes through
 * {@link TrainingLoop.exclusive}, which runs it between two steps.
 *
 * @example
 * ```ts
 * const loop = new TrainingLoop(state, { maxSteps: 100, step: () => model.trainStep(next()), changed, failed });
 * loop.start();
 * await loop.exclusive(async () => drawSamples()); // between two steps
 * ```
 */
export class TrainingLoop {
  private tail: Promise<unknown> = Promise.resolve();
  private finished: Promise<void> = Promise.resolve();
  /** Milliseconds the first step took (compiling its pipelines is most of it on WebGPU). */
  firstStepMs = 0;

  constructor(
    private readonly state: LoopState,
    private readonly options: TrainingLoopOptions,
  ) {
    loops.add(this);
  }

  /**
   * Runs `work` when no step is in flight, before the next one: training steps and other GPU
   * work of a tab take turns through one queue.
   */
  exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.tail.then(work);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Starts (or resumes) training, pausing every other loop of the page first. */
  start(): void {
    const { state } = this;
    if (state.running || state.done || state.step >= this.options.maxSteps) return;
    for (const other of loops) if (other !== this) void other.pause();
    state.running = true;
    this.options.changed();
    this.finished = this.run().catch((e) => {
      state.running = false;
      this.options.failed(e);
    });
  }

  /** Stops after the step in flight and waits for it. */
  async pause(): Promise<void> {
    this.state.running = false;
    await this.finished;
    this.options.changed();
  }

  /** Pauses, and forgets this loop (its tab built a new model and a new loop). */
  async dispose(): Promise<void> {
    await this.pause();
    loops.delete(this);
  }

  private async run(): Promise<void> {
    const { state, options } = this;
    let lastYield = performance.now();
    let lastTime = performance.now();
    while (state.running) {
      if (state.step >= options.maxSteps) {
        state.running = false;
        state.done = true;
        break;
      }
      const losses = await this.exclusive(options.step);
      for (const [name, value] of Object.entries(losses)) (state.losses[name] ??= []).push(value);
      state.step++;
      const now = performance.now();
      if (state.step === 1) this.firstStepMs = Math.round(now - lastTime);
      const rate = 1000 / Math.max(1, now - lastTime);
      lastTime = now;
      state.stepsPerSecond = state.step === 1 ? rate : 0.9 * state.stepsPerSecond + 0.1 * rate;
      if (options.afterStep) await this.exclusive(options.afterStep);
      options.changed();
      // The CPU backend never waits for anything: give the page a chance to paint now and then.
      if (performance.now() - lastYield > 40) {
        await new Promise((resolve) => setTimeout(resolve, 0));
        lastYield = performance.now();
      }
    }
    options.changed();
  }
}

/** Calls `paint` once in the next animation frame, however often it is scheduled before then. */
export function framePainter(paint: () => void): () => void {
  let pending = false;
  return () => {
    if (pending) return;
    pending = true;
    requestAnimationFrame(() => {
      pending = false;
      paint();
    });
  };
}

/** A tab's run limits from the URL: stop after `?steps=` (never by default), sample every `?sampleEvery=` (25). */
function runLimits(tab: TabName): { maxSteps: number; sampleEvery: number } {
  return {
    maxSteps: runNumber(tab, 'steps', Number.POSITIVE_INFINITY),
    sampleEvery: Math.round(runNumber(tab, 'sampleEvery', 25)),
  };
}

/** A tab's loop fields before its first step (and again after a reset builds a new model). */
function freshLoop(): Omit<LoopState, 'running' | 'stepsPerSecond'> & { epoch: number } {
  return { step: 0, epoch: 0, losses: {}, done: false, error: null };
}

/** A tab's loop state when the page opens: {@link freshLoop}, not running. */
export function idleLoop(): LoopState & { epoch: number } {
  return { ...freshLoop(), running: false, stepsPerSecond: 0 };
}

/**
 * The controls every tab has (`<prefix>batch`, `lr`, `start`, `reset`, `status`, `loss`), with the
 * batch size (`fallback` when the parameter is no number) and learning rate of the URL filled in.
 */
export function tabControls(tab: TabName, prefix: string, batch: number) {
  const ui = {
    batch: byId<HTMLInputElement>(`${prefix}batch`),
    lr: byId<HTMLInputElement>(`${prefix}lr`),
    start: byId<HTMLButtonElement>(`${prefix}start`),
    reset: byId<HTMLButtonElement>(`${prefix}reset`),
    status: byId<HTMLDivElement>(`${prefix}status`),
    loss: byId<HTMLCanvasElement>(`${prefix}loss`),
  };
  if (runParam(tab, 'batch')) ui.batch.value = String(Math.round(runNumber(tab, 'batch', batch)));
  ui.lr.value = runParam(tab, 'lr') ?? '';
  return ui;
}

/**
 * A tab's status line (`<where> · <progress> · <n> live tensors`, ` · done` at the end) and start
 * button: `update` writes them now, `repaint` once in the next frame together with the loss curves.
 */
export function tabStatus(
  ui: { status: HTMLElement; start: HTMLButtonElement; loss: HTMLCanvasElement },
  state: LoopState,
  progress: () => string,
  losses: () => Record<string, number[]> = () => state.losses,
): { update: () => void; repaint: () => void } {
  const update = () => {
    ui.status.textContent =
      `${whereText()} · ${progress()} · ${memoryStats().liveTensors} live tensors` +
      (state.done ? ' · done' : '');
    showStartButton(ui.start, state);
  };
  const repaint = framePainter(() => {
    drawLosses(ui.loss, losses());
    update();
  });
  return { update, repaint };
}

/** Shows Start, Pause, Resume or Done on a tab's start button, disabled once the run is done. */
export function showStartButton(button: HTMLButtonElement, state: LoopState): void {
  button.textContent = state.running ? 'Pause' : state.done ? 'Done' : state.step > 0 ? 'Resume' : 'Start';
  button.disabled = state.done;
}

/** The learning rate typed into `input`, or undefined (the model's default) when it is empty or not positive. */
export function typedLr(input: HTMLInputElement): number | undefined {
  const lr = Number(input.value);
  return input.value.trim() !== '' && Number.isFinite(lr) && lr > 0 ? lr : undefined;
}

/** The batch size typed into `input`, rounded and clamped to [min, max]; `fallback` when it is not a number. */
export function typedBatch(input: HTMLInputElement, fallback: number, min: number, max: number): number {
  return Math.max(min, Math.min(max, Math.round(Number(input.value)) || fallback));
}

/** How many numbers the parameters of a model's networks hold. */
export function parameterCount(model: {
  modules(): Record<string, { parameters(): { size: number }[] }>;
}): number {
  return Object.values(model.modules()).reduce(
    (n, m) => n + m.parameters().reduce((k, p) => k + p.size, 0),
    0,
  );
}

/**
 * The next batch, epoch after epoch: `batches(epoch)` makes one epoch's batches, and `state.epoch`
 * counts the epochs begun after the first.
 */
export function epochBatches<T>(state: { epoch: number }, batches: (epoch: number) => Iterator<T>): () => T {
  let current = batches(0);
  return () => {
    let next = current.next();
    if (next.done) {
      state.epoch++;
      current = batches(state.epoch);
      next = current.next();
    }
    return next.value;
  };
}

/** A loop step that trains on the next batch and frees that batch afterwards, whatever happened. */
function batchStep<B>(
  next: () => B,
  train: (batch: B) => Promise<Record<string, number>>,
  free: (batch: B) => void,
): () => Promise<Record<string, number>> {
  return async () => {
    const batch = next();
    try {
      return await train(batch);
    } finally {
      free(batch);
    }
  };
}

/**
 * A tab's work after each step: records the first step's milliseconds, and runs `sample` every
 * `sampleEvery` steps and after the last one.
 */
function sampleAfterStep(
  state: LoopState & { timings: { firstStep: number } },
  limits: { maxSteps: number; sampleEvery: number },
  loop: () => TrainingLoop,
  sample: () => Promise<void>,
): () => Promise<void> {
  return async () => {
    if (state.step === 1) state.timings.firstStep = loop().firstStepMs;
    if (state.step % limits.sampleEvery === 0 || state.step === limits.maxSteps) await sample();
  };
}

/**
 * Enables and wires a tab's Start and Reset buttons: Start starts the current loop or pauses it
 * while it runs (`?autostart=1` starts it now); Reset (also returned, for other controls that
 * rebuild the model) ends the loop, builds a new model with `rebuild` and updates the status;
 * `failed` shows why a reset from the button failed.
 */
export function tabButtons(
  tab: TabName,
  ui: { start: HTMLButtonElement; reset: HTMLButtonElement },
  state: LoopState,
  loop: () => TrainingLoop,
  rebuild: () => Promise<void> | void,
  update: () => void,
  failed?: (e: unknown) => void,
): () => Promise<void> {
  const reset = async () => {
    await loop().dispose();
    const built = rebuild();
    if (built) await built;
    update();
  };
  ui.start.disabled = false;
  ui.reset.disabled = false;
  ui.reset.addEventListener('click', () => void (failed ? reset().catch(failed) : reset()));
  ui.start.addEventListener('click', () => (state.running ? void loop().pause() : loop().start()));
  if (runParam(tab, 'autostart') === '1') loop().start();
  return reset;
}

/** Options of {@link tabLoop}. */
export interface TabLoopOptions<B> {
  /** The next batch, what one step does with it, and how it is freed after. */
  next: () => B;
  train: (batch: B) => Promise<Record<string, number>>;
  free: (batch: B) => void;
  /** Runs after each step, before the sampling. */
  afterStep?: () => void;
  /** Draws the tab's samples, every `sampleEvery` steps and after the last one. */
  sample: () => Promise<void>;
  changed: () => void;
  /** What stopped, in the error box (`Text training stopped: …`). */
  what: string;
}

/**
 * The training loop of a tab's new model: resets the state's progress to step 0, then trains batch
 * after batch up to the tab's `?steps=`, records the first step's milliseconds and samples every
 * `?sampleEvery=` steps; the error box is cleared of the last model's error.
 */
export function tabLoop<B>(
  tab: TabName,
  state: LoopState & { epoch: number; timings: { firstStep: number } },
  options: TabLoopOptions<B>,
) {
  Object.assign(state, freshLoop());
  const limits = runLimits(tab);
  const sample = sampleAfterStep(state, limits, () => loop, options.sample);
  const loop: TrainingLoop = new TrainingLoop(state, {
    maxSteps: limits.maxSteps,
    step: batchStep(options.next, options.train, options.free),
    afterStep: async () => {
      options.afterStep?.();
      await sample();
    },
    changed: options.changed,
    failed: (e) => showError(options.what, e, state),
  });
  clearError();
  return loop;
}
