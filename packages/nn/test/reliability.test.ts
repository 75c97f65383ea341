/**
 * Reliability at the edges (issue #18, items 5–7): ELU's gradient at large inputs, the gradient of
 * binaryCrossEntropy at probabilities of exactly 0 and 1, finite gradients of the saturating
 * activations and losses at ±100 and ±1000, and out-of-range class labels and ids, which raise a
 * FluxionError naming the op, the value and the valid range (on WebGPU at the next read).
 * Every WebGPU case compares with the CPU backend.
 */
import { gradcheck, grad as gradOf } from '@fluxion/autograd';
import {
  bceWithLogits,
  binaryCrossEntropy,
  crossEntropy,
  ELU,
  Embedding,
  elu,
  nllLoss,
  Softplus,
  sigmoid,
  softplus,
} from '@fluxion/nn';
import {
  type BackendName,
  FluxionError,
  fullLike,
  logSigmoid,
  logSoftmax,
  memoryStats,
  onesLike,
  reshape,
  sum,
  type Tensor,
  tensor,
  zerosLike,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';

const gpu = await webgpuEnv();
const BACKENDS: BackendName[] = gpu.backend ? ['cpu', 'webgpu'] : ['cpu'];

/** Asserts |actual − expected| ≤ 1e-5 · |expected| + 1e-6. */
function expectNear(actual: number, expected: number, what: string): void {
  if (!(Math.abs(actual - expected) <= 1e-5 * Math.abs(expected) + 1e-6)) {
    expect.fail(`${what}: got ${actual}, expected ${expected}`);
  }
}

const read = async (t: Tensor): Promise<number[]> => {
  try {
    return Array.from(await t.data(), Number);
  } finally {
    t.dispose();
  }
};

/** The gradient of `sum(f(x))` at `xs` on a backend (float32), as numbers. */
async function gradAt(f: (x: Tensor) => Tensor, xs: number[], backend: BackendName): Promise<number[]> {
  const x = tensor(xs, { backend });
  try {
    return await read(gradOf((t: Tensor) => sum(f(t)))(x));
  } finally {
    x.dispose();
  }
}

/** Asserts every value is finite, naming the first one that is not. */
function expectFinite(what: string, vs: number[]): void {
  const bad = vs.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) expect.fail(`${what}: element ${bad} is ${vs[bad]} (${vs.join(', ')})`);
}

const EXTREMES = [-1000, -100, -20, -1, -1e-3, 0, 1e-3, 1, 20, 88, 89, 100, 1000];

describe('ELU at large inputs (issue #18 item 6)', () => {
  for (const backend of BACKENDS) {
    it(`function and module: gradient exactly 1 above 0 and α·eˣ below, value exact (${backend})`, async () => {
      for (const alpha of [1, 0.5]) {
        const expected = EXTREMES.map((v) => (v > 0 ? 1 : alpha * Math.exp(v)));
        const module = new ELU(alpha);
        for (const g of [
          await gradAt((t) => elu(t, alpha), EXTREMES, backend),
          await gradAt((t) => module.forward(t), EXTREMES, backend),
        ]) {
          g.forEach((v, i) => {
            if (EXTREMES[i] > 0) expect(v, `x = ${EXTREMES[i]}`).toBe(1);
            else expect(v, `x = ${EXTREMES[i]}`).toBeCloseTo(expected[i], 6);
          });
        }
        const y = await read(elu(tensor(EXTREMES, { backend }), alpha));
        y.forEach((v, i) => {
          const e = EXTREMES[i] > 0 ? EXTREMES[i] : alpha * Math.expm1(EXTREMES[i]);
          expect(v, `elu(${EXTREMES[i]})`).toBeCloseTo(e, 6);
        });
      }
    });
  }

  it('gradcheck in float64 at ±20, ±100, ±1000 (away from the kink at 0)', async () => {
    const x = tensor([-1000, -100, -20, -0.5, 0.5, 20, 100, 1000], { dtype: 'float64' });
    await gradcheck((t) => elu(t, 0.7), [x]);
    await gradcheck((t) => new ELU(1.3).forward(t), [x]);
  });

  it('issue reproduction: grad(sum(elu))([1, 88, 89, 100]) = [1, 1, 1, 1]', async () => {
    for (const backend of BACKENDS)
      expect(await gradAt(elu, [1, 88, 89, 100], backend)).toEqual([1, 1, 1, 1]);
  });
});

