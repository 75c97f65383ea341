/**
 * The module system: {@link Parameter} and {@link Buffer} (tensors a module owns) and
 * {@link Module}, the base class of every layer.
 *
 * A module finds its parameters, buffers and submodules by walking its own fields (and arrays in
 * its fields), in the order they were assigned, so a layer only has to store them:
 *
 * ```ts
 * class Mlp extends Module {
 *   fc1 = new Dense(4, 8, { activation: 'relu' });
 *   fc2 = new Dense(8, 1);
 *   forward(x: Tensor) { return this.fc2.forward(this.fc1.forward(x)); }
 * }
 * new Mlp().namedParameters().map(([name]) => name); // fc1.weight, fc1.bias, fc2.weight, fc2.bias
 * ```
 *
 * Fields whose names start with `_` are not walked (use them for references to modules that are
 * not children). Parameters and buffers are kept out of scopes: they live until `dispose()`.
 */
/// <reference lib="esnext.disposable" preserve="true" />
import {
  type BackendName,
  type DType,
  FluxionError,
  fmtShape,
  fromArray,
  keep,
  shapesEqual,
  Tensor,
} from '@fluxion/tensor';
import { summary } from './summary.js';

/**
 * A trainable tensor: a leaf with `requiresGrad = true` that no scope disposes. It shares the
 * storage of the tensor it wraps (no copy); that tensor may be disposed afterwards.
 *
 * Args:
 *   data: the initial values.
 *   requiresGrad: whether autograd computes `.grad` for it (default true).
 *
 * @example
 * ```ts
 * const w = new Parameter(randn([3, 2]));
 * w.requiresGrad; // true
 * ```
 */
export class Parameter extends Tensor {
  constructor(data: Tensor, requiresGrad = true) {
    data.assertLive('Parameter');
    super(data.storage.retain(), data.shape, data.strides, data.offset, data.dtype);
    this.requiresGrad = requiresGrad;
    keep(this);
  }
}

/**
 * A non-trainable tensor a module owns and saves in its state dict (e.g. BatchNorm's running
 * statistics). Shares the storage of the tensor it wraps, no scope disposes it, and updates go
 * through `assign()`.
 *
 * @example
 * ```ts
 * class Counter extends Module {
 *   count = new Buffer(zeros([]));
 *   forward(x: Tensor) { this.count.assign(add(this.count, 1)); return x; }
 * }
 * ```
 */
export class Buffer extends Tensor {
  constructor(data: Tensor) {
    data.assertLive('Buffer');
    super(data.storage.retain(), data.shape, data.strides, data.offset, data.dtype);
    keep(this);
  }
}

/** Anything a module owns: a parameter, a buffer or a submodule. */
type Owned = Parameter | Buffer | AnyModule;

/** A module of any signature. */
// biome-ignore lint/suspicious/noExplicitAny: a module of any forward signature
export type AnyModule = Module<any[], unknown>;

/** One thing a module owns, with the name it is saved under and a way to replace it. */
export interface Slot {
  name: string;
  value: Owned;
  set(value: Owned): void;
}

const isOwned = (v: unknown): v is Owned =>
  v instanceof Parameter || v instanceof Buffer || v instanceof Module;

/** Options of {@link Module.loadStateDict}. */
export interface LoadStateDictOptions {
  /** Fail on missing or unexpected entries (default true); shape mismatches always fail. */
  strict?: boolean;
}

/** What {@link Module.loadStateDict} found, when `strict` is false. */
export interface LoadStateDictResult {
  missingKeys: string[];
  unexpectedKeys: string[];
}

/** Reads a tensor back and uploads it to another backend (same shape and dtype). */
export async function moveTensor(t: Tensor, backend: BackendName): Promise<Tensor> {
  if (t.backend.name === backend) return t;
  return fromArray(await t.data(), t.shape, t.dtype, backend);
}

/**
 * Base class of all layers and models. Subclasses store parameters ({@link Parameter}), buffers
 * ({@link Buffer}) and submodules in fields and implement `forward`.
 *
 * @example
 * ```ts
 * class Affine extends Module {
 *   scale = new Parameter(ones([3]));
 *   forward(x: Tensor) { return mul(x, this.scale); }
 * }
 * const m = new Affine();
 * m.parameters().length; // 1
 * m.eval().training;     // false
 * ```
 */
export abstract class Module<In extends unknown[] = [Tensor], Out = Tensor> {
  /** Training mode (Dropout drops, BatchNorm uses batch statistics); see {@link Module.eval}. */
  training = true;

  /** Computes the module's output. */
  abstract forward(...inputs: In): Out;

