/**
 * Convolutions as implicit GEMM: the `conv` primitive's three results (the output, the adjoint in
 * the input, the adjoint in the weight; see `ConvParams` in the registry) are each one matrix
 * product per group, C[m, col] = Σ_k A[m, k] · B[k, col], whose B operand is the image (or the
 * output gradient) read through the convolution's index arithmetic: no im2col matrix, no col2im
 * (`fold`) pass, no padded copy. Padding is a bounds check: a tap outside the tensor reads 0.
 *
 * The three products (x image [N, C, H, W], w weight [O, C/G, KH, KW], y output [N, O, OH, OW];
 * per group g, Cg = C/G, Og = O/G):
 *
 * | result | rows m | columns (u, v, w)  | k = (ka, kb, kc)   | A          | B (gathered)                       |
 * | ------ | ------ | ------------------ | ------------------ | ---------- | ---------------------------------- |
 * | output | o      | (n, a, b) of y     | (c, i, j)          | w[o,c,i,j] | x[n, c, a·s + i·d − p, b·s + j·d − p] |
 * | weight | o      | (c, i, j) of w     | (n, a, b)          | y[n,o,a,b] | x[n, c, a·s + i·d − p, b·s + j·d − p] |
 * | input  | c      | (n, h', w') of x   | (o, i', j') phased | w[o,c,i,j] | y[n, o, (h + p − i·d)/s, …]        |
 *
 * In every case the B address is affine in the column's coordinates plus affine in k's, with the
 * two spatial coordinates checked against the tensor's extent: `hc(col) + hk(k)` and
 * `wc(col) + wk(k)`. So each lane computes its columns' base address and spatial origin once, and
 * each step of k adds one uniform offset and tests two bounds per column.
 *
 * The input adjoint (transposed convolution) is split into stride phases: output row h = h'·s + r
 * only receives taps i with (r + p − i·d) ≡ 0 (mod s), i = i0(r) + i'·s/gcd(s, d), which read
 * y row h' + (r + p − i0·d)/s − i'·d/gcd(s, d). Each workgroup works in one phase (rh, rw), so
 * its k loop visits only the taps that contribute: a stride-2 transposed convolution costs what
 * the matching convolution costs, not 4× (zero insertion) and without col2im's K²-sized buffer.
 * The phase's first tap, tap count and row offset are worked out in the shader from the stride,
 * dilation, padding and kernel size (uniform per workgroup).
 *
 * Tiling is the product kernels' register blocking (`matmul.ts`): a workgroup of 8 lanes owns a
 * TM×(8·TN) tile of C, each lane a TM×TN block of accumulators (vec4 fma), TN = 8 (4 for 32 columns
 * or fewer). With subgroups (the `subgroup` family) TM = 32 (16 when M ≤ 16) and lane l loads A
 * rows l, l + 8, …, handed to every lane by `subgroupBroadcast`; otherwise each lane loads its TM
 * A values and TM shrinks to 8, 4, 2 or 1 to fit small M (a transposed convolution to one channel
 * has M = 1). B is gathered per lane (TN loads per k) with the bounds check as a select; each
 * gathered value serves TM rows, so TM sets the gathers per multiply-add. On lavapipe (a loaded
 * machine, minimum of 9 interleaved runs, the ops suite's 3×3 layer) TM = 32 against 16: output
 * 29 ms against 35–39, input adjoint 25–28 against 38–44, weight adjoint 28 against 33, level with
 * a dense product of the same shape (26–27 ms); TM = 64 was slower for two of the three.
 *
 * Pipelines are specialised on the tile shape, the subgroup family and the phased (input) form;
 * every size, stride and offset travels in the parameter words.
 */
import type { KernelArg } from '../../backend.js';
import { FluxionError } from '../../errors.js';
import type { ConvParams } from '../../registry.js';
import { bufferOf, type KernelContext } from './context.js';
import { MAIN, PARAMS_DECL, storageDecl, wgslType } from './wgsl.js';

/** Lanes per workgroup (one subgroup). */
const LANES = 8;
/** Products with at most this many columns use 4 columns per lane. */
const NARROW_COLUMNS = 32;

// Parameter words.
const W = {
  M: 0,
  NC: 1,
  KA: 2,
  KB: 3,
  KC: 4,
  V: 5,
  WD: 6,
  TILES_N: 7,
  TILES_M: 8,
  PHASES: 9,
  A_OFF: 10,
  AM: 11,
  AA: 12,
  AB: 13,
  AC: 14,
  B_OFF: 15,
  BU: 16,
  BA: 17,
  BH: 18,
  BW: 19,
  HV: 20,
  H0: 21,
  HB: 22,
  WV: 23,
  W0: 24,
  WB: 25,
  B_H: 26,
  B_W: 27,
  O_OFF: 28,
  OU: 29,
  OM: 30,
  OV: 31,
  OW: 32,
  AG: 33,
  BG: 34,
  OG: 35,
  GROUPS: 36,
  V_LIM: 37,
  W_LIM: 38,
  // Phased (input) form, per axis h then w: stride, dilation, padding, kernel, tap step
  // s/gcd(s, d), row step d/gcd(s, d), result extent, A's tap stride, result's stride.
  PHASE_H: 40,
  PHASE_W: 49,
} as const;
const PHASE_FIELDS = 9;

