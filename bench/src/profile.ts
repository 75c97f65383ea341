/**
 * `pnpm bench profile [gan|vae|dcgan|wavegan|charlm] [--steps N]`: where the device time of one Fluxion training
 * step goes, on this machine's WebGPU adapter.
 *
 * After a few warm-up steps, one step runs under `WebGPUBackend.profile`, which times every
 * kernel with timestamp queries. The report prints the step's wall time (median of `--steps`
 * plain steps), its device time (the sum of the kernels), and two tables: time by kernel family
 * (the pipeline, e.g. `matmul|subgroup` or `ew4|x0 + x1`), and the costliest launches by op and
 * input shapes, with GFLOP/s for matrix products. It answers "what limits this step": matmul
 * throughput, the count of small kernels, or the host.
 */
import { getBackend, type KernelTiming, type WebGPUBackend } from '@fluxion/tensor';
import { setupWebGPU } from './device.js';
import { fluxionEngine } from './engines/fluxion.js';
import { formatNumber, textTable, timeRuns } from './harness.js';
import { MODELS, stepInputs } from './models.js';
import { makeRunner, modelParams, TRAIN_WARMUP_MS } from './train.js';

/** Timings grouped under one name: how many launches and their total time. */
export interface TimingGroup {
  name: string;
  count: number;
  ms: number;
}

/** Timings grouped by `nameOf`, costliest group first. */
function groupTimings(timings: readonly KernelTiming[], nameOf: (t: KernelTiming) => string): TimingGroup[] {
  const groups = new Map<string, TimingGroup>();
  for (const t of timings) {
    const name = nameOf(t);
    const g = groups.get(name) ?? { name, count: 0, ms: 0 };
    g.count++;
    g.ms += t.ms;
    groups.set(name, g);
  }
  return [...groups.values()].sort((a, b) => b.ms - a.ms);
}

/** Kernels per family (the pipeline key's first two parts), costliest first. */
export const byFamily = (timings: readonly KernelTiming[]) =>
  groupTimings(timings, (t) => t.kernel.split('|').slice(0, 2).join('|'));

/** Launches per label (op and input shapes), costliest first. */
export const byLaunch = (timings: readonly KernelTiming[]) => groupTimings(timings, (t) => t.label);

/**
 * Floating-point operations of a matmul launch from its label (`matmul [..., M, K] [..., K, N]`,
 * then `[N]` when a bias is added), or null for other launches.
 *
 * @example
 * ```ts
 * matmulFlops('matmul [64,1024] [1024,784]'); // 2·64·1024·784
 * ```
 */
export function matmulFlops(label: string): number | null {
  const m = /^matmul \[([\d,]+)\] \[([\d,]+)\](?: \[\d+\])?$/.exec(label);
  if (!m) return null;
  const a = m[1].split(',').map(Number);
  const b = m[2].split(',').map(Number);
  const batch = a.slice(0, -2).reduce((x, y) => x * y, 1);
  return 2 * batch * a[a.length - 2] * a[a.length - 1] * b[b.length - 1];
}

/** A table whose first column is a name and the others figures. */
const table = (head: string[], rows: string[][]) => textTable(head, rows, (column) => column > 0);

/** Runs the profile command with the arguments after `profile`. */
export async function profileMain(argv: string[]): Promise<void> {
  const model = argv.find((a) => !a.startsWith('-')) ?? 'gan';
  const stepsAt = argv.indexOf('--steps');
  const steps = stepsAt >= 0 ? Math.max(1, Number(argv[stepsAt + 1]) || 1) : 9;
  const spec = MODELS[model];
  if (!spec) throw new Error(`bench profile: unknown model '${model}' (${Object.keys(MODELS).join(', ')})`);
  const adapter = await setupWebGPU();
  if (!adapter) throw new Error('bench profile: no WebGPU adapter');
  const engine = await fluxionEngine('webgpu');
  if (typeof engine === 'string') throw new Error(`bench profile: ${engine}`);
  await engine.activate();
  const gpu = getBackend('webgpu') as WebGPUBackend;
  const runner = await makeRunner(engine, spec, await modelParams(spec));
  const inputs = await stepInputs(spec, 7);
  const wall = await timeRuns(
    async () => {
      await runner.step(inputs);
      await runner.sync();
    },
    { warmup: 3, warmupMs: TRAIN_WARMUP_MS, runs: steps },
  );
  const timings = await gpu.profile(async () => {
    await runner.step(inputs);
    await runner.sync();
  });
  runner.dispose();
  const device = timings.reduce((s, t) => s + t.ms, 0);
  console.log(`${spec.name} on ${adapter.name} (${adapter.info.description ?? ''})`);
  console.log(
    `wall ${formatNumber(wall.medianMs)} ms (median of ${steps}), device ${formatNumber(device)} ms in ${timings.length} kernels`,
  );
  console.log('');
  console.log(
    table(
      ['kernel family', 'launches', 'ms', 'share'],
      byFamily(timings).map((g) => [
        g.name,
        String(g.count),
        formatNumber(g.ms),
        `${((100 * g.ms) / device).toFixed(1)} %`,
      ]),
    ),
  );
  console.log('');
  console.log(
    table(
      ['launch (op and input shapes)', 'count', 'ms', 'µs each', 'GFLOP/s'],
      byLaunch(timings)
        .slice(0, 20)
        .map((l) => {
          const flops = matmulFlops(l.name);
          return [
            l.name,
            String(l.count),
            formatNumber(l.ms),
            formatNumber((1000 * l.ms) / l.count),
            flops === null ? '' : formatNumber((flops * l.count) / (l.ms * 1e6)),
          ];
        }),
    ),
  );
}
