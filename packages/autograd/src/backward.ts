/**
 * The backward pass: walk the recorded graph from a tensor to its leaves in topological order,
 * running each node's VJP once with the sum of the gradients that reached it.
 *
 * Two modes share one engine:
 * - {@link backward} accumulates into the `.grad` of every leaf that requires a gradient (and of
 *   non-leaves that called `retainGrad()`), as PyTorch's `tensor.backward()`;
 * - {@link gradients} returns the gradients with respect to given tensors and touches no `.grad`,
 *   as `torch.autograd.grad`; the functional API (`grad`, `vjp`) is built on it.
 *
 * Memory: every gradient is disposed as soon as no pending sum needs it; whatever the pass creates
 * runs in a scope, and the gradients handed out are kept out of the caller's scopes (`.grad`) or
 * returned. Unless `retainGraph`, each node's saved values are freed once its VJP has run.
 */
import {
  add,
  type BackendName,
  clone,
  type DType,
  FluxionError,
  fmtShape,
  isFloat,
  keep,
  type OpName,
  onesLike,
  scope,
  shapesEqual,
  type Tensor,
  zeros,
} from '@fluxion/tensor';
import { freedGraphError, GradNode, type GradTarget, targetOf, withGradMode } from './graph.js';
import { type SlicePiece, sumSlices, VJPS, type VjpContext, type VjpRule } from './vjps.js';

/**
 * Options of {@link backward}.
 *
 * @example
 * ```ts
 * loss.backward(undefined, { retainGraph: true }); // the graph can be walked again
 * ```
 */
export interface BackwardOptions {
  /** Keep the saved values so the graph can be differentiated again (default: `createGraph`). */
  retainGraph?: boolean;
  /** Record the backward pass itself, so the gradients can be differentiated (default false). */
  createGraph?: boolean;
  /**
   * `backward` only: accumulate into the `.grad` of these leaves alone, and run only the part of
   * the graph that leads to them (PyTorch's `inputs=`). A GAN's generator step uses it to skip
   * the discriminator's weight gradients.
   */
  inputs?: readonly Tensor[];
}

/**
 * Options of {@link gradients}.
 *
 * @example
 * ```ts
 * gradients(y, [x], { seed: onesLike(y), createGraph: true });
 * ```
 */
export interface GradientsOptions extends BackwardOptions {
  /** The gradient of the output (default: 1, for a one-element output). */
  seed?: Tensor;
}

/** Nodes reachable from `root`, each before all of its inputs' nodes (consumers first). */
function topologicalOrder(root: GradNode): GradNode[] {
  const postOrder: GradNode[] = [];
  const seen = new Set<GradNode>();
  const stack: [GradNode, boolean][] = [[root, false]];
  while (stack.length > 0) {
    const [node, parentsDone] = stack.pop()!;
    if (parentsDone) {
      postOrder.push(node);
      continue;
    }
    if (seen.has(node)) continue;
    seen.add(node);
    stack.push([node, true]);
    for (const p of node.parents) if (p instanceof GradNode && !seen.has(p)) stack.push([p, false]);
  }
  return postOrder.reverse();
}

/**
 * Whether the graph of `root` reaches a leaf that requires a gradient other than `own` (then the
 * gradients of `root` must be recorded for whoever differentiates those leaves later).
 */
export function reachesOtherLeaves(root: Tensor, own: ReadonlySet<Tensor>): boolean {
  const node = targetOf(root);
  if (!(node instanceof GradNode)) return false;
  return topologicalOrder(node).some((n) =>
    n.parents.some((p) => p !== null && !(p instanceof GradNode) && !own.has(p)),
  );
}

/** Whether a tensor can be handed out as is: contiguous and the only view of its whole storage. */
const isCompact = (t: Tensor) => t.isContiguous && t.offset === 0 && t.storage.size === t.size;

/**
 * Pending gradients by target, with reference counts so that a tensor held under several targets
 * (a VJP may return the same tensor twice) is disposed only when the last one lets it go.
 *
 * The gradients of slices are kept apart, as pieces, until their target is taken: then
 * {@link sumSlices} places them all at once (one concat for the parts of a split or the steps of a
 * time loop), where padding each to the full shape and adding would cost O(parts × size).
 */
