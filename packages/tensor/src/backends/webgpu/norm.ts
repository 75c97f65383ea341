/**
 * Layer normalisation kernels: `layerNorm` and the two results of its gradient `layerNormGrad`.
 *
 * Algorithm. The input is seen as R rows of D elements (its last `count` axes). Operands that are
 * not contiguous (views) are first copied into contiguous scratch buffers, so the shaders index
 * `offset + row·D + j` only.
 *
 * - `layerNorm` and the input gradient: one invocation per row, a plain loop over its elements,
 *   no barriers (which software adapters pay dearly for, see `reduce.ts`). The row statistics
 *   come from two passes over values shifted by the row's first element s: the mean m of x − s,
 *   then the mean of ((x − s) − m)². The shift keeps float32 accurate for rows with a large mean
 *   (`1e4 + noise`: x − s is exact there, where a plain sum of x would lose the noise's digits).
 *   The input gradient recomputes the statistics (the forward op saves nothing), gathering
 *   mean(ĝ) and mean(ĝ·x̂) in the variance's pass, then writes `ρ · (ĝ − mean(ĝ) − x̂ · mean(ĝ·x̂))`:
 *   three passes over the row.
 * - the weight and bias gradients (`affine`): one workgroup per chunk of 64 rows. Each invocation
 *   first computes one row's statistics into workgroup memory; after one barrier, invocation k
 *   sums columns k, k + 64, … of `g · x̂` and `g` over the chunk's rows. With several chunks, the
 *   `[chunks, 2·D]` partial sums are added up by the reduction kernel (one more launch).
 *
 * One thread per row suits the many short rows of a Transformer (1024 rows of 64 in a character
 * model's step); a few very long rows would leave most of a GPU idle.
 */
import type { KernelArg } from '../../backend.js';
import type { OpParamMap } from '../../registry.js';
import { contiguousStrides, isContiguous, sizeOf } from '../../shape.js';
import type { GpuBuffer } from './buffers.js';
import { bufferOf, type KernelContext } from './context.js';
import { copyInto, fill } from './elementwise.js';
import { runReduce } from './reduce.js';
import { f32ToBits, MAIN, PARAMS_DECL, storageDecl, wgslType } from './wgsl.js';

const WORKGROUP = 64;

/**
 * `x` itself when its elements are in row-major order (any offset), else a contiguous copy in a
 * scratch buffer (added to `scratch` for release once the kernel is recorded).
 */
function dense(ctx: KernelContext, op: string, x: KernelArg, scratch: GpuBuffer[]): KernelArg {
  if (isContiguous(x.shape, x.strides)) return x;
  const buffer = ctx.scratch(sizeOf(x.shape));
  scratch.push(buffer);
  const strides = contiguousStrides(x.shape);
  copyInto(ctx, op, x, { buffer, dtype: x.dtype, offset: 0, strides });
  return { buffer, dtype: x.dtype, shape: x.shape, strides, offset: 0 };
}

/**
 * WGSL declaring `shift` (the row's first element) and `mean` (of the row minus `shift`) of the row
 * of `n` elements at `x[base …]` (see the module comment).
 */
const ROW_MEAN = `
  let shift = x[base];
  var total = 0.0;
  for (var j = 0u; j < n; j++) { total += x[base + j] - shift; }
  let mean = total / f32(n);`;

/**
 * WGSL declaring `shift`, `mean` ({@link ROW_MEAN}) and `rstd` of the row; `eps` is the f32 in
 * parameter word `epsWord`.
 */
const rowStatistics = (epsWord: number) => `${ROW_MEAN}
  var squares = 0.0;
  for (var j = 0u; j < n; j++) {
    let d = (x[base + j] - shift) - mean;
    squares += d * d;
  }
  let rstd = 1.0 / sqrt(squares / f32(n) + bitcast<f32>(p(${epsWord}u)));`;

/**
 * The forward shader. Parameter words: 0 rows, 1 row length, 2 x offset, 3 weight offset, 4 bias
 * offset, 5 eps, 6 output offset.
 */
