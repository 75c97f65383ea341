/**
 * Reductions (sum, prod, max, min) and index reductions (argmax, argmin) over any set of axes.
 *
 * Algorithm. The input is seen as O output rows of R reduced elements: kept axes and reduced axes
 * are each merged on the host (`mergeAxes`), and the shader turns a row number and an element
 * number into storage offsets through their strides, so permuted or sliced inputs need no copy.
 * Two strategies:
 *
 * - one invocation per row, a plain loop (rows of at most 256 elements, or many rows of at most
 *   4096, e.g. softmax over a small last axis): no barriers, which software adapters pay dearly
 *   for;
 * - one workgroup per row, or per chunk of a row (few long rows): 64 invocations each accumulate
 *   a strided subset, then a tree reduction in workgroup memory combines them. When a row is split
 *   into G > 1 chunks, a first pass writes O×G partial results to a scratch buffer and a second
 *   pass reduces those (index reductions carry the winning index along).
 *
 * max/min propagate NaN as the CPU backend does; argmax/argmin return the first NaN or the first
 * of tied values, by comparing indices in every combine, so the result is independent of the
 * order the tree combines in.
 */
import type { KernelArg } from '../../backend.js';
import type { DType } from '../../dtype.js';
import type { ArgReduceOp, ReduceOp, ReduceParams } from '../../registry.js';
import { sizeOf } from '../../shape.js';
import type { GpuBuffer } from './buffers.js';
import { bufferOf, type KernelContext } from './context.js';
import { checkRank, mergeAxes, putList } from './layout.js';
import {
  helpersFor,
  MAIN,
  PARAMS_DECL,
  putReciprocals,
  storageDecl,
  stridedOffsetCode,
  wgslType,
} from './wgsl.js';

const WORKGROUP = 64;
/** Elements a workgroup reduces per chunk when a long row is split. */
const CHUNK = 4096;
/** Workgroups worth launching before splitting rows. */
const TARGET_WORKGROUPS = 256;
/**
 * Rows at most this long are reduced by one invocation each, however few they are: a loop of 256
 * loads costs less than a workgroup's barriers. On lavapipe, the bias gradient of a 20-wide layer
 * (a [128, 20] input summed over its 128 rows) took 211 µs as 20 workgroups and 138 µs as 20
 * invocations (medians of 25 interleaved rounds).
 */
const SHORT_ROW = 256;

type AnyReduceOp = ReduceOp | ArgReduceOp;
type ScalarType = 'f32' | 'i32';

const isArg = (op: AnyReduceOp): op is ArgReduceOp => op === 'argmax' || op === 'argmin';

/** Identity element of each reduction, per type. */
function identity(op: AnyReduceOp, t: ScalarType): string {
  const low = t === 'f32' ? '-infF32()' : 'i32(-2147483647 - 1)';
  const high = t === 'f32' ? 'infF32()' : 'i32(2147483647)';
  switch (op) {
    case 'sum':
      return `${t}(0)`;
    case 'prod':
      return `${t}(1)`;
    case 'max':
    case 'argmax':
      return low;
    case 'min':
    case 'argmin':
      return high;
  }
}

/** WGSL of the combine step: value reductions fold `v` into `acc`; index ones also track `ai`. */
function combineFn(op: AnyReduceOp, t: ScalarType): string {
  if (isArg(op)) {
    const cmp = op === 'argmax' ? '>' : '<';
    const nanRule =
      t === 'f32'
        ? `let vn = isNan(v); let an = isNan(a);
  if (vn || an) { return vn && (!an || i < ai); }
  `
        : '';
    return `fn better(v: ${t}, i: u32, a: ${t}, ai: u32) -> bool {
  ${nanRule}return v ${cmp} a || (v == a && i < ai);
}`;
  }
  const body = {
    sum: 'a + v',
    prod: 'a * v',
    max: t === 'f32' ? 'maxNan(a, v)' : 'max(a, v)',
    min: t === 'f32' ? 'minNan(a, v)' : 'min(a, v)',
  }[op];
  return `fn combine(a: ${t}, v: ${t}) -> ${t} { return ${body}; }`;
}

interface PassOptions {
  op: AnyReduceOp;
  /** Kept and reduced layouts (merged). */
  kept: { shape: number[]; strides: number[] };
  reduced: { shape: number[]; strides: number[] };
  input: KernelArg;
  /** For index reductions' second pass: indices parallel to `input`. */
  indicesIn?: KernelArg;
  /** Where values go (value reductions, or partial values of an index reduction). */
  values?: { buffer: GpuBuffer; offset: number };
  /** Where indices go (index reductions). */
  indices?: { buffer: GpuBuffer; offset: number; type: 'i32' | 'u32' };
  groups: number;
  mode: 'thread' | 'workgroup';
}

