/**
 * Conv1d, ConvTranspose1d and WaveGAN's phase shuffle: forward passes against float64 loop
 * references written here (stride, padding, dilation, groups, odd lengths, batch > 1), the adjoint
 * identity between the two convolutions, PyTorch's output lengths, initialisation bounds,
 * gradchecks in float64, phase shuffle's behaviour (identity in eval, a reflected shift per
 * example, seeded determinism, its gradient), errors, and WebGPU parity of outputs and gradients
 * in float32 (runs when a WebGPU adapter is found; FLUXION_REQUIRE_WEBGPU=1 makes a missing one
 * fail).
 */
import { gradcheck } from '@fluxion/autograd';
import {
  Conv1d,
  type Conv1dOptions,
  Conv2d,
  ConvTranspose1d,
  type ConvTranspose1dOptions,
  conv1d,
  convTranspose1d,
  type Module,
  PhaseShuffle,
  phaseShuffle,
  reflectShift,
} from '@fluxion/nn';
import {
  type BackendName,
  FluxionError,
  Generator,
  memoryStats,
  mul,
  randn,
  reshape,
  scope,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { describe, expect, it, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { expectClose, seeded, values } from './helpers.js';

const gpu = await webgpuEnv();

const f64 = async (t: Tensor): Promise<Float64Array> => Float64Array.from(await values(t));

interface Geometry1d {
  stride: number;
  padding: number;
  dilation: number;
  groups: number;
}

/** Direct-loop conv1d: `x [N, C, L]`, `w [O, C/G, K]`, optional bias `[O]`. */
function loopConv1d(
  x: Float64Array,
  [n, c, l]: number[],
  w: Float64Array,
  [o, cg, k]: number[],
  b: Float64Array | null,
  g: Geometry1d,
): { out: number[]; shape: number[] } {
  const lOut = Math.floor((l + 2 * g.padding - g.dilation * (k - 1) - 1) / g.stride) + 1;
  const og = o / g.groups;
  const out: number[] = [];
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let t = 0; t < lOut; t++) {
        let acc = b ? b[oi] : 0;
        const group = Math.floor(oi / og);
        for (let ci = 0; ci < cg; ci++)
          for (let j = 0; j < k; j++) {
            const s = t * g.stride + j * g.dilation - g.padding;
            if (s < 0 || s >= l) continue;
            acc += x[(ni * c + group * cg + ci) * l + s] * w[(oi * cg + ci) * k + j];
          }
        out.push(acc);
      }
  return { out, shape: [n, o, lOut] };
}

/** Direct-loop transposed conv1d (scatter form): `x [N, C, L]`, `w [C, O/G, K]`, optional bias `[O]`. */
function loopConvTranspose1d(
  x: Float64Array,
  [n, c, l]: number[],
  w: Float64Array,
  [, og, k]: number[],
  b: Float64Array | null,
  g: Geometry1d & { outputPadding: number },
): { out: number[]; shape: number[] } {
  const o = og * g.groups;
  const cg = c / g.groups;
  const lOut = (l - 1) * g.stride - 2 * g.padding + g.dilation * (k - 1) + g.outputPadding + 1;
  const out = new Array<number>(n * o * lOut).fill(0);
  for (let ni = 0; ni < n; ni++)
    for (let oi = 0; oi < o; oi++)
      for (let t = 0; t < lOut; t++) out[(ni * o + oi) * lOut + t] = b ? b[oi] : 0;
  for (let ni = 0; ni < n; ni++)
    for (let ci = 0; ci < c; ci++)
      for (let s = 0; s < l; s++) {
        const group = Math.floor(ci / cg);
        for (let oj = 0; oj < og; oj++)
          for (let j = 0; j < k; j++) {
            const t = s * g.stride + j * g.dilation - g.padding;
            if (t < 0 || t >= lOut) continue;
            out[(ni * o + group * og + oj) * lOut + t] +=
              x[(ni * c + ci) * l + s] * w[(ci * og + oj) * k + j];
          }
      }
  return { out, shape: [n, o, lOut] };
}

/** Reflection of index `i` into [0, l) without repeating the edge (numpy/PyTorch `reflect`). */
const reflect = (i: number, l: number): number => (i < 0 ? -i : i >= l ? 2 * (l - 1) - i : i);

/** `x [N, C, L]` (flat) with example `ni` shifted by `k`: `y[t] = x[reflect(t − k)]`. */
function loopShift(x: number[], [, c, l]: number[], ni: number, k: number): number[] {
  const out: number[] = [];
  for (let ci = 0; ci < c; ci++)
    for (let t = 0; t < l; t++) out.push(x[(ni * c + ci) * l + reflect(t - k, l)]);
  return out;
}

const conv1dCases: (Partial<Geometry1d> & {
  l: number;
  k: number;
  c?: number;
  o?: number;
  bias?: boolean;
})[] = [
  { l: 9, k: 3 },
  { l: 10, k: 3, padding: 1 },
  { l: 17, k: 5, stride: 2, padding: 2 },
  { l: 23, k: 4, stride: 3, dilation: 2, padding: 3 },
  { l: 31, k: 25, stride: 4, padding: 11 }, // WaveGAN's discriminator geometry, odd length
  { l: 12, k: 3, groups: 2, c: 4, o: 6, padding: 1, stride: 2 },
  { l: 11, k: 2, groups: 3, c: 3, o: 3, dilation: 3, bias: false }, // depthwise
  { l: 5, k: 5 }, // kernel as long as the input: one output
];

describe('conv1d', () => {
  it.each(conv1dCases)('matches a float64 loop reference: %o', async (cs) => {
    const geo: Geometry1d = {
      stride: cs.stride ?? 1,
      padding: cs.padding ?? 0,
      dilation: cs.dilation ?? 1,
      groups: cs.groups ?? 1,
    };
    const c = cs.c ?? 2;
    const o = cs.o ?? 3;
    const xShape = [3, c, cs.l];
    const wShape = [o, c / geo.groups, cs.k];
    const x = seeded(xShape, 1);
    const w = seeded(wShape, 2);
    const b = cs.bias === false ? null : seeded([o], 3);
    const y = conv1d(x, w, b, geo);
    const ref = loopConv1d(await f64(x), xShape, await f64(w), wShape, b && (await f64(b)), geo);
    expect(y.shape).toEqual(ref.shape);
    expect(y.dtype).toBe('float64');
    await expectClose(y, ref.out, { atol: 1e-12, rtol: 1e-12 });
  });

  it('output lengths follow PyTorch: ⌊(L + 2p − d(K − 1) − 1) / s⌋ + 1', () => {
    for (const l of [7, 8, 16, 33])
      for (const k of [1, 3, 4])
        for (const s of [1, 2, 3])
          for (const p of [0, 1, 2])
            for (const d of [1, 2]) {
              const expected = Math.floor((l + 2 * p - d * (k - 1) - 1) / s + 1);
              if (expected <= 0) continue;
              const y = scope(() =>
                conv1d(randn([1, 2, l]), randn([1, 2, k]), null, { stride: s, padding: p, dilation: d }),
              );
              expect(y.shape, `L ${l} K ${k} s ${s} p ${p} d ${d}`).toEqual([1, 1, expected]);
              y.dispose();
            }
  });

  it('Conv1d: weight [O, C/groups, K], bias [O], PyTorch init bounds ±1/√(C/groups·K)', async () => {
    const conv = new Conv1d(6, 8, 7, { groups: 2, stride: 2, padding: 3, seed: 0 });
    expect(conv.weight.shape).toEqual([8, 3, 7]);
    expect(conv.bias?.shape).toEqual([8]);
    expect([...conv.namedParameters()].map(([name]) => name)).toEqual(['weight', 'bias']);
    const bound = 1 / Math.sqrt(3 * 7);
    for (const p of conv.parameters()) {
      const v = await values(p);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0.7 * bound); // spread over the range
    }
    expect(conv.forward(randn([4, 6, 101])).shape).toEqual([4, 8, 51]);
    expect(new Conv1d(2, 3, 3, { bias: false }).bias).toBeNull();
    expect(String(conv)).toBe('Conv1d(6 → 8, kernel 7)');
  });

  it('Conv1d draws the numbers of a Conv2d with kernel [1, K] and computes its output', async () => {
    const c1 = new Conv1d(3, 4, 5, { stride: 2, padding: 2, dilation: 1, seed: 7, dtype: 'float64' });
    const c2 = new Conv2d(3, 4, [1, 5], { stride: [1, 2], padding: [0, 2], seed: 7, dtype: 'float64' });
    expect(await values(c1.weight)).toEqual(await values(c2.weight));
    expect(await values(c1.bias!)).toEqual(await values(c2.bias!));
    const x = seeded([2, 3, 13], 4);
    const y2 = c2.forward(reshape(x, [2, 3, 1, 13]));
    await expectClose(c1.forward(x), await values(y2), { atol: 0, rtol: 0 });
  });
});

