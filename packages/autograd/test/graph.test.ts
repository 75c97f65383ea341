/**
 * Graph semantics of the engine: accumulation (diamonds, a tensor used twice, repeated backward),
 * detach, noGrad/enableGrad (callback and `using`), retainGraph and the freed-graph error,
 * retainGrad/zeroGrad, dtype rules, gradients of gradients (PyTorch- and JAX-style), the functional
 * API, gradcheck's failure report, numerical stability at ±100, and memory: after backward and
 * disposing what the user holds, the backend's buffer count is back where it started.
 */
import {
  backward,
  enableGrad,
  GradcheckError,
  GradNode,
  grad,
  gradcheck,
  gradgradcheck,
  gradients,
  isGradEnabled,
  noGrad,
  valueAndGrad,
  vjp,
} from '@fluxion/autograd';
import {
  abs,
  add,
  argmax,
  cast,
  cos,
  exp,
  FluxionError,
  getBackend,
  less,
  linear,
  logSigmoid,
  matmul,
  mean,
  memoryStats,
  mul,
  onesLike,
  randn,
  relu,
  scope,
  sigmoid,
  sin,
  softplus,
  square,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
  where,
} from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';

const TOL = { atol: 1e-12, rtol: 1e-12 };

/** A float64 CPU leaf that requires a gradient. */
function leaf(values: number[] | number[][]): Tensor {
  const t = tensor(values, { dtype: 'float64', backend: 'cpu' });
  t.requiresGrad = true;
  return t;
}

const cpuBuffers = () => memoryStats().backends.cpu?.buffers ?? 0;

