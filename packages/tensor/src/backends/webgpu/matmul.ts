/**
 * Batched matrix multiplication C = A·B for any M, N, K, with batch dimensions (already broadcast,
 * possibly stride 0) and operands read in place through their strides, so the transposes of the
 * backward pass (Aᵀ·B, A·Bᵀ) cost no copy.
 *
 * Three kernel families; the backend picks one per adapter by a measured trial
 * ({@link chooseMatmulVariant}), and thin products (at most 4 columns, or one row) and int32 take a
 * fourth, `simple` kernel with one invocation per output:
 *
 * - `subgroup` (register blocking + subgroup broadcast, no workgroup memory): a workgroup is one
 *   subgroup of 8 invocations that owns a 16×64 tile of C; each invocation accumulates a 16×8
 *   block in registers. Per step of k, invocation l loads rows l and l+8 of the A column and
 *   `subgroupBroadcast` hands every row value to all lanes, so A costs 2 loads per lane instead of
 *   16; each lane loads its own 8 values of B (two vec4 loads when B rows are contiguous; 4
 *   values and a 16×32 tile for products of at most 32 columns). On a
 *   CPU adapter (lavapipe) every lane's load is a gather and barriers are expensive, so this wins.
 *   (Inside a loop lavapipe gathers even addresses that are the same for every lane: 67 M loads
 *   took 20 ms whether the 8 lanes read one address, neighbours or strided ones. So tiles that
 *   make B or A "uniform" per workgroup gain nothing there; a subgroup broadcast is the cheap way
 *   to share a value.)
 * - `register`: the same tiling (8×8 per invocation) without subgroups, each lane loading its A.
 * - `shared`: the classic GPU kernel: 16×16 invocations, a 64×64 tile of C, 4×4 per invocation,
 *   A and B staged through workgroup memory 16 values of k at a time, loads arranged so that
 *   neighbouring invocations read neighbouring addresses whichever axis of the operand is
 *   contiguous.
 *
 * Tall products ({@link PACK_MIN_ROWS}) whose B is contiguous along k copy it to `[K, N]` first
 * for the register kernels, which read an n-contiguous B faster.
 *
 * Pipelines are specialised on the operand layout only (which axis of B is contiguous and
 * 16-byte aligned: vec4 loads along n, vec4 loads along k, or scalar loads; which axis of A and B
 * is contiguous for the shared kernel) and on whether a bias is added, never on shapes.
 *
 * The bias epilogue: with a third input (a `[N]` bias, any stride), every kernel adds the
 * column's bias to each value as it stores it, so a Linear layer's `x · wᵀ + b` is one kernel
 * and one pass over C rather than a product and a broadcast add.
 */
import type { KernelArg } from '../../backend.js';
import { FluxionError } from '../../errors.js';
import { sizeOf } from '../../shape.js';
import { bufferOf, type KernelContext, type MatmulVariant } from './context.js';
import { copyInto } from './elementwise.js';
import { checkRank, mergeAxes, putList } from './layout.js';
import {
  f32ToBits,
  helpersFor,
  MAIN,
  PARAMS_DECL,
  storageDecl,
  stridedOffsetCode,
  wgslType,
} from './wgsl.js';

/** Lanes of the register kernels (one subgroup). */
const LANES = 8;
/** Columns of C per lane in the register kernels. */
const TN = 8;
/**
 * Products with at most this many columns take `TN_NARROW` columns per lane (a 32-column tile
 * instead of 64), so fewer lanes compute past N. On lavapipe, the VAE's layers into and out of its
 * 20-wide latent: a 128×128 by 128×20 product with bias in 211 µs instead of 339, 128×256 by
 * 256×32 in 281 instead of 493 (same values, bit for bit).
 */
const NARROW_COLUMNS = 32;
const TN_NARROW = 4;
/** Rows of C per workgroup in the register kernels. */
const ROWS = { subgroup: 16, register: 8 } as const;
/** Shared-memory kernel: tile of C per workgroup, and k per stage. */
const TILE = 64;
const TILE_K = 16;
/** Invocations per workgroup of the simple kernel (one output each). */
const SIMPLE_WORKGROUP = 64;
/**
 * Products with at most this many columns take the simple kernel, as do single rows (measured on
 * lavapipe: 1024×1×1024 in 1.3 ms instead of 4.9, 128×4×128 in 0.15 instead of 0.5; a few rows
 * times many columns, 4×784×128, stays faster in the register kernels).
 */
