/**
 * The WebGPU backend: the `Backend` interface over a GPUDevice.
 *
 * - Storage: float32, int32 and bool, every element 4 bytes (bool is one u32, converted from and
 *   to the Uint8Array the rest of Fluxion uses on upload and read).
 * - Execution: kernels (see `kernels.ts`) record dispatches into one command encoder
 *   (`recorder.ts`); `read` and `sync` submit it. Nothing reads back inside an op.
 * - Memory: buffers come from a pool by size class (`buffers.ts`); `memory()` counts the buffers
 *   handed out, not the pooled ones.
 * - Errors: WebGPU reports shader-compile, validation and out-of-memory errors asynchronously; they
 *   are collected and thrown as FluxionError at the next `read`/`sync`. A lost device makes every
 *   later call throw a FluxionError naming the op. Index values (`take`, `scatterAdd`, and so
 *   `oneHot`, `Embedding` and the class-index losses) are checked on the device: a kernel that
 *   meets one outside its range flags it in two error words, which the next `read`/`sync` copies
 *   with its own work and turns into the FluxionError of the op that met it (see `indexing.ts`).
 */
import type { Backend, BackendBuffer, BackendMemory, KernelArg } from '../../backend.js';
import { allocArray, type DType, type TypedArray } from '../../dtype.js';
import { FluxionError } from '../../errors.js';
import { type IndexContext, indexRangeError } from '../../index-range.js';
import { allocBuffer } from '../../memory.js';
import type { ParsedProgram } from '../../program.js';
import type { KernelOp, OpParamMap } from '../../registry.js';
import { BUFFER_USAGE, BufferPool, type GpuBuffer } from './buffers.js';
import { type KernelContext, MAX_CHECK_SITE, type MatmulVariant } from './context.js';
import { type ElementwiseLaunch, runElementwise } from './elementwise.js';
import { Fusion } from './fusion.js';
import { KERNELS, type WebGPUKernel } from './kernels.js';
import { type ErrorSink, PipelineCache } from './pipelines.js';
import { KernelProfiler, type KernelTiming } from './profiler.js';
import { runProgramKernel } from './program.js';
import { type DispatchSpec, Recorder } from './recorder.js';
import { MAX_RANK } from './wgsl.js';

/** GPUMapMode.READ. */
const MAP_READ = 0x1;

/** The adapter a backend runs on, as reported by WebGPU. */
export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Whether the adapter is a software/fallback one (e.g. lavapipe, SwiftShader). */
  isFallbackAdapter: boolean;
  /** Optional features Fluxion enabled on the device. */
  features: string[];
}

/** Construction options of {@link WebGPUBackend}. */
export interface WebGPUBackendOptions {
  device: GPUDevice;
  adapterInfo: AdapterSummary;
  /** An object that must stay referenced while the device lives (Dawn's GPU instance in Node). */
  owner?: unknown;
  /** Whether `destroy()` may destroy the device (false for a device the user supplied). */
  ownsDevice?: boolean;
  /** Bytes of freed buffers kept for reuse (default 256 MiB). */
  maxPooledBytes?: number;
  /** Submit after this many dispatches (default 128). */
  maxDispatchesPerSubmit?: number;
  /** Fuse chains of elementwise ops into one kernel (default true; see `fusion.ts`). */
  fuseElementwise?: boolean;
}

/** Pool and pipeline statistics (diagnostics). */
export interface WebGPUStats {
  /** Bytes of freed buffers waiting in the pool. */
  pooledBytes: number;
  /** Compute pipelines compiled so far. */
  pipelines: number;
  /** Kernel launches recorded so far. */
  dispatches: number;
  /** Command encoders submitted so far. */
  submits: number;
  /** Bind groups of storage buffers created so far (a repeated step should stop adding any). */
  bindGroups: number;
  /** Elementwise launches deferred for fusion and not yet recorded (see `fusion.ts`). */
  deferred: number;
}

