/**
 * Property tests of the CPU backend against naive references written plainly here (index
 * arithmetic by hand, no code shared with the kernels): broadcasting of every binary op, views
 * against copies and against the raw storage, reductions over random axis sets, matmul against a
 * triple loop, concat/take/scatterAdd/pad, softmax and logSumExp, and every case of the shared
 * table in float32 against float64. Each property runs in float32 and float64.
 */
import * as T from '@fluxion/tensor';
import {
  BINARY_OPS,
  type BinaryOp,
  COMPARISON_OPS,
  type DType,
  LOGICAL_OPS,
  type Tensor,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { afterAll, describe, expect, test } from 'vitest';
import {
  awayFromZero,
  broadcastShapesArb,
  COMPOSITE_CASES,
  DEFAULT_TOL,
  dimArb,
  gridValues,
  type HostTensor,
  hostArb,
  intValues,
  materialize,
  mixedValues,
  OP_CASES,
  ravel,
  rowMajorStrides,
  shapeArb,
  sizeOfShape,
  smoothValues,
  unravel,
  VIEW_KINDS,
} from './cases.js';
import { fuzzCase, fuzzRuns, recordFuzz } from './fuzz.js';
import { expectAllClose, runOnHost, runs, type Tolerance, valuesOf } from './helpers.js';

const FLOATS = ['float32', 'float64'] as const;
const RUNS = runs(30);

/** Tolerance of one float rounding (the CPU kernels compute in float64 and round once). */
const ONE_ROUNDING: Record<DType, Tolerance> = {
  float32: { atol: 1e-7, rtol: 1e-6 },
  float64: { atol: 1e-12, rtol: 1e-12 },
  int32: { atol: 0, rtol: 0 },
  bool: { atol: 0, rtol: 0 },
};

// ---------------------------------------------------------------------------------------------
// Naive references
// ---------------------------------------------------------------------------------------------

/** Logical values on the host. */
interface Host {
  shape: number[];
  data: number[];
}

/** The element of `h` at a multi-index. */
function at(h: Host, index: readonly number[]): number {
  return h.data[ravel(index, rowMajorStrides(h.shape))];
}

/** A host tensor of `shape` whose element at each multi-index is `f(index)`. */
function build(shape: number[], f: (index: number[]) => number): Host {
  return { shape, data: Array.from({ length: sizeOfShape(shape) }, (_, flat) => f(unravel(flat, shape))) };
}

/** The NumPy broadcast of two shapes, by hand. */
function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[i - (rank - a.length)] ?? 1;
    const db = b[i - (rank - b.length)] ?? 1;
    return da === 1 ? db : da;
  });
}

/** The index into an operand of `shape` read by output index `index` under broadcasting. */
function broadcastIndex(index: readonly number[], shape: readonly number[]): number[] {
  return shape.map((d, i) => (d === 1 ? 0 : index[index.length - shape.length + i]));
}

/** Independent scalar definitions of the binary ops (bool results as 0/1). */
const NAIVE_BINARY: Record<BinaryOp, (a: number, b: number) => number> = {
  add: (a, b) => a + b,
  sub: (a, b) => a - b,
  mul: (a, b) => a * b,
  div: (a, b) => a / b,
  pow: (a, b) => a ** b,
  maximum: (a, b) => Math.max(a, b),
  minimum: (a, b) => Math.min(a, b),
  equal: (a, b) => (a === b ? 1 : 0),
  notEqual: (a, b) => (a !== b ? 1 : 0),
  less: (a, b) => (a < b ? 1 : 0),
  lessEqual: (a, b) => (a <= b ? 1 : 0),
  greater: (a, b) => (a > b ? 1 : 0),
  greaterEqual: (a, b) => (a >= b ? 1 : 0),
  logicalAnd: (a, b) => (a !== 0 && b !== 0 ? 1 : 0),
  logicalOr: (a, b) => (a !== 0 || b !== 0 ? 1 : 0),
  logicalXor: (a, b) => ((a !== 0) !== (b !== 0) ? 1 : 0),
};

/** Python's slice of one axis of length `d`, as the list of indices it selects. */
function sliceIndices(d: number, start: number | null, stop: number | null, step: number): number[] {
  const norm = (v: number | null, fallback: number) =>
    v === null ? fallback : v < 0 ? Math.max(0, v + d) : Math.min(v, d);
  const out: number[] = [];
  for (let i = norm(start, 0); i < norm(stop, d); i += step) out.push(i);
  return out;
}

/** The element of the raw CPU storage behind a view at a multi-index: offset + Σ index · stride. */
function storageAt(t: Tensor, index: readonly number[]): number {
  const buffer = (t.buffer as { data: ArrayLike<number> }).data;
  return Number(buffer[t.offset + index.reduce((o, i, a) => o + i * t.strides[a], 0)]);
}

/** Asserts that a view's metadata (shape, strides, offset) addresses the expected values. */
function expectViewReads(t: Tensor, expected: Host): void {
  expect([...t.shape]).toEqual(expected.shape);
  for (let flat = 0; flat < expected.data.length; flat++) {
    const index = unravel(flat, expected.shape);
    expect(storageAt(t, index), `element ${index}`).toBe(expected.data[flat]);
  }
}

/** Disposes every tensor given (views, copies, inputs), whatever happened. */
function disposeAll(...ts: (Tensor | undefined)[]): void {
  for (const t of ts) t?.dispose();
}

// ---------------------------------------------------------------------------------------------
// Broadcasting
// ---------------------------------------------------------------------------------------------

/** Value generators and input dtype per binary op (domains keep div/pow real and finite). */
function binaryInputs(
  op: BinaryOp,
  dtype: DType,
): { a: fc.Arbitrary<number>; b: fc.Arbitrary<number>; d: DType } {
  if (LOGICAL_OPS.includes(op)) return { a: fc.constantFrom(0, 1), b: fc.constantFrom(0, 1), d: 'bool' };
  if (op === 'div') return { a: mixedValues(-3, 3), b: awayFromZero(1 / 4, 4), d: dtype };
  if (op === 'pow') return { a: smoothValues(1 / 4, 4), b: mixedValues(-2, 2), d: dtype };
  return { a: gridValues(-2, 2, 0.5), b: gridValues(-2, 2, 0.5), d: dtype };
}

