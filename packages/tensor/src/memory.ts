/**
 * Deterministic memory release: reference-counted storage, scopes that dispose what they created,
 * and counters for `memoryStats()`.
 *
 * Every tensor is registered in the innermost open scope when it is created. When the scope's
 * function returns, every tensor it created is disposed except the ones it returns (found in
 * arrays and plain objects) and the ones passed to {@link keep}; returned tensors move to the
 * enclosing scope. A FinalizationRegistry frees the storage of tensors that were garbage-collected
 * without `dispose()`, as a safety net only, and counts them in `memoryStats().leaked`.
 */
import {
  type Backend,
  type BackendBuffer,
  type BackendMemory,
  type BackendName,
  backendMemory,
} from './backend.js';
import type { DType } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import { sizeOf } from './shape.js';
import type { Tensor } from './tensor.js';

/** A reference-counted backend buffer shared by a tensor and all its views. */
export class Storage {
  private refs = 1;
  constructor(
    readonly backend: Backend,
    readonly buffer: BackendBuffer,
    readonly dtype: DType,
    readonly size: number,
  ) {}
  /** Adds a reference (a new view or handle). */
  retain(): this {
    this.refs++;
    return this;
  }
  /** Drops a reference; the buffer is freed with the last one. */
  release(): void {
    if (--this.refs === 0) this.backend.free(this.buffer);
  }
}

/**
 * Allocates a buffer for `shape` elements of `dtype` on `backend`, for `op`. A backend refuses an
 * allocation it cannot make (WebGPU: past the device's storage-buffer binding limit) with an error
 * of its own; it is raised again as an error of `op`, the op that asked, naming the shape, the
 * dtype and the limit, so that a user sees which of their calls was too large.
 *
 * @example
 * ```ts
 * const buffer = allocBuffer('matmul', backend, 'float32', [4096, 4096]);
 * ```
 */
export function allocBuffer(
  op: string,
  backend: Backend,
  dtype: DType,
  shape: readonly number[],
): BackendBuffer {
  try {
    return backend.alloc(dtype, sizeOf(shape));
  } catch (e) {
    if (!(e instanceof FluxionError) || e.op !== 'alloc' || op === 'alloc') throw e;
    const reason = e.message.slice('alloc: '.length);
    throw new FluxionError(op, `cannot allocate a ${dtype} tensor of shape ${fmtShape(shape)}: ${reason}`);
  }
}

/**
 * The storage of a new contiguous tensor of `shape` for `op` (see {@link allocBuffer}).
 *
 * @example
 * ```ts
 * const storage = allocStorage('exp', backend, 'float32', [2, 3]);
 * ```
 */
export function allocStorage(op: string, backend: Backend, dtype: DType, shape: readonly number[]): Storage {
  return new Storage(backend, allocBuffer(op, backend, dtype, shape), dtype, sizeOf(shape));
}

let liveTensors = 0;
let leaked = 0;
const scopes: Set<Tensor>[] = [];

const finalizer = new FinalizationRegistry<Storage>((storage) => {
  leaked++;
  liveTensors--;
  storage.release();
});

/** Called by the Tensor constructor. */
export function trackTensor(t: Tensor, storage: Storage): void {
  liveTensors++;
  finalizer.register(t, storage, t);
  scopes.at(-1)?.add(t);
}

/** Called by `Tensor.assign()`: the tensor now holds `next`; `previous` loses a reference. */
export function swapTrackedStorage(t: Tensor, previous: Storage, next: Storage): void {
  finalizer.unregister(t);
  finalizer.register(t, next, t);
  previous.release();
}

/** Called by `Tensor.dispose()`. */
export function untrackTensor(t: Tensor, storage: Storage): void {
  liveTensors--;
  finalizer.unregister(t);
  for (const s of scopes) s.delete(t);
  storage.release();
}

/**
 * Excludes tensors from every open scope, so that no scope disposes them (parameters, optimizer
 * state, `.grad`). Returns its argument.
 *
 * @example
 * ```ts
 * const w = scope(() => keep(randn([3, 3])));
 * ```
 */
