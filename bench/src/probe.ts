/**
 * A speed probe for the adapter: one fixed WGSL kernel, timed. A run records it before and after
 * each engine, so a results file shows whether the machine kept its speed while the engines it
 * compares were measured.
 *
 * Why: a shared or virtual machine can slow down for minutes at a time. On the 2-core VM this suite
 * was developed on, lavapipe ran 1.5–2× slower during such spells while single-threaded
 * JavaScript and memory-bandwidth loops kept their speed, so only a GPU kernel shows them, and
 * an engine measured in a slow spell looks that much worse than its peers.
 */
import { timeRuns } from './harness.js';

/** Storage-buffer loads and multiply-adds per invocation, over a 1 MiB buffer. */
const PROBE_WGSL = `
@group(0) @binding(0) var<storage, read> src: array<f32>;
@group(0) @binding(1) var<storage, read_write> dst: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3u) {
  var acc = 0.0;
  for (var k = 0u; k < 512u; k++) {
    acc = fma(src[(id.x * 7u + k * 64u) & 262143u], 1.0001, acc);
  }
  dst[id.x] = acc;
}`;

const WORKGROUPS = 512;
const REPEATS = 5;

/**
 * Median milliseconds of the probe kernel on the default adapter of `navigator.gpu` (set up by
 * `setupWebGPU`), on a device of its own that is destroyed after; null without an adapter.
 *
 * @example
 * ```ts
 * await setupWebGPU();
 * console.log(`probe ${(await speedProbe())?.toFixed(1)} ms`);
 * ```
 */
export async function speedProbe(): Promise<number | null> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  let device: GPUDevice;
  try {
    const adapter = await gpu?.requestAdapter();
    if (!adapter) return null;
    device = await adapter.requestDevice();
  } catch {
    return null;
  }
  try {
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST;
    const src = device.createBuffer({ size: 1 << 20, usage: storage });
    const dst = device.createBuffer({ size: WORKGROUPS * 64 * 4, usage: storage });
    const pipeline = device.createComputePipeline({
      layout: 'auto',
      compute: { module: device.createShaderModule({ code: PROBE_WGSL }), entryPoint: 'main' },
    });
    const group = device.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [src, dst].map((buffer, binding) => ({ binding, resource: { buffer } })),
    });
    const once = async () => {
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, group);
      pass.dispatchWorkgroups(WORKGROUPS);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await device.queue.onSubmittedWorkDone();
    };
    return (await timeRuns(once, { warmup: 1, runs: REPEATS })).medianMs;
  } finally {
    device.destroy();
  }
}

/** The probe's timings just before and just after an engine's measurements. */
export interface ProbeReading {
  /** The engine whose measurements it brackets, or "run" for a single-process run. */
  label: string;
  before: number | null;
  after: number | null;
}

/** Spread of probe timings above which a run is flagged: engines were measured at other speeds. */
export const PROBE_SPREAD_WARNING = 1.2;

/**
 * The results-file note for a run's probe readings, with a warning when the slowest reading is
 * more than {@link PROBE_SPREAD_WARNING} times the fastest.
 *
 * @example
 * ```ts
 * probeNote([{ label: 'fluxion-webgpu', before: 10, after: 10.4 }, { label: 'tfjs-webgpu', before: 15, after: 15 }]);
 * // 'speed probe (ms, lower is faster): fluxion-webgpu 10.0 → 10.4, tfjs-webgpu 15.0 → 15.0;
 * //  WARNING: the machine's speed changed by 1.50× during the run, so ratios between engines are unreliable'
 * ```
 */
export function probeNote(readings: readonly ProbeReading[]): string {
  const fmt = (v: number | null) => (v === null ? '—' : v.toFixed(1));
  const parts = readings.map((r) => `${r.label} ${fmt(r.before)} → ${fmt(r.after)}`);
  const values = readings.flatMap((r) => [r.before, r.after]).filter((v): v is number => v !== null);
  let note = `speed probe (ms, lower is faster): ${parts.join(', ')}`;
  if (values.length >= 2) {
    const spread = Math.max(...values) / Math.min(...values);
    if (spread > PROBE_SPREAD_WARNING) {
      note += `; WARNING: the machine's speed changed by ${spread.toFixed(2)}× during the run, so ratios between engines are unreliable`;
    }
  }
  return note;
}