function reduceSource(o: PassOptions, t: ScalarType): string {
  const arg = isArg(o.op);
  const redRank1 = o.reduced.shape.length <= 1;
  const decls = [storageDecl(1, 'x', t, false)];
  let binding = 2;
  if (o.indicesIn) decls.push(storageDecl(binding++, 'xi', 'u32', false));
  if (o.values) decls.push(storageDecl(binding++, 'outV', t, true));
  if (o.indices) decls.push(storageDecl(binding++, 'outI', o.indices.type, true));
  const elementOffset = redRank1
    ? 'let off = base + j * p(32u);'
    : stridedOffsetCode({ flat: 'j', rank: 'p(3u)', shapeBase: 24, reciprocalBase: 40 }, [
        { name: 'off', offsetWord: 'base', strideBase: 32 },
      ]);
  const load = arg
    ? `let v = x[off]; let i = ${o.indicesIn ? 'xi[off]' : 'j'};
        if (better(v, i, acc, accI)) { acc = v; accI = i; }`
    : 'acc = combine(acc, x[off]);';
  const store = (slot: string) =>
    [
      o.values ? `outV[p(7u) + ${slot}] = acc;` : '',
      o.indices ? `outI[p(7u) + ${slot}] = ${o.indices.type}(accI);` : '',
    ].join(' ');
  const rowBase = stridedOffsetCode({ flat: 'row', rank: 'p(2u)', shapeBase: 8 }, [
    { name: 'base', offsetWord: 4, strideBase: 16 },
  ]);
  const init = `var acc = ${identity(o.op, t)};
  var accI = 0xffffffffu;`;
  const treeStep = arg
    ? 'if (better(sv[lid + s], si[lid + s], sv[lid], si[lid])) { sv[lid] = sv[lid + s]; si[lid] = si[lid + s]; }'
    : 'sv[lid] = combine(sv[lid], sv[lid + s]);';
  const main =
    o.mode === 'thread'
      ? `@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let row = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (row >= p(0u)) { return; }
  ${rowBase}
  ${init}
  for (var j = 0u; j < p(1u); j++) {
    {
      ${elementOffset}
      ${load}
    }
  }
  ${store('row')}
}`
      : `var<workgroup> sv: array<${t}, ${WORKGROUP}>;
${arg ? `var<workgroup> si: array<u32, ${WORKGROUP}>;` : ''}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let w = workgroupIndex(wid, nwg);
  if (w >= p(0u) * p(5u)) { return; }
  let row = w / p(5u);
  let start = (w % p(5u)) * p(6u);
  let end = min(start + p(6u), p(1u));
  ${rowBase}
  ${init}
  for (var j = start + lid; j < end; j += ${WORKGROUP}u) {
    {
      ${elementOffset}
      ${load}
    }
  }
  sv[lid] = acc;
  ${arg ? 'si[lid] = accI;' : ''}
  workgroupBarrier();
  for (var s = ${WORKGROUP / 2}u; s > 0u; s = s >> 1u) {
    if (lid < s) { ${treeStep} }
    workgroupBarrier();
  }
  if (lid == 0u) {
    acc = sv[0];
    ${arg ? 'accI = si[0];' : ''}
    ${store('w')}
  }
}`;
  const body = `${combineFn(o.op, t)}\n${main}`;
  return `${PARAMS_DECL}\n${decls.join('\n')}\n${helpersFor(body)}\n${body}`;
}

/**
 * Records one pass. Parameter words: 0 rows, 1 row length, 2 kept rank, 3 reduced rank, 4 input
 * offset, 5 chunks per row, 6 chunk length, 7 output offset, 8/16 kept shape/strides, 24/32 reduced
 * shape/strides, 40 reciprocals of the reduced shape.
 */