function forwardSource(weight: boolean, bias: boolean): string {
  let binding = 1;
  const decls = [storageDecl(binding++, 'x', 'f32', false)];
  if (weight) decls.push(storageDecl(binding++, 'w', 'f32', false));
  if (bias) decls.push(storageDecl(binding++, 'b', 'f32', false));
  decls.push(storageDecl(binding, 'out', 'f32', true));
  const scale = weight ? ' * w[p(3u) + j]' : '';
  const shift = bias ? ' + b[p(4u) + j]' : '';
  return `${PARAMS_DECL}
${decls.join('\n')}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let row = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (row >= p(0u)) { return; }
  let n = p(1u);
  let base = p(2u) + row * n;
  ${rowStatistics(5)}
  let o = p(6u) + row * n;
  for (var j = 0u; j < n; j++) {
    out[o + j] = ((x[base + j] - shift) - mean) * rstd${scale}${shift};
  }
}`;
}

/**
 * The input gradient's shader. Parameter words: 0 rows, 1 row length, 2 x offset, 3 g offset,
 * 4 weight offset, 5 eps, 6 output offset.
 */
function inputGradSource(weight: boolean): string {
  const decls = [
    storageDecl(1, 'x', 'f32', false),
    storageDecl(2, 'g', 'f32', false),
    ...(weight ? [storageDecl(3, 'w', 'f32', false)] : []),
    storageDecl(weight ? 4 : 3, 'out', 'f32', true),
  ];
  const gw = weight ? 'g[gBase + j] * w[p(4u) + j]' : 'g[gBase + j]';
  return `${PARAMS_DECL}
${decls.join('\n')}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let row = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (row >= p(0u)) { return; }
  let n = p(1u);
  let base = p(2u) + row * n;
  let gBase = p(3u) + row * n;${ROW_MEAN}
  // One pass for the variance, Σĝ and Σĝ·(x − μ) (x̂ = (x − μ)·ρ, so Σĝ·x̂ = ρ·Σĝ·(x − μ)).
  var squares = 0.0;
  var sumG = 0.0;
  var sumGD = 0.0;
  for (var j = 0u; j < n; j++) {
    let d = (x[base + j] - shift) - mean;
    let gw = ${gw};
    squares += d * d;
    sumG += gw;
    sumGD += gw * d;
  }
  let rstd = 1.0 / sqrt(squares / f32(n) + bitcast<f32>(p(5u)));
  let meanG = sumG / f32(n);
  let meanGX = sumGD * rstd / f32(n);
  let o = p(6u) + row * n;
  for (var j = 0u; j < n; j++) {
    let xHat = ((x[base + j] - shift) - mean) * rstd;
    out[o + j] = rstd * ((${gw} - meanG) - xHat * meanGX);
  }
}`;
}

/**
 * The weight and bias gradients' shader (one workgroup per chunk of rows). Parameter words:
 * 0 rows, 1 row length, 2 x offset, 3 g offset, 4 eps, 5 output offset, 6 chunks.
 */
const AFFINE_GRAD_SOURCE = `${PARAMS_DECL}
${storageDecl(1, 'x', 'f32', false)}
${storageDecl(2, 'g', 'f32', false)}
${storageDecl(3, 'out', 'f32', true)}
var<workgroup> shifts: array<f32, ${WORKGROUP}>;
var<workgroup> means: array<f32, ${WORKGROUP}>;
var<workgroup> rstds: array<f32, ${WORKGROUP}>;
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let chunk = workgroupIndex(wid, nwg);
  if (chunk >= p(6u)) { return; }
  let n = p(1u);
  let first = chunk * ${WORKGROUP}u;
  if (first + lid < p(0u)) {
    let base = p(2u) + (first + lid) * n;
    ${rowStatistics(4)}
    shifts[lid] = shift;
    means[lid] = mean;
    rstds[lid] = rstd;
  }
  workgroupBarrier();
  let rows = min(${WORKGROUP}u, p(0u) - first);
  let o = p(5u) + chunk * 2u * n;
  for (var j = lid; j < n; j += ${WORKGROUP}u) {
    var sumW = 0.0;
    var sumB = 0.0;
    for (var r = 0u; r < rows; r++) {
      let i = (first + r) * n + j;
      let gv = g[p(3u) + i];
      sumW += gv * (((x[p(2u) + i] - shifts[r]) - means[r]) * rstds[r]);
      sumB += gv;
    }
    out[o + j] = sumW;
    out[o + n + j] = sumB;
  }
}`;

