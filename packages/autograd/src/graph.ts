/**
 * Recording the graph. `@fluxion/tensor` tells an observer about every primitive application; the
 * observer installed here turns each one whose inputs reach a tensor that requires a gradient into
 * a {@link GradNode}: the op, its parameters, links to its inputs' nodes (or to the leaf tensors
 * themselves) and the values its VJP will read, kept as `retain()` handles because the functional
 * API disposes its temporaries as soon as an op returns.
 *
 * Lifetime: a node counts its references (its output tensor plus every node that consumes it).
 * Disposing the output or freeing a consumer drops one; at zero the node disposes its saved values
 * and drops its own inputs, so a graph that is never differentiated still frees its memory as soon
 * as its tensors are disposed. `backward()` without `retainGraph` frees the saved values of every
 * node it ran through (and marks them, so a second pass is a clear error).
 *
 * Grad mode (`noGrad`, `enableGrad`) switches recording off and on, as a function taking a
 * callback or as a `using` declaration.
 */
/// <reference lib="esnext.disposable" preserve="true" />
import { FluxionError, isFloat, type OpName, type OpParamMap, setOpObserver, Tensor } from '@fluxion/tensor';
import { VJPS } from './vjps.js';

/**
 * Where a gradient flows: the node that produced a tensor, or a leaf tensor itself.
 *
 * @example
 * ```ts
 * const target: GradTarget = y.gradFn instanceof GradNode ? y.gradFn : y;
 * ```
 */
export type GradTarget = GradNode | Tensor;

/**
 * Shape and dtype of a node's input, kept so VJPs can rebuild shapes without the tensor.
 *
 * @example
 * ```ts
 * (y.gradFn as GradNode).inputs[0].shape; // the first input's shape
 * ```
 */
export interface InputMeta {
  readonly shape: readonly number[];
  readonly dtype: Tensor['dtype'];
}

/**
 * One recorded primitive application: what `backward()` walks. Users see it as `tensor.gradFn`.
 *
 * @example
 * ```ts
 * const x = tensor([1, 2]);
 * x.requiresGrad = true;
 * (exp(x).gradFn as GradNode).op; // 'exp'
 * ```
 */
export class GradNode<K extends OpName = OpName> {
  /** Inputs' nodes or leaf tensors, by position; null where no gradient flows. */
  readonly parents: (GradTarget | null)[];
  /** Saved input values (retained handles), by position; undefined where the VJP does not read them. */
  readonly savedInputs: (Tensor | undefined)[];
  /** The saved output value, when the VJP reads it. */
  savedOutput: Tensor | undefined;
  /** A non-leaf tensor whose `.grad` should be filled (`retainGrad()`). */
  retainedGradOf: Tensor | null = null;
  /** Whether backward already released the saved values. */
  freed = false;
  /** The output tensor plus every node that consumes this one. */
  private refs = 1;

  constructor(
    readonly op: K,
    readonly params: OpParamMap[K],
    readonly inputs: readonly InputMeta[],
    readonly output: InputMeta,
    parents: (GradTarget | null)[],
  ) {
    this.parents = parents;
    this.savedInputs = new Array(inputs.length).fill(undefined);
    for (const p of parents) if (p instanceof GradNode) p.refs++;
  }

  /** Disposes the saved values (idempotent); the node stays in the graph, marked freed. */
  freeSaved(): void {
    this.freed = true;
    for (const t of this.savedInputs) t?.dispose();
    this.savedInputs.fill(undefined);
    this.savedOutput?.dispose();
    this.savedOutput = undefined;
  }

  /** Drops one reference; at zero frees this node and, in turn, its inputs' nodes. */
  release(): void {
    const stack: GradNode[] = [this];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (--node.refs > 0) continue;
      node.freeSaved();
      node.retainedGradOf = null;
      for (const p of node.parents) if (p instanceof GradNode) stack.push(p);
      node.parents.fill(null);
    }
  }

  /** A short description for error messages: `exp [2,3] float64`. */
  describe(): string {
    return `${this.op} [${this.output.shape.join(',')}] ${this.output.dtype}`;
  }
}

let gradEnabled = true;

/**
 * Whether operations are being recorded for autograd right now.
 *
 * @example
 * ```ts
 * noGrad(() => isGradEnabled()); // false
 * ```
 */
export function isGradEnabled(): boolean {
  return gradEnabled;
}

function withMode<T>(enabled: boolean, fn?: () => T): T | Disposable {
  const previous = gradEnabled;
  gradEnabled = enabled;
  if (!fn) {
    return {
      [Symbol.dispose]() {
        gradEnabled = previous;
      },
    };
  }
  try {
    return fn();
  } finally {
    gradEnabled = previous;
  }
}

