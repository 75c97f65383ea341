/**
 * Gradients on the WebGPU backend equal the CPU backend's (float32, tolerance by case), for every
 * differentiable case of the shared table, and backward leaves no GPU buffer behind. Runs when an
 * adapter is found (`webgpu-env.ts`); with FLUXION_REQUIRE_WEBGPU=1 (CI) a missing adapter is a
 * failure, not a skip.
 */
import { gradients } from '@fluxion/autograd';
import * as T from '@fluxion/tensor';
import { memoryStats, mul, scope, type Tensor, tensor } from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { COMPOSITE_CASES, type CompositeCase, OP_CASES, type OpCase } from '../../tensor/test/cases.js';
import { expectAllClose, runs } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { setupCase, spreadTies, TIE_SENSITIVE } from './case-inputs.js';

const gpu = await webgpuEnv();

/** Float32 tolerance of a gradient: ten times the case's own, at least 1e-4 / 1e-3. */
function gradTolerance(c: OpCase | CompositeCase) {
  const tol = c.tol ?? { atol: 1e-6, rtol: 1e-5 };
  return { atol: Math.max(1e-4, 10 * tol.atol), rtol: Math.max(1e-3, 10 * tol.rtol) };
}

/** d Σ(w · f(xs)) / d xs on one backend, read back; `w` is a fixed pattern of weights. */
async function gradientsOn(
  backend: 'cpu' | 'webgpu',
  c: OpCase | CompositeCase,
  hosts: Parameters<typeof setupCase>[1],
): Promise<number[][]> {
  const { f, inputs, dispose } = setupCase(c, hosts, backend, 'float32');
  try {
    for (const x of inputs) x.requiresGrad = true;
    const grads = scope(() => {
      const out = f(...inputs);
      const pattern = Array.from({ length: out.size }, (_, i) => (((i * 7) % 11) - 5) / 4);
      const weights = tensor(new Float32Array(pattern), out.shape, { backend });
      return gradients(T.sum(mul(out, weights)), inputs);
    });
    const values = await Promise.all(grads.map(async (g: Tensor) => [...(await g.data())]));
    for (const g of grads) g.dispose();
    return values;
  } finally {
    dispose();
  }
}

const differentiable = [...OP_CASES, ...COMPOSITE_CASES].filter((c) => c.grad === true);

describe.skipIf(!gpu.backend)(`WebGPU gradients equal CPU gradients (float32)${skipNote(gpu)}`, () => {
  test.each(differentiable.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await fc.assert(
      fc.asyncProperty(c.inputs, async (drawn) => {
        const hosts = TIE_SENSITIVE.has(c.op) ? spreadTies(drawn) : drawn;
        const cpu = await gradientsOn('cpu', c, hosts);
        const gpu = await gradientsOn('webgpu', c, hosts);
        expect(gpu.length).toBe(cpu.length);
        for (let i = 0; i < cpu.length; i++) await expectAllClose(gpu[i], cpu[i], gradTolerance(c));
      }),
      runs(5),
    );
  });

  test('backward leaves no GPU buffer behind', async () => {
    const buffers = () => memoryStats().backends.webgpu?.buffers ?? 0;
    const before = buffers();
    const w = tensor(
      [
        [0.5, -1],
        [2, 0.25],
      ],
      { backend: 'webgpu' },
    );
    w.requiresGrad = true;
    const x = tensor([[1, 2]], { backend: 'webgpu' });
    for (let step = 0; step < 3; step++) {
      scope(() => T.mean(T.square(T.tanh(T.matmul(x, w)))).backward());
    }
    expect(w.grad).not.toBeNull();
    await w.grad!.data();
    w.dispose();
    x.dispose();
    expect(buffers()).toBe(before);
  });
});
