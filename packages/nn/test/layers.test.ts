/**
 * Layer forward passes: output shapes, convolution and pooling against direct loops, Dropout and
 * BatchNorm in training vs eval mode, LayerNorm statistics, Embedding lookups and the documented
 * (PyTorch) default initialisations.
 */
import {
  AvgPool2d,
  avgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  Conv2d,
  ConvTranspose2d,
  conv2d,
  convTranspose2d,
  Dense,
  Dropout,
  Embedding,
  Flatten,
  LayerNorm,
  Linear,
  MaxPool2d,
  maxPool2d,
  Sequential,
  Unflatten,
} from '@fluxion/nn';
import {
  add,
  FluxionError,
  mean,
  mul,
  ones,
  randn,
  rsqrt,
  scope,
  sub,
  sum,
  type Tensor,
  tensor,
  variance,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expectClose, naiveConv2d, naiveConvTranspose2d, seeded, values } from './helpers.js';

const f64 = async (t: Tensor) => Float64Array.from(await values(t));

describe('Dense', () => {
  it('maps [..., in] to [..., out] with y = x Wᵀ + b', async () => {
    const fcLayer = new Dense(3, 2, { seed: 1 });
    expect(fcLayer.forward(randn([4, 3])).shape).toEqual([4, 2]);
    expect(fcLayer.forward(randn([5, 4, 3])).shape).toEqual([5, 4, 2]);
    const x = tensor([[1, 2, 3]]);
    const w = await values(fcLayer.weight);
    const b = await values(fcLayer.bias as Tensor);
    const expected = [0, 1].map((o) => b[o] + w[o * 3] * 1 + w[o * 3 + 1] * 2 + w[o * 3 + 2] * 3);
    await expectClose(fcLayer.forward(x), expected);
  });

  it('applies its activation and can drop the bias', async () => {
    const relu = new Dense(4, 6, { activation: 'relu', bias: false, seed: 2 });
    expect(relu.bias).toBeNull();
    expect(relu.parameters()).toHaveLength(1);
    expect((await values(relu.forward(randn([8, 4], { seed: 3 })))).every((v) => v >= 0)).toBe(true);
    expect(Linear).toBe(Dense);
  });

  it('rejects an input of the wrong width, naming the shapes', () => {
    expect(() => new Dense(3, 2).forward(randn([4, 5]))).toThrow(
      /Dense: expected input \[\.\.\., 3\], got \[4,5\]/,
    );
  });

  it('initialises like PyTorch: weight and bias in U(±1/√in), reproducible from a seed', async () => {
    const a = new Dense(100, 50, { seed: 7 });
    const b = new Dense(100, 50, { seed: 7 });
    const w = await values(a.weight);
    expect(a.weight.shape).toEqual([50, 100]);
    expect(Math.max(...w.map(Math.abs))).toBeLessThanOrEqual(0.1);
    expect(Math.max(...w.map(Math.abs))).toBeGreaterThan(0.09);
    // U(−b, b) has variance b²/3.
    const v = w.reduce((s, x) => s + x * x, 0) / w.length;
    expect(v).toBeCloseTo(0.01 / 3, 3);
    expect(await values(b.weight)).toEqual(w);
    expect(await values(a.bias as Tensor)).not.toEqual(w.slice(0, 50)); // bias draws after the weight
  });
});