describe('accumulation', () => {
  test('a diamond sums both paths: d(eˣ · sin x) = eˣ sin x + eˣ cos x', async () => {
    const x = leaf([0.5, -1, 2]);
    scope(() => {
      const a = exp(x);
      const b = sin(x);
      sum(mul(a, b)).backward();
    });
    const xs = [0.5, -1, 2];
    await expectAllClose(
      x.grad!,
      xs.map((v) => Math.exp(v) * (Math.sin(v) + Math.cos(v))),
      TOL,
    );
    x.dispose();
  });

  test('a tensor used twice gets both contributions', async () => {
    const x = leaf([3, -2]);
    scope(() => sum(add(mul(x, x), x)).backward());
    await expectAllClose(x.grad!, [7, -3], TOL);
    x.dispose();
  });

  test('repeated backward calls accumulate into .grad until zeroGrad', async () => {
    const x = leaf([1, 2]);
    for (let i = 0; i < 3; i++) scope(() => sum(mul(x, 2)).backward());
    await expectAllClose(x.grad!, [6, 6], TOL);
    x.zeroGrad();
    expect(x.grad).toBeNull();
    scope(() => sum(x).backward());
    await expectAllClose(x.grad!, [1, 1], TOL);
    x.dispose();
  });

  test('a matmul operand stored transposed gets a contiguous gradient without a copy', async () => {
    // y = x · wᵀ (a Linear layer) and y = aᵀ · b: the gradients of w and a come out contiguous in
    // their own layout, and the backward pass runs no copy kernel (a transposed view of Aᵀ·G would
    // have to be copied when it is accumulated).
    const w = leaf([
      [0.5, -1, 2],
      [0.25, 1.5, -0.5],
    ]);
    const a = leaf([
      [1, -2],
      [0.5, 3],
      [-1, 0.25],
    ]);
    const x = tensor(
      [
        [1, 2, 3],
        [-1, 0.5, 2],
      ],
      { dtype: 'float64' },
    );
    const b = tensor(
      [
        [1, 2],
        [3, -1],
        [0.5, 2],
      ],
      { dtype: 'float64' },
    );
    const cpu = getBackend('cpu');
    const run = cpu.run.bind(cpu);
    const ops: string[] = [];
    cpu.run = (op, ...rest) => {
      ops.push(op);
      return run(op, ...rest);
    };
    try {
      scope(() => {
        const loss = add(sum(square(matmul(x, w.T))), sum(square(matmul(a.T, b))));
        ops.length = 0;
        loss.backward();
      });
    } finally {
      cpu.run = run;
    }
    expect(ops).not.toContain('copy');
    expect(w.grad!.isContiguous && a.grad!.isContiguous).toBe(true);
    // d/dw Σ(x·wᵀ)² = 2 (x·wᵀ)ᵀ·x and d/da Σ(aᵀ·b)² = 2 b·(aᵀ·b)ᵀ, summed out by hand.
    const xw = (await matmul(x, w.T).array()) as number[][];
    const ab = (await matmul(a.T, b).array()) as number[][];
    const xv = (await x.array()) as number[][];
    const bv = (await b.array()) as number[][];
    const wGrad = [0, 1].map((o) => [0, 1, 2].map((i) => 2 * (xw[0][o] * xv[0][i] + xw[1][o] * xv[1][i])));
    const aGrad = [0, 1, 2].map((k) => [0, 1].map((m) => 2 * (bv[k][0] * ab[m][0] + bv[k][1] * ab[m][1])));
    await expectAllClose(w.grad!, wGrad.flat(), TOL);
    await expectAllClose(a.grad!, aGrad.flat(), TOL);
  });

  test('a Linear layer on [batch, time, in] runs as one 2-D product, its weight gradient too', async () => {
    // Broadcasting the weight over the batch would make its gradient one product per batch entry
    // and a sum over them; folding the rows makes it a single [in, rows] · [rows, out] product.
    const x = tensor(
      Array.from({ length: 2 * 3 * 4 }, (_, i) => Math.sin(i + 1)),
      { dtype: 'float64', backend: 'cpu' },
    ).reshape([2, 3, 4]);
    const w = leaf(
      Array.from({ length: 5 }, (_, o) => Array.from({ length: 4 }, (_, i) => Math.cos(o * 4 + i))),
    );
    const cpu = getBackend('cpu');
    const run = cpu.run.bind(cpu);
    const shapes: number[][] = [];
    cpu.run = (op, inputs, ...rest) => {
      if (op === 'matmul' || op === 'sum') shapes.push([op === 'matmul' ? 1 : 0, ...inputs[0].shape]);
      return run(op, inputs, ...rest);
    };
    let y: number[][][];
    try {
      y = (await scope(() => {
        const out = linear(x, w);
        sum(square(out)).backward();
        return out;
      }).array()) as number[][][];
    } finally {
      cpu.run = run;
    }
    // forward and the weight's gradient: 2-D products over all 6 rows; no sum over a batch axis
    expect(shapes.filter(([isMatmul]) => isMatmul).map(([, ...s]) => s.length)).toEqual([2, 2]);
    expect(shapes.some(([isMatmul, ...s]) => !isMatmul && s.length === 3 && s[1] === 4)).toBe(false);
    const xv = (await x.array()) as number[][][];
    const wGrad = [0, 1, 2, 3, 4].map((o) =>
      [0, 1, 2, 3].map((i) => xv.flat().reduce((acc, row, r) => acc + 2 * y.flat()[r][o] * row[i], 0)),
    );
    await expectAllClose(w.grad!, wGrad.flat(), TOL);
  });

  test('backward with inputs fills only those leaves, with the same values, and prunes the rest', async () => {
    // A generator-step shape: loss = f(d(g(z))), with gradients wanted for g's weight only.
    const gw = leaf([
      [0.5, -1],
      [2, 0.25],
    ]);
    const dw = leaf([[1.5], [-0.5]]);
    const z = tensor([[1, 2]], { dtype: 'float64' });
    const loss = () => sum(tanh(matmul(tanh(matmul(z, gw)), dw)));
    // Counts the matmuls a backward pass runs: 3 for every gradient (zᵀ·g for gw, g·dwᵀ and hᵀ·g
    // for the second product), 2 when dw's is not wanted.
    const cpu = getBackend('cpu');
    const run = cpu.run.bind(cpu);
    const matmulsIn = (f: () => void) => {
      let count = 0;
      cpu.run = (op, ...rest) => {
        if (op === 'matmul') count++;
        return run(op, ...rest);
      };
      try {
        f();
      } finally {
        cpu.run = run;
      }
      return count;
    };
    expect(
      scope(() => {
        const l = loss();
        return matmulsIn(() => l.backward());
      }),
    ).toBe(3);
    const full = await gw.grad!.array();
    gw.zeroGrad();
    dw.zeroGrad();
    expect(
      scope(() => {
        const l = loss();
        return matmulsIn(() => l.backward(undefined, { inputs: [gw] }));
      }),
    ).toBe(2);
    expect(await gw.grad!.array()).toEqual(full);
    expect(dw.grad).toBeNull();
    expect(() => scope(() => loss().backward(undefined, { inputs: [z] }))).toThrow(
      /backward: inputs must be leaves that require grad, got a \[1,2\] float64 tensor that does not require grad/,
    );
    expect(() =>
      scope(() => {
        const h = matmul(z, gw);
        sum(h).backward(undefined, { inputs: [h] });
      }),
    ).toThrow(/that is computed/);
    for (const t of [gw, dw]) t.dispose();
  });

  test('gradients flowing into a broadcast input are summed back to its shape', async () => {
    const a = leaf([[1], [2], [3]]);
    const b = leaf([10, 20, 30, 40]);
    scope(() => sum(mul(a, b)).backward());
    expect(a.grad!.shape).toEqual([3, 1]);
    expect(b.grad!.shape).toEqual([4]);
    await expectAllClose(a.grad!, [100, 100, 100], TOL);
    await expectAllClose(b.grad!, [6, 6, 6, 6], TOL);
    a.dispose();
    b.dispose();
  });

  test('retainGrad fills the .grad of a non-leaf', async () => {
    const x = leaf([1, -2, 3]);
    const h = scope(() => {
      const hidden = mul(x, 3);
      hidden.retainGrad();
      sum(square(hidden)).backward();
      return hidden;
    });
    await expectAllClose(h.grad!, [6, -12, 18], TOL);
    await expectAllClose(x.grad!, [18, -36, 54], TOL);
    h.dispose();
    x.dispose();
  });

  test('a non-scalar output needs a seed of its shape', async () => {
    const x = leaf([1, 2]);
    const y = mul(x, x);
    expect(() => y.backward()).toThrow(FluxionError);
    expect(() => y.backward(tensor([1], { dtype: 'float64' }))).toThrow(/seed/);
    const seed = tensor([1, 10], { dtype: 'float64' });
    y.backward(seed);
    await expectAllClose(x.grad!, [2, 40], TOL);
    expect(seed.isDisposed).toBe(false);
    for (const t of [x, y, seed]) t.dispose();
  });
});