/**
 * The WebGPU implementation of {@link Backend}. Create it with `initWebGPU()`, which also
 * registers it; construct it directly only to run a second, unregistered device.
 *
 * @example
 * ```ts
 * const backend = await initWebGPU();
 * console.log(backend.adapterInfo.description);
 * ```
 */
export class WebGPUBackend implements Backend, KernelContext, ErrorSink {
  readonly name = 'webgpu' as const;
  readonly dtypes: readonly DType[] = ['float32', 'int32', 'bool'];
  readonly adapterInfo: AdapterSummary;
  readonly device: GPUDevice;
  readonly subgroups8: boolean;
  readonly maxStorageBuffers: number;
  matmulVariant: MatmulVariant = 'register';
  /**
   * Whether elementwise ops are deferred and fused into later elementwise ops (see `fusion.ts`).
   * It may be switched at any time; ops already deferred are still recorded when needed.
   */
  fuseElementwise: boolean;
  /** Keeps Dawn's instance alive as long as this backend (see DESIGN.md). */
  private readonly owner: unknown;
  private readonly ownsDevice: boolean;
  private readonly pool: BufferPool;
  private readonly pipelines: PipelineCache;
  private readonly recorder: Recorder;
  private readonly fusion: Fusion;
  private readonly maxBindingBytes: number;
  private lost: GPUDeviceLostInfo | null = null;
  private destroyed = false;
  private pendingError: { error: FluxionError; primary: boolean } | null = null;
  private readonly checks = new Set<Promise<void>>();
  private currentOp = 'webgpu';
  readonly errorWords: GpuBuffer;
  /** Zeros copied over the error words after each copy of them (WebGPU zero-fills new buffers). */
  private readonly errorZeros: GPUBuffer;
  /** The index checks recorded since the error words were last copied, by site number − 1. */
  private checkSites: { context: IndexContext; size: number }[] = [];

  constructor(options: WebGPUBackendOptions) {
    const { device } = options;
    this.device = device;
    this.adapterInfo = options.adapterInfo;
    this.owner = options.owner;
    this.ownsDevice = options.ownsDevice ?? false;
    this.maxBindingBytes = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
    this.maxStorageBuffers = device.limits.maxStorageBuffersPerShaderStage;
    this.subgroups8 = device.features.has('subgroups') && (device.adapterInfo?.subgroupMinSize ?? 0) >= 8;
    this.pool = new BufferPool(
      (bytes) => this.createBuffer(bytes),
      options.maxPooledBytes ?? 256 * 2 ** 20,
      () => this.recorder.clearBindGroups(),
    );
    this.pipelines = new PipelineCache(device, this);
    this.recorder = new Recorder(device, this.pool, this.pipelines, options.maxDispatchesPerSubmit ?? 128);
    // Outside the pool (never handed out, never counted); id 0 is no pooled buffer's.
    this.errorWords = {
      gpu: this.createBuffer(ERROR_BYTES),
      id: 0,
      bytes: ERROR_BYTES,
      lastUse: -1,
      pooled: false,
    };
    this.errorZeros = device.createBuffer({ size: ERROR_BYTES, usage: BUFFER_USAGE.COPY_SRC });
    this.fuseElementwise = options.fuseElementwise ?? true;
    this.fusion = new Fusion({
      record: (launch, label) => this.recordDeferred(launch, label),
      release: (buffer) => this.pool.release(buffer, this.recorder.epoch),
    });
    device.lost.then((info) => {
      this.lost = info;
    });
    device.addEventListener('uncapturederror', (event) => {
      const { message } = (event as GPUUncapturedErrorEvent).error;
      // "invalid due to a previous error" follows a compile or allocation error reported better.
      this.report(
        new FluxionError(this.currentOp, `WebGPU error: ${message}`),
        !/previous error/.test(message),
      );
    });
  }

  // ---- Backend ----