describe('Conv2d', () => {
  const geometry = fc.record({
    n: fc.integer({ min: 1, max: 2 }),
    groups: fc.integer({ min: 1, max: 2 }),
    cPer: fc.integer({ min: 1, max: 2 }),
    oPer: fc.integer({ min: 1, max: 2 }),
    h: fc.integer({ min: 3, max: 7 }),
    w: fc.integer({ min: 3, max: 7 }),
    kh: fc.integer({ min: 1, max: 3 }),
    kw: fc.integer({ min: 1, max: 3 }),
    sh: fc.integer({ min: 1, max: 3 }),
    sw: fc.integer({ min: 1, max: 2 }),
    ph: fc.integer({ min: 0, max: 2 }),
    pw: fc.integer({ min: 0, max: 1 }),
    dh: fc.integer({ min: 1, max: 2 }),
    dw: fc.integer({ min: 1, max: 2 }),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1000 }),
  });

  it('equals a direct loop for random stride, padding, dilation and groups', async () => {
    await fc.assert(
      fc.asyncProperty(geometry, async (g) => {
        fc.pre(g.h + 2 * g.ph >= g.dh * (g.kh - 1) + 1 && g.w + 2 * g.pw >= g.dw * (g.kw - 1) + 1);
        const c = g.cPer * g.groups;
        const o = g.oPer * g.groups;
        const xShape = [g.n, c, g.h, g.w];
        const wShape = [o, g.cPer, g.kh, g.kw];
        const x = seeded(xShape, g.seed);
        const w = seeded(wShape, g.seed + 1);
        const b = g.bias ? seeded([o], g.seed + 2) : null;
        const geo = {
          stride: [g.sh, g.sw],
          padding: [g.ph, g.pw],
          dilation: [g.dh, g.dw],
          groups: g.groups,
        } as const;
        const y = conv2d(x, w, b, { ...geo, stride: [g.sh, g.sw] });
        const ref = naiveConv2d(await f64(x), xShape, await f64(w), wShape, b && (await f64(b)), {
          stride: [g.sh, g.sw],
          padding: [g.ph, g.pw],
          dilation: [g.dh, g.dw],
          groups: g.groups,
        });
        expect(y.shape).toEqual(ref.shape);
        await expectClose(y, ref.out, { atol: 1e-12, rtol: 1e-10 });
      }),
      { numRuns: 20, seed: 42 },
    );
  });

  it('has the documented output shape and PyTorch default initialisation', async () => {
    const conv = new Conv2d(3, 8, [3, 5], { stride: 2, padding: [1, 2], seed: 0 });
    expect(conv.weight.shape).toEqual([8, 3, 3, 5]);
    expect(conv.forward(randn([2, 3, 9, 9])).shape).toEqual([2, 8, 5, 5]);
    const bound = 1 / Math.sqrt(3 * 3 * 5);
    for (const p of conv.parameters()) {
      const v = await values(p);
      expect(Math.max(...v.map(Math.abs))).toBeLessThanOrEqual(bound);
    }
    expect(new Conv2d(4, 6, 3, { groups: 2 }).weight.shape).toEqual([6, 2, 3, 3]);
  });

  it('rejects bad shapes and groups with clear errors', () => {
    expect(() => new Conv2d(3, 4, 3, { groups: 2 })).toThrow(FluxionError);
    expect(() => new Conv2d(3, 4, 3).forward(randn([1, 2, 5, 5]))).toThrow(/conv2d: input \[1,2,5,5\]/);
    expect(() => new Conv2d(1, 1, 5).forward(randn([1, 1, 3, 3]))).toThrow(/smaller than the kernel/);
    expect(() => new Conv2d(1, 1, 3).forward(randn([3, 5, 5]))).toThrow(/expected input \[N, C, H, W\]/);
  });
});

