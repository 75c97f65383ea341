/**
 * The ops of sequence models: `maskedFill`, `causalMask` and `takeAlongAxis` against hand-written
 * loops, with float64 gradchecks; the samplers `multinomial`, `sampleLogits` and `topKLogits`:
 * empirical frequencies against the distribution (a chi-square bound), temperature 0 and → 0 equal
 * to argmax, top-k never leaving the top k (fast-check), determinism for a seed, and input errors.
 * On WebGPU every op equals the CPU: values, gradients and the samples of a seed.
 */
import { gradcheck } from '@fluxion/autograd';
import {
  argmax,
  type BackendName,
  causalMask,
  Generator,
  maskedFill,
  memoryStats,
  multinomial,
  randn,
  sampleLogits,
  scope,
  softmax,
  sum,
  type Tensor,
  takeAlongAxis,
  tensor,
  topKLogits,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { expectAllClose, runs, valuesOf } from './helpers.js';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

const f64 = { dtype: 'float64' } as const;
const ids = (v: number[], shape = [v.length], backend: BackendName = 'cpu') =>
  tensor(v, shape, { dtype: 'int32', backend });

/** Reads and disposes. */
async function read(t: Tensor): Promise<number[]> {
  try {
    return await valuesOf(t);
  } finally {
    t.dispose();
  }
}

/** Row-major strides. */
const stridesOf = (shape: readonly number[]) =>
  shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));

/** takeAlongAxis by hand: loops over every output coordinate. */
function gatherReference(
  x: number[],
  xShape: number[],
  idx: number[],
  idxShape: number[],
  axis: number,
): number[] {
  const outShape = xShape.map((d, i) => (i === axis ? idxShape[i] : Math.max(d, idxShape[i])));
  const xs = stridesOf(xShape);
  const is = stridesOf(idxShape);
  const out: number[] = [];
  const n = outShape.reduce((p, d) => p * d, 1);
  for (let flat = 0; flat < n; flat++) {
    const coord = outShape.map((_, i) => Math.floor(flat / stridesOf(outShape)[i]) % outShape[i]);
    const iOff = coord.reduce((s, c, i) => s + (idxShape[i] === 1 ? 0 : c) * is[i], 0);
    const src = coord.map((c, i) => (i === axis ? idx[iOff] : xShape[i] === 1 ? 0 : c));
    out.push(x[src.reduce((s, c, i) => s + c * xs[i], 0)]);
  }
  return out;
}

/** Σ (observed − expected)² / expected over the classes with positive probability. */
function chiSquare(counts: number[], probs: number[], n: number): number {
  return probs.reduce((s, p, j) => (p > 0 ? s + (counts[j] - n * p) ** 2 / (n * p) : s), 0);
}

/** The 99.9 % quantile of χ² with `df` degrees of freedom (Wilson–Hilferty). */
function chiSquareBound(df: number): number {
  const z = 3.09;
  return df * (1 - 2 / (9 * df) + z * Math.sqrt(2 / (9 * df))) ** 3;
}

