/**
 * Metrics: the Fréchet distance against closed forms (identical sets, shifted means, 1-D and 2-D
 * Gaussians), the Jacobi eigensolver, the shipped classifier's test accuracy, classifier-FID of
 * real against noise, and conditional accuracy with stand-in models that return real digits.
 */
import { Generator, memoryStats, rand, randn, setBackend, type Tensor, tensor } from '@fluxion/tensor';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ImageDataset, loadMnist, splitDataset } from '../src/data/dataset.js';
import {
  classifierAssetPath,
  classifierFid,
  conditionalAccuracy,
  DEFAULT_CLASSIFIER,
  featureFrechetDistance,
  fidBaselines,
  fitGaussian,
  frechetDistance,
  type GaussianFit,
  loadMnistClassifier,
  type MnistClassifier,
  sqrtPsd,
  symmetricEigen,
} from '../src/metrics/index.js';

/** `rows × dim` standard normal values, as float64, from a seed. */
async function gaussianRows(rows: number, dim: number, seed: number): Promise<Float64Array> {
  const t = randn([rows, dim], { generator: new Generator(seed), dtype: 'float64' });
  const data = Float64Array.from(await t.data());
  t.dispose();
  return data;
}

/** A·B for n × n row-major matrices. */
function product(a: ArrayLike<number>, b: ArrayLike<number>, n: number): Float64Array {
  const out = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) out[i * n + j] += a[i * n + k] * b[k * n + j];
  return out;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** A symmetric n × n matrix B + Bᵀ from a seed (PSD as B·Bᵀ when `psd`). */
async function symmetricMatrix(n: number, seed: number, psd = false): Promise<Float64Array> {
  const b = await gaussianRows(n, n, seed);
  if (psd) {
    const bt = Float64Array.from({ length: n * n }, (_, i) => b[(i % n) * n + Math.floor(i / n)]);
    return product(b, bt, n);
  }
  return Float64Array.from({ length: n * n }, (_, i) => b[i] + b[(i % n) * n + Math.floor(i / n)]);
}

beforeAll(() => setBackend('cpu'));

describe('fitGaussian', () => {
  it('gives the mean and the unbiased covariance', () => {
    const fit = fitGaussian([0, 0, 2, 2, 1, 4], 2);
    expect(fit.count).toBe(3);
    expect(Array.from(fit.mean)).toEqual([1, 2]);
    expect(Array.from(fit.covariance)).toEqual([1, 1, 1, 4]); // centred: (−1, −2), (1, 0), (0, 2)
  });

  it('rejects ragged data, a single vector and non-finite values', () => {
    expect(() => fitGaussian([1, 2, 3], 2)).toThrow(/not a whole number of 2-d vectors/);
    expect(() => fitGaussian([1, 2], 2)).toThrow(/at least 2 vectors/);
    expect(() => fitGaussian([1, Number.NaN, 3, 4], 2)).toThrow(/NaN or infinite/);
  });
});

describe('symmetricEigen (Jacobi)', () => {
  it('reconstructs a random symmetric matrix with orthonormal eigenvectors', async () => {
    const n = 12;
    const a = await symmetricMatrix(n, 1);
    const { values, vectors } = symmetricEigen(a, n);
    const scaled = Float64Array.from(vectors, (v, i) => v * values[i % n]);
    const vt = Float64Array.from({ length: n * n }, (_, i) => vectors[(i % n) * n + Math.floor(i / n)]);
    expect(maxAbsDiff(product(scaled, vt, n), a)).toBeLessThan(1e-12);
    const identity = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    expect(maxAbsDiff(product(vt, vectors, n), identity)).toBeLessThan(1e-13);
  });

  it('matches small closed forms, including diagonal and repeated eigenvalues', () => {
    const two = Array.from(symmetricEigen([2, 1, 1, 2], 2).values).sort((x, y) => x - y);
    expect(two[0]).toBeCloseTo(1, 14);
    expect(two[1]).toBeCloseTo(3, 14);
    expect(Array.from(symmetricEigen([5, 0, 0, 0, -1, 0, 0, 0, 5], 3).values)).toEqual([5, -1, 5]);
    expect(Array.from(symmetricEigen(new Float64Array(16), 4).values)).toEqual([0, 0, 0, 0]);
    expect(() => symmetricEigen([1, 2, 3], 2)).toThrow(/expected 2×2/);
  });

  it('gives the square root of a PSD matrix', async () => {
    expect(Array.from(sqrtPsd([4, 0, 0, 9], 2))).toEqual([2, 0, 0, 3]);
    const n = 10;
    const a = await symmetricMatrix(n, 2, true);
    const root = sqrtPsd(a, n);
    expect(maxAbsDiff(product(root, root, n), a)).toBeLessThan(1e-10);
  });
});

