/**
 * Recording work for the GPU. Every kernel launch becomes one dispatch in a single open compute
 * pass of a single command encoder; the encoder is submitted at sync points (`read`, `sync`) or
 * after `maxDispatches` dispatches, never inside an op. Dispatch cost is the enemy on a GPU, so the
 * per-dispatch work is: look up a cached pipeline, copy the parameter words into a host-side arena,
 * look up (or create) the bind group of its buffers and record the dispatch. Buffer bind groups
 * (group 1) are cached by buffer ids, so a training loop, whose pooled buffers come back in the same
 * roles every step (see the pool's lowest-id rule in `buffers.ts`), reuses them; the cache is
 * cleared whenever a GPU buffer is destroyed.
 *
 * The parameter arena is one uniform buffer with a 256-byte slot per dispatch of the current
 * encoder; it is uploaded with one `writeBuffer` right before the submit, which the queue orders
 * before the submitted commands. The next encoder reuses it (queue order again). Each slot has its
 * own bind group (group 0), made once: a static offset, because on lavapipe a dynamic uniform
 * offset costs about 70 µs per dispatch (measured with raw Dawn: 20 µs per tiny dispatch with
 * static bind groups, 90 µs with a dynamic offset).
 *
 * `epoch` counts submitted encoders. Each buffer remembers the epoch of its last use, so that
 * `upload` into a pooled buffer still read by unsubmitted work flushes first, and the pool never
 * destroys a buffer that unsubmitted work still uses.
 */
import { BUFFER_USAGE, type BufferPool, type GpuBuffer } from './buffers.js';
import type { Pipeline, PipelineCache, PipelineSpec } from './pipelines.js';
import type { KernelProfiler } from './profiler.js';
import { PARAM_WORDS } from './wgsl.js';

/** Bind groups kept for reuse before the cache starts over. */
const MAX_BIND_GROUPS = 4096;

/** Bytes per parameter slot (also the strictest uniform offset alignment WebGPU allows). */
const SLOT_BYTES = PARAM_WORDS * 4;

/** One kernel launch. */
export interface DispatchSpec extends PipelineSpec {
  /** Storage buffers: `inputs` read-only ones, then `outputs` writable ones. */
  buffers: readonly GpuBuffer[];
  /** Parameter words (u32; floats as their bits), at most PARAM_WORDS. */
  params: ArrayLike<number>;
  /** Total workgroups; split over x, y and z when over the per-dimension limit. */
  workgroups: number;
}

/** Splits a linear workgroup count over up to three grid dimensions. */
export function splitGrid(workgroups: number, maxPerDim: number): [number, number, number] {
  if (workgroups <= maxPerDim) return [workgroups, 1, 1];
  const y = Math.ceil(workgroups / maxPerDim);
  if (y <= maxPerDim) return [maxPerDim, y, 1];
  return [maxPerDim, maxPerDim, Math.ceil(workgroups / (maxPerDim * maxPerDim))];
}

/** Records dispatches and copies into one command encoder and submits it. */
export class Recorder {
  /** Submitted encoders so far; the current encoder's uses are tagged `epoch`. */
  epoch = 0;
  /** Dispatches recorded since creation (diagnostics). */
  totalDispatches = 0;
  /** Storage-buffer bind groups created since creation (diagnostics). */
  bindGroupsCreated = 0;
  /** When set, every dispatch gets its own timed pass (see `profiler.ts`). */
  profiler: KernelProfiler | null = null;
  /** What launched the next dispatches, for the profiler (set by the backend while profiling). */
  label = '';
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  private readonly arena: GPUBuffer;
  private readonly slotGroups: (GPUBindGroup | undefined)[] = [];
  private readonly host: Uint32Array;
  private slot = 0;
  private readonly maxPerDim: number;
  private readonly bindGroups = new Map<string, GPUBindGroup>();

  constructor(
    private readonly device: GPUDevice,
    private readonly pool: BufferPool,
    private readonly pipelines: PipelineCache,
    /** Dispatches per submitted encoder at most. */
    readonly maxDispatches = 128,
  ) {
    this.arena = device.createBuffer({
      size: maxDispatches * SLOT_BYTES,
      usage: BUFFER_USAGE.UNIFORM | BUFFER_USAGE.COPY_DST,
    });
    this.host = new Uint32Array(maxDispatches * PARAM_WORDS);
    this.maxPerDim = device.limits.maxComputeWorkgroupsPerDimension;
  }

