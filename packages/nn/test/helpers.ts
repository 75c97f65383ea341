/**
 * Test helpers for @fluxion/nn: reading tensors as flat number arrays and comparing them with a
 * tolerance, and naive loop references for the convolution and pooling layers.
 */
import { type NestedArray, type Tensor, tensor } from '@fluxion/tensor';
import { expect } from 'vitest';

/** The elements of a tensor as a flat array of numbers. */
export async function values(t: Tensor): Promise<number[]> {
  return Array.from(await t.data(), Number);
}

/** Asserts `actual` ≈ `expected` elementwise: |a − e| ≤ atol + rtol·|e|. */
export async function expectClose(
  actual: Tensor | number[],
  expected: Tensor | number[] | NestedArray,
  { atol = 1e-5, rtol = 1e-4 } = {},
): Promise<void> {
  const a = Array.isArray(actual) ? actual : await values(actual);
  const e = Array.isArray(expected)
    ? (expected as unknown[]).flat(Number.POSITIVE_INFINITY as 1).map(Number)
    : typeof expected === 'object'
      ? await values(expected as Tensor)
      : [Number(expected)];
  expect(a.length).toBe(e.length);
  const bad = a.findIndex((v, i) => !(Math.abs(v - e[i]) <= atol + rtol * Math.abs(e[i])));
  if (bad >= 0) {
    expect.fail(`element ${bad}: got ${a[bad]}, expected ${e[bad]} (atol ${atol}, rtol ${rtol})`);
  }
}

/** A float64 tensor of `shape` with deterministic pseudo-random values in [−1, 1). */
export function seeded(shape: number[], seed: number, dtype: 'float32' | 'float64' = 'float64'): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float64Array(n);
  let s = seed * 9301 + 49297;
  for (let i = 0; i < n; i++) {
    s = (s * 9301 + 49297) % 233280;
    data[i] = (s / 233280) * 2 - 1;
  }
  return tensor(data, shape, { dtype });
}

/** Geometry of a 2-D window, per axis. */
export interface Geometry {
  stride: [number, number];
  padding: [number, number];
  dilation: [number, number];
  groups: number;
}

/** Direct-loop conv2d: `x [N,C,H,W]`, `w [O,C/G,KH,KW]`, optional bias `[O]`; returns flat output and shape. */
export function naiveConv2d(
  x: Float64Array,
  xs: number[],
  w: Float64Array,
  ws: number[],
  b: Float64Array | null,
  g: Geometry,
): { out: number[]; shape: number[] } {
  const [n, c, h, wd] = xs;
  const [o, cg, kh, kw] = ws;
  const oh = Math.floor((h + 2 * g.padding[0] - g.dilation[0] * (kh - 1) - 1) / g.stride[0]) + 1;
  const ow = Math.floor((wd + 2 * g.padding[1] - g.dilation[1] * (kw - 1) - 1) / g.stride[1]) + 1;
  const og = o / g.groups;
  const out: number[] = [];
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          let acc = b ? b[oi] : 0;
          const group = Math.floor(oi / og);
          for (let ci = 0; ci < cg; ci++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const yy = y * g.stride[0] + i * g.dilation[0] - g.padding[0];
                const zz = z * g.stride[1] + j * g.dilation[1] - g.padding[1];
                if (yy < 0 || yy >= h || zz < 0 || zz >= wd) continue;
                const cin = group * cg + ci;
                acc += x[((ni * c + cin) * h + yy) * wd + zz] * w[((oi * cg + ci) * kh + i) * kw + j];
              }
          out.push(acc);
        }
  return { out, shape: [n, o, oh, ow] };
}

/**
 * Direct-loop transposed conv2d (scatter form): every input element adds `x · w` to the outputs
 * it reaches. `w [C, O/G, KH, KW]`.
 */
export function naiveConvTranspose2d(
  x: Float64Array,
  xs: number[],
  w: Float64Array,
  ws: number[],
  b: Float64Array | null,
  g: Geometry & { outputPadding: [number, number] },
): { out: number[]; shape: number[] } {
  const [n, c, h, wd] = xs;
  const [, og, kh, kw] = ws;
  const o = og * g.groups;
  const cg = c / g.groups;
  const oh = (h - 1) * g.stride[0] - 2 * g.padding[0] + g.dilation[0] * (kh - 1) + g.outputPadding[0] + 1;
  const ow = (wd - 1) * g.stride[1] - 2 * g.padding[1] + g.dilation[1] * (kw - 1) + g.outputPadding[1] + 1;
  const out = new Array<number>(n * o * oh * ow).fill(0);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let k = 0; k < oh * ow; k++) out[(ni * o + oi) * oh * ow + k] = b ? b[oi] : 0;
  for (let ni = 0; ni < n; ni++)
    for (let ci = 0; ci < c; ci++)
      for (let y = 0; y < h; y++)
        for (let z = 0; z < wd; z++) {
          const group = Math.floor(ci / cg);
          for (let oj = 0; oj < og; oj++)
            for (let i = 0; i < kh; i++)
              for (let j = 0; j < kw; j++) {
                const yy = y * g.stride[0] + i * g.dilation[0] - g.padding[0];
                const zz = z * g.stride[1] + j * g.dilation[1] - g.padding[1];
                if (yy < 0 || yy >= oh || zz < 0 || zz >= ow) continue;
                const oi = group * og + oj;
                out[((ni * o + oi) * oh + yy) * ow + zz] +=
                  x[((ni * c + ci) * h + y) * wd + z] * w[((ci * og + oj) * kh + i) * kw + j];
              }
        }
  return { out, shape: [n, o, oh, ow] };
}
