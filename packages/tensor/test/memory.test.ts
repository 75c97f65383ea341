/**
 * Deterministic memory release: `dispose()`, `using`, scopes (nested, with exceptions, with
 * `keep`), `memoryStats()` counts, and storage shared by views freed with the last view.
 */

import type { Tensor } from '@fluxion/tensor';
import * as T from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';

/** Live tensors, CPU buffers and CPU bytes right now. */
function counts() {
  const stats = T.memoryStats();
  return {
    tensors: stats.liveTensors,
    buffers: stats.backends.cpu?.buffers ?? 0,
    bytes: stats.backends.cpu?.bytes ?? 0,
  };
}

/** What changed in {@link counts} while `fn` ran. */
function delta(fn: () => void) {
  const before = counts();
  fn();
  const after = counts();
  return {
    tensors: after.tensors - before.tensors,
    buffers: after.buffers - before.buffers,
    bytes: after.bytes - before.bytes,
  };
}

describe('dispose', () => {
  test('frees the buffer and is idempotent', () => {
    let x: Tensor | undefined;
    expect(delta(() => (x = T.zeros([10])))).toEqual({ tensors: 1, buffers: 1, bytes: 40 });
    expect(delta(() => x!.dispose())).toEqual({ tensors: -1, buffers: -1, bytes: -40 });
    expect(x!.isDisposed).toBe(true);
    expect(delta(() => x!.dispose())).toEqual({ tensors: 0, buffers: 0, bytes: 0 });
  });

  test('memoryStats counts bytes per dtype', () => {
    const made: Tensor[] = [];
    const sizes = [
      delta(() => made.push(T.zeros([10], { dtype: 'float32' }))).bytes,
      delta(() => made.push(T.zeros([10], { dtype: 'float64' }))).bytes,
      delta(() => made.push(T.zeros([10], { dtype: 'int32' }))).bytes,
      delta(() => made.push(T.zeros([10], { dtype: 'bool' }))).bytes,
    ];
    expect(sizes).toEqual([40, 80, 40, 10]);
    for (const t of made) t.dispose();
  });

  test('`using` disposes at the end of the block', () => {
    const before = counts();
    let escaped: Tensor;
    {
      using x = T.ones([4]);
      escaped = x;
      expect(counts().tensors).toBe(before.tensors + 1);
    }
    expect(escaped.isDisposed).toBe(true);
    expect(counts()).toEqual(before);
  });

  test('storage shared by views is freed with the last view', async () => {
    const before = counts();
    const base = T.arange(12);
    const x = T.reshape(base, [3, 4]);
    base.dispose();
    const column = T.slice(x, null, [0, 1]);
    const views = [x.T, T.slice(x, [1]), T.expand(column, [3, 5]), T.reshape(x, [12])];
    column.dispose();
    for (const v of views) expect(v.storage).toBe(x.storage);
    expect(counts().buffers).toBe(before.buffers + 1);
    x.dispose();
    // The views still read their values: the storage is alive.
    expect(Array.from(await views[1].data())).toEqual([4, 5, 6, 7, 8, 9, 10, 11]);
    expect(counts().buffers).toBe(before.buffers + 1);
    for (const v of views.slice(0, -1)) v.dispose();
    expect(counts().buffers).toBe(before.buffers + 1);
    views[views.length - 1].dispose();
    expect(counts()).toEqual(before);
  });

  test('reading a non-contiguous view leaves no temporary buffer behind', async () => {
    const x = T.scope(() => T.arange(6).reshape([2, 3]));
    const before = counts();
    const xt = x.T;
    expect(await xt.array()).toEqual([
      [0, 3],
      [1, 4],
      [2, 5],
    ]);
    xt.dispose();
    expect(counts()).toEqual(before);
    x.dispose();
  });

  test('retain() gives an independent handle to the same storage', () => {
    const before = counts();
    const x = T.ones([3]);
    const y = x.retain();
    expect(y.storage).toBe(x.storage);
    x.dispose();
    expect(y.isDisposed).toBe(false);
    expect(counts().buffers).toBe(before.buffers + 1);
    y.dispose();
    expect(counts()).toEqual(before);
  });
});

