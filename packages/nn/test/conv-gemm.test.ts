/**
 * The convolutions on the `conv` primitive (implicit GEMM on WebGPU, issue #20):
 *
 * - WebGPU equals the CPU reference (float32) for conv2d, convTranspose2d, conv1d and
 *   convTranspose1d, output and the gradients of x, weight and bias, over geometries chosen for
 *   the kernel's edges: output channels 1, 15, 16, 17, 33 (the 16-row and 8-row tiles), 63, 64,
 *   65 output columns (the 64-column tile), 32 or fewer columns (the narrow tile), stride up to 4
 *   with kernels smaller than the stride (stride phases with no taps), dilation sharing a factor
 *   with the stride, groups, output padding, and inputs that are views (transposed, sliced).
 * - float64 gradchecks and second-derivative checks (gradgradcheck) on the CPU: the gradients of
 *   a `conv` are `conv`s, so a WGAN-GP penalty differentiates through them.
 * - No im2col-sized buffer: the bytes allocated on WebGPU during a conv2d forward and its backward
 *   stay near input + output + weight, far below the K²× column matrix.
 */
import { gradcheck, gradgradcheck, gradients } from '@fluxion/autograd';
import {
  type BackendName,
  conv,
  mul,
  permute,
  scope,
  slice,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { conv1d, conv2d, convTranspose1d, convTranspose2d } from '../src/index.js';
import { seeded, values } from './helpers.js';

const gpu = await webgpuEnv();

interface Case {
  name: string;
  kind: 'conv2d' | 'convTranspose2d' | 'conv1d' | 'convTranspose1d';
  x: number[];
  w: number[];
  options: Record<string, unknown>;
  bias?: boolean;
  /** How x is laid out: `transposed` (the last two axes swapped in storage) or `sliced` (every other row). */
  view?: 'transposed' | 'sliced';
}

const CASES: Case[] = [
  {
    name: '3×3 pad 1, 17 channels, 65 columns',
    kind: 'conv2d',
    x: [1, 3, 5, 13],
    w: [17, 3, 3, 3],
    options: { padding: 1 },
  },
  {
    name: '3×3 pad 1, 16 channels, 64 columns',
    kind: 'conv2d',
    x: [1, 4, 8, 8],
    w: [16, 4, 3, 3],
    options: { padding: 1 },
  },
  { name: '3×3, 15 channels, 63 columns', kind: 'conv2d', x: [1, 2, 9, 11], w: [15, 2, 3, 3], options: {} },
  {
    name: '5×5 stride 2 pad 2 dilation 2, 33 channels',
    kind: 'conv2d',
    x: [2, 3, 13, 11],
    w: [33, 3, 5, 5],
    options: { stride: 2, padding: 2, dilation: 2 },
  },
  {
    name: 'groups 3, stride [2, 1], padding [0, 1], dilation [1, 2], kernel [2, 3]',
    kind: 'conv2d',
    x: [2, 6, 7, 9],
    w: [9, 2, 2, 3],
    options: { groups: 3, stride: [2, 1], padding: [0, 1], dilation: [1, 2] },
  },
  {
    name: 'one output channel, 4×4 stride 2 pad 1',
    kind: 'conv2d',
    x: [3, 5, 9, 8],
    w: [1, 5, 4, 4],
    options: { stride: 2, padding: 1 },
  },
  {
    name: '1×1 stride 3, no bias',
    kind: 'conv2d',
    x: [2, 7, 10, 10],
    w: [6, 7, 1, 1],
    options: { stride: 3 },
    bias: false,
  },
  {
    name: 'transposed view of x, padding 2',
    kind: 'conv2d',
    x: [2, 3, 9, 7],
    w: [10, 3, 3, 3],
    options: { padding: 2 },
    view: 'transposed',
  },
  {
    name: 'sliced view of x, stride 2',
    kind: 'conv2d',
    x: [2, 3, 11, 9],
    w: [12, 3, 3, 3],
    options: { stride: 2 },
    view: 'sliced',
  },
  {
    name: 'DCGAN-like 4×4 stride 2 pad 1',
    kind: 'convTranspose2d',
    x: [3, 8, 7, 7],
    w: [8, 5, 4, 4],
    options: { stride: 2, padding: 1 },
  },
  {
    name: 'to one channel',
    kind: 'convTranspose2d',
    x: [2, 6, 5, 6],
    w: [6, 1, 4, 4],
    options: { stride: 2, padding: 1 },
  },
  {
    name: 'stride 4 > kernel 3 (phases without taps), 17 channels',
    kind: 'convTranspose2d',
    x: [2, 3, 4, 5],
    w: [3, 17, 3, 3],
    options: { stride: 4, padding: 1, outputPadding: 2 },
  },
  {
    name: 'stride 2 with dilation 2 (taps only on even phases), groups 2',
    kind: 'convTranspose2d',
    x: [2, 4, 5, 4],
    w: [4, 3, 3, 2],
    options: { stride: 2, dilation: 2, padding: [1, 0], groups: 2, outputPadding: 1 },
  },
  {
    name: 'stride [3, 1], output padding [2, 0], 16 channels, transposed view',
    kind: 'convTranspose2d',
    x: [1, 5, 6, 9],
    w: [5, 16, 3, 2],
    options: { stride: [3, 1], outputPadding: [2, 0], padding: [1, 1] },
    view: 'transposed',
  },
  {
    name: 'WaveGAN k 25 stride 4 padding 11',
    kind: 'conv1d',
    x: [2, 3, 257],
    w: [5, 3, 25],
    options: { stride: 4, padding: 11 },
  },
  {
    name: 'dilation 3 groups 2, 65 columns',
    kind: 'conv1d',
    x: [1, 4, 71],
    w: [6, 2, 3],
    options: { dilation: 3, groups: 2 },
  },
  {
    name: 'WaveGAN k 25 stride 4 padding 11 output padding 1',
    kind: 'convTranspose1d',
    x: [2, 5, 33],
    w: [5, 3, 25],
    options: { stride: 4, padding: 11, outputPadding: 1 },
  },
];

/** x stored transposed in its last two axes (same values), read through a permuted view. */
function transposedInput(x: Tensor): Tensor {
  const r = x.rank;
  const swap = [...Array(r - 2).keys(), r - 1, r - 2];
  const stored = permute(x, swap).contiguous();
  const view = permute(stored, swap);
  stored.dispose();
  return view;
}

/** x stored in the even rows of a buffer whose odd rows are NaN, as the sliced view of it. */
async function slicedInput(x: Tensor, backend: BackendName): Promise<Tensor> {
  const [h, w] = x.shape.slice(-2);
  const lead = x.shape.slice(0, -2).reduce((a, b) => a * b, 1);
  const src = await values(x);
  const data = new Float32Array(lead * 2 * h * w).fill(Number.NaN);
  for (let b = 0; b < lead; b++)
    for (let r = 0; r < h; r++)
      for (let c = 0; c < w; c++) data[(b * 2 * h + 2 * r) * w + c] = src[(b * h + r) * w + c];
  const wide = tensor(data, [...x.shape.slice(0, -2), 2 * h, w], { backend });
  const view = slice(wide, ...x.shape.slice(0, -2).map(() => null), [0, 2 * h, 2]);
  wide.dispose();
  return view;
}

const run = (c: Case, x: Tensor, w: Tensor, b: Tensor | null): Tensor => {
  const o = c.options as never;
  if (c.kind === 'conv2d') return conv2d(x, w, b, o);
  if (c.kind === 'convTranspose2d') return convTranspose2d(x, w, b, o);
  if (c.kind === 'conv1d') return conv1d(x, w, b, o);
  return convTranspose1d(x, w, b, o);
};

/** Output and the gradients of Σ pattern·y w.r.t. x, w and b, on one backend. */
async function snapshot(c: Case, backend: BackendName): Promise<Map<string, number[]>> {
  const make = async (shape: number[], seed: number) =>
    tensor(Float32Array.from(await values(seeded(shape, seed))), shape, { backend });
  const base = await make(c.x, 11);
  const x =
    c.view === 'sliced'
      ? await slicedInput(base, backend)
      : c.view === 'transposed'
        ? transposedInput(base)
        : base;
  if (x !== base) base.dispose();
  const w = await make(c.w, 12);
  const outChannels = c.kind.startsWith('convTranspose')
    ? c.w[1] * ((c.options.groups as number) ?? 1)
    : c.w[0];
  const b = c.bias === false ? null : await make([outChannels], 13);
  const snap = new Map<string, number[]>();
  const inputs = [x, w, ...(b ? [b] : [])];
  for (const t of inputs) t.requiresGrad = true;
  const [y, ...grads] = scope(() => {
    const out = run(c, x, w, b);
    const pattern = Float32Array.from({ length: out.size }, (_, i) => (((i * 7) % 11) - 5) / 4 + 0.3);
    return [out, ...gradients(sum(mul(out, tensor(pattern, out.shape, { backend }))), inputs)];
  });
  snap.set('output shape', [...y.shape]);
  snap.set('output', await values(y));
  const names = ['x', 'weight', 'bias'];
  for (let i = 0; i < grads.length; i++) snap.set(`grad of ${names[i]}`, await values(grads[i]));
  for (const t of [y, ...grads, ...inputs]) t.dispose();
  return snap;
}

describe.skipIf(!gpu.backend)(`conv on WebGPU = CPU (float32)${skipNote(gpu)}`, () => {
  test.each(CASES.map((c) => [`${c.kind} ${c.name}`, c] as const))('%s', async (_name, c) => {
    const cpu = await snapshot(c, 'cpu');
    const onGpu = await snapshot(c, 'webgpu');
    expect(onGpu.get('output shape')).toEqual(cpu.get('output shape'));
    for (const [key, expected] of cpu) {
      expect(
        expected.some((v) => v !== 0),
        `${key} is all zeros`,
      ).toBe(true);
      try {
        await expectAllClose(onGpu.get(key)!, expected, { atol: 1e-4, rtol: 1e-3 });
      } catch (e) {
        throw new Error(`${key}: ${(e as Error).message}`);
      }
    }
  });
});

describe('conv gradients (float64, CPU)', () => {
  const f64 = (shape: number[], seed: number) => seeded(shape, seed);
  test('conv2d: stride 2, padding 1, dilation [1, 2], groups 2 — first and second derivatives', async () => {
    const options = { stride: 2, padding: 1, dilation: [1, 2] as [number, number], groups: 2 };
    const f = (x: Tensor, w: Tensor, b: Tensor) => conv2d(x, w, b, options);
    const inputs = [f64([2, 4, 5, 6], 1), f64([6, 2, 3, 2], 2), f64([6], 3)];
    expect((await gradcheck(f, inputs)).ok).toBe(true);
    expect((await gradgradcheck(f, inputs.slice(0, 2).concat(inputs[2]))).ok).toBe(true);
  });
  test('convTranspose2d: stride 3 > kernel 2, output padding 1, groups 2 — first and second derivatives', async () => {
    const options = { stride: 3, padding: [1, 0] as [number, number], outputPadding: 1, groups: 2 };
    const f = (x: Tensor, w: Tensor) => convTranspose2d(x, w, null, options);
    const inputs = [f64([2, 4, 3, 2], 4), f64([4, 3, 2, 3], 5)];
    expect((await gradcheck(f, inputs)).ok).toBe(true);
    expect((await gradgradcheck(f, inputs)).ok).toBe(true);
  });
  test('conv1d k 5 stride 4 padding 2 dilation 2 — first and second derivatives', async () => {
    const f = (x: Tensor, w: Tensor) => conv1d(x, w, null, { stride: 4, padding: 2, dilation: 2 });
    const inputs = [f64([2, 3, 13], 6), f64([4, 3, 5], 7)];
    expect((await gradcheck(f, inputs)).ok).toBe(true);
    expect((await gradgradcheck(f, inputs)).ok).toBe(true);
  });
  test('every conv result is a gradient of the others: ⟨conv(x, w), y⟩ = ⟨x, convᵀ(y, w)⟩ = ⟨w, conv_w(x, y)⟩', async () => {
    const geometry = { stride: [2, 3], padding: [1, 2], dilation: [2, 1], groups: 2 } as const;
    const x = f64([2, 4, 9, 8], 8);
    const w = f64([6, 2, 3, 4], 9);
    const y0 = conv(x, w, { ...geometry, result: 'output', size: [4, 4] });
    const y = f64([...y0.shape], 10);
    const dot = async (a: Tensor, b: Tensor) => (await values(sum(mul(a, b))))[0];
    const forward = await dot(y0, y);
    const viaInput = await dot(x, conv(y, w, { ...geometry, result: 'input', size: [9, 8] }));
    const viaWeight = await dot(w, conv(x, y, { ...geometry, result: 'weight', size: [3, 4] }));
    expect(viaInput).toBeCloseTo(forward, 10);
    expect(viaWeight).toBeCloseTo(forward, 10);
  });
});

describe.skipIf(!gpu.backend)(`conv allocates no im2col buffer${skipNote(gpu)}`, () => {
  test('bytes allocated during conv2d forward and backward stay near input + output + weight', async () => {
    const backend = gpu.backend!;
    const [n, c, h, w, o, k] = [4, 16, 32, 32, 32, 5];
    const x = tensor(new Float32Array(n * c * h * w).fill(0.5), [n, c, h, w], { backend: 'webgpu' });
    const weight = tensor(new Float32Array(o * c * k * k).fill(0.1), [o, c, k, k], { backend: 'webgpu' });
    await backend.sync();
    const original = backend.alloc.bind(backend);
    let allocated = 0;
    backend.alloc = (dtype, size) => {
      allocated += size * 4;
      return original(dtype, size);
    };
    try {
      const y = conv2d(x, weight, null, { padding: 2 });
      const forwardBytes = allocated;
      const [gx, gw] = gradients(sum(y), [x, weight]);
      await backend.sync();
      const bytes = { x: x.size * 4, y: y.size * 4, w: weight.size * 4 };
      const im2col = n * c * k * k * h * w * 4; // the column matrix the old path copied
      expect(forwardBytes).toBeLessThanOrEqual(bytes.y + 64);
      expect(allocated).toBeLessThan(1.5 * (bytes.x + 2 * bytes.y + bytes.w));
      expect(allocated).toBeLessThan(im2col / 5);
      for (const t of [y, gx, gw]) t.dispose();
    } finally {
      backend.alloc = original;
      x.dispose();
      weight.dispose();
    }
  });
});