describe('binaryCrossEntropy at probabilities of 0 and 1 (issue #18 item 7)', () => {
  /** PyTorch's gradient: w (p − y) / max(p (1 − p), 1e-12), over the batch for 'mean'. */
  const torchGrad = (p: number, y: number) => (p - y) / Math.max(p * (1 - p), 1e-12);
  const P = [0, 0, 1, 1, 0.5, 0.5];
  const Y = [0, 1, 0, 1, 0, 1];

  for (const backend of BACKENDS) {
    it(`finite loss and PyTorch's gradient for p in {0, 1, 0.5}, y in {0, 1} (${backend})`, async () => {
      const p = tensor(P, { backend });
      const y = tensor(Y, { backend });
      const w = tensor([1, 2, 3, 4, 5, 6], { backend });
      try {
        const loss = await read(binaryCrossEntropy(p, y, { reduction: 'none' }));
        const clampedLog = (v: number) => Math.max(Math.log(v), -100);
        P.forEach((pv, i) => {
          const e = -(Y[i] * clampedLog(pv) + (1 - Y[i]) * clampedLog(1 - pv));
          expect(loss[i]).toBeCloseTo(e, 5);
        });
        for (const [reduction, scale] of [
          ['sum', 1],
          ['mean', 1 / P.length],
        ] as const) {
          const g = await read(gradOf((t: Tensor) => binaryCrossEntropy(t, y, { reduction }))(p));
          expectFinite(`d/dp ${reduction}`, g);
          g.forEach((v, i) => {
            expectNear(v, scale * torchGrad(P[i], Y[i]), `${reduction}: p=${P[i]} y=${Y[i]}`);
          });
        }
        const gw = await read(
          gradOf((t: Tensor) => binaryCrossEntropy(t, y, { weight: w, reduction: 'sum' }))(p),
        );
        gw.forEach((v, i) => {
          expectNear(v, (i + 1) * torchGrad(P[i], Y[i]), `weighted: p=${P[i]} y=${Y[i]}`);
        });
        // The target's gradient stays the clamped logs' difference: log(1 − p) − log p.
        const gy = await read(gradOf((t: Tensor) => binaryCrossEntropy(p, t, { reduction: 'sum' }))(y));
        const clamped = (v: number) => Math.max(Math.log(v), -100);
        gy.forEach((v, i) => {
          expect(v).toBeCloseTo(clamped(1 - P[i]) - clamped(P[i]), 4);
        });
      } finally {
        for (const t of [p, y, w]) t.dispose();
      }
    });
  }

  it('issue reproduction: grad(p => bce(p, [1, 0]))([1, 0]) is finite (0 where p = y)', async () => {
    for (const backend of BACKENDS) {
      const y = tensor([1, 0], { backend });
      const g = await read(gradOf((p: Tensor) => binaryCrossEntropy(p, y))(tensor([1, 0], { backend })));
      y.dispose();
      expect(g).toEqual([0, 0]);
    }
  });

  it('gradcheck in float64 away from the kink, for the input, the target and a weight', async () => {
    const p = tensor([1e-6, 0.01, 0.3, 0.5, 0.8, 0.999, 1 - 1e-6], { dtype: 'float64' });
    const y = tensor([0, 1, 0.25, 1, 0, 0.5, 1], { dtype: 'float64' });
    const w = tensor([1, 2, 0.5, 1, 3, 1, 2], { dtype: 'float64' });
    await gradcheck((a, b) => binaryCrossEntropy(a, b), [p, y], { eps: 1e-9, rtol: 1e-4 });
    await gradcheck((a, b) => binaryCrossEntropy(a, y, { weight: b, reduction: 'sum' }), [p, w], {
      eps: 1e-9,
      rtol: 1e-4,
    });
  });
});

