/**
 * `@fluxion/tensor`: tensors, dtypes, views, the op registry and the backends.
 *
 * @example
 * ```ts
 * import { tensor, matmul, softmax } from '@fluxion/tensor';
 * const x = tensor([[1, 2], [3, 4]]);
 * console.log(await softmax(matmul(x, x), -1).format());
 * ```
 *
 * @module
 */
import './backends/cpu.js';
import './globals.js';

export * from './backend.js';
export { createCpuBackend, stridedOffsets } from './backends/cpu.js';
export { type AdapterSummary, WebGPUBackend, type WebGPUStats } from './backends/webgpu/backend.js';
export {
  initWebGPU,
  useBestBackend,
  type WebGPUOptions,
  withPreciseTimestamps,
} from './backends/webgpu/device.js';
export { throttleNativePolling } from './backends/webgpu/polling.js';
export type { KernelTiming } from './backends/webgpu/profiler.js';
export * from './composite.js';
export { type ConvOptions, conv } from './conv.js';
export * from './creation.js';
export { type OpObserver, type OpRecord, runKernel, runProgram, runView, setOpObserver } from './dispatch.js';
export * from './dtype.js';
export { FluxionError, fmtShape } from './errors.js';
export { axisContext, type IndexContext, indexRangeError } from './index-range.js';
export { keep, type MemoryStats, memoryStats, Storage, scope } from './memory.js';
export {
  type LayerNormGradOptions,
  type LayerNormOpOptions,
  layerNorm,
  layerNormGrad,
} from './norm.js';
export * from './ops.js';
export { type Distribution, philox4x32, seedToKey } from './philox.js';
export * from './program.js';
export * from './random.js';
export * from './registry.js';
export * from './sampling.js';
export * from './shape.js';
export * from './signal.js';
export { type NestedArray, Tensor } from './tensor.js';
export * from './views.js';
