/**
 * Optimizers: trajectories against hand-derived values and closed forms, L2 weight decay vs
 * AdamW's decoupled decay, parameter groups, state dicts (through safetensors), and small real
 * problems: linear regression under MSE recovers its weights with every optimizer, and an MLP
 * fits XOR under BCE-with-logits.
 */
import {
  Adagrad,
  Adam,
  AdamW,
  BatchNorm2d,
  bceWithLogits,
  Conv2d,
  clipGradNorm,
  crossEntropy,
  Dense,
  Dropout,
  Flatten,
  loadSafetensors,
  MaxPool2d,
  mseLoss,
  type Optimizer,
  Parameter,
  ReLU,
  RMSprop,
  Sequential,
  SGD,
  saveSafetensors,
  Tanh,
} from '@fluxion/nn';
import {
  add,
  FluxionError,
  matmul,
  memoryStats,
  mul,
  randn,
  scope,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { expectClose, values } from './helpers.js';

const f64 = { dtype: 'float64' } as const;

/** A float64 scalar-vector parameter. */
const param = (v: number[]) => new Parameter(tensor(v, f64));

/** Runs `steps` optimizer steps on loss `f(x)`, returning x after each step. */
async function trajectory(
  x: Parameter,
  opt: Optimizer<{ lr: number }>,
  f: (x: Tensor) => Tensor,
  steps: number,
) {
  const out: number[][] = [];
  for (let i = 0; i < steps; i++) {
    opt.zeroGrad();
    scope(() => f(x).backward());
    opt.step();
    out.push(await values(x));
  }
  return out;
}

const square = (x: Tensor) => sum(mul(x, x)); // f(x) = x², ∇f = 2x
const linear = (x: Tensor) => sum(x); //          f(x) = x,  ∇f = 1

describe('SGD', () => {
  it('plain: x_t = x₀ (1 − 2·lr)ᵗ on f(x) = x²', async () => {
    const x = param([1, -2]);
    const traj = await trajectory(x, new SGD([x], { lr: 0.1 }), square, 4);
    traj.forEach((xt, t) => {
      expect(xt).toEqual([0.8 ** (t + 1), -2 * 0.8 ** (t + 1)].map((v) => expect.closeTo(v, 12)));
    });
  });

  it('momentum 0.9 (lr 0.1) on f(x) = x² from x = 1: 0.8, 0.46, 0.062', async () => {
    // b₁ = g₁ = 2 → x₁ = 0.8; g₂ = 1.6, b₂ = 0.9·2 + 1.6 = 3.4 → x₂ = 0.46; g₃ = 0.92, b₃ = 3.98 → x₃ = 0.062.
    const x = param([1]);
    const traj = await trajectory(x, new SGD([x], { lr: 0.1, momentum: 0.9 }), square, 3);
    await expectClose(traj.flat(), [0.8, 0.46, 0.062], { atol: 1e-12 });
  });

  it('Nesterov momentum: 0.62, 0.2224, −0.108352', async () => {
    // d = g + μb: g₁ = 2, b₁ = 2, d₁ = 3.8 → 0.62; g₂ = 1.24, b₂ = 3.04, d₂ = 3.976 → 0.2224;
    // g₃ = 0.4448, b₃ = 3.1808, d₃ = 3.30752 → −0.108352.
    const x = param([1]);
    const traj = await trajectory(x, new SGD([x], { lr: 0.1, momentum: 0.9, nesterov: true }), square, 3);
    await expectClose(traj.flat(), [0.62, 0.2224, -0.108352], { atol: 1e-12 });
  });

  it('dampening applies from the second step; weight decay adds λx to the gradient', async () => {
    // dampening 0.5: b₁ = 2 → 0.8; b₂ = 0.9·2 + 0.5·1.6 = 2.6 → 0.54.
    const x = param([1]);
    const traj = await trajectory(x, new SGD([x], { lr: 0.1, momentum: 0.9, dampening: 0.5 }), square, 2);
    await expectClose(traj.flat(), [0.8, 0.54], { atol: 1e-12 });
    // weight decay 0.5 on f(x) = x: g = 1 + 0.5x; x₁ = 1 − 0.1·1.5 = 0.85.
    const y = param([1]);
    await expectClose(
      (await trajectory(y, new SGD([y], { lr: 0.1, weightDecay: 0.5 }), linear, 1)).flat(),
      [0.85],
    );
    expect(() => new SGD([y], { lr: 0.1, nesterov: true })).toThrow(
      /SGD: Nesterov momentum needs momentum > 0/,
    );
  });
});

describe('Adam', () => {
  it('on f(x) = x (constant gradient) moves by exactly lr·g/(|g| + ε) per step: x_t = x₀ − t·lr/(1 + ε)', async () => {
    const x = param([3, -1]);
    const traj = await trajectory(x, new Adam([x], { lr: 0.01 }), linear, 5);
    const step = 0.01 / (1 + 1e-8);
    traj.forEach((xt, t) => {
      expect(xt).toEqual([3 - step * (t + 1), -1 - step * (t + 1)].map((v) => expect.closeTo(v, 12)));
    });
  });

  it('bias-corrected update on f(x) = x²: x₁ = x₀ − lr, then the two-moment formula', async () => {
    const x = param([1]);
    const traj = await trajectory(x, new Adam([x], { lr: 0.1 }), square, 2);
    // Step 1: m̂ = g, v̂ = g², so x₁ = 1 − 0.1·2/(2 + 1e-8).
    // Step 2: g = 1.8, m = 0.9·0.2 + 0.1·1.8 = 0.36, v = 0.999·0.004 + 0.001·3.24 = 0.007236.
    const x1 = 1 - (0.1 * 2) / (2 + 1e-8);
    const mHat = 0.36 / (1 - 0.9 ** 2);
    const vHat = 0.007236 / (1 - 0.999 ** 2);
    await expectClose(traj.flat(), [x1, x1 - (0.1 * mHat) / (Math.sqrt(vHat) + 1e-8)], { atol: 1e-12 });
  });

  it('AMSGrad keeps the largest second moment, so it steps less after the gradient shrinks', async () => {
    // Gradients 10 then 1 (set directly): v₂ < v₁ for Adam's average but AMSGrad keeps max(v̂).
    const run = async (amsgrad: boolean) => {
      const x = param([0]);
      const opt = new Adam([x], { lr: 1, beta2: 0.5, amsgrad });
      for (const g of [10, 1]) {
        x.grad = tensor([g], f64);
        opt.step();
      }
      return (await values(x))[0];
    };
    // Both take the same first step; the second differs in v̂ (β₁ 0.9, β₂ 0.5).
    const b1 = 0.9;
    const b2 = 0.5;
    const m2 = b1 * (1 - b1) * 10 + (1 - b1) * 1;
    const v1 = (1 - b2) * 100;
    const v2 = b2 * v1 + (1 - b2) * 1;
    const first = 10 / (10 + 1e-8); // x₁ = −lr·m̂/(√v̂ + ε) with m̂ = 10, v̂ = 100
    const adamX2 = -first - m2 / (1 - b1 ** 2) / (Math.sqrt(v2 / (1 - b2 ** 2)) + 1e-8);
    const amsX2 = -first - m2 / (1 - b1 ** 2) / (Math.sqrt(Math.max(v1, v2) / (1 - b2 ** 2)) + 1e-8);
    expect(await run(false)).toBeCloseTo(adamX2, 9);
    expect(await run(true)).toBeCloseTo(amsX2, 9);
    expect(Math.abs(amsX2 + 1)).toBeLessThan(Math.abs(adamX2 + 1));
  });

  it('L2 weight decay (Adam) and decoupled decay (AdamW) differ as they should', async () => {
    // Zero loss gradient: Adam's gradient is λθ alone, which its normalisation turns into a step of
    // lr·sign(θ) whatever λ; AdamW shrinks θ by (1 − lr·λ) per step and takes no Adam step (m = 0).
    const lr = 0.01;
    const wd = 0.1;
    const a = param([2, -4]);
    const w = param([2, -4]);
    const adam = new Adam([a], { lr, weightDecay: wd });
    const adamw = new AdamW([w], { lr, weightDecay: wd });
    for (let t = 1; t <= 3; t++) {
      for (const p of [a, w]) p.grad = tensor([0, 0], f64);
      adam.step();
      adamw.step();
      await expectClose(w, [2 * (1 - lr * wd) ** t, -4 * (1 - lr * wd) ** t], { atol: 1e-12 });
    }
    await expectClose(a, [2 - 3 * lr, -4 + 3 * lr], { atol: 1e-6 });
    expect(new AdamW([param([1])]).paramGroups[0].weightDecay).toBe(0.01);
  });
});

describe('RMSprop and Adagrad', () => {
  it('RMSprop on a constant gradient: x_t = x₀ − lr Σ 1/√(1 − αᵏ)', async () => {
    const x = param([0]);
    const traj = await trajectory(x, new RMSprop([x], { lr: 0.01, alpha: 0.9, eps: 0 }), linear, 4);
    let expected = 0;
    traj.forEach(([xt], t) => {
      expected -= 0.01 / Math.sqrt(1 - 0.9 ** (t + 1));
      expect(xt).toBeCloseTo(expected, 12);
    });
  });

  it('RMSprop centred with momentum follows its formulas', async () => {
    // g = 1: v₁ = 0.1, ḡ₁ = 0.1, s₁ = √(0.1 − 0.01) → b₁ = 1/s₁, x₁ = −0.01·b₁.
    const x = param([0]);
    const [[x1]] = await trajectory(
      x,
      new RMSprop([x], { lr: 0.01, alpha: 0.9, eps: 0, centered: true, momentum: 0.5 }),
      linear,
      1,
    );
    expect(x1).toBeCloseTo(-0.01 / Math.sqrt(0.09), 12);
  });

  it('Adagrad on a constant gradient: x_t = x₀ − lr Σ 1/√k; lrDecay divides lr by 1 + (t − 1)·decay', async () => {
    const x = param([0]);
    const traj = await trajectory(x, new Adagrad([x], { lr: 0.1, eps: 0 }), linear, 4);
    let expected = 0;
    traj.forEach(([xt], k) => {
      expected -= 0.1 / Math.sqrt(k + 1);
      expect(xt).toBeCloseTo(expected, 12);
    });
    const y = param([0]);
    const decayed = await trajectory(y, new Adagrad([y], { lr: 0.1, eps: 0, lrDecay: 1 }), linear, 2);
    expect(decayed[1][0]).toBeCloseTo(-0.1 - 0.1 / 2 / Math.sqrt(2), 12);
  });
});

describe('one update per bucket of parameters', () => {
  /** Parameters of several shapes (a scalar, a vector, a matrix, a 3-D tensor) with seeded values. */
  const shapes = [[], [5], [3, 4], [2, 3, 2]];
  const makeParams = (dtype: 'float32' | 'float64') =>
    shapes.map((s, i) => scope(() => new Parameter(randn(s, { dtype, seed: 40 + i }))));
  /** Gradients that change every step and differ between parameters; none for `skip` at `skipStep`. */
  function setGrads(ps: Parameter[], step: number, skip = -1, skipStep = -1) {
    ps.forEach((p, i) => {
      p.zeroGrad();
      if (i === skip && step === skipStep) return;
      p.grad = scope(() => mul(randn(p.shape, { dtype: p.dtype, seed: 100 * step + i }), 0.5 + i));
    });
  }

  for (const dtype of ['float32', 'float64'] as const) {
    it(`${dtype}: every parameter ends where an optimizer of its own takes it, bit for bit, also when one skips a step`, async () => {
      const joint = makeParams(dtype);
      const alone = makeParams(dtype);
      const optJoint = new Adam(joint, { lr: 0.05, weightDecay: 0.01, amsgrad: true });
      const optsAlone = alone.map((p) => new Adam([p], { lr: 0.05, weightDecay: 0.01, amsgrad: true }));
      for (let step = 1; step <= 4; step++) {
        // Parameter 1 has no gradient at step 2: its step count falls behind, so it is bucketed apart.
        setGrads(joint, step, 1, 2);
        setGrads(alone, step, 1, 2);
        optJoint.step();
        for (const o of optsAlone) o.step();
        for (const [i, p] of joint.entries()) {
          expect(Array.from(await p.data()), `parameter ${i} after step ${step}`).toEqual(
            Array.from(await alone[i].data()),
          );
        }
      }
      const joinedState = optJoint.stateDict().tensors;
      for (const [i, o] of optsAlone.entries()) {
        for (const [name, t] of Object.entries(o.stateDict().tensors)) {
          const other = joinedState[name.replace(/^state\.0\./, `state.${i}.`)];
          expect(Array.from(await other.data()), name).toEqual(Array.from(await t.data()));
        }
      }
    });
  }

  it('after a step the parameters are slices of one buffer; a parameter assigned elsewhere still updates right', async () => {
    const ps = makeParams('float64');
    const twins = makeParams('float64');
    const opt = new SGD(ps, { lr: 0.1, momentum: 0.9 });
    const twinOpts = twins.map((p) => new SGD([p], { lr: 0.1, momentum: 0.9 }));
    const fresh = [0.5, -0.25, 1, 2, 3];
    for (let step = 1; step <= 3; step++) {
      setGrads(ps, step);
      setGrads(twins, step);
      opt.step();
      for (const o of twinOpts) o.step();
      expect(new Set(ps.map((p) => p.storage)).size).toBe(1);
      if (step === 2) {
        // The user loads new values into one parameter: it leaves the shared buffer.
        ps[1].assign(tensor(fresh, f64));
        twins[1].assign(tensor(fresh, f64));
        expect(new Set(ps.map((p) => p.storage)).size).toBe(2);
      }
    }
    for (const [i, p] of ps.entries()) expect(await values(p)).toEqual(await values(twins[i]));
  });

  it('dispose() releases the state and the joined buffers: nothing is left once the parameters go too', () => {
    const before = memoryStats().backends.cpu?.buffers ?? 0;
    const ps = makeParams('float32');
    const opt = new RMSprop(ps, { lr: 0.01, momentum: 0.5, centered: true });
    for (let step = 1; step <= 3; step++) {
      setGrads(ps, step);
      opt.step();
    }
    opt.dispose();
    for (const p of ps) {
      p.zeroGrad();
      p.dispose();
    }
    expect(memoryStats().backends.cpu?.buffers ?? 0).toBe(before);
  });
});

describe('parameter groups, zeroGrad and state dicts', () => {
  it('each group uses its own hyper-parameters; zeroGrad clears gradients', async () => {
    const a = param([1]);
    const b = param([1]);
    const opt = new SGD([{ params: [a] }, { params: [b], lr: 0.5 }], { lr: 0.1 });
    opt.zeroGrad();
    scope(() => linear(add(a, b)).backward());
    opt.step();
    expect((await values(a))[0]).toBeCloseTo(0.9, 12);
    expect((await values(b))[0]).toBeCloseTo(0.5, 12);
    opt.zeroGrad();
    expect(a.grad).toBeNull();
    expect(() => new SGD([{ params: [a] }, { params: [a] }], { lr: 1 })).toThrow(/more than one group/);
    expect(() => new Adam([a], { beta1: 1 })).toThrow(/Adam: beta1 must lie in \[0, 1\)/);
    expect(() => new SGD([], { lr: 1 })).toThrow(FluxionError);
  });

  it('round-trips Adam state through safetensors: the restored optimizer continues identically', async () => {
    const make = () => new Dense(3, 2, { ...f64, seed: 5 });
    const x = randn([4, 3], { ...f64, seed: 6 });
    const lossOf = (m: Dense) => sum(mul(m.forward(x), m.forward(x)));
    const a = make();
    const optA = new Adam(a.parameters(), { lr: 0.05, amsgrad: true });
    for (let i = 0; i < 3; i++) {
      optA.zeroGrad();
      scope(() => lossOf(a).backward());
      optA.step();
    }
    const saved = optA.stateDict();
    expect(Object.keys(saved.tensors)).toContain('state.0.maxExpAvgSq');
    const bytes = await saveSafetensors(saved.tensors, saved.metadata);
    const b = make();
    b.loadStateDict(a.stateDict());
    const optB = new Adam(b.parameters(), { lr: 0.9 });
    optB.loadStateDict(loadSafetensors(bytes));
    expect(optB.paramGroups[0].lr).toBe(0.05);
    for (const [m, opt] of [
      [a, optA],
      [b, optB],
    ] as const) {
      opt.zeroGrad();
      scope(() => lossOf(m).backward());
      opt.step();
    }
    for (const [name, t] of Object.entries(a.stateDict()))
      expect(await values(b.stateDict()[name])).toEqual(await values(t));
    expect(() => new SGD(b.parameters(), { lr: 1 }).loadStateDict(saved)).toThrow(
      /state of a Adam cannot be loaded into a SGD/,
    );
    expect(() => new Adam([param([1])]).loadStateDict(saved)).toThrow(/saved groups hold \[2\] parameters/);
  });

  it('training steps of a conv net (BatchNorm, Dropout, pooling, clipping) keep memory flat', () => {
    const model = new Sequential(
      new Conv2d(1, 4, 3, { padding: 1, seed: 0 }),
      new BatchNorm2d(4),
      new ReLU(),
      new Dropout(0.2, { seed: 1 }),
      new MaxPool2d(2),
      new Flatten(),
      new Dense(16, 2, { seed: 2 }),
    );
    const opt = new Adam(model.parameters());
    const x = randn([4, 1, 4, 4], { seed: 1 });
    const labels = tensor([0, 1, 1, 0], { dtype: 'int32' });
    const step = () => {
      opt.zeroGrad();
      scope(() => crossEntropy(model.forward(x), labels).backward());
      clipGradNorm(model.parameters(), 1).dispose();
      opt.step();
    };
    step();
    const live = memoryStats().liveTensors;
    for (let i = 0; i < 5; i++) step();
    expect(memoryStats().liveTensors).toBe(live);
  });
});

describe('small real problems', () => {
  // y = X w* + b* with w* = [2, −3, 0.5], b* = 1; under MSE the optimum is w*, b*.
  const X = randn([32, 3], { seed: 11 });
  const wTrue = tensor([[2], [-3], [0.5]]);
  const Y = add(matmul(X, wTrue), 1);

  it.each([
    ['SGD + momentum', (p: Parameter[]) => new SGD(p, { lr: 0.05, momentum: 0.9 }), 150],
    ['Adam', (p: Parameter[]) => new Adam(p, { lr: 0.1 }), 300],
    ['AdamW', (p: Parameter[]) => new AdamW(p, { lr: 0.1, weightDecay: 1e-4 }), 300],
    ['RMSprop', (p: Parameter[]) => new RMSprop(p, { lr: 0.01 }), 400],
    ['Adagrad', (p: Parameter[]) => new Adagrad(p, { lr: 0.5 }), 300],
  ] as const)('linear regression recovers its weights with %s', async (_name, makeOpt, steps) => {
    const model = new Dense(3, 1, { seed: 3 });
    const opt = makeOpt(model.parameters());
    for (let i = 0; i < steps; i++) {
      opt.zeroGrad();
      scope(() => mseLoss(model.forward(X), Y).backward());
      opt.step();
    }
    await expectClose(model.weight, [2, -3, 0.5], { atol: 2e-2 });
    await expectClose(model.bias as Tensor, [1], { atol: 2e-2 });
  });

  it('an MLP fits XOR under BCE-with-logits (Adam): loss < 0.05, all four right', async () => {
    const x = tensor([
      [0, 0],
      [0, 1],
      [1, 0],
      [1, 1],
    ]);
    const y = tensor([[0], [1], [1], [0]]);
    const mlp = new Sequential(new Dense(2, 8, { seed: 1 }), new Tanh(), new Dense(8, 1, { seed: 2 }));
    const opt = new Adam(mlp.parameters(), { lr: 0.05 });
    const initial = await scope(() => bceWithLogits(mlp.forward(x), y)).item();
    for (let i = 0; i < 300; i++) {
      opt.zeroGrad();
      scope(() => bceWithLogits(mlp.forward(x), y).backward());
      opt.step();
    }
    const logits = await values(mlp.forward(x));
    const final = await bceWithLogits(mlp.forward(x), y).item();
    expect(initial).toBeGreaterThan(0.6);
    expect(final).toBeLessThan(0.05);
    expect(logits.map((v) => (v > 0 ? 1 : 0))).toEqual([0, 1, 1, 0]);
  });
});