const THIN_COLUMNS = 4;
/**
 * Products with at least this many rows whose B is contiguous along k (`x·Wᵀ`, `A·Bᵀ`) first copy
 * B to a contiguous `[K, N]` scratch buffer (the 4×4-block transposing copy of `elementwise.ts`)
 * for the register kernels. Reading B along k makes each workgroup stream 64 rows of B at once,
 * which lavapipe serves more slowly. Interleaved in one process on lavapipe: A·Bᵀ at 1024 went
 * from 33.6 to 45.6 GFLOP/s with the copy (47.8 with B already `[K, N]`), at 512 from 35.6 to
 * 42.9; with 128 rows (a 128×784 by 784×256 layer) the copy costs what it saves (32.3 against
 * 33.2).
 */
const PACK_MIN_ROWS = 512;

type BMode = 'n4' | 'k4' | 'scalar';
type ScalarType = 'f32' | 'i32';

const fmaCode = (t: ScalarType, a: string, b: string, c: string) =>
  t === 'f32' ? `fma(${a}, ${b}, ${c})` : `${a} * ${b} + ${c}`;

/** Parameter words of the bias: its offset and its stride. */
const BIAS_OFFSET_WORD = 15;
const BIAS_STRIDE_WORD = 40;

/** Declarations of the optional bias (binding 3) and of C (binding 3, or 4 after a bias). */
const outputDecls = (t: ScalarType, bias: boolean): string =>
  bias
    ? `${storageDecl(3, 'Bias', t, false)}\n${storageDecl(4, 'C', t, true)}`
    : storageDecl(3, 'C', t, true);

/** The bias of column `col` (an expression). */
const biasOf = (col: string) => `Bias[p(${BIAS_OFFSET_WORD}u) + (${col}) * p(${BIAS_STRIDE_WORD}u)]`;

/** Workgroup → (tile of n, tile of m, batch) and the batch's base offsets. */
function prologue(): string {
  return `let M = p(0u); let N = p(1u); let K = p(2u);
  let w = workgroupIndex(wid, nwg);
  let tn = w % p(11u);
  let rest = w / p(11u);
  let tm = rest % p(12u);
  let batch = rest / p(12u);
  if (batch >= p(3u)) { return; }
  ${stridedOffsetCode({ flat: 'batch', rank: 'p(4u)', shapeBase: 16 }, [
    { name: 'aBase', offsetWord: 5, strideBase: 24 },
    { name: 'bBase', offsetWord: 6, strideBase: 32 },
  ])}
  let cBase = p(13u) + batch * M * N;
  let sam = p(7u); let sak = p(8u); let sbk = p(9u); let sbn = p(10u);`;
}