/** WGSL of the phase set-up along one axis (`h` or `w`), overriding the unphased defaults. */
function phaseCode(axis: 'h' | 'w'): string {
  const b = axis === 'h' ? W.PHASE_H : W.PHASE_W;
  const [kx, h0, hb, ab, lim] =
    axis === 'h' ? ['KB', 'h0', 'hb', 'ab', 'vLim'] : ['KC', 'w0', 'wb', 'ac', 'wLim'];
  const r = `r${axis}`;
  return `{
    let s = p(${b}u); let d = p(${b + 1}u); let pad = p(${b + 2}u); let kk = p(${b + 3}u);
    let step = p(${b + 4}u); let extent = p(${b + 6}u);
    var i0 = kk;
    for (var i = 0u; i < min(kk, step); i++) {
      let q = i32(${r} + pad) - i32(i * d);
      if (((q % i32(s)) + i32(s)) % i32(s) == 0) { i0 = i; break; }
    }
    let some = i0 < kk;
    ${kx} = select(0u, (kk - i0 + step - 1u) / step, some);
    ${h0} = select(0, (i32(${r} + pad) - i32(i0 * d)) / i32(s), some);
    ${hb} = -i32(p(${b + 5}u));
    ${ab} = step * p(${b + 7}u);
    aOff += select(0u, i0 * p(${b + 7}u), some);
    oOff += ${r} * p(${b + 8}u);
    ${lim} = select(0u, (extent - ${r} + s - 1u) / s, ${r} < extent);
  }`;
}

