/**
 * The Tensor: a strided view (shape, strides, offset) of a reference-counted storage buffer that
 * lives on one backend, with a dtype. Views share storage; kernels read strides directly.
 *
 * The methods here are thin conveniences over the functional API (`ops.ts`, `views.ts`,
 * `composite.ts`), so `x.add(y)` and `add(x, y)` are the same code.
 */
import type { Backend, BackendName, KernelArg } from './backend.js';
import * as C from './composite.js';
import { fromArray } from './creation.js';
import type { DType, TypedArray } from './dtype.js';
import { FluxionError, fmtShape } from './errors.js';
import { formatTensor } from './format.js';
import {
  allocBuffer,
  keep,
  type Storage,
  setTensorCheck,
  swapTrackedStorage,
  trackTensor,
  untrackTensor,
} from './memory.js';
import * as O from './ops.js';
import { contiguousStrides, isContiguous, sizeOf } from './shape.js';
import * as V from './views.js';

/** Nested JavaScript arrays of a tensor's values, as `array()` returns them. */
export type NestedArray = number | boolean | NestedArray[];

let nextId = 1;

/**
 * An n-dimensional array on a backend.
 *
 * @example
 * ```ts
 * const x = tensor([[1, 2], [3, 4]]);
 * const y = x.matmul(x.T).add(1);
 * console.log(await y.array()); // [[6, 12], [12, 26]]
 * y.dispose();
 * ```
 */
export class Tensor implements KernelArg {
  /** A unique id, for debugging and graph bookkeeping. */
  readonly id: number = nextId++;
  /** Set to true on a leaf to have autograd compute its gradient into {@link Tensor.grad}. */
  requiresGrad = false;
  /** The accumulated gradient of a leaf (filled by `backward()` from `@fluxion/autograd`). */
  grad: Tensor | null = null;
  /** The autograd node that produced this tensor (owned by `@fluxion/autograd`). */
  gradFn: unknown = null;
  private disposed = false;

  /** Use the creation functions (`tensor`, `zeros`, …); this constructor is for backends and ops. */
  constructor(
    storage: Storage,
    readonly shape: readonly number[],
    strides: readonly number[],
    offset: number,
    readonly dtype: DType,
  ) {
    this._storage = storage;
    this._strides = strides;
    this._offset = offset;
    trackTensor(this, storage);
  }
  private _storage: Storage;
  private _strides: readonly number[];
  private _offset: number;

  /** The reference-counted storage under this view. */
  get storage(): Storage {
    return this._storage;
  }
  /** Element strides per axis. */
  get strides(): readonly number[] {
    return this._strides;
  }
  /** Element offset of the first element in the storage. */
  get offset(): number {
    return this._offset;
  }

  /**
   * Replaces this tensor's values with those of `src` (same shape and dtype, same backend) by
   * taking a reference to `src`'s storage; `src` stays valid. Optimizers update parameters this
   * way. Other views of the old storage keep the old values. Returns `this`.
   *
   * @example
   * ```ts
   * const w = zeros([2]);
   * w.assign(ones([2])); // w now reads [1, 1]
   * ```
   */
  assign(src: Tensor): this {
    this.assertLive('assign');
    src.assertLive('assign');
    if (
      src.dtype !== this.dtype ||
      src.shape.length !== this.shape.length ||
      src.shape.some((d, i) => d !== this.shape[i])
    ) {
      throw new FluxionError(
        'assign',
        `source ${fmtShape(src.shape)} ${src.dtype} does not match target ${fmtShape(this.shape)} ${this.dtype}`,
      );
    }
    if (src.backend !== this.backend) {
      throw new FluxionError('assign', `source is on ${src.backend.name}, target on ${this.backend.name}`);
    }
    const old = this._storage;
    this._storage = src.storage.retain();
    this._strides = src.strides;
    this._offset = src.offset;
    swapTrackedStorage(this, old, this._storage);
    return this;
  }

