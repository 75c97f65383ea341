/**
 * `scatterAdd(src, idx, axis, size)` on WebGPU, the adjoint of `take` (so the gradient of
 * `Embedding`, `takeAlongAxis`, reflect padding, …): output slot `s` of every `[pre, s, post]` row
 * is the sum of the source rows whose index is `s`. Two algorithms, chosen by
 * {@link usesSortedScatter}:
 *
 * - Direct (tiny cases): one invocation per output element loops over all N indices and adds the
 *   source elements whose index equals its slot. One dispatch, but (outputs × N) index reads.
 * - Sorted (everything else), O(N + outputs + N·row) work in a fixed number of dispatches:
 *   1. keys: one invocation per index writes its key (the index, or `size` for an index out of
 *      range) and its value (the offset of its source block in `src`, or the raw bad index).
 *   2. a stable LSD radix sort of the (key, value) pairs by key, `b` bits per pass: the indices are
 *      cut into chunks of {@link CHUNK}; per pass, one invocation per chunk counts its keys' digits
 *      into its own column of a digit-major `[2^b, chunks]` table (no atomics), an exclusive scan
 *      of the table (`scanInPlace`) gives every (digit, chunk) its first output position, and the
 *      chunk's invocation walks its keys again in order, placing each pair at its digit's cursor.
 *      Each chunk owns its cursors and walks in order, so every pass is stable, and so is the sort.
 *   3. bounds: one invocation per slot `s ≤ size` finds the first sorted key ≥ s (binary search);
 *      bucket `s` is `[start(s), start(s + 1))`.
 *   4. sum: one invocation per output element adds its bucket's source elements in sorted order.
 * The sort is stable, so every bucket lists its indices in increasing order and each output element
 * adds exactly the terms the direct kernel adds, in the same order, with no atomics: both
 * algorithms give the same bits, run after run (Fluxion promises reproducible training). The cost
 * of one output element is its bucket's length: an index repeated N times makes those row sums
 * serial in N (as every direct-kernel sum is).
 *
 * Index checks: an index outside [0, size) gets the key `size`, past every real slot, so no sum
 * reads it; being stable, the sort puts the first bad index (in index order) first in that last
 * bucket, and the bounds invocation of slot `size` flags its value with `flagIndex`, the value the
 * CPU backend reports. (The direct kernel's first invocation reads the indices in order too.)
 */
import type { KernelArg } from '../../backend.js';
import { axisContext } from '../../index-range.js';
import type { OpParamMap } from '../../registry.js';
import { sizeOf } from '../../shape.js';
import type { GpuBuffer } from './buffers.js';
import { bufferOf, type KernelContext } from './context.js';
import { checkRank, type MergedLayout, mergeAxes, putList } from './layout.js';
import { MAIN, PARAMS_DECL, storageDecl, stridedOffsetCode, wgslType } from './wgsl.js';

const WORKGROUP = 64;
/** Indices per chunk of the radix sort: one invocation counts and places a chunk, in order. */
const CHUNK = 128;
/** Invocations per workgroup of the scan, each scanning {@link SCAN_PER_INVOCATION} elements. */
const SCAN_WORKGROUP = 256;
const SCAN_PER_INVOCATION = 4;
const SCAN_BLOCK = SCAN_WORKGROUP * SCAN_PER_INVOCATION;
/**
 * The direct kernel runs when (outputs × indices) is at most this. Measured on lavapipe (2 shared
 * cores, medians of 20-op batches): the sorted path's eight or so dispatches cost 310–420 µs
 * whatever the size up to there; the direct kernel 165–175 µs up to 640, 240 µs at 4,096,
 * 360–460 µs at 16,384, 4 ms at 200k and 33 ms at 1M.
 */
export const DIRECT_SCATTER_WORK = 1 << 13;

/**
 * Whether `scatterAdd` with `outputs` output elements and `indices` indices takes the sorted path
 * (the rule: outputs × indices over {@link DIRECT_SCATTER_WORK}); otherwise the direct kernel.
 *
 * @example
 * ```ts
 * usesSortedScatter(65 * 128, 4096); // true: an Embedding(65, 128) gradient over 4096 ids
 * usesSortedScatter(10, 64); // false: 64 labels scattered into 10 classes
 * ```
 */