const transposeCases: (Partial<Geometry1d> & {
  l: number;
  k: number;
  outputPadding?: number;
  c?: number;
  o?: number;
  bias?: boolean;
})[] = [
  { l: 5, k: 3 },
  { l: 7, k: 4, stride: 2, padding: 1 },
  { l: 6, k: 25, stride: 4, padding: 11, outputPadding: 1 }, // WaveGAN's generator geometry: ×4
  { l: 9, k: 3, stride: 3, padding: 1, outputPadding: 2 },
  { l: 5, k: 3, stride: 2, dilation: 2, outputPadding: 1 },
  { l: 8, k: 3, groups: 2, c: 4, o: 6, stride: 2, padding: 1, outputPadding: 1 },
  { l: 4, k: 2, stride: 2, padding: 3, bias: false }, // padding beyond the kernel: cropped
];

describe('convTranspose1d', () => {
  it.each(transposeCases)('matches a float64 loop reference: %o', async (cs) => {
    const geo = {
      stride: cs.stride ?? 1,
      padding: cs.padding ?? 0,
      dilation: cs.dilation ?? 1,
      groups: cs.groups ?? 1,
      outputPadding: cs.outputPadding ?? 0,
    };
    const c = cs.c ?? 3;
    const o = cs.o ?? 2;
    const xShape = [2, c, cs.l];
    const wShape = [c, o / geo.groups, cs.k];
    const x = seeded(xShape, 5);
    const w = seeded(wShape, 6);
    const b = cs.bias === false ? null : seeded([o], 7);
    const y = convTranspose1d(x, w, b, geo);
    const ref = loopConvTranspose1d(await f64(x), xShape, await f64(w), wShape, b && (await f64(b)), geo);
    const l = (cs.l - 1) * geo.stride - 2 * geo.padding + geo.dilation * (cs.k - 1) + geo.outputPadding + 1;
    expect(ref.shape).toEqual([2, o, l]);
    expect(y.shape).toEqual(ref.shape);
    await expectClose(y, ref.out, { atol: 1e-12, rtol: 1e-12 });
  });

  it.each([
    { stride: 1, padding: 0, dilation: 1, groups: 1 },
    { stride: 2, padding: 1, dilation: 1, groups: 1 },
    { stride: 3, padding: 2, dilation: 2, groups: 1 },
    { stride: 4, padding: 11, dilation: 1, groups: 1 },
    { stride: 2, padding: 1, dilation: 1, groups: 2 },
  ])('is the adjoint of conv1d: ⟨conv(x), y⟩ = ⟨x, convT(y)⟩ (%o)', async (geo) => {
    const k = geo.stride === 4 ? 25 : 3;
    const l = 37;
    const x = seeded([2, 4, l], 8);
    const w = seeded([6, 4 / geo.groups, k], 9);
    const cx = conv1d(x, w, null, geo);
    const y = seeded([...cx.shape], 10);
    // The transposed output must have x's length: outputPadding recovers what the stride dropped.
    const lost = (l + 2 * geo.padding - geo.dilation * (k - 1) - 1) % geo.stride;
    const ty = convTranspose1d(y, w, null, { ...geo, outputPadding: lost });
    expect(ty.shape).toEqual(x.shape);
    const [lhs] = await values(sum(mul(cx, y)));
    const [rhs] = await values(sum(mul(x, ty)));
    expect(Math.abs(lhs)).toBeGreaterThan(1e-3);
    expect(Math.abs(lhs - rhs)).toBeLessThan(1e-10 * Math.max(1, Math.abs(lhs)));
  });

  it('ConvTranspose1d: weight [C, O/groups, K], init bounds ±1/√(O/groups·K), ×4 upsampling', async () => {
    const up = new ConvTranspose1d(4, 6, 25, {
      stride: 4,
      padding: 11,
      outputPadding: 1,
      groups: 2,
      seed: 1,
    });
    expect(up.weight.shape).toEqual([4, 3, 25]);
    expect(up.bias?.shape).toEqual([6]);
    const bound = 1 / Math.sqrt(3 * 25);
    for (const p of up.parameters()) {
      const v = await values(p);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(Math.max(...v.map(Math.abs))).toBeGreaterThan(0.7 * bound);
    }
    expect(up.forward(randn([2, 4, 16])).shape).toEqual([2, 6, 64]);
    expect(String(up)).toBe('ConvTranspose1d(4 → 6, kernel 25)');
  });
});

