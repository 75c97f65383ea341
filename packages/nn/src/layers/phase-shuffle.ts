/**
 * WaveGAN's phase shuffle (Donahue, McAuley and Puckette 2019, "Adversarial Audio Synthesis"):
 * the discriminator sees each example's activations shifted by a few random samples, so it cannot
 * judge a clip by the phase of its periodic artefacts.
 */
import {
  abs,
  arange,
  FluxionError,
  fmtShape,
  Generator,
  type RandomOptions,
  randint,
  reshape,
  scope,
  sub,
  type Tensor,
  takeAlongAxis,
} from '@fluxion/tensor';
import { Module } from '../module.js';

/**
 * Shifts each example of `[N, C, L]` by its own integer `k[n]` along L, filling the ends by
 * reflection (without repeating the edge sample, as PyTorch's and TensorFlow's `reflect` padding):
 * `y[n, c, t] = x[n, c, r(t − k[n])]` with `r(i) = −i` for `i < 0`, `2(L − 1) − i` for `i ≥ L`,
 * else `i`. A positive `k` delays the signal. It is a gather with a fixed index map, so its
 * gradient is the reverse shift (a scatter-add of the incoming gradient through the same map).
 *
 * Args:
 *   x: `[N, C, L]`, any float dtype, on any backend.
 *   shifts: int32 `[N]`, each in `[−(L − 1), L − 1]` (reflection needs `|k| < L`).
 *
 * Shape:
 *   `[N, C, L]` → `[N, C, L]`.
 *
 * @example
 * ```ts
 * const x = tensor([[[1, 2, 3, 4, 5]]]);
 * reflectShift(x, tensor([2], { dtype: 'int32' })); // [[[3, 2, 1, 2, 3]]]
 * reflectShift(x, tensor([-1], { dtype: 'int32' })); // [[[2, 3, 4, 5, 4]]]
 * ```
 */
export function reflectShift(x: Tensor, shifts: Tensor): Tensor {
  if (x.rank !== 3 || shifts.rank !== 1 || shifts.shape[0] !== x.shape[0] || shifts.dtype !== 'int32') {
    throw new FluxionError(
      'reflectShift',
      `expected x [N, C, L] and int32 shifts [N], got x ${fmtShape(x.shape)} and shifts ${fmtShape(shifts.shape)} ${shifts.dtype}`,
    );
  }
  const [n, , length] = x.shape;
  return scope(() => {
    // i = t − k[n], reflected into [0, L): r(i) = (L − 1) − |(L − 1) − |i||, exact for |i| ≤ 2(L − 1).
    const t = arange(length, undefined, 1, { dtype: 'int32', backend: x.backend.name });
    const i = sub(reshape(t, [1, 1, length]), reshape(shifts, [n, 1, 1]));
    const index = sub(length - 1, abs(sub(length - 1, abs(i))));
    return takeAlongAxis(x, index, 2);
  });
}

/**
 * WaveGAN's phase shuffle, functional form: draws `k[n] ~ U{−n, …, n}` per example from
 * `options.generator` (or `seed`, or the default generator) on `x`'s backend and returns
 * {@link reflectShift}`(x, k)`.
 *
 * Args:
 *   x: `[N, C, L]` with `L > n`.
 *   n: the largest shift (an integer ≥ 0; 0 returns `x`).
 *   options: seed / generator.
 *
 * Shape:
 *   `[N, C, L]` → `[N, C, L]`.
 *
 * @example
 * ```ts
 * const g = new Generator(0);
 * phaseShuffle(features, 2, { generator: g }); // each example shifted by −2 … 2 samples
 * ```
 */
export function phaseShuffle(
  x: Tensor,
  n: number,
  options: Pick<RandomOptions, 'seed' | 'generator'> = {},
): Tensor {
  return phaseShuffleAs('phaseShuffle', x, n, options);
}

function checkRadius(op: string, n: number): void {
  if (!Number.isInteger(n) || n < 0) throw new FluxionError(op, `n must be an integer ≥ 0, got ${n}`);
}

function phaseShuffleAs(
  op: string,
  x: Tensor,
  n: number,
  options: Pick<RandomOptions, 'seed' | 'generator'>,
): Tensor {
  checkRadius(op, n);
  if (x.rank !== 3) throw new FluxionError(op, `expected input [N, C, L], got ${fmtShape(x.shape)}`);
  if (n >= x.shape[2]) {
    throw new FluxionError(
      op,
      `shifts up to ${n} need more than ${n} samples to reflect, got input ${fmtShape(x.shape)}`,
    );
  }
  if (n === 0) return x;
  return scope(() => {
    const shifts = randint(-n, n + 1, [x.shape[0]], { ...options, backend: x.backend.name });
    return reflectShift(x, shifts);
  });
}

/**
 * WaveGAN's phase shuffle layer: in training mode,
 * `y[n, c, t] = x[n, c, r(t − k[n])]` with a fresh `k[n] ~ U{−n, …, n}` per example and call and
 * `r` the reflection into `[0, L)` (see {@link reflectShift}); in eval mode `y = x`. The gradient
 * is the reverse shift. WaveGAN applies it after each discriminator block but the last, with n = 2.
 *
 * Donahue et al.'s code draws one shift for the whole batch; this layer draws one per example
 * (as the common PyTorch ports do), which randomises the batch more for the same cost.
 *
 * Args:
 *   n: the largest shift, an integer ≥ 0 (0 makes the layer the identity).
 *   options.seed / options.generator: the layer's random stream (each training call draws N
 *   integers from it); without them, the default generator of `manualSeed`.
 *
 * Shape:
 *   `[N, C, L]` → `[N, C, L]`, with `L > n`.
 *
 * @example
 * ```ts
 * const shuffle = new PhaseShuffle(2, { seed: 0 });
 * shuffle.forward(features);        // each example shifted by −2 … 2 samples
 * shuffle.eval().forward(features); // features itself
 * ```
 */
export class PhaseShuffle extends Module {
  private readonly generator: Generator | undefined;

  constructor(
    readonly n: number,
    options: Pick<RandomOptions, 'seed' | 'generator'> = {},
  ) {
    super();
    checkRadius('PhaseShuffle', n);
    this.generator =
      options.generator ?? (options.seed !== undefined ? new Generator(options.seed) : undefined);
  }

  forward(x: Tensor): Tensor {
    if (!this.training) return x;
    return phaseShuffleAs('PhaseShuffle', x, this.n, { generator: this.generator });
  }

  override toString(): string {
    return `PhaseShuffle(n=${this.n})`;
  }
}