describe('frechetDistance', () => {
  it('is 0 for identical feature sets, even with a constant (dead) feature', async () => {
    const dim = 16;
    const x = await gaussianRows(500, dim, 3);
    for (let i = 0; i < 500; i++) x[i * dim + 5] = 0.25;
    expect(featureFrechetDistance(x, x, dim)).toBeLessThan(1e-9);
  });

  it('is ‖Δμ‖² between a set and its shifted copy', async () => {
    const dim = 8;
    const x = await gaussianRows(300, dim, 4);
    const shift = [1, -2, 0.5, 0, 3, 0, 0, -1];
    const y = Float64Array.from(x, (v, i) => v + shift[i % dim]);
    const expected = shift.reduce((s, v) => s + v * v, 0);
    expect(featureFrechetDistance(x, y, dim)).toBeCloseTo(expected, 9);
  });

  it('is (μ₁ − μ₂)² + (σ₁ − σ₂)² in one dimension', () => {
    const fit = (mean: number, variance: number): GaussianFit => ({
      dim: 1,
      count: 2,
      mean: Float64Array.of(mean),
      covariance: Float64Array.of(variance),
    });
    expect(frechetDistance(fit(1, 4), fit(-2, 9))).toBeCloseTo(3 ** 2 + (2 - 3) ** 2, 12);
    const a = [1, 2, 4, 7];
    const b = [0, 10, 20];
    const std = (v: number[]) => {
      const m = v.reduce((s, x) => s + x, 0) / v.length;
      return [m, Math.sqrt(v.reduce((s, x) => s + (x - m) ** 2, 0) / (v.length - 1))];
    };
    const [ma, sa] = std(a);
    const [mb, sb] = std(b);
    expect(featureFrechetDistance(a, b, 1)).toBeCloseTo((ma - mb) ** 2 + (sa - sb) ** 2, 10);
  });

  it('matches the 2-D closed form for non-commuting covariances, and is symmetric', () => {
    // For 2×2 PSD M, tr √M = √(tr M + 2√det M); with M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}:
    // tr M = tr(Σ₁Σ₂), det M = det Σ₁ · det Σ₂.
    const s1 = [2, 0.8, 0.8, 1];
    const s2 = [1, -0.6, -0.6, 3];
    const g1: GaussianFit = {
      dim: 2,
      count: 2,
      mean: Float64Array.of(0, 1),
      covariance: Float64Array.from(s1),
    };
    const g2: GaussianFit = {
      dim: 2,
      count: 2,
      mean: Float64Array.of(1, -1),
      covariance: Float64Array.from(s2),
    };
    const trProduct = s1[0] * s2[0] + s1[1] * s2[2] + s1[2] * s2[1] + s1[3] * s2[3];
    const det = (s: number[]) => s[0] * s[3] - s[1] * s[2];
    const trRoot = Math.sqrt(trProduct + 2 * Math.sqrt(det(s1) * det(s2)));
    const expected = 1 + 4 + s1[0] + s1[3] + s2[0] + s2[3] - 2 * trRoot;
    expect(frechetDistance(g1, g2)).toBeCloseTo(expected, 12);
    expect(frechetDistance(g2, g1)).toBeCloseTo(expected, 12);
  });

  it('is symmetric and positive between random correlated sets', async () => {
    const dim = 16;
    const x = await gaussianRows(400, dim, 5);
    const y = Float64Array.from(
      await gaussianRows(400, dim, 6),
      (v, i) => v * (1 + (i % dim) / 8) + x[i] * 0.5,
    );
    const d = featureFrechetDistance(x, y, dim);
    expect(d).toBeGreaterThan(1);
    expect(featureFrechetDistance(y, x, dim)).toBeCloseTo(d, 9);
    expect(() => frechetDistance(fitGaussian(x, dim), fitGaussian(x, 8))).toThrow(/dimensions 16 and 8/);
  });
});