function expectedDtype(op: BinaryOp, inputDtype: DType): DType {
  if (COMPARISON_OPS.includes(op) || LOGICAL_OPS.includes(op)) return 'bool';
  if ((op === 'div' || op === 'pow') && inputDtype === 'int32') return 'float32';
  return inputDtype;
}

describe.each(FLOATS)('broadcasting (%s)', (dtype) => {
  test.each([...BINARY_OPS])('%s broadcasts like NumPy', async (op) => {
    const { a, b, d } = binaryInputs(op, dtype);
    const inputs = broadcastShapesArb(2).chain(([sa, sb]) =>
      fc.tuple(hostArb(sa, a, { dtype: d }), hostArb(sb, b, { dtype: d })),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([ha, hb]) => {
        const out = await runOnHost([ha, hb], ([x, y]) => T.binary(op, x, y), { floatDtype: dtype });
        const shape = broadcastShape(ha.shape, hb.shape);
        const expected = build(shape, (i) =>
          NAIVE_BINARY[op](at(ha, broadcastIndex(i, ha.shape)), at(hb, broadcastIndex(i, hb.shape))),
        );
        expect(out.shape).toEqual(shape);
        expect(out.dtype).toBe(expectedDtype(op, d));
        await expectAllClose(out.values, expected.data, ONE_ROUNDING[out.dtype as DType]);
      }),
      RUNS,
    );
  });

  test('a JavaScript number operand broadcasts on either side', async () => {
    const inputs = fc.tuple(
      shapeArb().chain((s) => hostArb(s, mixedValues(-3, 3))),
      mixedValues(-3, 3),
      fc.constantFrom(
        ...BINARY_OPS.filter((op) => !LOGICAL_OPS.includes(op) && op !== 'div' && op !== 'pow'),
      ),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h, s, op]) => {
        const left = await runOnHost([h], ([x]) => T.binary(op, s, x), { floatDtype: dtype });
        const right = await runOnHost([h], ([x]) => T.binary(op, x, s), { floatDtype: dtype });
        const f = NAIVE_BINARY[op];
        expect(left.shape).toEqual(h.shape);
        await expectAllClose(
          left.values,
          h.data.map((v) => f(s, v)),
          ONE_ROUNDING[left.dtype as DType],
        );
        await expectAllClose(
          right.values,
          h.data.map((v) => f(v, s)),
          ONE_ROUNDING[right.dtype as DType],
        );
      }),
      RUNS,
    );
  });

  test('where broadcasts its three operands', async () => {
    const inputs = broadcastShapesArb(3).chain(([sc, sa, sb]) =>
      fc.tuple(
        hostArb(sc, fc.constantFrom(0, 1), { dtype: 'bool' }),
        hostArb(sa, mixedValues(-3, 3)),
        hostArb(sb, mixedValues(-3, 3)),
      ),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([hc, ha, hb]) => {
        const out = await runOnHost([hc, ha, hb], ([c, x, y]) => T.where(c, x, y), { floatDtype: dtype });
        const shape = broadcastShape(broadcastShape(hc.shape, ha.shape), hb.shape);
        const expected = build(shape, (i) =>
          at(hc, broadcastIndex(i, hc.shape))
            ? at(ha, broadcastIndex(i, ha.shape))
            : at(hb, broadcastIndex(i, hb.shape)),
        );
        expect(out.shape).toEqual(shape);
        expect(out.values).toEqual(expected.data);
      }),
      RUNS,
    );
  });
});

describe('integer arithmetic', () => {
  test.each(['add', 'sub', 'mul', 'maximum', 'minimum', 'less', 'equal'] as const)(
    '%s on int32 broadcasts and stays int32',
    async (op) => {
      const inputs = broadcastShapesArb(2).chain(([sa, sb]) =>
        fc.tuple(hostArb(sa, intValues(), { dtype: 'int32' }), hostArb(sb, intValues(), { dtype: 'int32' })),
      );
      await fc.assert(
        fc.asyncProperty(inputs, async ([ha, hb]) => {
          const out = await runOnHost([ha, hb], ([x, y]) => T.binary(op, x, y));
          const expected = build(broadcastShape(ha.shape, hb.shape), (i) =>
            NAIVE_BINARY[op](at(ha, broadcastIndex(i, ha.shape)), at(hb, broadcastIndex(i, hb.shape))),
          );
          expect(out.dtype).toBe(expectedDtype(op, 'int32'));
          expect(out.values).toEqual(expected.data.map((v) => v | 0)); // int32 has no −0
        }),
        runs(15),
      );
    },
  );

  test('int32 products wrap like 32-bit hardware', async () => {
    const a = T.tensor([65536, 2147483647, -7], { dtype: 'int32' });
    const out = T.mul(a, a);
    expect(Array.from(await out.data())).toEqual([0, 1, 49]);
    disposeAll(a, out);
  });
});

