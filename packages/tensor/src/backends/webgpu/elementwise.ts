/**
 * Elementwise kernels from one template: unary and binary math, comparisons, logic, `where`,
 * `cast`, `copy`, and a constant fill (used by `pad`). The template takes a WGSL expression over
 * the loaded inputs `x0`, `x1`, `x2` and reads every input through its own strides and offset
 * (broadcasts are stride-0 views, transposes and slices are strides), so views need no copy.
 *
 * Algorithm: adjacent axes that all operands walk contiguously are merged on the host first. When
 * at most one axis is left, element i of operand k sits at `offset_k + i·stride_k` (the common
 * case: contiguous tensors, scalars broadcast with stride 0); otherwise the shader turns i into
 * offsets with one division per axis, done by multiplying with f32 reciprocals (`fastDiv`), since
 * CPU adapters have no vector integer division. Pipelines are bucketed by that merged rank (1 to
 * 8) and never see shapes or strides: those travel in the parameter block. Each invocation handles
 * `VALUES_PER_THREAD` elements, `WORKGROUP` apart, so neighbouring invocations touch neighbouring
 * memory.
 *
 * The commonest cases have their own shader that moves `vec4`s, one load per operand for four
 * elements: a contiguous output whose count and offsets are divisible by 4, with inputs that are
 * contiguous, broadcast scalars, or (over a merged `[rows, columns]` layout with columns divisible
 * by 4) a broadcast row such as a bias, or a broadcast column (one value per row, as in
 * `x / sum(x, -1, true)`). On lavapipe that doubles the bandwidth of `add` (each lane's load is a
 * gather there, and a vec4 gather costs little more than a scalar one). Its invocations move
 * several vec4s each (see `gridStrideMain` in `wgsl.ts`).
 *
 * Special values follow the CPU backend: see the helpers in `wgsl.ts`.
 */
import type { KernelArg } from '../../backend.js';
import type { BinaryOp, KernelOp, OpParamMap, UnaryOp } from '../../registry.js';
import { bufferOf, type Destination, type KernelContext } from './context.js';
import { checkRank, type MergedLayout, mergeAxes, putList, scalarBits } from './layout.js';
import {
  f32ToBits,
  gridStrideMain,
  gridStrideWorkgroups,
  helpersFor,
  MAIN,
  PARAM_WORDS,
  PARAMS_DECL,
  putReciprocals,
  storageDecl,
  stridedOffsetCode,
  wgslType,
} from './wgsl.js';

const WORKGROUP = 256;
const VALUES_PER_THREAD = 4;

type ScalarType = 'f32' | 'i32' | 'u32';

/** The expression of each unary primitive, by the WGSL type of its input. */
const UNARY_WGSL: { [K in UnaryOp]: (t: ScalarType) => string } = {
  neg: () => '-x0',
  abs: () => 'abs(x0)',
  sign: (t) => (t === 'f32' ? 'signF(x0)' : 'sign(x0)'),
  exp: () => 'expF(x0)',
  expm1: () => 'expm1F(x0)',
  log: () => 'logF(x0)',
  log1p: () => 'log1pF(x0)',
  sqrt: () => 'sqrtF(x0)',
  rsqrt: () => '1.0 / sqrtF(x0)',
  reciprocal: () => '1.0 / x0',
  sin: () => 'sinF(x0)',
  cos: () => 'cosF(x0)',
  tanh: () => 'tanhF(x0)',
  sigmoid: () => 'sigmoidF(x0)',
  relu: () => 'select(x0, 0.0, x0 <= 0.0 && !isNan(x0))',
  softplus: () => 'softplusF(x0)',
  erf: () => 'erfF(x0)',
  floor: () => 'floor(x0)',
  ceil: () => 'ceil(x0)',
  round: () => 'round(x0)',
  logicalNot: () => 'select(0u, 1u, x0 == 0u)',
};

const bool = (cond: string) => `select(0u, 1u, ${cond})`;