describe('what is recorded', () => {
  test('detach stops the gradient', async () => {
    const x = leaf([2, 5]);
    scope(() => sum(mul(x, x.detach())).backward());
    await expectAllClose(x.grad!, [2, 5], TOL);
    x.dispose();
  });

  test('noGrad records nothing, as a callback and with using', () => {
    const x = leaf([1]);
    const y = noGrad(() => exp(x));
    expect(y.gradFn).toBeNull();
    expect(y.requiresGrad).toBe(false);
    {
      using _ = noGrad();
      expect(isGradEnabled()).toBe(false);
      const z = exp(x);
      expect(z.gradFn).toBeNull();
      const w = enableGrad(() => exp(x));
      expect(w.gradFn).toBeInstanceOf(GradNode);
      z.dispose();
      w.dispose();
    }
    expect(isGradEnabled()).toBe(true);
    const r = exp(x);
    expect((r.gradFn as GradNode).op).toBe('exp');
    for (const t of [x, y, r]) t.dispose();
  });

  test('integer and bool results carry no gradient', () => {
    const x = leaf([1.5, -2, 3]);
    const outputs = [argmax(x), cast(x, 'int32'), less(x, 0)];
    for (const t of outputs) {
      expect(t.gradFn).toBeNull();
      expect(t.requiresGrad).toBe(false);
      t.dispose();
    }
    expect(() => backward(tensor([1]))).toThrow(/does not require grad/);
    x.dispose();
  });

  test('relu and abs have zero gradient at 0 (PyTorch convention)', async () => {
    const x = leaf([0, 0]);
    scope(() => sum(add(relu(x), abs(x))).backward());
    await expectAllClose(x.grad!, [0, 0], TOL);
    x.dispose();
  });

  test('where sends the gradient to the chosen branch only', async () => {
    const a = leaf([1, 2, 3]);
    const b = leaf([4, 5, 6]);
    scope(() => sum(where(tensor([true, false, true]), a, b)).backward());
    await expectAllClose(a.grad!, [1, 0, 1], TOL);
    await expectAllClose(b.grad!, [0, 1, 0], TOL);
    a.dispose();
    b.dispose();
  });
});

describe('freeing the graph', () => {
  test('retainGraph allows a second backward', async () => {
    const x = leaf([0, 1]);
    const y = scope(() => sum(exp(x)));
    y.backward(undefined, { retainGraph: true });
    y.backward();
    await expectAllClose(x.grad!, [2, 2 * Math.E], TOL);
    x.dispose();
    y.dispose();
  });

  test('a second backward through a freed graph is a clear error', () => {
    const x = leaf([0, 1]);
    const y = scope(() => sum(exp(x)));
    y.backward();
    expect(() => y.backward()).toThrow(/freed by an earlier backward\(\).*retainGraph/);
    x.dispose();
    y.dispose();
  });
});