  alloc(dtype: DType, size: number): BackendBuffer {
    this.assertUsable('alloc');
    const bytes = Math.max(1, size) * 4;
    if (bytes > this.maxBindingBytes) {
      throw new FluxionError(
        'alloc',
        `a ${dtype} tensor of ${size} elements needs ${mib(bytes)}, over this device's storage-buffer binding limit of ${mib(this.maxBindingBytes)}`,
      );
    }
    return this.pool.acquire(bytes);
  }

  upload(buffer: BackendBuffer, data: TypedArray): void {
    this.assertUsable('upload');
    const b = buffer as GpuBuffer;
    // A pooled buffer may still be used by unsubmitted work, which writeBuffer would overtake.
    if (this.recorder.isPending(b)) this.pool.exchangeForIdle(b, this.recorder.epoch);
    const words = data instanceof Uint8Array ? Uint32Array.from(data) : data;
    if (words instanceof Float64Array) throw new FluxionError('upload', 'the webgpu backend has no float64');
    this.device.queue.writeBuffer(b.gpu, 0, words.buffer, words.byteOffset, words.byteLength);
  }

  async read(buffer: BackendBuffer, dtype: DType, size: number): Promise<TypedArray> {
    this.assertUsable('read');
    if (size === 0) return allocArray(dtype, 0);
    const bytes = size * 4;
    const staging = this.device.createBuffer({ size: bytes, usage: MAP_READ | BUFFER_USAGE.COPY_DST });
    try {
      this.fusion.materialize(buffer as GpuBuffer);
      this.recorder.copy(buffer as GpuBuffer, staging, bytes);
      const check = this.recordIndexCheck();
      this.recorder.flush();
      const indexError = check?.();
      try {
        await staging.mapAsync(MAP_READ, 0, bytes);
      } catch (e) {
        this.assertUsable('read');
        await this.throwPending();
        throw new FluxionError('read', `mapping the staging buffer failed: ${(e as Error).message}`);
      }
      const copy = staging.getMappedRange(0, bytes).slice(0);
      staging.unmap();
      await throwIfAny(indexError);
      await this.throwPending();
      if (dtype === 'float32') return new Float32Array(copy);
      if (dtype === 'int32') return new Int32Array(copy);
      if (dtype === 'bool') return Uint8Array.from(new Uint32Array(copy), (v) => (v ? 1 : 0));
      throw new FluxionError('read', `the webgpu backend has no dtype ${dtype}`);
    } finally {
      staging.destroy();
    }
  }

  free(buffer: BackendBuffer): void {
    if (this.destroyed) return;
    this.fusion.free(buffer as GpuBuffer);
  }

  run<K extends KernelOp>(op: K, inputs: readonly KernelArg[], out: KernelArg, params: OpParamMap[K]): void {
    this.assertUsable(op);
    this.currentOp = op;
    if (this.recorder.profiler) this.recorder.label = profileLabel(op, inputs);
    (KERNELS[op] as WebGPUKernel<K>)(this, inputs, out, params);
  }

  runProgram(
    program: ParsedProgram,
    inputs: readonly KernelArg[],
    outputs: readonly KernelArg[],
    scalars: readonly number[],
  ): void {
    const op = `program ${program.name}`;
    this.assertUsable(op);
    this.currentOp = op;
    if (this.recorder.profiler) this.recorder.label = profileLabel(op, inputs);
    runProgramKernel(this, program, inputs, outputs, scalars);
  }

  memory(): BackendMemory {
    return this.pool.live();
  }

  async sync(): Promise<void> {
    this.assertUsable('sync');
    this.fusion.materializeAll();
    const check = this.recordIndexCheck();
    this.recorder.flush();
    const indexError = check?.();
    await this.device.queue.onSubmittedWorkDone();
    this.assertUsable('sync');
    await throwIfAny(indexError);
    await this.throwPending();
  }

  // ---- KernelContext ----

