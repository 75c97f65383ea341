/**
 * 2-D convolution and transposed convolution, on the `conv` primitive of `@fluxion/tensor`, which
 * computes a convolution's output, or its adjoint in the input or in the weight, by implicit GEMM
 * (on WebGPU: one product per group whose image operand is read through the convolution's index
 * arithmetic, padding as a bounds check; see `backends/webgpu/conv.ts`). Nothing the size of an
 * im2col matrix is allocated, in the forward or the backward pass.
 *
 * - `conv2d` is `conv(x, w)` with result `output`, plus the bias.
 * - `convTranspose2d` is the adjoint of `conv2d` in its input: `conv(x, w)` with result `input`
 *   and the output size of the transposed convolution (padding crops, `outputPadding` extends on
 *   the high side), plus the bias. It costs what the matching `conv2d` costs: the kernel visits
 *   only the taps that reach each output phase, no zeros are inserted.
 *
 * Gradients are `conv`s too (autograd's `conv` rule), so second derivatives work (WGAN-GP).
 * The pooling layers (`pool.ts`) use {@link windows} with a max or mean over the window axes.
 */
import {
  add,
  conv,
  FluxionError,
  fmtShape,
  pad,
  type RandomOptions,
  reshape,
  scope,
  type Tensor,
  windows as tensorWindows,
} from '@fluxion/tensor';
import { Module, type Parameter } from '../module.js';
import { checkConvArgs, convParameters, pair, type Size2 } from './common.js';

/** Geometry of a sliding window over H and W. */
export interface WindowGeometry {
  kernel: [number, number];
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
}

/** Output size of a sliding window along one axis: `⌊(n + 2p − d(k − 1) − 1) / s⌋ + 1`. */
export function convOutputSize(n: number, k: number, s: number, p: number, d: number): number {
  return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1;
}

/**
 * Every window of a `[N, C, H, W]` tensor padded with `padValue`, as `[N, C, KH, KW, OH, OW]`
 * (a view of the padded input: see `windows` in `@fluxion/tensor`).
 */
export function windows(op: string, x: Tensor, g: WindowGeometry, padValue = 0): Tensor {
  if (x.rank !== 4) throw new FluxionError(op, `expected input [N, C, H, W], got ${fmtShape(x.shape)}`);
  const [kh, kw] = g.kernel;
  const [ph, pw] = g.padding;
  const [dh, dw] = g.dilation;
  const oh = convOutputSize(x.shape[2], kh, g.stride[0], ph, dh);
  const ow = convOutputSize(x.shape[3], kw, g.stride[1], pw, dw);
  if (oh <= 0 || ow <= 0) {
    throw new FluxionError(
      op,
      `input ${fmtShape(x.shape)} is smaller than the kernel [${kh},${kw}] (dilation [${dh},${dw}], padding [${ph},${pw}])`,
    );
  }
  const padded =
    ph || pw
      ? pad(
          x,
          [
            [0, 0],
            [0, 0],
            [ph, ph],
            [pw, pw],
          ],
          padValue,
        )
      : x;
  return tensorWindows(padded, g.kernel, { stride: g.stride, dilation: g.dilation });
}

/** Options of {@link conv2d}. */
export interface Conv2dOptions {
  /** Step of the window (default 1). */
  stride?: Size2;
  /** Zeros added on both sides of H and W (default 0). */
  padding?: Size2;
  /** Spacing between kernel taps (default 1). */
  dilation?: Size2;
  /** Channel groups: input and output channels are split into this many independent convolutions (default 1). */
  groups?: number;
}

function geometry(op: string, kernel: [number, number], o: Conv2dOptions): WindowGeometry {
  return {
    kernel,
    stride: pair(op, 'stride', o.stride ?? 1, 1),
    padding: pair(op, 'padding', o.padding ?? 0, 0),
    dilation: pair(op, 'dilation', o.dilation ?? 1, 1),
  };
}

