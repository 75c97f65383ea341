/**
 * 1-D convolution and transposed convolution (PyTorch's `conv1d` / `conv_transpose1d` and their
 * layers), for sequences `[N, C, L]` such as audio.
 *
 * They are the 2-D ones with a height-1 axis: the input `[N, C, L]` and the weight `[·, ·, K]` are
 * viewed as `[N, C, 1, L]` and `[·, ·, 1, K]` (a reshape that copies nothing), {@link conv2d} or
 * {@link convTranspose2d} runs with stride, padding and dilation 1 / 0 / 1 on the height axis, and
 * the height-1 axis is dropped again. So the 1-D layers run the same kernels and get the same
 * gradients as the 2-D ones, and any speed-up of the 2-D path reaches them. This file only checks
 * the arguments in the 1-D terms a caller sees, so that errors name `[N, C, L]` shapes.
 */
import {
  FluxionError,
  fmtShape,
  type RandomOptions,
  reshape,
  scope,
  squeeze,
  type Tensor,
} from '@fluxion/tensor';
import { Module, type Parameter } from '../module.js';
import { checkConvArgs, convParameters } from './common.js';
import { conv2d, convOutputSize, convTranspose2d } from './conv.js';

/** Options of {@link conv1d}. */
export interface Conv1dOptions {
  /** Step of the window (default 1). */
  stride?: number;
  /** Zeros added on both ends of L (default 0). */
  padding?: number;
  /** Spacing between kernel taps (default 1). */
  dilation?: number;
  /** Channel groups: input and output channels are split into this many independent convolutions (default 1). */
  groups?: number;
}

/** Options of {@link convTranspose1d}. */
export interface ConvTranspose1dOptions extends Conv1dOptions {
  /** Extra samples added at the high end of the output (default 0; < stride or dilation). */
  outputPadding?: number;
}

