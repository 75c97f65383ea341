/**
 * Turns a case of the shared table (`packages/tensor/test/cases.ts`) into a function and inputs to
 * differentiate, keeping the storage layout the case drew: `gradcheck` reads its inputs back and
 * re-creates them contiguous, so the layout is rebuilt inside the checked function with
 * differentiable view ops (a transposed copy viewed back, a padded buffer sliced with step 2, a
 * size-1 axis expanded). Inputs that are not differentiated (indices, masks, `gradInputs`
 * exclusions) are bound as constants.
 */
import {
  type BackendName,
  clone,
  type DType,
  expand,
  isFloat,
  pad,
  type SliceSpec,
  scope,
  slice,
  type Tensor,
  transpose,
} from '@fluxion/tensor';
import type { HostTensor } from '../../tensor/test/cases.js';
import { materialize } from '../../tensor/test/cases.js';

/**
 * Ops whose derivative jumps where values tie (max/min reductions, maximum/minimum) or is infinite
 * on a constant row (std). The case generators draw such ties often, even in the `-distinct`
 * cases (fast-check biases doubles toward 0 and the bounds), so {@link spreadTies} replaces these
 * cases' float values by well-separated ones in the same order.
 */
export const TIE_SENSITIVE: ReadonlySet<string> = new Set(['max', 'min', 'maximum', 'minimum', 'std']);

/**
 * The same inputs with every float value replaced, order kept (ties broken by position), by
 * values at least 6/n apart in [−3, 3]. Expanded layouts (values repeated on purpose) become
 * contiguous.
 *
 * @example
 * ```ts
 * spreadTies([{ shape: [3], data: [0, 0, 1], dtype: 'float32' }])[0].data; // [-3, -1, 1]
 * ```
 */
export function spreadTies(hosts: readonly HostTensor[]): HostTensor[] {
  const slots = hosts.flatMap((h, i) =>
    h.dtype === 'float32' || h.dtype === 'float64' ? h.data.map((v, j) => ({ v, i, j })) : [],
  );
  slots.sort((p, q) => p.v - q.v || p.i - q.i || p.j - q.j);
  const spread = hosts.map((h) => ({
    ...h,
    data: [...h.data],
    view: h.view === 'expanded' ? undefined : h.view,
  }));
  slots.forEach(({ i, j }, rank) => {
    spread[i].data[j] = Math.fround(-3 + (6 * rank) / Math.max(1, slots.length - 1));
  });
  return spread;
}

/** What a case needs to be differentiated. */
export interface DiffCase {
  run(xs: Tensor[]): Tensor;
  gradInputs?: number[];
}

/** A case ready for gradcheck: `f(...inputs)` runs the case with the drawn layouts. */
export interface DiffSetup {
  f: (...inputs: Tensor[]) => Tensor;
  inputs: Tensor[];
  /** Total elements of the differentiated inputs. */
  size: number;
  dispose(): void;
}

/** Rebuilds `x`'s layout around a contiguous `y` of the stored values, differentiably. */
function layoutOf(x: Tensor, host: HostTensor): { stored: Tensor; relayout: (y: Tensor) => Tensor } {
  const expandedAxes = x.shape.flatMap((d, a) => (d > 1 && x.strides[a] === 0 ? [a] : []));
  if (expandedAxes.length > 0) {
    const specs = x.shape.map((_, a): SliceSpec => (expandedAxes.includes(a) ? [0, 1] : null));
    return { stored: scope(() => clone(slice(x, ...specs))), relayout: (y) => expand(y, x.shape) };
  }
  if (host.view === 'transposed' && x.rank >= 2) {
    return { stored: clone(x), relayout: (y) => transpose(clone(transpose(y))) };
  }
  if (host.view === 'strided' && x.rank >= 1) {
    return {
      stored: clone(x),
      relayout: (y) =>
        slice(
          pad(
            y,
            y.shape.map(() => [1, 1, 1]),
          ),
          ...y.shape.map((d): SliceSpec => [1, 1 + 2 * d, 2]),
        ),
    };
  }
  return { stored: clone(x), relayout: (y) => y };
}

/**
 * Materializes `hosts` on `backend` (floats as `floatDtype`) and returns the case as a function of
 * its differentiated inputs.
 *
 * @example
 * ```ts
 * const { f, inputs, dispose } = setupCase(c, hosts);
 * await gradcheck(f, inputs);
 * dispose();
 * ```
 */
export function setupCase(
  c: DiffCase,
  hosts: HostTensor[],
  backend: BackendName = 'cpu',
  floatDtype: DType = 'float64',
): DiffSetup {
  const xs = hosts.map((h) => materialize(h, { backend, floatDtype }));
  const differentiated = xs.map((x, i) => isFloat(x.dtype) && (c.gradInputs?.includes(i) ?? true));
  const layouts = xs.map((x, i) => (differentiated[i] ? layoutOf(x, hosts[i]) : null));
  const inputs = layouts.flatMap((l) => (l ? [l.stored] : []));
  const f = (...ys: Tensor[]) => {
    let k = 0;
    return c.run(xs.map((x, i) => layouts[i]?.relayout(ys[k++]) ?? x));
  };
  return {
    f,
    inputs,
    size: inputs.reduce((n, t) => n + t.size, 0),
    dispose() {
      for (const t of [...xs, ...inputs]) t.dispose();
    },
  };
}