describe('ConvTranspose2d', () => {
  it('equals a direct scatter loop for random geometry', async () => {
    const geometry = fc.record({
      n: fc.integer({ min: 1, max: 2 }),
      groups: fc.integer({ min: 1, max: 2 }),
      cPer: fc.integer({ min: 1, max: 2 }),
      oPer: fc.integer({ min: 1, max: 2 }),
      h: fc.integer({ min: 1, max: 5 }),
      w: fc.integer({ min: 1, max: 5 }),
      k: fc.integer({ min: 1, max: 4 }),
      s: fc.integer({ min: 1, max: 3 }),
      p: fc.integer({ min: 0, max: 2 }),
      d: fc.integer({ min: 1, max: 2 }),
      op: fc.integer({ min: 0, max: 2 }),
      bias: fc.boolean(),
      seed: fc.integer({ min: 0, max: 1000 }),
    });
    await fc.assert(
      fc.asyncProperty(geometry, async (g) => {
        fc.pre(g.op < Math.max(g.s, g.d));
        const oh = (g.h - 1) * g.s - 2 * g.p + g.d * (g.k - 1) + g.op + 1;
        const ow = (g.w - 1) * g.s - 2 * g.p + g.d * (g.k - 1) + g.op + 1;
        fc.pre(oh > 0 && ow > 0);
        const c = g.cPer * g.groups;
        const xShape = [g.n, c, g.h, g.w];
        const wShape = [c, g.oPer, g.k, g.k];
        const x = seeded(xShape, g.seed);
        const w = seeded(wShape, g.seed + 1);
        const b = g.bias ? seeded([g.oPer * g.groups], g.seed + 2) : null;
        const options = { stride: g.s, padding: g.p, dilation: g.d, outputPadding: g.op, groups: g.groups };
        const y = convTranspose2d(x, w, b, options);
        const ref = naiveConvTranspose2d(await f64(x), xShape, await f64(w), wShape, b && (await f64(b)), {
          stride: [g.s, g.s],
          padding: [g.p, g.p],
          dilation: [g.d, g.d],
          outputPadding: [g.op, g.op],
          groups: g.groups,
        });
        expect(y.shape).toEqual(ref.shape);
        await expectClose(y, ref.out, { atol: 1e-12, rtol: 1e-10 });
      }),
      { numRuns: 20, seed: 7 },
    );
  });

  it('is the adjoint of conv2d: ⟨conv(x), y⟩ = ⟨x, convT(y)⟩', async () => {
    const x = seeded([2, 4, 7, 6], 1);
    const w = seeded([6, 2, 3, 3], 2);
    const options = { stride: 2, padding: 1, dilation: [1, 2] as [number, number], groups: 2 };
    const cx = conv2d(x, w, null, options);
    const y = seeded(cx.shape as number[], 3);
    const ty = convTranspose2d(y, w, null, { ...options, outputPadding: [0, 1] });
    expect(ty.shape).toEqual(x.shape);
    await expectClose(sum(mul(cx, y)), await values(sum(mul(x, ty))), { atol: 1e-10 });
  });

  it('upsamples like DCGAN and initialises with PyTorch’s fan-in of [in, out, k, k]', async () => {
    const up = new ConvTranspose2d(8, 4, 4, { stride: 2, padding: 1, seed: 0 });
    expect(up.weight.shape).toEqual([8, 4, 4, 4]);
    expect(up.forward(randn([2, 8, 7, 7])).shape).toEqual([2, 4, 14, 14]);
    const bound = 1 / Math.sqrt(4 * 4 * 4);
    expect(Math.max(...(await values(up.weight)).map(Math.abs))).toBeLessThanOrEqual(bound);
    expect(() =>
      new ConvTranspose2d(2, 2, 3, { stride: 2, outputPadding: 2 }).forward(randn([1, 2, 3, 3])),
    ).toThrow(/outputPadding 2 must be smaller than stride 2/);
  });
});

describe('pooling', () => {
  function naivePool(x: number[], shape: number[], k: number, s: number, p: number, kind: 'max' | 'avg') {
    const [n, c, h, w] = shape;
    const oh = Math.floor((h + 2 * p - k) / s) + 1;
    const ow = Math.floor((w + 2 * p - k) / s) + 1;
    const out: number[] = [];
    for (let a = 0; a < n * c; a++)
      for (let y = 0; y < oh; y++)
        for (let z = 0; z < ow; z++) {
          let acc = kind === 'max' ? Number.NEGATIVE_INFINITY : 0;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const yy = y * s + i - p;
              const zz = z * s + j - p;
              const inside = yy >= 0 && yy < h && zz >= 0 && zz < w;
              const v = inside ? x[(a * h + yy) * w + zz] : kind === 'max' ? Number.NEGATIVE_INFINITY : 0;
              acc = kind === 'max' ? Math.max(acc, v) : acc + v / (k * k);
            }
          out.push(acc);
        }
    return { out, shape: [n, c, oh, ow] };
  }

  it('max and average pooling equal direct loops', async () => {
    for (const [k, s, p] of [
      [2, 2, 0],
      [3, 1, 1],
      [3, 2, 1],
      [2, 1, 0],
    ]) {
      const shape = [2, 3, 6, 5];
      const x = seeded(shape, k + s + p);
      const xs = await values(x);
      for (const kind of ['max', 'avg'] as const) {
        const y =
          kind === 'max'
            ? maxPool2d(x, k, { stride: s, padding: p })
            : avgPool2d(x, k, { stride: s, padding: p });
        const ref = naivePool(xs, shape, k, s, p, kind);
        expect(y.shape).toEqual(ref.shape);
        await expectClose(y, ref.out, { atol: 1e-12 });
      }
    }
  });

  it('avgPool2d with countIncludePad=false divides by the valid elements', async () => {
    const y = avgPool2d(ones([1, 1, 3, 3]), 3, { stride: 1, padding: 1, countIncludePad: false });
    await expectClose(y, Array(9).fill(1));
    const withPad = avgPool2d(ones([1, 1, 3, 3]), 3, { stride: 1, padding: 1 });
    await expectClose(
      withPad,
      [4, 6, 4, 6, 9, 6, 4, 6, 4].map((v) => v / 9),
    );
  });

  it('pool modules default the stride to the kernel and check padding', () => {
    expect(new MaxPool2d(2).forward(randn([1, 2, 8, 6])).shape).toEqual([1, 2, 4, 3]);
    expect(new AvgPool2d([2, 3]).forward(randn([1, 2, 8, 6])).shape).toEqual([1, 2, 4, 2]);
    expect(() => new MaxPool2d(2, { padding: 2 })).toThrow(/padding \[2,2\] must be at most half the kernel/);
  });
});