describe('maskedFill and causalMask', () => {
  test('causalMask is true above the diagonal', async () => {
    expect(await read(causalMask(3))).toEqual([0, 1, 1, 0, 0, 1, 0, 0, 0]);
    expect(causalMask(0).shape).toEqual([0, 0]);
    expect(() => causalMask(-1)).toThrow(/^causalMask: length must be a non-negative integer/);
  });

  test('fills where the broadcast mask is true, keeps x elsewhere', async () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const row = tensor([true, false, true], [3], { dtype: 'bool' });
    expect(await read(maskedFill(x, row, -1))).toEqual([-1, 2, -1, -1, 5, -1]);
    const y = await read(maskedFill(x, causalMask(3).slice([0, 2]), Number.NEGATIVE_INFINITY));
    expect(y).toEqual([1, -Infinity, -Infinity, 4, 5, -Infinity]);
  });

  test('errors name the op, shapes and dtypes', () => {
    const x = tensor([1, 2, 3]);
    expect(() => maskedFill(x, tensor([1, 0, 1]), 0)).toThrow(
      /^maskedFill: mask must be bool, got float32 \[3\] for x \[3\] float32/,
    );
    const wide = tensor([true, false, true, true], [2, 2], { dtype: 'bool' });
    expect(() => maskedFill(tensor([1, 2]), wide, 0)).toThrow(
      /^maskedFill: mask \[2,2\] does not broadcast to x \[2\] float32/,
    );
  });

  test('gradcheck (float64): no gradient reaches the filled entries, even with −∞', async () => {
    const mask = causalMask(4);
    const x = randn([2, 4, 4], { ...f64, seed: 1 });
    await gradcheck((xx) => softmax(maskedFill(xx, mask, Number.NEGATIVE_INFINITY), -1), [x]);
    await gradcheck((xx) => maskedFill(xx, mask, 2.5), [x]);
  });
});

describe('takeAlongAxis', () => {
  test('equals a hand-written gather on every axis, with broadcasting', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 3 }),
        fc.nat(),
        fc.integer({ min: 1, max: 5 }),
        fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }),
        fc.nat(),
        async (xShape, axisSeed, m, ones, seed) => {
          const axis = axisSeed % xShape.length;
          const idxShape = xShape.map((d, i) => (i === axis ? m : ones[i] ? 1 : d));
          const xData = Array.from({ length: xShape.reduce((p, d) => p * d, 1) }, (_, i) => i * 10 + 1);
          const n = idxShape.reduce((p, d) => p * d, 1);
          const idxData = Array.from({ length: n }, (_, i) => (i * 7 + seed) % xShape[axis]);
          const out = takeAlongAxis(tensor(xData, xShape), ids(idxData, idxShape), axis - xShape.length);
          const want = gatherReference(xData, xShape, idxData, idxShape, axis);
          expect(await read(out)).toEqual(want);
        },
      ),
      runs(40),
    );
  });

  test('the log-probability of each target, as a loss reads it', async () => {
    const logp = tensor([
      [0.1, 0.2, 0.3],
      [0.4, 0.5, 0.6],
    ]);
    expect(await read(takeAlongAxis(logp, ids([2, 0], [2, 1]), -1))).toEqual([
      expect.closeTo(0.3),
      expect.closeTo(0.4),
    ]);
  });

  test('gradcheck (float64), repeated indices accumulate', async () => {
    const x = randn([3, 4, 2], { ...f64, seed: 2 });
    const idx = ids([0, 0, 3, 1, 1, 1, 2, 3, 0, 3, 3, 2], [3, 2, 2]);
    await gradcheck((xx) => takeAlongAxis(xx, idx, 1), [x]);
    await gradcheck((xx) => takeAlongAxis(xx, ids([1, 0, 1], [3, 1, 1]), 2), [x]);
  });

  test('errors: dtype, rank, shapes, an index out of range of the axis', () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(() => takeAlongAxis(x, tensor([[0]]), 1)).toThrow(/^takeAlongAxis: indices must be int32/);
    expect(() => takeAlongAxis(x, ids([0]), 1)).toThrow(/^takeAlongAxis: x and indices need the same rank/);
    expect(() => takeAlongAxis(x, ids([0, 0, 0], [3, 1]), 1)).toThrow(
      /^takeAlongAxis: axis 0 differs and neither is 1: x \[2,3\] float32, indices \[3,1\] int32/,
    );
    // 3 is inside the flat storage (6 elements) but not inside axis 1: still an error.
    expect(() => takeAlongAxis(x, ids([3, 0], [2, 1]), 1)).toThrow(
      /^takeAlongAxis: index 3 is out of range for axis 1 of x \[2,3\]; valid: \[0, 3\)/,
    );
  });
});

