/**
 * Gradients of every differentiable primitive and every composite of the shared case table,
 * checked against central finite differences in float64 on the CPU backend (fast-check draws the
 * shapes, broadcasts, values and storage layouts), second derivatives of the elementwise ops,
 * matmul, the reductions and layerNorm, and coverage: a differentiable primitive without a gradcheck case
 * fails here.
 */
import { gradcheck, gradgradcheck, gradients, VJPS } from '@fluxion/autograd';
import { cast, mul, OPS, type OpName, randn, scope, sum } from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  COMPOSITE_CASES,
  type CompositeCase,
  hostArb,
  mixedValues,
  OP_CASES,
  type OpCase,
  shapeArb,
} from '../../tensor/test/cases.js';
import { runs } from '../../tensor/test/helpers.js';
import { setupCase, spreadTies, TIE_SENSITIVE } from './case-inputs.js';

/** Inputs and outputs up to this many elements get the full Jacobian; larger ones random directions. */
const FULL_JACOBIAN_LIMIT = 24;

/**
 * Cases the shared float32 table cannot hold: a cast between float dtypes needs float64, which only
 * the CPU backend has. The round trip through float32 is linear, so a large step has no truncation
 * error and keeps the float32 rounding (2⁻²⁴·|x| per element) far below the tolerance.
 */
const FLOAT64_ONLY_CASES: (OpCase & { eps: number })[] = [
  {
    name: 'cast-float64-float32',
    op: 'cast',
    inputs: shapeArb()
      .chain((s) => hostArb(s, mixedValues(-3, 3)))
      .map((h) => [h]),
    run: ([x]) => cast(cast(x, 'float32'), 'float64'),
    grad: true,
    eps: 0.25,
  },
];

async function checkCase(
  c: (OpCase | CompositeCase) & { eps?: number },
  order: 1 | 2,
  numRuns: number,
): Promise<void> {
  await fc.assert(
    fc.asyncProperty(c.inputs, async (drawn) => {
      const hosts = TIE_SENSITIVE.has(c.op) ? spreadTies(drawn) : drawn;
      const { f, inputs, size, dispose } = setupCase(c, hosts);
      try {
        if (inputs.length === 0) return;
        const check = order === 1 ? gradcheck : gradgradcheck;
        const small = size <= FULL_JACOBIAN_LIMIT;
        await check(f, inputs, { mode: small ? 'full' : 'random', directions: 3, eps: c.eps ?? 1e-6 });
      } finally {
        dispose();
      }
    }),
    runs(numRuns),
  );
}

const differentiable = (c: OpCase | CompositeCase) => c.grad === true;

const primitiveCases = [...OP_CASES.filter(differentiable), ...FLOAT64_ONLY_CASES];

describe('gradcheck: primitives (float64, CPU)', () => {
  test.each(primitiveCases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await checkCase(c, 1, 25);
  });
});

describe('gradcheck: composites (float64, CPU)', () => {
  test.each(COMPOSITE_CASES.filter(differentiable).map((c) => [c.name, c] as const))(
    '%s',
    async (_name, c) => {
      await checkCase(c, 1, 25);
    },
  );
});

const SECOND_ORDER_KINDS = ['unary', 'binary', 'reduce'];
/** Other primitives whose second derivatives are checked: their VJPs are not linear in g alone. */
const SECOND_ORDER_OPS: readonly OpName[] = ['matmul', 'layerNorm', 'layerNormGrad'];
const secondOrder = OP_CASES.filter(
  (c) =>
    differentiable(c) && (SECOND_ORDER_KINDS.includes(OPS[c.op].kind) || SECOND_ORDER_OPS.includes(c.op)),
);

describe('gradgradcheck: elementwise, reductions, matmul, layerNorm (float64, CPU)', () => {
  test.each(secondOrder.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await checkCase(c, 2, 10);
  });
});

/** Piecewise-constant primitives: their cases sit on the jumps, so their (zero) gradient is checked exactly. */
const ZERO_GRADIENT: readonly OpName[] = ['sign', 'floor', 'ceil', 'round'];

describe('zero gradients of piecewise-constant primitives', () => {
  const cases = OP_CASES.filter((c) => ZERO_GRADIENT.includes(c.op) && c.grad !== false);
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await fc.assert(
      fc.asyncProperty(c.inputs, async (hosts) => {
        const { f, inputs, dispose } = setupCase(c, hosts);
        try {
          for (const x of inputs) x.requiresGrad = true;
          const grads = scope(() => {
            const out = f(...inputs);
            const weights = randn(out.shape, { seed: 3, dtype: out.dtype, backend: 'cpu' });
            return gradients(sum(mul(out, weights)), inputs);
          });
          for (const g of grads) {
            expect([...(await g.data())].every((v) => v === 0)).toBe(true);
            g.dispose();
          }
        } finally {
          dispose();
        }
      }),
      runs(10),
    );
  });
});

describe('coverage', () => {
  const opNames = Object.keys(OPS) as OpName[];
  const checked = new Set([...primitiveCases.map((c) => c.op), ...ZERO_GRADIENT]);

  test('every differentiable primitive has a gradcheck case', () => {
    const missing = opNames.filter((op) => VJPS[op] !== null && !checked.has(op));
    expect(missing).toEqual([]);
  });

  test('no case claims a gradient for a primitive without a VJP', () => {
    expect([...checked].filter((op) => VJPS[op] === null)).toEqual([]);
  });

  test('elementwise ops, reductions, matmul and layerNorm all get a second-order check', () => {
    const kinds = opNames.filter(
      (op) =>
        VJPS[op] !== null &&
        !ZERO_GRADIENT.includes(op) &&
        (SECOND_ORDER_KINDS.includes(OPS[op].kind) || SECOND_ORDER_OPS.includes(op)),
    );
    const covered = new Set(secondOrder.map((c) => c.op));
    expect(kinds.filter((op) => !covered.has(op))).toEqual([]);
  });
});