/** Source of the implicit-GEMM kernel. */
function convSource(subgroup: boolean, TM: number, TN: number, phased: boolean): string {
  const V = 'vec4<f32>';
  const lines: string[] = [];
  const cols = [...Array(TN).keys()];
  const rows = [...Array(TM).keys()];
  for (const i of rows) for (let j4 = 0; j4 < TN / 4; j4++) lines.push(`var c${i}_${j4} = ${V}();`);
  if (subgroup) {
    for (let q = 0; q < TM / LANES; q++)
      lines.push(`let ra${q} = aOff + min(row0 + lid + ${q * LANES}u, M - 1u) * p(${W.AM}u);`);
  } else {
    for (const i of rows) lines.push(`let ra${i} = aOff + min(row0 + ${i}u, M - 1u) * p(${W.AM}u);`);
  }
  for (const j of cols) {
    lines.push(`let cc${j} = min(col0 + ${j}u, NC - 1u);
  let cu${j} = cc${j} / vw; let cv${j} = (cc${j} - cu${j} * vw) / wd; let cw${j} = cc${j} - cu${j} * vw - cv${j} * wd;
  let hc${j} = i32(cv${j} * p(${W.HV}u)) + h0; let wc${j} = i32(cw${j} * p(${W.WV}u)) + w0;
  let ca${j} = bOff + i32(cu${j} * p(${W.BU}u)) + hc${j} * bh + wc${j} * bw;
  let ok${j} = col0 + ${j}u < NC && cv${j} < vLim && cw${j} < wLim;
  let oa${j} = oOff + cu${j} * p(${W.OU}u) + cv${j} * p(${W.OV}u) + cw${j} * p(${W.OW}u);`);
  }
  const inner: string[] = [];
  if (subgroup) {
    for (let q = 0; q < TM / LANES; q++) inner.push(`let av${q} = A[ra${q} + aK];`);
  } else {
    for (const i of rows) inner.push(`let a${i} = A[ra${i} + aK];`);
  }
  for (const j of cols) {
    inner.push(
      `let in${j} = inH${j} && u32(wc${j} + wk) < BW; let b${j} = select(0.0, B[u32(select(0, ca${j} + bK, in${j}))], in${j});`,
    );
  }
  for (let j4 = 0; j4 < TN / 4; j4++)
    inner.push(`let bv${j4} = ${V}(${[0, 1, 2, 3].map((jj) => `b${4 * j4 + jj}`).join(', ')});`);
  for (const i of rows) {
    const a = subgroup ? `subgroupBroadcast(av${Math.floor(i / LANES)}, ${i % LANES}u)` : `a${i}`;
    inner.push(`let x${i} = ${V}(${a});`);
    for (let j4 = 0; j4 < TN / 4; j4++) inner.push(`c${i}_${j4} = fma(x${i}, bv${j4}, c${i}_${j4});`);
  }
  const stores: string[] = [];
  for (const i of rows) {
    for (const j of cols) {
      stores.push(
        `if (row0 + ${i}u < M && ok${j}) { C[oa${j} + (row0 + ${i}u) * p(${W.OM}u)] = c${i}_${j >> 2}[${j & 3}]; }`,
      );
    }
  }
  return `${subgroup ? 'enable subgroups;\n' : ''}${PARAMS_DECL}
${storageDecl(1, 'A', 'f32', false)}
${storageDecl(2, 'B', 'f32', false)}
${storageDecl(3, 'C', 'f32', true)}
fn ip(i: u32) -> i32 { return bitcast<i32>(p(i)); }
@compute @workgroup_size(${LANES})
${MAIN}
  let wg = workgroupIndex(wid, nwg);
  let tn = wg % p(${W.TILES_N}u);
  let r1 = wg / p(${W.TILES_N}u);
  let tm = r1 % p(${W.TILES_M}u);
  let r2 = r1 / p(${W.TILES_M}u);
  let grp = r2 % p(${W.GROUPS}u);
  let phase = r2 / p(${W.GROUPS}u);
  if (phase >= p(${W.PHASES}u)) { return; }
  let M = p(${W.M}u); let NC = p(${W.NC}u); let KA = p(${W.KA}u);
  var KB = p(${W.KB}u); var KC = p(${W.KC}u);
  var aOff = p(${W.A_OFF}u) + grp * p(${W.AG}u);
  var ab = p(${W.AB}u); var ac = p(${W.AC}u);
  var h0 = ip(${W.H0}u); var hb = ip(${W.HB}u); var w0 = ip(${W.W0}u); var wb = ip(${W.WB}u);
  var oOff = p(${W.O_OFF}u) + grp * p(${W.OG}u);
  var vLim = p(${W.V_LIM}u); var wLim = p(${W.W_LIM}u);
  ${
    phased
      ? `let rh = phase / p(${W.PHASE_W}u); let rw = phase % p(${W.PHASE_W}u);
  ${phaseCode('h')}
  ${phaseCode('w')}`
      : ''
  }
  let bOff = i32(p(${W.B_OFF}u) + grp * p(${W.BG}u));
  let bh = ip(${W.BH}u); let bw = ip(${W.BW}u);
  let BH = p(${W.B_H}u); let BW = p(${W.B_W}u);
  let wd = p(${W.WD}u); let vw = p(${W.V}u) * wd;
  let row0 = tm * ${TM}u;
  let col0 = (tn * ${LANES}u + lid) * ${TN}u;
  ${lines.join('\n  ')}
  for (var ka = 0u; ka < KA; ka++) {
    let aKa = ka * p(${W.AA}u);
    let bKa = i32(ka * p(${W.BA}u));
    for (var kb = 0u; kb < KB; kb++) {
      let hk = i32(kb) * hb;
      let aKb = aKa + kb * ab;
      let bKb = bKa + hk * bh;
      ${cols.map((j) => `let inH${j} = u32(hc${j} + hk) < BH;`).join('\n      ')}
      for (var kc = 0u; kc < KC; kc++) {
        let wk = i32(kc) * wb;
        let aK = aKb + kc * ac;
        let bK = bKb + wk * bw;
        ${inner.join('\n        ')}
      }
    }
  }
  ${stores.join('\n  ')}
}`;
}

/** `value` as the u32 word a shader reads back with `bitcast<i32>`. */
const i32Word = (value: number): number => value >>> 0;

/**
 * Records one `conv` (see the module comment). Parameter words: see `W`.
 */
