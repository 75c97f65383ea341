/**
 * Measures the WebGPU backend's matmul kernel families on the current adapter, for the plain
 * product and the two transposed products of a backward pass (read in place), plus the cost of one
 * small op (dispatch overhead). The backend itself picks a family by a short trial at
 * initialisation; this script shows the full picture behind that choice.
 *
 *   node scripts/run-ts.mjs bench/src/matmul-trial.ts [N ...] [--variant subgroup|register|shared]
 *
 * Prints one line per (variant, layout, N): the best of five timed runs in GFLOP/s of wall time, and
 * in GFLOP per second of process CPU time (which includes the software adapter's worker threads,
 * so it stays meaningful when other processes share the CPUs).
 */
import { initWebGPU, matmul, randn, type Tensor, tensor } from '@fluxion/tensor';

const args = process.argv.slice(2);
const variantFlag = args.indexOf('--variant');
const only = variantFlag >= 0 ? args[variantFlag + 1] : undefined;
const sizes = args
  .filter((a, i) => /^\d+$/.test(a) && (variantFlag < 0 || i !== variantFlag + 1))
  .map(Number);
const backend = await initWebGPU();
console.log(`adapter: ${backend.adapterInfo.description} (trial chose ${backend.matmulVariant})`);

const variants = (['subgroup', 'register', 'shared'] as const).filter(
  (v) => (!only || v === only) && (v !== 'subgroup' || backend.subgroups8),
);
const layouts: Record<string, (a: Tensor, b: Tensor) => Tensor> = {
  A·B: (a, b) => matmul(a, b),
  Aᵀ·B: (a, b) => matmul(a.T, b),
  A·Bᵀ: (a, b) => matmul(a, b.T),
};

for (const n of sizes.length ? sizes : [256, 512, 1024, 2048]) {
  const a = randn([n, n], { seed: 1, backend: 'webgpu' });
  const b = randn([n, n], { seed: 2, backend: 'webgpu' });
  for (const variant of variants) {
    backend.matmulVariant = variant;
    for (const [layout, f] of Object.entries(layouts)) {
      f(a, b).dispose();
      await backend.sync();
      const reps = Math.max(1, Math.round(2e9 / (2 * n ** 3)));
      let best = 0;
      let bestCpu = 0;
      for (let run = 0; run < 5; run++) {
        const start = performance.now();
        const cpu = process.cpuUsage();
        for (let r = 0; r < reps; r++) f(a, b).dispose();
        await backend.sync();
        const used = process.cpuUsage(cpu);
        best = Math.max(best, (2 * n ** 3 * reps) / ((performance.now() - start) * 1e6));
        bestCpu = Math.max(bestCpu, (2 * n ** 3 * reps) / ((used.user + used.system) * 1e3));
      }
      console.log(
        `${variant.padEnd(8)} ${layout.padEnd(5)} N=${String(n).padEnd(5)} ${best.toFixed(1).padStart(6)} GFLOP/s wall, ${bestCpu.toFixed(1).padStart(6)} GFLOP per CPU-second`,
      );
    }
  }
  a.dispose();
  b.dispose();
}

// Dispatch overhead: many tiny elementwise ops (each one dispatch), then one sync.
const x = tensor(new Float32Array(64).fill(1), [64], { backend: 'webgpu' });
const ops = 5000;
let bestMicros = Number.POSITIVE_INFINITY;
for (let run = 0; run < 5; run++) {
  await backend.sync();
  const start = performance.now();
  for (let i = 0; i < ops; i++) x.add(x).dispose();
  await backend.sync();
  bestMicros = Math.min(bestMicros, ((performance.now() - start) * 1000) / ops);
}
console.log(
  `dispatch overhead: ${bestMicros.toFixed(1)} µs per small op (add of 64 elements, ${ops} ops, then sync)`,
);
