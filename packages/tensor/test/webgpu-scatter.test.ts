/**
 * The WebGPU `scatterAdd` (the adjoint of `take`, see `backends/webgpu/scatter.ts`) against the
 * CPU float64 reference on both of its algorithms (the direct kernel for tiny cases, the stable
 * radix sort by index otherwise): random shapes and axes, duplicate-heavy and empty index lists,
 * strided views of both operands, int32, `take` gradients; the sorted path's sums are the float32
 * sums in index order bit for bit, every run; out-of-range indices are still reported (the first
 * one in index order, as on the CPU), and the scan behind the sort is checked over three levels.
 */
import { grad } from '@fluxion/autograd';
import {
  type BackendName,
  FluxionError,
  mul,
  scatterAdd,
  slice,
  sum,
  type Tensor,
  take,
  tensor,
  transpose,
  type WebGPUBackend,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import {
  DIRECT_SCATTER_WORK,
  radixPlan,
  scanInPlace,
  usesSortedScatter,
} from '../src/backends/webgpu/scatter.js';
import { expectAllClose } from './helpers.js';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();
const W: BackendName = 'webgpu';

/** A seeded generator of floats in [-1, 1) and integers in [0, n). */
function prng(seed: number) {
  let s = seed >>> 0;
  const next = () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
  return { float: () => next() * 2 - 1, int: (n: number) => Math.floor(next() * n) };
}

const sizeOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Float32 values (exactly representable, no subnormals) and int32 ids. */
function floats(shape: number[], seed: number): Float32Array {
  const r = prng(seed);
  return Float32Array.from({ length: sizeOf(shape) }, () => r.float());
}
function idsOf(count: number, size: number, seed: number): Int32Array {
  const r = prng(seed);
  return Int32Array.from({ length: count }, () => r.int(size));
}

/** scatterAdd on WebGPU against the CPU float64 reference (and int32 exactly). */
async function checkAgainstCpu(
  srcShape: number[],
  idxShape: number[],
  axis: number,
  size: number,
  idx: Int32Array,
  dtype: 'float32' | 'int32' = 'float32',
): Promise<void> {
  const values = floats(srcShape, srcShape.length + size);
  const data = dtype === 'int32' ? Int32Array.from(values, (v) => Math.round(v * 1000)) : values;
  const expected = scatterAdd(
    tensor(data, srcShape, { dtype: dtype === 'int32' ? 'int32' : 'float64' }),
    tensor(idx, idxShape, { dtype: 'int32' }),
    axis,
    size,
  );
  const actual = scatterAdd(
    tensor(data, srcShape, { dtype, backend: W }),
    tensor(idx, idxShape, { dtype: 'int32', backend: W }),
    axis,
    size,
  );
  expect(actual.shape).toEqual(expected.shape);
  expect(actual.dtype).toBe(dtype);
  if (dtype === 'int32') expect(Array.from(await actual.data())).toEqual(Array.from(await expected.data()));
  else await expectAllClose(actual, expected, { atol: 1e-4, rtol: 1e-4 });
  actual.dispose();
  expected.dispose();
}

/** The float32 sum of `rows` source rows per slot, added in index order (what the kernels add). */
function sequentialSums(src: Float32Array, idx: Int32Array, size: number, row: number): Float32Array {
  const out = new Float32Array(size * row);
  for (let i = 0; i < idx.length; i++)
    for (let q = 0; q < row; q++)
      out[idx[i] * row + q] = Math.fround(out[idx[i] * row + q] + src[i * row + q]);
  return out;
}

/** Asserts that `promise` rejects with a FluxionError of `op` whose message matches `pattern`. */
async function expectRejects(promise: Promise<unknown>, op: string, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected ${op} to raise`).toBeInstanceOf(FluxionError);
  expect((error as FluxionError).op).toBe(op);
  expect((error as FluxionError).message).toMatch(pattern);
}

describe('the scatterAdd path rule', () => {
  it('tiny cases take the direct kernel, the rest the sort; the radix plan keeps its table O(N)', () => {
    expect(usesSortedScatter(10, 64)).toBe(false);
    expect(usesSortedScatter(65 * 128, 64 * 64)).toBe(true);
    expect(usesSortedScatter(100_000, 0)).toBe(false);
    expect(usesSortedScatter(0, 100_000)).toBe(false);
    expect(usesSortedScatter(DIRECT_SCATTER_WORK, 1)).toBe(false);
    expect(usesSortedScatter(DIRECT_SCATTER_WORK + 1, 1)).toBe(true);
    expect(radixPlan(65, 4096)).toEqual({ bits: 7, passes: 1 });
    for (const [size, n] of [
      [1, 1],
      [100_000, 100_000],
      [2 ** 20, 2 ** 20],
      [2 ** 31 - 1, 10],
    ]) {
      const { bits, passes } = radixPlan(size, n);
      expect(bits * passes).toBeGreaterThanOrEqual(Math.ceil(Math.log2(size + 1)));
      expect(Math.ceil(n / 128) * 2 ** bits).toBeLessThanOrEqual(Math.max(2 * n, 2 ** 16));
    }
  });
});

describe.skipIf(!gpu.backend)(`scatterAdd on WebGPU: direct and sorted paths${skipNote(gpu)}`, () => {
  it('random shapes, axes and index ranks match the CPU reference on both paths', async () => {
    const r = prng(7);
    let sorted = 0;
    for (let trial = 0; trial < 24; trial++) {
      const pre = Array.from({ length: r.int(3) }, () => 1 + r.int(4));
      const idxShape = Array.from({ length: 1 + r.int(2) }, () => 1 + r.int(trial < 12 ? 8 : 60));
      const post = Array.from({ length: r.int(3) }, () => 1 + r.int(5));
      const size = 1 + r.int(trial % 3 === 0 ? 3 : 300);
      const n = sizeOf(idxShape);
      if (usesSortedScatter(sizeOf(pre) * size * sizeOf(post), n)) sorted++;
      await checkAgainstCpu(
        [...pre, ...idxShape, ...post],
        idxShape,
        pre.length,
        size,
        idsOf(n, size, trial),
      );
    }
    expect(sorted).toBeGreaterThan(4);
    expect(sorted).toBeLessThan(22);
  });

  it('int32 sums are exact, on both paths', async () => {
    await checkAgainstCpu([2, 6, 3], [6], 1, 4, idsOf(6, 4, 1), 'int32');
    await checkAgainstCpu([3000, 5], [3000], 0, 40, idsOf(3000, 40, 2), 'int32');
  });

  it('duplicate-heavy indices: every index the same, and two slots of many', async () => {
    const n = 5000;
    await checkAgainstCpu([n, 3], [n], 0, 7, new Int32Array(n).fill(6));
    await checkAgainstCpu(
      [2, n],
      [n],
      1,
      300,
      Int32Array.from({ length: n }, (_, i) => (i % 2 ? 0 : 299)),
    );
  });

  it('empty index lists and empty rows give zeros; a sparse scatter leaves untouched slots at 0', async () => {
    await checkAgainstCpu([0, 4], [0], 0, 50_000, new Int32Array(0));
    await checkAgainstCpu([3, 0], [3, 0], 0, 70_000, new Int32Array(0));
    await checkAgainstCpu([5, 0], [5], 0, 70_000, idsOf(5, 70_000, 3));
    await checkAgainstCpu([10], [10], 0, 200_000, idsOf(10, 200_000, 4));
  });

  it('multi-pass radix sorts: 100k indices into 100k slots, and a slot count on a bit boundary', async () => {
    expect(radixPlan(100_000, 100_000).passes).toBeGreaterThan(1);
    await checkAgainstCpu([100_000], [100_000], 0, 100_000, idsOf(100_000, 100_000, 5));
    await checkAgainstCpu([4096, 2], [4096], 0, 4096, idsOf(4096, 4096, 6));
    await checkAgainstCpu([4096, 2], [4096], 0, 4095, idsOf(4096, 4095, 7));
  });

  it('strided views: a transposed source with an offset and a strided index view', async () => {
    const [n, row, size] = [600, 9, 37];
    const src = floats([row + 1, n], 8);
    const idx = idsOf(2 * n, size, 9);
    const run = (backend: BackendName, dtype: 'float32' | 'float64') => {
      // [n, row] with strides [1, n] and offset n; [n] with stride 2 and offset 1.
      const s = slice(transpose(tensor(src, [row + 1, n], { dtype, backend })), null, [1, row + 1]);
      const i = slice(tensor(idx, [n, 2], { dtype: 'int32', backend }), null, 1);
      expect([s.strides, i.strides]).toEqual([[1, n], [2]]);
      return scatterAdd(s, i, 0, size);
    };
    expect(usesSortedScatter(size * row, n)).toBe(true);
    await expectAllClose(run(W, 'float32'), run('cpu', 'float64'), { atol: 1e-4, rtol: 1e-4 });
  });

  it('take gradients match the CPU: an embedding table and a long gather', async () => {
    for (const [table, row, n] of [
      [65, 16, 2048],
      [20_000, 1, 30_000],
    ]) {
      const x = floats([table, row], table);
      const ids = idsOf(n, table, row);
      const g = floats([n, row], n);
      const gradient = (backend: BackendName, dtype: 'float32' | 'float64') => {
        const c = tensor(g, [n, row], { dtype, backend });
        const i = tensor(ids, [n], { dtype: 'int32', backend });
        return grad((w: Tensor) => sum(mul(take(w, i, 0), c)))(tensor(x, [table, row], { dtype, backend }));
      };
      await expectAllClose(gradient(W, 'float32'), gradient('cpu', 'float64'), { atol: 1e-4, rtol: 1e-4 });
    }
  });

  it('the sorted path adds in index order: the float32 sequential sums bit for bit, twice', async () => {
    for (const [n, size, row] of [
      [20_000, 3, 4], // long buckets
      [30_000, 5000, 2], // short ones, two radix passes
    ]) {
      const src = floats([n, row], n + size);
      const idx = idsOf(n, size, size);
      expect(usesSortedScatter(size * row, n)).toBe(true);
      const expected = Array.from(sequentialSums(src, idx, size, row));
      for (let run = 0; run < 2; run++) {
        const out = scatterAdd(
          tensor(src, [n, row], { backend: W }),
          tensor(idx, [n], { dtype: 'int32', backend: W }),
          0,
          size,
        );
        expect(Array.from(await out.data())).toEqual(expected);
      }
    }
  });

  it('out-of-range indices on the sorted path: the first in index order is reported, then all is well', async () => {
    const n = 4000;
    const idx = idsOf(n, 30, 11);
    idx[2500] = 99;
    idx[700] = -5;
    idx[3100] = 30;
    const src = tensor(floats([n, 20], 12), [n, 20], { backend: W });
    expect(usesSortedScatter(30 * 20, n)).toBe(true);
    const bad = scatterAdd(src, tensor(idx, [n], { dtype: 'int32', backend: W }), 0, 30);
    await expectRejects(
      bad.data(),
      'scatterAdd',
      /^scatterAdd: index -5 is out of range for axis 0 of size 30; valid: \[0, 30\)/,
    );
    idx[700] = 1;
    await expectRejects(
      scatterAdd(src, tensor(idx, [n], { dtype: 'int32', backend: W }), 0, 30).data(),
      'scatterAdd',
      /index 99 is out of range/,
    );
    const good = scatterAdd(src, tensor(idsOf(n, 30, 13), [n], { dtype: 'int32', backend: W }), 0, 30);
    expect((await good.data()).length).toBe(600);
    await gpu.backend!.sync();
  });

  it('scratch buffers are returned: the live buffer count is flat over repeated sorted scatters', async () => {
    const backend = gpu.backend!;
    const src = tensor(floats([3000, 4], 14), [3000, 4], { backend: W });
    const idx = tensor(idsOf(3000, 1000, 15), [3000], { dtype: 'int32', backend: W });
    scatterAdd(src, idx, 0, 1000).dispose();
    const before = backend.memory().buffers;
    for (let i = 0; i < 5; i++) scatterAdd(src, idx, 0, 1000).dispose();
    await backend.sync();
    expect(backend.memory().buffers).toBe(before);
  });

  it('the exclusive scan behind the sort, over one, two and three levels of blocks', async () => {
    const backend = gpu.backend as WebGPUBackend;
    for (const n of [1, 1000, 1025, 70_000, 1024 * 1024 + 3]) {
      const values = Uint32Array.from({ length: n }, (_, i) => (i * 7919) % 13);
      const buffer = backend.alloc('int32', n);
      backend.upload(buffer, new Int32Array(values.buffer));
      scanInPlace(backend, buffer as Parameters<typeof scanInPlace>[1], n);
      const scanned = await backend.read(buffer, 'int32', n);
      backend.free(buffer);
      let [running, wrong] = [0, 0];
      for (let i = 0; i < n; i++) {
        if (scanned[i] !== running) wrong++;
        running += values[i];
      }
      expect(wrong, `${wrong} of ${n} prefix sums differ`).toBe(0);
    }
  });
});
