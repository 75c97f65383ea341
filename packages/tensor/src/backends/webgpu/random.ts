/**
 * Random numbers: Philox4x32-10 in WGSL, one invocation per element, bit-identical to the CPU
 * backend's `philox.ts` (same key, counter `offset + i` split into low and high words, the same
 * 32×32→64-bit products from 16-bit halves since WGSL has no 64-bit integers).
 *
 * - uniform: `(w0 >> 8) · 2⁻²⁴`, exact in f32, so bit-identical to the CPU backend;
 * - randint: `low + w0 mod (high − low)`, bit-identical;
 * - normal: Box–Muller `sqrt(−2 ln u1) · cos(2π u2)`. ln u1 near 1 goes through a series (the
 *   built-in log has only absolute accuracy there) and the cosine is a polynomial of its own
 *   (`cos2piF` in `wgsl.ts`: the built-in's error may be 2⁻¹¹ by the WGSL spec), so values agree
 *   with the CPU backend to a few f32 roundings on any adapter.
 */
import type { KernelArg } from '../../backend.js';
import type { OpParamMap } from '../../registry.js';
import { bufferOf, type KernelContext } from './context.js';
import { helpersFor, MAIN, PARAMS_DECL, storageDecl } from './wgsl.js';

const WORKGROUP = 64;

const PHILOX = /* wgsl */ `
fn mulhi(a: u32, b: u32) -> u32 {
  let al = a & 0xffffu; let ah = a >> 16u;
  let bl = b & 0xffffu; let bh = b >> 16u;
  let ll = al * bl; let lh = al * bh; let hl = ah * bl;
  let mid = (ll >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
  return ah * bh + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
}
fn philox(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
  var c = counter;
  var k = key;
  for (var round = 0; round < 10; round++) {
    let hi0 = mulhi(0xd2511f53u, c.x); let lo0 = 0xd2511f53u * c.x;
    let hi1 = mulhi(0xcd9e8d57u, c.z); let lo1 = 0xcd9e8d57u * c.z;
    c = vec4<u32>(hi1 ^ c.y ^ k.x, lo1, hi0 ^ c.w ^ k.y, lo0);
    k = k + vec2<u32>(0x9e3779b9u, 0xbb67ae85u);
  }
  return c;
}`;

const DISTRIBUTIONS = {
  uniform: { type: 'f32', expr: 'f32(w.x >> 8u) * 5.9604644775390625e-8' },
  randint: { type: 'i32', expr: 'bitcast<i32>(p(6u) + w.x % p(7u))' },
  normal: {
    type: 'f32',
    // u1 = 1 − d with d exact; ln u1 = log1p(−d). cos(2π u2) = −cos(2π (u2 − ½)), by cos2piF
    // rather than the built-in cos, whose error WGSL bounds only by 2⁻¹¹ (SwiftShader's is ~10⁻⁴).
    expr: `sqrt(-2.0 * log1pF(-(f32(0xffffffu - (w.x >> 8u)) * 5.9604644775390625e-8))) * -cos2piF(f32(w.y >> 8u) * 5.9604644775390625e-8 - 0.5)`,
  },
} as const;

function randomSource(distribution: keyof typeof DISTRIBUTIONS): string {
  const { type, expr } = DISTRIBUTIONS[distribution];
  return `${PARAMS_DECL}
${storageDecl(1, 'out', type, true)}
${PHILOX}
${helpersFor(expr)}
@compute @workgroup_size(${WORKGROUP})
${MAIN}
  let i = workgroupIndex(wid, nwg) * ${WORKGROUP}u + lid;
  if (i >= p(0u)) { return; }
  let lo = p(4u) + i;
  let hi = p(5u) + select(0u, 1u, lo < i);
  let w = philox(vec4<u32>(lo, hi, 0u, 0u), vec2<u32>(p(2u), p(3u)));
  out[p(1u) + i] = ${expr};
}`;
}

/**
 * `random`: parameter words 0 count, 1 output offset, 2/3 key, 4/5 stream offset (low, high),
 * 6 low (int32 bits), 7 range.
 */
export function randomKernel(
  ctx: KernelContext,
  _inputs: readonly KernelArg[],
  out: KernelArg,
  params: OpParamMap['random'],
): void {
  const count = out.shape.reduce((a, b) => a * b, 1);
  const { distribution } = params;
  const words = [
    count,
    out.offset,
    params.key[0] >>> 0,
    params.key[1] >>> 0,
    params.offset >>> 0,
    Math.floor(params.offset / 4294967296) >>> 0,
    params.low >>> 0,
    (params.high - params.low) >>> 0,
  ];
  ctx.dispatch({
    op: 'random',
    key: `random|${distribution}`,
    source: () => randomSource(distribution),
    inputs: 0,
    outputs: 1,
    buffers: [bufferOf(out)],
    params: words,
    workgroups: Math.ceil(count / WORKGROUP),
  });
}
