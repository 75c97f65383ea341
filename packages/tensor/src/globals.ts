/**
 * What the published declarations of Fluxion name from outside ECMAScript 2022, so that a project
 * type-checks them under a default strict `tsconfig` — without `skipLibCheck`, `lib: esnext`, DOM
 * or `@webgpu/types`:
 *
 * - `Disposable` and `Symbol.dispose` (tensors and modules free their memory at the end of a
 *   `using` block) come from TypeScript's own `esnext.disposable` library, referenced here.
 * - The WebGPU objects that a few public signatures hand out (`WebGPUBackend.device`, buffers) are
 *   declared as empty interfaces. Where a project has the full WebGPU declarations (TypeScript's
 *   DOM library, or `@webgpu/types`), these merge with them and change nothing; elsewhere they are
 *   opaque objects.
 *
 * @module
 */
/// <reference lib="esnext.disposable" preserve="true" />

declare global {
  // biome-ignore-start lint/suspicious/noEmptyInterface: merged with the full WebGPU declarations where a project has them
  interface GPUDevice {}
  interface GPUBuffer {}
  interface GPUComputePipeline {}
  interface GPUBindGroupLayout {}
  interface GPUCommandEncoder {}
  interface GPUComputePassTimestampWrites {}
  // biome-ignore-end lint/suspicious/noEmptyInterface: see above
}

export {};