/**
 * 2-D cross-correlation (PyTorch's `conv2d`):
 * `y[n, o, h, w] = b[o] + Σ_{c, i, j} W[o, c, i, j] · x[n, g·C/G + c, h·s + i·d − p, w·s + j·d − p]`
 * over the input channels `c` of output channel `o`'s group `g`.
 *
 * Args:
 *   x: input `[N, C, H, W]`.
 *   weight: `[O, C/groups, KH, KW]`.
 *   bias: `[O]` or null.
 *   options: stride, padding, dilation (a number or `[h, w]`), groups.
 *
 * Shape:
 *   output `[N, O, OH, OW]`, `OH = ⌊(H + 2p − d(KH − 1) − 1) / s⌋ + 1` (same for W).
 *
 * @example
 * ```ts
 * conv2d(randn([1, 3, 32, 32]), randn([16, 3, 3, 3]), null, { padding: 1 }).shape; // [1, 16, 32, 32]
 * ```
 */
export function conv2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: Conv2dOptions = {},
): Tensor {
  const groups = options.groups ?? 1;
  const o = checkConvArgs('conv2d', x, weight, bias, groups, ['H', 'W'], false);
  const [, , kh, kw] = weight.shape;
  const g = geometry('conv2d', [kh, kw], options);
  const [oh, ow] = [0, 1].map((a) =>
    convOutputSize(x.shape[2 + a], g.kernel[a], g.stride[a], g.padding[a], g.dilation[a]),
  );
  if (oh <= 0 || ow <= 0) {
    throw new FluxionError(
      'conv2d',
      `input ${fmtShape(x.shape)} is smaller than the kernel [${kh},${kw}] (dilation [${g.dilation}], padding [${g.padding}])`,
    );
  }
  return scope(() => {
    const y = conv(x, weight, { ...g, groups, result: 'output', size: [oh, ow] });
    return bias ? add(y, reshape(bias, [o, 1, 1])) : y;
  });
}

/** Options of {@link convTranspose2d}. */
export interface ConvTranspose2dOptions extends Conv2dOptions {
  /** Extra rows/columns added on the high side of the output (default 0; < stride or dilation). */
  outputPadding?: Size2;
}

/**
 * 2-D transposed convolution (PyTorch's `conv_transpose2d`), the adjoint of {@link conv2d} with
 * the same weight: `⟨conv2d(x, W), y⟩ = ⟨x, convTranspose2d(y, W)⟩` (without bias).
 *
 * Args:
 *   x: input `[N, C, H, W]`.
 *   weight: `[C, O/groups, KH, KW]` (input channels first, as in PyTorch).
 *   bias: `[O]` or null.
 *   options: stride, padding, outputPadding, dilation, groups.
 *
 * Shape:
 *   output `[N, O, OH, OW]`, `OH = (H − 1)·s − 2p + d(KH − 1) + outputPadding + 1` (same for W).
 *
 * @example
 * ```ts
 * // DCGAN upsampling: 4×4 kernel, stride 2, padding 1 doubles H and W.
 * convTranspose2d(randn([1, 64, 7, 7]), randn([64, 32, 4, 4]), null, { stride: 2, padding: 1 }).shape; // [1, 32, 14, 14]
 * ```
 */
export function convTranspose2d(
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null = null,
  options: ConvTranspose2dOptions = {},
): Tensor {
  const groups = options.groups ?? 1;
  const o = checkConvArgs('convTranspose2d', x, weight, bias, groups, ['H', 'W'], true);
  const [, , kh, kw] = weight.shape;
  const g = geometry('convTranspose2d', [kh, kw], options);
  const outputPadding = pair('convTranspose2d', 'outputPadding', options.outputPadding ?? 0, 0);
  outputPadding.forEach((op, a) => {
    if (op >= Math.max(g.stride[a], g.dilation[a])) {
      throw new FluxionError(
        'convTranspose2d',
        `outputPadding ${op} must be smaller than stride ${g.stride[a]} or dilation ${g.dilation[a]}`,
      );
    }
  });
  const outSize = [0, 1].map(
    (a) =>
      (x.shape[2 + a] - 1) * g.stride[a] -
      2 * g.padding[a] +
      g.dilation[a] * (g.kernel[a] - 1) +
      outputPadding[a] +
      1,
  );
  if (outSize.some((s) => s <= 0)) {
    throw new FluxionError(
      'convTranspose2d',
      `output size ${fmtShape(outSize)} is empty for input ${fmtShape(x.shape)}`,
    );
  }
  return scope(() => {
    const y = conv(x, weight, { ...g, groups, result: 'input', size: [outSize[0], outSize[1]] });
    return bias ? add(y, reshape(bias, [o, 1, 1])) : y;
  });
}