export function runConv(
  ctx: KernelContext,
  [first, second]: readonly KernelArg[],
  out: KernelArg,
  params: ConvParams,
): void {
  const t = wgslType('conv', first.dtype);
  if (t !== 'f32') throw new FluxionError('conv', `unsupported dtype ${first.dtype}`);
  const { result, stride, padding, dilation, groups: G } = params;
  const words: number[] = new Array(W.PHASE_W + PHASE_FIELDS).fill(0);
  const set = (entries: Partial<Record<keyof typeof W, number>>) => {
    for (const [k, v] of Object.entries(entries)) words[W[k as keyof typeof W]] = v;
  };
  const os = [out.shape[1] * out.shape[2] * out.shape[3], out.shape[2] * out.shape[3], out.shape[3], 1];
  let phases = 1;
  let a: KernelArg;
  let b: KernelArg;
  if (result === 'output' || result === 'weight') {
    const x = first;
    const [N, C, H, Wd] = x.shape;
    const Cg = C / G;
    const xs = x.strides;
    // B is the image in both.
    b = x;
    set({ B_OFF: x.offset, BH: xs[2], BW: xs[3], B_H: H, B_W: Wd, BG: Cg * xs[1] });
    set({ H0: i32Word(-padding[0]), W0: i32Word(-padding[1]), O_OFF: out.offset });
    if (result === 'output') {
      const w = second;
      const [O, , KH, KW] = w.shape;
      const [OH, OW] = params.size;
      const Og = O / G;
      a = w;
      set({ M: Og, NC: N * OH * OW, KA: Cg, KB: KH, KC: KW, V: OH, WD: OW });
      set({ A_OFF: w.offset, AM: w.strides[0], AA: w.strides[1], AB: w.strides[2], AC: w.strides[3] });
      set({ AG: Og * w.strides[0], BU: xs[0], BA: xs[1], HV: stride[0], WV: stride[1] });
      set({ HB: dilation[0], WB: dilation[1], OU: os[0], OM: os[1], OV: os[2], OW: 1 });
      set({ OG: Og * os[1], V_LIM: OH, W_LIM: OW });
    } else {
      const y = second;
      const [, O, OH, OW] = y.shape;
      const [KH, KW] = params.size;
      const Og = O / G;
      a = y;
      set({ M: Og, NC: Cg * KH * KW, KA: N, KB: OH, KC: OW, V: KH, WD: KW });
      set({ A_OFF: y.offset, AM: y.strides[1], AA: y.strides[0], AB: y.strides[2], AC: y.strides[3] });
      set({ AG: Og * y.strides[1], BU: xs[1], BA: xs[0], HV: dilation[0], WV: dilation[1] });
      set({ HB: stride[0], WB: stride[1], OU: os[1], OM: os[0], OV: os[2], OW: 1 });
      set({ OG: Og * os[0], V_LIM: KH, W_LIM: KW });
    }
  } else {
    const [y, w] = [first, second];
    const [N, O, OH, OW] = y.shape;
    const [, Cg, KH, KW] = w.shape;
    const [H, Wd] = params.size;
    const Og = O / G;
    const [V, WD] = [Math.ceil(H / stride[0]), Math.ceil(Wd / stride[1])];
    a = w;
    b = y;
    phases = stride[0] * stride[1];
    set({ M: Cg, NC: N * V * WD, KA: Og, KB: KH, KC: KW, V, WD });
    set({ A_OFF: w.offset, AM: w.strides[1], AA: w.strides[0], AG: Og * w.strides[0] });
    set({ B_OFF: y.offset, BU: y.strides[0], BA: y.strides[1], BH: y.strides[2], BW: y.strides[3] });
    set({ HV: 1, WV: 1, B_H: OH, B_W: OW, BG: Og * y.strides[1] });
    set({ O_OFF: out.offset, OU: os[0], OM: os[1], OV: stride[0] * os[2], OW: stride[1], OG: Cg * os[1] });
    [0, 1].forEach((axis) => {
      const s = stride[axis];
      const d = dilation[axis];
      const g = gcd(s, d);
      const fields = [s, d, padding[axis], w.shape[2 + axis], s / g, d / g, params.size[axis]];
      fields.push(w.strides[2 + axis], os[2 + axis]);
      fields.forEach((v, i) => {
        words[(axis === 0 ? W.PHASE_H : W.PHASE_W) + i] = v;
      });
    });
  }
  const M = words[W.M];
  const NC = words[W.NC];
  const subgroup = ctx.matmulVariant === 'subgroup' && ctx.subgroups8 && M > LANES;
  const TM = subgroup ? (M > 2 * LANES ? 4 * LANES : 2 * LANES) : M >= 8 ? 8 : M >= 4 ? 4 : M >= 2 ? 2 : 1;
  const TN = NC <= NARROW_COLUMNS ? 4 : 8;
  const tiles = [Math.ceil(NC / (LANES * TN)), Math.ceil(M / TM)];
  set({ TILES_N: tiles[0], TILES_M: tiles[1], PHASES: phases, GROUPS: G });
  const phased = result === 'input';
  ctx.dispatch({
    op: 'conv',
    key: `conv|${subgroup ? 'subgroup' : 'register'}|${TM}x${TN}${phased ? '|phased' : ''}`,
    source: () => convSource(subgroup, TM, TN, phased),
    inputs: 2,
    outputs: 1,
    buffers: [bufferOf(a), bufferOf(b), bufferOf(out)],
    params: words,
    workgroups: tiles[0] * tiles[1] * G * phases,
  });
}

function gcd(a: number, b: number): number {
  return b === 0 ? a : gcd(b, a % b);
}
