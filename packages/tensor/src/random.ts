/**
 * Random tensors from explicit generators. A {@link Generator} is a Philox key plus a stream
 * offset: each draw of n elements uses counters offset … offset+n−1 and advances the offset, so a
 * generator's stream depends only on its seed and the sizes drawn from it, on every backend and
 * whatever other generators do meanwhile.
 */
import { type BackendName, getBackend } from './backend.js';
import type { CreateOptions } from './creation.js';
import { runKernel } from './dispatch.js';
import { checkDType, type DType, INT32_RANGE } from './dtype.js';
import { FluxionError } from './errors.js';
import { scope } from './memory.js';
import { less } from './ops.js';
import { type Distribution, seedToKey } from './philox.js';
import { checkShape, sizeOf } from './shape.js';
import type { Tensor } from './tensor.js';

/**
 * A seeded random stream.
 *
 * @example
 * ```ts
 * const g = new Generator(42);
 * const a = randn([2, 3], { generator: g });
 * const b = rand([5], { generator: g }); // continues the stream
 * ```
 */
export class Generator {
  /** The Philox key derived from the seed. */
  readonly key: [number, number];
  /** Counters consumed so far. */
  offset = 0;
  constructor(readonly seed: number) {
    this.key = seedToKey(seed);
  }
  /** Reserves `n` counters and returns the first. */
  advance(n: number): number {
    const start = this.offset;
    this.offset += n;
    return start;
  }
}

let defaultGenerator = new Generator(0);

/** Reseeds the default generator used when no `generator`/`seed` option is given. */
export function manualSeed(seed: number): void {
  defaultGenerator = new Generator(seed);
}

/** Options of the random functions. */
export interface RandomOptions extends CreateOptions {
  /** Draw from this generator (advancing it). */
  generator?: Generator;
  /** Draw from a fresh generator with this seed. */
  seed?: number;
}

function draw(
  op: string,
  shape: readonly number[],
  distribution: Distribution,
  dtype: DType,
  o: RandomOptions,
  low = 0,
  high = 0,
): Tensor {
  const s = checkShape(op, shape);
  const g = o.generator ?? (o.seed !== undefined ? new Generator(o.seed) : defaultGenerator);
  const offset = g.advance(sizeOf(s));
  return runKernel(
    'random',
    [],
    { shape: s, dtype, key: g.key, offset, distribution, low, high },
    getBackend(o.backend as BackendName | undefined),
  );
}

/** Uniform samples in [0, 1). @example `rand([2, 2], { seed: 1 })` */
export function rand(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return draw('rand', shape, 'uniform', checkDType('rand', options.dtype ?? 'float32'), options);
}

/** Standard normal samples (Box–Muller). @example `randn([64, 100], { generator: g })` */
export function randn(shape: readonly number[], options: RandomOptions = {}): Tensor {
  return draw('randn', shape, 'normal', checkDType('randn', options.dtype ?? 'float32'), options);
}

/** Uniform integers in [low, high) as int32. @example `randint(0, 10, [5], { seed: 3 })` */
export function randint(
  low: number,
  high: number,
  shape: readonly number[],
  options: RandomOptions = {},
): Tensor {
  // [low, high) must lie within int32: low ≥ −2³¹ and high − 1 ≤ 2³¹ − 1.
  const [min, max] = INT32_RANGE;
  if (!Number.isInteger(low) || !Number.isInteger(high) || high <= low || low < min || high > max + 1) {
    throw new FluxionError(
      'randint',
      `needs integers low < high with [low, high) inside int32's range [${min}, ${max}], got [${low}, ${high})`,
    );
  }
  if (high - low > 2 ** 31) {
    throw new FluxionError('randint', `the range [${low}, ${high}) is wider than 2^31 values`);
  }
  return draw('randint', shape, 'randint', 'int32', options, low, high);
}

/**
 * Bernoulli samples: true with probability `p` (a number or a tensor of probabilities), as bool.
 *
 * @example
 * ```ts
 * const mask = bernoulli(0.9, [128, 256], { seed: 7 });
 * ```
 */
export function bernoulli(
  p: number | Tensor,
  shape?: readonly number[],
  options: RandomOptions = {},
): Tensor {
  const s = typeof p === 'number' ? shape : p.shape;
  if (!s) throw new FluxionError('bernoulli', 'needs a shape when p is a number');
  if (typeof p === 'number' && !(p >= 0 && p <= 1))
    throw new FluxionError('bernoulli', `p must lie in [0, 1], got ${p}`);
  const dtype = typeof p === 'number' ? 'float32' : p.dtype === 'float64' ? 'float64' : 'float32';
  const backend = typeof p === 'number' ? options.backend : p.backend.name;
  return scope(() => less(rand(s, { ...options, dtype, backend }), p));
}
