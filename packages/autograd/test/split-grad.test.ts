/**
 * Gradients through the parts of one tensor (`unbind`, `split`, any mix of slices): backward
 * places all the slices' gradients of a tensor at once (`sumSlices`), so it must give the sum of
 * the padded gradients exactly (fast-check against a host loop, for slices that tile, overlap,
 * skip parts, cut several axes or step), pass float64 gradchecks of first and second order, agree
 * with the CPU on WebGPU, and write a number of elements linear in the number of parts (counted
 * from the kernels the backend runs, not timed).
 */
import { gradcheck, gradgradcheck, gradients } from '@fluxion/autograd';
import {
  add,
  getBackend,
  memoryStats,
  mul,
  type SliceSpec,
  scope,
  sizeOf,
  slice,
  split,
  stack,
  sum,
  type Tensor,
  tanh,
  tensor,
  unbind,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { expectAllClose, runs } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';

const gpu = await webgpuEnv();
const f64 = { dtype: 'float64' } as const;

/** A float64 tensor of `shape` with distinct smooth values from `seed`. */
function seeded(shape: number[], seed: number, options: { backend?: 'cpu' | 'webgpu' } = {}): Tensor {
  const size = shape.reduce((p, d) => p * d, 1);
  const data = Array.from({ length: size }, (_, i) => Math.sin(seed * 7.1 + i * 1.3) * 0.9);
  return options.backend === 'webgpu'
    ? tensor(new Float32Array(data), shape, { backend: 'webgpu' })
    : tensor(new Float64Array(data), shape, f64);
}

/** A nonlinear function of every step of `x [B, T, F]` and of its neighbour (a tiny recurrence). */
function recurrence(x: Tensor): Tensor {
  const steps = unbind(x, 1);
  let h = tanh(steps[0]);
  const outs = [h];
  for (const xt of steps.slice(1)) {
    h = tanh(add(xt, mul(h, 0.7)));
    outs.push(h);
  }
  return stack(outs, 1);
}

describe('gradients through the parts of a tensor', () => {
  test('unbind and split: float64 gradcheck and gradgradcheck', async () => {
    const x = seeded([2, 4, 3], 1);
    await gradcheck(recurrence, [x]);
    await gradgradcheck(recurrence, [x]);
    const parts = (t: Tensor) => {
      const [a, b, c] = split(t, [1, 2, 1], 1);
      return add(sum(mul(tanh(a), b), 1), mul(c, c));
    };
    await gradcheck(parts, [x]);
    await gradgradcheck(parts, [x]);
  });

  test('parts left unused get zeros, the used ones their gradient', async () => {
    const x = seeded([2, 5, 3], 2);
    x.requiresGrad = true;
    const [dx] = scope(() => {
      const steps = unbind(x, 1);
      return gradients(sum(add(mul(steps[1], 2), mul(steps[3], steps[3]))), [x]);
    });
    const xs = await x.array();
    const expected = (xs as number[][][]).map((row) =>
      row.map((v, t) => v.map((e) => (t === 1 ? 2 : t === 3 ? 2 * e : 0))),
    );
    expect(await dx.array()).toEqual(expected);
    await gradcheck(
      (t) => {
        const [first, , last] = split(t, [2, 1, 2], 1);
        return sum(mul(last, tanh(first)));
      },
      [x],
    );
    dx.dispose();
    x.dispose();
  });

  test('any mix of slices (tiling, overlapping, several axes, strided) and a direct use sums exactly, leaving no tensor behind', async () => {
    const axisSpec = fc
      .tuple(fc.nat(5), fc.nat(5), fc.integer({ min: 1, max: 3 }))
      .map(([a, b, step]): SliceSpec => [Math.min(a, b), Math.max(a, b) + 1, step]);
    const sliceArb = fc.tuple(
      fc.oneof(fc.constant(null), axisSpec),
      fc.oneof(fc.constant(null), axisSpec),
      fc.boolean(),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(sliceArb, { minLength: 1, maxLength: 6 }),
        fc.boolean(),
        async (specs, direct) => {
          const shape = [4, 6];
          const live = memoryStats().liveTensors;
          const x = seeded(shape, 3);
          x.requiresGrad = true;
          // loss = Σₖ k · Σ slice_k(x) (+ Σ x²): the gradient of slice k is k on its elements
          const expected = new Array(24).fill(0);
          const host = Array.from(await x.data());
          if (direct) for (const [i, v] of host.entries()) expected[i] += 2 * v;
          const index = (spec: SliceSpec, dim: number) => {
            if (spec === null) return [...Array(dim).keys()];
            const [lo, hi, step] = spec as number[];
            const out: number[] = [];
            for (let i = Math.min(lo, dim); i < Math.min(hi, dim); i += step) out.push(i);
            return out;
          };
          specs.forEach(([s0, s1], k) => {
            for (const i of index(s0, 4)) for (const j of index(s1, 6)) expected[i * 6 + j] += k + 1;
          });
          const [dx] = scope(() => {
            let loss = direct ? sum(mul(x, x)) : tensor(0, f64);
            specs.forEach(([s0, s1, flip], k) => {
              const part = flip ? slice(slice(x, null, s1), s0) : slice(x, s0, s1);
              loss = add(loss, mul(sum(part), k + 1));
            });
            return gradients(loss, [x]);
          });
          await expectAllClose(dx, expected, { atol: 1e-12, rtol: 1e-12 });
          dx.dispose();
          x.dispose();
          expect(memoryStats().liveTensors).toBe(live);
        },
      ),
      runs(40),
    );
  });

  test('backward writes a number of elements linear in the number of parts', () => {
    const cpu = getBackend('cpu');
    /** Elements written and kernels launched by the backward pass of a loop over T steps. */
    const count = (steps: number) => {
      const x = seeded([3, steps, 4], 4);
      x.requiresGrad = true;
      const spy = vi.spyOn(cpu, 'run');
      try {
        scope(() => {
          const y = recurrence(x);
          spy.mockClear();
          gradients(sum(y), [x]);
        });
        const written = spy.mock.calls.reduce((n, [, , out]) => n + sizeOf(out.shape), 0);
        return { written: written / x.size, launches: spy.mock.calls.length / steps };
      } finally {
        spy.mockRestore();
        x.dispose();
      }
    };
    const [short, long] = [count(8), count(64)];
    // Per element and per step, about the same work at T = 8 and at T = 64 (≈ 6 elements written
    // per element of x); padding every step's gradient to [3, T, 4] and adding wrote ≈ 2T + 4.
    expect(long.written).toBeLessThanOrEqual(short.written * 1.1);
    expect(long.written).toBeLessThan(8);
    expect(long.launches).toBeLessThanOrEqual(short.launches * 1.05);
  });
});

describe.skipIf(!gpu.backend)(`gradients through the parts of a tensor on WebGPU${skipNote(gpu)}`, () => {
  test('unbind and split gradients equal the CPU ones, and no buffer is left behind', async () => {
    const f = (x: Tensor) => {
      const [head, , tail] = split(x, [2, 1, 3], 1); // the middle part unused
      return sum(mul(recurrence(add(head, 0.5)), slice(tail, null, [1])));
    };
    const grad = async (backend: 'cpu' | 'webgpu') => {
      const x = seeded([2, 6, 5], 5, { backend });
      x.requiresGrad = true;
      const [dx] = scope(() => gradients(f(x), [x]));
      const values = Array.from(await dx.data());
      dx.dispose();
      x.dispose();
      return values;
    };
    const buffers = () => memoryStats().backends.webgpu?.buffers ?? 0;
    const before = buffers();
    await expectAllClose(await grad('webgpu'), await grad('cpu'), { atol: 1e-5, rtol: 1e-4 });
    expect(buffers()).toBe(before);
  });
});