describe('gradcheck (float64)', () => {
  it.each<Conv1dOptions & { k: number }>([
    { k: 3, stride: 2, padding: 1 },
    { k: 3, dilation: 2, padding: 2 },
    { k: 2, groups: 2, stride: 3 },
  ])('conv1d w.r.t. input, weight and bias: %o', async ({ k, ...options }) => {
    const g = options.groups ?? 1;
    const x = seeded([2, 2, 9], 11);
    const w = seeded([4, 2 / g, k], 12);
    const b = seeded([4], 13);
    const report = await gradcheck((xx, ww, bb) => conv1d(xx, ww, bb, options), [x, w, b]);
    expect(report.ok).toBe(true);
  });

  it.each<ConvTranspose1dOptions & { k: number }>([
    { k: 3, stride: 2, padding: 1, outputPadding: 1 },
    { k: 4, stride: 3, dilation: 2, padding: 2, outputPadding: 1 },
    { k: 3, groups: 2, stride: 2 },
  ])('convTranspose1d w.r.t. input, weight and bias: %o', async ({ k, ...options }) => {
    const g = options.groups ?? 1;
    const x = seeded([2, 2, 5], 14);
    const w = seeded([2, 4 / g, k], 15);
    const b = seeded([4], 16);
    const report = await gradcheck((xx, ww, bb) => convTranspose1d(xx, ww, bb, options), [x, w, b]);
    expect(report.ok).toBe(true);
  });

  it('phase shuffle (the same shifts at every evaluation)', async () => {
    const x = seeded([3, 2, 7], 17);
    const report = await gradcheck((xx) => new PhaseShuffle(2, { seed: 4 }).forward(xx), [x]);
    expect(report.ok).toBe(true);
  });
});

