/**
 * Elementwise fusion by deferral. An elementwise op (unary, binary, `where`, `cast`, leaky ReLU and
 * its gradient) does not launch its kernel when it is called: its launch is kept beside its output
 * buffer, not yet recorded. A later elementwise op that reads that whole buffer in the same shape
 * takes the deferred expression into its own, reading the producer's inputs instead of its output,
 * so `softplus(l) − x·l` is one kernel instead of three. A deferred launch is recorded only when its
 * buffer is needed as such: read by any other kernel (a product, a reduction, a copy), read back to
 * the host, or at a sync or flush. When the buffer is freed first, as the intermediates of a
 * training step are when its scope ends, the launch is never recorded at all.
 *
 * On a GPU every launch has a fixed cost (about 25–60 µs on lavapipe, a few µs on a discrete GPU)
 * and every intermediate a pass over memory, so a chain of small elementwise ops is dominated by
 * both; this is the fusion XLA and `torch.compile` do ahead of time, done here as the ops arrive.
 *
 * Correctness rests on three rules:
 *
 * - A deferred launch holds the buffers it reads. Freeing a held buffer does not return it to the
 *   pool until every launch holding it has been recorded or dropped, so no later kernel can write
 *   over an input that a deferred launch will still read. (Kernels only ever write to fresh
 *   outputs, so a buffer's contents change only if it is reused.)
 * - A deferred launch keeps its inputs as they were when its op ran: a tensor passed as an input
 *   may later point at other storage (`assign()`), its old buffer still holding the values.
 * - A launch that reads a deferred buffer it could not take in (another shape, a broadcast or a
 *   strided view of it, a non-elementwise kernel) records that buffer's launch first
 *   ({@link Fusion.materialize}, called by the backend for every dispatch's inputs).
 *
 * The fused expression is the float32 arithmetic of the unfused ops, in the same order, only
 * without the round trips through memory. It is one shader, though, and its compiler may optimise
 * across what were separate kernels (lavapipe folds `(a + b) − b` to `a`; a GPU compiler may
 * contract a multiply and an add into one fused multiply-add), so results can differ from the
 * unfused ones in the last bits, as XLA's fused kernels do from eager ones.
 */

import type { KernelArg } from '../../backend.js';
import { FluxionError } from '../../errors.js';
import { shapesEqual } from '../../shape.js';
import type { GpuBuffer } from './buffers.js';
import { type ElementwiseLaunch, INPUT_VARIABLE, MAX_ELEMENTWISE_INPUTS } from './elementwise.js';

/** Primitive ops folded into one kernel at most (bounds recomputation and shader size). */
const MAX_FUSED_OPS = 16;
/** Longest expression text of one kernel. */
const MAX_EXPRESSION = 2000;
/** Deferred launches that may wait on one another in a chain before the chain is recorded. */
const MAX_DEPTH = 32;

/** A launch kept beside its output buffer, not yet recorded. */
interface Deferred {
  launch: ElementwiseLaunch;
  /** Primitive ops its expression computes. */
  ops: number;
  /** 1 + the deepest deferred buffer among its inputs. */
  depth: number;
  /** The profiler's label of the op that made it. */
  label: string;
}

/** What the fusion needs of the backend. */
export interface FusionHost {
  /** Records a launch now, labelled for the profiler. */
  record(launch: ElementwiseLaunch, label: string): void;
  /** Returns a buffer to the pool. */
  release(buffer: GpuBuffer): void;
}

/** Whether two operands read the same elements of the same buffer. */
const sameOperand = (a: KernelArg, b: KernelArg): boolean =>
  a.buffer === b.buffer && a.offset === b.offset && shapesEqual(a.strides, b.strides);

/**
 * The deferred launches of one backend and the buffers they hold.
 *
 * @example
 * ```ts
 * const fusion = new Fusion({ record: (launch) => runElementwise(ctx, launch), release: (b) => pool.release(b, 0) });
 * fusion.defer(launch, 'exp [128,20]');
 * fusion.materializeAll(); // records whatever is still deferred
 * ```
 */
export class Fusion {
  private readonly deferred = new Map<GpuBuffer, Deferred>();
  private readonly holds = new Map<GpuBuffer, number>();
  private readonly freedWhileHeld = new Set<GpuBuffer>();

  constructor(private readonly host: FusionHost) {}

  /** Launches waiting to be recorded (diagnostics and tests). */
  get size(): number {
    return this.deferred.size;
  }

