/**
 * Indexing kernels: `take` (gather along an axis), `scatterAdd` (its adjoint), `concat` and `pad`.
 *
 * - take: one invocation per output element reads its index, then the selected input element.
 * - scatterAdd (in `scatter.ts`): tiny cases loop over every index per output element; the rest
 *   sort the indices by slot (a stable radix sort, no atomics) and sum each slot's source blocks
 *   in index order: O(indices × row + output) work, and the same bits run after run.
 * - concat: contiguous inputs whose windows are runs of the output (joining along the first
 *   axis that is not 1) are copied by one gather launch for as many inputs as the device binds;
 *   any other input takes a strided copy into its window (the elementwise template writes through
 *   an output view).
 * - pad: a fill with the pad value, then a strided copy of the input into the interior, whose
 *   strides carry the interior padding.
 * - fold (the adjoint of the `windows` view): one invocation per output element sums the window
 *   taps that read it, looping over the kernel; no atomics, so the sum is deterministic.
 *
 * Index checks (one rule on every backend, see `index-range.ts`): an index outside [0, size) is
 * read as 0 by `take` and skipped by `scatterAdd`, so no kernel touches memory it does not own,
 * and the kernel flags it in the backend's two error words with atomics: the first kernel to find
 * a bad index writes its site number (which the backend maps to the op's {@link IndexContext})
 * and the value; later flags leave them alone. The backend copies the words at its next read or
 * sync, in the same submission as the data, and throws the error they describe: no readback
 * inside an op, and none at all when no checked kernel ran.
 */
import type { KernelArg } from '../../backend.js';
import { axisContext } from '../../index-range.js';
import type { KernelOp, OpParamMap } from '../../registry.js';
import { contiguousStrides, isContiguous, sizeOf } from '../../shape.js';
import { bufferOf, type KernelContext } from './context.js';
import { copyInto, destinationOf, fill } from './elementwise.js';
import { checkRank, mergeAxes, putList } from './layout.js';
import { scatterAdd } from './scatter.js';
import {
  f32ToBits,
  helpersFor,
  MAIN,
  PARAM_WORDS,
  PARAMS_DECL,
  putReciprocals,
  storageDecl,
  stridedOffsetCode,
  wgslType,
} from './wgsl.js';

const WORKGROUP = 64;

/**
 * The error words at `binding` and `flagIndex(site, value)`, which records the first bad index of
 * the backend's check interval: later flags (of this kernel or later ones) see a site there and
 * stop. A weak compare-exchange may fail spuriously, hence the loop.
 */
function errorWordsDecl(binding: number): string {
  return `@group(1) @binding(${binding}) var<storage, read_write> errorWords: array<atomic<u32>>;
fn flagIndex(site: u32, value: i32) {
  if (atomicLoad(&errorWords[0]) != 0u) { return; }
  loop {
    let r = atomicCompareExchangeWeak(&errorWords[0], 0u, site);
    if (r.exchanged) { atomicStore(&errorWords[1], bitcast<u32>(value)); return; }
    if (r.old_value != 0u) { return; }
  }
}`;
}

type Kernel<K extends KernelOp> = (
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  params: OpParamMap[K],
) => void;