  /**
   * The parameters, buffers and submodules this module owns directly, in field order. Override to
   * name children differently (Sequential names its layers `0`, `1`, …).
   */
  protected ownSlots(): Slot[] {
    const slots: Slot[] = [];
    const fields = this as unknown as Record<string, unknown>;
    for (const [key, value] of Object.entries(this)) {
      if (key.startsWith('_')) continue;
      if (isOwned(value)) slots.push({ name: key, value, set: (v) => (fields[key] = v) });
      else if (Array.isArray(value)) {
        value.forEach((item, i) => {
          if (isOwned(item)) slots.push({ name: `${key}.${i}`, value: item, set: (v) => (value[i] = v) });
        });
      }
    }
    return slots;
  }

  /** Every slot of this module and its descendants, with dotted names (`enc.fc1.weight`). */
  private allSlots(prefix = '', seen = new Set<unknown>()): Slot[] {
    const out: Slot[] = [];
    for (const slot of this.ownSlots()) {
      if (seen.has(slot.value)) continue;
      seen.add(slot.value);
      const name = prefix + slot.name;
      out.push({ ...slot, name });
      if (slot.value instanceof Module) out.push(...slot.value.allSlots(`${name}.`, seen));
    }
    return out;
  }

  /** The direct submodules with their names. */
  namedChildren(): [string, AnyModule][] {
    return this.ownSlots().flatMap((s) => (s.value instanceof Module ? [[s.name, s.value]] : []));
  }

  /** This module (named `''`) and all its descendants, depth first. */
  namedModules(): [string, AnyModule][] {
    const out: [string, AnyModule][] = [['', this as AnyModule]];
    for (const s of this.allSlots()) if (s.value instanceof Module) out.push([s.name, s.value]);
    return out;
  }

  /** This module and all its descendants. */
  modules(): AnyModule[] {
    return this.namedModules().map(([, m]) => m);
  }

  /**
   * Every parameter with its dotted name (`0.weight`, `enc.fc1.bias`); a parameter shared by two
   * layers is listed once.
   */
  namedParameters(): [string, Parameter][] {
    return this.allSlots().flatMap((s) => (s.value instanceof Parameter ? [[s.name, s.value]] : []));
  }

  /** Every parameter, in the order of {@link Module.namedParameters}. */
  parameters(): Parameter[] {
    return this.namedParameters().map(([, p]) => p);
  }

  /** Every buffer with its dotted name. */
  namedBuffers(): [string, Buffer][] {
    return this.allSlots().flatMap((s) => (s.value instanceof Buffer ? [[s.name, s.value]] : []));
  }

  /** Every buffer. */
  buffers(): Buffer[] {
    return this.namedBuffers().map(([, b]) => b);
  }

  /** The number of parameter elements this module owns directly (not through submodules). */
  ownParameterCount(): number {
    return this.ownSlots().reduce((n, s) => n + (s.value instanceof Parameter ? s.value.size : 0), 0);
  }

  /** The number of parameter elements (all, or only the trainable ones). */
  parameterCount(trainableOnly = false): number {
    return this.parameters()
      .filter((p) => !trainableOnly || p.requiresGrad)
      .reduce((n, p) => n + p.size, 0);
  }

  /**
   * Parameters and buffers by dotted name. The values are the live tensors, not copies: save or
   * read them, do not dispose them.
   *
   * @example
   * ```ts
   * Object.keys(new Dense(2, 3).stateDict()); // ['weight', 'bias']
   * ```
   */
  stateDict(): Record<string, Tensor> {
    const out: Record<string, Tensor> = {};
    for (const s of this.allSlots()) if (!(s.value instanceof Module)) out[s.name] = s.value;
    return out;
  }