/** Source of the `subgroup` and `register` kernels. */
function registerSource(
  t: ScalarType,
  variant: 'subgroup' | 'register',
  bMode: BMode,
  bias: boolean,
  TN: number,
): string {
  const TM = ROWS[variant];
  const V = `vec4<${t}>`;
  const ku = bMode === 'k4' ? 4 : 2;
  const lines: string[] = [];
  const step = (kuStep: number, vectorB: boolean): string[] => {
    const s: string[] = [];
    // A values a(i, kk)
    for (let kk = 0; kk < kuStep; kk++) {
      if (variant === 'subgroup') {
        for (let q = 0; q < TM / LANES; q++) s.push(`let av${q}_${kk} = A[ra${q} + (k + ${kk}u) * sak];`);
      } else {
        for (let i = 0; i < TM; i++) s.push(`let a${i}_${kk} = A[ra${i} + (k + ${kk}u) * sak];`);
      }
    }
    // B values b(kk, j4) as vectors
    for (let kk = 0; kk < kuStep; kk++) {
      for (let j4 = 0; j4 < TN / 4; j4++) {
        const cols = [0, 1, 2, 3].map((jj) => 4 * j4 + jj);
        if (vectorB && bMode === 'n4') s.push(`let b${kk}_${j4} = B[cb + (k + ${kk}u) * sbk4 + ${j4}u];`);
        else if (vectorB && bMode === 'k4') {
          if (kk === 0) for (const j of cols) s.push(`let bc${j} = B[(cb${j} + k) / 4u];`);
          s.push(`let b${kk}_${j4} = ${V}(${cols.map((j) => `bc${j}[${kk}]`).join(', ')});`);
        } else {
          s.push(
            `let b${kk}_${j4} = ${V}(${cols.map((j) => `loadB(cb${j} + (k + ${kk}u) * sbk)`).join(', ')});`,
          );
        }
      }
    }
    for (let kk = 0; kk < kuStep; kk++) {
      for (let i = 0; i < TM; i++) {
        const a =
          variant === 'subgroup'
            ? `subgroupBroadcast(av${Math.floor(i / LANES)}_${kk}, ${i % LANES}u)`
            : `a${i}_${kk}`;
        s.push(`let x${i}_${kk} = ${V}(${a});`);
        for (let j4 = 0; j4 < TN / 4; j4++)
          s.push(`c${i}_${j4} = ${fmaCode(t, `x${i}_${kk}`, `b${kk}_${j4}`, `c${i}_${j4}`)};`);
      }
    }
    return s;
  };
  for (let i = 0; i < TM; i++) for (let j4 = 0; j4 < TN / 4; j4++) lines.push(`var c${i}_${j4} = ${V}();`);
  if (variant === 'subgroup') {
    for (let q = 0; q < TM / LANES; q++)
      lines.push(`let ra${q} = aBase + min(row0 + lid + ${q * LANES}u, M - 1u) * sam;`);
  } else {
    for (let i = 0; i < TM; i++) lines.push(`let ra${i} = aBase + min(row0 + ${i}u, M - 1u) * sam;`);
  }
  if (bMode === 'n4') lines.push('let cb = (bBase + col0) / 4u; let sbk4 = sbk / 4u;');
  for (let j = 0; j < TN; j++) lines.push(`let cb${j} = bBase + min(col0 + ${j}u, N - 1u) * sbn;`);
  const vectorStep = step(ku, bMode !== 'scalar');
  const tail = ku > 1 ? `for (var k = kMain; k < K; k++) {\n    ${step(1, false).join('\n    ')}\n  }` : '';
  const stores: string[] = [];
  if (bias)
    for (let j = 0; j < TN; j++) stores.push(`let bias${j} = ${biasOf(`min(col0 + ${j}u, N - 1u)`)};`);
  for (let i = 0; i < TM; i++) {
    for (let j = 0; j < TN; j++) {
      const value = `c${i}_${j >> 2}[${j & 3}]${bias ? ` + bias${j}` : ''}`;
      stores.push(
        `if (row0 + ${i}u < M && col0 + ${j}u < N) { C[cBase + (row0 + ${i}u) * N + col0 + ${j}u] = ${value}; }`,
      );
    }
  }
  const bDecl = bMode === 'scalar' ? storageDecl(2, 'B', t, false) : storageDecl(2, 'B', `vec4<${t}>`, false);
  const loadB =
    bMode === 'scalar'
      ? `fn loadB(i: u32) -> ${t} { return B[i]; }`
      : `fn loadB(i: u32) -> ${t} { return B[i >> 2u][i & 3u]; }`;
  return `${variant === 'subgroup' ? 'enable subgroups;\n' : ''}${PARAMS_DECL}
${storageDecl(1, 'A', t, false)}
${bDecl}
${outputDecls(t, bias)}
${loadB}
@compute @workgroup_size(${LANES})
${MAIN}
  ${prologue()}
  let row0 = tm * ${TM}u;
  let col0 = (tn * ${LANES}u + lid) * ${TN}u;
  ${lines.join('\n  ')}
  let kMain = K - K % ${ku}u;
  for (var k = 0u; k < kMain; k += ${ku}u) {
    ${vectorStep.join('\n    ')}
  }
  ${tail}
  ${stores.join('\n  ')}
}`;
}

