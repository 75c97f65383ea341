/**
 * What an engine (Fluxion, TensorFlow.js, jax-js on one of their backends) offers the suites: a
 * handful of tensor ops for the `ops` suite and a training-step runner for `train` and `e2e`.
 * Suites only talk to engines through these interfaces, so every engine runs the same cases with
 * the same data, checked the same way.
 */
import type { HostTensor, ModelSpec, StepInputs } from '../models.js';

/** Which operands of a matrix product are transposed views: `tn` is Aᵀ·B, `nt` is A·Bᵀ. */
export type MatmulLayout = 'nn' | 'tn' | 'nt';

/**
 * How a host array is laid out: plain row-major, an NCHW image batch, a PyTorch-layout conv
 * filter `[out, in, k, k]`, or their 1-D forms (`[N, C, L]` signals, `[out, in, k]` filters). An
 * engine that prefers another layout (TensorFlow.js: channels last) converts on upload and on
 * read, outside the timed region.
 */
export type HostLayout = 'plain' | 'nchw' | 'oihw' | 'ncl' | 'oik';

/** Stride and padding of a square convolution (no dilation, no groups). */
export interface ConvGeometry {
  stride: number;
  padding: number;
}

/** The ops the `ops` suite times. `H` is the engine's tensor type. */
export interface OpsEngine<H = unknown> {
  /** Uploads a host array. */
  fromArray(data: Float32Array, shape: readonly number[], layout?: HostLayout): H;
  /** A matrix product, transposed operands read as views where the engine can. */
  matmul(a: H, b: H, layout: MatmulLayout): H;
  add(a: H, b: H): H;
  exp(a: H): H;
  /** Sum of every element (a scalar). */
  sum(a: H): H;
  /** Conv2d forward, x NCHW and w `[out, in, k, k]` (absent: the engine has no convolution). */
  conv2d?(x: H, w: H, g: ConvGeometry): H;
  /** Conv2d backward: gradients of `sum(conv2d(x, w) · dy)` with respect to x and w. */
  conv2dGrads?(x: H, w: H, dy: H, g: ConvGeometry): [H, H];
  /** Conv1d forward, x `[N, C, L]` and w `[out, in, k]` (absent: the engine has no 1-D convolution). */
  conv1d?(x: H, w: H, g: ConvGeometry): H;
  /** Conv1d backward: gradients of `sum(conv1d(x, w) · dy)` with respect to x and w. */
  conv1dGrads?(x: H, w: H, dy: H, g: ConvGeometry): [H, H];
  /** Reads a tensor back in the given host layout. */
  read(h: H, layout?: HostLayout): Promise<Float32Array>;
  /**
   * Waits until these tensors (and the work queued before them) are computed. Lazy engines
   * (jax-js) compute only what is still referenced, so a case keeps every output it wants timed
   * until this returns.
   */
  sync(hs: H[]): Promise<void>;
  dispose(h: H): void;
}

/** A training step of one model on one engine. */
export interface StepRunner {
  /** Uploads the inputs and queues one step (returns before the device has finished). */
  step(inputs: StepInputs): void | Promise<void>;
  /** Waits until every queued step has finished. */
  sync(): Promise<void>;
  /**
   * The losses of the last step (GAN and WGAN-GP: critic, generator; VAE: negative ELBO;
   * Transformer: cross-entropy in nats per character).
   */
  losses(): Promise<number[]>;
  /** The shapes of the parameters the engine built, in its own layouts (each tied one once). */
  parameterShapes(): number[][];
  dispose(): void;
}

/** An engine on one backend. */
export interface Engine {
  /** `fluxion`, `tfjs` or `jax-js`. */
  readonly engine: string;
  /** `webgpu`, `wasm` or `cpu`. */
  readonly backend: string;
  /** A plain-JavaScript CPU engine: cases heavier than a few seconds per run are skipped. */
  readonly slow: boolean;
  /** Makes this engine's backend the active one (TensorFlow.js has one global backend). */
  activate(): Promise<void>;
  /** The ops of the `ops` suite. */
  readonly ops: OpsEngine;
  /**
   * A runner for a model's training step, starting from the given initial parameters (one list
   * per network, in `modelNetworks` order); a string says why this engine cannot run it.
   */
  trainer(spec: ModelSpec, params: HostTensor[][]): Promise<StepRunner | string>;
  /**
   * Device time of `work` in milliseconds (the sum of its kernels' times from timestamp queries),
   * where the engine can measure it; absent otherwise.
   */
  gpuTime?(work: () => Promise<void>): Promise<number>;
}

/** `tfjs webgpu`-style label of an engine, used in tables and skip notes. */
export function engineLabel(e: { engine: string; backend: string }): string {
  return `${e.engine}-${e.backend}`;
}