describe('scope', () => {
  test('frees everything created inside except what it returns', () => {
    const before = counts();
    const x = T.ones([2, 3]);
    const y = T.scope(() => T.relu(T.add(T.mul(x, 2), 1)));
    expect(counts().tensors).toBe(before.tensors + 2);
    expect(counts().buffers).toBe(before.buffers + 2);
    expect(x.isDisposed).toBe(false);
    x.dispose();
    y.dispose();
    expect(counts()).toEqual(before);
  });

  test('returns tensors inside arrays and plain objects', () => {
    const before = counts();
    const out = T.scope(() => {
      const a = T.ones([2]);
      const b = T.zeros([3]);
      T.ones([100]); // dropped
      return { pair: [a, b], nested: { c: T.exp(a) }, n: 3 };
    });
    expect(out.n).toBe(3);
    const kept = [...out.pair, out.nested.c];
    expect(kept.every((t) => !t.isDisposed)).toBe(true);
    expect(counts().tensors).toBe(before.tensors + 3);
    for (const t of kept) t.dispose();
    expect(counts()).toEqual(before);
  });

  test('nested scopes hand returned tensors to the enclosing scope', () => {
    const before = counts();
    let inner: Tensor | undefined;
    let survivor: Tensor | undefined;
    const outer = T.scope(() => {
      inner = T.scope(() => T.exp(T.ones([4])));
      expect(inner.isDisposed).toBe(false);
      survivor = T.scope(() => T.neg(T.ones([4])));
      return survivor;
    });
    // `inner` was returned by the inner scope, but not by the outer one.
    expect(inner!.isDisposed).toBe(true);
    expect(outer).toBe(survivor);
    expect(outer.isDisposed).toBe(false);
    outer.dispose();
    expect(counts()).toEqual(before);
  });

  test('an exception disposes everything created inside, at every level', () => {
    const before = counts();
    let created: Tensor | undefined;
    expect(() =>
      T.scope(() => {
        T.scope(() => {
          created = T.ones([8]);
          T.matmul(T.ones([2, 3]), T.ones([4, 5]));
        });
      }),
    ).toThrow(/inner dimensions differ/);
    expect(created!.isDisposed).toBe(true);
    expect(counts()).toEqual(before);
  });

  test('keep() protects a tensor from every open scope', () => {
    const before = counts();
    let kept: Tensor | undefined;
    T.scope(() => {
      T.scope(() => {
        kept = T.keep(T.ones([5]));
      });
    });
    expect(kept!.isDisposed).toBe(false);
    kept!.dispose();
    expect(counts()).toEqual(before);
  });

  test('tensors created outside are never disposed by a scope, even when returned', () => {
    const x = T.ones([3]);
    const same = T.scope(() => T.reshape(x, [3]));
    expect(same).toBe(x);
    const view = T.scope(() => T.reshape(x, [1, 3]));
    expect(x.isDisposed).toBe(false);
    expect(view.storage).toBe(x.storage);
    view.dispose();
    x.dispose();
  });

  test('a training-like loop keeps memory flat', () => {
    const w = T.randn([16, 16], { seed: 1 });
    const before = counts();
    for (let step = 0; step < 50; step++) {
      T.scope(() => {
        const x = T.randn([8, 16], { seed: step });
        const h = T.softmax(T.matmul(x, w), -1);
        return T.mean(T.logSumExp(h, -1));
      }).dispose();
    }
    expect(counts()).toEqual(before);
    w.dispose();
  });

  test('ops free their internal temporaries', () => {
    const x = T.randn([4, 5], { seed: 2 });
    const y = T.randn([5], { seed: 3 });
    const positive = T.greater(x, 0);
    const classes = T.argmax(x, 1);
    const calls: (() => Tensor | Tensor[])[] = [
      () => T.add(x, 1),
      () => T.where(positive, x, 0),
      () => T.matmul(x, y),
      () => T.softmax(x, 0),
      () => T.logSoftmax(x),
      () => T.variance(x, 1),
      () => T.gelu(x, 'tanh'),
      () => T.clamp(x, -0.5, 0.5),
      () => T.stack([x, x], 1),
      () => T.split(x, [2, 3], 1),
      () => T.oneHot(classes, 5),
      () => T.bernoulli(0.5, [3], { seed: 1 }),
    ];
    for (const call of calls) {
      const before = counts();
      const out = call();
      const outs = Array.isArray(out) ? out : [out];
      expect(counts().tensors - before.tensors, String(call)).toBe(outs.length);
      for (const o of outs) o.dispose();
      expect(counts(), String(call)).toEqual(before);
    }
    for (const t of [x, y, positive, classes]) t.dispose();
  });
});