describe('multinomial', () => {
  test('frequencies of 20,000 draws per row match the weights (chi-square, p = 0.001)', async () => {
    const w = [
      [0.1, 0.2, 0.3, 0.4, 0, 0],
      [1, 1, 1, 1, 1, 1],
      [5, 0, 0, 0, 0, 1e-2],
      [0.05, 0.5, 0.05, 0.15, 0.15, 0.1],
    ];
    const n = 20_000;
    for (const dtype of ['float32', 'float64'] as const) {
      const samples = await read(multinomial(tensor(w, { dtype }), { numSamples: n, seed: 11 }));
      w.forEach((row, r) => {
        const total = row.reduce((a, b) => a + b, 0);
        const probs = row.map((v) => v / total);
        const counts = row.map(() => 0);
        for (const s of samples.slice(r * n, (r + 1) * n)) counts[s]++;
        probs.forEach((p, j) => {
          if (p === 0) expect(counts[j], `row ${r} drew class ${j} of weight 0`).toBe(0);
        });
        const df = probs.filter((p) => p > 0).length - 1;
        expect(chiSquare(counts, probs, n), `row ${r} (${dtype})`).toBeLessThan(chiSquareBound(df));
      });
    }
  });

  test('shapes, one class, determinism for a seed and a generator stream', async () => {
    const w = softmax(randn([2, 3, 5], { seed: 3 }), -1);
    const a = multinomial(w, { numSamples: 4, seed: 5 });
    expect(a.shape).toEqual([2, 3, 4]);
    expect(a.dtype).toBe('int32');
    expect(await read(multinomial(w, { numSamples: 4, seed: 5 }))).toEqual(await read(a));
    const g1 = new Generator(9);
    const g2 = new Generator(9);
    const first = await read(multinomial(w, { generator: g1 }));
    expect(g1.offset).toBe(6);
    expect(await read(multinomial(w, { generator: g2 }))).toEqual(first);
    expect(await read(multinomial(tensor([[3], [1]]), { numSamples: 3, seed: 0 }))).toEqual([
      0, 0, 0, 0, 0, 0,
    ]);
  });

  test('rows that are not distributions and bad options are FluxionErrors', () => {
    const bad =
      /^multinomial: count of rows that are not distributions 1 is out of range for weights \[2,2\] float32/;
    for (const row of [
      [0, 0],
      [-0.1, 1],
      [Number.NaN, 1],
      [Number.POSITIVE_INFINITY, 1],
    ]) {
      expect(() => multinomial(tensor([row, [1, 1]]))).toThrow(bad);
    }
    expect(() => multinomial(tensor([1, 2]), { numSamples: 0 })).toThrow(
      /^multinomial: numSamples must be a positive integer, got 0/,
    );
    expect(() => multinomial(ids([1, 2]))).toThrow(
      /^multinomial: weights must be a float tensor \[\.\.\., classes\] with at least one class, got \[2\] int32/,
    );
  });
});