describe('finite gradients of saturating functions at ±100 and ±1000', () => {
  const X = [-1000, -100, -20, 0, 20, 100, 1000];
  const cases: [string, (x: Tensor) => Tensor][] = [
    ['elu', (x) => elu(x)],
    ['ELU module', (x) => new ELU(2).forward(x)],
    ['sigmoid', sigmoid],
    ['softplus', softplus],
    ['Softplus module', (x) => new Softplus().forward(x)],
    ['logSigmoid', logSigmoid],
    ['logSoftmax', (x) => logSoftmax(x, 0)],
    ['bceWithLogits y=1', (x) => bceWithLogits(x, onesLike(x))],
    ['bceWithLogits y=0', (x) => bceWithLogits(x, zerosLike(x))],
    [
      'bceWithLogits y=0.5 posWeight',
      (x) => bceWithLogits(x, fullLike(x, 0.5), { posWeight: fullLike(x, 3) }),
    ],
    ['binaryCrossEntropy(sigmoid(x)) y=1', (x) => binaryCrossEntropy(sigmoid(x), onesLike(x))],
    ['binaryCrossEntropy(sigmoid(x)) y=0', (x) => binaryCrossEntropy(sigmoid(x), zerosLike(x))],
  ];
  for (const backend of BACKENDS) {
    for (const dtype of backend === 'cpu' ? (['float32', 'float64'] as const) : (['float32'] as const)) {
      it.each(cases)(`%s (${backend}, ${dtype})`, async (name, f) => {
        const x = tensor(X, { backend, dtype });
        try {
          const value = await read(sum(f(x)));
          expectFinite(`${name} value`, value);
          expectFinite(`${name} gradient`, await read(gradOf((t: Tensor) => sum(f(t)))(x)));
        } finally {
          x.dispose();
        }
      });
    }
  }
});

describe('finite gradients on random inputs of every magnitude up to 10⁴', () => {
  /** `n` values ±10^u, u uniform in [−3, 4], from a fixed LCG (plus the exact extremes). */
  function sweep(n: number, seed: number): number[] {
    let s = seed;
    const next = () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648;
    };
    const out = [-1e4, -1000, -100, 100, 1000, 1e4];
    while (out.length < n) out.push((next() < 0.5 ? -1 : 1) * 10 ** (next() * 7 - 3));
    return out;
  }
  const fns: [string, (x: Tensor) => Tensor][] = [
    ['elu', (x) => elu(x, 0.8)],
    ['sigmoid', sigmoid],
    ['softplus', softplus],
    ['logSigmoid', logSigmoid],
    ['bceWithLogits', (x) => bceWithLogits(x, fullLike(x, 0.3), { posWeight: fullLike(x, 2) })],
    ['binaryCrossEntropy(sigmoid)', (x) => binaryCrossEntropy(sigmoid(x), fullLike(x, 0.7))],
    [
      'crossEntropy',
      (x) =>
        crossEntropy(
          reshape(x, [50, 4]),
          tensor(
            Int32Array.from({ length: 50 }, (_, i) => (i * 7) % 4),
            { backend: x.backend.name },
          ),
        ),
    ],
  ];
  for (const backend of BACKENDS) {
    it(`400 values per function (${backend})`, async () => {
      for (const [seed, [name, f]] of fns.entries()) {
        for (const dtype of backend === 'cpu' ? (['float32', 'float64'] as const) : (['float32'] as const)) {
          const x = tensor(sweep(200, seed + 1), { backend, dtype });
          try {
            expectFinite(`${name} ${dtype} value`, await read(sum(f(x))));
            expectFinite(`${name} ${dtype} gradient`, await read(gradOf((t: Tensor) => sum(f(t)))(x)));
          } finally {
            x.dispose();
          }
        }
      }
    });
  }

  it('gradcheck of crossEntropy with ignoreIndex and label smoothing (float64)', async () => {
    const x = tensor(
      [
        [2, 1, 0],
        [0, 1, 2],
        [1, 3, 1],
        [50, -50, 0],
      ],
      { dtype: 'float64' },
    );
    const y = tensor([0, -100, 2, 1], { dtype: 'int32' });
    await gradcheck((t) => crossEntropy(t, y, { ignoreIndex: -100, labelSmoothing: 0.1 }), [x]);
    await gradcheck((t) => nllLoss(logSoftmax(t, 1), y, { ignoreIndex: -100, reduction: 'sum' }), [x]);
  });
});