describe('PhaseShuffle', () => {
  it('reflectShift: y[t] = x[r(t − k)] with reflection at both ends', async () => {
    const x = tensor([[[1, 2, 3, 4, 5]], [[10, 20, 30, 40, 50]]]);
    const y = reflectShift(x, tensor([2, -1], { dtype: 'int32' }));
    expect(await values(y)).toEqual([3, 2, 1, 2, 3, 20, 30, 40, 50, 40]);
  });

  it('is the identity in eval mode and for n = 0', () => {
    const x = randn([2, 3, 8]);
    expect(new PhaseShuffle(2, { seed: 0 }).eval().forward(x)).toBe(x);
    expect(new PhaseShuffle(0).forward(x)).toBe(x);
  });

  it('shifts each example by its own k in [−n, n], reflected, the same for every channel', async () => {
    const shape = [32, 3, 11];
    const x = seeded(shape, 18);
    const n = 3;
    const xv = await values(x);
    const y = await values(new PhaseShuffle(n, { seed: 5 }).forward(x));
    const shifts: number[] = [];
    for (let ni = 0; ni < shape[0]; ni++) {
      const row = y.slice(ni * 33, (ni + 1) * 33);
      const found = [];
      for (let k = -n; k <= n; k++)
        if (loopShift(xv, shape, ni, k).every((v, i) => v === row[i])) found.push(k);
      expect(found, `example ${ni}`).toHaveLength(1);
      shifts.push(found[0]);
    }
    // 32 draws from 7 values: every shift occurs and they are not all equal.
    expect(new Set(shifts).size).toBeGreaterThan(4);
  });

  it('is deterministic for a seed, draws fresh shifts at each call, and follows a generator', async () => {
    const x = seeded([16, 2, 9], 19);
    const a = new PhaseShuffle(2, { seed: 3 });
    const b = new PhaseShuffle(2, { seed: 3 });
    const first = await values(a.forward(x));
    expect(await values(b.forward(x))).toEqual(first);
    expect(await values(a.forward(x))).not.toEqual(first);
    const viaFunction = phaseShuffle(x, 2, { generator: new Generator(3) });
    expect(await values(viaFunction)).toEqual(first);
  });

  it('its gradient is the reverse shift', async () => {
    const x = seeded([4, 2, 6], 20);
    x.requiresGrad = true;
    const gy = seeded([4, 2, 6], 21);
    const y = new PhaseShuffle(2, { seed: 9 }).forward(x);
    sum(mul(y, gy)).backward();
    const [xv, yv, gv, gx] = await Promise.all([values(x), values(y), values(gy), values(x.grad!)]);
    // Recover each example's shift from the output, then scatter gy back through it.
    const expected = new Array<number>(gx.length).fill(0);
    for (let ni = 0; ni < 4; ni++) {
      const k = [-2, -1, 0, 1, 2].find((s) =>
        loopShift(xv, [4, 2, 6], ni, s).every((v, i) => v === yv[ni * 12 + i]),
      )!;
      for (let ci = 0; ci < 2; ci++)
        for (let t = 0; t < 6; t++)
          expected[(ni * 2 + ci) * 6 + reflect(t - k, 6)] += gv[(ni * 2 + ci) * 6 + t];
    }
    await expectClose(gx, expected, { atol: 1e-12, rtol: 0 });
  });
});