describe('dtype promotion', () => {
  const int = () => T.tensor([1, 2, 3], { dtype: 'int32' });
  const bool = () => T.tensor([true, false, true]);
  const cases: [string, () => Tensor, DType, (number | boolean)[]][] = [
    ['int32 + float32 tensor', () => T.add(int(), T.tensor([0.5, 0.5, 0.5])), 'float32', [1.5, 2.5, 3.5]],
    ['bool + bool', () => T.add(bool(), bool()), 'int32', [2, 0, 2]],
    ['int32 + bool', () => T.add(int(), bool()), 'int32', [2, 2, 4]],
    ['int32 + 2', () => T.add(int(), 2), 'int32', [3, 4, 5]],
    [
      'float64 + 2.5',
      () => T.add(T.tensor([1, 2, 3], { dtype: 'float64' }), 2.5),
      'float64',
      [3.5, 4.5, 5.5],
    ],
    ['int32 + 0.5 computes in float32', () => T.add(int(), 0.5), 'float32', [1.5, 2.5, 3.5]],
    ['2.5 − int32', () => T.sub(2.5, int()), 'float32', [1.5, 0.5, -0.5]],
    ['int32 < 2.5 compares in float32', () => T.less(int(), 2.5), 'bool', [true, true, false]],
    ['bool · 0.5', () => T.mul(bool(), 0.5), 'float32', [0.5, 0, 0.5]],
    ['bool == 2 compares in int32', () => T.equal(bool(), 2), 'bool', [false, false, false]],
    ['bool == 1', () => T.equal(bool(), 1), 'bool', [true, false, true]],
    [
      'int32 / int32 is true division',
      () => T.div(int(), T.tensor([2, 2, 2], { dtype: 'int32' })),
      'float32',
      [0.5, 1, 1.5],
    ],
    ['int32 ** 2', () => T.pow(int(), 2), 'float32', [1, 4, 9]],
    ['where(c, int32, 0.5)', () => T.where(bool(), int(), 0.5), 'float32', [1, 0.5, 3]],
    ['where(c, 1, 0)', () => T.where(bool(), 1, 0), 'float32', [1, 0, 1]],
    ['clamp(int32, 0.5, 2.5)', () => T.clamp(int(), 0.5, 2.5), 'float32', [1, 2, 2.5]],
    ['exp(int32)', () => T.exp(T.tensor([0], { dtype: 'int32' })), 'float32', [1]],
    [
      'logicalAnd(float, int32)',
      () => T.logicalAnd(T.tensor([0, 0.5, 2]), int()),
      'bool',
      [false, true, true],
    ],
    [
      'bytes other than 0/1 become true',
      () => T.equal(T.tensor(new Uint8Array([0, 5, 1])), bool()),
      'bool',
      [false, false, true],
    ],
  ];
  test.each(cases)('%s', async (_name, make, dtype, values) => {
    const out = T.scope(make);
    expect(out.dtype).toBe(dtype);
    expect((await out.array()) as unknown[]).toEqual(values);
    out.dispose();
  });
});

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/** One random view step: its kind and random numbers that pick its parameters for a shape. */
const viewStep = fc.record({
  kind: fc.constantFrom(
    'reshape',
    'permute',
    'transpose',
    'expand',
    'slice',
    'squeeze',
    'unsqueeze',
    'flatten',
  ),
  r: fc.array(fc.nat(1000), { minLength: 12, maxLength: 12 }),
});
type ViewStep = typeof viewStep extends fc.Arbitrary<infer S> ? S : never;

/** Divisors of n. */
const divisors = (n: number) => Array.from({ length: n }, (_, i) => i + 1).filter((d) => n % d === 0);

/**
 * Applies one view step to a tensor and, independently, to the host values; returns both.
 * `sharesStorage` says whether the result must be a view of the same storage.
 */
function applyView(x: Tensor, h: Host, step: ViewStep): { t: Tensor; h: Host; sharesStorage: boolean } {
  const { kind } = step;
  // The i-th random number (wrapping around), from which the step's parameters are picked.
  const r = (i: number) => step.r[i % step.r.length];
  const rank = h.shape.length;
  const pick = <V>(list: readonly V[], i: number) => list[r(i) % list.length];
  switch (kind) {
    case 'reshape': {
      // A random factorisation of the size, with −1 in one place half of the time.
      let rest = sizeOfShape(h.shape);
      if (rest === 0) return { t: T.reshape(x, [0]), h: { shape: [0], data: [] }, sharesStorage: true };
      const target: number[] = [];
      const targetRank = 1 + (r(0) % 4);
      for (let i = 0; i < targetRank - 1; i++) {
        const d = pick(divisors(rest), i + 1);
        target.push(d);
        rest /= d;
      }
      target.push(rest);
      const request = r(6) % 2 ? target.map((d, i) => (i === r(7) % target.length ? -1 : d)) : target;
      return { t: T.reshape(x, request), h: { shape: target, data: h.data }, sharesStorage: x.isContiguous };
    }
    case 'permute':
    case 'transpose': {
      const axes = [...h.shape.keys()];
      if (kind === 'permute') {
        for (let i = axes.length - 1; i > 0; i--) {
          const j = r(i) % (i + 1);
          [axes[i], axes[j]] = [axes[j], axes[i]];
        }
      } else if (rank >= 1) {
        const [i, j] = [r(0) % rank, r(1) % rank];
        [axes[i], axes[j]] = [axes[j], axes[i]];
      }
      const shape = axes.map((a) => h.shape[a]);
      const expected = build(shape, (index) => {
        const source = new Array<number>(rank);
        axes.forEach((a, k) => {
          source[a] = index[k];
        });
        return at(h, source);
      });
      // Negative axes are accepted too.
      const given = axes.map((a, k) => (r(8 + (k % 4)) % 2 ? a - rank : a));
      const t =
        kind === 'permute'
          ? T.permute(x, given)
          : rank >= 1
            ? T.transpose(x, r(0) % rank, (r(1) % rank) - rank)
            : T.permute(x, []);
      return { t, h: expected, sharesStorage: true };
    }
    case 'expand': {
      const lead = r(0) % 2 ? [2] : [];
      const target = [...lead, ...h.shape.map((d, i) => (d === 1 && r(i + 1) % 2 ? 3 : d))];
      // −1 keeps the input's size.
      const request = target.map((d, i) =>
        i >= lead.length && d === h.shape[i - lead.length] && r(i + 6) % 3 === 0 ? -1 : d,
      );
      const expected = build(target, (index) => at(h, broadcastIndex(index, h.shape)));
      return { t: T.expand(x, request), h: expected, sharesStorage: true };
    }
    case 'slice': {
      const specs: T.SliceSpec[] = [];
      const lists: number[][] = [];
      const kept: boolean[] = [];
      const count = rank === 0 ? 0 : r(0) % (rank + 1);
      for (let axis = 0; axis < rank; axis++) {
        const d = h.shape[axis];
        const choice = axis < count ? r(axis + 1) % 4 : 3;
        if (choice === 0 && d > 0) {
          const index = (r(axis + 5) % (2 * d)) - d; // in [−d, d)
          specs.push(index);
          lists.push([index < 0 ? index + d : index]);
          kept.push(false);
        } else if (choice === 3) {
          if (axis < count) specs.push(null);
          lists.push(sliceIndices(d, null, null, 1));
          kept.push(true);
        } else {
          const span = 2 * d + 5;
          const start = r(axis + 5) % 5 === 0 ? null : (r(axis + 5) % span) - d - 2;
          const stop = r(axis + 8) % 5 === 0 ? null : (r(axis + 8) % span) - d - 2;
          const step = 1 + (r((axis + 3) % 12) % 3);
          specs.push([start, stop, step]);
          lists.push(sliceIndices(d, start, stop, step));
          kept.push(true);
        }
      }
      const fullShape = lists.map((l) => l.length);
      const picked = build(fullShape, (index) =>
        at(
          h,
          index.map((i, axis) => lists[axis][i]),
        ),
      );
      const expected = { shape: fullShape.filter((_, axis) => kept[axis]), data: picked.data };
      return { t: T.slice(x, ...specs), h: expected, sharesStorage: true };
    }
    case 'squeeze': {
      const ones = h.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      const axes =
        r(0) % 2 || ones.length === 0 ? undefined : ones.filter((_, i) => r(i + 1) % 2).map((a) => a - rank);
      const removed = axes === undefined ? ones : axes.map((a) => a + rank);
      const shape = h.shape.filter((_, i) => !removed.includes(i));
      return { t: T.squeeze(x, axes), h: { shape, data: h.data }, sharesStorage: true };
    }
    case 'unsqueeze': {
      const axis = (r(0) % (2 * rank + 2)) - (rank + 1); // in [−rank−1, rank]
      const at0 = axis < 0 ? axis + rank + 1 : axis;
      const shape = [...h.shape.slice(0, at0), 1, ...h.shape.slice(at0)];
      return { t: T.unsqueeze(x, axis), h: { shape, data: h.data }, sharesStorage: true };
    }
    case 'flatten': {
      if (rank === 0) return { t: T.flatten(x), h: { shape: [1], data: h.data }, sharesStorage: true };
      const start = r(0) % rank;
      const end = start + (r(1) % (rank - start));
      const shape = [
        ...h.shape.slice(0, start),
        sizeOfShape(h.shape.slice(start, end + 1)),
        ...h.shape.slice(end + 1),
      ];
      const merges = h.shape.slice(start, end + 1).filter((d) => d > 1).length > 1;
      return {
        t: T.flatten(x, start, end - rank),
        h: { shape, data: h.data },
        sharesStorage: x.isContiguous || !merges,
      };
    }
  }
}

