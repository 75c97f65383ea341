/**
 * The `cpu` suite: the reference backend's matmul throughput at N = 256 and 512 (issue 2 asks
 * for it not to be slower than TensorFlow.js's pure-JS CPU backend, about 1.5 GFLOP/s here).
 */
import { matmul, randn, scope } from '@fluxion/tensor';
import { type BenchResult, timeRuns } from './harness.js';

/** Runs the CPU matmul cases, checking one entry of each product against a dot product first. */
export async function cpuSuite(): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const n of [256, 512]) {
    const a = randn([n, n], { seed: 1, backend: 'cpu' });
    const b = randn([n, n], { seed: 2, backend: 'cpu' });
    const [ad, bd, cd] = await Promise.all([a.data(), b.data(), scope(() => matmul(a, b)).data()]);
    let ref = 0;
    for (let k = 0; k < n; k++) ref += ad[7 * n + k] * bd[k * n + 5];
    if (Math.abs(cd[7 * n + 5] - ref) > 1e-3 * Math.max(1, Math.abs(ref)))
      throw new Error(`cpu matmul ${n}: wrong result`);
    const t = await timeRuns(() => scope(() => void matmul(a, b)), { warmup: 1, runs: 5 });
    results.push({
      suite: 'cpu',
      name: `matmul ${n}`,
      engine: 'fluxion',
      backend: 'cpu',
      ...t,
      metrics: { 'GFLOP/s': (2 * n ** 3) / (t.medianMs * 1e6) },
    });
    a.dispose();
    b.dispose();
  }
  return results;
}