describe.skipIf(!gpu.backend)(`ELU and BCE: WebGPU equals CPU${skipNote(gpu)}`, () => {
  it('values and gradients at ±20, ±100, ±1000, and no buffer left behind', async () => {
    const before = memoryStats().liveTensors;
    const X = [-1000, -100, -20, -3, -0.25, 0.25, 3, 20, 100, 1000];
    const fns: ((x: Tensor) => Tensor)[] = [(x) => elu(x, 1.5), (x) => new ELU().forward(x)];
    for (const f of fns) {
      const [cpuValue, gpuValue] = await Promise.all(
        BACKENDS.map((b) => {
          const x = tensor(X, { backend: b });
          return read(f(x)).finally(() => x.dispose());
        }),
      );
      const [cpuGrad, gpuGrad] = await Promise.all(BACKENDS.map((b) => gradAt(f, X, b)));
      gpuValue.forEach((v, i) => {
        expect(v).toBeCloseTo(cpuValue[i], 4);
      });
      expect(gpuGrad).toEqual(cpuGrad.map((v, i) => (X[i] > 0 ? 1 : expect.closeTo(v, 6))));
    }
    const P = [0, 1, 0.5, 1e-30, 0.25, 0.999];
    const Y = [1, 0, 1, 0, 0.5, 1];
    const [cpuBce, gpuBce] = await Promise.all(
      BACKENDS.map((b) => {
        const y = tensor(Y, { backend: b });
        const g = gradAt((p) => binaryCrossEntropy(p, y, { reduction: 'none' }), P, b);
        return g.finally(() => y.dispose());
      }),
    );
    gpuBce.forEach((v, i) => {
      expectNear(v, cpuBce[i], `bce gradient at p = ${P[i]}, y = ${Y[i]}`);
    });
    expect(memoryStats().liveTensors).toBe(before);
  });
});

