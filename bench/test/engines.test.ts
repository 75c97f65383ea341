/**
 * The peers run where the bench says they run. TensorFlow.js's WebGPU backend hands ops on small
 * tensors whose data is on the CPU to its CPU kernels by default; the bench turns that off so
 * that its rows measure the device. (A setting read at module load once made the dispatch row
 * time JavaScript arithmetic: 5 µs per "dispatch".) And the adapter speed probe that brackets
 * each engine's measurements runs, and its note flags a run whose machine changed speed.
 */
import { describe, expect, it } from 'vitest';
import { setupWebGPU } from '../src/device.js';
import { probeNote, speedProbe } from '../src/probe.js';

const adapter = await setupWebGPU();
if (!adapter && process.env.FLUXION_REQUIRE_WEBGPU === '1') {
  throw new Error('bench engines test: no WebGPU adapter (FLUXION_REQUIRE_WEBGPU=1)');
}

describe.skipIf(!adapter)('tfjs-webgpu engine', () => {
  it('runs a one-element add on the device, not on the CPU', async () => {
    const { tfjsEngine } = await import('../src/engines/tfjs.js');
    const tf = await import('@tensorflow/tfjs-core');
    const engine = await tfjsEngine('webgpu');
    expect(engine).not.toBeNull();
    await engine?.activate();
    const [a, b] = [tf.tensor1d([1]), tf.tensor1d([2])];
    const sum = engine?.ops.add(a, b) as InstanceType<typeof tf.Tensor>;
    // The WebGPU backend's record of the result: a GPU buffer when a kernel produced it, none when
    // the CPU computed the values.
    const backend = tf.backend() as unknown as { tensorMap: { get(id: object): { resource?: unknown } } };
    expect(backend.tensorMap.get(sum.dataId).resource ?? null).not.toBeNull();
    expect(Array.from(await sum.data())).toEqual([3]);
    tf.dispose([a, b, sum]);
  });
});

describe.skipIf(!adapter)('speed probe', () => {
  it('times its kernel on the adapter', async () => {
    const ms = await speedProbe();
    expect(ms).not.toBeNull();
    expect(ms).toBeGreaterThan(0);
  });
});

describe('probe note', () => {
  it('lists the readings and warns when they spread by more than 1.2×', () => {
    const steady = probeNote([
      { label: 'fluxion-webgpu', before: 10, after: 10.4 },
      { label: 'tfjs-webgpu', before: 10.2, after: 11 },
    ]);
    expect(steady).toBe(
      'speed probe (ms, lower is faster): fluxion-webgpu 10.0 → 10.4, tfjs-webgpu 10.2 → 11.0',
    );
    const drifted = probeNote([
      { label: 'fluxion-webgpu', before: 10, after: 16 },
      { label: 'tfjs-webgpu', before: null, after: 10 },
    ]);
    expect(drifted).toMatch(/fluxion-webgpu 10\.0 → 16\.0, tfjs-webgpu — → 10\.0/);
    expect(drifted).toMatch(/WARNING: the machine's speed changed by 1\.60× during the run/);
  });
});
