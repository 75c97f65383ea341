/**
 * Initialisers: gains and fans as PyTorch computes them, bounds and moments of each distribution,
 * seeding, and orthogonality.
 */
import {
  calculateGain,
  computeFans,
  constant,
  kaimingNormal,
  kaimingUniform,
  normal,
  orthogonal,
  uniform,
  xavierNormal,
  xavierUniform,
} from '@fluxion/nn';
import { Generator, matmul, transpose } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { expectClose, values } from './helpers.js';

const moments = (v: number[]) => {
  const mean = v.reduce((a, b) => a + b, 0) / v.length;
  const variance = v.reduce((a, b) => a + (b - mean) ** 2, 0) / v.length;
  return { mean, std: Math.sqrt(variance), maxAbs: Math.max(...v.map(Math.abs)) };
};

describe('gains and fans', () => {
  it('match PyTorch', () => {
    expect(calculateGain('linear')).toBe(1);
    expect(calculateGain('tanh')).toBeCloseTo(5 / 3);
    expect(calculateGain('relu')).toBeCloseTo(Math.SQRT2);
    expect(calculateGain('leakyRelu', 0.2)).toBeCloseTo(Math.sqrt(2 / 1.04));
    expect(calculateGain('leakyRelu', Math.sqrt(5))).toBeCloseTo(Math.sqrt(1 / 3));
    expect(computeFans([16, 3, 5, 5])).toEqual([75, 400]);
    expect(computeFans([10, 20])).toEqual([20, 10]);
    expect(() => computeFans([5])).toThrow(/init: fans need a shape of rank ≥ 2/);
  });
});

describe('distributions', () => {
  it('xavier and kaiming have the documented bounds and standard deviations', async () => {
    const shape = [200, 300];
    const xu = moments(await values(xavierUniform(shape, { gain: 2, seed: 1 })));
    const bound = 2 * Math.sqrt(6 / 500);
    expect(xu.maxAbs).toBeLessThanOrEqual(bound);
    expect(xu.std).toBeCloseTo(bound / Math.sqrt(3), 2);
    const xn = moments(await values(xavierNormal(shape, { seed: 2 })));
    expect(xn.std).toBeCloseTo(Math.sqrt(2 / 500), 2);
    const ku = moments(await values(kaimingUniform(shape, { nonlinearity: 'relu', seed: 3 })));
    expect(ku.maxAbs).toBeLessThanOrEqual(Math.sqrt(6 / 300));
    expect(ku.std).toBeCloseTo(Math.sqrt(2 / 300), 2);
    const kn = moments(await values(kaimingNormal(shape, { mode: 'fanOut', nonlinearity: 'relu', seed: 4 })));
    expect(kn.std).toBeCloseTo(Math.sqrt(2 / 200), 2);
    expect(Math.abs(kn.mean)).toBeLessThan(0.01);
  });

  it('normal, uniform and constant take their parameters; seeds and generators reproduce', async () => {
    const n = moments(await values(normal([10000], { mean: 3, std: 0.5, seed: 5 })));
    expect(n.mean).toBeCloseTo(3, 1);
    expect(n.std).toBeCloseTo(0.5, 1);
    const u = await values(uniform([1000], { low: -2, high: -1, seed: 6 }));
    expect(u.every((v) => v >= -2 && v < -1)).toBe(true);
    expect(await values(constant([3], 0.25, { dtype: 'float64' }))).toEqual([0.25, 0.25, 0.25]);
    expect(await values(normal([5], { seed: 9 }))).toEqual(await values(normal([5], { seed: 9 })));
    const g = new Generator(9);
    const first = await values(normal([5], { generator: g }));
    expect(first).toEqual(await values(normal([5], { seed: 9 })));
    expect(await values(normal([5], { generator: g }))).not.toEqual(first);
  });

  it('orthogonal gives orthonormal rows or columns, scaled by the gain', async () => {
    const tall = await orthogonal([6, 4], { seed: 1, dtype: 'float64' });
    const eye4 = Array.from({ length: 16 }, (_, i) => (i % 5 === 0 ? 1 : 0));
    await expectClose(matmul(transpose(tall), tall), eye4, { atol: 1e-12 });
    const wide = await orthogonal([3, 2, 2, 2], { seed: 2, gain: 2, dtype: 'float64' });
    expect(wide.shape).toEqual([3, 2, 2, 2]);
    const rows = wide.reshape([3, 8]);
    const eye3 = Array.from({ length: 9 }, (_, i) => (i % 4 === 0 ? 4 : 0));
    await expectClose(matmul(rows, transpose(rows)), eye3, { atol: 1e-12 });
    expect(await values(await orthogonal([4, 4], { seed: 3 }))).toEqual(
      await values(await orthogonal([4, 4], { seed: 3 })),
    );
  });
});
