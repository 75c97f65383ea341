/**
 * Compute pipelines, cached twice: by a short key that a kernel computes cheaply on every call
 * (op, dtypes, variant flags), and by the generated WGSL source, so two keys that generate the same
 * shader share one pipeline. A compile costs tens of milliseconds on a software adapter, so shapes
 * never reach the source: they travel in the parameter block.
 *
 * Bind group layouts are explicit and shared: group 0 is the parameter slot (a uniform), group 1
 * the read-only inputs (bindings 1…inputs), then the outputs. The slot is its own group, with a
 * static offset, because a dynamic uniform offset costs about 70 µs per dispatch on lavapipe,
 * three times the whole cost of a dispatch without one.
 *
 * Shader compile errors are detected asynchronously (WebGPU reports them through error scopes);
 * they are reported to the {@link ErrorSink} as a FluxionError naming the op and quoting the WGSL, and the
 * backend throws it at the next sync point.
 */
import { FluxionError } from '../../errors.js';

/** GPUShaderStage.COMPUTE. */
const COMPUTE_STAGE = 0x4;

/** Where asynchronous GPU errors go: the backend throws them at its next sync point. */
export interface ErrorSink {
  /** Records an error to throw later (a primary error replaces a secondary one). */
  report(error: FluxionError, primary?: boolean): void;
  /** Registers a pending check that sync points must await. */
  track(check: Promise<void>): void;
}

/** A pipeline and its binding signature. */
export interface Pipeline {
  readonly gpu: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Identifies the bind group layout (bind groups are cached per layout and buffers). */
  readonly layoutKey: string;
  readonly inputs: number;
  readonly outputs: number;
}

/** How a kernel describes a pipeline it needs. */
export interface PipelineSpec {
  /** The op that needs it (error messages and labels). */
  op: string;
  /** A cheap key that determines `source()`. */
  key: string;
  /** The full WGSL source; only called on a cache miss. */
  source: () => string;
  /** Read-only storage bindings (1…inputs) and writable ones after them. */
  inputs: number;
  outputs: number;
}

/** Caches pipelines by key and by source. */
export class PipelineCache {
  private readonly byKey = new Map<string, Pipeline>();
  private readonly bySource = new Map<string, Pipeline>();
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();
  /** Layout of bind group 0: one uniform parameter slot. */
  readonly paramsLayout: GPUBindGroupLayout;
  /** Number of distinct shaders compiled (for tests and diagnostics). */
  compiled = 0;

  constructor(
    private readonly device: GPUDevice,
    private readonly errors: ErrorSink,
  ) {
    this.paramsLayout = device.createBindGroupLayout({
      entries: [{ binding: 0, visibility: COMPUTE_STAGE, buffer: { type: 'uniform' } }],
    });
  }

  /** The pipeline for `spec`, compiling it on first use. */
  get(spec: PipelineSpec): Pipeline {
    const hit = this.byKey.get(spec.key);
    if (hit) return hit;
    const source = spec.source();
    let pipeline = this.bySource.get(source);
    if (!pipeline) {
      pipeline = this.compile(spec, source);
      this.bySource.set(source, pipeline);
    }
    this.byKey.set(spec.key, pipeline);
    return pipeline;
  }

  private layoutFor(inputs: number, outputs: number) {
    const key = `${inputs}:${outputs}`;
    let layout = this.layouts.get(key);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [];
      for (let i = 0; i < inputs + outputs; i++) {
        entries.push({
          binding: i + 1,
          visibility: COMPUTE_STAGE,
          buffer: { type: i < inputs ? 'read-only-storage' : 'storage' },
        });
      }
      const group = this.device.createBindGroupLayout({ entries });
      const bindGroupLayouts = [this.paramsLayout, group];
      layout = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts }) };
      this.layouts.set(key, layout);
    }
    return layout;
  }

  private compile(spec: PipelineSpec, source: string): Pipeline {
    const layout = this.layoutFor(spec.inputs, spec.outputs);
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: source, label: spec.op });
    const gpu = this.device.createComputePipeline({
      label: spec.op,
      layout: layout.pipeline,
      compute: { module, entryPoint: 'main' },
    });
    this.compiled++;
    const check = this.device.popErrorScope().then(async (error) => {
      if (!error) return;
      const info = await module.getCompilationInfo().catch(() => null);
      const details = info?.messages
        .filter((m) => m.type === 'error')
        .map((m) => `  line ${m.lineNum}:${m.linePos}: ${m.message}`)
        .join('\n');
      const numbered = source
        .split('\n')
        .map((line, i) => `${String(i + 1).padStart(4)}| ${line}`)
        .join('\n');
      this.errors.report(
        new FluxionError(
          spec.op,
          `WGSL shader failed to compile: ${error.message}\n${details ?? ''}\n--- generated WGSL ---\n${numbered}`,
        ),
      );
    });
    this.errors.track(check);
    return {
      gpu,
      layout: layout.group,
      layoutKey: `${spec.inputs}:${spec.outputs}`,
      inputs: spec.inputs,
      outputs: spec.outputs,
    };
  }
}