describe('gradients of gradients', () => {
  const cube = (x: Tensor) => sum(mul(mul(x, x), x));

  test('grad(grad(x³)) = 6x', async () => {
    const x = tensor([2, -1, 0.5], { dtype: 'float64' });
    const d2 = scope(() => grad((t: Tensor) => sum(grad(cube)(t)))(x));
    await expectAllClose(d2, [12, -6, 3], TOL);
    expect(d2.gradFn).toBeNull();
    d2.dispose();
    x.dispose();
  });

  test('createGraph records backward: d/dx (d x³/dx) = 6x', async () => {
    const x = leaf([2, -1]);
    scope(() => {
      const [dx] = gradients(cube(x), [x], { createGraph: true });
      expect(dx.requiresGrad).toBe(true);
      sum(dx).backward();
    });
    await expectAllClose(x.grad!, [12, -6], TOL);
    x.dispose();
  });

  test('a gradient penalty reaches the parameters (functional and PyTorch style)', async () => {
    const xs = randn([4, 3], { dtype: 'float64', backend: 'cpu', seed: 1 });
    const critic = (x: Tensor, w: Tensor) => sum(tanh(matmul(x, w)));
    // ‖∇ₓ critic‖², differentiated with respect to the weights the critic closes over.
    const viaGrad = (w: Tensor) => sum(square(grad((x: Tensor) => critic(x, w))(xs)));
    const viaGradients = (w: Tensor) => {
      const x = xs.detach();
      x.requiresGrad = true;
      const [dx] = gradients(critic(x, w), [x], { createGraph: true });
      return sum(square(dx));
    };
    const w = randn([3, 2], { dtype: 'float64', backend: 'cpu', seed: 2 });
    expect((await gradcheck(viaGrad, [w])).ok).toBe(true);
    expect((await gradcheck(viaGradients, [w])).ok).toBe(true);
    w.dispose();
    xs.dispose();
  });
});

describe('functional API', () => {
  const loss = (w: Tensor, x: Tensor) => mean(square(matmul(x, w)));

  test('valueAndGrad with several argnums matches backward', async () => {
    const w = tensor([[1], [-2]], { dtype: 'float64' });
    const x = tensor(
      [
        [0.5, 1],
        [2, -1],
        [1, 1],
      ],
      { dtype: 'float64' },
    );
    const [value, [dw, dx]] = valueAndGrad(loss, [0, 1])(w, x);
    expect(value.gradFn).toBeNull();
    expect(w.requiresGrad).toBe(false);
    const wl = w.detach();
    const xl = x.detach();
    wl.requiresGrad = true;
    xl.requiresGrad = true;
    scope(() => loss(wl, xl).backward());
    await expectAllClose(dw, wl.grad!, TOL);
    await expectAllClose(dx, xl.grad!, TOL);
    await expectAllClose(value, [(1.5 ** 2 + 4 ** 2 + 1) / 3], TOL);
    for (const t of [w, x, value, dw, dx, wl, xl]) t.dispose();
  });

  test('grad of a constant function is zero', async () => {
    const x = tensor([1, 2], { dtype: 'float64' });
    const g = grad((_t: Tensor) => tensor(3, { dtype: 'float64' }))(x);
    await expectAllClose(g, [0, 0], TOL);
    g.dispose();
    x.dispose();
  });

  test('grad rejects a non-scalar output and an integer argument', () => {
    const x = tensor([1, 2]);
    expect(() => grad((t: Tensor) => mul(t, 2))(x)).toThrow(/one element/);
    expect(() => grad((t: Tensor) => sum(t))(tensor([1], { dtype: 'int32' }))).toThrow(/int32/);
    x.dispose();
  });

  test('vjp returns the output and a pullback usable twice', async () => {
    const a = tensor([1, 2, 3], { dtype: 'float64' });
    const b = tensor([4, 5, 6], { dtype: 'float64' });
    const [out, pullback] = vjp((p, q) => mul(sin(p), q), a, b);
    await expectAllClose(
      out,
      [1, 2, 3].map((v, i) => Math.sin(v) * [4, 5, 6][i]),
      TOL,
    );
    for (let round = 0; round < 2; round++) {
      const [da, db] = scope(() => pullback(onesLike(out)));
      await expectAllClose(
        da,
        [1, 2, 3].map((v, i) => Math.cos(v) * [4, 5, 6][i]),
        TOL,
      );
      await expectAllClose(db, [1, 2, 3].map(Math.sin), TOL);
      da.dispose();
      db.dispose();
    }
    for (const t of [a, b, out]) t.dispose();
  });

  test('mixing cos into a pullback cotangent that requires grad records the backward', async () => {
    const x = tensor([0.3], { dtype: 'float64' });
    const v = leaf([2]);
    const [out, pullback] = vjp((t) => sin(t), x);
    scope(() => sum(pullback(v)[0]).backward());
    await expectAllClose(v.grad!, [Math.cos(0.3)], TOL);
    expect(cos).toBeTypeOf('function');
    for (const t of [x, v, out]) t.dispose();
  });
});