/** The expression of each binary primitive, by the WGSL type of its inputs. */
const BINARY_WGSL: { [K in BinaryOp]: (t: ScalarType) => string } = {
  add: () => 'x0 + x1',
  sub: () => 'x0 - x1',
  mul: () => 'x0 * x1',
  div: () => 'x0 / x1',
  pow: () => 'powF(x0, x1)',
  maximum: (t) => (t === 'f32' ? 'maxNan(x0, x1)' : 'max(x0, x1)'),
  minimum: (t) => (t === 'f32' ? 'minNan(x0, x1)' : 'min(x0, x1)'),
  equal: () => bool('x0 == x1'),
  // Written as !(==) so that NaN ≠ NaN whatever comparison the compiler picks.
  notEqual: () => bool('!(x0 == x1)'),
  less: () => bool('x0 < x1'),
  lessEqual: () => bool('x0 <= x1'),
  greater: () => bool('x0 > x1'),
  greaterEqual: () => bool('x0 >= x1'),
  logicalAnd: () => bool('x0 != 0u && x1 != 0u'),
  logicalOr: () => bool('x0 != 0u || x1 != 0u'),
  logicalXor: () => bool('(x0 != 0u) != (x1 != 0u)'),
};

/** The conversion expression from one stored type to another (`cast`). */
function castExpr(from: ScalarType, to: ScalarType): string {
  if (from === to) return 'x0';
  if (to === 'u32') return from === 'f32' ? bool('x0 != 0.0 || isNan(x0)') : bool('x0 != 0');
  if (from === 'u32') return to === 'f32' ? 'select(0.0, 1.0, x0 != 0u)' : 'select(0, 1, x0 != 0u)';
  return to === 'i32' ? 'f32ToI32(x0)' : 'f32(x0)';
}

/** One elementwise launch: an expression over inputs read through their strides. */
export interface ElementwiseLaunch {
  /** Op name for errors and pipeline labels. */
  op: string;
  /** WGSL expression over `x0` … `x3` (one per input) producing the output type. */
  expr: string;
  /** Inputs, each viewed with the iteration shape. */
  inputs: readonly KernelArg[];
  /** Where element i of the iteration space goes. */
  out: Destination;
  /** The iteration shape. */
  shape: readonly number[];
  /** A constant the expression reads as `constant` (bit pattern of the output type). */
  constant?: number;
}

/** Inputs one launch reads at most: its parameter slot has words for four (see `runElementwise`). */
export const MAX_ELEMENTWISE_INPUTS = 4;

/** An input variable of an expression (`x0` … `x3`), its index captured. */
export const INPUT_VARIABLE = /\bx(\d)\b/g;

/**
 * How each input of a vec4 launch is read: `v` a contiguous run of vec4s, `s` one broadcast scalar,
 * `r` one row of vec4s repeated for every row, `c` one scalar per row (rows of the merged
 * `[rows, columns]` layout). The output is always a contiguous run of vec4s.
 */
type Vec4Mode = 'v' | 's' | 'r' | 'c';

/**
 * Parameter words of the vec4 shader's row split: vec4s per row and its f32 reciprocal (where the
 * strided shader keeps the shape's reciprocals, which the vec4 shader never reads).
 */
const ROW_VEC4S_WORD = 56;

function vec4Source(types: ScalarType[], outType: ScalarType, expr: string, modes: Vec4Mode[]): string {
  const n = types.length;
  const decls = types.map((t, k) =>
    storageDecl(k + 1, `in${k}`, modes[k] === 'v' || modes[k] === 'r' ? `vec4<${t}>` : t, false),
  );
  decls.push(storageDecl(n + 1, 'out', `vec4<${outType}>`, true));
  const args = types.map((t, k) => `x${k}: ${t}`).join(', ');
  const offset = (k: number) => `p(${20 + 9 * k}u)`;
  // Broadcast rows and columns need the vec4's row and column in the merged [rows, columns].
  const rowSplit = modes.some((m) => m === 'r' || m === 'c')
    ? [
        `let row = fastDiv(i, p(${ROW_VEC4S_WORD}u), bitcast<f32>(p(${ROW_VEC4S_WORD + 1}u)));`,
        `let col = i - row * p(${ROW_VEC4S_WORD}u);`,
      ]
    : [];
  const loads = [
    ...rowSplit,
    ...modes.map((m, k) => {
      if (m === 'v') return `let v${k} = in${k}[${offset(k)} / 4u + i];`;
      if (m === 'r') return `let v${k} = in${k}[${offset(k)} / 4u + col];`;
      const at = m === 's' ? offset(k) : `${offset(k)} + row * p(${21 + 9 * k}u)`;
      return `let v${k} = vec4<${types[k]}>(in${k}[${at}]);`;
    }),
  ];
  const lane = (c: number) => `compute(${types.map((_, k) => `v${k}[${c}]`).join(', ')})`;
  // Plain arithmetic (add, sub, mul, div, neg, copy, fill) runs on whole vectors; anything that
  // calls a scalar helper runs once per lane.
  const vectorExpr = /^(?:x\d|constant|[-+*/() ]|\s)+$/.test(expr)
    ? expr.replace(INPUT_VARIABLE, 'v$1').replace(/constant/g, `vec4<${outType}>(bitcast<${outType}>(p(3u)))`)
    : null;
  const result = vectorExpr ?? `vec4<${outType}>(${[0, 1, 2, 3].map(lane).join(', ')})`;
  return `${PARAMS_DECL}
${decls.join('\n')}
${helpersFor(`${expr} ${rowSplit.join(' ')}`)}
fn compute(${args}) -> ${outType} {
  let constant = bitcast<${outType}>(p(3u));
  return ${expr};
}
${gridStrideMain('p(0u) / 4u', (i) => [...loads, `out[p(2u) / 4u + ${i}] = ${result};`].join('\n    '))}`;
}

