/**
 * Max and average pooling over H and W, as a max or mean over the window axis of
 * {@link windows} (a view of the padded input), so they need no kernel of their own.
 */
import { div, FluxionError, max, mean, ones, scope, sum, type Tensor } from '@fluxion/tensor';
import { Module } from '../module.js';
import { pair, type Size2 } from './common.js';
import { type WindowGeometry, windows } from './conv.js';

/** Options of {@link maxPool2d}. */
export interface MaxPool2dOptions {
  /** Step of the window (default: the kernel size). */
  stride?: Size2;
  /** Implicit −∞ padding on both sides (default 0; at most half the kernel). */
  padding?: Size2;
  /** Spacing between window taps (default 1). */
  dilation?: Size2;
}

function poolGeometry(op: string, kernelSize: Size2, o: MaxPool2dOptions): WindowGeometry {
  const kernel = pair(op, 'kernelSize', kernelSize, 1);
  const padding = pair(op, 'padding', o.padding ?? 0, 0);
  if (padding.some((p, a) => p > kernel[a] / 2)) {
    throw new FluxionError(op, `padding [${padding}] must be at most half the kernel [${kernel}]`);
  }
  return {
    kernel,
    stride: pair(op, 'stride', o.stride ?? kernel, 1),
    padding,
    dilation: pair(op, 'dilation', o.dilation ?? 1, 1),
  };
}

/**
 * 2-D max pooling: `y[n, c, h, w] = max_{i, j} x[n, c, h·s + i·d − p, w·s + j·d − p]`, padding
 * counting as −∞. Gradients flow to the maxima (ties share them as the `max` primitive does).
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, C, OH, OW]`, `OH = ⌊(H + 2p − d(K − 1) − 1) / s⌋ + 1`.
 *
 * @example
 * ```ts
 * maxPool2d(randn([1, 3, 8, 8]), 2).shape; // [1, 3, 4, 4]
 * ```
 */
export function maxPool2d(x: Tensor, kernelSize: Size2, options: MaxPool2dOptions = {}): Tensor {
  const g = poolGeometry('maxPool2d', kernelSize, options);
  return scope(() => max(windows('maxPool2d', x, g, Number.NEGATIVE_INFINITY), [2, 3]));
}

/** Options of {@link avgPool2d}. */
export interface AvgPool2dOptions {
  /** Step of the window (default: the kernel size). */
  stride?: Size2;
  /** Zero padding on both sides (default 0; at most half the kernel). */
  padding?: Size2;
  /** Divide by the full window size, padding included (default true), or by the valid elements only. */
  countIncludePad?: boolean;
}

/**
 * 2-D average pooling: the mean of each `KH × KW` window (padding counts as zeros, and in the
 * divisor unless `countIncludePad` is false).
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, C, OH, OW]`, `OH = ⌊(H + 2p − KH) / s⌋ + 1`.
 *
 * @example
 * ```ts
 * avgPool2d(randn([1, 3, 8, 8]), 2).shape; // [1, 3, 4, 4]
 * ```
 */
export function avgPool2d(x: Tensor, kernelSize: Size2, options: AvgPool2dOptions = {}): Tensor {
  const { countIncludePad = true, ...rest } = options;
  const g = poolGeometry('avgPool2d', kernelSize, rest);
  return scope(() => {
    const w = windows('avgPool2d', x, g);
    if (countIncludePad || (g.padding[0] === 0 && g.padding[1] === 0)) return mean(w, [2, 3]);
    const valid = windows(
      'avgPool2d',
      ones([1, 1, x.shape[2], x.shape[3]], { dtype: x.dtype, backend: x.backend.name }),
      g,
    );
    return div(sum(w, [2, 3]), sum(valid, [2, 3]));
  });
}

/**
 * Max pooling layer; see {@link maxPool2d}.
 *
 * Args:
 *   kernelSize: window size (a number or `[KH, KW]`).
 *   options: stride (default kernelSize), padding (0), dilation (1).
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, C, OH, OW]`.
 *
 * @example
 * ```ts
 * new MaxPool2d(2).forward(randn([8, 16, 28, 28])).shape; // [8, 16, 14, 14]
 * ```
 */
export class MaxPool2d extends Module {
  constructor(
    readonly kernelSize: Size2,
    readonly options: MaxPool2dOptions = {},
  ) {
    super();
    poolGeometry('MaxPool2d', kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return maxPool2d(x, this.kernelSize, this.options);
  }
}

/**
 * Average pooling layer; see {@link avgPool2d}.
 *
 * Args:
 *   kernelSize: window size (a number or `[KH, KW]`).
 *   options: stride (default kernelSize), padding (0), countIncludePad (true).
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, C, OH, OW]`.
 *
 * @example
 * ```ts
 * new AvgPool2d(2).forward(randn([8, 16, 28, 28])).shape; // [8, 16, 14, 14]
 * ```
 */
export class AvgPool2d extends Module {
  constructor(
    readonly kernelSize: Size2,
    readonly options: AvgPool2dOptions = {},
  ) {
    super();
    poolGeometry('AvgPool2d', kernelSize, options);
  }
  forward(x: Tensor): Tensor {
    return avgPool2d(x, this.kernelSize, this.options);
  }
}