/** Source of the `shared` (workgroup-memory tiled) kernel. */
function sharedSource(t: ScalarType, aContiguousK: boolean, bContiguousN: boolean, bias: boolean): string {
  const threads = 256;
  const perThread = (TILE * TILE_K) / threads;
  const per = 4; // outputs per thread along each axis
  const loads = (name: 'A' | 'B'): string => {
    const s: string[] = [];
    for (let r = 0; r < perThread; r++) {
      s.push(`{
      let e = lid + ${r * threads}u;`);
      if (name === 'A') {
        s.push(
          aContiguousK
            ? `let m = e / ${TILE_K}u; let kk = e % ${TILE_K}u;`
            : `let m = e % ${TILE}u; let kk = e / ${TILE}u;`,
        );
        s.push(`let gm = row0 + m; let gk = k0 + kk;
      As[m * ${TILE_K}u + kk] = select(${t}(0), A[aBase + min(gm, M - 1u) * sam + min(gk, K - 1u) * sak], gm < M && gk < K);
    }`);
      } else {
        s.push(
          bContiguousN
            ? `let n = e % ${TILE}u; let kk = e / ${TILE}u;`
            : `let n = e / ${TILE_K}u; let kk = e % ${TILE_K}u;`,
        );
        s.push(`let gn = col0 + n; let gk = k0 + kk;
      Bs[kk * ${TILE}u + n] = select(${t}(0), B[bBase + min(gk, K - 1u) * sbk + min(gn, N - 1u) * sbn], gn < N && gk < K);
    }`);
      }
    }
    return s.join('\n    ');
  };
  const acc: string[] = [];
  const inner: string[] = [];
  const stores: string[] = [];
  for (let i = 0; i < per; i++) for (let j = 0; j < per; j++) acc.push(`var c${i}_${j} = ${t}(0);`);
  for (let i = 0; i < per; i++) inner.push(`let a${i} = As[(ty + ${16 * i}u) * ${TILE_K}u + kk];`);
  for (let j = 0; j < per; j++) inner.push(`let b${j} = Bs[kk * ${TILE}u + tx + ${16 * j}u];`);
  for (let i = 0; i < per; i++)
    for (let j = 0; j < per; j++) inner.push(`c${i}_${j} = ${fmaCode(t, `a${i}`, `b${j}`, `c${i}_${j}`)};`);
  for (let i = 0; i < per; i++) {
    for (let j = 0; j < per; j++) {
      stores.push(`{
    let r = row0 + ty + ${16 * i}u; let c = col0 + tx + ${16 * j}u;
    if (r < M && c < N) { C[cBase + r * N + c] = c${i}_${j}${bias ? ` + ${biasOf('c')}` : ''}; }
  }`);
    }
  }
  return `${PARAMS_DECL}
${storageDecl(1, 'A', t, false)}
${storageDecl(2, 'B', t, false)}
${outputDecls(t, bias)}
var<workgroup> As: array<${t}, ${TILE * TILE_K}>;
var<workgroup> Bs: array<${t}, ${TILE * TILE_K}>;
@compute @workgroup_size(${threads})
${MAIN}
  ${prologue()}
  let row0 = tm * ${TILE}u;
  let col0 = tn * ${TILE}u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  ${acc.join('\n  ')}
  for (var k0 = 0u; k0 < K; k0 += ${TILE_K}u) {
    ${loads('A')}
    ${loads('B')}
    workgroupBarrier();
    for (var kk = 0u; kk < ${TILE_K}u; kk++) {
      ${inner.join('\n      ')}
    }
    workgroupBarrier();
  }
  ${stores.join('\n  ')}
}`;
}

/**
 * Source of the `simple` kernel: one invocation per output (the flat index split into row and
 * column), a plain loop over k. It serves int32 (rare: counts, one-hot products; LLVM-based
 * adapters take seconds to compile the unrolled register-blocked kernels for integers) and thin
 * float products, a matrix times a vector or a row times a matrix, where the register kernels'
 * 16×64 tiles would be almost all padding.
 */