  /**
   * Defers a launch that writes the whole of its fresh output buffer, first taking in the
   * deferred launches of its inputs where it can.
   */
  defer(launch: ElementwiseLaunch, label: string): void {
    // Inputs may be tensors, whose buffer `assign()` can swap before the launch is recorded: keep
    // what they are now.
    const args: KernelArg[] = launch.inputs.map(({ buffer, shape, strides, offset, dtype }) => ({
      buffer,
      shape,
      strides,
      offset,
      dtype,
    }));
    if (!args.some((a) => this.deferred.has(a.buffer as GpuBuffer))) {
      this.keep({ ...launch, inputs: args }, 1, 1, label); // nothing to take in (the common case)
      return;
    }
    const inputs: KernelArg[] = [];
    const indexOf = (arg: KernelArg): number => {
      const at = inputs.findIndex((x) => sameOperand(x, arg));
      return at >= 0 ? at : inputs.push(arg) - 1;
    };
    let ops = 1;
    let constant = launch.constant;
    const parts = args.map((arg, k) => {
      const producer = this.deferred.get(arg.buffer as GpuBuffer);
      if (producer && this.canTakeIn(launch, arg, producer, inputs, args.slice(k + 1), ops, constant)) {
        ops += producer.ops;
        constant ??= producer.launch.constant;
        const renamed = producer.launch.expr.replace(
          INPUT_VARIABLE,
          (_, d) => `x${indexOf(producer.launch.inputs[+d])}`,
        );
        return `(${renamed})`;
      }
      return `x${indexOf(arg)}`;
    });
    const expr = launch.expr.replace(INPUT_VARIABLE, (_, d) => parts[+d]);
    let depth = 1;
    for (const x of inputs) {
      const below = this.deferred.get(x.buffer as GpuBuffer);
      if (below) depth = Math.max(depth, below.depth + 1);
    }
    if (depth > MAX_DEPTH) {
      for (const x of inputs) this.materialize(x.buffer as GpuBuffer);
      depth = 1;
    }
    this.keep({ ...launch, expr, inputs, constant }, ops, depth, label);
  }

  /** Keeps a launch beside its output buffer, holding the buffers it reads. */
  private keep(launch: ElementwiseLaunch, ops: number, depth: number, label: string): void {
    for (const x of launch.inputs) this.hold(x.buffer as GpuBuffer);
    this.deferred.set(launch.out.buffer, { launch, ops, depth, label });
  }

  /**
   * Whether `launch` can read `producer`'s expression instead of its output `arg`: the same
   * elements in the same order, room for the producer's inputs, and no clash of constants.
   */
  private canTakeIn(
    launch: ElementwiseLaunch,
    arg: KernelArg,
    producer: Deferred,
    taken: readonly KernelArg[],
    rest: readonly KernelArg[],
    ops: number,
    constant: number | undefined,
  ): boolean {
    const p = producer.launch;
    if (arg.offset !== 0 || !shapesEqual(arg.shape, p.shape) || !shapesEqual(arg.strides, p.out.strides))
      return false;
    if (ops + producer.ops > MAX_FUSED_OPS || launch.expr.length + p.expr.length > MAX_EXPRESSION)
      return false;
    // `constant` is typed as the kernel's output: a producer's constant must mean the same there.
    if (p.constant !== undefined) {
      if (p.out.dtype !== launch.out.dtype) return false;
      if (constant !== undefined && constant !== p.constant) return false;
    }
    const distinct = [...taken];
    for (const x of [...p.inputs, ...rest]) if (!distinct.some((y) => sameOperand(x, y))) distinct.push(x);
    return distinct.length <= MAX_ELEMENTWISE_INPUTS;
  }

  /** Records `buffer`'s deferred launch, if it has one (its own deferred inputs first). */
  materialize(buffer: GpuBuffer): void {
    const node = this.deferred.get(buffer);
    if (!node) return;
    this.deferred.delete(buffer);
    this.host.record(node.launch, node.label);
    for (const x of node.launch.inputs) this.unhold(x.buffer as GpuBuffer);
  }

  /** Records every deferred launch (before a submit). */
  materializeAll(): void {
    for (const buffer of [...this.deferred.keys()]) this.materialize(buffer);
  }

  /**
   * Frees a buffer: to the pool now, or once no deferred launch holds it. A deferred launch of
   * its own that nothing holds is dropped unrecorded.
   */
  free(buffer: GpuBuffer): void {
    if (this.freedWhileHeld.has(buffer)) throw new FluxionError('free', 'a webgpu buffer was freed twice');
    if (this.holds.has(buffer)) this.freedWhileHeld.add(buffer);
    else this.release(buffer);
  }

  /** Forgets every deferred launch and hold (the backend is being destroyed). */
  clear(): void {
    this.deferred.clear();
    this.holds.clear();
    this.freedWhileHeld.clear();
  }

  private release(buffer: GpuBuffer): void {
    const node = this.deferred.get(buffer);
    if (node) {
      this.deferred.delete(buffer);
      for (const x of node.launch.inputs) this.unhold(x.buffer as GpuBuffer);
    }
    this.host.release(buffer);
  }

  private hold(buffer: GpuBuffer): void {
    this.holds.set(buffer, (this.holds.get(buffer) ?? 0) + 1);
  }

  private unhold(buffer: GpuBuffer): void {
    const n = (this.holds.get(buffer) ?? 0) - 1;
    if (n > 0) {
      this.holds.set(buffer, n);
      return;
    }
    this.holds.delete(buffer);
    if (this.freedWhileHeld.delete(buffer)) this.release(buffer);
  }
}
