/**
 * Getting a WebGPU device and making it Fluxion's backend.
 *
 * In a browser the adapter comes from `navigator.gpu`; in Node from the `webgpu` npm package
 * (Dawn), imported dynamically so that the package still loads in a browser. Dawn's instance (the
 * object `create()` returns) is kept referenced for the life of the process: if it were garbage
 * collected, Dawn would tear the instance down under a live device and the process would crash a
 * few dispatches later (see DESIGN.md).
 *
 * The device gets the adapter's real limits (storage-buffer binding size, buffer size, workgroup
 * storage and invocations) and the optional features Fluxion can use (`subgroups`,
 * `timestamp-query`, `shader-f16`).
 */
import { type BackendName, registerBackend, setBackend } from '../../backend.js';
import { FluxionError } from '../../errors.js';
import { type AdapterSummary, WebGPUBackend } from './backend.js';
import type { MatmulVariant } from './context.js';
import { chooseMatmulVariant } from './matmul.js';
import { throttleNativePolling } from './polling.js';

/** Options of {@link initWebGPU}. */
export interface WebGPUOptions {
  /** Which adapter to prefer where there are several. */
  powerPreference?: 'low-power' | 'high-performance';
  /** Dawn toggles for `create()` in Node, e.g. `['backend=opengles']`. */
  dawnOptions?: string[];
  /** Use this existing device instead of requesting one (it is not destroyed by Fluxion). */
  device?: GPUDevice;
  /** `'compatibility'` for adapters that only offer WebGPU compatibility mode (e.g. OpenGL ES). */
  featureLevel?: 'core' | 'compatibility';
  /** Matmul kernel family; `'auto'` (default) measures them at initialisation. */
  matmulVariant?: MatmulVariant | 'auto';
  /** Bytes of freed GPU buffers kept for reuse (default 256 MiB). */
  maxPooledBytes?: number;
  /**
   * In Node, slow Dawn's event polling down to once a millisecond during long waits instead of a
   * busy loop (default true; see `polling.ts`). It matters most on software adapters.
   */
  gentlePolling?: boolean;
  /**
   * Fuse chains of elementwise ops into one kernel (see `fusion.ts`). Default true, or false when
   * the environment has `FLUXION_FUSE=0` (to compare, or to rule fusion out while debugging).
   */
  fuseElementwise?: boolean;
  /**
   * Optional features not to enable even where the adapter has them, so that the kernels an
   * adapter without them would run can be tested anywhere: `['subgroups']` makes matmul take its
   * `register`/`shared` kernels. Default: the comma-separated list in the environment variable
   * `FLUXION_WEBGPU_DISABLE` (e.g. `FLUXION_WEBGPU_DISABLE=subgroups,shader-f16`), else none.
   */
  disableFeatures?: readonly string[];
}

