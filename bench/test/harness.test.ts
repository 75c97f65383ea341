/**
 * The bench's own logic, without timing anything: the result check, the table and its ratios,
 * the repetition count of short cases, adapter names, the models' bookkeeping and the chart file.
 */
import { describe, expect, it } from 'vitest';
import { barChart } from '../src/chart.js';
import { adapterName } from '../src/device.js';
import {
  assertClose,
  type BenchResult,
  fluxionReference,
  formatTable,
  skippedResult,
  timeRuns,
} from '../src/harness.js';
import { isolatedArgs } from '../src/isolate.js';
import {
  DCGAN,
  GAN,
  initialParams,
  layerParamShapes,
  modelNetworks,
  stepFlops,
  stepInputs,
  VAE,
} from '../src/models.js';
import { byFamily, byLaunch, matmulFlops } from '../src/profile.js';

const row = (engine: string, backend: string, medianMs: number, name = 'matmul 1024'): BenchResult => ({
  suite: 'ops',
  name,
  engine,
  backend,
  medianMs,
  minMs: medianMs,
  maxMs: medianMs,
  runs: 5,
  reps: 1,
  timing: 'wall',
  metrics: { 'GFLOP/s': 2 / medianMs },
});

describe('assertClose', () => {
  it('accepts values within atol + rtol·|expected|', () => {
    expect(() => assertClose('x', [1.0009, 2], [1, 2], { rtol: 1e-3, atol: 0 })).not.toThrow();
  });

  it('names the worst element and both values', () => {
    expect(() => assertClose('matmul', [1, 5], [1, 2], { rtol: 1e-3, atol: 0 })).toThrow(
      /matmul: element 1 is 5, the reference says 2/,
    );
  });

  it('rejects NaN and a length mismatch', () => {
    expect(() => assertClose('x', [Number.NaN], [1], { rtol: 1, atol: 1 })).toThrow(/element 0/);
    expect(() => assertClose('x', [1], [1, 2], { rtol: 1, atol: 1 })).toThrow(
      /1 values, the reference has 2/,
    );
  });
});

describe('formatTable', () => {
  it('gives each row its time over Fluxion WebGPU time for the same case', () => {
    const rows = [row('fluxion', 'webgpu', 2), row('fluxion', 'cpu', 100), row('tfjs', 'webgpu', 14)];
    expect(fluxionReference(rows, rows[2])).toBe(rows[0]);
    const lines = formatTable(rows).split('\n');
    expect(lines[2]).toMatch(/1\.00$/);
    expect(lines[4]).toMatch(/tfjs webgpu.*7\.00$/);
  });

  it('falls back to Fluxion CPU and shows skip reasons', () => {
    const rows = [
      row('fluxion', 'cpu', 10),
      skippedResult('ops', 'matmul 1024', 'jax-js', 'wasm', 'no adapter'),
    ];
    const table = formatTable(rows);
    expect(fluxionReference(rows, rows[1])).toBe(rows[0]);
    expect(table).toContain('skipped: no adapter');
  });

  it('shows the device time where a row has one', () => {
    const rows = [{ ...row('fluxion', 'webgpu', 2), gpuMs: 1.25 }, row('tfjs', 'webgpu', 14)];
    const [head, , first, second] = formatTable(rows).split('\n');
    const column = head.indexOf('gpu ms');
    expect(column).toBeGreaterThan(0);
    expect(first.slice(column).trimStart()).toMatch(/^1\.25 /);
    expect(second.slice(column, column + 6).trim()).toBe('');
  });
});

describe('profile', () => {
  it('counts matmul FLOPs from launch labels, batch dimensions included', () => {
    expect(matmulFlops('matmul [64,1024] [1024,784]')).toBe(2 * 64 * 1024 * 784);
    expect(matmulFlops('matmul [3,8,16] [3,16,4]')).toBe(2 * 3 * 8 * 16 * 4);
    expect(matmulFlops('matmul [128,784] [784,256] [256]')).toBe(2 * 128 * 784 * 256); // with a bias
    expect(matmulFlops('add [64,512] [64,512]')).toBeNull();
  });

  it('groups timings by kernel family, costliest first', () => {
    const t = (kernel: string, ms: number) => ({ label: 'x', kernel, workgroups: 1, ms });
    const groups = byFamily([
      t('ew4|x0 + x1|f32,f32>f32|vv', 1),
      t('matmul|subgroup|f32|n4', 5),
      t('ew4|x0 + x1|f32,f32>f32|vr', 2),
      t('matmul|subgroup|f32|k4', 4),
    ]);
    expect(groups).toEqual([
      { name: 'matmul|subgroup', count: 2, ms: 9 },
      { name: 'ew4|x0 + x1', count: 2, ms: 3 },
    ]);
    const launches = byLaunch([
      { label: 'add [4] [4]', kernel: 'ew4', workgroups: 1, ms: 1 },
      { label: 'matmul [2,2] [2,2]', kernel: 'matmul', workgroups: 1, ms: 2 },
      { label: 'add [4] [4]', kernel: 'ew4', workgroups: 1, ms: 2 },
    ]);
    expect(launches).toEqual([
      { name: 'add [4] [4]', count: 2, ms: 3 },
      { name: 'matmul [2,2] [2,2]', count: 1, ms: 2 },
    ]);
  });
});