/**
 * The per-input modes of the vec4 shader, or null when the launch does not qualify: a contiguous
 * output (merged to `[count]`, or `[rows, columns]` with columns divisible by 4) at an offset
 * divisible by 4, and inputs that each read in one of the {@link Vec4Mode} patterns.
 */
function vec4Modes(
  count: number,
  outOffset: number,
  inputs: readonly KernelArg[],
  merged: MergedLayout,
): Vec4Mode[] | null {
  const rank = merged.shape.length;
  if (count % 4 !== 0 || outOffset % 4 !== 0 || rank > 2) return null;
  const columns = merged.shape[rank - 1];
  const [outRow, outColumn] = rank === 2 ? merged.strides[0] : [count, merged.strides[0][0]];
  if (outColumn !== 1 || outRow !== columns || columns % 4 !== 0) return null;
  const modes: Vec4Mode[] = [];
  for (let k = 0; k < inputs.length; k++) {
    const [row, column] = rank === 2 ? merged.strides[k + 1] : [0, merged.strides[k + 1][0]];
    const aligned = inputs[k].offset % 4 === 0;
    if (column === 1 && (rank === 1 || row === columns) && aligned) modes.push('v');
    else if (column === 0 && row === 0) modes.push('s');
    else if (column === 1 && row === 0 && aligned) modes.push('r');
    else if (column === 0) modes.push('c');
    else return null;
  }
  return modes;
}

function elementwiseSource(types: ScalarType[], outType: ScalarType, expr: string, rank: number): string {
  const n = types.length;
  const decls = types.map((t, k) => storageDecl(k + 1, `in${k}`, t, false));
  decls.push(storageDecl(n + 1, 'out', outType, true));
  const args = types.map((t, k) => `x${k}: ${t}`).join(', ');
  const operands = [
    { name: 'oo', offsetWord: 2, strideBase: 12 },
    ...types.map((_, k) => ({ name: `o${k}`, offsetWord: 20 + 9 * k, strideBase: 21 + 9 * k })),
  ];
  const offsets =
    rank <= 1
      ? operands.map((o) => `let ${o.name} = p(${o.offsetWord}u) + i * p(${o.strideBase}u);`).join('\n      ')
      : stridedOffsetCode({ flat: 'i', rank, shapeBase: 4, reciprocalBase: 56 }, operands);
  const call = `compute(${types.map((_, k) => `in${k}[o${k}]`).join(', ')})`;
  return `${PARAMS_DECL}
${decls.join('\n')}
${helpersFor(`${expr} ${offsets}`)}
fn compute(${args}) -> ${outType} {
  let constant = bitcast<${outType}>(p(3u));
  return ${expr};
}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let base = workgroupIndex(wid, nwg) * ${WORKGROUP * VALUES_PER_THREAD}u + lid;
  for (var v = 0u; v < ${VALUES_PER_THREAD}u; v++) {
    let i = base + v * ${WORKGROUP}u;
    if (i >= p(0u)) { return; }
    {
      ${offsets}
      out[oo] = ${call};
    }
  }
}`;
}