describe.each(FLOATS)('views (%s)', (dtype) => {
  test('every view equals the copied counterpart and reads its storage through its strides', async () => {
    const inputs = fc.tuple(
      shapeArb({ maxRank: 4, maxSize: 200 }).chain((s) => hostArb(s, mixedValues(-3, 3))),
      fc.array(viewStep, { minLength: 1, maxLength: 3 }),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h0, steps]) => {
        const created: Tensor[] = [];
        try {
          let x = materialize(h0, { floatDtype: dtype });
          created.push(x);
          let h: Host = h0;
          for (const step of steps) {
            const next = applyView(x, h, step);
            created.push(next.t);
            expect(next.t.dtype).toBe(dtype);
            if (next.sharesStorage) expect(next.t.storage, step.kind).toBe(x.storage);
            expectViewReads(next.t, next.h);
            expect(await valuesOf(next.t)).toEqual(next.h.data);
            const copy = T.clone(next.t);
            created.push(copy);
            expect(copy.isContiguous).toBe(true);
            expect(await valuesOf(copy)).toEqual(next.h.data);
            x = next.t;
            h = next.h;
          }
        } finally {
          disposeAll(...created);
        }
      }),
      runs(80),
    );
  });

  test('contiguous() copies only when the layout is not row-major', async () => {
    const inputs = fc.tuple(
      shapeArb({ maxRank: 3, maxSize: 100 }).chain((s) => hostArb(s, mixedValues(-3, 3))),
      viewStep,
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h0, step]) => {
        const x = materialize(h0, { floatDtype: dtype });
        const { t } = applyView(x, h0, step);
        const c = T.contiguous(t);
        try {
          // Row-major means: element i of the view sits at storage offset + i.
          const rowMajor = Array.from({ length: t.size }, (_, i) => unravel(i, t.shape)).every(
            (index, i) => t.offset + index.reduce((o, v, a) => o + v * t.strides[a], 0) === t.offset + i,
          );
          expect(t.isContiguous).toBe(rowMajor);
          if (rowMajor) expect(c).toBe(t);
          else {
            expect(c.storage).not.toBe(t.storage);
            expect(c.isContiguous).toBe(true);
            expect(c.offset).toBe(0);
          }
          expect(await valuesOf(c)).toEqual(await valuesOf(t));
        } finally {
          disposeAll(x, t, c);
        }
      }),
      RUNS,
    );
  });
});

describe('view storage sharing', () => {
  test('reshape of a transposed matrix to one axis copies', async () => {
    const x = T.arange(6).reshape([2, 3]);
    const xt = x.T;
    const flat = xt.reshape([-1]);
    expect(xt.storage).toBe(x.storage);
    expect(flat.storage).not.toBe(x.storage);
    expect(flat.isContiguous).toBe(true);
    expect(Array.from(await flat.data())).toEqual([0, 3, 1, 4, 2, 5]);
    disposeAll(x, xt, flat);
  });

  test('reshape, squeeze and unsqueeze of a transposed view stay views when the strides allow', async () => {
    const base = T.arange(30).reshape([5, 6]);
    const xt = T.transpose(base); // [6, 5], strides [1, 6]
    const split = T.reshape(xt, [2, 3, 5]); // splits the stride-1 axis: still a view
    const withOnes = T.unsqueeze(T.unsqueeze(xt, 0), -1);
    const squeezed = T.squeeze(withOnes);
    for (const v of [split, withOnes, squeezed]) expect(v.storage).toBe(base.storage);
    const copy = T.clone(xt);
    expect(Array.from(await squeezed.data())).toEqual(Array.from(await copy.data()));
    expect(Array.from(await split.data()).slice(0, 6)).toEqual([0, 6, 12, 18, 24, 1]);
    disposeAll(base, xt, split, withOnes, squeezed, copy);
  });
});