function takeSource(t: string): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'x', t, false)}
${storageDecl(2, 'idx', 'i32', false)}
${storageDecl(3, 'out', t, true)}
${errorWordsDecl(4)}
${helpersFor('fastDiv(')}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= p(0u)) { return; }
  ${stridedOffsetCode({ flat: 'i', rank: 'p(1u)', shapeBase: 8, reciprocalBase: 32 }, [
    { name: 'ox', offsetWord: 2, strideBase: 16 },
    { name: 'oi', offsetWord: 3, strideBase: 24 },
  ])}
  let v = idx[oi];
  let inRange = v >= 0 && u32(v) < p(4u);
  if (!inRange) { flagIndex(p(7u), v); }
  out[p(6u) + i] = select(${t}(0), x[ox + u32(select(0, v, inRange)) * p(5u)], inRange);
}`;
}

/**
 * `take(x, idx, axis)`. Parameter words: 0 count, 1 rank, 2 x offset, 3 idx offset, 4 axis size,
 * 5 x stride along the axis, 6 output offset, 7 check site, 8… output shape, 16… x strides and
 * 24… idx strides per output axis (0 where the axis belongs to the other operand), 32…
 * reciprocals of the shape.
 */
export const takeKernel: Kernel<'take'> = (ctx, [x, idx], out, { axis, context }) => {
  const before = x.shape.slice(0, axis).length;
  const after = x.shape.length - axis - 1;
  const zeros = (n: number) => new Array<number>(n).fill(0);
  const xStrides = [...x.strides.slice(0, axis), ...zeros(idx.shape.length), ...x.strides.slice(axis + 1)];
  const idxStrides = [...zeros(before), ...idx.strides, ...zeros(after)];
  const merged = mergeAxes(out.shape, [xStrides, idxStrides]);
  checkRank('take', merged, out.shape);
  const count = sizeOf(out.shape);
  const words: number[] = new Array(32).fill(0);
  Object.assign(words, [
    count,
    merged.shape.length,
    x.offset,
    idx.offset,
    x.shape[axis],
    x.strides[axis],
    out.offset,
    ctx.indexCheckSite(context ?? axisContext('take', axis, x.shape[axis]), x.shape[axis]),
  ]);
  putList(words, 8, merged.shape, 1);
  putList(words, 16, merged.strides[0]);
  putList(words, 24, merged.strides[1]);
  putReciprocals(words, 32, merged.shape);
  const t = wgslType('take', x.dtype);
  ctx.dispatch({
    op: 'take',
    key: `take|${t}`,
    source: () => takeSource(t),
    inputs: 2,
    outputs: 2,
    buffers: [bufferOf(x), bufferOf(idx), bufferOf(out), ctx.errorWords],
    params: words,
    workgroups: Math.ceil(count / WORKGROUP),
  });
};

/** `scatterAdd(src, idx, axis, size)`: see `scatter.ts` (a direct kernel, or a stable sort by index). */
export const scatterAddKernel: Kernel<'scatterAdd'> = (ctx, inputs, out, params) =>
  scatterAdd(ctx, inputs, out, params, errorWordsDecl);

/** Parameter words per input of a gather launch: first workgroup, size, input and output offsets. */
const GATHER_WORDS = 4;
/** Elements each invocation of the gather kernel copies (one workgroup-width apart). */
const GATHER_PER_INVOCATION = 4;
/** Elements each workgroup of the gather kernel copies. */
const GATHER_BLOCK = WORKGROUP * GATHER_PER_INVOCATION;

/**
 * The gather kernel for `members` inputs: each workgroup copies one block of one input, raw 32-bit
 * words (every dtype of this backend is 4 bytes), as vec4s when every size and offset is a multiple
 * of 4, into its window of the output. Input j's blocks start at workgroup `p(4j)`, so the input
 * is the last j whose first workgroup is at most ours.
 */
function gatherSource(members: number, vec4: boolean): string {
  const unit = vec4 ? 'vec4<u32>' : 'u32';
  const inputs = Array.from({ length: members }, (_, j) => storageDecl(j + 1, `in${j}`, unit, false));
  const cases = Array.from(
    { length: members },
    (_, j) => `    case ${j}u: { for (var e = 0u; e < ${GATHER_PER_INVOCATION}u; e++) {
      let i = first + e * ${WORKGROUP}u;
      if (i < size) { out[dst + i] = in${j}[src + i]; }
    } }`,
  );
  return `${PARAMS_DECL}