/**
 * Records one elementwise launch now (ops go through `ctx.elementwise`, which may defer it).
 *
 * Parameter words: 0 count, 1 rank, 2 output offset, 3 constant, 4… shape, 12… output strides,
 * then for input k (at most {@link MAX_ELEMENTWISE_INPUTS}): 20+9k offset, 21+9k… strides; 56… reciprocals of the shape (the
 * vec4 shader's row split instead).
 */
export function runElementwise(ctx: KernelContext, launch: ElementwiseLaunch): void {
  const { op, expr, inputs, out, shape } = launch;
  const merged = mergeAxes(shape, [out.strides, ...inputs.map((x) => x.strides)]);
  checkRank(op, merged, shape);
  const count = merged.shape.reduce((a, b) => a * b, 1);
  if (count === 0) return;
  const rank = merged.shape.length;
  const types = inputs.map((x) => wgslType(op, x.dtype));
  const outType = wgslType(op, out.dtype);
  const words: number[] = new Array(PARAM_WORDS).fill(0);
  words[0] = count;
  words[1] = merged.shape.length;
  words[2] = out.offset;
  words[3] = launch.constant ?? 0;
  putList(words, 4, merged.shape, 1);
  putList(words, 12, merged.strides[0]);
  inputs.forEach((x, k) => {
    words[20 + 9 * k] = x.offset;
    putList(words, 21 + 9 * k, merged.strides[k + 1]);
  });
  if (rank > 1) putReciprocals(words, 56, merged.shape);
  const modes = vec4Modes(count, out.offset, inputs, merged);
  if (modes && rank === 2) {
    words[ROW_VEC4S_WORD] = merged.shape[1] / 4;
    words[ROW_VEC4S_WORD + 1] = f32ToBits(4 / merged.shape[1]);
  }
  const signature = `${expr}|${types.join(',')}>${outType}`;
  ctx.dispatch({
    op,
    key: modes ? `ew4|${signature}|${modes.join('')}` : `ew|${signature}|${Math.max(rank, 1)}`,
    source: modes
      ? () => vec4Source(types, outType, expr, modes)
      : () => elementwiseSource(types, outType, expr, Math.max(rank, 1)),
    inputs: inputs.length,
    outputs: 1,
    buffers: [...inputs.map(bufferOf), out.buffer],
    params: words,
    workgroups: modes ? gridStrideWorkgroups(count / 4) : Math.ceil(count / (WORKGROUP * VALUES_PER_THREAD)),
  });
}

/** The contiguous output destination of a kernel. */
export const destinationOf = (out: KernelArg): Destination => ({
  buffer: bufferOf(out),
  dtype: out.dtype,
  offset: out.offset,
  strides: out.strides,
});

type Kernel<K extends KernelOp> = (
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  params: OpParamMap[K],
) => void;

/** The kernel of unary primitive `op`. */
export function unaryKernel(op: UnaryOp): Kernel<UnaryOp> {
  return (ctx, [x], out) =>
    ctx.elementwise({
      op,
      expr: UNARY_WGSL[op](wgslType(op, x.dtype)),
      inputs: [x],
      out: destinationOf(out),
      shape: out.shape,
    });
}

/** The kernel of binary primitive `op`. */
export function binaryKernel(op: BinaryOp): Kernel<BinaryOp> {
  return (ctx, [a, b], out) =>
    ctx.elementwise({
      op,
      expr: BINARY_WGSL[op](wgslType(op, a.dtype)),
      inputs: [a, b],
      out: destinationOf(out),
      shape: out.shape,
    });
}

/** `where(cond, a, b)`. */
export const whereKernel: Kernel<'where'> = (ctx, inputs, out) =>
  ctx.elementwise({
    op: 'where',
    expr: 'select(x2, x1, x0 != 0u)',
    inputs,
    out: destinationOf(out),
    shape: out.shape,
  });

/** The kernel of an elementwise op with a `slope` parameter, which travels as the constant. */
function slopeKernel<K extends 'leakyRelu' | 'leakyReluGrad'>(op: K, expr: string): Kernel<K> {
  return (ctx, inputs, out, { slope }) =>
    ctx.elementwise({
      op,
      expr,
      inputs,
      out: destinationOf(out),
      shape: out.shape,
      constant: scalarBits(slope, 'f32'),
    });
}

/** `leakyRelu(x)`: x where x > 0, else slope · x. */
export const leakyReluKernel = slopeKernel('leakyRelu', 'select(x0 * constant, x0, x0 > 0.0)');