function simpleSource(t: ScalarType, bias: boolean): string {
  return `${PARAMS_DECL}
${storageDecl(1, 'A', t, false)}
${storageDecl(2, 'B', t, false)}
${outputDecls(t, bias)}
${helpersFor('fastDiv(')}
@compute @workgroup_size(${SIMPLE_WORKGROUP})
${MAIN}
  ${prologue()}
  let flat = tn * ${SIMPLE_WORKGROUP}u + lid;
  if (flat >= M * N) { return; }
  let row = fastDiv(flat, N, bitcast<f32>(p(14u)));
  let col = flat - row * N;
  var acc = ${t}(0);
  for (var k = 0u; k < K; k++) {
    acc = ${fmaCode(t, `A[aBase + row * sam + k * sak]`, `B[bBase + k * sbk + col * sbn]`, 'acc')};
  }
  C[cBase + flat] = acc${bias ? ` + ${biasOf('col')}` : ''};
}`;
}

/** Whether every value is a multiple of 4 (16-byte alignment of f32/i32 offsets). */
const aligned4 = (...values: number[]) => values.every((v) => v % 4 === 0);

/**
 * Records C = A·B (+ bias) for the contiguous `out`.
 *
 * Parameter words: 0 M, 1 N, 2 K, 3 batches, 4 batch rank, 5/6 A/B offsets, 7 sam, 8 sak, 9 sbk,
 * 10 sbn, 11/12 tiles along n/m, 13 C offset, 14 1/N, 15 bias offset, 16… batch shape, 24… A
 * batch strides, 32… B batch strides, 40 bias stride.
 */
export function runMatmul(ctx: KernelContext, [a, b, bias]: readonly KernelArg[], out: KernelArg): void {
  const r = a.shape.length;
  const [M, K, N] = [a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]];
  const batchShape = a.shape.slice(0, -2);
  const batch = mergeAxes(batchShape, [a.strides.slice(0, -2), b.strides.slice(0, -2)]);
  checkRank('matmul', batch, a.shape);
  const [sam, sak, sbk, sbn] = [a.strides[r - 2], a.strides[r - 1], b.strides[r - 2], b.strides[r - 1]];
  const t = wgslType('matmul', a.dtype);
  if (t === 'u32') throw new FluxionError('matmul', 'unsupported dtype bool');
  let variant: MatmulVariant = ctx.matmulVariant;
  if (variant === 'subgroup' && !ctx.subgroups8) variant = 'register';
  const withBias = bias !== undefined;
  let key: string;
  let source: () => string;
  let tiles: [number, number];
  if (t === 'i32' || N <= THIN_COLUMNS || M === 1) {
    key = `matmul|simple|${t}`;
    source = () => simpleSource(t, withBias);
    tiles = [Math.ceil((M * N) / SIMPLE_WORKGROUP), 1];
  } else if (variant === 'shared') {
    const aK = sak === 1 || M === 1;
    const bN = sbn === 1 || K === 1;
    key = `matmul|shared|${t}|${aK}|${bN}`;
    source = () => sharedSource(t, aK, bN, withBias);
    tiles = [Math.ceil(N / TILE), Math.ceil(M / TILE)];
  } else if (sbk === 1 && sbn !== 1 && M >= PACK_MIN_ROWS && batch.strides[1].every((s) => s === 0)) {
    // One [K, N] copy of B (shared by every batch), then the product with a contiguous B.
    const packed = ctx.scratch(K * N);
    copyInto(
      ctx,
      'matmul',
      { buffer: b.buffer, dtype: b.dtype, shape: [K, N], strides: [sbk, sbn], offset: b.offset },
      { buffer: packed, dtype: b.dtype, offset: 0, strides: [N, 1] },
    );
    const packedB: KernelArg = {
      buffer: packed,
      dtype: b.dtype,
      shape: b.shape,
      strides: [...b.strides.slice(0, -2), N, 1],
      offset: 0,
    };
    runMatmul(ctx, bias ? [a, packedB, bias] : [a, packedB], out);
    ctx.release(packed);
    return;
  } else {
    const bOffsets = [b.offset, ...batch.strides[1]];
    const bMode: BMode =
      sbn === 1 && aligned4(sbk, ...bOffsets)
        ? 'n4'
        : sbk === 1 && aligned4(sbn, ...bOffsets)
          ? 'k4'
          : 'scalar';
    key = `matmul|${variant}|${t}|${bMode}`;
    const tn = N <= NARROW_COLUMNS ? TN_NARROW : TN;
    key += `|${tn}`;
    source = () => registerSource(t, variant as 'subgroup' | 'register', bMode, withBias, tn);
    tiles = [Math.ceil(N / (LANES * tn)), Math.ceil(M / ROWS[variant])];
  }
  const batches = sizeOf(batch.shape);
  if (withBias) key += '|bias';
  const words: number[] = new Array(BIAS_STRIDE_WORD + 1).fill(0);
  Object.assign(words, [M, N, K, batches, batch.shape.length, a.offset, b.offset, sam, sak, sbk, sbn]);
  words[11] = tiles[0];
  words[12] = tiles[1];
  words[13] = out.offset;
  words[14] = f32ToBits(1 / N);
  if (withBias) {
    words[BIAS_OFFSET_WORD] = bias.offset;
    words[BIAS_STRIDE_WORD] = bias.strides[0];
  }
  putList(words, 16, batch.shape, 1);
  putList(words, 24, batch.strides[0]);
  putList(words, 32, batch.strides[1]);
  ctx.dispatch({
    op: 'matmul',
    key,
    source,
    inputs: withBias ? 3 : 2,
    outputs: 1,
    buffers: withBias
      ? [bufferOf(a), bufferOf(b), bufferOf(bias), bufferOf(out)]
      : [bufferOf(a), bufferOf(b), bufferOf(out)],
    params: words,
    workgroups: tiles[0] * tiles[1] * batches,
  });
}