// ---------------------------------------------------------------------------------------------
// Reductions
// ---------------------------------------------------------------------------------------------

/** A random subset of the axes of a rank, written positive or negative, in random order; or all. */
function axesArb(rank: number): fc.Arbitrary<number[] | undefined> {
  const subset = fc
    .tuple(
      fc.shuffledSubarray([...Array(rank).keys()]),
      fc.array(fc.boolean(), { minLength: rank, maxLength: rank }),
    )
    .map(([axes, negative]) => axes.map((a, i) => (negative[i] ? a - rank : a)));
  return fc.oneof({ weight: 4, arbitrary: subset }, { weight: 1, arbitrary: fc.constant(undefined) });
}

/** Reduces `h` over `axes` (normalised) with `step`, keeping the reduced axes when asked. */
function naiveReduce(
  h: Host,
  axes: number[],
  keepDims: boolean,
  init: number,
  step: (acc: number, v: number) => number,
): Host {
  const keptShape = h.shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const out = new Array<number>(sizeOfShape(keptShape)).fill(init);
  const strides = rowMajorStrides(keptShape);
  h.data.forEach((v, flat) => {
    const index = unravel(flat, h.shape).map((x, i) => (axes.includes(i) ? 0 : x));
    const o = ravel(index, strides);
    out[o] = step(out[o], v);
  });
  return { shape: keepDims ? keptShape : h.shape.filter((_, i) => !axes.includes(i)), data: out };
}

const NAIVE_REDUCE = {
  sum: { init: 0, step: (a: number, v: number) => a + v },
  prod: { init: 1, step: (a: number, v: number) => a * v },
  max: { init: Number.NEGATIVE_INFINITY, step: (a: number, v: number) => Math.max(v, a) },
  min: { init: Number.POSITIVE_INFINITY, step: (a: number, v: number) => Math.min(v, a) },
};

/** Index of the first best element along `axis` (or of the flattened tensor when undefined). */
function naiveArgReduce(
  h: Host,
  axis: number | undefined,
  keepDims: boolean,
  better: (v: number, best: number) => boolean,
): Host {
  if (axis === undefined) {
    let best = 0;
    h.data.forEach((v, i) => {
      if (better(v, h.data[best])) best = i;
    });
    return { shape: keepDims ? h.shape.map(() => 1) : [], data: [best] };
  }
  const outShape = h.shape.map((d, i) => (i === axis ? 1 : d));
  const reduced = build(outShape, (index) => {
    let best = 0;
    for (let i = 1; i < h.shape[axis]; i++) {
      const candidate = [...index];
      candidate[axis] = i;
      const current = [...index];
      current[axis] = best;
      if (better(at(h, candidate), at(h, current))) best = i;
    }
    return best;
  });
  return { shape: keepDims ? outShape : h.shape.filter((_, i) => i !== axis), data: reduced.data };
}

describe.each(FLOATS)('reductions (%s)', (dtype) => {
  const shapes = shapeArb({ maxRank: 4, maxSize: 300 });

  test.each(['sum', 'prod', 'max', 'min'] as const)('%s over random axis sets', async (op) => {
    const values =
      op === 'prod' ? awayFromZero(0.5, 1.5) : op === 'sum' ? mixedValues(-3, 3) : gridValues(-2, 2, 0.5);
    const inputs = (op === 'prod' ? shapeArb({ maxRank: 4, maxSize: 40 }) : shapes).chain((s) =>
      fc.tuple(hostArb(s, values), axesArb(s.length), fc.boolean()),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h, axes, keepDims]) => {
        const out = await runOnHost([h], ([x]) => T.reduce(op, x, axes, keepDims), { floatDtype: dtype });
        const norm =
          axes === undefined ? [...h.shape.keys()] : axes.map((a) => (a < 0 ? a + h.shape.length : a));
        const expected = naiveReduce(h, norm, keepDims, NAIVE_REDUCE[op].init, NAIVE_REDUCE[op].step);
        expect(out.shape).toEqual(expected.shape);
        expect(out.dtype).toBe(dtype);
        await expectAllClose(
          out.values,
          expected.data,
          dtype === 'float32' ? { atol: 1e-5, rtol: 1e-5 } : ONE_ROUNDING.float64,
        );
      }),
      RUNS,
    );
  });

  test.each(['argmax', 'argmin'] as const)(
    '%s picks the first extreme along an axis or overall',
    async (op) => {
      const inputs = shapeArb({ minRank: 1, maxRank: 4, maxSize: 300 }).chain((s) =>
        fc.tuple(
          hostArb(s, gridValues(-1, 1, 0.5)),
          fc.option(fc.integer({ min: -s.length, max: s.length - 1 }), { nil: undefined }),
          fc.boolean(),
        ),
      );
      const better = op === 'argmax' ? (v: number, b: number) => v > b : (v: number, b: number) => v < b;
      await fc.assert(
        fc.asyncProperty(inputs, async ([h, axis, keepDims]) => {
          const argReduce = op === 'argmax' ? T.argmax : T.argmin;
          const out = await runOnHost([h], ([x]) => argReduce(x, axis, keepDims), { floatDtype: dtype });
          const norm = axis === undefined ? undefined : axis < 0 ? axis + h.shape.length : axis;
          const expected = naiveArgReduce(h, norm, keepDims, better);
          expect(out.dtype).toBe('int32');
          expect(out.shape).toEqual(expected.shape);
          expect(out.values).toEqual(expected.data);
        }),
        RUNS,
      );
    },
  );

  test('max, min and argmax propagate NaN', async () => {
    const x = T.tensor(
      [
        [1, Number.NaN, 3],
        [2, 5, 4],
      ],
      { dtype },
    );
    const results = [T.max(x, 1), T.min(x, 1), T.argmax(x, 1), T.argmin(x, 1)];
    const [mx, mn, amx, amn] = await Promise.all(results.map(valuesOf));
    expect(mx).toEqual([Number.NaN, 5]);
    expect(mn).toEqual([Number.NaN, 2]);
    expect(amx).toEqual([1, 1]);
    expect(amn).toEqual([1, 0]);
    disposeAll(x, ...results);
  });
});

