/**
 * The functional, JAX-style API: `grad`, `valueAndGrad` and `vjp` transform a function of tensors.
 * They never touch `.grad` and never mark the caller's tensors: each differentiated argument is
 * replaced by a stand-in (a fresh leaf, or an identity view when the argument is itself part of a
 * graph being recorded, so an outer transformation sees through it).
 *
 * Nesting works: when the arguments (or tensors the function closes over, such as parameters)
 * are part of a recorded graph, the backward pass is recorded too (`createGraph`), so
 * `grad(grad(f))` and gradient penalties differentiate the gradients.
 */
import { FluxionError, fmtShape, isFloat, runView, scope, Tensor } from '@fluxion/tensor';
import { type GradInput, gradInput, gradientsOf, reachesOtherLeaves } from './backward.js';
import { detach, enableGrad, isGradEnabled, targetOf } from './graph.js';

/** A stand-in for a differentiated argument. */
function standIn(x: Tensor, connected: boolean): Tensor {
  if (connected && targetOf(x)) return runView('reshape', x, { shape: [...x.shape] });
  const leaf = detach(x);
  leaf.requiresGrad = true;
  return leaf;
}

function primal(op: string, args: readonly unknown[], i: number): Tensor {
  const x = args[i];
  if (!(x instanceof Tensor)) {
    throw new FluxionError(op, `argument ${i} must be a Tensor to be differentiated, got ${typeof x}`);
  }
  x.assertLive(op);
  if (!isFloat(x.dtype)) {
    throw new FluxionError(
      op,
      `argument ${i} ${fmtShape(x.shape)} is ${x.dtype}; only float tensors have gradients`,
    );
  }
  return x;
}

/** One traced call of `f`: its output, what to differentiate against, and whether to record backward. */
interface Trace {
  value: Tensor;
  inputs: GradInput[];
  createGraph: boolean;
}

/** Calls `f` with stand-ins for the arguments at `argnums` (must run inside a scope, grad enabled). */
function trace<A extends unknown[]>(
  op: string,
  f: (...args: A) => Tensor,
  args: A,
  argnums: readonly number[],
  outerRecording: boolean,
): Trace {
  const primals = argnums.map((i) => primal(op, args, i));
  const standIns = primals.map((x) => standIn(x, outerRecording));
  const callArgs = [...args] as A;
  argnums.forEach((i, k) => {
    callArgs[i] = standIns[k];
  });
  const value = f(...callArgs);
  if (!(value instanceof Tensor) || !isFloat(value.dtype)) {
    throw new FluxionError(op, 'the function must return a float Tensor');
  }
  const ownLeaves = new Set(standIns.filter((s) => s.gradFn === null));
  const createGraph =
    outerRecording && (primals.some((x) => targetOf(x) !== null) || reachesOtherLeaves(value, ownLeaves));
  return { value, inputs: standIns.map(gradInput), createGraph };
}

function argnumList(op: string, argnums: number | readonly number[]): number[] {
  const list = typeof argnums === 'number' ? [argnums] : [...argnums];
  for (const i of list) {
    if (!Number.isInteger(i) || i < 0)
      throw new FluxionError(op, `argnums must be non-negative integers, got ${i}`);
  }
  return list;
}

/**
 * Transforms `f` (returning a one-element float tensor) into a function returning both its value
 * and its gradient with respect to the argument(s) `argnums` (default 0; an array gives an array
 * of gradients).
 *
 * @example
 * ```ts
 * const loss = (w: Tensor, x: Tensor) => mean(square(matmul(x, w)));
 * const [value, dw] = valueAndGrad(loss)(w, x);
 * const [, [dw2, dx]] = valueAndGrad(loss, [0, 1])(w, x);
 * ```
 */
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums?: number,
): (...args: A) => [Tensor, Tensor];
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums: readonly number[],
): (...args: A) => [Tensor, Tensor[]];
export function valueAndGrad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums: number | readonly number[] = 0,
): (...args: A) => [Tensor, Tensor | Tensor[]] {
  const list = argnumList('grad', argnums);
  return (...args: A) => {
    const outerRecording = isGradEnabled();
    return enableGrad(() =>
      scope((): [Tensor, Tensor | Tensor[]] => {
        const { value, inputs, createGraph } = trace('grad', f, args, list, outerRecording);
        if (value.size !== 1) {
          throw new FluxionError(
            'grad',
            `the function must return one element, got shape ${fmtShape(value.shape)}`,
          );
        }
        const grads = gradientsOf('grad', value, inputs, { createGraph });
        const result = createGraph ? value : detach(value);
        return [result, typeof argnums === 'number' ? grads[0] : grads];
      }),
    );
  };
}

/**
 * Transforms `f` (returning a one-element float tensor) into its gradient with respect to the
 * argument(s) `argnums` (default 0). Nests: `grad(grad(f))` is the second derivative.
 *
 * @example
 * ```ts
 * const cube = (x: Tensor) => sum(mul(mul(x, x), x));
 * grad(cube)(tensor([2]));        // 3x² = [12]
 * grad(grad(cube))(tensor([2]));  // 6x  = [12]
 * ```
 */
export function grad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums?: number,
): (...args: A) => Tensor;
export function grad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums: readonly number[],
): (...args: A) => Tensor[];
export function grad<A extends unknown[]>(
  f: (...args: A) => Tensor,
  argnums: number | readonly number[] = 0,
): (...args: A) => Tensor | Tensor[] {
  const withValue = valueAndGrad(f, argnums as readonly number[]) as (
    ...args: A
  ) => [Tensor, Tensor | Tensor[]];
  return (...args: A) => {
    const [value, grads] = withValue(...args);
    value.dispose();
    return grads;
  };
}

/**
 * Evaluates `f` at `primals` and returns its output with a function mapping a cotangent (a
 * gradient of the output, same shape) to the gradients of every primal: `cotangentᵀ · ∂f/∂primal`.
 * The pullback can be called several times while `out` is alive; disposing `out` frees the graph.
 *
 * @example
 * ```ts
 * const [out, pullback] = vjp((a, b) => matmul(a, b), a, b);
 * const [da, db] = pullback(onesLike(out));
 * ```
 */
export function vjp<P extends Tensor[]>(
  f: (...primals: P) => Tensor,
  ...primals: P
): [Tensor, (cotangent: Tensor) => Tensor[]] {
  const outerRecording = isGradEnabled();
  let inputs: Trace['inputs'] = [];
  const [out, createGraph] = enableGrad(() =>
    scope((): [Tensor, boolean] => {
      const t = trace(
        'vjp',
        f,
        primals,
        primals.map((_, i) => i),
        outerRecording,
      );
      inputs = t.inputs;
      return [t.value, t.createGraph];
    }),
  );
  const pullback = (cotangent: Tensor): Tensor[] =>
    gradientsOf('vjp', out, inputs, {
      seed: cotangent,
      createGraph: createGraph || (isGradEnabled() && targetOf(cotangent) !== null),
      retainGraph: true,
    });
  return [out, pullback];
}