describe('shape layers', () => {
  it('Flatten and Unflatten invert each other', async () => {
    const x = seeded([2, 3, 4, 5], 1);
    const flat = new Flatten().forward(x);
    expect(flat.shape).toEqual([2, 60]);
    const back = new Unflatten(1, [3, -1, 5]).forward(flat);
    expect(back.shape).toEqual([2, 3, 4, 5]);
    await expectClose(back, await values(x));
    expect(new Flatten(0, 1).forward(x).shape).toEqual([6, 4, 5]);
    expect(() => new Unflatten(1, [7, 9]).forward(flat)).toThrow(
      /Unflatten: cannot split axis 1 of \[2,60\]/,
    );
  });

  it('Embedding looks rows up by int32 id, zeroes paddingIdx', async () => {
    const emb = new Embedding(5, 3, { seed: 1, paddingIdx: 0 });
    const ids = tensor(
      [
        [1, 0],
        [4, 1],
      ],
      { dtype: 'int32' },
    );
    const out = emb.forward(ids);
    expect(out.shape).toEqual([2, 2, 3]);
    const w = await values(emb.weight);
    expect(w.slice(0, 3)).toEqual([0, 0, 0]);
    const o = await values(out);
    expect(o.slice(0, 3)).toEqual(w.slice(3, 6));
    expect(o.slice(3, 6)).toEqual([0, 0, 0]);
    expect(o.slice(6, 9)).toEqual(w.slice(12, 15));
    expect(() => emb.forward(tensor([1, 2]))).toThrow(/Embedding: ids must be int32, got float32/);
  });
});

describe('Dropout', () => {
  it('drops with probability p and rescales in training, is the identity in eval', async () => {
    const drop = new Dropout(0.25, { seed: 3 });
    const y = await values(drop.forward(ones([100, 100])));
    const zeros = y.filter((v) => v === 0).length;
    expect(y.every((v) => v === 0 || Math.abs(v - 1 / 0.75) < 1e-6)).toBe(true);
    expect(zeros / 1e4).toBeGreaterThan(0.22);
    expect(zeros / 1e4).toBeLessThan(0.28);
    const second = await values(drop.forward(ones([100, 100])));
    expect(second).not.toEqual(y); // fresh mask per call
    expect(await values(new Dropout(0.25, { seed: 3 }).forward(ones([100, 100])))).toEqual(y); // seeded
    drop.eval();
    const x = randn([4, 4]);
    expect(drop.forward(x)).toBe(x);
    expect(() => new Dropout(1.5)).toThrow(/Dropout: p must lie in \[0, 1\]/);
  });
});

