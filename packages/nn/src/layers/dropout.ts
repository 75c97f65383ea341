/**
 * Dropout: zeroes random elements while training and rescales the rest, from a seeded stream.
 */
import {
  bernoulli,
  FluxionError,
  Generator,
  mul,
  type RandomOptions,
  scope,
  type Tensor,
  where,
} from '@fluxion/tensor';
import { Module } from '../module.js';

/**
 * During training, `y = x · m / (1 − p)` with `m ~ Bernoulli(1 − p)` drawn per element; in eval
 * mode, `y = x`. The expected value of `y` equals `x` in both modes.
 *
 * Args:
 *   p: probability of zeroing an element (default 0.5), in [0, 1].
 *   options.seed / options.generator: the layer's random stream (each call draws fresh masks from
 *   it); without them, the default generator of `manualSeed`.
 *
 * Shape:
 *   any → same shape.
 *
 * @example
 * ```ts
 * const drop = new Dropout(0.3, { seed: 1 });
 * drop.forward(ones([4, 4]));        // entries 0 or 1/0.7
 * drop.eval().forward(ones([4, 4])); // all ones
 * ```
 */
export class Dropout extends Module {
  private readonly generator: Generator | undefined;

  constructor(
    readonly p = 0.5,
    options: Pick<RandomOptions, 'seed' | 'generator'> = {},
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new FluxionError('Dropout', `p must lie in [0, 1], got ${p}`);
    this.generator =
      options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : undefined);
  }

  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    if (this.p === 1) return scope(() => mul(x, 0));
    return scope(() => {
      const keep = bernoulli(1 - this.p, x.shape, { generator: this.generator, backend: x.backend.name });
      return where(keep, mul(x, 1 / (1 - this.p)), 0);
    });
  }

  override toString(): string {
    return `Dropout(p=${this.p})`;
  }
}