export function usesSortedScatter(outputs: number, indices: number): boolean {
  return outputs * indices > DIRECT_SCATTER_WORK;
}

/** The error-flag declaration shared with `take` (see `indexing.ts`). */
export type ErrorWordsDecl = (binding: number) => string;

/** The layouts a scatterAdd kernel walks: src over pre / post axes, idx and src over idx axes. */
interface ScatterLayout {
  pre: MergedLayout;
  post: MergedLayout;
  over: MergedLayout;
  indices: number;
  rowSize: number;
}

function scatterLayout(src: KernelArg, idx: KernelArg, axis: number): ScatterLayout {
  const k = idx.shape.length;
  const pre = mergeAxes(src.shape.slice(0, axis), [src.strides.slice(0, axis)]);
  const post = mergeAxes(src.shape.slice(axis + k), [src.strides.slice(axis + k)]);
  const over = mergeAxes(idx.shape, [idx.strides, src.strides.slice(axis, axis + k)]);
  for (const m of [pre, post, over]) checkRank('scatterAdd', m, src.shape);
  return { pre, post, over, indices: sizeOf(idx.shape), rowSize: sizeOf(post.shape) };
}

// ---- direct ----

function directSource(t: string, errorWords: ErrorWordsDecl): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'src', t, false)}
${storageDecl(2, 'idx', 'i32', false)}
${storageDecl(3, 'out', t, true)}
${errorWords(4)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let flat = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (flat >= p(0u)) { return; }
  let ranks = p(7u);
  let q = flat % p(6u);
  let rest = flat / p(6u);
  let slot = i32(rest % p(4u));
  let pre = rest / p(4u);
  ${stridedOffsetCode({ flat: 'pre', rank: 'ranks & 15u', shapeBase: 8 }, [
    { name: 'preOffset', offsetWord: 2, strideBase: 16 },
  ])}
  ${stridedOffsetCode({ flat: 'q', rank: '(ranks >> 4u) & 15u', shapeBase: 24 }, [
    { name: 'base', offsetWord: 'preOffset', strideBase: 32 },
  ])}
  var acc = ${t}(0);
  for (var i = 0u; i < p(1u); i++) {
    ${stridedOffsetCode({ flat: 'i', rank: '(ranks >> 8u) & 15u', shapeBase: 40 }, [
      { name: 'oi', offsetWord: 3, strideBase: 48 },
      { name: 'os', offsetWord: 'base', strideBase: 56 },
    ])}
    let v = idx[oi];
    if (v == slot) { acc += src[os]; }
    // Every invocation reads every index; the first one reports a bad one.
    if (flat == 0u && (v < 0 || u32(v) >= p(4u))) { flagIndex(ranks >> 12u, v); }
  }
  out[p(5u) + flat] = acc;
}`;
}

/**
 * The direct kernel. Parameter words: 0 count, 1 number of indices, 2 src offset, 3 idx offset,
 * 4 size, 5 output offset, 6 elements after the slot axis, 7 ranks and check site (pre | post << 4
 * | idx << 8 | site << 12), 8/16 pre shape/src strides, 24/32 post shape/src strides, 40 idx
 * shape, 48 idx strides, 56 src strides over the idx axes.
 */
function scatterDirect(
  ctx: KernelContext,
  [src, idx]: readonly KernelArg[],
  out: KernelArg,
  size: number,
  site: number,
  { pre, post, over, indices, rowSize }: ScatterLayout,
  errorWords: ErrorWordsDecl,
): void {
  const count = sizeOf(out.shape);
  const words: number[] = new Array(64).fill(0);
  Object.assign(words, [
    count,
    indices,
    src.offset,
    idx.offset,
    size,
    out.offset,
    rowSize,
    pre.shape.length | (post.shape.length << 4) | (over.shape.length << 8) | (site << 12),
  ]);
  putList(words, 8, pre.shape, 1);
  putList(words, 16, pre.strides[0]);
  putList(words, 24, post.shape, 1);
  putList(words, 32, post.strides[0]);
  putList(words, 40, over.shape, 1);
  putList(words, 48, over.strides[0]);
  putList(words, 56, over.strides[1]);
  const t = wgslType('scatterAdd', src.dtype);
  ctx.dispatch({
    op: 'scatterAdd',
    key: `scatterAdd|${t}`,
    source: () => directSource(t, errorWords),
    inputs: 2,
    outputs: 2,
    buffers: [bufferOf(src), bufferOf(idx), bufferOf(out), ctx.errorWords],
    params: words,
    workgroups: Math.ceil(count / WORKGROUP),
  });
}

// ---- sorted: keys, radix passes, bounds, sum ----

/** keys[j], vals[j] of index j. Words: 0 N, 1 idx offset, 2 size, 3 rank, 8 shape, 16 idx / 24 src strides. */
const KEYS_SOURCE = `${PARAMS_DECL}
${storageDecl(1, 'idx', 'i32', false)}
${storageDecl(2, 'keys', 'u32', true)}
${storageDecl(3, 'vals', 'u32', true)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let j = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (j >= p(0u)) { return; }
  ${stridedOffsetCode({ flat: 'j', rank: 'p(3u)', shapeBase: 8 }, [
    { name: 'oi', offsetWord: 1, strideBase: 16 },
    { name: 'os', offsetWord: '0u', strideBase: 24 },
  ])}
  let v = idx[oi];
  let inRange = v >= 0 && u32(v) < p(2u);
  keys[j] = select(p(2u), u32(v), inRange);
  vals[j] = select(bitcast<u32>(v), os, inRange);
}`;

/**
 * One radix pass's counting (`place` false) or placing (`place` true) over chunk g. Words: 0 N,
 * 1 chunks, 2 digit shift, 3 digit mask. The table is digit-major: `table[d * chunks + g]`.
 */
function radixSource(place: boolean): string {
  const buffers = place
    ? `${storageDecl(1, 'keysIn', 'u32', false)}
