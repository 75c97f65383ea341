/**
 * The minimal backend interface: allocate, upload, read (async), free, and run one kernel.
 *
 * A backend never sees a Tensor object: kernels get {@link KernelArg}s (a buffer plus shape,
 * strides and offset in elements), so views reach kernels without copies. The output argument is
 * always a fresh contiguous buffer.
 */
import type { DType, TypedArray } from './dtype.js';
import { FluxionError } from './errors.js';
import type { ParsedProgram } from './program.js';
import type { KernelOp, OpParamMap } from './registry.js';

/** Names of the backends Fluxion ships. */
export type BackendName = 'cpu' | 'webgpu';

/** An opaque handle to backend memory. */
export type BackendBuffer = object;

/** A kernel operand: a buffer seen through a strided view. */
export interface KernelArg {
  readonly buffer: BackendBuffer;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
  readonly offset: number;
  readonly dtype: DType;
}

/** Memory held by one backend. */
export interface BackendMemory {
  buffers: number;
  bytes: number;
}

/**
 * What a backend implements. Kernels are looked up by primitive name; every backend has a kernel
 * for every {@link KernelOp} (checked at compile time by each backend's typed kernel table).
 */
export interface Backend {
  readonly name: BackendName;
  /** Dtypes this backend can store. */
  readonly dtypes: readonly DType[];
  /** Allocates `size` elements of `dtype` (contents undefined). */
  alloc(dtype: DType, size: number): BackendBuffer;
  /** Copies host data into a buffer. */
  upload(buffer: BackendBuffer, data: TypedArray): void;
  /** Reads `size` elements of `dtype` from the start of a buffer. */
  read(buffer: BackendBuffer, dtype: DType, size: number): Promise<TypedArray>;
  /** Releases a buffer (it may be pooled). */
  free(buffer: BackendBuffer): void;
  /** Runs primitive `op` writing the contiguous `out`. */
  run<K extends KernelOp>(op: K, inputs: readonly KernelArg[], out: KernelArg, params: OpParamMap[K]): void;
  /**
   * Runs an elementwise program (see `program.ts`): contiguous inputs of one shape, one contiguous
   * output per program output, `scalars` in the program's order.
   */
  runProgram(
    program: ParsedProgram,
    inputs: readonly KernelArg[],
    outputs: readonly KernelArg[],
    scalars: readonly number[],
  ): void;
  /** Buffers and bytes currently held. */
  memory(): BackendMemory;
  /** Waits until all submitted work has finished. */
  sync(): Promise<void>;
}

const backends = new Map<BackendName, Backend>();
let current: BackendName = 'cpu';

/** Registers a backend instance under its name (the CPU backend registers itself). */
export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

/** Removes a backend (e.g. after its device was lost or destroyed). */
export function unregisterBackend(name: BackendName): void {
  backends.delete(name);
  if (current === name) current = 'cpu';
}

/** The registered backend of this name, or a clear error when it has not been initialised. */
export function getBackend(name: BackendName = current): Backend {
  const b = backends.get(name);
  if (!b) {
    throw new FluxionError(
      'backend',
      name === 'webgpu'
        ? "the 'webgpu' backend is not initialised; call `await initWebGPU()` first"
        : `unknown backend '${name}'`,
    );
  }
  return b;
}

/** Whether a backend of this name is registered. */
export function hasBackend(name: BackendName): boolean {
  return backends.has(name);
}

/**
 * Chooses the backend new tensors are created on.
 *
 * @example
 * ```ts
 * setBackend('cpu');
 * const x = ones([2, 2]); // on the CPU backend
 * ```
 */
export function setBackend(name: BackendName): void {
  getBackend(name);
  current = name;
}

/** The name of the backend new tensors are created on. */
export function currentBackend(): BackendName {
  return current;
}

/** Memory held by every registered backend, by name. */
export function backendMemory(): Partial<Record<BackendName, BackendMemory>> {
  const out: Partial<Record<BackendName, BackendMemory>> = {};
  for (const [name, b] of backends) out[name] = b.memory();
  return out;
}
