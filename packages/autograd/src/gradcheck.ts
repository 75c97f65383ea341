/**
 * Checking gradients against central finite differences, as PyTorch's `gradcheck` does: the
 * inputs are copied to the CPU backend in float64, the analytic Jacobian comes from backward
 * passes and the numeric one from `(f(x + ε) − f(x − ε)) / 2ε`. Defaults are PyTorch's: ε = 1e-6,
 * atol = 1e-5, rtol = 1e-3; an element passes when |analytic − numeric| ≤ atol + rtol·|numeric|.
 *
 * `mode: 'full'` compares every Jacobian entry (one backward pass per output element, two forward
 * passes per input element: for small inputs). `mode: 'random'` compares `vᵀ J u` for a few
 * random directions u (inputs) and v (output): one backward and two forwards per direction, for
 * large inputs. `gradgradcheck` applies the same check to the function's VJP, so it checks second
 * derivatives (and that the backward pass is itself differentiable).
 */
import { concat, FluxionError, fmtShape, isFloat, reshape, scope, Tensor, tensor } from '@fluxion/tensor';
import { gradients } from './backward.js';
import { vjp } from './functional.js';
import { enableGrad, noGrad } from './graph.js';

/**
 * Options of {@link gradcheck} and {@link gradgradcheck}.
 *
 * @example
 * ```ts
 * await gradcheck(f, [bigInput], { mode: 'random', directions: 8, atol: 1e-6 });
 * ```
 */
export interface GradcheckOptions {
  /** Finite-difference step (default 1e-6). */
  eps?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Relative tolerance, times |numeric| (default 1e-3). */
  rtol?: number;
  /** `'full'`: every Jacobian entry (default); `'random'`: `vᵀ J u` for random directions. */
  mode?: 'full' | 'random';
  /** Number of random directions in `'random'` mode (default 4). */
  directions?: number;
  /** Seed of the random directions (and of gradgradcheck's output gradient); default 0. */
  seed?: number;
  /** Throw a {@link GradcheckError} when a check fails (default true); else return the report. */
  throwOnFailure?: boolean;
}

/**
 * The worst-matching element of a check.
 *
 * @example
 * ```ts
 * const { input, index, analytic, numeric } = (await gradcheck(f, xs)).worst!;
 * ```
 */
export interface GradcheckMismatch {
  /** Position of the argument (full mode), or -1 (random mode: all arguments at once). */
  input: number;
  /** Multi-index of the element within that argument (full mode). */
  index: number[];
  /** Multi-index of the output element (full mode). */
  output: number[];
  /** The random direction (random mode). */
  direction?: number;
  analytic: number;
  numeric: number;
  /** `|analytic − numeric|`. */
  error: number;
  /** `atol + rtol · |numeric|`. */
  allowed: number;
}

/**
 * What a check found.
 *
 * @example
 * ```ts
 * const report = await gradcheck(f, xs, { throwOnFailure: false });
 * if (!report.ok) console.log(report.worst);
 * ```
 */
export interface GradcheckReport {
  ok: boolean;
  mode: 'full' | 'random';
  /** Number of values compared. */
  checked: number;
  /** The comparison with the largest error relative to its tolerance (null if nothing compared). */
  worst: GradcheckMismatch | null;
}

/**
 * Thrown by a failed check; `report` holds the details.
 *
 * @example
 * ```ts
 * try { await gradcheck(f, [x]); } catch (e) { if (e instanceof GradcheckError) console.log(e.report.worst); }
 * ```
 */
export class GradcheckError extends FluxionError {
  constructor(
    op: string,
    readonly report: GradcheckReport,
  ) {
    super(op, describeFailure(report));
  }
}

function describeFailure({ worst, mode }: GradcheckReport): string {
  if (!worst) return 'no values compared';
  const at =
    mode === 'full'
      ? `input ${worst.input} index [${worst.index}] (output [${worst.output}])`
      : `random direction ${worst.direction}`;
  return (
    `analytic and numeric gradients differ at ${at}: analytic ${worst.analytic}, numeric ${worst.numeric} ` +
    `(|Δ| = ${worst.error.toExponential(3)} > ${worst.allowed.toExponential(3)} = atol + rtol·|numeric|)`
  );
}

type Fn = (...inputs: Tensor[]) => Tensor;

/** The inputs as host values: float ones in float64, the others in their own dtype. */
interface HostInputs {
  values: (Float64Array | Int32Array | Uint8Array)[];
  shapes: (readonly number[])[];
  dtypes: Tensor['dtype'][];
  /** Positions of the float inputs (the differentiated ones). */
  floats: number[];
}

