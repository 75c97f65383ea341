/**
 * Helpers shared by the layers: one random stream per layer built from `seed`/`generator`
 * options, argument normalisation for 2-D sizes, and the argument checks and parameter
 * initialisation that the 1-D and 2-D convolutions share.
 */
import { FluxionError, fmtShape, Generator, type RandomOptions, scope, type Tensor } from '@fluxion/tensor';
import { kaimingUniform, uniform } from '../init.js';
import { Parameter } from '../module.js';

/**
 * The random options a layer initialises all its parameters with: a `seed` becomes one generator,
 * so that the weight and the bias draw different numbers.
 */
export function layerRandom(options: RandomOptions): RandomOptions {
  const { seed, generator, dtype, backend } = options;
  return { dtype, backend, generator: generator ?? (seed !== undefined ? new Generator(seed) : undefined) };
}

/** A size per spatial axis: one number for both, or `[height, width]`. */
export type Size2 = number | readonly [number, number];

/** `[h, w]` from a {@link Size2}, checking each is an integer ≥ `min`. */
export function pair(op: string, name: string, value: Size2, min: number): [number, number] {
  const [h, w] = typeof value === 'number' ? [value, value] : value;
  if (![h, w].every((v) => Number.isInteger(v) && v >= min)) {
    throw new FluxionError(op, `${name} must be integers ≥ ${min}, got ${JSON.stringify(value)}`);
  }
  return [h, w];
}

/**
 * Checks the arguments of a convolution over `spatial` axes (`['H', 'W']` for conv2d, `['L']` for
 * conv1d) and returns the number of output channels. `transposed` reads the weight as
 * `[C, O/groups, K…]` (PyTorch's layout of transposed convolutions) instead of `[O, C/groups, K…]`.
 * Messages name `op` and the shapes as the caller sees them.
 */
export function checkConvArgs(
  op: string,
  x: Tensor,
  weight: Tensor,
  bias: Tensor | null,
  groups: number,
  spatial: readonly string[],
  transposed: boolean,
): number {
  const rank = spatial.length + 2;
  if (x.rank !== rank || weight.rank !== rank) {
    const kernel = spatial.length === 1 ? ['K'] : spatial.map((s) => `K${s}`);
    const channels = transposed ? 'C, O/groups' : 'O, C/groups';
    throw new FluxionError(
      op,
      `expected input [N, C, ${spatial.join(', ')}] and weight [${channels}, ${kernel.join(', ')}], ` +
        `got ${fmtShape(x.shape)} and ${fmtShape(weight.shape)}`,
    );
  }
  const c = x.shape[1];
  const okGroups = Number.isInteger(groups) && groups >= 1 && c % groups === 0;
  let o: number;
  if (transposed) {
    o = weight.shape[1] * groups;
    if (!okGroups || weight.shape[0] !== c) {
      throw new FluxionError(
        op,
        `input ${fmtShape(x.shape)} and weight ${fmtShape(weight.shape)} do not fit groups=${groups} ` +
          `(need weight.shape[0] = C, divisible by groups)`,
      );
    }
  } else {
    o = weight.shape[0];
    if (!okGroups || o % groups !== 0 || weight.shape[1] !== c / groups) {
      throw new FluxionError(
        op,
        `input ${fmtShape(x.shape)} and weight ${fmtShape(weight.shape)} do not fit groups=${groups} ` +
          `(need C and O divisible by groups and weight.shape[1] = C/groups)`,
      );
    }
  }
  if (bias && (bias.rank !== 1 || bias.shape[0] !== o)) {
    throw new FluxionError(op, `bias must have shape [${o}], got ${fmtShape(bias.shape)}`);
  }
  return o;
}

/**
 * The parameters of a convolution layer, initialised as PyTorch does: the weight of `shape` by
 * kaiming-uniform with a = √5, i.e. U(±1/√fanIn) with fanIn = `shape[1] · Π kernel` (for a
 * transposed convolution's `[C, O/groups, K…]` weight that is PyTorch's fan-in too), and the bias
 * `[biasSize]` by U(±1/√fanIn), both from the layer's one random stream. Checks that the channels
 * divide into `groups`, naming the layer `op`.
 */
export function convParameters(
  op: string,
  inChannels: number,
  outChannels: number,
  groups: number,
  shape: readonly number[],
  bias: boolean,
  options: RandomOptions,
): { weight: Parameter; bias: Parameter | null } {
  if (!Number.isInteger(groups) || groups < 1 || inChannels % groups !== 0 || outChannels % groups !== 0) {
    throw new FluxionError(
      op,
      `channels ${inChannels} → ${outChannels} are not divisible by groups=${groups}`,
    );
  }
  const random = layerRandom(options);
  const fanIn = shape.slice(1).reduce((a, b) => a * b, 1);
  const weight = scope(() => new Parameter(kaimingUniform(shape, { ...random, a: Math.sqrt(5) })));
  const bound = 1 / Math.sqrt(fanIn);
  return {
    weight,
    bias: bias
      ? scope(() => new Parameter(uniform([outChannels], { ...random, low: -bound, high: bound })))
      : null,
  };
}