class GradStore {
  private readonly pending = new Map<GradTarget, Tensor>();
  private readonly slices = new Map<GradTarget, { shape: readonly number[]; pieces: SlicePiece[] }>();
  private readonly holds = new Map<Tensor, number>();
  private readonly retired: Tensor[] = [];
  /** Tensors never to dispose: the caller's seed and gradients handed out. */
  private readonly owned = new Set<Tensor>();

  constructor(seed: Tensor | undefined) {
    if (seed) this.owned.add(seed);
  }

  private hold(t: Tensor, delta: number): void {
    this.holds.set(t, (this.holds.get(t) ?? 0) + delta);
  }

  private retire(t: Tensor): void {
    this.hold(t, -1);
    this.retired.push(t);
  }

  /** Adds a contribution to `target`'s pending gradient. */
  add(target: GradTarget, g: Tensor): void {
    const previous = this.pending.get(target);
    const next = previous ? add(previous, g) : g;
    this.pending.set(target, next);
    this.hold(next, 1);
    if (previous) this.retire(previous);
  }

  /**
   * Adds the contribution of a slice of `target` (a tensor of `shape`): `g`, the gradient of the
   * slice taken with `params`, placed when `target` is taken.
   */
  addSlice(target: GradTarget, shape: readonly number[], piece: SlicePiece): void {
    let entry = this.slices.get(target);
    if (!entry) {
      entry = { shape, pieces: [] };
      this.slices.set(target, entry);
    }
    entry.pieces.push(piece);
    this.hold(piece.g, 1);
  }

  /** Removes and returns `target`'s gradient (the caller settles it when done). */
  take(target: GradTarget): Tensor | undefined {
    const dense = this.pending.get(target);
    if (dense) {
      this.pending.delete(target);
      this.hold(dense, -1);
    }
    const entry = this.slices.get(target);
    if (!entry) return dense;
    this.slices.delete(target);
    const placed = sumSlices(entry.pieces, entry.shape);
    for (const { g } of entry.pieces) this.retire(g);
    if (!dense) return placed;
    this.retired.push(dense, placed);
    return add(dense, placed);
  }

  /** Targets still holding a gradient. */
  targets(): GradTarget[] {
    return [...new Set([...this.pending.keys(), ...this.slices.keys()])];
  }

  /** A tensor the caller may keep: `g` itself, or a compact copy when `g` is shared or a view. */
  handOut(g: Tensor): Tensor {
    const own = this.owned.has(g) || !isCompact(g) ? clone(g) : g;
    this.owned.add(own);
    return own;
  }

  /** Disposes the given and retired tensors that nothing holds any more. */
  settle(tensors: readonly (Tensor | null | undefined)[]): void {
    for (const t of [...tensors, ...this.retired.splice(0)]) {
      if (t && !this.owned.has(t) && !(this.holds.get(t)! > 0)) t.dispose();
    }
  }
}

/**
 * A tensor to differentiate with respect to, resolved while it was alive: the functional API
 * differentiates through handles that are disposed before the backward pass runs.
 */
export interface GradInput {
  readonly target: GradTarget | null;
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly backend: BackendName;
}

/** Resolves `t` to a {@link GradInput}. */
export function gradInput(t: Tensor): GradInput {
  return { target: targetOf(t), shape: t.shape, dtype: t.dtype, backend: t.backend.name };
}

/** What a pass computes: into `.grad` (accumulate) or for given tensors (capture). */
type Mode =
  | { kind: 'accumulate'; inputs?: readonly GradInput[] }
  | { kind: 'capture'; inputs: readonly GradInput[] };

function checkRoot(op: string, root: Tensor, seed: Tensor | undefined): void {
  root.assertLive(op);
  if (!isFloat(root.dtype)) throw new FluxionError(op, `cannot differentiate a ${root.dtype} tensor`);
  if (!seed) {
    if (root.size !== 1) {
      throw new FluxionError(
        op,
        `a seed gradient is needed for an output of shape ${fmtShape(root.shape)} (only one-element outputs default to 1)`,
      );
    }
    return;
  }
  seed.assertLive(op);
  if (!shapesEqual(seed.shape, root.shape) || seed.dtype !== root.dtype || seed.backend !== root.backend) {
    throw new FluxionError(
      op,
      `seed ${fmtShape(seed.shape)} ${seed.dtype} on ${seed.backend.name} does not match the output ` +
        `${fmtShape(root.shape)} ${root.dtype} on ${root.backend.name}`,
    );
  }
}

