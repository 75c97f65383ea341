/**
 * Moving tensors between backends with `to()`, and the clear errors for mixing backends or for a
 * dtype the target backend lacks.
 */
import { add, FluxionError, tensor } from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

describe.skipIf(!gpu.backend)(`to(backend)${skipNote(gpu)}`, () => {
  test('round-trips values and keeps the tensor when already there', async () => {
    const x = tensor(
      [
        [1, 2, 3],
        [4, 5, 6],
      ],
      { backend: 'cpu' },
    );
    const g = await x.transpose(0, 1).to('webgpu');
    expect(g.backend.name).toBe('webgpu');
    expect(g.shape).toEqual([3, 2]);
    expect(await g.array()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    expect(await g.to('webgpu')).toBe(g);
    const back = await g.to('cpu');
    expect(back.backend.name).toBe('cpu');
    expect(await back.array()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    for (const t of [x, g, back]) t.dispose();
  });

  test('mixing backends and float64 on WebGPU are clear errors', async () => {
    const c = tensor([1, 2], { backend: 'cpu' });
    const g = tensor([1, 2], { backend: 'webgpu' });
    expect(() => add(c, g)).toThrow(/add: inputs live on different backends \(cpu, webgpu\)/);
    const d = tensor([1, 2], { dtype: 'float64', backend: 'cpu' });
    await expect(d.to('webgpu')).rejects.toThrow(FluxionError);
    await expect(d.to('webgpu')).rejects.toThrow(/webgpu backend has no dtype float64/);
    for (const t of [c, g, d]) t.dispose();
  });
});
