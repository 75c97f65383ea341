/**
 * Weight initialisers. Each returns a new tensor of the requested shape, drawn from a seeded
 * stream (`seed` or `generator` options, else the default generator of `manualSeed`), with the
 * usual `dtype` and `backend` options. To re-initialise a layer, assign the result:
 *
 * ```ts
 * layer.weight.assign(xavierUniform(layer.weight.shape, { generator: g }));
 * ```
 *
 * Fans follow PyTorch: for a weight `[out, in, ...kernel]`, `fanIn = in · Π kernel` and
 * `fanOut = out · Π kernel`.
 */
import {
  add,
  FluxionError,
  fmtShape,
  full,
  mul,
  type RandomOptions,
  rand,
  randn,
  scope,
  type Tensor,
  tensor,
} from '@fluxion/tensor';

/** Nonlinearities with a recommended gain (PyTorch's `calculate_gain`). */
export type Nonlinearity = 'linear' | 'conv' | 'sigmoid' | 'tanh' | 'relu' | 'leakyRelu' | 'selu';

/**
 * The recommended gain for a nonlinearity: 1 for linear/conv/sigmoid, 5/3 for tanh, √2 for relu,
 * √(2 / (1 + slope²)) for leakyRelu (slope default 0.01), 3/4 for selu.
 *
 * @example
 * ```ts
 * calculateGain('relu'); // 1.4142…
 * ```
 */
export function calculateGain(nonlinearity: Nonlinearity, slope?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leakyRelu': {
      const a = slope ?? 0.01;
      return Math.sqrt(2 / (1 + a * a));
    }
    case 'selu':
      return 3 / 4;
  }
  throw new FluxionError('calculateGain', `unknown nonlinearity '${nonlinearity}'`);
}

/**
 * `[fanIn, fanOut]` of a weight shape: `in · receptive` and `out · receptive` where receptive is
 * the product of the axes after the first two.
 *
 * @example
 * ```ts
 * computeFans([16, 3, 5, 5]); // [75, 400]
 * ```
 */
export function computeFans(shape: readonly number[]): [number, number] {
  if (shape.length < 2) {
    throw new FluxionError('init', `fans need a shape of rank ≥ 2, got ${fmtShape(shape)}`);
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

/** Uniform samples in [low, high). @example `uniform([3], { low: -1, high: 1, seed: 0 })` */
export function uniform(
  shape: readonly number[],
  options: RandomOptions & { low?: number; high?: number } = {},
): Tensor {
  const { low = 0, high = 1, ...random } = options;
  return scope(() => add(mul(rand(shape, random), high - low), low));
}

/** Normal samples N(mean, std²). @example `normal([3, 3], { std: 0.02, seed: 0 })` */
export function normal(
  shape: readonly number[],
  options: RandomOptions & { mean?: number; std?: number } = {},
): Tensor {
  const { mean = 0, std = 1, ...random } = options;
  return scope(() => add(mul(randn(shape, random), std), mean));
}

/** A tensor filled with `value`. @example `constant([4], 0.1)` */
export function constant(shape: readonly number[], value: number, options: RandomOptions = {}): Tensor {
  return full(shape, value, { dtype: options.dtype, backend: options.backend });
}

/** Options of the Xavier/Glorot initialisers. */
export interface XavierOptions extends RandomOptions {
  /** Scale factor (default 1); see {@link calculateGain}. */
  gain?: number;
}

/**
 * Xavier/Glorot uniform: U(−b, b) with `b = gain · √(6 / (fanIn + fanOut))`.
 *
 * @example
 * ```ts
 * xavierUniform([256, 100], { gain: calculateGain('tanh'), seed: 1 });
 * ```
 */
export function xavierUniform(shape: readonly number[], options: XavierOptions = {}): Tensor {
  const { gain = 1, ...random } = options;
  const [fanIn, fanOut] = computeFans(shape);
  const bound = gain * Math.sqrt(6 / (fanIn + fanOut));
  return uniform(shape, { ...random, low: -bound, high: bound });
}

/** Xavier/Glorot normal: N(0, std²) with `std = gain · √(2 / (fanIn + fanOut))`. */
export function xavierNormal(shape: readonly number[], options: XavierOptions = {}): Tensor {
  const { gain = 1, ...random } = options;
  const [fanIn, fanOut] = computeFans(shape);
  return normal(shape, { ...random, std: gain * Math.sqrt(2 / (fanIn + fanOut)) });
}

/** Options of the Kaiming/He initialisers. */
export interface KaimingOptions extends RandomOptions {
  /** Negative slope of the leaky ReLU that follows (default 0). */
  a?: number;
  /** Preserve the variance of the forward pass (`fanIn`, default) or of the backward pass. */
  mode?: 'fanIn' | 'fanOut';
  /** The nonlinearity that follows (default `leakyRelu`, which with a = 0 is relu). */
  nonlinearity?: Nonlinearity;
}

function kaimingStd(shape: readonly number[], options: KaimingOptions): number {
  const { a = 0, mode = 'fanIn', nonlinearity = 'leakyRelu' } = options;
  const [fanIn, fanOut] = computeFans(shape);
  return calculateGain(nonlinearity, a) / Math.sqrt(mode === 'fanIn' ? fanIn : fanOut);
}

/**
 * Kaiming/He uniform: U(−b, b) with `b = gain · √(3 / fan)`. With `a = √5` this is the default of
 * PyTorch's Linear and Conv layers, `b = 1/√fanIn`.
 *
 * @example
 * ```ts
 * kaimingUniform([128, 64], { nonlinearity: 'relu', seed: 0 });
 * ```
 */
export function kaimingUniform(shape: readonly number[], options: KaimingOptions = {}): Tensor {
  const { a: _a, mode: _m, nonlinearity: _n, ...random } = options;
  const bound = Math.sqrt(3) * kaimingStd(shape, options);
  return uniform(shape, { ...random, low: -bound, high: bound });
}

/** Kaiming/He normal: N(0, std²) with `std = gain / √fan`. */
export function kaimingNormal(shape: readonly number[], options: KaimingOptions = {}): Tensor {
  const { a: _a, mode: _m, nonlinearity: _n, ...random } = options;
  return normal(shape, { ...random, std: kaimingStd(shape, options) });
}

/** Alias of {@link xavierUniform}. */
export const glorotUniform = xavierUniform;
/** Alias of {@link xavierNormal}. */
export const glorotNormal = xavierNormal;
/** Alias of {@link kaimingUniform}. */
export const heUniform = kaimingUniform;
/** Alias of {@link kaimingNormal}. */
export const heNormal = kaimingNormal;

/**
 * A (semi-)orthogonal matrix times `gain`, reshaped to `shape` (rows = `shape[0]`, columns = the
 * rest), as in Saxe et al. 2013: the Q factor of the QR decomposition of a standard normal matrix,
 * with the signs of R's diagonal folded in so that Q is uniformly (Haar) distributed. The QR runs
 * in float64 on the host (Householder reflections), so this initialiser is async.
 *
 * @example
 * ```ts
 * const w = await orthogonal([64, 32], { seed: 0 }); // wᵀw = I₃₂
 * ```
 */
export async function orthogonal(shape: readonly number[], options: XavierOptions = {}): Promise<Tensor> {
  const { gain = 1, dtype = 'float32', backend, ...random } = options;
  if (shape.length < 2) {
    throw new FluxionError('orthogonal', `needs a shape of rank ≥ 2, got ${fmtShape(shape)}`);
  }
  const rows = shape[0];
  const cols = shape.slice(1).reduce((a, b) => a * b, 1);
  // Work on a tall m×n matrix (m ≥ n); transpose at the end when rows < cols.
  const [m, n] = rows >= cols ? [rows, cols] : [cols, rows];
  const g = randn([m, n], { ...random, dtype: 'float64', backend: 'cpu' });
  const a = Float64Array.from((await g.data()) as Float64Array);
  g.dispose();
  const q = householderQ(a, m, n);
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < cols; j++) out[i * cols + j] = gain * (rows >= cols ? q[i * n + j] : q[j * n + i]);
  }
  return tensor(out, [...shape], { dtype, backend });
}