${storageDecl(2, 'valsIn', 'u32', false)}
${storageDecl(3, 'table', 'u32', true)}
${storageDecl(4, 'keysOut', 'u32', true)}
${storageDecl(5, 'valsOut', 'u32', true)}`
    : `${storageDecl(1, 'keysIn', 'u32', false)}
${storageDecl(2, 'table', 'u32', true)}`;
  const zero = place ? '' : `for (var d = 0u; d <= p(3u); d++) { table[d * chunks + g] = 0u; }`;
  const step = place
    ? `let at = table[cell];
    table[cell] = at + 1u;
    keysOut[at] = key;
    valsOut[at] = valsIn[j];`
    : 'table[cell] += 1u;';
  return `${PARAMS_DECL}
${buffers}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let g = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  let chunks = p(1u);
  if (g >= chunks) { return; }
  ${zero}
  let end = min(p(0u), (g + 1u) * ${CHUNK}u);
  for (var j = g * ${CHUNK}u; j < end; j++) {
    let key = keysIn[j];
    let cell = ((key >> p(2u)) & p(3u)) * chunks + g;
    ${step}
  }
}`;
}

/**
 * The exclusive scan of one block of {@link SCAN_BLOCK} elements per workgroup (`add` false), its
 * total written to `sums`; or (`add` true) adding each block's scanned total. Words: 0 length,
 * 1 whether to write sums.
 */
function scanSource(add: boolean): string {
  const head = `${PARAMS_DECL}
${storageDecl(1, 'data', 'u32', true)}
${storageDecl(2, 'sums', 'u32', true)}
@compute @workgroup_size(${SCAN_WORKGROUP})
${MAIN}
  let w = workgroupIndex(wid, nwg);
  let n = p(0u);
  let first = w * ${SCAN_BLOCK}u + lid * ${SCAN_PER_INVOCATION}u;`;
  if (add) {
    return `${head}
  let offset = sums[w];
  for (var e = 0u; e < ${SCAN_PER_INVOCATION}u; e++) {
    if (first + e < n) { data[first + e] += offset; }
  }
}`;
  }
  return `var<workgroup> partial: array<u32, ${SCAN_WORKGROUP}>;
