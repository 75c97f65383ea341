/**
 * Loss values against hand-computed numbers, reductions, stability at extreme inputs, and errors
 * for mismatched shapes.
 */
import {
  bceWithLogits,
  binaryCrossEntropy,
  crossEntropy,
  gaussianKl,
  l1Loss,
  mseLoss,
  nllLoss,
} from '@fluxion/nn';
import { FluxionError, logSoftmax, tensor, zeros } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { expectClose } from './helpers.js';

const ids = (v: number[]) => tensor(v, { dtype: 'int32' });

describe('regression losses', () => {
  it('mseLoss and l1Loss with each reduction', async () => {
    const x = tensor([1, 2, 3]);
    const y = tensor([1, 4, 0]);
    await expectClose(mseLoss(x, y), [13 / 3]);
    await expectClose(mseLoss(x, y, { reduction: 'sum' }), [13]);
    await expectClose(mseLoss(x, y, { reduction: 'none' }), [0, 4, 9]);
    await expectClose(l1Loss(x, y), [5 / 3]);
    await expectClose(l1Loss(x, y, { reduction: 'none' }), [0, 2, 3]);
  });

  it('reject mismatched shapes and unknown reductions', () => {
    expect(() => mseLoss(zeros([2, 3]), zeros([3, 2]))).toThrow(
      /mseLoss: input \[2,3\] float32 and target \[3,2\]/,
    );
    // biome-ignore lint/suspicious/noExplicitAny: testing a bad value
    expect(() => l1Loss(zeros([2]), zeros([2]), { reduction: 'avg' as any })).toThrow(FluxionError);
  });
});

describe('binary cross-entropy', () => {
  it('on probabilities, with the log clamped at −100', async () => {
    await expectClose(binaryCrossEntropy(tensor([0.9, 0.2]), tensor([1, 0])), [
      (-Math.log(0.9) - Math.log(0.8)) / 2,
    ]);
    // p = 0 for a positive target costs exactly 100, not ∞.
    await expectClose(binaryCrossEntropy(tensor([0, 1]), tensor([1, 0]), { reduction: 'none' }), [100, 100]);
    await expectClose(binaryCrossEntropy(tensor([0.5]), tensor([1]), { weight: tensor([2]) }), [
      2 * Math.LN2,
    ]);
  });

  it('on logits equals BCE(σ(x)) and stays exact at ±100', async () => {
    const x = [-3, -0.5, 0, 2];
    const y = [0, 1, 1, 0.3];
    const expected = x.map((v, i) => {
      const p = 1 / (1 + Math.exp(-v));
      return -(y[i] * Math.log(p) + (1 - y[i]) * Math.log(1 - p));
    });
    await expectClose(bceWithLogits(tensor(x), tensor(y), { reduction: 'none' }), expected);
    await expectClose(
      bceWithLogits(tensor([100, -100, 100, -100]), tensor([1, 0, 0, 1]), { reduction: 'none' }),
      [0, 0, 100, 100],
    );
    // posWeight scales the positive term: pw·y·softplus(−x) + (1 − y)·softplus(x).
    const pw = bceWithLogits(tensor([0.5]), tensor([1]), { posWeight: tensor([3]) });
    await expectClose(pw, [3 * Math.log1p(Math.exp(-0.5))]);
  });
});

describe('cross-entropy and nll', () => {
  const logits = tensor([
    [2, 1, 0.1],
    [0.5, 2.5, 0.3],
  ]);
  const logp = (row: number[]) => {
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((s, v) => s + Math.exp(v - m), 0));
    return row.map((v) => v - lse);
  };
  const lp = [logp([2, 1, 0.1]), logp([0.5, 2.5, 0.3])];

  it('from class indices equals −log softmax at the target', async () => {
    await expectClose(crossEntropy(logits, ids([0, 2]), { reduction: 'none' }), [-lp[0][0], -lp[1][2]]);
    await expectClose(crossEntropy(logits, ids([0, 2])), [-(lp[0][0] + lp[1][2]) / 2]);
    await expectClose(nllLoss(logSoftmax(logits, 1), ids([0, 2]), { reduction: 'sum' }), [
      -(lp[0][0] + lp[1][2]),
    ]);
  });

  it('with label smoothing mixes in the uniform distribution', async () => {
    const eps = 0.1;
    const expected = [0, 1].map((n) => {
      const t = [0, 2][n];
      return -lp[n].reduce((s, v, c) => s + ((c === t ? 1 - eps : 0) + eps / 3) * v, 0);
    });
    await expectClose(
      crossEntropy(logits, ids([0, 2]), { labelSmoothing: eps, reduction: 'none' }),
      expected,
    );
  });

  it('from probabilities, and over extra spatial axes with classes on axis 1', async () => {
    const q = tensor([
      [0.2, 0.3, 0.5],
      [1, 0, 0],
    ]);
    await expectClose(crossEntropy(logits, q, { reduction: 'none' }), [
      -(0.2 * lp[0][0] + 0.3 * lp[0][1] + 0.5 * lp[0][2]),
      -lp[1][0],
    ]);
    // [N=1, C=3, L=2]: the two positions are the two rows above.
    const spatial = tensor([
      [
        [2, 0.5],
        [1, 2.5],
        [0.1, 0.3],
      ],
    ]);
    const target = tensor([[0, 2]], { dtype: 'int32' });
    await expectClose(crossEntropy(spatial, target, { reduction: 'none' }), [-lp[0][0], -lp[1][2]]);
  });

  it('is stable for logits of ±1e4 and rejects bad targets', async () => {
    await expectClose(crossEntropy(tensor([[1e4, -1e4]]), ids([1])), [2e4], { rtol: 1e-6 });
    expect(() => crossEntropy(logits, ids([0, 1, 2]))).toThrow(
      /crossEntropy: class-index target must be int32 of shape \[2\]/,
    );
    expect(() => crossEntropy(logits, tensor([0, 1]))).toThrow(FluxionError);
  });
});

describe('gaussianKl', () => {
  it('against N(0, I): ½ Σ (σ² + μ² − 1 − log σ²), with batchmean', async () => {
    const mu = tensor([
      [0, 1],
      [0.5, -1],
    ]);
    const logVar = tensor([
      [0, Math.log(2)],
      [-1, 0.5],
    ]);
    const pairs = [
      [0, 0],
      [1, Math.log(2)],
      [0.5, -1],
      [-1, 0.5],
    ];
    const elems = pairs.map(([m, lv]) => 0.5 * (Math.exp(lv) + m * m - 1 - lv));
    await expectClose(gaussianKl(mu, logVar, { reduction: 'none' }), elems);
    const total = elems.reduce((a, b) => a + b, 0);
    await expectClose(gaussianKl(mu, logVar), [total]);
    await expectClose(gaussianKl(mu, logVar, { reduction: 'batchmean' }), [total / 2]);
    await expectClose(gaussianKl(mu, logVar, { reduction: 'mean' }), [total / 4]);
  });

  it('between two Gaussians is zero for equal ones and matches the closed form', async () => {
    const mu = tensor([0.3, -2]);
    const lv = tensor([0.1, 1]);
    await expectClose(gaussianKl(mu, lv, { prior: { mu, logVar: lv } }), [0], { atol: 1e-7 });
    // KL(N(1, 1) ‖ N(0, 4)) = log 2 + (1 + 1)/(2·4) − ½.
    const kl = gaussianKl(tensor([1]), tensor([0]), {
      prior: { mu: tensor([0]), logVar: tensor([Math.log(4)]) },
    });
    await expectClose(kl, [Math.log(2) + 2 / 8 - 0.5]);
  });
});