describe('gradcheck', () => {
  test('checks a composite function of your own', async () => {
    const smoothL1 = (x: Tensor, y: Tensor) => {
      const d = abs(sub(x, y));
      return sum(where(less(d, 1), mul(square(d), 0.5), sub(d, 0.5)));
    };
    const x = tensor([0.2, -1.5, 3], { dtype: 'float64' });
    const y = tensor([0.1, 0.3, -0.4], { dtype: 'float64' });
    const report = await gradcheck(smoothL1, [x, y]);
    expect(report).toMatchObject({ ok: true, mode: 'full', checked: 6 });
    expect((await gradgradcheck(smoothL1, [x, y])).ok).toBe(true);
    x.dispose();
    y.dispose();
  });

  test('reports the worst element of a wrong gradient', async () => {
    // Cutting one factor from the graph halves the gradient of x²: the check must notice.
    const wrong = (x: Tensor) => mul(x, x.detach());
    const x = tensor([1, -3, 2], { dtype: 'float64' });
    const error = await gradcheck(wrong, [x]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GradcheckError);
    const { report } = error as GradcheckError;
    expect(report.ok).toBe(false);
    expect(report.worst).toMatchObject({ input: 0, index: [1], output: [1], analytic: -3 });
    expect(report.worst!.numeric).toBeCloseTo(-6, 6);
    expect((error as Error).message).toMatch(/input 0 index \[1\].*analytic -3/);
    const quiet = await gradcheck(wrong, [x], { throwOnFailure: false, mode: 'random' });
    expect(quiet.ok).toBe(false);
    x.dispose();
  });
});

describe('stability', () => {
  test.each(['float32', 'float64'] as const)(
    'sigmoid, softplus and logSigmoid have finite gradients at ±100 (%s)',
    async (dtype) => {
      for (const fn of [sigmoid, softplus, logSigmoid]) {
        const x = tensor([-100, -30, 0, 30, 100], { dtype, backend: 'cpu' });
        x.requiresGrad = true;
        scope(() => sum(fn(x)).backward());
        const g = [...(await x.grad!.data())];
        expect(g.every(Number.isFinite), `${fn.name}: ${g}`).toBe(true);
        x.dispose();
      }
    },
  );
});

describe('memory', () => {
  test('after backward and disposing the leaves, buffers return to their level', () => {
    const before = cpuBuffers();
    const w = leaf([
      [0.1, 0.2],
      [0.3, -0.4],
    ]);
    const x = tensor(
      [
        [1, 2],
        [3, 4],
      ],
      { dtype: 'float64' },
    );
    for (let step = 0; step < 5; step++) {
      scope(() => {
        const loss = mean(square(tanh(matmul(x, w))));
        loss.backward();
      });
    }
    expect(w.grad).not.toBeNull();
    w.dispose();
    x.dispose();
    expect(cpuBuffers()).toBe(before);
  });

  test('a training loop keeps memory flat', () => {
    const w = leaf([0.5, -0.5]);
    const step = () =>
      scope(() => {
        sum(square(sigmoid(mul(w, 3)))).backward();
        w.zeroGrad();
      });
    step();
    const level = cpuBuffers();
    for (let i = 0; i < 10; i++) step();
    expect(cpuBuffers()).toBe(level);
    w.dispose();
  });

  test('a graph never differentiated is freed with its tensors', () => {
    const before = cpuBuffers();
    const x = leaf([1, 2, 3]);
    scope(() => {
      mul(exp(x), sin(x));
    });
    x.dispose();
    expect(cpuBuffers()).toBe(before);
  });

  test('gradients of gradients and the functional API free everything', () => {
    const before = cpuBuffers();
    const x = leaf([1, 2]);
    const results = scope(() => {
      const [dx] = gradients(sum(mul(mul(x, x), x)), [x], { createGraph: true });
      sum(dx).backward();
      const f = (t: Tensor) => sum(exp(t));
      return [grad((t: Tensor) => sum(grad(f)(t)))(x), ...valueAndGrad(f)(x)];
    });
    // x requires grad, so the results are differentiable: they hold graphs until disposed.
    expect(results.every((t) => t.requiresGrad)).toBe(true);
    for (const t of results) t.dispose();
    x.dispose();
    expect(cpuBuffers()).toBe(before);
  });

  test('.grad survives the scope of a training step', () => {
    const x = leaf([1]);
    scope(() => sum(x).backward());
    expect(x.grad!.isDisposed).toBe(false);
    x.dispose();
  });
});