  dispatch(spec: DispatchSpec): void {
    // A deferred input is recorded first (its buffer is read as such, not fused).
    if (this.fusion.size > 0) for (const b of spec.buffers) this.fusion.materialize(b);
    this.recorder.dispatch(spec);
  }

  elementwise(launch: ElementwiseLaunch): void {
    // Views of more axes than a kernel addresses may fail to merge: such a launch runs now, so that
    // its error (if any) is thrown by its op, and a fused launch never has more axes than its ops.
    if (this.fuseElementwise && launch.shape.length <= MAX_RANK)
      this.fusion.defer(launch, this.recorder.label);
    else runElementwise(this, launch);
  }

  indexCheckSite(context: IndexContext, size: number): number {
    if (this.checkSites.length < MAX_CHECK_SITE) this.checkSites.push({ context, size });
    else this.checkSites[MAX_CHECK_SITE - 1] = { context, size }; // (a million checks between syncs)
    return this.checkSites.length;
  }

  scratch(size: number): GpuBuffer {
    return allocBuffer(this.currentOp, this, 'float32', [size]) as GpuBuffer;
  }

  release(buffer: GpuBuffer): void {
    this.free(buffer);
  }

  // ---- ErrorSink ----

  report(error: FluxionError, primary = true): void {
    if (!this.pendingError || (primary && !this.pendingError.primary)) this.pendingError = { error, primary };
  }

  track(check: Promise<void>): void {
    this.checks.add(check);
    check.finally(() => this.checks.delete(check));
  }

  // ---- Extras ----

  /** Submits recorded work (and deferred elementwise launches) without waiting for it. */
  flush(): void {
    this.submit();
  }

  /** Pool, pipeline and dispatch counters. */
  stats(): WebGPUStats {
    return {
      pooledBytes: this.pool.pooled(),
      pipelines: this.pipelines.compiled,
      dispatches: this.recorder.totalDispatches,
      submits: this.recorder.epoch,
      bindGroups: this.recorder.bindGroupsCreated,
      deferred: this.fusion.size,
    };
  }

  /** Whether kernels can be timed on the device: it has the `timestamp-query` feature. */
  get canProfile(): boolean {
    return this.device.features.has('timestamp-query');
  }

  /**
   * Runs `fn` with every kernel it launches timed on the device (timestamp queries, one compute
   * pass per kernel), waits for the work and returns the timings in launch order. Work recorded
   * before the call is submitted first and not timed. Throws when the device has no
   * `timestamp-query` or a profile is already running.
   *
   * @example
   * ```ts
   * const gpu = await initWebGPU();
   * const timings = await gpu.profile(() => matmul(a, b).dispose());
   * for (const t of timings) console.log(t.label, t.kernel, `${t.ms.toFixed(3)} ms`);
   * // matmul [512,512] [512,512] matmul|subgroup|f32|n4 2.710 ms
   * ```
   */
  async profile(fn: () => unknown): Promise<KernelTiming[]> {
    this.assertUsable('profile');
    if (!this.canProfile) {
      throw new FluxionError(
        'profile',
        `the adapter '${this.adapterInfo.description}' has no timestamp-query feature, so kernels cannot be timed`,
      );
    }
    if (this.recorder.profiler)
      throw new FluxionError('profile', 'a profile is already running on this backend');
    this.submit();
    const profiler = new KernelProfiler(this.device, this.recorder.maxDispatches);
    this.recorder.profiler = profiler;
    try {
      await fn();
    } finally {
      // Submit what fn recorded (timed passes need the query set) even when fn threw.
      this.submit();
      this.recorder.profiler = null;
      this.recorder.label = '';
    }
    try {
      await this.device.queue.onSubmittedWorkDone();
      await this.throwPending();
      return await profiler.results();
    } finally {
      profiler.destroy();
    }
  }

