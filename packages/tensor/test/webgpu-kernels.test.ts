/**
 * Targeted WebGPU tests beyond the shared case table: matmul sizes past the tiles, transposed
 * and batched operands for every kernel family, reductions over millions of elements, special
 * values against the CPU backend, grids over 65,535 workgroups, Philox bit-parity, flat memory
 * over 1,000 scoped iterations, dispatch batching and pipeline reuse, and the errors (binding
 * limit, shader compile failure with its WGSL, lost device).
 */

import * as T from '@fluxion/tensor';
import {
  argmax,
  type BackendName,
  cast,
  FluxionError,
  Generator,
  linear,
  matmul,
  pad,
  rand,
  randint,
  randn,
  registerBackend,
  scope,
  setBackend,
  type Tensor,
  take,
  tensor,
  useBestBackend,
  type WebGPUBackend,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { afterEach, describe, expect, test, vi } from 'vitest';
import { expectAllClose, runs, valuesOf } from './helpers.js';
import { adapterName, skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();
const backend = gpu.backend as WebGPUBackend;

/** Deterministic pseudo-random values in [-1, 1). */
function values(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** The same tensor on both backends. */
function pair(shape: number[], seed: number): [Tensor, Tensor] {
  const data = values(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );
  return [tensor(data, shape, { backend: 'cpu' }), tensor(data, shape, { backend: 'webgpu' })];
}

/** Runs `fn` on CPU and WebGPU copies of the same inputs and compares. */
async function compareBackends(
  shapes: number[][],
  fn: (xs: Tensor[], backend: BackendName) => Tensor,
  tol = { atol: 1e-5, rtol: 1e-4 },
): Promise<void> {
  const pairs = shapes.map((s, i) => pair(s, i + 7));
  try {
    const expected = scope(() =>
      fn(
        pairs.map((p) => p[0]),
        'cpu',
      ),
    );
    const actual = scope(() =>
      fn(
        pairs.map((p) => p[1]),
        'webgpu',
      ),
    );
    expect(actual.shape).toEqual(expected.shape);
    await expectAllClose(actual, expected, tol);
    expected.dispose();
    actual.dispose();
  } finally {
    for (const p of pairs) for (const t of p) t.dispose();
  }
}

describe.skipIf(!gpu.backend)(`webgpu kernels${skipNote(gpu)}`, () => {
  afterEach(() => setBackend('cpu'));

  test('reports the adapter and enabled features', () => {
    expect(backend.name).toBe('webgpu');
    expect(typeof backend.adapterInfo.description).toBe('string');
    expect(Array.isArray(backend.adapterInfo.features)).toBe(true);
    expect(['subgroup', 'register', 'shared']).toContain(backend.matmulVariant);
    console.log(
      `adapter: ${adapterName(backend)}; features ${backend.adapterInfo.features.join(', ')}; subgroups of ${backend.device.adapterInfo?.subgroupMinSize}-${backend.device.adapterInfo?.subgroupMaxSize} lanes; matmul ${backend.matmulVariant}`,
    );
  });

  test('the adapter is the one this run means, by its features as well as its name', () => {
    // FLUXION_WEBGPU_EXPECT is checked against the name at initialisation (webgpu-env.ts); the
    // features tell the two software adapters of CI apart independently of any name.
    const expected = process.env.FLUXION_WEBGPU_EXPECT?.toLowerCase();
    const { subgroupMinSize, subgroupMaxSize } = backend.device.adapterInfo ?? {};
    if (expected === 'swiftshader') {
      expect([subgroupMinSize, subgroupMaxSize]).toEqual([4, 4]);
      expect(backend.device.features.has('shader-f16')).toBe(false);
      expect(backend.subgroups8).toBe(false);
    } else if (expected === 'llvmpipe') {
      expect([subgroupMinSize, subgroupMaxSize]).toEqual([8, 8]);
      expect(backend.subgroups8).toBe(backend.device.features.has('subgroups'));
    }
    // Whatever the adapter: the subgroup matmul runs exactly where subgroups have ≥ 8 lanes.
    expect(backend.subgroups8).toBe(backend.device.features.has('subgroups') && (subgroupMinSize ?? 0) >= 8);
  });

  test('disableFeatures (or FLUXION_WEBGPU_DISABLE) leaves features off, so their fallbacks run here too', async () => {
    const { initWebGPU } = T;
    await expect(initWebGPU({ disableFeatures: ['subgroup' as GPUFeatureName] })).rejects.toThrow(
      /cannot disable 'subgroup'/,
    );
    const saved = process.env.FLUXION_WEBGPU_DISABLE;
    process.env.FLUXION_WEBGPU_DISABLE = 'subgroups, timestamp-query';
    let fromEnv: WebGPUBackend | undefined;
    try {
      fromEnv = await initWebGPU({ matmulVariant: 'register' });
      expect(fromEnv.device.features.has('subgroups')).toBe(false);
      expect(fromEnv.device.features.has('timestamp-query')).toBe(false);
    } finally {
      if (saved === undefined) delete process.env.FLUXION_WEBGPU_DISABLE;
      else process.env.FLUXION_WEBGPU_DISABLE = saved;
      registerBackend(backend);
      setBackend('cpu');
      fromEnv?.device.destroy();
    }
    // A second device without subgroups: the forced subgroup family falls back to register.
    const second = await initWebGPU({ disableFeatures: ['subgroups'], matmulVariant: 'subgroup' });
    try {
      registerBackend(backend);
      setBackend('cpu');
      expect(second.device.features.has('subgroups')).toBe(false);
      expect(second.subgroups8).toBe(false);
      const a = T.randn([37, 29], { seed: 1 });
      const b = T.randn([29, 70], { seed: 2 });
      const expected = await matmul(a, b).data();
      registerBackend(second);
      const actual = await matmul(await a.to('webgpu'), await b.to('webgpu')).data();
      await expectAllClose(actual, expected, { atol: 1e-4, rtol: 1e-4 });
    } finally {
      registerBackend(backend);
      setBackend('cpu');
      second.device.destroy();
    }
  });

  describe('matmul', () => {
    const variants = () =>
      (['subgroup', 'register', 'shared'] as const).filter((v) => v !== 'subgroup' || backend.subgroups8);
    /** Runs `body` once with each kernel family of `list` forced, then restores the adapter's own. */
    const forEachVariant = async (
      list: readonly WebGPUBackend['matmulVariant'][],
      body: () => Promise<void>,
    ) => {
      const previous = backend.matmulVariant;
      try {
        for (const variant of list) {
          backend.matmulVariant = variant;
          await body();
        }
      } finally {
        backend.matmulVariant = previous;
      }
    };
    const sizes: [number, number, number][] = [
      [1, 1, 1],
      [17, 17, 17],
      [129, 129, 129],
      [257, 65, 130],
      [1, 300, 7],
      [70, 3, 1],
      [5, 0, 4],
      // Thin products take the simple kernel (≤ 4 columns or one row): many rows, and 5 columns
      // just past it.
      [3001, 9, 4],
      [33, 7, 5],
    ];
    test.each(sizes)('M=%i K=%i N=%i, every layout and kernel family', async (M, K, N) => {
      await forEachVariant(variants(), async () => {
        const tol = { atol: 1e-4, rtol: 1e-4 };
        await compareBackends(
          [
            [M, K],
            [K, N],
          ],
          ([a, b]) => matmul(a, b),
          tol,
        );
        await compareBackends(
          [
            [K, M],
            [K, N],
          ],
          ([a, b]) => matmul(a.T, b),
          tol,
        ); // Aᵀ·B
        await compareBackends(
          [
            [M, K],
            [N, K],
          ],
          ([a, b]) => matmul(a, b.T),
          tol,
        ); // A·Bᵀ
        await compareBackends(
          [
            [K, M],
            [N, K],
          ],
          ([a, b]) => matmul(a.T, b.T),
          tol,
        );
      });
    });

    test('batched, with broadcast (stride-0) batch dims and sliced operands', async () => {
      await forEachVariant(variants(), async () => {
        await compareBackends(
          [
            [3, 1, 33, 20],
            [4, 20, 9],
          ],
          ([a, b]) => matmul(a, b),
        );
        await compareBackends(
          [
            [3, 1, 33, 20],
            [4, 20, 3],
          ],
          ([a, b]) => matmul(a, b),
        );
        await compareBackends([[2, 40, 30]], ([a]) =>
          matmul(a.slice(null, [1, 40, 2]), a.slice(null, [0, 40, 4]).T),
        );
        await compareBackends(
          [
            [6, 16],
            [2, 16, 8],
          ],
          ([a, b]) => matmul(a, b.slice([1, 2])),
        );
      });
    });

    test('the bias epilogue (linear): every kernel family, both weight layouts, a strided bias', async () => {
      await forEachVariant(variants(), async () => {
        // [M, K, N]: register tiles with ragged edges, narrow tiles (N ≤ 32: 20, 32) and the
        // first wide one (33), a thin product (simple kernel), one row.
        for (const [M, K, N] of [
          [129, 33, 70],
          [129, 40, 20],
          [65, 9, 32],
          [65, 9, 33],
          [33, 7, 3],
          [1, 20, 9],
        ]) {
          await compareBackends([[M, K], [N, K], [N]], ([x, w, b]) => linear(x, w, b)); // weight read along k (x · wᵀ, a Linear layer)
          await compareBackends([[M, K], [K, N], [2 * N]], ([x, w, b]) =>
            linear(x, w.T, b.slice([0, 2 * N, 2])),
          ); // weight read along n, bias with stride 2
        }
        await compareBackends([[3, 17, 20], [9, 20], [9]], ([x, w, b]) => linear(x, w, b)); // batched rows, the weight broadcast over the batch
      });
    });

    test('tall products copy a k-contiguous B to [K, N] first, and compute the same values', async () => {
      await forEachVariant(
        variants().filter((v) => v !== 'shared'),
        async () => {
          await compareBackends([[600, 33], [70, 33], [70]], ([x, w, b]) => linear(x, w, b)); // A·Bᵀ plus bias
          await compareBackends(
            [
              [2, 520, 16],
              [9, 16],
            ],
            ([a, w]) => matmul(a, w.T),
          ); // B shared by the batch
          await compareBackends(
            [
              [2, 520, 20],
              [2, 9, 20],
            ],
            ([a, w]) => matmul(a, w.T),
          ); // a B per batch: read in place
          // The copy is a pure relayout: bit for bit the product with an n-contiguous B, in two
          // launches (copy, product) where a short product reads B in place in one.
          setBackend('webgpu');
          const a = T.randn([512, 40], { seed: 1 });
          const w = T.randn([24, 40], { seed: 2 });
          const launches = async (f: () => Tensor) => {
            await backend.sync();
            const before = backend.stats().dispatches;
            const y = f();
            const n = backend.stats().dispatches - before;
            return { n, data: Array.from(await y.data()) };
          };
          const packed = await launches(() => matmul(a, w.T));
          const relaid = await launches(() => matmul(a, w.T.contiguous()));
          expect(packed.data).toEqual(relaid.data);
          expect(packed.n).toBe(2);
          expect((await launches(() => matmul(a.slice([0, 511]), w.T))).n).toBe(1);
          setBackend('cpu');
        },
      );
    });

    test('a transposing copy moves 4×4 blocks when aligned, and equals the CPU bit for bit', async () => {
      const exact = { atol: 0, rtol: 0 };
      for (const [r, c] of [
        [8, 12],
        [256, 36],
        [5, 8], // rows not a multiple of 4: the elementwise template
      ])
        await compareBackends([[r, c]], ([a]) => a.T.contiguous(), exact);
      await compareBackends([[10, 16]], ([a]) => a.slice([2, 10]).T.contiguous(), exact); // offset 32 (aligned)
      await compareBackends([[10, 16]], ([a]) => a.slice([1, 9]).T.contiguous(), exact); // offset 16
      await compareBackends([[12, 18]], ([a]) => a.slice(null, [0, 16]).T.contiguous(), exact); // column stride 18
      await compareBackends([[3, 8, 12]], ([a]) => a.T.contiguous(), exact); // batched
      // Special values and int32 keep their bits.
      setBackend('webgpu');
      const special = tensor([NaN, -0, Infinity, -Infinity, 1, 2, 3, 4], [2, 4]);
      const moved = await special.T.contiguous().data();
      expect(Array.from(moved).map((v) => (Object.is(v, -0) ? '-0' : String(v)))).toEqual([
        'NaN',
        '1',
        '-0',
        '2',
        'Infinity',
        '3',
        '-Infinity',
        '4',
      ]);
      const intData = new Int32Array(Array.from({ length: 32 }, (_, i) => i * 1000003 - 7));
      const ints = tensor(intData, [4, 8]);
      const cpuInts = tensor(intData, [4, 8], { backend: 'cpu' });
      expect(await ints.T.contiguous().array()).toEqual(await cpuInts.T.contiguous().array());
      if (backend.canProfile) {
        // Which kernel ran: the block copy when aligned, the elementwise template otherwise.
        const kernelOf = async (x: Tensor) => (await backend.profile(() => x.T.contiguous()))[0].kernel;
        expect(await kernelOf(tensor(values(64), [8, 8]))).toBe('transpose4x4');
        expect(await kernelOf(tensor(values(40), [5, 8]))).toMatch(/^ew\|/);
      }
    });

    test('int32 wraps like the CPU backend', async () => {
      const a = tensor(new Int32Array([70000, 3, -5, 2]), [2, 2]);
      const b = tensor(new Int32Array([70000, 1, 4, -2]), [2, 2]);
      const expected = await matmul(a, b).data();
      const actual = await matmul(a.contiguous(), b).data();
      setBackend('webgpu');
      const ga = tensor(new Int32Array([70000, 3, -5, 2]), [2, 2]);
      const gb = tensor(new Int32Array([70000, 1, 4, -2]), [2, 2]);
      expect(Array.from(await matmul(ga, gb).data())).toEqual(Array.from(expected));
      expect(Array.from(actual)).toEqual(Array.from(expected));
    });
  });

  test('large, permuted and sliced views through elementwise ops and reductions', async () => {
    const dim = fc.constantFrom<number>(1, 2, 17, 31, 129, 257);
    const shape = fc
      .array(dim, { minLength: 1, maxLength: 4 })
      .filter((s) => s.reduce((a, b) => a * b, 1) <= 300_000);
    const sample = shape.chain((s) =>
      fc.record({
        shape: fc.constant(s),
        order: fc.shuffledSubarray(
          s.map((_, i) => i),
          { minLength: s.length, maxLength: s.length },
        ),
        step: fc.constantFrom(1, 2, 3),
        axes: fc.subarray(s.map((_, i) => i)),
      }),
    );
    await fc.assert(
      fc.asyncProperty(sample, async ({ shape: s, order, step, axes }) => {
        const view = (x: Tensor) =>
          x.permute(order).slice(...order.map(() => [0, null, step] as [number, null, number]));
        const tol = { atol: 1e-3, rtol: 1e-4 };
        await compareBackends(
          [s, s],
          ([a, b]) => T.exp(view(a)).mul(view(b)).add(view(b).sum(-1, true)),
          tol,
        );
        await compareBackends([s], ([a]) => view(a).sum(axes), tol);
        await compareBackends([s], ([a]) => view(a).max(axes, true), tol);
      }),
      runs(12),
    );
  });

  describe('reductions', () => {
    test('sums, max and argmax over more than a million elements', async () => {
      const n = 2 ** 21 + 3;
      const data = values(n, 3);
      data[1_500_000] = 7;
      const x = tensor(data, [n], { backend: 'webgpu' });
      let exact = 0;
      for (const v of data) exact += v;
      expect(Math.abs((await x.sum().item()) - exact)).toBeLessThan(1e-3 * Math.sqrt(n) * 1e-2 + 0.05);
      expect(await x.max().item()).toBe(7);
      expect(await argmax(x).item()).toBe(1_500_000);
      data[1_700_000] = Number.NaN;
      const withNan = tensor(data, [n], { backend: 'webgpu' });
      expect(await withNan.max().item()).toBeNaN();
      expect(await argmax(withNan).item()).toBe(1_700_000);
      for (const t of [x, withNan]) t.dispose();
    });

    test('long rows split over workgroups, short rows one per invocation, any axis set', async () => {
      const tol = { atol: 1e-3, rtol: 1e-4 };
      await compareBackends([[3, 50_000]], ([x]) => x.sum(1), tol);
      await compareBackends([[50_000, 3]], ([x]) => x.sum(0), tol);
      await compareBackends([[1100, 700]], ([x]) => x.max(0), tol);
      await compareBackends([[4, 5, 6, 7]], ([x]) => x.permute([2, 0, 3, 1]).sum([0, 2]), tol);
      await compareBackends([[9, 8, 7]], ([x]) => T.min(x.slice(null, [0, 8, 3]), [0, 2], true), tol);
      await compareBackends([[3, 40_000]], ([x]) => T.argmin(x, 1), tol);
      await compareBackends([[40_000, 3]], ([x]) => T.argmax(x, 0), tol);
      await compareBackends([[300, 1]], ([x]) => T.prod(x.add(1.5), 0), { atol: 1e-3, rtol: 1e-3 });
      // Few rows of at most 256 elements (a narrow layer's bias gradient): one invocation each.
      await compareBackends([[128, 20]], ([x]) => x.sum(0), tol);
      await compareBackends([[256, 7]], ([x]) => T.argmax(T.round(x), 0), tol);
      await compareBackends([[257, 7]], ([x]) => T.argmax(T.round(x), 0), tol);
    });

    test('ties give the first index; empty reductions give the identity', async () => {
      setBackend('webgpu');
      const ties = tensor([
        [1, 3, 3, 0],
        [2, 2, 2, 2],
      ]);
      expect(await argmax(ties, 1).array()).toEqual([1, 0]);
      expect(await T.argmin(ties, 1).array()).toEqual([3, 0]);
      const empty = T.zeros([3, 0]);
      expect(await empty.sum(1).array()).toEqual([0, 0, 0]);
      expect(await T.prod(empty, 1).array()).toEqual([1, 1, 1]);
    });
  });

  describe('special values match the CPU backend', () => {
    const specials = [
      0,
      -0,
      1,
      -1,
      0.5,
      -0.5,
      1.5,
      2.5,
      -2.5,
      3,
      1e-7,
      -1e-7,
      1e-30,
      10,
      -10,
      20,
      88,
      89,
      -88,
      -104,
      100,
      -100,
      1e6,
      -1e6,
      3.4e38,
      -3.4e38,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
      Number.NaN,
    ];
    const unary = T.UNARY_OPS.filter((op) => op !== 'logicalNot');
    // WGSL's accuracy table: exp 3 + 2·|x| ulp, log 3 ulp outside [0.5, 2] and 2⁻²¹ absolute
    // inside, inverseSqrt 2 ulp, tanh from sinh/cosh; the largest of these at the specials' finite
    // results is within 1e-4 relative, 1e-5 absolute (NaN, ±∞ and ±0 must match exactly).
    const loose = { atol: 1e-5, rtol: 1e-4 };
    /**
     * sin and cos: WGSL bounds the built-ins' absolute error by 2⁻¹¹ (4.9e-4) inside [−π, π]; the
     * kernels reduce the argument to that range first, so the bound holds up to |x| ≈ 10⁵.
     */
    const trig = new Set(['sin', 'cos']);
    const trigTol = { atol: 2 ** -11, rtol: 0 };
    const trigSpecials = [
      ...specials.filter((v) => !Number.isFinite(v) || Math.abs(v) <= 100),
      1000.5,
      -4321.25,
      3.140625,
      -3.140625,
      6.28125,
      12345.5,
    ];

    test.each(unary)('%s', async (op) => {
      const inputs = trig.has(op) ? trigSpecials : specials;
      const f = (x: Tensor) => T.unary(op, x);
      const expected = await f(tensor(inputs, { backend: 'cpu' })).data();
      const actual = await f(tensor(inputs, { backend: 'webgpu' })).data();
      await expectAllClose(actual, expected, trig.has(op) ? trigTol : loose);
    });

    test.each(T.BINARY_OPS.filter((op) => !T.LOGICAL_OPS.includes(op)))('%s on all pairs', async (op) => {
      const a = tensor(specials, [specials.length, 1], { backend: 'cpu' });
      const b = tensor(specials, [1, specials.length], { backend: 'cpu' });
      const expected = await T.binary(op, a, b).data();
      const ga = tensor(specials, [specials.length, 1], { backend: 'webgpu' });
      const gb = tensor(specials, [1, specials.length], { backend: 'webgpu' });
      const actual = await T.binary(op, ga, gb).data();
      await expectAllClose(actual, expected, op === 'pow' ? { atol: 1e-5, rtol: 1e-4 } : loose);
    });

    test('the vec4 shader (contiguous operands, counts divisible by 4) agrees as well', async () => {
      // 28 specials: every unary op on them, every binary op on all 784 ordered pairs laid out
      // flat (both operands contiguous), and against a broadcast scalar.
      const xs = specials.slice(0, 28);
      const left = xs.flatMap((v) => xs.map(() => v));
      const right = xs.flatMap(() => xs);
      const both = (data: number[], shape: number[]) =>
        (['cpu', 'webgpu'] as const).map((b) => tensor(data, shape, { backend: b }));
      const [xc, xg] = both(xs, [28]);
      for (const op of unary) {
        if (trig.has(op)) continue;
        await expectAllClose(await T.unary(op, xg).data(), await T.unary(op, xc).data(), loose);
      }
      const [lc, lg] = both(left, [28, 28]);
      const [rc, rg] = both(right, [28, 28]);
      const [sc, sg] = both([2.5], []);
      for (const op of T.BINARY_OPS.filter((o) => !T.LOGICAL_OPS.includes(o))) {
        await expectAllClose(await T.binary(op, lg, rg).data(), await T.binary(op, lc, rc).data(), loose);
        await expectAllClose(await T.binary(op, lg, sg).data(), await T.binary(op, lc, sc).data(), loose);
      }
      // Views at offsets 4 (vec4-aligned) and 2 (not) read the right elements.
      for (const start of [4, 2]) {
        const view = (t: Tensor) => t.reshape([784]).slice([start, start + 400]);
        await expectAllClose(await view(lg).add(view(rg)).data(), await view(lc).add(view(rc)).data(), loose);
      }
    });

    test('the vec4 shader reads broadcast rows and columns over many rows', async () => {
      // [3001, 12]: a bias-like row (aligned, then at offset 2, which takes the scalar shader), a
      // column of one value per row (contiguous and strided) and both at once; 3001 rows exercise
      // the shader's row split (a float-reciprocal division) well past small counts.
      const both = (data: number[], shape: number[]) =>
        (['cpu', 'webgpu'] as const).map((b) => tensor(data, shape, { backend: b }));
      const rows = 3001;
      const [mc, mg] = both(
        Array.from({ length: rows * 12 }, (_, i) => Math.sin(i)),
        [rows, 12],
      );
      const [vc, vg] = both(
        Array.from({ length: 16 }, (_, i) => i - 7.5),
        [16],
      );
      const [cc, cg] = both(
        Array.from({ length: rows }, (_, i) => Math.cos(i)),
        [rows, 1],
      );
      const cases: ((m: Tensor, v: Tensor, c: Tensor) => Tensor)[] = [
        (m, v) => m.add(v.slice([0, 12])),
        (m, v) => m.mul(v.slice([4, 16])),
        (m, v) => m.sub(v.slice([2, 14])),
        (m, _v, c) => m.div(c),
        (m, _v, c) => c.sub(m),
        (m) => m.mul(m.slice(null, [3, 4])),
        (m, v, c) => T.where(T.greater(m, 0), v.slice([0, 12]), c),
      ];
      for (const f of cases)
        await expectAllClose(await f(mg, vg, cg).data(), await f(mc, vc, cc).data(), loose);
    });

    test('leakyRelu and its derivative on special values; slope 0 is exactly relu', async () => {
      const x = [-2, -0, 0, 3, Number.NaN, Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY, -1];
      const g = [Number.POSITIVE_INFINITY, Number.NaN, 1, Number.NaN, 2, 1, 1, Number.NEGATIVE_INFINITY];
      for (const backend of ['cpu', 'webgpu'] as const) {
        const [tx, tg] = [tensor(x, { backend }), tensor(g, { backend })];
        expect(Array.from(await T.leakyRelu(tx, 0.5).data())).toEqual([
          -1,
          -0,
          0,
          3,
          Number.NaN,
          Number.NEGATIVE_INFINITY,
          Number.POSITIVE_INFINITY,
          -0.5,
        ]);
        // relu's gradient: 0 wherever x ≤ 0 (or NaN), whatever g holds there.
        expect(Array.from(await T.leakyReluGrad(tx, tg, 0).data())).toEqual([
          0,
          0,
          0,
          Number.NaN,
          0,
          0,
          1,
          0,
        ]);
        expect(Array.from(await T.leakyReluGrad(tx, tg, 0.5).data())).toEqual([
          Number.POSITIVE_INFINITY,
          Number.NaN,
          0.5,
          Number.NaN,
          1,
          0.5,
          1,
          Number.NEGATIVE_INFINITY,
        ]);
      }
    });

    test('casts truncate, saturate and send NaN to 0; bool is x ≠ 0', async () => {
      const xs = [
        2.7,
        -2.7,
        0.5,
        -0.5,
        3e9,
        -3e9,
        Number.POSITIVE_INFINITY,
        Number.NEGATIVE_INFINITY,
        Number.NaN,
        -0,
      ];
      for (const dtype of ['int32', 'bool'] as const) {
        const expected = await cast(tensor(xs, { backend: 'cpu' }), dtype).data();
        const actual = await cast(tensor(xs, { backend: 'webgpu' }), dtype).data();
        expect(Array.from(actual)).toEqual(Array.from(expected));
      }
      const ints = new Int32Array([2147483647, -2147483648, 0, 5]);
      const back = await cast(cast(tensor(ints, [4], { backend: 'webgpu' }), 'bool'), 'float32').data();
      expect(Array.from(back)).toEqual([1, 1, 0, 1]);
    });

    test('round is half to even; sigmoid and erf are accurate far out', async () => {
      setBackend('webgpu');
      expect(await T.round(tensor([0.5, 1.5, 2.5, -0.5, -1.5, -2.5])).array()).toEqual([0, 2, 2, -0, -2, -2]);
      const s = await T.sigmoid(tensor([-100, 100, -30])).data();
      expect(s[0]).toBeGreaterThanOrEqual(0);
      expect(s[0]).toBeLessThan(1e-40);
      expect(s[1]).toBe(1);
      expect(Math.abs(s[2] / 9.357622968839299e-14 - 1)).toBeLessThan(1e-5);
      const erfs = await T.erf(tensor([0.1, 1, 2, 3.5])).data();
      const reference = [0.1124629160182849, 0.8427007929497149, 0.9953222650189527, 0.9999992569016276];
      for (const [i, v] of reference.entries()) expect(Math.abs(erfs[i] - v)).toBeLessThan(2.5e-7);
    });
  });

  test('a grid over 65,535 workgroups per dimension is split and computed in full', async () => {
    // Random numbers take one workgroup per 64 values, so this needs 65,600 workgroups: the grid
    // is split over x and y and the shader must linearise it again, or values go missing.
    const n = 64 * 65_535 + 4099;
    const [expected, actual] = await Promise.all(
      (['cpu', 'webgpu'] as const).map((b) => rand([n], { generator: new Generator(5), backend: b }).data()),
    );
    let mismatches = 0;
    for (let i = 0; i < n; i++) if (actual[i] !== expected[i]) mismatches++;
    expect(mismatches).toBe(0);
    // 70,000 batches of a 1×1 product: one workgroup each.
    setBackend('webgpu');
    const batches = 70_000;
    const a = T.arange(batches).reshape([batches, 1, 1]);
    const prod = matmul(a, T.full([batches, 1, 1], 2));
    const out = await prod.data();
    mismatches = 0;
    for (let i = 0; i < batches; i++) if (out[i] !== 2 * i) mismatches++;
    expect(mismatches).toBe(0);
    // A large contiguous elementwise op (vec4 shader, several vec4s per invocation, ragged end).
    const y = scope(() => T.ones([2 ** 22 + 4100]).mul(3));
    expect(await y.sum().item()).toBe(Math.fround(3 * (2 ** 22 + 4100)));
    expect(Array.from(await y.slice([2 ** 22 + 4097, 2 ** 22 + 4100]).data())).toEqual([3, 3, 3]);
    for (const t of [a, prod, y]) t.dispose();
  });

  test('random: Philox bits equal the CPU backend, across a 2³² counter carry', async () => {
    for (const draw of [
      (g: Generator, b: BackendName) => rand([1000], { generator: g, backend: b }),
      (g: Generator, b: BackendName) => randint(-7, 2 ** 30, [1000], { generator: g, backend: b }),
    ]) {
      const [g1, g2] = [new Generator(42), new Generator(42)];
      g1.offset = g2.offset = 2 ** 32 - 500;
      expect(Array.from(await draw(g2, 'webgpu').data())).toEqual(Array.from(await draw(g1, 'cpu').data()));
    }
    const expected = await randn([4096], { seed: 9, backend: 'cpu' }).data();
    const actual = await randn([4096], { seed: 9, backend: 'webgpu' }).data();
    await expectAllClose(actual, expected, { atol: 2e-6, rtol: 1e-5 });
  });

  test('take raises for out-of-range indices at the next read, as the CPU does at once (index-bounds.test.ts)', async () => {
    setBackend('webgpu');
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const idx = tensor(new Int32Array([2, 5, -1, 0]));
    await expect(take(x, idx, 1).array()).rejects.toThrow(
      /^take: index (5|-1) is out of range for axis 1 of size 3; valid: \[0, 3\)/,
    );
    expect(await take(x, tensor(new Int32Array([2, 0])), 1).array()).toEqual([
      [3, 1],
      [6, 4],
    ]);
  });

  test('bool tensors round-trip as one u32 per element', async () => {
    setBackend('webgpu');
    const b = tensor([true, false, true]);
    expect(await b.array()).toEqual([true, false, true]);
    expect(await T.logicalNot(b).array()).toEqual([false, true, false]);
    expect(await pad(b, [[1, 1]], 1).array()).toEqual([true, true, false, true, true]);
  });

  test('1,000 scoped iterations keep the live buffer count flat', async () => {
    setBackend('webgpu');
    const w = tensor(values(64 * 32), [64, 32]);
    const step = () =>
      scope(() => {
        const x = rand([16, 64], { seed: 1 });
        const h = T.relu(matmul(x, w)).add(1);
        return h.sum();
      });
    for (let i = 0; i < 10; i++) step().dispose();
    await backend.sync();
    const before = backend.memory();
    for (let i = 0; i < 1000; i++) step().dispose();
    await backend.sync();
    // ≤ rather than =: tensors other tests dropped without dispose() may be collected meanwhile.
    const after = backend.memory();
    expect(after.buffers).toBeLessThanOrEqual(before.buffers);
    expect(after.bytes).toBeLessThanOrEqual(before.bytes);
    // The pool may hold buffers that in-flight work still used (more of them the further the
    // adapter lags behind recording, e.g. on a loaded machine); what is guaranteed is its bound.
    expect(backend.stats().pooledBytes).toBeLessThanOrEqual(256 * 2 ** 20);
    w.dispose();
  });

  test("Dawn's timestamp quantization is turned off, keeping the caller's toggles", () => {
    expect(T.withPreciseTimestamps(['backend=vulkan'])).toEqual([
      'backend=vulkan',
      'disable-dawn-features=timestamp_quantization',
    ]);
    expect(T.withPreciseTimestamps(['disable-dawn-features=foo'])).toEqual([
      'disable-dawn-features=foo,timestamp_quantization',
    ]);
    const already = ['disable-dawn-features=timestamp_quantization'];
    expect(T.withPreciseTimestamps(already)).toEqual(already);
  });

  test('profile times every kernel on the device and leaves results unchanged', async () => {
    setBackend('webgpu');
    const a = tensor(values(256 * 256), [256, 256]);
    const b = tensor(values(256 * 256), [256, 256]);
    const expected = await matmul(a, b).add(1).data();
    if (!backend.canProfile) {
      // An adapter without timestamp-query gets a clear error rather than made-up timings.
      await expect(backend.profile(() => matmul(a, b))).rejects.toThrow(/timestamp-query/);
      return;
    }
    let y: Tensor | undefined;
    const start = performance.now();
    const timings = await backend.profile(() => {
      y = matmul(a, b).add(1);
    });
    const wallMs = performance.now() - start;
    expect(timings.map((t) => t.label)).toEqual(['matmul [256,256] [256,256]', 'add [256,256] [256,256]']);
    expect(timings[0].kernel).toMatch(/^matmul\|/);
    // Device timings are in milliseconds: positive, and the two dependent kernels together fit in
    // the wall-clock time of the whole profile call. (Which kernel is longer is not asserted: on a
    // loaded CI machine lavapipe's threads can be descheduled in the middle of either one.)
    for (const t of timings) expect(t.ms).toBeGreaterThan(0);
    expect(timings[0].ms + timings[1].ms).toBeLessThanOrEqual(wallMs);
    expect(Array.from(await y!.data())).toEqual(Array.from(expected));
    await expect(backend.profile(() => backend.profile(() => {}))).rejects.toThrow(/already running/);
    // A profiled function that throws after launching kernels leaves the backend usable.
    await expect(
      backend.profile(() => {
        matmul(a, b).dispose();
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(Array.from(await matmul(a, b).add(1).data())).toEqual(Array.from(expected));
    // More launches than one encoder holds (the recorder submits every 128 dispatches).
    const many = await backend.profile(() => {
      let x = a;
      for (let i = 0; i < 300; i++) x = scope(() => x.mul(1.0001));
    });
    expect(many.length).toBe(300);
    for (const t of [a, b, y!]) t.dispose();
  });

  test('a repeated step stops creating bind groups, whatever order it frees buffers in', async () => {
    // The pool hands out the lowest-id free buffer, so every buffer of a step comes back in the
    // same role the next step and after one step every bind group is a cached one. Here 16 same-
    // sized temporaries are freed in an order that makes a last-in-first-out pool rotate them by
    // one role per step, so it would keep creating bind groups for 16 steps.
    setBackend('webgpu');
    const x = tensor(values(4096), [64, 64]);
    const step = () =>
      scope(() => {
        const parts = Array.from({ length: 16 }, (_, i) => x.mul(i + 1));
        let acc = parts[0];
        for (const p of parts.slice(1)) acc = acc.add(p);
        for (const i of [14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 15]) parts[i].dispose();
        return acc.sum();
      });
    for (let i = 0; i < 3; i++) step().dispose();
    await backend.sync();
    const before = backend.stats().bindGroups;
    for (let i = 0; i < 5; i++) step().dispose();
    await backend.sync();
    expect(backend.stats().bindGroups - before).toBe(0);
    x.dispose();
  });

  test('concat joins contiguous inputs end to end in one launch per bound set, and views apart', async () => {
    setBackend('webgpu');
    const perLaunch = Math.min(backend.maxStorageBuffers - 1, 16);
    const count = perLaunch + 3;
    const parts = Array.from({ length: count }, (_, i) => T.arange(i * 100, i * 100 + 3 + i));
    const matrix = T.arange(12).reshape([3, 4]);
    const launches = (f: () => Tensor) => {
      const before = backend.stats().dispatches;
      const out = f();
      return { out, n: backend.stats().dispatches - before };
    };
    // Flat parts: ⌈count / perLaunch⌉ launches.
    const flat = launches(() => T.concat(parts));
    expect(flat.n).toBe(Math.ceil(count / perLaunch));
    expect(await flat.out.data()).toEqual(
      Float32Array.from(parts.flatMap((_, i) => Array.from({ length: 3 + i }, (_, k) => i * 100 + k))),
    );
    // A transposed view between two contiguous parts is copied apart: one gather, one copy.
    const mixed = launches(() =>
      T.concat([parts[0].reshape([1, 3]), matrix.T.slice([0, 1]), parts[1].slice([0, 3]).reshape([1, 3])]),
    );
    expect(mixed.n).toBe(2);
    expect(await mixed.out.array()).toEqual([
      [0, 1, 2],
      [0, 4, 8],
      [100, 101, 102],
    ]);
    // Sizes and offsets that are multiples of 4 move as vec4s (the offset of a slice included).
    const aligned = [T.arange(8), T.arange(20).slice([4, 16]), T.arange(4)];
    expect(Array.from(await T.concat(aligned).data())).toEqual([
      ...[0, 1, 2, 3, 4, 5, 6, 7],
      ...[4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
      ...[0, 1, 2, 3],
    ]);
    if (backend.canProfile) {
      const kernels = async (xs: Tensor[]) =>
        (await backend.profile(() => T.concat(xs))).map((t) => t.kernel);
      expect(await kernels(aligned)).toEqual(['gather|3|v4']);
      expect(await kernels([aligned[0], parts[0]])).toEqual(['gather|2|s']);
    }
    // Along a later axis of a [2, …] output the windows are not runs: one copy per input.
    expect(launches(() => T.concat([matrix.slice([0, 2]), matrix.slice([1, 3])], 1)).n).toBe(2);
  });

  test('dispatches are batched: no submit inside ops, and new shapes compile nothing', async () => {
    setBackend('webgpu');
    const x = tensor(values(100), [10, 10]);
    // Warm both elementwise shader families, vec4 (counts divisible by 4) and scalar, on every op
    // used below.
    for (const shape of [
      [10, 10],
      [3, 3],
    ]) {
      const outs = scope(() => {
        const w = T.ones(shape);
        return [w.exp().add(w).sum(0), w.mul(1.01).add(w)];
      });
      for (const t of outs) t.dispose();
    }
    await backend.sync();
    const { submits, pipelines } = backend.stats();
    scope(() => {
      let y = x;
      for (let i = 0; i < 100; i++) y = y.mul(1.01).add(x);
      return y;
    }).dispose();
    expect(backend.stats().submits - submits).toBeLessThanOrEqual(2);
    for (const shape of [[3], [7, 11], [2, 3, 5], [13, 1, 17], [4, 6]]) {
      scope(() => {
        const w = T.ones(shape);
        return w.exp().add(w).sum(0); // the fused `exp(w) + w` of the warm-up, at a new shape
      }).dispose();
    }
    expect(backend.stats().pipelines).toBe(pipelines);
    x.dispose();
  });

  describe('elementwise fusion', () => {
    /** Dispatches recorded while `fn` runs and the work it left is submitted. */
    const launchesOf = async (fn: () => void): Promise<number> => {
      await backend.sync();
      const before = backend.stats().dispatches;
      fn();
      await backend.sync();
      return backend.stats().dispatches - before;
    };

    /** One step of a random chain: a unary op, a binary op with another input, or a select. */
    type Step =
      | { kind: 'unary'; op: string }
      | { kind: 'binary'; op: string; other: number }
      | {
          kind: 'leaky';
          slope: number;
        }
      | { kind: 'where'; other: number }
      | { kind: 'scalar'; value: number };
    const unaryOps = ['exp', 'neg', 'tanh', 'sigmoid', 'relu', 'softplus', 'abs', 'square'] as const;
    const binaryOps = ['add', 'sub', 'mul', 'maximum'] as const;
    const stepArb: fc.Arbitrary<Step> = fc.oneof(
      fc.record({ kind: fc.constant('unary' as const), op: fc.constantFrom(...unaryOps) }),
      fc.record({
        kind: fc.constant('binary' as const),
        op: fc.constantFrom(...binaryOps),
        other: fc.integer({ min: 0, max: 2 }),
      }),
      fc.record({ kind: fc.constant('leaky' as const), slope: fc.constantFrom(0, 0.1, 0.3) }),
      fc.record({ kind: fc.constant('where' as const), other: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('scalar' as const), value: fc.constantFrom(0.5, -2, 3) }),
    );
    /** Runs a chain on `x` with `others` as second operands (the last one a broadcast row). */
    const runChain = (steps: Step[], x: Tensor, others: Tensor[]): Tensor => {
      let y = x;
      for (const s of steps) {
        if (s.kind === 'unary') y = (T as unknown as Record<string, (t: Tensor) => Tensor>)[s.op](y);
        else if (s.kind === 'binary')
          y = (T as unknown as Record<string, (a: Tensor, b: Tensor) => Tensor>)[s.op](y, others[s.other]);
        else if (s.kind === 'leaky') y = T.leakyRelu(y, s.slope);
        else if (s.kind === 'where') y = T.where(T.greater(y, others[s.other]), y, others[s.other]);
        else y = T.mul(y, s.value);
      }
      return y;
    };

    test('random chains of elementwise ops give the values of their unfused ops', async () => {
      setBackend('webgpu');
      await fc.assert(
        fc.asyncProperty(
          fc.array(stepArb, { minLength: 1, maxLength: 24 }),
          fc.constantFrom([8, 12], [3, 5], [64]),
          fc.integer({ min: 1, max: 1000 }),
          async (steps, shape, seed) => {
            const inputs = [shape, shape, shape, [shape[shape.length - 1]]].map((s, i) =>
              tensor(
                values(
                  s.reduce((a, b) => a * b, 1),
                  seed + i,
                ),
                s,
              ),
            );
            // tanh bounds what long chains of exp and square make of last-bit differences.
            const chain = () => scope(() => T.tanh(runChain(steps, inputs[0], inputs.slice(1))));
            const fused = chain();
            backend.fuseElementwise = false;
            let unfused: Tensor;
            try {
              unfused = chain();
            } finally {
              backend.fuseElementwise = true;
            }
            // The same float32 operations in the same order, but one shader: its compiler may
            // optimise across what were separate kernels (lavapipe folds (a + b) − b to a), so the
            // last bits may differ. The tolerance is a few float32 roundings.
            await expectAllClose(fused, unfused, { atol: 1e-5, rtol: 1e-5 });
            for (const t of [fused, unfused, ...inputs]) t.dispose();
          },
        ),
        runs(25),
      );
    });

    test('a chain whose intermediates are freed is one launch', async () => {
      setBackend('webgpu');
      const [lc, l] = pair([128, 784], 3);
      const [xc, x] = pair([128, 784], 4);
      const bce = (a: Tensor, b: Tensor) => scope(() => T.sub(T.softplus(a), T.mul(b, a)));
      let y: Tensor | undefined;
      expect(
        await launchesOf(() => {
          y = bce(l, x);
        }),
      ).toBe(1);
      await expectAllClose(y!, bce(lc, xc), { atol: 1e-6, rtol: 1e-5 });
      if (backend.canProfile) {
        const [t] = await backend.profile(() => bce(l, x).dispose());
        // Nothing survives the scope, so nothing is computed at all.
        expect(t).toBeUndefined();
        const timings = await backend.profile(() => {
          y!.dispose();
          y = bce(l, x);
        });
        expect(timings.map((k) => k.label)).toEqual(['sub [128,784] [128,784]']);
        expect(timings[0].kernel).toMatch(/softplusF/);
      }
      for (const t of [lc, l, xc, x, y!]) t.dispose();
    });

    test('intermediates that stay alive are computed too, and reading one does not recompute it', async () => {
      setBackend('webgpu');
      const [xc, x] = pair([6, 4], 5);
      let a: Tensor | undefined;
      let b: Tensor | undefined;
      expect(
        await launchesOf(() => {
          a = x.exp();
          b = scope(() => a!.add(1).mul(a!));
        }),
      ).toBe(2);
      await expectAllClose(a!, xc.exp(), { atol: 1e-6, rtol: 1e-6 });
      await expectAllClose(b!, xc.exp().add(1).mul(xc.exp()), { atol: 1e-6, rtol: 1e-5 });
      // A product reads a deferred buffer as it is: the buffer is computed first.
      const m = T.relu(x.sub(0.2));
      await expectAllClose(matmul(m, x.T), matmul(T.relu(xc.sub(0.2)), xc.T), { atol: 1e-5, rtol: 1e-5 });
      // So do broadcasts and strided reads of it.
      const col = x.sum(1, true).exp();
      await expectAllClose(col.mul(x), xc.sum(1, true).exp().mul(xc), { atol: 1e-5, rtol: 1e-5 });
      await expectAllClose(x.neg().T.add(1), xc.neg().T.add(1), { atol: 0, rtol: 0 });
      for (const t of [xc, x, a!, b!, m, col]) t.dispose();
    });

    test('a deferred launch holds its inputs: a freed input is not reused before it is read', async () => {
      setBackend('webgpu');
      await backend.sync(); // nothing of earlier tests left deferred
      const [xc, x] = pair([256], 6);
      const y = x.exp();
      const before = backend.memory().buffers;
      x.dispose();
      // x's buffer is held by y's launch, so these same-sized uploads must get other buffers (the
      // pool would hand it out first, and the upload would overwrite it before exp read it).
      const fillers = Array.from({ length: 4 }, (_, i) => T.full([256], i + 10));
      expect(backend.memory().buffers).toBe(before + 4);
      // Once y is recorded, x's buffer goes back to the pool. (Counts are compared within
      // synchronous code only: a tensor another test dropped may be collected at any await.)
      const held = backend.memory().buffers;
      backend.flush();
      expect(backend.memory().buffers).toBe(held - 1);
      await expectAllClose(y, xc.exp(), { atol: 1e-6, rtol: 1e-6 });
      const live = backend.memory().buffers;
      for (const f of [...fillers, y]) f.dispose();
      expect(backend.memory().buffers).toBe(live - 5);
      xc.dispose();
    });

    test('a deferred launch reads its inputs as they were, whatever assign() does later', async () => {
      setBackend('webgpu');
      const [gc, g] = pair([4, 5], 9);
      const twice = g.mul(2);
      // assign() gives g the clamp's storage: the clamp (deferred) must still read g's old values,
      // and twice too.
      scope(() => g.assign(T.clamp(g, -0.3, 0.3)));
      await expectAllClose(g, T.clamp(gc, -0.3, 0.3), { atol: 0, rtol: 0 });
      await expectAllClose(twice, gc.mul(2), { atol: 0, rtol: 0 });
      for (const t of [gc, g, twice]) t.dispose();
    });

    test('long chains stay bounded: at most 16 ops per kernel, any length', async () => {
      setBackend('webgpu');
      const one = T.ones([1]);
      let x = T.zeros([1]);
      const n = await launchesOf(() => {
        for (let i = 0; i < 1000; i++) {
          const next = x.add(one);
          x.dispose();
          x = next;
        }
      });
      expect(Array.from(await x.data())).toEqual([1000]);
      expect(n).toBeGreaterThanOrEqual(Math.ceil(1000 / 16));
      expect(n).toBeLessThan(100);
      // Every intermediate kept alive: each one is computed (1000 launches, no deep recursion).
      const kept: Tensor[] = [T.zeros([1])];
      const all = await launchesOf(() => {
        for (let i = 0; i < 1000; i++) kept.push(kept[kept.length - 1].add(one));
      });
      expect(all).toBe(1000);
      expect(Array.from(await kept[1000].data())).toEqual([1000]);
      for (const t of [one, x, ...kept]) t.dispose();
    });

    test('constants of fused ops and integer and boolean chains keep their meaning', async () => {
      await compareBackends([[5, 8]], ([x]) => T.leakyRelu(T.leakyRelu(x, 0.1).mul(-3), 0.3));
      await compareBackends(
        [
          [5, 8],
          [5, 8],
        ],
        ([x, y]) =>
          cast(T.logicalAnd(T.greater(x, 0), T.less(y, 0.5)), 'int32').add(cast(x.mul(10), 'int32')),
      );
      await compareBackends([[4, 4]], ([x]) => T.where(T.greater(T.leakyRelu(x, 0.2), 0), x, x.neg()));
    });

    test('switched off, every op is one launch', async () => {
      setBackend('webgpu');
      const [, x] = pair([32], 8);
      backend.fuseElementwise = false;
      try {
        expect(await launchesOf(() => scope(() => x.exp().add(1).mul(x)).dispose())).toBe(3);
      } finally {
        backend.fuseElementwise = true;
      }
      expect(await launchesOf(() => scope(() => x.exp().add(1).mul(x)).dispose())).toBe(0);
      expect(backend.stats().deferred).toBe(0);
      x.dispose();
    });
  });

  test('scalar operands are uploaded once, kept in a bounded cache and reported apart', async () => {
    setBackend('webgpu');
    const x = tensor(values(8), [8]);
    const before = T.memoryStats();
    const uploads = vi.spyOn(backend, 'upload');
    scope(() => [x.mul(0.123), x.mul(0.123), x.add(0.123)]).forEach((t) => {
      t.dispose();
    });
    expect(uploads).toHaveBeenCalledTimes(1); // one constant, float32 0.123
    uploads.mockRestore();
    const after = T.memoryStats();
    expect(after.constants.tensors).toBeGreaterThanOrEqual(1);
    expect(after.liveTensors).toBe(before.liveTensors);
    expect(after.backends.webgpu?.buffers).toBe(before.backends.webgpu?.buffers);
    expect(await x.mul(0.123).data()).toEqual(
      Float32Array.from(await x.data(), (v) => Math.fround(v * Math.fround(0.123))),
    );
    for (let i = 0; i < 600; i++) scope(() => x.add(i + 0.5)).dispose();
    expect(T.memoryStats().constants.tensors).toBeLessThanOrEqual(512);
    x.dispose();
  });

  describe('elementwise programs', () => {
    const program: T.ElementwiseProgram = {
      name: 'mix',
      inputs: ['a', 'b'],
      scalars: ['s'],
      body: ['d = b - a', 'y = a + s * d', 'm = max(a, sqrt(abs(b))) / (1.0 + s)'],
      outputs: ['y', 'd', 'm'],
    };
    const both = async (a: Tensor, b: Tensor) => {
      const expected = T.runProgram(program, [a, b], { s: 0.3 });
      const actual = T.runProgram(program, [await a.to('webgpu'), await b.to('webgpu')], { s: 0.3 });
      for (let k = 0; k < expected.length; k++)
        await expectAllClose(actual[k], expected[k], { atol: 1e-6, rtol: 1e-5 });
    };

    test('agree with the CPU: vec4 and scalar shaders, offsets, special values', async () => {
      for (const n of [1024, 1023, 4, 1]) {
        const a = tensor(values(n, 1), { backend: 'cpu' });
        const b = tensor(values(n, 2), { backend: 'cpu' });
        await both(a, b);
        if (n > 8) await both(a.slice([2, n - 2]), b.slice([4, n]));
      }
      const specials = [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0, -0, 1e-30, -5, 3];
      await both(tensor(specials, { backend: 'cpu' }), tensor([...specials].reverse(), { backend: 'cpu' }));
    });

    test('more bindings than the device allows run in several passes', async () => {
      const limit = backend.maxStorageBuffers;
      Object.defineProperty(backend, 'maxStorageBuffers', { value: 3, configurable: true });
      try {
        await both(tensor(values(64, 3), { backend: 'cpu' }), tensor(values(64, 4), { backend: 'cpu' }));
        const three = { ...program, name: 'three', inputs: ['a', 'b', 'c'] };
        const x = tensor(values(8, 5), { backend: 'webgpu' });
        expect(() => T.runProgram(three, [x, x, x], { s: 1 })).toThrow(
          /program three: 3 inputs leave no storage binding for an output \(this device binds 3\)/,
        );
      } finally {
        Object.defineProperty(backend, 'maxStorageBuffers', { value: limit, configurable: true });
      }
    });
  });

  describe('errors', () => {
    test('a tensor over the binding limit is a clear error', () => {
      const limit = backend.device.limits.maxStorageBufferBindingSize;
      const n = Math.floor(limit / 4) + 1;
      expect(() => backend.alloc('float32', n)).toThrow(FluxionError);
      expect(() => backend.alloc('float32', n)).toThrow(
        /float32 tensor of \d+ elements .* over this device's storage-buffer binding limit/,
      );
    });

    test('a view of more axes than a kernel addresses is an error of its op, fused or not', async () => {
      setBackend('webgpu');
      await backend.sync();
      const x = T.ones(Array.from({ length: 9 }, () => 2));
      // Reversed axes: no two neighbours form one run of memory, so nothing merges.
      const reversed = T.permute(x, [8, 7, 6, 5, 4, 3, 2, 1, 0]);
      expect(() => T.exp(reversed)).toThrow(/exp: .*at most 8 non-mergeable axes/);
      expect(backend.stats().deferred).toBe(0);
      x.dispose();
      await backend.sync();
    });

    test('a shader compile failure names the op and quotes the generated WGSL', async () => {
      const out = backend.scratch(4);
      backend.dispatch({
        op: 'brokenOp',
        key: 'test|broken',
        source: () => 'fn main( { this is not wgsl }',
        inputs: 0,
        outputs: 1,
        buffers: [out],
        params: [],
        workgroups: 1,
      });
      const error = await backend.sync().catch((e: unknown) => e);
      backend.release(out);
      expect(error).toBeInstanceOf(FluxionError);
      expect((error as FluxionError).op).toBe('brokenOp');
      expect((error as FluxionError).message).toMatch(/generated WGSL[\s\S]*this is not wgsl/);
      await backend.sync();
    });

    test('a lost device makes later calls throw a FluxionError naming the op', async () => {
      const { initWebGPU } = T;
      const second = await initWebGPU({ matmulVariant: 'register' });
      registerBackend(backend);
      setBackend('cpu');
      const buffer = second.alloc('float32', 4);
      second.device.destroy();
      await second.device.lost;
      const arg = { buffer, shape: [4], strides: [1], offset: 0, dtype: 'float32' as const };
      expect(() => second.run('exp', [arg], arg, {})).toThrow(/exp: the WebGPU device was lost/);
      expect(() => second.alloc('float32', 4)).toThrow(FluxionError);
    });

    test('useBestBackend falls back to the CPU with one line, or throws when WebGPU is required', async () => {
      const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
      const saved = process.env.FLUXION_REQUIRE_WEBGPU;
      try {
        delete process.env.FLUXION_REQUIRE_WEBGPU;
        const badDevice = {
          get adapterInfo() {
            throw new Error('no adapter here');
          },
        } as unknown as GPUDevice;
        expect(await useBestBackend({ device: badDevice })).toBe('cpu');
        expect(warn).toHaveBeenCalledTimes(1);
        expect(String(warn.mock.calls[0][0])).toMatch(
          /^fluxion: WebGPU is unavailable \(.*\); using the CPU backend$/,
        );
        process.env.FLUXION_REQUIRE_WEBGPU = '1';
        await expect(useBestBackend({ device: badDevice })).rejects.toThrow(/no adapter here/);
      } finally {
        if (saved === undefined) delete process.env.FLUXION_REQUIRE_WEBGPU;
        else process.env.FLUXION_REQUIRE_WEBGPU = saved;
        warn.mockRestore();
      }
    });
  });

  test('values read back equal what was written, for every dtype', async () => {
    for (const [data, shape] of [
      [new Float32Array([1.5, -2, Number.NaN, Number.POSITIVE_INFINITY]), [2, 2]],
      [new Int32Array([2147483647, -2147483648, 0, 7]), [4]],
    ] as const) {
      const t = tensor(data, [...shape], { backend: 'webgpu' });
      expect(await valuesOf(t)).toEqual(Array.from(data as ArrayLike<number>));
    }
  });
});