  /** The backend buffer under this view. */
  get buffer(): object {
    return this.storage.buffer;
  }
  /** The backend holding this tensor. */
  get backend(): Backend {
    return this.storage.backend;
  }
  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }
  /** Number of axes. */
  get rank(): number {
    return this.shape.length;
  }
  /** Whether `dispose()` was called. */
  get isDisposed(): boolean {
    return this.disposed;
  }
  /** Whether the elements are laid out row-major without gaps. */
  get isContiguous(): boolean {
    return isContiguous(this.shape, this.strides);
  }

  /** Releases this handle; the storage is freed when its last view is disposed. Idempotent. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    untrackTensor(this, this.storage);
  }
  /** `using x = …` disposes at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /**
   * A new handle to the same storage and layout that no scope disposes (autograd keeps saved
   * tensors this way). Dispose it yourself.
   */
  retain(): Tensor {
    this.assertLive('retain');
    const t = new Tensor(this.storage.retain(), this.shape, this.strides, this.offset, this.dtype);
    return keep(t);
  }

  /** Throws a clear error when this tensor was disposed. */
  assertLive(op: string): void {
    if (this.disposed)
      throw new FluxionError(op, `tensor ${fmtShape(this.shape)} ${this.dtype} was disposed`);
  }

  /**
   * Reads the elements (row-major) into a typed array of this dtype; `bool` reads as Uint8Array.
   *
   * @example
   * ```ts
   * await tensor([1, 2, 3]).data(); // Float32Array [1, 2, 3]
   * ```
   */
  async data(): Promise<TypedArray> {
    this.assertLive('data');
    const { backend, storage, dtype, size } = this;
    if (this.offset === 0 && this.isContiguous && storage.size === size)
      return backend.read(this.buffer, dtype, size);
    const buffer = allocBuffer('data', backend, dtype, this.shape);
    try {
      const out = { buffer, shape: this.shape, strides: contiguousStrides(this.shape), offset: 0, dtype };
      if (size > 0) backend.run('copy', [this], out, {});
      return await backend.read(buffer, dtype, size);
    } finally {
      backend.free(buffer);
    }
  }

  /** Reads the elements as nested arrays (numbers; booleans for `bool`). */
  async array(): Promise<NestedArray> {
    const data = await this.data();
    const bool = this.dtype === 'bool';
    const build = (axis: number, start: number): NestedArray => {
      if (axis === this.rank) return bool ? data[start] !== 0 : data[start];
      const inner = sizeOf(this.shape.slice(axis + 1));
      return Array.from({ length: this.shape[axis] }, (_, i) => build(axis + 1, start + i * inner));
    };
    return build(0, 0);
  }

  /** Reads the single element of a one-element tensor. */
  async item(): Promise<number> {
    if (this.size !== 1)
      throw new FluxionError('item', `needs exactly one element, got shape ${fmtShape(this.shape)}`);
    return (await this.data())[0];
  }

  /**
   * This tensor on another backend: itself when it is already there, else a contiguous copy
   * (read back, uploaded). The dtype must exist there (float64 is CPU-only).
   *
   * @example
   * ```ts
   * const g = await tensor([1, 2, 3], { backend: 'cpu' }).to('webgpu');
   * ```
   */
  async to(backend: BackendName): Promise<Tensor> {
    this.assertLive('to');
    if (backend === this.backend.name) return this;
    return fromArray(await this.data(), this.shape, this.dtype, backend);
  }

  /** Shape, dtype and backend; values need an async read: see {@link Tensor.format}. */
  toString(): string {
    return `Tensor(shape=${fmtShape(this.shape)}, dtype=${this.dtype}, backend=${this.backend.name})`;
  }

  /** The values formatted the way PyTorch prints them: `tensor([[1., 2.], [3., 4.]])`. */
  async format(): Promise<string> {
    return formatTensor(this.shape, this.dtype, await this.data());
  }

  /** Prints {@link Tensor.format} to the console. */
  async print(): Promise<void> {
    console.log(await this.format());
  }

  // Elementwise arithmetic and math (see ops.ts).
  /** `this + other` (broadcast). */
  add(other: Tensor | number): Tensor {
    return O.add(this, other);
  }
  /** `this − other` (broadcast). */
  sub(other: Tensor | number): Tensor {
    return O.sub(this, other);
  }
  /** `this · other` (broadcast). */
  mul(other: Tensor | number): Tensor {
    return O.mul(this, other);
  }
  /** `this / other` (broadcast, true division). */
  div(other: Tensor | number): Tensor {
    return O.div(this, other);
  }
  /** `this ** other` (broadcast). */
  pow(other: Tensor | number): Tensor {
    return O.pow(this, other);
  }
  /** `−this`. */
  neg(): Tensor {
    return O.neg(this);
  }
  /** `|this|`. */
  abs(): Tensor {
    return O.abs(this);
  }
  /** `e^this`. */
  exp(): Tensor {
    return O.exp(this);
  }
  /** Natural logarithm. */
  log(): Tensor {
    return O.log(this);
  }
  /** Square root. */
  sqrt(): Tensor {
    return O.sqrt(this);
  }
  /** `this²`. */
  square(): Tensor {
    return C.square(this);
  }
  /** Hyperbolic tangent. */
  tanh(): Tensor {
    return O.tanh(this);
  }
  /** Logistic sigmoid. */
  sigmoid(): Tensor {
    return O.sigmoid(this);
  }
  /** `max(this, 0)`. */
  relu(): Tensor {
    return O.relu(this);
  }
  /** Elementwise equality as `bool`. */
  equal(other: Tensor | number): Tensor {
    return O.equal(this, other);
  }
  /** Converts to another dtype. */
  cast(dtype: DType): Tensor {
    return O.cast(this, dtype);
  }

  // Reductions.
  /** Sum over `axes` (all by default). */
  sum(axes?: number | number[], keepDims = false): Tensor {
    return O.sum(this, axes, keepDims);
  }
  /** Mean over `axes` (all by default). */
  mean(axes?: number | number[], keepDims = false): Tensor {
    return C.mean(this, axes, keepDims);
  }
  /** Maximum over `axes` (all by default). */
  max(axes?: number | number[], keepDims = false): Tensor {
    return O.max(this, axes, keepDims);
  }
  /** Minimum over `axes` (all by default). */
  min(axes?: number | number[], keepDims = false): Tensor {
    return O.min(this, axes, keepDims);
  }
  /** Index of the maximum along `axis` (of the flattened tensor by default). */
  argmax(axis?: number, keepDims = false): Tensor {
    return O.argmax(this, axis, keepDims);
  }

  // Linear algebra.
  /** Matrix product (batched, batch dims broadcast). */
  matmul(other: Tensor): Tensor {
    return O.matmul(this, other);
  }
  /** The last two axes swapped (a view). */
  get T(): Tensor {
    return V.transpose(this, -2, -1);
  }

  // Views.
  /** Same elements in a new shape (`-1` infers one size); copies only when it must. */
  reshape(shape: number[]): Tensor {
    return V.reshape(this, shape);
  }
  /** Reorders axes (a view). */
  permute(axes: number[]): Tensor {
    return V.permute(this, axes);
  }
  /** Swaps two axes (a view). */
  transpose(a: number, b: number): Tensor {
    return V.transpose(this, a, b);
  }
  /** Broadcasts size-1 axes to `shape` (a view; `-1` keeps a size). */
  expand(shape: number[]): Tensor {
    return V.expand(this, shape);
  }
  /** Python-style slicing per axis (a view): see {@link V.slice}. */
  slice(...specs: V.SliceSpec[]): Tensor {
    return V.slice(this, ...specs);
  }
  /** Removes size-1 axes (all, or the ones given). */
  squeeze(axes?: number | number[]): Tensor {
    return V.squeeze(this, axes);
  }
  /** Inserts a size-1 axis at `axis`. */
  unsqueeze(axis: number): Tensor {
    return V.unsqueeze(this, axis);
  }
  /** Merges axes `start..end` into one. */
  flatten(start = 0, end = -1): Tensor {
    return V.flatten(this, start, end);
  }
  /** This tensor if contiguous, else a contiguous copy. */
  contiguous(): Tensor {
    return O.contiguous(this);
  }
}

setTensorCheck((v: unknown): v is Tensor => v instanceof Tensor);