function runPass(ctx: KernelContext, o: PassOptions): void {
  const t = wgslType(o.op, o.input.dtype) as ScalarType;
  const rows = sizeOf(o.kept.shape);
  const length = sizeOf(o.reduced.shape);
  const chunk = Math.ceil(length / o.groups);
  const words: number[] = new Array(48).fill(0);
  words[0] = rows;
  words[1] = length;
  words[2] = o.kept.shape.length;
  words[3] = o.reduced.shape.length;
  words[4] = o.input.offset;
  words[5] = o.groups;
  words[6] = chunk;
  words[7] = (o.values ?? o.indices)!.offset;
  putList(words, 8, o.kept.shape, 1);
  putList(words, 16, o.kept.strides);
  putList(words, 24, o.reduced.shape, 1);
  putList(words, 32, o.reduced.strides);
  putReciprocals(words, 40, o.reduced.shape);
  const buffers = [bufferOf(o.input)];
  if (o.indicesIn) buffers.push(bufferOf(o.indicesIn));
  if (o.values) buffers.push(o.values.buffer);
  if (o.indices) buffers.push(o.indices.buffer);
  const redRank1 = o.reduced.shape.length <= 1;
  const flags = `${o.mode}|${redRank1}|${!!o.indicesIn}|${!!o.values}|${o.indices?.type ?? '-'}`;
  ctx.dispatch({
    op: o.op,
    key: `reduce|${o.op}|${t}|${flags}`,
    source: () => reduceSource(o, t),
    inputs: o.indicesIn ? 2 : 1,
    outputs: (o.values ? 1 : 0) + (o.indices ? 1 : 0),
    buffers,
    params: words,
    workgroups: o.mode === 'thread' ? Math.ceil(rows / WORKGROUP) : rows * o.groups,
  });
}

/** Chooses the strategy and the number of chunks per row. */
function plan(rows: number, length: number): { mode: 'thread' | 'workgroup'; groups: number } {
  if (length <= SHORT_ROW || (rows >= 128 && length <= CHUNK)) return { mode: 'thread', groups: 1 };
  const groups = Math.max(1, Math.min(Math.ceil(length / CHUNK), Math.floor(TARGET_WORKGROUPS / rows)));
  return { mode: 'workgroup', groups };
}

/**
 * Reduces `x` over `axes` into the contiguous `out` (values for sum/prod/max/min, int32 indices
 * for argmax/argmin).
 */
export function runReduce(
  ctx: KernelContext,
  op: AnyReduceOp,
  x: KernelArg,
  out: KernelArg,
  { axes }: ReduceParams,
): void {
  const keptAxes = x.shape.map((_, i) => i).filter((i) => !axes.includes(i));
  const pick = (list: readonly number[], which: number[]) => which.map((i) => list[i]);
  const keptM = mergeAxes(pick(x.shape, keptAxes), [pick(x.strides, keptAxes)]);
  const redM = mergeAxes(pick(x.shape, axes), [pick(x.strides, axes)]);
  checkRank(op, keptM, x.shape);
  checkRank(op, redM, x.shape);
  const kept = { shape: keptM.shape, strides: keptM.strides[0] };
  const reduced = { shape: redM.shape, strides: redM.strides[0] };
  const rows = sizeOf(kept.shape);
  const length = sizeOf(reduced.shape);
  const { mode, groups } = plan(rows, length);
  const arg = isArg(op);
  const outBuffer = { buffer: bufferOf(out), offset: out.offset };
  if (groups === 1) {
    runPass(ctx, {
      op,
      kept,
      reduced,
      input: x,
      values: arg ? undefined : outBuffer,
      indices: arg ? { ...outBuffer, type: 'i32' } : undefined,
      groups,
      mode,
    });
    return;
  }
  // Two passes: O×G partial results, then a reduction of each row of G partials.
  const partials = ctx.scratch(rows * groups);
  const partialIndices = arg ? ctx.scratch(rows * groups) : undefined;
  runPass(ctx, {
    op,
    kept,
    reduced,
    input: x,
    values: { buffer: partials, offset: 0 },
    indices: partialIndices ? { buffer: partialIndices, offset: 0, type: 'u32' } : undefined,
    groups,
    mode,
  });
  const view = (buffer: GpuBuffer, dtype: DType): KernelArg => ({
    buffer,
    dtype,
    shape: [rows, groups],
    strides: [groups, 1],
    offset: 0,
  });
  const second = plan(rows, groups);
  runPass(ctx, {
    op,
    kept: { shape: [rows], strides: [groups] },
    reduced: { shape: [groups], strides: [1] },
    input: view(partials, x.dtype),
    indicesIn: partialIndices ? view(partialIndices, 'int32') : undefined,
    values: arg ? undefined : outBuffer,
    indices: arg ? { ...outBuffer, type: 'i32' } : undefined,
    groups: 1,
    mode: second.mode,
  });
  ctx.release(partials);
  if (partialIndices) ctx.release(partialIndices);
}