  /** Frees pooled buffers (and the device, when this backend created it). */
  destroy(): void {
    if (this.destroyed) return;
    this.recorder.flush();
    this.fusion.clear();
    this.destroyed = true;
    this.pool.clear();
    this.recorder.destroy();
    this.errorWords.gpu.destroy();
    this.errorZeros.destroy();
    if (this.ownsDevice) this.device.destroy();
    void this.owner;
  }

  /**
   * When checked kernels ran since the last check, records a copy of the error words (then zeros
   * over them, so the next interval starts clean) and returns what to call once that is submitted:
   * it maps the copy and resolves to the error of the flagged site, or null.
   */
  private recordIndexCheck(): (() => Promise<FluxionError | null>) | null {
    if (this.checkSites.length === 0) return null;
    const sites = this.checkSites;
    this.checkSites = [];
    const staging = this.device.createBuffer({ size: ERROR_BYTES, usage: MAP_READ | BUFFER_USAGE.COPY_DST });
    this.recorder.copy(this.errorWords, staging, ERROR_BYTES);
    this.recorder.copy(this.errorZeros, this.errorWords.gpu, ERROR_BYTES);
    return async () => {
      try {
        await staging.mapAsync(MAP_READ);
        const [site, value] = new Int32Array(staging.getMappedRange().slice(0));
        staging.unmap();
        const flagged = sites[site - 1];
        if (!flagged) return null;
        const note = ' (found on the webgpu device; raised at the next read or sync)';
        return indexRangeError(flagged.context, value, flagged.size, note);
      } catch {
        return null; // a lost device or failed map: the caller reports that
      } finally {
        staging.destroy();
      }
    };
  }

  /** Records every deferred elementwise launch, then submits. */
  private submit(): void {
    this.fusion.materializeAll();
    this.recorder.flush();
  }

  /** Records a deferred launch, with the op and profiler label it was made under. */
  private recordDeferred(launch: ElementwiseLaunch, label: string): void {
    const [op, current] = [this.currentOp, this.recorder.label];
    this.currentOp = launch.op;
    this.recorder.label = label;
    try {
      runElementwise(this, launch);
    } finally {
      this.currentOp = op;
      this.recorder.label = current;
    }
  }

  /** Throws the first asynchronous GPU error recorded so far, after pending checks settle. */
  private async throwPending(): Promise<void> {
    while (this.checks.size > 0) await Promise.all([...this.checks]);
    const pending = this.pendingError;
    if (pending) {
      this.pendingError = null;
      throw pending.error;
    }
  }

  private assertUsable(op: string): void {
    if (this.lost && !this.destroyed) {
      throw new FluxionError(
        op,
        `the WebGPU device was lost (${this.lost.reason}: ${this.lost.message}); call initWebGPU() again`,
      );
    }
    if (this.destroyed) throw new FluxionError(op, 'this webgpu backend was destroyed');
  }

  /** Creates a storage buffer, reporting out-of-memory as a FluxionError at the next sync. */
  private createBuffer(bytes: number): GPUBuffer {
    this.device.pushErrorScope('out-of-memory');
    const buffer = this.device.createBuffer({
      size: bytes,
      usage: BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST,
    });
    const op = this.currentOp;
    this.track(
      this.device.popErrorScope().then((error) => {
        if (error)
          this.report(new FluxionError(op, `out of GPU memory allocating ${mib(bytes)}: ${error.message}`));
      }),
    );
    return buffer;
  }
}

/** Bytes of the error words: site number and value, padded to WebGPU's 16-byte minimum. */
const ERROR_BYTES = 16;

/** Throws the error a pending index check resolves to, if any. */
async function throwIfAny(pending: Promise<FluxionError | null> | undefined): Promise<void> {
  const error = await pending;
  if (error) throw error;
}

/** What the profiler calls a launch: the op and its input shapes. */
function profileLabel(op: string, inputs: readonly KernelArg[]): string {
  return `${op} ${inputs.map((x) => `[${x.shape.join(',')}]`).join(' ')}`.trim();
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
