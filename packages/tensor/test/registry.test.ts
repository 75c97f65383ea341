/**
 * The case table covers the registry: every primitive in `OPS` has a case, names are unique, each
 * case's generator produces inputs its `run` accepts, and running a case really applies the
 * primitive it claims to cover (seen through the op observer).
 */
import { OPS, type OpName, type OpRecord, scope, setOpObserver, Tensor } from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import { COMPOSITE_CASES, type HostTensor, materialize, OP_CASES } from './cases.js';

const opNames = Object.keys(OPS) as OpName[];

/** The primitives applied while running `run` on one sample of `inputs`. */
function opsApplied(inputs: fc.Arbitrary<HostTensor[]>, run: (xs: Tensor[]) => Tensor, seed: number) {
  const [hosts] = fc.sample(inputs, { numRuns: 1, seed });
  const xs = hosts.map((h) => materialize(h));
  const seen = new Set<string>();
  setOpObserver((r: OpRecord) => seen.add(r.op));
  try {
    scope(() => {
      const out = run(xs);
      expect(out).toBeInstanceOf(Tensor);
      expect(out.isDisposed).toBe(false);
    });
  } finally {
    setOpObserver(null);
    for (const x of xs) x.dispose();
  }
  return seen;
}

describe('op case table', () => {
  test.each(opNames)('primitive %s has a case', (op) => {
    expect(OP_CASES.filter((c) => c.op === op).map((c) => c.name)).not.toEqual([]);
  });

  test('every case names a registry primitive', () => {
    const unknown = OP_CASES.filter((c) => !(c.op in OPS)).map((c) => `${c.name} (${c.op})`);
    expect(unknown).toEqual([]);
  });

  test('case names are unique across both tables', () => {
    const names = [...OP_CASES, ...COMPOSITE_CASES].map((c) => c.name);
    const dupes = names.filter((n, i) => names.indexOf(n) !== i);
    expect(dupes).toEqual([]);
  });

  test('the composite table covers the composites', () => {
    const required = [
      'mean',
      'variance',
      'std',
      'logSumExp',
      'softmax',
      'logSoftmax',
      'clamp',
      'logSigmoid',
      'silu',
      'gelu',
      'elu',
      'stack',
      'split',
      'unbind',
      'square',
    ];
    const covered = new Set(COMPOSITE_CASES.map((c) => c.op));
    expect(required.filter((op) => !covered.has(op))).toEqual([]);
    expect(COMPOSITE_CASES.filter((c) => c.op === 'gelu').length).toBeGreaterThanOrEqual(2);
  });

  test('gradient flags are consistent', () => {
    for (const c of [...OP_CASES, ...COMPOSITE_CASES]) {
      if (typeof c.grad === 'string') expect(c.grad.length, c.name).toBeGreaterThan(10);
      if (c.gradInputs) expect(c.grad, c.name).toBe(true);
    }
  });

  test('differentiable cases of kinked ops keep their inputs off the kinks and ties', () => {
    const kinked = OP_CASES.filter(
      (c) => c.grad === true && ['max', 'min', 'maximum', 'minimum', 'relu', 'abs'].includes(c.op),
    );
    expect(kinked.length).toBeGreaterThanOrEqual(6);
    for (const c of kinked) {
      for (const hosts of fc.sample(c.inputs, { numRuns: 40, seed: 7 })) {
        const values = hosts.flatMap((h) => h.data);
        if (c.op === 'relu' || c.op === 'abs') expect(values, c.name).not.toContain(0);
        else expect(new Set(values).size, c.name).toBe(values.length);
      }
    }
  });

  test.each(OP_CASES.map((c) => [c.name, c] as const))('case %s applies its primitive', (_name, c) => {
    for (const seed of [1, 2, 3]) expect(opsApplied(c.inputs, c.run, seed)).toContain(c.op);
  });

  test.each(COMPOSITE_CASES.map((c) => [c.name, c] as const))('composite case %s runs', (_name, c) => {
    // `contiguous` of a contiguous input is the input itself: no primitive runs.
    for (const seed of [1, 2, 3]) {
      const ops = opsApplied(c.inputs, c.run, seed);
      if (c.op !== 'contiguous') expect(ops.size).toBeGreaterThan(0);
    }
  });
});