describe('errors name the layer and the shapes', () => {
  it('Conv1d and conv1d', () => {
    const conv = new Conv1d(3, 4, 3);
    expect(() => conv.forward(randn([1, 3, 5, 5]))).toThrow(
      /^Conv1d: expected input \[N, C, L\] and weight \[O, C\/groups, K\], got \[1,3,5,5\] and \[4,3,3\]$/,
    );
    expect(() => conv.forward(randn([1, 2, 9]))).toThrow(
      /^Conv1d: input \[1,2,9\] and weight \[4,3,3\] do not fit groups=1/,
    );
    expect(() => new Conv1d(1, 1, 5, { padding: 1 }).forward(randn([1, 1, 2]))).toThrow(
      /^Conv1d: input \[1,1,2\] padded by 1 on each end is shorter than the kernel \[1,1,5\]/,
    );
    expect(() => new Conv1d(1, 1, 3, { dilation: 3 }).forward(randn([1, 1, 6]))).toThrow(/7 samples/);
    expect(() => conv1d(randn([2, 4]), randn([4, 4, 3]))).toThrow(/^conv1d: expected input \[N, C, L\]/);
    expect(() => conv1d(randn([1, 3, 9]), randn([4, 3, 3]), randn([3]))).toThrow(
      /^conv1d: bias must have shape \[4\], got \[3\]/,
    );
    expect(() => new Conv1d(3, 4, 3, { groups: 2 })).toThrow(
      /^Conv1d: channels 3 → 4 are not divisible by groups=2/,
    );
    expect(() => new Conv1d(3, 4, 0)).toThrow(/^Conv1d: kernelSize must be an integer ≥ 1, got 0/);
    expect(() => new Conv1d(3, 4, 3, { stride: 0 })).toThrow(/^Conv1d: stride must be an integer ≥ 1/);
    expect(() => conv1d(randn([1, 3, 9]), randn([4, 3, 3]), null, { padding: -1 })).toThrow(
      /^conv1d: padding must be an integer ≥ 0/,
    );
  });

  it('ConvTranspose1d and convTranspose1d', () => {
    const up = new ConvTranspose1d(4, 2, 3, { stride: 2 });
    expect(() => up.forward(randn([1, 3, 5]))).toThrow(
      /^ConvTranspose1d: input \[1,3,5\] and weight \[4,2,3\] do not fit groups=1 \(need weight.shape\[0\] = C/,
    );
    expect(() => up.forward(randn([4, 5]))).toThrow(
      /^ConvTranspose1d: expected input \[N, C, L\] and weight \[C, O\/groups, K\], got \[4,5\]/,
    );
    expect(() =>
      new ConvTranspose1d(2, 2, 3, { stride: 2, outputPadding: 2 }).forward(randn([1, 2, 3])),
    ).toThrow(/^ConvTranspose1d: outputPadding 2 must be smaller than stride 2 or dilation 1/);
    expect(() => convTranspose1d(randn([1, 2, 1]), randn([2, 2, 2]), null, { padding: 1 })).toThrow(
      /^convTranspose1d: output length 0 is empty for input \[1,2,1\] and weight \[2,2,2\]/,
    );
  });

  it('PhaseShuffle', () => {
    expect(() => new PhaseShuffle(-1)).toThrow(/^PhaseShuffle: n must be an integer ≥ 0, got -1/);
    expect(() => new PhaseShuffle(2).forward(randn([2, 8]))).toThrow(
      /^PhaseShuffle: expected input \[N, C, L\], got \[2,8\]/,
    );
    expect(() => new PhaseShuffle(4).forward(randn([2, 1, 4]))).toThrow(
      /^PhaseShuffle: shifts up to 4 need more than 4 samples to reflect, got input \[2,1,4\]/,
    );
    expect(() => reflectShift(randn([2, 1, 4]), tensor([1], { dtype: 'int32' }))).toThrow(FluxionError);
  });
});

/** Output and gradients of Σ pattern·forward(x) w.r.t. x and the parameters, on one backend. */
async function snapshot(
  build: (backend: BackendName) => Module,
  xShape: number[],
  backend: BackendName,
): Promise<Map<string, number[]>> {
  const snap = new Map<string, number[]>();
  const module = build(backend);
  const x = tensor(Float32Array.from(await values(seeded(xShape, 30))), xShape, { backend });
  x.requiresGrad = true;
  try {
    const out = scope(() => module.forward(x) as Tensor);
    snap.set('output shape', [...out.shape]);
    snap.set('output', await values(out));
    const pattern = Float32Array.from({ length: out.size }, (_, i) => (((i * 7) % 11) - 5) / 4 + 0.3);
    const loss = scope(() => sum(mul(out, tensor(pattern, out.shape, { backend }))));
    loss.backward();
    loss.dispose();
    out.dispose();
    snap.set('grad of input', await values(x.grad!));
    for (const [name, p] of module.namedParameters()) snap.set(`grad of ${name}`, await values(p.grad!));
  } finally {
    x.zeroGrad();
    x.dispose();
    module.zeroGrad();
    module.dispose();
  }
  return snap;
}

const gpuBuffers = (): number => memoryStats().backends.webgpu?.buffers ?? 0;

describe.skipIf(!gpu.backend)(`WebGPU parity (float32)${skipNote(gpu)}`, () => {
  const cases: [string, (backend: BackendName) => Module, number[]][] = [
    ['Conv1d k 3, padding 1', (backend) => new Conv1d(3, 5, 3, { padding: 1, seed: 1, backend }), [2, 3, 17]],
    [
      'Conv1d k 25, stride 4, padding 11 (WaveGAN)',
      (backend) => new Conv1d(4, 8, 25, { stride: 4, padding: 11, seed: 2, backend }),
      [2, 4, 64],
    ],
    [
      'Conv1d dilation 2, groups 2, no bias',
      (backend) => new Conv1d(4, 6, 3, { dilation: 2, groups: 2, bias: false, seed: 3, backend }),
      [3, 4, 19],
    ],
    [
      'ConvTranspose1d k 25, stride 4, padding 11, output padding 1 (WaveGAN)',
      (backend) =>
        new ConvTranspose1d(8, 4, 25, { stride: 4, padding: 11, outputPadding: 1, seed: 4, backend }),
      [2, 8, 16],
    ],
    [
      'ConvTranspose1d groups 2, dilation 2, stride 3, output padding 2',
      (backend) =>
        new ConvTranspose1d(4, 2, 3, {
          groups: 2,
          dilation: 2,
          stride: 3,
          outputPadding: 2,
          seed: 5,
          backend,
        }),
      [2, 4, 7],
    ],
    ['PhaseShuffle n 2 (same seed, same shifts)', () => new PhaseShuffle(2, { seed: 6 }), [8, 3, 13]],
  ];

  test.each(cases)('%s', async (_name, build, xShape) => {
    const cpu = await snapshot(build, xShape, 'cpu');
    const before = gpuBuffers();
    const onGpu = await snapshot(build, xShape, 'webgpu');
    expect(gpuBuffers(), 'GPU buffers left behind').toBe(before);
    expect([...onGpu.keys()]).toEqual([...cpu.keys()]);
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