  /**
   * Copies values from a state dict into this module's parameters and buffers (sharing storage,
   * no copy; float dtypes are converted to the parameter's). Entries on another backend, of
   * another shape, missing entries and unexpected entries (the last two only when `strict`) are
   * reported together in one FluxionError, and nothing is changed then.
   *
   * @example
   * ```ts
   * const b = new Dense(2, 3);
   * b.loadStateDict(new Dense(2, 3).stateDict());
   * ```
   */
  loadStateDict(stateDict: Record<string, Tensor>, options: LoadStateDictOptions = {}): LoadStateDictResult {
    const { strict = true } = options;
    const own = this.stateDict();
    const missingKeys = Object.keys(own).filter((k) => !(k in stateDict));
    const unexpectedKeys = Object.keys(stateDict).filter((k) => !(k in own));
    const problems: string[] = [];
    if (strict && missingKeys.length) problems.push(`missing keys: ${missingKeys.join(', ')}`);
    if (strict && unexpectedKeys.length) problems.push(`unexpected keys: ${unexpectedKeys.join(', ')}`);
    for (const [name, target] of Object.entries(own)) {
      const src = stateDict[name];
      if (!src) continue;
      if (!(src instanceof Tensor)) problems.push(`'${name}' is not a Tensor`);
      else if (src.isDisposed) problems.push(`'${name}' was disposed`);
      else if (!shapesEqual(src.shape, target.shape)) {
        problems.push(
          `'${name}' has shape ${fmtShape(src.shape)}, the module expects ${fmtShape(target.shape)}`,
        );
      } else if (src.dtype !== target.dtype && (src.dtype === 'bool') !== (target.dtype === 'bool')) {
        problems.push(`'${name}' has dtype ${src.dtype}, the module expects ${target.dtype}`);
      } else if (src.backend !== target.backend) {
        problems.push(`'${name}' is on ${src.backend.name}, the module on ${target.backend.name}`);
      }
    }
    if (problems.length) throw new FluxionError('loadStateDict', problems.join('; '));
    for (const [name, target] of Object.entries(own)) {
      const src = stateDict[name];
      if (src) target.assign(src.dtype === target.dtype ? src : src.cast(target.dtype));
    }
    return { missingKeys, unexpectedKeys };
  }

  /** Sets training mode on this module and all descendants. Returns this. */
  train(mode = true): this {
    for (const m of this.modules()) m.training = mode;
    return this;
  }

  /** Evaluation mode (`train(false)`): Dropout is the identity, BatchNorm uses running stats. */
  eval(): this {
    return this.train(false);
  }

  /** Calls `fn` on every descendant, then on this module (as PyTorch's `apply`). Returns this. */
  apply(fn: (module: AnyModule) => void): this {
    for (const m of this.modules().reverse()) fn(m);
    return this;
  }

  /** Sets `requiresGrad` on every parameter (false freezes them). Returns this. */
  setRequiresGrad(requiresGrad: boolean): this {
    for (const p of this.parameters()) p.requiresGrad = requiresGrad;
    return this;
  }

  /** Drops the gradients of every parameter (`grad = null`). */
  zeroGrad(): void {
    for (const p of this.parameters()) p.zeroGrad();
  }

  /**
   * Moves every parameter and buffer to `backend` (reads each back and uploads it; async). The
   * parameter objects are replaced, so create optimizers after moving.
   *
   * @example
   * ```ts
   * await model.to('webgpu');
   * ```
   */
  async to(backend: BackendName): Promise<this> {
    for (const slot of this.allSlots()) {
      const t = slot.value;
      if (t instanceof Module || t.backend.name === backend) continue;
      const moved = await moveTensor(t, backend);
      const replacement = t instanceof Parameter ? new Parameter(moved, t.requiresGrad) : new Buffer(moved);
      moved.dispose();
      this.replaceEverywhere(t, replacement);
      t.dispose();
    }
    return this;
  }

  /** Replaces `old` by `replacement` in every slot that holds it (shared parameters included). */
  private replaceEverywhere(old: Owned, replacement: Owned): void {
    for (const m of this.modules()) for (const s of m.ownSlots()) if (s.value === old) s.set(replacement);
  }

  /** Casts every float parameter and buffer to `dtype` (e.g. float64 for gradient checks). */
  toDtype(dtype: DType): this {
    for (const slot of this.allSlots()) {
      const t = slot.value;
      if (t instanceof Module || t.dtype === dtype || t.dtype === 'int32' || t.dtype === 'bool') continue;
      const cast = t.cast(dtype);
      const replacement = t instanceof Parameter ? new Parameter(cast, t.requiresGrad) : new Buffer(cast);
      cast.dispose();
      this.replaceEverywhere(t, replacement);
      t.dispose();
    }
    return this;
  }

  /**
   * A Keras-style table of the layers this module calls on an input of `inputShape` (zeros), their
   * output shapes and parameter counts; see {@link summary}. Runs in eval mode without gradients.
   */
  summary(inputShape: readonly number[], options: { dtype?: DType; print?: boolean } = {}): string {
    return summary(this as AnyModule, inputShape, options);
  }

  /** Disposes every parameter and buffer. */
  dispose(): void {
    for (const s of this.allSlots()) if (!(s.value instanceof Module)) s.value.dispose();
  }

  /** `using model = …` disposes the parameters at the end of the block. */
  [Symbol.dispose](): void {
    this.dispose();
  }

  /** The class name and its constructor arguments, as `summary` shows it. */
  toString(): string {
    return this.constructor.name;
  }
}
