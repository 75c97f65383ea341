/**
 * Helpers shared by the layers: one random stream per layer built from `seed`/`generator`
 * options, and argument normalisation for 2-D sizes.
 */
import { FluxionError, Generator, type RandomOptions } from '@fluxion/tensor';

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
