/**
 * Layers that only change shapes: `Flatten` and `Unflatten`.
 */
import { FluxionError, flatten, fmtShape, normalizeAxis, reshape, type Tensor } from '@fluxion/tensor';
import { Module } from '../module.js';

/**
 * Merges axes `startDim..endDim` (inclusive) into one.
 *
 * Args:
 *   startDim: first axis to merge (default 1, keeping the batch axis).
 *   endDim: last axis to merge (default −1).
 *
 * Shape:
 *   `[N, C, H, W]` → `[N, C·H·W]` with the defaults.
 *
 * @example
 * ```ts
 * new Flatten().forward(zeros([8, 1, 28, 28])).shape; // [8, 784]
 * ```
 */
export class Flatten extends Module {
  constructor(
    readonly startDim = 1,
    readonly endDim = -1,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return flatten(x, this.startDim, this.endDim);
  }
}

/**
 * Splits axis `dim` into `sizes` (one entry may be −1, inferred).
 *
 * Args:
 *   dim: the axis to split.
 *   sizes: the new sizes; their product must equal the axis size.
 *
 * Shape:
 *   `[N, 784]` → `[N, 1, 28, 28]` for `new Unflatten(1, [1, 28, 28])`.
 *
 * @example
 * ```ts
 * new Unflatten(1, [1, 28, 28]).forward(zeros([8, 784])).shape; // [8, 1, 28, 28]
 * ```
 */
export class Unflatten extends Module {
  constructor(
    readonly dim: number,
    readonly sizes: readonly number[],
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    const d = normalizeAxis('Unflatten', this.dim, x.rank);
    const known = this.sizes.filter((s) => s !== -1).reduce((a, b) => a * b, 1);
    const ok = this.sizes.includes(-1) ? x.shape[d] % known === 0 : known === x.shape[d];
    if (!ok) {
      throw new FluxionError(
        'Unflatten',
        `cannot split axis ${d} of ${fmtShape(x.shape)} into ${fmtShape(this.sizes)}`,
      );
    }
    return reshape(x, [...x.shape.slice(0, d), ...this.sizes, ...x.shape.slice(d + 1)]);
  }
}