describe('sampleLogits and topKLogits', () => {
  test('temperature 0 is argmax (first maximum on ties); temperature → 0 tends to it', async () => {
    const logits = randn([64, 17], { seed: 4 });
    const best = await read(argmax(logits, -1));
    expect(await read(sampleLogits(logits, { temperature: 0 }))).toEqual(best);
    for (const temperature of [1e-30, 1e-6]) {
      expect(await read(sampleLogits(logits, { temperature, seed: 1 }))).toEqual(best);
    }
    expect(await read(sampleLogits(tensor([[1, 3, 3, 2]]), { temperature: 0 }))).toEqual([1]);
  });

  test('frequencies follow softmax(logits / T) over the top k (chi-square, p = 0.001)', async () => {
    const logits = [0.5, -1, 2, 0, 1.5, -3, 1];
    const n = 20_000;
    const rows = tensor(Array(n).fill(logits), { dtype: 'float64' });
    const cases: [number, number | undefined][] = [
      [1, undefined],
      [0.7, 3],
      [2, 5],
    ];
    for (const [temperature, topK] of cases) {
      const samples = await read(sampleLogits(rows, { temperature, topK, seed: 2 }));
      const order = [...logits].sort((a, b) => b - a);
      const kept = logits.map((v) => topK === undefined || v >= order[topK - 1]);
      const e = logits.map((v, j) => (kept[j] ? Math.exp(v / temperature) : 0));
      const total = e.reduce((a, b) => a + b, 0);
      const probs = e.map((v) => v / total);
      const counts = logits.map(() => 0);
      for (const s of samples) counts[s]++;
      probs.forEach((p, j) => {
        if (p === 0) expect(counts[j]).toBe(0);
      });
      expect(chiSquare(counts, probs, n), `T ${temperature}, k ${topK}`).toBeLessThan(
        chiSquareBound(kept.filter(Boolean).length - 1),
      );
    }
  });

  test('top-k never yields a token outside the k largest logits', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(fc.integer({ min: -40, max: 40 }), { minLength: 2, maxLength: 12 }),
        fc.nat(),
        fc.nat(),
        async (raw, kSeed, seed) => {
          const values = raw.map((v) => v / 8);
          const k = 1 + (kSeed % values.length);
          const rows = tensor(Array(200).fill(values));
          const samples = await read(sampleLogits(rows, { topK: k, temperature: 3, seed }));
          const threshold = [...values].sort((a, b) => b - a)[k - 1];
          expect(samples.every((s) => values[s] >= threshold)).toBe(true);
        },
      ),
      runs(25),
    );
  });

  test('topKLogits keeps ties at the k-th value', async () => {
    const y = await read(topKLogits(tensor([1, 3, 2, 3, 2]), 2));
    expect(y).toEqual([-Infinity, 3, -Infinity, 3, -Infinity]);
    expect(await read(topKLogits(tensor([1, 3, 2, 3, 2]), 3))).toEqual([-Infinity, 3, 2, 3, 2]);
  });

  test('determinism for a seed; shapes; −∞ logits are never drawn', async () => {
    const logits = randn([3, 4, 9], { seed: 8 });
    const a = await read(sampleLogits(logits, { seed: 3, temperature: 0.9, topK: 4 }));
    expect(await read(sampleLogits(logits, { seed: 3, temperature: 0.9, topK: 4 }))).toEqual(a);
    expect(sampleLogits(logits, { seed: 3 }).shape).toEqual([3, 4]);
    const masked = [Number.NEGATIVE_INFINITY, 0, Number.NEGATIVE_INFINITY, 0];
    const draws = await read(sampleLogits(tensor(Array(500).fill(masked)), { seed: 1 }));
    expect(draws.every((s) => s === 1 || s === 3)).toBe(true);
  });

  test('bad temperature, top-k and logits are FluxionErrors', () => {
    const logits = tensor([[1, 2, 3]]);
    for (const temperature of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => sampleLogits(logits, { temperature })).toThrow(
        /^sampleLogits: temperature must be a finite number ≥ 0/,
      );
    }
    for (const topK of [0, 4, 1.5]) {
      expect(() => sampleLogits(logits, { topK })).toThrow(
        /^sampleLogits: topK must be an integer in \[1, 3\] for logits \[1,3\] float32/,
      );
    }
    expect(() => topKLogits(logits, 0)).toThrow(/^topKLogits: topK must be an integer in \[1, 3\]/);
    const invalid =
      /^sampleLogits: count of rows that are not valid logits 1 is out of range for logits \[2,2\]/;
    const inf = Number.POSITIVE_INFINITY;
    for (const row of [
      [Number.NaN, 0],
      [inf, 0],
      [-inf, -inf],
    ]) {
      expect(() => sampleLogits(tensor([row, [0, 0]]))).toThrow(invalid);
    }
    expect(() => sampleLogits(ids([1, 2]))).toThrow(/^sampleLogits: logits must be a float tensor/);
  });
});