/**
 * Which nodes run their VJP: every node in accumulate mode; in capture mode only those from which
 * a target can be reached.
 */
function nodesToRun(order: readonly GradNode[], wanted: ReadonlySet<GradTarget> | null): Set<GradNode> {
  if (!wanted) return new Set(order);
  const leadsToTarget = new Set<GradTarget>(wanted);
  const run = new Set<GradNode>();
  for (let i = order.length - 1; i >= 0; i--) {
    const node = order[i];
    if (node.parents.some((p) => p !== null && leadsToTarget.has(p))) {
      run.add(node);
      leadsToTarget.add(node);
    }
  }
  return run;
}

/** The engine: returns the captured gradients in capture mode, nothing in accumulate mode. */
function runPass(root: Tensor, seed: Tensor | undefined, options: BackwardOptions, mode: Mode): Tensor[] {
  const createGraph = options.createGraph ?? false;
  const retainGraph = options.retainGraph ?? createGraph;
  const rootTarget = targetOf(root);
  const wanted = mode.inputs
    ? new Set(mode.inputs.flatMap((input) => (input.target ? [input.target] : [])))
    : null;
  const order = rootTarget instanceof GradNode ? topologicalOrder(rootTarget) : [];
  const toRun = nodesToRun(order, wanted);
  for (const node of toRun) if (node.freed) throw freedGraphError('backward', node);
  const flowsTo = (p: GradTarget | null): p is GradTarget =>
    p !== null && (!wanted || wanted.has(p) || (p instanceof GradNode && toRun.has(p)));

  return withGradMode(createGraph, () =>
    scope(() => {
      const store = new GradStore(seed);
      const captured = new Map<GradTarget, Tensor>();
      if (rootTarget) store.add(rootTarget, seed ?? onesLike(root));
      for (const node of order) {
        const g = store.take(node);
        if (!g) continue;
        if (wanted?.has(node)) captured.set(node, store.handOut(g));
        if (mode.kind === 'accumulate' && node.retainedGradOf) accumulateGrad(node.retainedGradOf, g, store);
        if (!toRun.has(node)) {
          store.settle([g]);
          continue;
        }
        const needs = node.parents.map(flowsTo);
        let inputGrads: (Tensor | null)[] = [];
        if (node.op === 'slice') {
          // placed later, with the other slices of the same tensor (GradStore.take)
          const params = node.params as SlicePiece['params'];
          if (needs[0]) store.addSlice(node.parents[0]!, node.inputs[0].shape, { g, params });
        } else {
          inputGrads = runVjp(node, g, needs);
          inputGrads.forEach((ig, i) => {
            if (ig && needs[i]) store.add(node.parents[i]!, ig);
          });
        }
        if (!retainGraph) node.freeSaved();
        store.settle([g, ...inputGrads]);
      }
      for (const target of store.targets()) {
        const g = store.take(target)!;
        if (mode.kind === 'capture') captured.set(target, store.handOut(g));
        else if (!(target instanceof GradNode) && target.requiresGrad) accumulateGrad(target, g, store);
        store.settle([g]);
      }
      if (mode.kind === 'accumulate') return [];
      const returned = new Set<Tensor>();
      return mode.inputs.map(({ target, shape, dtype, backend }) => {
        const g = target && captured.get(target);
        if (!g) return zeros(shape, { dtype, backend });
        const result = returned.has(g) ? clone(g) : g;
        returned.add(result);
        return result;
      });
    }),
  );
}

