/**
 * Gradients through every layer and loss, checked against central finite differences in float64
 * with autograd's `gradcheck` (PyTorch's defaults: eps 1e-6, atol 1e-5, rtol 1e-3). Layers with
 * parameters are checked with respect to input and parameters at once: the test swaps the
 * gradcheck inputs into the layer's fields for the call.
 */
import { gradcheck, gradgradcheck } from '@fluxion/autograd';
import {
  avgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  bceWithLogits,
  binaryCrossEntropy,
  conv2d,
  convTranspose2d,
  crossEntropy,
  Dense,
  Embedding,
  gaussianKl,
  LayerNorm,
  l1Loss,
  type Module,
  maxPool2d,
  mseLoss,
  nllLoss,
} from '@fluxion/nn';
import { logSoftmax, sigmoid, softmax, sum, type Tensor, tensor } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { expectClose, seeded } from './helpers.js';

/** Runs `fn` with some of `module`'s fields temporarily replaced by `fields`. */
function withFields<T>(module: Module, fields: Record<string, Tensor>, fn: () => T): T {
  const target = module as unknown as Record<string, unknown>;
  const saved = Object.fromEntries(Object.keys(fields).map((k) => [k, target[k]]));
  Object.assign(target, fields);
  try {
    return fn();
  } finally {
    Object.assign(target, saved);
  }
}

const f64 = { dtype: 'float64' } as const;

describe('gradcheck through layers (float64)', () => {
  it('Dense with activation', async () => {
    const layer = new Dense(3, 2, { ...f64, activation: 'tanh', seed: 0 });
    const f = (x: Tensor, w: Tensor, b: Tensor) =>
      withFields(layer, { weight: w, bias: b }, () => layer.forward(x));
    const report = await gradcheck(f, [seeded([4, 3], 1), layer.weight, layer.bias as Tensor]);
    expect(report.ok).toBe(true);
  });

  it.each([
    { name: 'stride 2, padding 1', options: { stride: 2, padding: 1 } },
    { name: 'dilation 2, padding [0, 2]', options: { dilation: 2, padding: [0, 2] as [number, number] } },
    { name: 'groups 2, stride [1, 2]', options: { groups: 2, stride: [1, 2] as [number, number] } },
  ])('conv2d with $name', async ({ options }) => {
    const groups = 'groups' in options ? (options.groups ?? 1) : 1;
    const x = seeded([2, 2, 5, 6], 2);
    const w = seeded([2, 2 / groups, 3, 3], 3);
    const b = seeded([2], 4);
    const report = await gradcheck((xx, ww, bb) => conv2d(xx, ww, bb, options), [x, w, b]);
    expect(report.checked).toBeGreaterThan(0);
  });

  it('convTranspose2d with stride, padding, output padding and dilation', async () => {
    const x = seeded([1, 2, 3, 3], 5);
    const w = seeded([2, 2, 3, 3], 6);
    const b = seeded([2], 7);
    const options = { stride: 2, padding: 1, outputPadding: 1, dilation: [1, 2] as [number, number] };
    await gradcheck((xx, ww, bb) => convTranspose2d(xx, ww, bb, options), [x, w, b]);
  });

  it('maxPool2d and avgPool2d (overlapping windows, padding)', async () => {
    const x = seeded([1, 2, 5, 5], 8);
    await gradcheck((xx) => maxPool2d(xx, 3, { stride: 2, padding: 1 }), [x]);
    await gradcheck((xx) => avgPool2d(xx, 3, { stride: 2, padding: 1 }), [x]);
    await gradcheck((xx) => avgPool2d(xx, 2, { stride: 1, padding: 1, countIncludePad: false }), [x]);
  });

  it('BatchNorm1d and BatchNorm2d in training mode (batch statistics) and eval mode', async () => {
    const bn1 = new BatchNorm1d(3, f64);
    const f1 = (x: Tensor, w: Tensor, b: Tensor) =>
      withFields(bn1, { weight: w, bias: b }, () => bn1.forward(x));
    await gradcheck(f1, [seeded([5, 3], 9), seeded([3], 10), seeded([3], 11)]);
    const bn2 = new BatchNorm2d(2, f64);
    const f2 = (x: Tensor, w: Tensor, b: Tensor) =>
      withFields(bn2, { weight: w, bias: b }, () => bn2.forward(x));
    await gradcheck(f2, [seeded([2, 2, 3, 3], 12), seeded([2], 13), seeded([2], 14)]);
    bn2.eval();
    await gradcheck(f2, [seeded([2, 2, 3, 3], 15), seeded([2], 16), seeded([2], 17)]);
  });

  it('LayerNorm', async () => {
    const ln = new LayerNorm(4, f64);
    const f = (x: Tensor, w: Tensor, b: Tensor) =>
      withFields(ln, { weight: w, bias: b }, () => ln.forward(x));
    await gradcheck(f, [seeded([3, 4], 18), seeded([4], 19), seeded([4], 20)]);
    // Second derivatives (a gradient penalty through a LayerNorm needs them).
    await gradgradcheck(f, [seeded([3, 4], 21), seeded([4], 22), seeded([4], 23)]);
  });

  it('Embedding accumulates gradients of repeated ids', async () => {
    const emb = new Embedding(4, 3, { ...f64, seed: 1 });
    const ids = tensor(
      [
        [0, 2],
        [2, 3],
      ],
      { dtype: 'int32' },
    );
    const f = (w: Tensor, i: Tensor) => withFields(emb, { weight: w }, () => emb.forward(i));
    await gradcheck(f, [emb.weight, ids]);
  });
});

describe('gradcheck through losses (float64)', () => {
  const target = seeded([3, 4], 21);
  it.each([
    ['mseLoss', (x: Tensor) => mseLoss(x, target)],
    ['l1Loss', (x: Tensor) => l1Loss(x, target, { reduction: 'sum' })],
    ['bceWithLogits', (x: Tensor) => bceWithLogits(x, sigmoid(target))],
    ['binaryCrossEntropy', (x: Tensor) => binaryCrossEntropy(sigmoid(x), sigmoid(target))],
    [
      'crossEntropy (indices, smoothing)',
      (x: Tensor) => crossEntropy(x, tensor([0, 3, 1], { dtype: 'int32' }), { labelSmoothing: 0.1 }),
    ],
    ['crossEntropy (probabilities)', (x: Tensor) => crossEntropy(x, softmax(target, 1))],
    [
      'nllLoss',
      (x: Tensor) => nllLoss(logSoftmax(x, 1), tensor([2, 2, 0], { dtype: 'int32' }), { reduction: 'none' }),
    ],
    ['gaussianKl vs N(0, I)', (x: Tensor) => gaussianKl(x, sum(x, 1, true).expand([3, 4]))],
    [
      'gaussianKl between Gaussians',
      (x: Tensor) => gaussianKl(x, x, { prior: { mu: target, logVar: target } }),
    ],
  ] as const)('%s', async (_name, f) => {
    await gradcheck(f, [seeded([3, 4], 22)]);
  });

  it('bceWithLogits is finite with the exact gradient σ(x) − y at logits of ±100', async () => {
    const x = tensor([100, -100, 100, -100], f64);
    x.requiresGrad = true;
    const y = tensor([1, 0, 0, 1], f64);
    const loss = bceWithLogits(x, y, { reduction: 'sum' });
    await expectClose(loss, [200], { rtol: 1e-12 }); // the two wrong predictions cost 100 each
    loss.backward();
    await expectClose(x.grad as Tensor, [0, 0, 1, -1], { atol: 1e-15 });
  });
});