async function readInputs(op: string, inputs: readonly Tensor[]): Promise<HostInputs> {
  const values = await Promise.all(inputs.map((x) => x.data()));
  const floats = inputs.flatMap((x, i) => (isFloat(x.dtype) ? [i] : []));
  if (floats.length === 0) throw new FluxionError(op, 'needs at least one float input to differentiate');
  return {
    values: values.map((v, i) =>
      isFloat(inputs[i].dtype) ? Float64Array.from(v) : (v as Int32Array | Uint8Array),
    ),
    shapes: inputs.map((x) => x.shape),
    dtypes: inputs.map((x) => (isFloat(x.dtype) ? 'float64' : x.dtype)),
    floats,
  };
}

/** CPU tensors of the host values (float inputs in float64). */
function materialize(host: HostInputs, values = host.values): Tensor[] {
  return values.map((v, i) => tensor(v, host.shapes[i], { dtype: host.dtypes[i], backend: 'cpu' }));
}

function checkOutput(op: string, out: unknown): asserts out is Tensor {
  if (!(out instanceof Tensor) || out.dtype !== 'float64') {
    const got = out instanceof Tensor ? `${fmtShape(out.shape)} ${out.dtype}` : typeof out;
    throw new FluxionError(op, `the function must return a float64 tensor for float64 inputs, got ${got}`);
  }
}

/** f at the given host values, read back. */
async function evaluate(
  op: string,
  f: Fn,
  host: HostInputs,
  values: HostInputs['values'],
): Promise<Float64Array> {
  const out = enableGrad(() => scope(() => f(...materialize(host, values))));
  try {
    checkOutput(op, out);
    return Float64Array.from(await out.data());
  } finally {
    out.dispose();
  }
}

/** Row-major multi-index of flat position `i` in `shape`. */
function unravel(i: number, shape: readonly number[]): number[] {
  const index = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    index[d] = i % shape[d];
    i = Math.floor(i / shape[d]);
  }
  return index;
}

/** A seeded uniform generator (mulberry32) and standard normals from it (Box–Muller). */
function normals(seed: number): (n: number) => Float64Array {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (n) => {
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++)
      out[i] = Math.sqrt(-2 * Math.log(1 - uniform())) * Math.cos(2 * Math.PI * uniform());
    return out;
  };
}

/** Tracks the comparison with the largest error relative to its tolerance. */
class Comparer {
  checked = 0;
  ok = true;
  worst: GradcheckMismatch | null = null;
  private worstScore = -1;
  constructor(
    private readonly atol: number,
    private readonly rtol: number,
  ) {}

  compare(
    analytic: number,
    numeric: number,
    where: Omit<GradcheckMismatch, 'analytic' | 'numeric' | 'error' | 'allowed'>,
  ) {
    this.checked++;
    const error = Math.abs(analytic - numeric);
    const allowed = this.atol + this.rtol * Math.abs(numeric);
    const same = Object.is(analytic, numeric);
    const pass = same || error <= allowed;
    const score = same
      ? 0
      : pass
        ? error / allowed
        : Number.isNaN(error)
          ? Number.POSITIVE_INFINITY
          : error / allowed;
    if (!pass) this.ok = false;
    if (score > this.worstScore || this.worst === null) {
      this.worstScore = score;
      this.worst = { ...where, analytic, numeric, error, allowed };
    }
  }
}

/**
 * Gradients of `out = f(...xs)` for each seed, read back: one row per seed, one array per float
 * input.
 */
async function backwardRows(f: Fn, host: HostInputs, seeds: (shape: readonly number[]) => Float64Array[]) {
  const xs = materialize(host);
  const floatXs = host.floats.map((i) => xs[i]);
  for (const x of floatXs) x.requiresGrad = true;
  const out = enableGrad(() => scope(() => f(...xs)));
  try {
    checkOutput('gradcheck', out);
    const rows: Float64Array[][] = [];
    for (const seedValues of seeds(out.shape)) {
      const grads = scope(() => {
        const seed = tensor(seedValues, out.shape, { dtype: 'float64', backend: 'cpu' });
        return gradients(out, floatXs, { seed, retainGraph: true });
      });
      rows.push(await Promise.all(grads.map(async (g) => Float64Array.from(await g.data()))));
      for (const g of grads) g.dispose();
    }
    return { rows, outShape: out.shape };
  } finally {
    out.dispose();
    for (const x of xs) x.dispose();
  }
}

async function fullCheck(f: Fn, host: HostInputs, eps: number, compare: Comparer): Promise<void> {
  const { rows, outShape } = await backwardRows(f, host, (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    return Array.from({ length: n }, (_, j) => {
      const oneHot = new Float64Array(n);
      oneHot[j] = 1;
      return oneHot;
    });
  });
  for (const [k, i] of host.floats.entries()) {
    const base = host.values[i] as Float64Array;
    for (let e = 0; e < base.length; e++) {
      const shifted = (delta: number) => {
        const values = [...host.values];
        const v = Float64Array.from(base);
        v[e] += delta;
        values[i] = v;
        return evaluate('gradcheck', f, host, values);
      };
      const plus = await shifted(eps);
      const minus = await shifted(-eps);
      for (let j = 0; j < plus.length; j++) {
        compare.compare(rows[j][k][e], (plus[j] - minus[j]) / (2 * eps), {
          input: i,
          index: unravel(e, host.shapes[i]),
          output: unravel(j, outShape),
        });
      }
    }
  }
}