${head}
  var v: array<u32, ${SCAN_PER_INVOCATION}>;
  var total = 0u;
  for (var e = 0u; e < ${SCAN_PER_INVOCATION}u; e++) {
    v[e] = select(0u, data[first + e], first + e < n);
    total += v[e];
  }
  partial[lid] = total;
  workgroupBarrier();
  // Hillis–Steele inclusive scan of the invocations' totals.
  for (var step = 1u; step < ${SCAN_WORKGROUP}u; step <<= 1u) {
    let other = select(0u, partial[select(0u, lid - step, lid >= step)], lid >= step);
    workgroupBarrier();
    partial[lid] += other;
    workgroupBarrier();
  }
  var running = partial[lid] - total;
  for (var e = 0u; e < ${SCAN_PER_INVOCATION}u; e++) {
    if (first + e < n) { data[first + e] = running; }
    running += v[e];
  }
  if (lid == ${SCAN_WORKGROUP - 1}u && p(1u) != 0u) { sums[w] = partial[lid]; }
}`;
}

/** Replaces the first `n` u32s of `data` by their exclusive prefix sums (block scans, recursively). */
export function scanInPlace(ctx: KernelContext, data: GpuBuffer, n: number): void {
  const blocks = Math.ceil(n / SCAN_BLOCK);
  const sums = ctx.scratch(blocks);
  const pass = (add: boolean, workgroups: number) =>
    ctx.dispatch({
      op: 'scatterAdd',
      key: `scatterAdd|scan|${add ? 'add' : 'blocks'}`,
      source: () => scanSource(add),
      inputs: 0,
      outputs: 2,
      buffers: [data, sums],
      params: [n, blocks > 1 ? 1 : 0],
      workgroups,
    });
  pass(false, blocks);
  if (blocks > 1) {
    scanInPlace(ctx, sums, blocks);
    pass(true, blocks);
  }
  ctx.release(sums);
}

/** starts[s] = the first sorted position with key ≥ s, for s ≤ size. Words: 0 N, 1 size, 2 site. */
function boundsSource(errorWords: ErrorWordsDecl): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'keys', 'u32', false)}
${storageDecl(2, 'vals', 'u32', false)}
${storageDecl(3, 'starts', 'u32', true)}
${errorWords(4)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let s = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  let size = p(1u);
  if (s > size) { return; }
  var lo = 0u;
  var hi = p(0u);
  while (lo < hi) {
    let mid = (lo + hi) >> 1u;
    if (keys[mid] < s) { lo = mid + 1u; } else { hi = mid; }
  }
  starts[s] = lo;
  // Bucket 'size' holds the indices out of range, the first of them first.
  if (s == size && lo < p(0u)) { flagIndex(p(2u), bitcast<i32>(vals[lo])); }
}`;
}

/**
 * One invocation per output element sums its bucket. Words: 0 count, 2 src offset, 4 size,
 * 5 output offset, 6 elements after the slot axis, 7 ranks (pre | post << 4), 8/16 pre
 * shape/src strides, 24/32 post shape/src strides.
 */