/** Runs one node's VJP (its temporaries freed) and checks the shapes it returns. */
function runVjp(node: GradNode, g: Tensor, needs: readonly boolean[]): (Tensor | null)[] {
  const rule = VJPS[node.op] as VjpRule<OpName> | null;
  if (!rule) throw new FluxionError('backward', `'${node.op}' has no gradient`);
  const ctx: VjpContext<OpName> = {
    params: node.params,
    inputs: node.savedInputs as Tensor[],
    output: node.savedOutput as Tensor,
    meta: node.inputs,
    needs,
  };
  const grads = scope(() => [...rule.vjp(g, ctx)]);
  grads.forEach((ig, i) => {
    const want = node.inputs[i];
    if (ig && (!shapesEqual(ig.shape, want.shape) || ig.dtype !== want.dtype)) {
      throw new FluxionError(
        'backward',
        `the VJP of '${node.op}' returned ${fmtShape(ig.shape)} ${ig.dtype} for input ${i} of ` +
          `${fmtShape(want.shape)} ${want.dtype}`,
      );
    }
  });
  return grads;
}

/** Adds `g` into `t.grad` (kept out of every scope), replacing the previous tensor. */
function accumulateGrad(t: Tensor, g: Tensor, store: GradStore): void {
  if (t.isDisposed) return;
  const previous = t.grad;
  t.grad = keep(previous ? add(previous, g) : store.handOut(g));
  previous?.dispose();
}

/**
 * Backpropagates from `tensor`: adds d tensor / d leaf into the `.grad` of every leaf that
 * requires a gradient (and of non-leaves that called `retainGrad()`). `seed` is the gradient of
 * `tensor` itself (default 1, for one-element tensors). The graph's saved values are freed
 * afterwards unless `retainGraph`; a second backward through a freed graph throws. With
 * `createGraph` the pass is recorded, so the gradients can be differentiated again. Also
 * available as `tensor.backward(seed?, options?)`.
 *
 * @example
 * ```ts
 * const w = tensor([1, 2, 3]);
 * w.requiresGrad = true;
 * backward(sum(mul(w, w)));
 * await w.grad!.array(); // [2, 4, 6]
 * ```
 */
export function backward(tensor: Tensor, seed?: Tensor, options: BackwardOptions = {}): void {
  checkRoot('backward', tensor, seed);
  if (!targetOf(tensor)) {
    throw new FluxionError(
      'backward',
      `tensor ${fmtShape(tensor.shape)} ${tensor.dtype} does not require grad and has no graph ` +
        '(set requiresGrad on a leaf before computing it, outside noGrad)',
    );
  }
  const inputs = options.inputs?.map((t) => {
    t.assertLive('backward');
    if (!t.requiresGrad || targetOf(t) !== t) {
      throw new FluxionError(
        'backward',
        `inputs must be leaves that require grad, got a ${fmtShape(t.shape)} ${t.dtype} tensor that ${t.requiresGrad ? 'is computed' : 'does not require grad'}`,
      );
    }
    return gradInput(t);
  });
  runPass(tensor, seed, options, { kind: 'accumulate', inputs });
}

/**
 * The gradients of `output` with respect to each of `inputs` (leaves or intermediate tensors),
 * without touching any `.grad`: `torch.autograd.grad`. Inputs the output does not depend on get
 * zeros. With `createGraph` the results can be differentiated again (gradient penalties,
 * Hessian-vector products).
 *
 * @example
 * ```ts
 * const x = tensor([3]);
 * x.requiresGrad = true;
 * const [dx] = gradients(mul(mul(x, x), x), [x], { createGraph: true }); // 3x² = 27
 * const [ddx] = gradients(dx, [x]);                                     // 6x = 18
 * ```
 */
export function gradients(
  output: Tensor,
  inputs: readonly Tensor[],
  options: GradientsOptions = {},
): Tensor[] {
  for (const t of inputs) t.assertLive('gradients');
  return gradientsOf('gradients', output, inputs.map(gradInput), options);
}

/**
 * {@link gradients} for the functional API, with inputs resolved by {@link gradInput} (the handles
 * may have been disposed since).
 */
export function gradientsOf(
  op: string,
  output: Tensor,
  inputs: readonly GradInput[],
  options: GradientsOptions,
): Tensor[] {
  checkRoot(op, output, options.seed);
  return runPass(output, options.seed, options, { kind: 'capture', inputs });
}