describe('BatchNorm', () => {
  it('normalises with batch statistics while training and updates running stats (momentum 0.1)', async () => {
    const bn = new BatchNorm1d(3);
    const x = tensor([
      [1, 10, -1],
      [3, 20, -1],
      [5, 30, 2],
      [7, 40, 4],
    ]);
    const y = bn.forward(x);
    await expectClose(mean(y, 0), [0, 0, 0], { atol: 1e-6 });
    await expectClose(variance(y, 0, { correction: 0 }), [1, 1, 1], { atol: 1e-3 });
    // running = 0.9·init + 0.1·batch, the variance unbiased.
    await expectClose(bn.runningMean as Tensor, [0.4, 2.5, 0.1]);
    const unbiased = [20 / 3, 500 / 3, 18 / 3];
    await expectClose(
      bn.runningVar as Tensor,
      unbiased.map((v) => 0.9 + 0.1 * v),
    );
  });

  it('uses running statistics in eval mode, so outputs differ from training mode', async () => {
    const bn = new BatchNorm2d(2);
    const x = seeded([4, 2, 3, 3], 5, 'float32');
    const train = await values(bn.forward(x));
    bn.eval();
    const evalOut = await values(bn.forward(x));
    expect(evalOut).not.toEqual(train);
    // eval: (x − rm)/√(rv + ε) with the stats after one update.
    const rm = await values(bn.runningMean as Tensor);
    const rv = await values(bn.runningVar as Tensor);
    const xs = await values(x);
    const expected = xs.map((v, i) => {
      const c = Math.floor(i / 9) % 2;
      return (v - rm[c]) / Math.sqrt(rv[c] + 1e-5);
    });
    await expectClose(evalOut, expected, { atol: 1e-5 });
    const before = await values(bn.runningMean as Tensor);
    bn.forward(x);
    expect(await values(bn.runningMean as Tensor)).toEqual(before); // eval does not update
  });

  it('checks its input and refuses one value per channel in training', () => {
    expect(() => new BatchNorm1d(3).forward(randn([4, 4]))).toThrow(/BatchNorm1d: expected input \[N, 3\]/);
    expect(() => new BatchNorm2d(3).forward(randn([4, 3]))).toThrow(/BatchNorm2d/);
    expect(() => new BatchNorm1d(3).forward(randn([1, 3]))).toThrow(/more than one value per channel/);
    expect(new BatchNorm1d(3).eval().forward(randn([1, 3])).shape).toEqual([1, 3]);
  });
});

describe('LayerNorm', () => {
  it('normalises each sample over the trailing axes, same in train and eval', async () => {
    const ln = new LayerNorm([3, 4], { dtype: 'float64' });
    const x = seeded([2, 3, 4], 9);
    const y = ln.forward(x);
    await expectClose(mean(y, [1, 2]), [0, 0], { atol: 1e-10 });
    await expectClose(variance(y, [1, 2], { correction: 0 }), [1, 1], { atol: 1e-4 });
    await expectClose(ln.eval().forward(x), await values(y));
    expect(() => ln.forward(randn([2, 4, 3]))).toThrow(
      /LayerNorm: expected input \[\.\.\., 3, 4\], got \[2,4,3\]/,
    );
  });

  it('is one layerNorm primitive, equal to the composite formula', async () => {
    const ln = new LayerNorm(5, { eps: 1e-3, dtype: 'float64' });
    scope(() => {
      ln.weight!.assign(seeded([5], 3));
      ln.bias!.assign(seeded([5], 4));
    });
    const x = seeded([2, 3, 5], 5);
    const y = ln.forward(x);
    expect((y.gradFn as { op: string } | null)?.op).toBe('layerNorm');
    const expected = scope(() => {
      const centred = sub(x, mean(x, -1, true));
      const rstd = rsqrt(add(variance(x, -1, { correction: 0, keepDims: true }), 1e-3));
      return add(mul(mul(centred, rstd), ln.weight!), ln.bias!);
    });
    await expectClose(y, await values(expected), { atol: 1e-12 });
  });
});

describe('Sequential', () => {
  it('chains layers and frees intermediates', async () => {
    const model = new Sequential(
      new Conv2d(1, 4, 3, { padding: 1, seed: 1 }),
      new MaxPool2d(2),
      new Flatten(),
      new Dense(64, 10, { seed: 2 }),
    );
    const y = scope(() => model.forward(randn([2, 1, 8, 8])));
    expect(y.shape).toEqual([2, 10]);
    expect(model.length).toBe(4);
  });
});