/**
 * Turns recording off: inside, no op builds a graph (for evaluation and parameter updates). Pass a
 * callback, or call it bare in a `using` declaration to cover the rest of the block.
 *
 * @example
 * ```ts
 * const y = noGrad(() => model(x));   // callback form
 * {
 *   using _ = noGrad();                // block form
 *   w.assign(w.sub(w.grad!.mul(lr)));
 * }
 * ```
 */
export function noGrad(): Disposable;
export function noGrad<T>(fn: () => T): T;
export function noGrad<T>(fn?: () => T): T | Disposable {
  return withMode(false, fn);
}

/**
 * Turns recording back on (inside a {@link noGrad} region), as a callback or with `using`.
 *
 * @example
 * ```ts
 * noGrad(() => enableGrad(() => exp(x))); // recorded
 * ```
 */
export function enableGrad(): Disposable;
export function enableGrad<T>(fn: () => T): T;
export function enableGrad<T>(fn?: () => T): T | Disposable {
  return withMode(true, fn);
}

/** Runs `fn` with recording on or off (used by backward: on only with `createGraph`). */
export function withGradMode<T>(enabled: boolean, fn: () => T): T {
  return withMode(enabled, fn) as T;
}

/**
 * Saved handles that stand for a graph value: a VJP run with `createGraph` reads them, and the ops
 * it records must link to the original node or leaf, not to the (graph-less) handle.
 */
const links = new WeakMap<Tensor, GradTarget>();

/** Where the gradient of `t` goes, or null when `t` takes no part in differentiation. */
export function targetOf(t: Tensor): GradTarget | null {
  if (t.gradFn instanceof GradNode) return t.gradFn;
  const link = links.get(t);
  if (link) return link;
  return t.requiresGrad && isFloat(t.dtype) ? t : null;
}

function save(value: Tensor, target: GradTarget | null): Tensor {
  const handle = value.retain();
  if (target) links.set(handle, target);
  return handle;
}

/** The observer: records one primitive application when it needs a gradient. */
function record(op: OpName, inputs: readonly Tensor[], params: unknown, output: Tensor): void {
  if (!gradEnabled || !isFloat(output.dtype)) return;
  const rule = VJPS[op];
  if (!rule) return;
  let any = false;
  const parents = inputs.map((t) => {
    const target = targetOf(t);
    if (target) any = true;
    return target;
  });
  if (!any) return;
  const meta = inputs.map((t) => ({ shape: t.shape, dtype: t.dtype }));
  const out = { shape: output.shape, dtype: output.dtype };
  const node = new GradNode(op, params as OpParamMap[OpName], meta, out, parents);
  const saveInputs = rule.saveInputs ?? [];
  inputs.forEach((t, i) => {
    if (saveInputs === 'all' || saveInputs.includes(i)) node.savedInputs[i] = save(t, parents[i]);
  });
  if (rule.saveOutput) node.savedOutput = save(output, node);
  output.gradFn = node;
  output.requiresGrad = true;
}

setOpObserver(({ op, inputs, params, output }) => record(op, inputs, params, output));

/**
 * Disposing a tensor also drops its graph reference (freeing the nodes only it kept alive) and
 * disposes its `.grad`. Installed once, by wrapping the core `dispose`.
 */
const coreDispose = Tensor.prototype.dispose;
Tensor.prototype.dispose = function dispose(this: Tensor): void {
  if (!this.isDisposed) {
    const node = this.gradFn;
    this.gradFn = null;
    if (node instanceof GradNode) {
      if (node.retainedGradOf === this) node.retainedGradOf = null;
      node.release();
    }
    const grad = this.grad;
    this.grad = null;
    grad?.dispose();
  }
  coreDispose.call(this);
};

/** A clear error when a gradient would flow through a node whose saved values were freed. */
export function freedGraphError(op: string, node: GradNode): FluxionError {
  return new FluxionError(
    op,
    `the graph through '${node.describe()}' was freed by an earlier backward(); pass ` +
      '{ retainGraph: true } to the first backward() to differentiate the same graph twice',
  );
}

/**
 * A new tensor sharing `t`'s values but not its graph: no gradient flows through it.
 *
 * @example
 * ```ts
 * const target = detach(prediction); // a constant for the loss below
 * ```
 */
export function detach(t: Tensor): Tensor {
  t.assertLive('detach');
  return new Tensor(t.storage.retain(), t.shape, t.strides, t.offset, t.dtype);
}