/** `leakyReluGrad(x, g)`: g where x > 0, else slope · g (exactly 0 for slope 0). */
export const leakyReluGradKernel = slopeKernel(
  'leakyReluGrad',
  'select(select(x1 * constant, 0.0, constant == 0.0), x1, x0 > 0.0)',
);

/** `cast(x, dtype)`. */
export const castKernel: Kernel<'cast'> = (ctx, [x], out, { dtype }) =>
  ctx.elementwise({
    op: 'cast',
    expr: castExpr(wgslType('cast', x.dtype), wgslType('cast', dtype)),
    inputs: [x],
    out: destinationOf(out),
    shape: out.shape,
  });

/**
 * A transposing copy as 4×4 blocks: each invocation reads four vec4 columns of the source and
 * writes them as four vec4 rows, instead of one gathered element per invocation. On lavapipe:
 * a 256×784 transpose in 314 µs instead of 1057, 1024×1024 in 1.27 ms instead of 5.34.
 *
 * Parameter words: 0 blocks, 1 blocks per row (C/4), 2 its f32 reciprocal, 3 source offset/4,
 * 4 source column stride/4, 5 destination offset/4.
 */
const TRANSPOSE_SOURCE = `${PARAMS_DECL}
${storageDecl(1, 'src', 'vec4<u32>', false)}
${storageDecl(2, 'dst', 'vec4<u32>', true)}
${helpersFor('fastDiv(')}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let b = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (b >= p(0u)) { return; }
  let br = fastDiv(b, p(1u), bitcast<f32>(p(2u)));
  let bc = b - br * p(1u);
  let at = p(3u) + br + 4u * bc * p(4u);
  let c0 = src[at];
  let c1 = src[at + p(4u)];
  let c2 = src[at + 2u * p(4u)];
  let c3 = src[at + 3u * p(4u)];
  let to = p(5u) + 4u * br * p(1u) + bc;
  dst[to] = vec4<u32>(c0.x, c1.x, c2.x, c3.x);
  dst[to + p(1u)] = vec4<u32>(c0.y, c1.y, c2.y, c3.y);
  dst[to + 2u * p(1u)] = vec4<u32>(c0.z, c1.z, c2.z, c3.z);
  dst[to + 3u * p(1u)] = vec4<u32>(c0.w, c1.w, c2.w, c3.w);
}`;

/**
 * Copies a strided view into a strided destination (copy, concat, pad). A transposed matrix
 * into a contiguous one (`x.T.contiguous()`, the B copy of tall products) moves 4×4 blocks when
 * both sides are 16-byte aligned; everything else takes the elementwise template.
 */
export function copyInto(ctx: KernelContext, op: string, x: KernelArg, out: Destination): void {
  const merged = mergeAxes(x.shape, [out.strides, x.strides]);
  const [rows, columns] = merged.shape;
  const [[outRow, outColumn] = [], [inRow, inColumn] = []] = merged.strides;
  const transposed =
    merged.shape.length === 2 &&
    outColumn === 1 &&
    outRow === columns &&
    inRow === 1 &&
    [rows, columns, inColumn, x.offset, out.offset].every((v) => v % 4 === 0);
  if (!transposed) {
    runElementwise(ctx, { op, expr: 'x0', inputs: [x], out, shape: x.shape });
    return;
  }
  const blocks = (rows / 4) * (columns / 4);
  ctx.dispatch({
    op,
    key: 'transpose4x4',
    source: () => TRANSPOSE_SOURCE,
    inputs: 1,
    outputs: 1,
    buffers: [bufferOf(x), out.buffer],
    params: [blocks, columns / 4, f32ToBits(4 / columns), x.offset / 4, inColumn / 4, out.offset / 4],
    workgroups: Math.ceil(blocks / WORKGROUP),
  });
}

/** Fills `size` elements of a contiguous buffer with `value`. */
export function fill(ctx: KernelContext, op: string, out: Destination, size: number, value: number): void {
  runElementwise(ctx, {
    op,
    expr: 'constant',
    inputs: [],
    out,
    shape: [size],
    constant: scalarBits(value, wgslType(op, out.dtype)),
  });
}

/** `copy(x)`: a contiguous copy. */
export const copyKernel: Kernel<'copy'> = (ctx, [x], out) => copyInto(ctx, 'copy', x, destinationOf(out));