describe('timeRuns', () => {
  it('does the warm-up calls, then the timed runs, each with the same repetition count', async () => {
    const calls: number[] = [];
    const t = await timeRuns((reps) => void calls.push(reps), { warmup: 2, runs: 3 });
    expect(calls).toEqual([1, 1, 1, 1, 1]);
    expect(t.runs).toBe(3);
    expect(t.minMs).toBeLessThanOrEqual(t.medianMs);
    expect(t.medianMs).toBeLessThanOrEqual(t.maxMs);
  });

  it('keeps warming up until warmupMs has passed, then times the runs', async () => {
    const calls: number[] = [];
    const start = performance.now();
    const t = await timeRuns(
      async (reps) => {
        calls.push(reps);
        await new Promise((resolve) => setTimeout(resolve, 2));
      },
      { warmup: 1, warmupMs: 30, runs: 2 },
    );
    expect(performance.now() - start).toBeGreaterThanOrEqual(30);
    // At least 30 ms of 2 ms calls before the two timed runs: well over the one warm-up call.
    expect(calls.length).toBeGreaterThan(5);
    expect(t.runs).toBe(2);
  });

  it('stops warming up after a call that alone exceeds the budget', async () => {
    const calls: number[] = [];
    const t = await timeRuns(
      async (reps) => {
        calls.push(reps);
        await new Promise((resolve) => setTimeout(resolve, 5));
      },
      { warmup: 3, warmupMs: 1000, runs: 4, budgetMs: 1 },
    );
    expect(calls).toEqual([1, 1]);
    expect(t.runs).toBe(1);
  });

  it('repeats short work to fill minRunMs', async () => {
    const calls: number[] = [];
    const t = await timeRuns((reps) => void calls.push(reps), { warmup: 0, runs: 2, minRunMs: 5 });
    expect(t.reps).toBeGreaterThan(1);
    expect(calls.slice(1)).toEqual([t.reps, t.reps]);
  });
});

describe('adapterName', () => {
  it('names software and real adapters', () => {
    expect(adapterName({ vendor: 'mesa', description: 'llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)' })).toBe(
      'lavapipe',
    );
    expect(adapterName({ vendor: 'google', description: 'SwiftShader Device (Subzero)' })).toBe(
      'swiftshader',
    );
    expect(adapterName({ vendor: 'nvidia', description: 'NVIDIA H200' })).toBe('nvidia-h200');
  });
});

describe('models', () => {
  it('count the seed GAN step at about 1.37 GFLOP of products', () => {
    expect(stepFlops(GAN) / 1e9).toBeCloseTo(1.37, 2);
    expect(stepFlops(VAE)).toBeGreaterThan(0);
    expect(stepFlops(DCGAN)).toBeGreaterThan(stepFlops(GAN));
  });

  it('give every layer PyTorch-layout weights and a seeded, bounded initialisation', async () => {
    const decoder = modelNetworks(VAE)[3];
    expect(decoder).toBe(VAE.decoder);
    const params = await initialParams(decoder, 1);
    expect(params.map((p) => p.shape)).toEqual(decoder.layers.flatMap(layerParamShapes));
    const bound = 1 / Math.sqrt(20);
    expect(Math.max(...params[0].data.map(Math.abs))).toBeLessThanOrEqual(bound);
    expect((await initialParams(decoder, 1))[0].data).toEqual(params[0].data);
  });

  it('make step inputs of the batch size, pixels scaled for the model', async () => {
    const images = new Float32Array(64 * 784).fill(1);
    const gan = await stepInputs(GAN, 3, images);
    expect(gan.real.shape).toEqual([64, 784]);
    expect(gan.real.data[0]).toBe(1);
    expect(gan.z1.shape).toEqual([64, 100]);
    const vae = await stepInputs(VAE, 3);
    expect(Math.min(...vae.x.data)).toBeGreaterThanOrEqual(0);
    expect(vae.eps.shape).toEqual([128, 20]);
  });
});

describe('barChart', () => {
  it('writes a PNG', () => {
    const png = barChart({ adapter: 'lavapipe', command: 'test' }, [
      row('fluxion', 'webgpu', 2),
      row('tfjs', 'webgpu', 14),
      skippedResult('ops', 'matmul 1024', 'jax-js', 'wasm', 'no adapter'),
    ]);
    expect([...png.subarray(0, 8)]).toEqual([137, 80, 78, 71, 13, 10, 26, 10]);
  });
});

describe('isolatedArgs', () => {
  it("gives the child the run's suites and options, one engine, its own output folder and no probe", () => {
    const options = { runs: 3, warmup: 1, quick: true, budgetMs: 20000, maxSteps: 0, filter: 'gan' };
    expect(isolatedArgs(['ops', 'train'], options, 'jax-js-wasm', '/tmp/o')).toEqual([
      'ops',
      'train',
      '--engines',
      'jax-js-wasm',
      '--runs',
      '3',
      '--warmup',
      '1',
      '--budget-ms',
      '20000',
      '--max-steps',
      '0',
      '--quick',
      '--filter',
      'gan',
      '--out',
      '/tmp/o',
      '--no-probe',
    ]);
  });
});