/**
 * The m×n matrix Q (m ≥ n, row-major) of A = QR with R's diagonal made positive, by Householder
 * reflections: each step zeroes column k below the diagonal with H = I − 2vvᵀ/vᵀv, and Q is
 * accumulated by applying the reflections in reverse to the first n columns of the identity.
 */
function householderQ(a: Float64Array, m: number, n: number): Float64Array {
  const vs: Float64Array[] = [];
  const signs = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let norm = 0;
    for (let i = k; i < m; i++) norm += a[i * n + k] ** 2;
    norm = Math.sqrt(norm);
    const x0 = a[k * n + k];
    const alpha = x0 >= 0 ? -norm : norm; // R[k][k] = alpha; the sign avoids cancellation
    const v = new Float64Array(m);
    for (let i = k; i < m; i++) v[i] = a[i * n + k];
    v[k] -= alpha;
    const vv = v.reduce((s, x) => s + x * x, 0);
    signs[k] = alpha < 0 ? -1 : 1;
    vs.push(v);
    if (vv === 0) continue;
    // A ← H A on columns k..n−1.
    for (let j = k; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += v[i] * a[i * n + j];
      const f = (2 * dot) / vv;
      for (let i = k; i < m; i++) a[i * n + j] -= f * v[i];
    }
  }
  // Q = H₀ H₁ … H_{n−1} [I; 0], then scale column k by sign(R[k][k]).
  const q = new Float64Array(m * n);
  for (let i = 0; i < n; i++) q[i * n + i] = 1;
  for (let k = n - 1; k >= 0; k--) {
    const v = vs[k];
    const vv = v.reduce((s, x) => s + x * x, 0);
    if (vv === 0) continue;
    for (let j = 0; j < n; j++) {
      let dot = 0;
      for (let i = k; i < m; i++) dot += v[i] * q[i * n + j];
      const f = (2 * dot) / vv;
      for (let i = k; i < m; i++) q[i * n + j] -= f * v[i];
    }
  }
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) q[i * n + j] *= signs[j];
  return q;
}