describe('integer and bool reductions', () => {
  test('sum of bool counts in int32; sums and products of int32 stay int32', async () => {
    const b = T.tensor([
      [true, false, true],
      [true, true, true],
    ]);
    const i = T.tensor(
      [
        [1, -2, 3],
        [4, 5, -6],
      ],
      { dtype: 'int32' },
    );
    const results = [T.sum(b), T.sum(b, 1), T.sum(i, 0), T.prod(i, 1), T.max(i)];
    expect(results.map((r) => r.dtype)).toEqual(['int32', 'int32', 'int32', 'int32', 'int32']);
    const values = await Promise.all(results.map(valuesOf));
    expect(values).toEqual([[5], [2, 3], [5, 3, -3], [-6, -120], [5]]);
    disposeAll(b, i, ...results);
  });
});

// ---------------------------------------------------------------------------------------------
// Matmul
// ---------------------------------------------------------------------------------------------

/** Matrix product by the triple loop, with NumPy's vector promotion and batch broadcasting. */
function naiveMatmul(a: Host, b: Host): Host {
  const A = a.shape.length === 1 ? { shape: [1, ...a.shape], data: a.data } : a;
  const B = b.shape.length === 1 ? { shape: [...b.shape, 1], data: b.data } : b;
  const [m, k] = A.shape.slice(-2);
  const n = B.shape[B.shape.length - 1];
  const batch = broadcastShape(A.shape.slice(0, -2), B.shape.slice(0, -2));
  const full = build([...batch, m, n], (index) => {
    const bi = index.slice(0, -2);
    const [i, j] = index.slice(-2);
    let acc = 0;
    for (let p = 0; p < k; p++) {
      acc +=
        at(A, [...broadcastIndex(bi, A.shape.slice(0, -2)), i, p]) *
        at(B, [...broadcastIndex(bi, B.shape.slice(0, -2)), p, j]);
    }
    return acc;
  });
  const shape = [...batch, ...(a.shape.length === 1 ? [] : [m]), ...(b.shape.length === 1 ? [] : [n])];
  return { shape, data: full.data };
}