${inputs.join('\n')}
${storageDecl(members + 1, 'out', unit, true)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let w = workgroupIndex(wid, nwg);
  var m = 0u;
  for (var j = 1u; j < ${members}u; j++) { if (w >= p(${GATHER_WORDS}u * j)) { m = j; } }
  let base = ${GATHER_WORDS}u * m;
  let first = (w - p(base)) * ${GATHER_BLOCK}u + lid;
  let size = p(base + 1u);
  let src = p(base + 2u);
  let dst = p(base + 3u);
  switch m {
${cases.join('\n')}
    default: {}
  }
}`;
}

/** One launch that copies contiguous inputs into consecutive runs of the output. */
function gather(ctx: KernelContext, runs: readonly { x: KernelArg; dst: number }[], out: KernelArg): void {
  const vec4 = runs.every(({ x, dst }) => [sizeOf(x.shape), x.offset, dst].every((v) => v % 4 === 0));
  const unit = vec4 ? 4 : 1;
  const words: number[] = [];
  let workgroups = 0;
  for (const { x, dst } of runs) {
    const size = sizeOf(x.shape) / unit;
    words.push(workgroups, size, x.offset / unit, dst / unit);
    workgroups += Math.ceil(size / GATHER_BLOCK);
  }
  ctx.dispatch({
    op: 'concat',
    key: `gather|${runs.length}|${vec4 ? 'v4' : 's'}`,
    source: () => gatherSource(runs.length, vec4),
    inputs: runs.length,
    outputs: 1,
    buffers: [...runs.map(({ x }) => bufferOf(x)), bufferOf(out)],
    params: words,
    workgroups,
  });
}

/**
 * `concat(xs, axis)`: each input copied into its window of the output. Where the windows are runs
 * of the output's memory (the axes before `axis` have size 1, as when flattened parameters or
 * gradients are joined end to end) and the inputs are contiguous, one gather launch copies as many
 * inputs as the device binds (15 on lavapipe): an optimizer joining 14 gradients makes one launch,
 * not 14. Other inputs take a strided copy each.
 */
export const concatKernel: Kernel<'concat'> = (ctx, inputs, out, { axis }) => {
  const strides = contiguousStrides(out.shape);
  const runsOfOutput = out.shape.slice(0, axis).every((d) => d === 1);
  const perLaunch = Math.min(ctx.maxStorageBuffers - 1, PARAM_WORDS / GATHER_WORDS);
  let batch: { x: KernelArg; dst: number }[] = [];
  const flush = () => {
    if (batch.length > 0) gather(ctx, batch, out);
    batch = [];
  };
  let position = 0;
  for (const x of inputs) {
    const offset = out.offset + position * strides[axis];
    position += x.shape[axis];
    if (sizeOf(x.shape) === 0) continue;
    if (runsOfOutput && isContiguous(x.shape, x.strides)) {
      batch.push({ x, dst: offset });
      if (batch.length === perLaunch) flush();
    } else copyInto(ctx, 'concat', x, { buffer: bufferOf(out), dtype: out.dtype, offset, strides });
  }
  flush();
};

/** `pad(x, widths, value)`: fill, then copy the input into the strided interior. */
export const padKernel: Kernel<'pad'> = (ctx, [x], out, { widths, value }) => {
  const strides = contiguousStrides(out.shape);
  fill(ctx, 'pad', { ...destinationOf(out), strides: [1] }, sizeOf(out.shape), value);
  const offset = out.offset + widths.reduce((o, [low], d) => o + low * strides[d], 0);
  const interior = strides.map((s, d) => s * (widths[d][2] + 1));
  copyInto(ctx, 'pad', x, { buffer: bufferOf(out), dtype: out.dtype, offset, strides: interior });
};

function foldSource(t: string): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'g', t, false)}
${storageDecl(2, 'out', t, true)}
${helpersFor('fastDiv(')}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= p(0u)) { return; }
  let W = p(7u); let H = p(6u); let C = p(5u);
  let rowIndex = fastDiv(i, W, bitcast<f32>(p(22u)));
  let col = i32(i - rowIndex * W);
  let plane = fastDiv(rowIndex, H, bitcast<f32>(p(23u)));
  let row = i32(rowIndex - plane * H);
  let b = fastDiv(plane, C, bitcast<f32>(p(24u)));
  let ch = plane - b * C;
  let base = p(1u) + b * p(8u) + ch * p(9u);
  let sh = i32(p(16u)); let sw = i32(p(17u));
  let oh = i32(p(20u)); let ow = i32(p(21u));
  var total = ${t}(0);
  for (var ki = 0u; ki < p(14u); ki++) {
    let dy = row - i32(ki * p(18u));
    let y = dy / sh;
    if (dy < 0 || y * sh != dy || y >= oh) { continue; }
    for (var kj = 0u; kj < p(15u); kj++) {
      let dx = col - i32(kj * p(19u));
      let x = dx / sw;
      if (dx < 0 || x * sw != dx || x >= ow) { continue; }
      total += g[base + ki * p(10u) + kj * p(11u) + u32(y) * p(12u) + u32(x) * p(13u)];
    }
  }
  out[p(2u) + i] = total;
}`;
}

/**
 * `fold(g)`: the sum of the window taps that read each element. Parameter words: 0 count, 1 g
 * offset, 2 output offset, 4… output shape [N, C, H, W], 8… g strides, 14/15 kernel, 16/17 stride,
 * 18/19 dilation, 20/21 windows per axis, 22… reciprocals of W, H and C.
 */
export const foldKernel: Kernel<'fold'> = (ctx, [g], out, { kernel, stride, dilation }) => {
  const t = wgslType('fold', g.dtype);
  const [n, c, h, w] = out.shape;
  const words: number[] = new Array(25).fill(0);
  words[0] = n * c * h * w;
  words[1] = g.offset;
  words[2] = out.offset;
  putList(words, 4, out.shape);
  putList(words, 8, g.strides);
  putList(words, 14, [...kernel, ...stride, ...dilation, g.shape[4], g.shape[5]]);
  putList(words, 22, [f32ToBits(1 / w), f32ToBits(1 / h), f32ToBits(1 / c)]);
  ctx.dispatch({
    op: 'fold',
    key: `fold|${t}`,
    source: () => foldSource(t),
    inputs: 1,
    outputs: 1,
    buffers: [bufferOf(g), bufferOf(out)],
    params: words,
    workgroups: Math.ceil(words[0] / WORKGROUP),
  });
};