/** Rows and row length of a `layerNorm` operand. */
function rowsOf(x: KernelArg, count: number): { rows: number; length: number } {
  const length = sizeOf(x.shape.slice(x.shape.length - count));
  return { rows: length === 0 ? 0 : sizeOf(x.shape) / length, length };
}

/** `layerNorm(x[, w][, b])`: one launch, one invocation per row. */
export function layerNormKernel(
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  { count, eps, weight, bias }: OpParamMap['layerNorm'],
): void {
  wgslType('layerNorm', inputs[0].dtype);
  const scratch: GpuBuffer[] = [];
  const [x, ...affine] = inputs.map((t) => dense(ctx, 'layerNorm', t, scratch));
  const w = weight ? affine[0] : undefined;
  const b = bias ? affine[weight ? 1 : 0] : undefined;
  const { rows, length } = rowsOf(x, count);
  ctx.dispatch({
    op: 'layerNorm',
    key: `layerNorm|${weight}|${bias}`,
    source: () => forwardSource(weight, bias),
    inputs: 1 + affine.length,
    outputs: 1,
    buffers: [x, ...affine, out].map(bufferOf),
    params: [rows, length, x.offset, w?.offset ?? 0, b?.offset ?? 0, f32ToBits(eps), out.offset],
    workgroups: Math.ceil(rows / WORKGROUP),
  });
  for (const buffer of scratch) ctx.release(buffer);
}

/** `layerNormGrad`: the input gradient (one launch) or the weight and bias gradients (one or two). */
export function layerNormGradKernel(
  ctx: KernelContext,
  inputs: readonly KernelArg[],
  out: KernelArg,
  { result, count, eps, weight }: OpParamMap['layerNormGrad'],
): void {
  wgslType('layerNormGrad', inputs[0].dtype);
  const scratch: GpuBuffer[] = [];
  const [x, g, w] = inputs.map((t) => dense(ctx, 'layerNormGrad', t, scratch));
  const { rows, length } = rowsOf(x, count);
  if (result === 'input') {
    ctx.dispatch({
      op: 'layerNormGrad',
      key: `layerNormGrad|input|${weight}`,
      source: () => inputGradSource(weight),
      inputs: weight ? 3 : 2,
      outputs: 1,
      buffers: [x, g, ...(w ? [w] : []), out].map(bufferOf),
      params: [rows, length, x.offset, g.offset, w?.offset ?? 0, f32ToBits(eps), out.offset],
      workgroups: Math.ceil(rows / WORKGROUP),
    });
  } else if (rows === 0) {
    fill(
      ctx,
      'layerNormGrad',
      { buffer: bufferOf(out), dtype: out.dtype, offset: out.offset, strides: [1] },
      2 * length,
      0,
    );
  } else {
    // One chunk writes the result; several write partial sums, added up by a reduction.
    const chunks = Math.ceil(rows / WORKGROUP);
    const partials = chunks > 1 ? ctx.scratch(chunks * 2 * length) : null;
    ctx.dispatch({
      op: 'layerNormGrad',
      key: 'layerNormGrad|affine',
      source: () => AFFINE_GRAD_SOURCE,
      inputs: 2,
      outputs: 1,
      buffers: [bufferOf(x), bufferOf(g), partials ?? bufferOf(out)],
      params: [rows, length, x.offset, g.offset, f32ToBits(eps), partials ? 0 : out.offset, chunks],
      workgroups: chunks,
    });
    if (partials) {
      const all: KernelArg = {
        buffer: partials,
        dtype: out.dtype,
        shape: [chunks, 2 * length],
        strides: [2 * length, 1],
        offset: 0,
      };
      runReduce(ctx, 'sum', all, out, { axes: [0], keepDims: false });
      ctx.release(partials);
    }
  }
  for (const buffer of scratch) ctx.release(buffer);
}