/** Options of the {@link Conv2d} layer. */
export interface Conv2dLayerOptions extends Conv2dOptions, RandomOptions {
  /** Learnable bias (default true). */
  bias?: boolean;
}

/**
 * 2-D convolution layer: `y = conv2d(x, W, b)` (see {@link conv2d} for the formula).
 *
 * Args:
 *   inChannels (C), outChannels (O), kernelSize (a number or `[KH, KW]`).
 *   options: stride (1), padding (0), dilation (1), groups (1), bias (true), seed / generator,
 *   dtype, backend.
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, O, OH, OW]`, `OH = ⌊(H + 2p − d(KH − 1) − 1) / s⌋ + 1`.
 *
 * Attributes:
 *   weight: `[O, C/groups, KH, KW]`, PyTorch's default kaiming-uniform with a = √5, i.e.
 *   U(±1/√fanIn) with `fanIn = C/groups · KH · KW`; bias: `[O]`, U(±1/√fanIn).
 *
 * @example
 * ```ts
 * const conv = new Conv2d(1, 32, 3, { padding: 1, seed: 0 });
 * conv.forward(randn([8, 1, 28, 28])).shape; // [8, 32, 28, 28]
 * ```
 */
export class Conv2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly options: Conv2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Size2,
    options: Conv2dLayerOptions = {},
  ) {
    super();
    const { stride, padding, dilation, groups = 1, bias = true } = options;
    const [kh, kw] = pair('Conv2d', 'kernelSize', kernelSize, 1);
    const shape = [outChannels, inChannels / groups, kh, kw];
    const p = convParameters('Conv2d', inChannels, outChannels, groups, shape, bias, options);
    this.weight = p.weight;
    this.bias = p.bias;
    this.options = { stride, padding, dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }

  override toString(): string {
    return `Conv2d(${this.inChannels} → ${this.outChannels}, kernel ${fmtShape(this.weight.shape.slice(2))})`;
  }
}

/** Options of the {@link ConvTranspose2d} layer. */
export interface ConvTranspose2dLayerOptions extends ConvTranspose2dOptions, RandomOptions {
  /** Learnable bias (default true). */
  bias?: boolean;
}

/**
 * 2-D transposed convolution layer (the gradient of a convolution with respect to its input,
 * used to upsample): `y = convTranspose2d(x, W, b)`.
 *
 * Args:
 *   inChannels (C), outChannels (O), kernelSize (a number or `[KH, KW]`).
 *   options: stride (1), padding (0), outputPadding (0), dilation (1), groups (1), bias (true),
 *   seed / generator, dtype, backend.
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, O, OH, OW]`, `OH = (H − 1)·s − 2p + d(KH − 1) + outputPadding + 1`.
 *
 * Attributes:
 *   weight: `[C, O/groups, KH, KW]`, initialised as PyTorch does: U(±1/√fanIn) where PyTorch's
 *   fan-in of this weight is `O/groups · KH · KW`; bias: `[O]`, U(±1/√fanIn).
 *
 * @example
 * ```ts
 * const up = new ConvTranspose2d(64, 32, 4, { stride: 2, padding: 1, seed: 0 });
 * up.forward(randn([8, 64, 7, 7])).shape; // [8, 32, 14, 14]
 * ```
 */
export class ConvTranspose2d extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  readonly options: ConvTranspose2dOptions;

  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Size2,
    options: ConvTranspose2dLayerOptions = {},
  ) {
    super();
    const { stride, padding, outputPadding, dilation, groups = 1, bias = true } = options;
    const [kh, kw] = pair('ConvTranspose2d', 'kernelSize', kernelSize, 1);
    const shape = [inChannels, outChannels / groups, kh, kw];
    const p = convParameters('ConvTranspose2d', inChannels, outChannels, groups, shape, bias, options);
    this.weight = p.weight;
    this.bias = p.bias;
    this.options = { stride, padding, outputPadding, dilation, groups };
  }

  forward(x: Tensor): Tensor {
    return convTranspose2d(x, this.weight, this.bias, this.options);
  }

  override toString(): string {
    return `ConvTranspose2d(${this.inChannels} → ${this.outChannels}, kernel ${fmtShape(this.weight.shape.slice(2))})`;
  }
}