  /** Records one kernel launch. */
  dispatch(spec: DispatchSpec): void {
    if (spec.workgroups === 0) return;
    if (this.slot === this.maxDispatches) this.flush();
    const pipeline = this.pipelines.get(spec);
    const base = this.slot * PARAM_WORDS;
    const { params } = spec;
    for (let i = 0; i < params.length; i++) this.host[base + i] = params[i];
    const slotGroup = this.slotGroup(this.slot);
    const group = this.bindGroup(pipeline, spec.buffers);
    if (this.profiler) {
      this.closePass();
      const timestampWrites = this.profiler.next(this.label, spec.key, spec.workgroups);
      this.pass = this.openEncoder().beginComputePass({ timestampWrites });
    }
    const pass = this.openPass();
    pass.setPipeline(pipeline.gpu);
    pass.setBindGroup(0, slotGroup);
    pass.setBindGroup(1, group);
    const [x, y, z] = splitGrid(spec.workgroups, this.maxPerDim);
    pass.dispatchWorkgroups(x, y, z);
    if (this.profiler) this.closePass();
    this.slot++;
    this.totalDispatches++;
  }

  /** The bind group of parameter slot `i` (made on first use, kept for the recorder's life). */
  private slotGroup(i: number): GPUBindGroup {
    let group = this.slotGroups[i];
    if (!group) {
      group = this.device.createBindGroup({
        layout: this.pipelines.paramsLayout,
        entries: [{ binding: 0, resource: { buffer: this.arena, offset: i * SLOT_BYTES, size: SLOT_BYTES } }],
      });
      this.slotGroups[i] = group;
    }
    return group;
  }

  /** Forgets cached bind groups (called before any GPU buffer is destroyed). */
  clearBindGroups(): void {
    this.bindGroups.clear();
  }

  private bindGroup(pipeline: Pipeline, buffers: readonly GpuBuffer[]): GPUBindGroup {
    let key = pipeline.layoutKey;
    for (const b of buffers) {
      b.lastUse = this.epoch;
      key += `,${b.id}`;
    }
    let group = this.bindGroups.get(key);
    if (!group) {
      const entries: GPUBindGroupEntry[] = [];
      buffers.forEach((b, i) => {
        entries.push({ binding: i + 1, resource: { buffer: b.gpu } });
      });
      group = this.device.createBindGroup({ layout: pipeline.layout, entries });
      this.bindGroupsCreated++;
      if (this.bindGroups.size >= MAX_BIND_GROUPS) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    return group;
  }

  /** Records a buffer-to-buffer copy (ends the open compute pass). */
  copy(src: GpuBuffer | GPUBuffer, dst: GPUBuffer, bytes: number): void {
    const encoder = this.openEncoder();
    this.closePass();
    const from = 'gpu' in src ? src.gpu : src;
    if ('gpu' in src) src.lastUse = this.epoch;
    encoder.copyBufferToBuffer(from, 0, dst, 0, bytes);
  }

  /** Whether `buffer` is used by work not yet submitted. */
  isPending(buffer: GpuBuffer): boolean {
    return buffer.lastUse === this.epoch && this.encoder !== null;
  }

  /** Submits everything recorded so far. */
  flush(): void {
    if (!this.encoder) return;
    this.closePass();
    const timed = this.profiler?.beforeSubmit(this.encoder);
    if (this.slot > 0) this.device.queue.writeBuffer(this.arena, 0, this.host, 0, this.slot * PARAM_WORDS);
    this.device.queue.submit([this.encoder.finish()]);
    timed?.submitted();
    this.encoder = null;
    this.slot = 0;
    this.epoch++;
    this.pool.submitted();
  }

  /** Releases the parameter arena. */
  destroy(): void {
    this.arena.destroy();
  }

  private openEncoder(): GPUCommandEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  private openPass(): GPUComputePassEncoder {
    if (!this.pass) this.pass = this.openEncoder().beginComputePass();
    return this.pass;
  }

  private closePass(): void {
    this.pass?.end();
    this.pass = null;
  }
}