describe('out-of-range class labels and ids raise (issue #18 item 5)', () => {
  const labels = (v: number[], backend: BackendName) => tensor(v, { dtype: 'int32', backend });
  /** A FluxionError of `op` whose message matches `pattern`, from the op (CPU) or the read (WebGPU). */
  async function expectRaises(op: string, pattern: RegExp, fn: () => Tensor): Promise<void> {
    let error: unknown = null;
    try {
      await read(fn());
    } catch (e) {
      error = e;
    }
    expect(error, `${op} should raise`).toBeInstanceOf(FluxionError);
    expect((error as FluxionError).op).toBe(op);
    expect((error as FluxionError).message).toMatch(pattern);
  }
  const where = (backend: BackendName) => (backend === 'webgpu' ? / \(found on the webgpu device/ : /$/);

  for (const backend of BACKENDS) {
    it(`crossEntropy and nllLoss: labels past the last class or negative (${backend})`, async () => {
      const logits = tensor([[2, 1, 0]], { backend });
      const batch = tensor(
        [
          [2, 1, 0],
          [0, 1, 2],
        ],
        { backend },
      );
      // The reproduction: this was a loss of 0.
      await expectRaises(
        'crossEntropy',
        /^crossEntropy: class label 3 is out of range for scores \[1,3\] with 3 classes; valid: \[0, 3\)/,
        () => crossEntropy(logits, labels([3], backend)),
      );
      await expectRaises('crossEntropy', /class label -1 is out of range/, () =>
        crossEntropy(batch, labels([0, -1], backend)),
      );
      await expectRaises('crossEntropy', /class label 7 is out of range/, () =>
        crossEntropy(batch, labels([7, 1], backend), { labelSmoothing: 0.1, reduction: 'sum' }),
      );
      await expectRaises(
        'nllLoss',
        /^nllLoss: class label 3 is out of range for scores \[2,3\] with 3 classes; valid: \[0, 3\)/,
        () => nllLoss(logSoftmax(batch, 1), labels([1, 3], backend)),
      );
      await expectRaises('nllLoss', /class label -5 is out of range/, () =>
        nllLoss(logSoftmax(batch, 1), labels([-5, 0], backend), { reduction: 'none' }),
      );
      // Spatial scores [N, C, L] and the gradient's path raise too.
      const spatial = tensor(
        [
          [
            [1, 2],
            [3, 4],
            [5, 6],
          ],
        ],
        { backend },
      );
      await expectRaises('crossEntropy', /class label 3 is out of range for scores \[1,3,2\]/, () =>
        crossEntropy(spatial, tensor([[0, 3]], { dtype: 'int32', backend })),
      );
      await expectRaises('crossEntropy', where(backend), () =>
        gradOf((t: Tensor) => crossEntropy(t, labels([1, 4], backend)))(batch),
      );
      for (const t of [logits, batch, spatial]) t.dispose();
    });

    it(`Embedding: ids past the table or negative (${backend})`, async () => {
      const emb = new Embedding(4, 2, { seed: 1, backend });
      await expectRaises(
        'Embedding',
        /^Embedding: id 4 is out of range for a table of 4 embeddings; valid: \[0, 4\)/,
        () => emb.forward(labels([0, 4], backend)),
      );
      const padded = new Embedding(4, 2, { seed: 1, backend, paddingIdx: 0 });
      await expectRaises('Embedding', /id -1 is out of range/, () => padded.forward(labels([-1], backend)));
      expect(await read(emb.forward(labels([3], backend)))).toHaveLength(2);
      emb.dispose();
      padded.dispose();
    });

    it(`ignoreIndex: ignored samples count for nothing, others are still checked (${backend})`, async () => {
      const x = tensor(
        [
          [2, 1, 0],
          [0, 1, 2],
          [1, 1, 1],
        ],
        { backend },
      );
      const y = labels([0, -100, 2], backend);
      const keptOnly = crossEntropy(
        tensor(
          [
            [2, 1, 0],
            [1, 1, 1],
          ],
          { backend },
        ),
        labels([0, 2], backend),
        { reduction: 'none' },
      );
      const [l0, l2] = await read(keptOnly);
      for (const [reduction, expected] of [
        ['mean', [(l0 + l2) / 2]],
        ['sum', [l0 + l2]],
        ['none', [l0, 0, l2]],
      ] as const) {
        const got = await read(crossEntropy(x, y, { ignoreIndex: -100, reduction }));
        got.forEach((v, i) => {
          expectNear(v, expected[i], `${reduction} ${i}`);
        });
        const nll = await read(nllLoss(logSoftmax(x, 1), y, { ignoreIndex: -100, reduction }));
        nll.forEach((v, i) => {
          expectNear(v, expected[i], `nll ${reduction} ${i}`);
        });
      }
      const g = await read(
        gradOf((t: Tensor) => crossEntropy(t, y, { ignoreIndex: -100, labelSmoothing: 0.2 }))(x),
      );
      expect(g.slice(3, 6)).toEqual([0, 0, 0]);
      expectFinite('ignoreIndex gradient', g);
      // An in-range ignoreIndex (a padding class) and a label that is neither.
      const pad = await read(
        crossEntropy(x, labels([1, 1, 2], backend), { ignoreIndex: 1, reduction: 'sum' }),
      );
      expectNear(pad[0], l2, 'ignoreIndex 1');
      await expectRaises(
        'crossEntropy',
        /class label -1 is out of range for scores \[3,3\] with 3 classes \(and ignoreIndex -100\)/,
        () => crossEntropy(x, labels([0, -100, -1], backend), { ignoreIndex: -100 }),
      );
      expect(() => crossEntropy(x, y, { ignoreIndex: 0.5 })).toThrow(
        /ignoreIndex must be an integer, got 0.5/,
      );
      for (const t of [x, y]) t.dispose();
    });
  }
});