describe('the shipped MNIST classifier', () => {
  let classifier: MnistClassifier;
  let train: ImageDataset;
  let test: ImageDataset;

  beforeAll(() => {
    ({ train, test } = splitDataset(loadMnist(), 1000));
    classifier = loadMnistClassifier();
  });
  afterAll(() => classifier.dispose());

  it('is found in the package assets and describes itself', () => {
    expect(classifierAssetPath()).toMatch(
      /packages[/\\]models[/\\]assets[/\\]mnist-classifier\.safetensors$/,
    );
    expect(classifier.architecture).toEqual(DEFAULT_CLASSIFIER);
    expect(classifier.parameterCount()).toBe(784 * 64 + 64 + 64 * 64 + 64 + 64 * 10 + 10);
    expect(classifier.metadata.seed).toBe('0');
    expect(classifier.metadata.format).toBe('fluxion-mnist-classifier/1');
  });

  it('classifies at least 95% of the 1,000 test digits, as its metadata records', async () => {
    const accuracy = await classifier.accuracy(test.images, test.labels);
    expect(accuracy).toBeGreaterThanOrEqual(0.95);
    expect(accuracy).toBeCloseTo(Number(classifier.metadata.testAccuracy), 4);
  });

  it('gives 64 non-negative features and int32 predictions, the same for arrays, tensors and any batch size', async () => {
    const rows = 37;
    const pixels = test.images.subarray(0, rows * 784);
    const x = tensor(pixels, [rows, 784]);
    const features = classifier.features(x);
    const predicted = classifier.predict(x);
    expect(features.shape).toEqual([rows, 64]);
    expect([predicted.dtype, ...predicted.shape]).toEqual(['int32', rows]);
    const fromTensor = await features.data();
    expect(Math.min(...fromTensor)).toBeGreaterThanOrEqual(0);
    expect(await classifier.extractFeatures(pixels, 10)).toEqual(fromTensor);
    expect(await classifier.classify(pixels, 5)).toEqual(await predicted.data());
    for (const t of [x, features, predicted]) t.dispose();
    await expect(classifier.extractFeatures(new Float32Array(100))).rejects.toThrow(
      /not a whole number of 784-pixel images/,
    );
  });

  it('rejects a missing weights file clearly', () => {
    expect(() => loadMnistClassifier({ path: '/no/such/classifier.safetensors' })).toThrow(/cannot read/);
  });

  it('puts real digits close to real digits and noise far away (classifier-FID)', async () => {
    const before = memoryStats().liveTensors;
    const realSubset = await classifierFid(test.images.subarray(0, 500 * 784), test.images);
    const noise = rand([1000, 784], { generator: new Generator(1) });
    const noiseVsReal = await classifierFid(noise, test.images, { classifier });
    noise.dispose();
    expect(memoryStats().liveTensors).toBe(before);
    expect(realSubset).toBeLessThan(3);
    expect(noiseVsReal).toBeGreaterThan(300);
    const baselines = await fidBaselines({ classifier, train, test });
    expect(baselines.count).toBe(1000);
    expect(baselines.realVsReal).toBeLessThan(6);
    expect(baselines.noiseVsReal).toBeGreaterThan(100 * baselines.realVsReal);
  });

  /** A stand-in conditional model that returns real test digits of the requested class (shifted by `offset`). */
  function digitsOf(offset: number, calls: number[][] = []) {
    const byClass: number[][] = Array.from({ length: 10 }, () => []);
    for (let i = 0; i < test.count; i++) byClass[test.labels[i]].push(i);
    return {
      conditional: true,
      sample(n: number, options: { labels?: readonly number[] } = {}): Tensor {
        const labels = options.labels ?? [];
        calls.push([...labels]);
        const out = new Float32Array(n * 784);
        labels.forEach((l, i) => {
          const pool = byClass[(l + offset) % 10];
          const src = pool[i % pool.length];
          out.set(test.images.subarray(src * 784, (src + 1) * 784), i * 784);
        });
        return tensor(out, [n, 784]);
      },
    };
  }

  it('measures conditional accuracy: high for the right digits, near zero for wrong ones', async () => {
    const calls: number[][] = [];
    const right = await conditionalAccuracy(digitsOf(0, calls), 250, { classifier, batchSize: 100 });
    expect(right).toBeGreaterThanOrEqual(0.93);
    expect(calls.map((c) => c.length)).toEqual([100, 100, 50]);
    expect(calls[1].slice(0, 3)).toEqual([0, 1, 2]);
    expect(calls[2].at(-1)).toBe(249 % 10);
    const wrong = await conditionalAccuracy(digitsOf(1), 200, { classifier });
    expect(wrong).toBeLessThan(0.1);
    await expect(
      conditionalAccuracy({ ...digitsOf(0), conditional: false }, 10, { classifier }),
    ).rejects.toThrow(/not conditional/);
  });
});