function sumSource(t: string): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'src', t, false)}
${storageDecl(2, 'vals', 'u32', false)}
${storageDecl(3, 'starts', 'u32', false)}
${storageDecl(4, 'out', t, true)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let flat = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (flat >= p(0u)) { return; }
  let ranks = p(7u);
  let q = flat % p(6u);
  let rest = flat / p(6u);
  let slot = rest % p(4u);
  let pre = rest / p(4u);
  ${stridedOffsetCode({ flat: 'pre', rank: 'ranks & 15u', shapeBase: 8 }, [
    { name: 'preOffset', offsetWord: 2, strideBase: 16 },
  ])}
  ${stridedOffsetCode({ flat: 'q', rank: '(ranks >> 4u) & 15u', shapeBase: 24 }, [
    { name: 'base', offsetWord: 'preOffset', strideBase: 32 },
  ])}
  var acc = ${t}(0);
  let end = starts[slot + 1u];
  for (var k = starts[slot]; k < end; k++) { acc += src[base + vals[k]]; }
  out[p(5u) + flat] = acc;
}`;
}

/** The radix digit width and pass count for keys in [0, size] over `chunks` chunks. */
export function radixPlan(size: number, indices: number): { bits: number; passes: number } {
  const keyBits = Math.max(1, Math.ceil(Math.log2(size + 1)));
  const chunks = Math.ceil(indices / CHUNK);
  // The count table (chunks × 2^bits) stays within max(2N, 64Ki) cells: O(N) scan work.
  const budget = Math.max(2 * indices, 1 << 16);
  const widest = Math.min(12, Math.max(4, Math.floor(Math.log2(budget / chunks))));
  const passes = Math.ceil(keyBits / widest);
  return { bits: Math.ceil(keyBits / passes), passes };
}

function scatterSorted(
  ctx: KernelContext,
  [src, idx]: readonly KernelArg[],
  out: KernelArg,
  size: number,
  site: number,
  { pre, post, over, indices, rowSize }: ScatterLayout,
  errorWords: ErrorWordsDecl,
): void {
  const n = indices;
  const chunks = Math.ceil(n / CHUNK);
  const { bits, passes } = radixPlan(size, n);
  const mask = (1 << bits) - 1;
  let [keys, vals] = [ctx.scratch(n), ctx.scratch(n)];
  let [keysOut, valsOut] = [ctx.scratch(n), ctx.scratch(n)];
  const table = ctx.scratch(chunks * (mask + 1));
  const starts = ctx.scratch(size + 1);

  const keyWords: number[] = new Array(32).fill(0);
  Object.assign(keyWords, [n, idx.offset, size, over.shape.length]);
  putList(keyWords, 8, over.shape, 1);
  putList(keyWords, 16, over.strides[0]);
  putList(keyWords, 24, over.strides[1]);
  ctx.dispatch({
    op: 'scatterAdd',
    key: 'scatterAdd|keys',
    source: () => KEYS_SOURCE,
    inputs: 1,
    outputs: 2,
    buffers: [bufferOf(idx), keys, vals],
    params: keyWords,
    workgroups: Math.ceil(n / WORKGROUP),
  });
  for (let pass = 0; pass < passes; pass++) {
    const words = [n, chunks, pass * bits, mask];
    const workgroups = Math.ceil(chunks / WORKGROUP);
    ctx.dispatch({
      op: 'scatterAdd',
      key: 'scatterAdd|count',
      source: () => radixSource(false),
      inputs: 1,
      outputs: 1,
      buffers: [keys, table],
      params: words,
      workgroups,
    });
    scanInPlace(ctx, table, chunks * (mask + 1));
    ctx.dispatch({
      op: 'scatterAdd',
      key: 'scatterAdd|place',
      source: () => radixSource(true),
      inputs: 2,
      outputs: 3,
      buffers: [keys, vals, table, keysOut, valsOut],
      params: words,
      workgroups,
    });
    [keys, keysOut] = [keysOut, keys];
    [vals, valsOut] = [valsOut, vals];
  }
  ctx.dispatch({
    op: 'scatterAdd',
    key: 'scatterAdd|bounds',
    source: () => boundsSource(errorWords),
    inputs: 2,
    outputs: 2,
    buffers: [keys, vals, starts, ctx.errorWords],
    params: [n, size, site],
    workgroups: Math.ceil((size + 1) / WORKGROUP),
  });
  const count = sizeOf(out.shape);
  const words: number[] = new Array(40).fill(0);
  Object.assign(words, [
    count,
    0,
    src.offset,
    0,
    size,
    out.offset,
    rowSize,
    pre.shape.length | (post.shape.length << 4),
  ]);
  putList(words, 8, pre.shape, 1);
  putList(words, 16, pre.strides[0]);
  putList(words, 24, post.shape, 1);
  putList(words, 32, post.strides[0]);
  const t = wgslType('scatterAdd', src.dtype);
  ctx.dispatch({
    op: 'scatterAdd',
    key: `scatterAdd|sum|${t}`,
    source: () => sumSource(t),
    inputs: 3,
    outputs: 1,
    buffers: [bufferOf(src), vals, starts, bufferOf(out)],
    params: words,
    workgroups: Math.ceil(count / WORKGROUP),
  });
  for (const b of [keys, vals, keysOut, valsOut, table, starts]) ctx.release(b);
}

/**
 * `scatterAdd(src, idx, axis, size)`: the direct kernel for tiny cases, the sorted path otherwise
 * (see the file comment). `errorWords` declares the backend's error words and `flagIndex`.
 */
export function scatterAdd(
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  { axis, size }: OpParamMap['scatterAdd'],
  errorWords: ErrorWordsDecl,
): void {
  const [src, idx] = inputs;
  const layout = scatterLayout(src, idx, axis);
  const count = sizeOf(out.shape);
  const site = ctx.indexCheckSite(axisContext('scatterAdd', axis, size), size);
  if (usesSortedScatter(count, layout.indices))
    scatterSorted(ctx, inputs, out, size, site, layout, errorWords);
  else scatterDirect(ctx, inputs, out, size, site, layout, errorWords);
}