describe.each(FLOATS)('matmul (%s)', (dtype) => {
  const values = mixedValues(-2, 2);
  const matrices = fc
    .tuple(
      broadcastShapesArb(2, { maxRank: 3, maxSize: 12 }),
      dimArb(),
      dimArb(),
      dimArb(),
      fc.constantFrom(0, 1, 2, 3),
    )
    .chain(([[ba, bb], m, k, n, vectors]) => {
      // vectors: 0 none, 1 left operand is a vector, 2 right one, 3 both.
      const left = vectors & 1 ? [k] : [...ba, m, k];
      const right = vectors & 2 ? [k] : [...bb, k, n];
      return fc.tuple(hostArb(left, values), hostArb(right, values));
    });

  test('agrees with the triple loop (batched, broadcast, vectors, any layout)', async () => {
    await fc.assert(
      fc.asyncProperty(matrices, async ([ha, hb]) => {
        const out = await runOnHost([ha, hb], ([a, b]) => T.matmul(a, b), { floatDtype: dtype });
        const expected = naiveMatmul(ha, hb);
        expect(out.shape).toEqual(expected.shape);
        await expectAllClose(out.values, expected.data, ONE_ROUNDING[dtype]);
      }),
      runs(60),
    );
  });

  test('transposed operands give the same product as their copies', async () => {
    const inputs = fc
      .tuple(dimArb(), dimArb(), dimArb())
      .chain(([m, k, n]) =>
        fc.tuple(
          hostArb([m, k], values, { views: ['transposed'] }),
          hostArb([k, n], values, { views: ['transposed'] }),
        ),
      );
    await fc.assert(
      fc.asyncProperty(inputs, async ([ha, hb]) => {
        const viewed = await runOnHost([ha, hb], ([a, b]) => T.matmul(a, b), { floatDtype: dtype });
        const copied = await runOnHost([ha, hb], ([a, b]) => T.matmul(T.clone(a), T.clone(b)), {
          floatDtype: dtype,
        });
        expect(viewed.values).toEqual(copied.values);
        await expectAllClose(viewed.values, naiveMatmul(ha, hb).data, ONE_ROUNDING[dtype]);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// concat, take, scatterAdd, pad
// ---------------------------------------------------------------------------------------------

describe.each(FLOATS)('indexing ops (%s)', (dtype) => {
  const values = mixedValues(-3, 3);

  test('concat joins along any axis', async () => {
    const inputs = fc
      .tuple(
        shapeArb({ minRank: 1, maxRank: 3, maxSize: 60 }),
        fc.array(dimArb(), { minLength: 1, maxLength: 4 }),
        fc.nat(),
      )
      .chain(([shape, sizes, r]) => {
        const axis = r % shape.length;
        return fc.tuple(
          fc.constant(axis - (r % 2 ? shape.length : 0)),
          fc.tuple(
            ...sizes.map((d) =>
              hostArb(
                shape.map((s, i) => (i === axis ? d : s)),
                values,
              ),
            ),
          ),
        );
      });
    await fc.assert(
      fc.asyncProperty(inputs, async ([axisGiven, hosts]) => {
        const out = await runOnHost(hosts, (xs) => T.concat(xs, axisGiven), { floatDtype: dtype });
        const axis = axisGiven < 0 ? axisGiven + hosts[0].shape.length : axisGiven;
        const shape = [...hosts[0].shape];
        shape[axis] = hosts.reduce((n, h) => n + h.shape[axis], 0);
        const expected = build(shape, (index) => {
          let i = index[axis];
          for (const h of hosts) {
            if (i < h.shape[axis])
              return at(
                h,
                index.map((v, a) => (a === axis ? i : v)),
              );
            i -= h.shape[axis];
          }
          throw new Error('unreachable');
        });
        expect(out.shape).toEqual(shape);
        expect(out.values).toEqual(expected.data);
      }),
      RUNS,
    );
  });

  test('take selects along an axis with indices of any shape', async () => {
    const inputs = fc
      .tuple(
        shapeArb({ minRank: 1, maxRank: 3, maxSize: 60 }),
        shapeArb({ maxRank: 2, maxSize: 12 }),
        fc.nat(),
      )
      .chain(([shape, idxShape, r]) => {
        const axis = r % shape.length;
        return fc.tuple(
          fc.constant(axis),
          hostArb(shape, values),
          hostArb(idxShape, intValues(0, shape[axis] - 1), { dtype: 'int32' }),
        );
      });
    await fc.assert(
      fc.asyncProperty(inputs, async ([axis, hx, hi]) => {
        const out = await runOnHost([hx, hi], ([x, i]) => T.take(x, i, axis), { floatDtype: dtype });
        const shape = [...hx.shape.slice(0, axis), ...hi.shape, ...hx.shape.slice(axis + 1)];
        const expected = build(shape, (index) => {
          const picked = at(hi, index.slice(axis, axis + hi.shape.length));
          return at(hx, [...index.slice(0, axis), picked, ...index.slice(axis + hi.shape.length)]);
        });
        expect(out.shape).toEqual(shape);
        expect(out.values).toEqual(expected.data);
      }),
      RUNS,
    );
  });

  test('scatterAdd sums blocks into slots, accumulating duplicates', async () => {
    const inputs = fc
      .tuple(
        shapeArb({ maxRank: 2, maxSize: 6 }),
        shapeArb({ maxRank: 2, maxSize: 12 }),
        shapeArb({ maxRank: 1, maxSize: 5 }),
        fc.integer({ min: 1, max: 6 }),
      )
      .chain(([before, idxShape, after, size]) =>
        fc.tuple(
          fc.constant({ axis: before.length, size }),
          hostArb([...before, ...idxShape, ...after], values),
          hostArb(idxShape, intValues(0, size - 1), { dtype: 'int32' }),
        ),
      );
    await fc.assert(
      fc.asyncProperty(inputs, async ([{ axis, size }, hs, hi]) => {
        const out = await runOnHost([hs, hi], ([s, i]) => T.scatterAdd(s, i, axis, size), {
          floatDtype: dtype,
        });
        const k = hi.shape.length;
        const shape = [...hs.shape.slice(0, axis), size, ...hs.shape.slice(axis + k)];
        const expected = new Array<number>(sizeOfShape(shape)).fill(0);
        hs.data.forEach((v, flat) => {
          const index = unravel(flat, hs.shape);
          const slot = at(hi, index.slice(axis, axis + k));
          expected[
            ravel([...index.slice(0, axis), slot, ...index.slice(axis + k)], rowMajorStrides(shape))
          ] += v;
        });
        expect(out.shape).toEqual(shape);
        await expectAllClose(
          out.values,
          expected,
          dtype === 'float32' ? { atol: 1e-5, rtol: 1e-5 } : ONE_ROUNDING.float64,
        );
      }),
      RUNS,
    );
  });

  test('pad puts low, high and interior padding', async () => {
    const inputs = shapeArb({ maxRank: 3, maxSize: 40 }).chain((s) =>
      fc.tuple(
        hostArb(s, values),
        fc.array(fc.tuple(fc.nat(2), fc.nat(2), fc.nat(2)), { minLength: s.length, maxLength: s.length }),
        gridValues(-2, 2),
      ),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h, widths, value]) => {
        const out = await runOnHost([h], ([x]) => T.pad(x, widths, value), { floatDtype: dtype });
        const shape = h.shape.map(
          (d, i) => widths[i][0] + widths[i][1] + d + Math.max(0, d - 1) * widths[i][2],
        );
        const expected = new Array<number>(sizeOfShape(shape)).fill(value);
        h.data.forEach((v, flat) => {
          const index = unravel(flat, h.shape).map((x, i) => widths[i][0] + x * (widths[i][2] + 1));
          expected[ravel(index, rowMajorStrides(shape))] = v;
        });
        expect(out.shape).toEqual(shape);
        expect(out.values).toEqual(expected);
      }),
      RUNS,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Softmax and logSumExp
// ---------------------------------------------------------------------------------------------

describe.each(FLOATS)('softmax and logSumExp (%s)', (dtype) => {
  test('softmax rows lie in [0, 1] and sum to 1', async () => {
    const inputs = shapeArb({ minRank: 1, maxRank: 3, maxSize: 200 }).chain((s) =>
      fc.tuple(hostArb(s, smoothValues(-50, 50)), fc.integer({ min: -s.length, max: s.length - 1 })),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h, axis]) => {
        const probs = await runOnHost([h], ([x]) => T.softmax(x, axis), { floatDtype: dtype });
        const sums = await runOnHost([h], ([x]) => T.sum(T.softmax(x, axis), axis), { floatDtype: dtype });
        expect(probs.values.every((p) => p >= 0 && p <= 1)).toBe(true);
        await expectAllClose(
          sums.values,
          sums.values.map(() => 1),
          { atol: 1e-5, rtol: 0 },
        );
      }),
      RUNS,
    );
  });

  test('logSumExp is finite and exact for inputs of ±1e4', async () => {
    const huge = fc.oneof(fc.constantFrom(1e4, -1e4), gridValues(-1e4, -9990), gridValues(9990, 1e4));
    const inputs = shapeArb({ minRank: 1, maxRank: 3, maxSize: 100 }).chain((s) =>
      fc.tuple(hostArb(s, huge), fc.integer({ min: 0, max: s.length - 1 })),
    );
    await fc.assert(
      fc.asyncProperty(inputs, async ([h, axis]) => {
        const out = await runOnHost([h], ([x]) => T.logSumExp(x, axis), { floatDtype: dtype });
        const max = naiveReduce(h, [axis], true, Number.NEGATIVE_INFINITY, (a, v) => Math.max(v, a));
        const shifted = {
          shape: h.shape,
          data: h.data.map((v, flat) =>
            Math.exp(v - at(max, broadcastIndex(unravel(flat, h.shape), max.shape))),
          ),
        };
        const sums = naiveReduce(shifted, [axis], false, 0, (a, v) => a + v);
        const expected = sums.data.map((s, i) => max.data[i] + Math.log(s));
        expect(out.values.every(Number.isFinite)).toBe(true);
        await expectAllClose(out.values, expected, { atol: dtype === 'float32' ? 2e-3 : 1e-9, rtol: 1e-6 });
      }),
      RUNS,
    );
  });

  test('logSumExp of an all −∞ row is −∞, of a row with +∞ is +∞', async () => {
    const x = T.tensor(
      [
        [Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY],
        [0, Number.POSITIVE_INFINITY],
      ],
      { dtype },
    );
    const out = T.logSumExp(x, 1);
    expect(await valuesOf(out)).toEqual([Number.NEGATIVE_INFINITY, Number.POSITIVE_INFINITY]);
    disposeAll(x, out);
  });
});

// ---------------------------------------------------------------------------------------------
// Elementwise math against Math.*
// ---------------------------------------------------------------------------------------------

describe('elementwise awkward points', () => {
  test('relu, abs and sign at 0; round ties to even; sigmoid at ±100', async () => {
    const x = T.tensor([-2.5, -0.5, 0, 0.5, 1.5, 2.5, -100, 100], { dtype: 'float64' });
    const results = [T.relu(x), T.abs(x), T.sign(x), T.round(x), T.floor(x), T.ceil(x), T.sigmoid(x)];
    const [relu, abs, sign, round, floor, ceil, sigmoid] = await Promise.all(results.map(valuesOf));
    expect(relu).toEqual([0, 0, 0, 0.5, 1.5, 2.5, 0, 100]);
    expect(abs).toEqual([2.5, 0.5, 0, 0.5, 1.5, 2.5, 100, 100]);
    expect(sign.map((v) => v + 0)).toEqual([-1, -1, 0, 1, 1, 1, -1, 1]);
    expect(round.map((v) => v + 0)).toEqual([-2, 0, 0, 0, 2, 2, -100, 100]);
    expect(floor).toEqual([-3, -1, 0, 0, 1, 2, -100, 100]);
    expect(ceil.map((v) => v + 0)).toEqual([-2, 0, 0, 1, 2, 3, -100, 100]);
    expect(sigmoid[6]).toBeGreaterThan(0);
    expect(sigmoid[6]).toBeCloseTo(Math.exp(-100), 50);
    expect(sigmoid[7]).toBe(1);
    disposeAll(x, ...results);
  });

  test.each(FLOATS)(
    'sigmoid, softplus, logSigmoid, softmax and logSumExp are stable for any finite input (%s)',
    async (dtype) => {
      const big = dtype === 'float32' ? 3e38 : 1e308;
      const x = T.tensor([-big, -1000, 1000, big], { dtype });
      const results = [T.sigmoid(x), T.softplus(x), T.logSigmoid(x), T.softmax(x), T.logSumExp(x)];
      const [sigmoid, softplus, logSigmoid, softmax, lse] = await Promise.all(results.map(valuesOf));
      const xs = await valuesOf(x);
      const exact = { atol: 0, rtol: 0 }; // −0 and 0 compare equal
      await expectAllClose(sigmoid, [0, 0, 1, 1], exact);
      await expectAllClose(softplus, [0, 0, xs[2], xs[3]], exact);
      await expectAllClose(logSigmoid, [xs[0], xs[1], 0, 0], exact);
      await expectAllClose(softmax, [0, 0, 0, 1], exact);
      await expectAllClose(lse, [xs[3]], exact);
      disposeAll(x, ...results);
    },
  );

  test('erf matches reference values', async () => {
    // Abramowitz & Stegun table 7.1 values.
    const x = T.tensor([0, 0.5, 1, 2, -1, 3, 6], { dtype: 'float64' });
    const y = T.erf(x);
    await expectAllClose(y, [0, 0.5204998778, 0.8427007929, 0.995322265, -0.8427007929, 0.9999779095, 1], {
      atol: 1e-9,
      rtol: 0,
    });
    disposeAll(x, y);
  });
});

// ---------------------------------------------------------------------------------------------
// The shared case table, float32 against float64
// ---------------------------------------------------------------------------------------------

describe('materialize', () => {
  test.each(VIEW_KINDS.filter((v) => v !== 'contiguous'))(
    '%s inputs are stored non-contiguously',
    async (view) => {
      const h: HostTensor = { shape: [3, 2], data: [1, 1, 2, 2, 3, 3], dtype: 'float32', view };
      const x = materialize(h, { floatDtype: 'float64' });
      expect(x.dtype).toBe('float64');
      expect(x.isContiguous).toBe(false);
      if (view === 'strided') expect(x.offset).toBeGreaterThan(0);
      if (view === 'expanded') expect(x.strides).toContain(0);
      expect(await valuesOf(x)).toEqual(h.data);
      x.dispose();
    },
  );
});

describe('fuzz: every case of the table in float32 against float64, 620 input sets each', () => {
  let cases = 0;
  let mismatches = 0;
  afterAll(() => recordFuzz('cpu (float32 against float64)', cases, mismatches));
  test.each([...OP_CASES, ...COMPOSITE_CASES].map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const outcome = await fuzzCase(
      c,
      fuzzRuns(620),
      { backend: 'cpu', floatDtype: 'float32' },
      { backend: 'cpu', floatDtype: 'float64' },
    );
    cases += outcome.cases;
    mismatches += outcome.mismatchCount;
    expect(outcome.mismatches, `${outcome.mismatchCount} of ${outcome.cases} input sets mismatch`).toEqual(
      [],
    );
  });
});

describe('every case of the table agrees in float32 and float64', () => {
  const cases = [...OP_CASES, ...COMPOSITE_CASES];
  test.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await fc.assert(
      fc.asyncProperty(c.inputs, async (hosts) => {
        const r32 = await runOnHost(hosts, c.run, { floatDtype: 'float32' });
        const r64 = await runOnHost(hosts, c.run, { floatDtype: 'float64' });
        expect(r32.shape).toEqual(r64.shape);
        expect(r32.dtype).toBe(r64.dtype === 'float64' ? 'float32' : r64.dtype);
        await expectAllClose(r32.values, r64.values, c.tol ?? DEFAULT_TOL);
      }),
      runs(12),
    );
  });
});