export function keep<T extends Tensor | Tensor[]>(t: T): T {
  for (const x of Array.isArray(t) ? t : [t]) for (const s of scopes) s.delete(x);
  return t;
}

function collect(value: unknown, into: Set<Tensor>, isTensor: (v: unknown) => v is Tensor, depth = 0): void {
  if (depth > 8 || value === null || typeof value !== 'object') return;
  if (isTensor(value)) into.add(value);
  else if (Array.isArray(value)) for (const v of value) collect(v, into, isTensor, depth + 1);
  else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) collect(v, into, isTensor, depth + 1);
  }
}

let tensorCheck: (v: unknown) => v is Tensor = (_v): _v is Tensor => false;
/** Installed by tensor.ts (avoids an import cycle). */
export function setTensorCheck(check: (v: unknown) => v is Tensor): void {
  tensorCheck = check;
}

/**
 * Runs `fn` and disposes every tensor created inside it, except the tensors it returns (directly
 * or inside arrays and plain objects) and those passed to {@link keep}. Like TensorFlow.js's
 * `tidy`; scopes nest. `fn` must be synchronous: await outside the scope.
 *
 * @example
 * ```ts
 * const y = scope(() => x.mul(2).add(1).relu()); // the two intermediates are freed here
 * ```
 */
export function scope<T>(fn: () => T): T {
  const created = new Set<Tensor>();
  scopes.push(created);
  let result: T;
  try {
    result = fn();
  } catch (e) {
    scopes.pop();
    for (const t of created) t.dispose();
    throw e;
  }
  scopes.pop();
  if (result instanceof Promise) {
    for (const t of created) t.dispose();
    throw new FluxionError('scope', 'the function must be synchronous (it returned a Promise)');
  }
  const kept = new Set<Tensor>();
  collect(result, kept, tensorCheck);
  for (const t of created) {
    if (kept.has(t)) scopes.at(-1)?.add(t);
    else t.dispose();
  }
  return result;
}

/** What `memoryStats()` reports. */
export interface MemoryStats {
  /** Tensors created and not yet disposed (views count separately; they share storage). */
  liveTensors: number;
  /** Tensors that were garbage-collected without `dispose()` (their storage was freed then). */
  leaked: number;
  /** Buffers and bytes held by each backend (pooled GPU buffers and cached constants excluded). */
  backends: Partial<Record<BackendName, BackendMemory>>;
  /**
   * The scalar constants ops keep for reuse on device backends (`x.mul(0.5)` on WebGPU uploads
   * 0.5 once): a bounded cache, reported here and not in `liveTensors` or `backends`.
   */
  constants: { tensors: number; backends: Partial<Record<BackendName, BackendMemory>> };
}

/** Cached constants and the backend memory each one took. */
const constantTensors = new Map<Tensor, { backend: BackendName; memory: BackendMemory }>();

/**
 * Registers a cached constant, with the backend memory its creation took, so that
 * {@link memoryStats} reports it apart; it is forgotten when disposed.
 */
export function registerConstant(t: Tensor, backend: BackendName, memory: BackendMemory): void {
  constantTensors.set(t, { backend, memory });
}

/** Forgets a cached constant (before it is disposed). */
export function unregisterConstant(t: Tensor): void {
  constantTensors.delete(t);
}

/**
 * Live tensors and memory per backend.
 *
 * @example
 * ```ts
 * const before = memoryStats().backends.cpu?.buffers;
 * scope(() => ones([100]).exp());
 * memoryStats().backends.cpu?.buffers === before; // true
 * ```
 */
export function memoryStats(): MemoryStats {
  const backends = backendMemory();
  const constants: MemoryStats['constants'] = { tensors: constantTensors.size, backends: {} };
  for (const { backend, memory } of constantTensors.values()) {
    const own = (constants.backends[backend] ??= { buffers: 0, bytes: 0 });
    own.buffers += memory.buffers;
    own.bytes += memory.bytes;
    const total = backends[backend];
    if (total) {
      total.buffers -= memory.buffers;
      total.bytes -= memory.bytes;
    }
  }
  return { liveTensors: liveTensors - constantTensors.size, leaked, backends, constants };
}