/** What the trial needs of the backend. */
export interface MatmulTrialHost extends KernelContext {
  matmulVariant: MatmulVariant;
  alloc(dtype: 'float32', size: number): object;
  free(buffer: object): void;
  sync(): Promise<void>;
}

const chosenByAdapter = new Map<string, MatmulVariant>();

/**
 * Times each available matmul family on a 256×256×256 product and keeps the fastest for this
 * adapter (cached per adapter description for the process).
 *
 * @example
 * ```ts
 * backend.matmulVariant = await chooseMatmulVariant(backend, backend.adapterInfo.description);
 * ```
 */
export async function chooseMatmulVariant(host: MatmulTrialHost, adapterKey: string): Promise<MatmulVariant> {
  const cached = chosenByAdapter.get(adapterKey);
  if (cached) return cached;
  const n = 256;
  const candidates: MatmulVariant[] = host.subgroups8
    ? ['subgroup', 'register', 'shared']
    : ['register', 'shared'];
  const buffers = [host.alloc('float32', n * n), host.alloc('float32', n * n), host.alloc('float32', n * n)];
  const arg = (i: number): KernelArg => ({
    buffer: buffers[i],
    dtype: 'float32',
    shape: [n, n],
    strides: [n, 1],
    offset: 0,
  });
  let best: MatmulVariant = candidates[0];
  let bestTime = Number.POSITIVE_INFINITY;
  try {
    for (const variant of candidates) {
      host.matmulVariant = variant;
      runMatmul(host, [arg(0), arg(1)], arg(2)); // compile and warm up
      await host.sync();
      let time = Number.POSITIVE_INFINITY;
      // Up to three timed runs; a variant far behind the best so far stops after one.
      for (let rep = 0; rep < 3 && (rep === 0 || time < 3 * bestTime); rep++) {
        const start = performance.now();
        runMatmul(host, [arg(0), arg(1)], arg(2));
        runMatmul(host, [arg(0), arg(1)], arg(2));
        await host.sync();
        time = Math.min(time, performance.now() - start);
      }
      if (time < bestTime) {
        bestTime = time;
        best = variant;
      }
    }
  } finally {
    for (const buffer of buffers) host.free(buffer);
  }
  chosenByAdapter.set(adapterKey, best);
  return best;
}