describe.skipIf(!gpu.backend)(`sequence ops on WebGPU equal the CPU${skipNote(gpu)}`, () => {
  const TOL = { atol: 1e-5, rtol: 1e-4 };

  /** Value and gradient of Σ w·f(x) on a backend. */
  async function valueAndGrad(
    f: (x: Tensor, backend: BackendName) => Tensor,
    xData: number[],
    shape: number[],
    backend: BackendName,
  ) {
    const x = tensor(xData, shape, { backend });
    x.requiresGrad = true;
    const y = f(x, backend);
    const w = tensor(
      Array.from({ length: y.size }, (_, i) => ((i * 7) % 11) / 4 - 1),
      y.shape,
      { backend },
    );
    const loss = scope(() => sum(y.mul(w)));
    loss.backward();
    const out = { y: await valuesOf(y), grad: await valuesOf(x.grad!) };
    for (const t of [x, y, w, loss]) t.dispose();
    return out;
  }

  test('maskedFill before softmax and takeAlongAxis: values and gradients', async () => {
    const data = Array.from({ length: 2 * 5 * 5 }, (_, i) => Math.sin(i * 1.3));
    const fns: ((x: Tensor, b: BackendName) => Tensor)[] = [
      (x, b) => softmax(maskedFill(x, causalMask(5, { backend: b }), Number.NEGATIVE_INFINITY), -1),
      (x, b) => takeAlongAxis(x, ids([4, 0, 4, 2, 1, 3, 0, 0, 2, 2], [2, 5, 1], b), -1),
      (x, b) => takeAlongAxis(x, ids([1, 1, 0, 4, 3], [1, 1, 5], b), 1),
    ];
    for (const f of fns) {
      const cpu = await valueAndGrad(f, data, [2, 5, 5], 'cpu');
      const onGpu = await valueAndGrad(f, data, [2, 5, 5], 'webgpu');
      await expectAllClose(onGpu.y, cpu.y, TOL);
      await expectAllClose(onGpu.grad, cpu.grad, TOL);
    }
  });

  test('the samples of a seed are the CPU samples', async () => {
    const logitsData = Array.from({ length: 8 * 13 }, (_, i) => Math.cos(i * 0.7) * 2);
    for (const options of [{ seed: 4 }, { seed: 5, temperature: 0.5, topK: 4 }, { temperature: 0 }]) {
      const draw = (backend: BackendName) =>
        read(sampleLogits(tensor(logitsData, [8, 13], { backend }), options));
      expect(await draw('webgpu')).toEqual(await draw('cpu'));
    }
    const weights = (backend: BackendName) => softmax(tensor(logitsData, [8, 13], { backend }), -1);
    const many = (backend: BackendName) => read(multinomial(weights(backend), { numSamples: 200, seed: 6 }));
    const cpu = await many('cpu');
    const onGpu = await many('webgpu');
    // A uniform within a float32 rounding of a class boundary may fall on either side of it.
    expect(onGpu.filter((s, i) => s !== cpu[i]).length).toBeLessThanOrEqual(1);
  });

  test('sampling leaves no GPU buffer behind', async () => {
    const buffers = () => memoryStats().backends.webgpu?.buffers ?? 0;
    const logits = randn([4, 9], { seed: 1, backend: 'webgpu' });
    const weights = softmax(logits, -1);
    const draw = () => [
      sampleLogits(logits, { seed: 1, temperature: 0.7, topK: 3 }),
      multinomial(weights, { numSamples: 5, seed: 2 }),
    ];
    for (const t of draw()) await read(t); // the first run makes the scalar constants
    const before = buffers();
    for (const t of draw()) await read(t);
    expect(buffers()).toBe(before);
    logits.dispose();
    weights.dispose();
  });

  test('a row that is not a distribution raises at the next read', async () => {
    const w = tensor(
      [
        [1, 1],
        [0, 0],
      ],
      { backend: 'webgpu' },
    );
    const out = multinomial(w, { seed: 0 });
    await expect(out.data()).rejects.toThrow(/^multinomial: count of rows that are not distributions 1/);
    out.dispose();
    w.dispose();
  });
});