/** The environment of a Node process, if this is one. */
const processEnv = (): Record<string, string | undefined> | undefined =>
  (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;

/**
 * Optional features Fluxion enables when the adapter has them. Kernels choose by `subgroups`
 * (matmul's `subgroup` family, when subgroups have at least 8 lanes) and `timestamp-query` (the
 * profiler); no kernel uses `shader-f16` yet.
 */
const WANTED_FEATURES: GPUFeatureName[] = ['subgroups', 'timestamp-query', 'shader-f16'];

/**
 * The optional features to leave off: `options.disableFeatures`, else those named in
 * `FLUXION_WEBGPU_DISABLE` (comma-separated). A name Fluxion never enables is an error, so that a
 * misspelt variable cannot leave a feature on unnoticed.
 *
 * @example
 * ```ts
 * disabledFeatures({ disableFeatures: ['subgroups'] }); // Set { 'subgroups' }
 * ```
 */
export function disabledFeatures(options: WebGPUOptions): Set<string> {
  const names = options.disableFeatures ?? (processEnv()?.FLUXION_WEBGPU_DISABLE ?? '').split(',');
  const out = new Set(names.map((n) => n.trim()).filter((n) => n !== ''));
  for (const name of out) {
    if (!(WANTED_FEATURES as string[]).includes(name)) {
      throw new FluxionError(
        'initWebGPU',
        `cannot disable '${name}': the optional features are ${WANTED_FEATURES.join(', ')}`,
      );
    }
  }
  return out;
}

/** Limits requested at the adapter's maximum. */
const WANTED_LIMITS = [
  'maxStorageBufferBindingSize',
  'maxBufferSize',
  'maxComputeWorkgroupStorageSize',
  'maxComputeInvocationsPerWorkgroup',
  'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupsPerDimension',
  'maxStorageBuffersPerShaderStage',
  'maxUniformBufferBindingSize',
] as const;

/** Dawn instances by options; never released (see the module comment). */
const dawnInstances = new Map<string, GPU>();

interface DawnModule {
  create(options: string[]): GPU;
}

async function getGpu(options: WebGPUOptions): Promise<GPU> {
  const proc = (
    globalThis as { process?: { versions?: { node?: string }; env: Record<string, string | undefined> } }
  ).process;
  // Dawn's Node binding may also stand behind navigator.gpu (the bench sets it up that way).
  if (proc?.versions?.node && options.gentlePolling !== false) throttleNativePolling();
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  if (!proc?.versions?.node) {
    throw new FluxionError('initWebGPU', 'this environment has no WebGPU (navigator.gpu is undefined)');
  }
  proc.env.XDG_RUNTIME_DIR ??= '/tmp';
  const key = JSON.stringify(options.dawnOptions ?? []);
  let gpu = dawnInstances.get(key);
  if (!gpu) {
    const specifier = 'webgpu';
    let dawn: DawnModule;
    try {
      dawn = (await import(/* @vite-ignore */ specifier)) as DawnModule;
    } catch (e) {
      throw new FluxionError(
        'initWebGPU',
        `the 'webgpu' npm package (Dawn for Node) could not be loaded: ${(e as Error).message}`,
      );
    }
    gpu = dawn.create(withPreciseTimestamps(options.dawnOptions ?? []));
    dawnInstances.set(key, gpu);
  }
  return gpu;
}

/**
 * Dawn's toggles plus `timestamp_quantization` turned off, so that kernel timings (see
 * `profiler.ts`) have nanosecond rather than 65 µs resolution. An existing
 * `disable-dawn-features=` list gets it appended.
 *
 * @example
 * ```ts
 * withPreciseTimestamps(['backend=vulkan']);
 * // ['backend=vulkan', 'disable-dawn-features=timestamp_quantization']
 * ```
 */
export function withPreciseTimestamps(options: readonly string[]): string[] {
  const prefix = 'disable-dawn-features=';
  const i = options.findIndex((o) => o.startsWith(prefix));
  if (i < 0) return [...options, `${prefix}timestamp_quantization`];
  const out = [...options];
  if (!out[i].includes('timestamp_quantization')) out[i] += ',timestamp_quantization';
  return out;
}

function summarize(info: GPUAdapterInfo | undefined, features: string[], fallback: boolean): AdapterSummary {
  return {
    vendor: info?.vendor ?? '',
    architecture: info?.architecture ?? '',
    device: info?.device ?? '',
    description: info?.description ?? '',
    isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter ?? fallback,
    features,
  };
}

/**
 * Creates the WebGPU backend, registers it as `'webgpu'` and makes it the current backend.
 * Throws a FluxionError when no adapter or device can be had.
 *
 * @example
 * ```ts
 * const gpu = await initWebGPU({ powerPreference: 'high-performance' });
 * console.log(gpu.adapterInfo.description); // e.g. "llvmpipe: Mesa 25.0.7 (LLVM 15.0.6)"
 * const y = matmul(randn([256, 256]), randn([256, 256])); // runs on the GPU
 * ```
 */
export async function initWebGPU(options: WebGPUOptions = {}): Promise<WebGPUBackend> {
  let device = options.device;
  let gpu: GPU | undefined;
  let summary: AdapterSummary;
  if (device) {
    summary = summarize(device.adapterInfo, [...device.features].map(String), false);
  } else {
    gpu = await getGpu(options);
    const request: GPURequestAdapterOptions & { featureLevel?: string } = {};
    if (options.powerPreference) request.powerPreference = options.powerPreference;
    if (options.featureLevel) request.featureLevel = options.featureLevel;
    const adapter = await gpu.requestAdapter(request);
    if (!adapter) {
      throw new FluxionError(
        'initWebGPU',
        'no WebGPU adapter was found (on Linux without a GPU, install Mesa lavapipe; see DESIGN.md)',
      );
    }
    const disabled = disabledFeatures(options);
    const requiredFeatures = WANTED_FEATURES.filter((f) => adapter.features.has(f) && !disabled.has(f));
    const requiredLimits: Record<string, number> = {};
    const limits = adapter.limits as unknown as Record<string, number | undefined>;
    for (const name of WANTED_LIMITS) {
      const value = limits[name];
      if (typeof value === 'number') requiredLimits[name] = value;
    }
    try {
      device = await adapter.requestDevice({ requiredFeatures, requiredLimits, label: 'fluxion' });
    } catch (e) {
      throw new FluxionError('initWebGPU', `the adapter refused a device: ${(e as Error).message}`);
    }
    const fallback = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false;
    summary = summarize(adapter.info, requiredFeatures, fallback);
  }
  const backend = new WebGPUBackend({
    device,
    adapterInfo: summary,
    owner: gpu,
    ownsDevice: !options.device,
    maxPooledBytes: options.maxPooledBytes,
    fuseElementwise: options.fuseElementwise ?? processEnv()?.FLUXION_FUSE !== '0',
  });
  const variant = options.matmulVariant ?? 'auto';
  backend.matmulVariant =
    variant === 'auto'
      ? await chooseMatmulVariant(backend, `${summary.vendor}|${summary.architecture}|${summary.description}`)
      : variant;
  registerBackend(backend);
  setBackend('webgpu');
  return backend;
}

/**
 * Uses WebGPU when an adapter is available, else keeps the CPU backend and prints one line saying
 * why. With `FLUXION_REQUIRE_WEBGPU=1` in the environment a missing adapter throws instead.
 * Returns the name of the backend now current.
 *
 * @example
 * ```ts
 * const name = await useBestBackend(); // 'webgpu' or 'cpu'
 * ```
 */
export async function useBestBackend(options: WebGPUOptions = {}): Promise<BackendName> {
  try {
    await initWebGPU(options);
    return 'webgpu';
  } catch (e) {
    if (processEnv()?.FLUXION_REQUIRE_WEBGPU === '1') throw e;
    const reason = e instanceof Error ? e.message : String(e);
    console.warn(`fluxion: WebGPU is unavailable (${reason.split('\n')[0]}); using the CPU backend`);
    setBackend('cpu');
    return 'cpu';
  }
}