async function randomCheck(
  f: Fn,
  host: HostInputs,
  eps: number,
  directions: number,
  seed: number,
  compare: Comparer,
): Promise<void> {
  const draw = normals(seed);
  const vs: Float64Array[] = [];
  const { rows } = await backwardRows(f, host, (shape) => {
    const n = shape.reduce((a, b) => a * b, 1);
    for (let d = 0; d < directions; d++) vs.push(draw(n));
    return vs;
  });
  for (let d = 0; d < directions; d++) {
    const us = host.floats.map((i) => draw(host.values[i].length));
    let analytic = 0;
    host.floats.forEach((_, k) => {
      rows[d][k].forEach((g, e) => {
        analytic += g * us[k][e];
      });
    });
    const shifted = (delta: number) => {
      const values = [...host.values];
      host.floats.forEach((i, k) => {
        values[i] = (host.values[i] as Float64Array).map((x, e) => x + delta * us[k][e]);
      });
      return evaluate('gradcheck', f, host, values);
    };
    const plus = await shifted(eps);
    const minus = await shifted(-eps);
    let numeric = 0;
    vs[d].forEach((v, j) => {
      numeric += (v * (plus[j] - minus[j])) / (2 * eps);
    });
    compare.compare(analytic, numeric, { input: -1, index: [], output: [], direction: d });
  }
}

/**
 * Compares the gradients of `f` with central finite differences, in float64 on the CPU backend
 * (inputs are copied there; integer and bool inputs are passed through undifferentiated). `f`
 * must build everything from its arguments, so that it runs in float64 on the CPU. Returns the
 * report; throws a {@link GradcheckError} describing the worst element (input, index, analytic,
 * numeric) when a value is off, unless `throwOnFailure: false`.
 *
 * @example
 * ```ts
 * // Check a composite function of your own:
 * const smoothL1 = (x: Tensor, y: Tensor) => {
 *   const d = abs(sub(x, y));
 *   return sum(where(less(d, 1), mul(square(d), 0.5), sub(d, 0.5)));
 * };
 * const report = await gradcheck(smoothL1, [randn([4, 3]), randn([4, 3])]);
 * report.ok; // true (it throws otherwise)
 * ```
 */
export async function gradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): Promise<GradcheckReport> {
  const { eps = 1e-6, atol = 1e-5, rtol = 1e-3, mode = 'full', directions = 4, seed = 0 } = options;
  const host = await readInputs('gradcheck', inputs);
  const compare = new Comparer(atol, rtol);
  if (mode === 'full') await fullCheck(f, host, eps, compare);
  else await randomCheck(f, host, eps, directions, seed, compare);
  const report: GradcheckReport = { ok: compare.ok, mode, checked: compare.checked, worst: compare.worst };
  if (!report.ok && options.throwOnFailure !== false) throw new GradcheckError('gradcheck', report);
  return report;
}

/**
 * Checks second derivatives: runs {@link gradcheck} on `(xs, v) ↦ vᵀ ∂f/∂xs` (the VJP of `f`
 * for a random output gradient `v`, also differentiated), so it verifies that the backward pass
 * is itself correctly differentiable (`createGraph`). Same options and report as gradcheck.
 *
 * @example
 * ```ts
 * await gradgradcheck((x) => sum(mul(tanh(x), x)), [randn([3])]);
 * ```
 */
export async function gradgradcheck(
  f: Fn,
  inputs: readonly Tensor[],
  options: GradcheckOptions = {},
): Promise<GradcheckReport> {
  const host = await readInputs('gradgradcheck', inputs);
  const outShape = noGrad(() =>
    scope(() => {
      const out = f(...materialize(host));
      checkOutput('gradgradcheck', out);
      return [...out.shape];
    }),
  );
  const cotangent = tensor(normals((options.seed ?? 0) + 1)(outShape.reduce((a, b) => a * b, 1)), outShape, {
    dtype: 'float64',
    backend: 'cpu',
  });
  const backwardOfF = (...args: Tensor[]): Tensor => {
    const xs = args.slice(0, -1);
    const v = args[args.length - 1];
    const ofFloats = (...floatXs: Tensor[]) => {
      const all = [...xs];
      host.floats.forEach((i, k) => {
        all[i] = floatXs[k];
      });
      return f(...all);
    };
    const [, pullback] = vjp(ofFloats, ...host.floats.map((i) => xs[i]));
    return concat(
      pullback(v).map((g) => reshape(g, [-1])),
      0,
    );
  };
  try {
    return await gradcheck(backwardOfF, [...inputs, cotangent], options);
  } catch (e) {
    if (e instanceof GradcheckError) throw new GradcheckError('gradgradcheck', e.report);
    throw e;
  } finally {
    cotangent.dispose();
  }
}