/** `value`, checked to be an integer ≥ `min`. */
function integer(op: string, name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new FluxionError(op, `${name} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The geometry along L, checked: stride ≥ 1, padding ≥ 0, dilation ≥ 1. */
function geometry1d(op: string, o: Conv1dOptions): { stride: number; padding: number; dilation: number } {
  return {
    stride: integer(op, 'stride', o.stride ?? 1, 1),
    padding: integer(op, 'padding', o.padding ?? 0, 0),
    dilation: integer(op, 'dilation', o.dilation ?? 1, 1),
  };
}

/** `[N, C, L]` (or a weight `[·, ·, K]`) viewed as `[N, C, 1, L]`. */
const lift = (t: Tensor): Tensor => reshape(t, [t.shape[0], t.shape[1], 1, t.shape[2]]);

/** {@link conv1d}, with errors naming `op` (the function or the layer). */
function conv1dAs(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: Conv1dOptions,
): Tensor {
  const groups = options.groups ?? 1;
  checkConvArgs(op, x, weight, bias, groups, ['L'], false);
  const { stride, padding, dilation } = geometry1d(op, options);
  const k = weight.shape[2];
  if (convOutputSize(x.shape[2], k, stride, padding, dilation) <= 0) {
    throw new FluxionError(
      op,
      `input ${fmtShape(x.shape)} padded by ${padding} on each end is shorter than the kernel ` +
        `${fmtShape(weight.shape)} spans (dilation ${dilation}: ${dilation * (k - 1) + 1} samples)`,
    );
  }
  return scope(() =>
    squeeze(
      conv2d(lift(x), lift(weight), bias, {
        stride: [1, stride],
        padding: [0, padding],
        dilation: [1, dilation],
        groups,
      }),
      2,
    ),
  );
}

/** {@link convTranspose1d}, with errors naming `op` (the function or the layer). */
function convTranspose1dAs(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  options: ConvTranspose1dOptions,
): Tensor {
  const groups = options.groups ?? 1;
  checkConvArgs(op, x, weight, bias, groups, ['L'], true);
  const { stride, padding, dilation } = geometry1d(op, options);
  const outputPadding = integer(op, 'outputPadding', options.outputPadding ?? 0, 0);
  if (outputPadding >= Math.max(stride, dilation)) {
    throw new FluxionError(
      op,
      `outputPadding ${outputPadding} must be smaller than stride ${stride} or dilation ${dilation}`,
    );
  }
  const k = weight.shape[2];
  const length = (x.shape[2] - 1) * stride - 2 * padding + dilation * (k - 1) + outputPadding + 1;
  if (length <= 0) {
    throw new FluxionError(
      op,
      `output length ${length} is empty for input ${fmtShape(x.shape)} and weight ${fmtShape(weight.shape)} ` +
        `(stride ${stride}, padding ${padding}, dilation ${dilation}, outputPadding ${outputPadding})`,
    );
  }
  return scope(() =>
    squeeze(
      convTranspose2d(lift(x), lift(weight), bias, {
        stride: [1, stride],
        padding: [0, padding],
        dilation: [1, dilation],
        outputPadding: [0, outputPadding],
        groups,
      }),
      2,
    ),
  );
}

/**
 * 1-D cross-correlation (PyTorch's `conv1d`):
 * `y[n, o, t] = b[o] + Σ_{c, k} W[o, c, k] · x[n, g·C/G + c, t·s + k·d − p]`
 * over the input channels `c` of output channel `o`'s group `g` (out-of-range samples are zero).
 *
 * Args:
 *   x: input `[N, C, L]`.
 *   weight: `[O, C/groups, K]`.
 *   bias: `[O]` or null.
 *   options: stride (1), padding (0, zeros on both ends), dilation (1), groups (1).
 *
 * Shape:
 *   output `[N, O, L']`, `L' = ⌊(L + 2p − d(K − 1) − 1) / s⌋ + 1`.
 *
 * @example
 * ```ts
 * conv1d(randn([8, 1, 16384]), randn([64, 1, 25]), null, { stride: 4, padding: 11 }).shape; // [8, 64, 4096]
 * ```
 */
export function conv1d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: Conv1dOptions = {},
): Tensor {
  return conv1dAs('conv1d', x, weight, bias, options);
}

/**
 * 1-D transposed convolution (PyTorch's `conv_transpose1d`), the adjoint of {@link conv1d} with
 * the same weight: `⟨conv1d(x, W), y⟩ = ⟨x, convTranspose1d(y, W)⟩` (without bias):
 * `y[n, o, t] = b[o] + Σ_{c, k, i : i·s + k·d − p = t} W[c, o', k] · x[n, c, i]`.
 *
 * Args:
 *   x: input `[N, C, L]`.
 *   weight: `[C, O/groups, K]` (input channels first, as in PyTorch).
 *   bias: `[O]` or null.
 *   options: stride (1), padding (0), outputPadding (0), dilation (1), groups (1).
 *
 * Shape:
 *   output `[N, O, L']`, `L' = (L − 1)·s − 2p + d(K − 1) + outputPadding + 1`.
 *
 * @example
 * ```ts
 * // WaveGAN upsampling: kernel 25, stride 4, padding 11, outputPadding 1 multiplies L by 4.
 * convTranspose1d(randn([8, 64, 1024]), randn([64, 32, 25]), null, { stride: 4, padding: 11, outputPadding: 1 }).shape; // [8, 32, 4096]
 * ```
 */
export function convTranspose1d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: ConvTranspose1dOptions = {},
): Tensor {
  return convTranspose1dAs('convTranspose1d', x, weight, bias, options);
}

/** Options of the {@link Conv1d} layer. */
export interface Conv1dLayerOptions extends Conv1dOptions, RandomOptions {
  /** Learnable bias (default true). */
  bias?: boolean;
}

/**
 * 1-D convolution layer: `y = conv1d(x, W, b)`, i.e.
 * `y[n, o, t] = b[o] + Σ_{c, k} W[o, c, k] · x[n, g·C/G + c, t·s + k·d − p]` (see {@link conv1d}).
 *
 * Args:
 *   inChannels (C), outChannels (O), kernelSize (K).
 *   options: stride (1), padding (0), dilation (1), groups (1), bias (true), seed / generator,
 *   dtype, backend.
 *
 * Shape:
 *   `[N, C, L]` → `[N, O, L']`, `L' = ⌊(L + 2p − d(K − 1) − 1) / s⌋ + 1`.
 *
 * Attributes:
 *   weight: `[O, C/groups, K]`, PyTorch's default kaiming-uniform with a = √5, i.e. U(±1/√fanIn)
 *   with `fanIn = C/groups · K`; bias: `[O]`, U(±1/√fanIn). With the same seed the numbers are
 *   those of a `Conv2d` with kernel `[1, K]`.
 *
 * @example
 * ```ts
 * // A WaveGAN discriminator block: 16384 samples → 4096 steps of 64 channels.
 * const conv = new Conv1d(1, 64, 25, { stride: 4, padding: 11, seed: 0 });
 * conv.forward(randn([8, 1, 16384])).shape; // [8, 64, 4096]
 * ```
 */
export class Conv1d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly options: Conv1dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: Conv1dLayerOptions = {},
  ) {
    super();
    const { stride, padding, dilation, groups = 1, bias = true } = options;
    const k = integer('Conv1d', 'kernelSize', kernelSize, 1);
    geometry1d('Conv1d', options);
    const shape = [outChannels, inChannels / groups, k];
    const p = convParameters('Conv1d', inChannels, outChannels, groups, shape, bias, options);
    this.weight = p.weight;
    this.bias = p.bias;
    this.options = { stride, padding, dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return conv1dAs('Conv1d', x, this.weight, this.bias, this.options);
  }

  override toString(): string {
    return `Conv1d(${this.inChannels} → ${this.outChannels}, kernel ${this.weight.shape[2]})`;
  }
}

/** Options of the {@link ConvTranspose1d} layer. */
export interface ConvTranspose1dLayerOptions extends ConvTranspose1dOptions, RandomOptions {
  /** Learnable bias (default true). */
  bias?: boolean;
}

/**
 * 1-D transposed convolution layer (the gradient of a 1-D convolution with respect to its input,
 * used to upsample sequences): `y = convTranspose1d(x, W, b)` (see {@link convTranspose1d}).
 *
 * Args:
 *   inChannels (C), outChannels (O), kernelSize (K).
 *   options: stride (1), padding (0), outputPadding (0), dilation (1), groups (1), bias (true),
 *   seed / generator, dtype, backend.
 *
 * Shape:
 *   `[N, C, L]` → `[N, O, L']`, `L' = (L − 1)·s − 2p + d(K − 1) + outputPadding + 1`.
 *
 * Attributes:
 *   weight: `[C, O/groups, K]`, initialised as PyTorch does: U(±1/√fanIn) where PyTorch's fan-in
 *   of this weight is `O/groups · K`; bias: `[O]`, U(±1/√fanIn).
 *
 * @example
 * ```ts
 * // A WaveGAN generator block: ×4 upsampling.
 * const up = new ConvTranspose1d(64, 32, 25, { stride: 4, padding: 11, outputPadding: 1, seed: 0 });
 * up.forward(randn([8, 64, 1024])).shape; // [8, 32, 4096]
 * ```
 */
export class ConvTranspose1d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly options: ConvTranspose1dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: number,
    options: ConvTranspose1dLayerOptions = {},
  ) {
    super();
    const { stride, padding, outputPadding, dilation, groups = 1, bias = true } = options;
    const k = integer('ConvTranspose1d', 'kernelSize', kernelSize, 1);
    geometry1d('ConvTranspose1d', options);
    const shape = [inChannels, outChannels / groups, k];
    const p = convParameters('ConvTranspose1d', inChannels, outChannels, groups, shape, bias, options);
    this.weight = p.weight;
    this.bias = p.bias;
    this.options = { stride, padding, outputPadding, dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return convTranspose1dAs('ConvTranspose1d', x, this.weight, this.bias, this.options);
  }

  override toString(): string {
    return `ConvTranspose1d(${this.inChannels} → ${this.outChannels}, kernel ${this.weight.shape[2]})`;
  }
}
