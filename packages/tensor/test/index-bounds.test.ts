/**
 * One rule for index values on every backend (issue #18 item 5; see `index-range.ts`): `take`,
 * `scatterAdd` and `oneHot` raise a FluxionError naming the op, the value and the valid range for
 * an index outside [0, size). The CPU throws from the op; WebGPU flags the value on the device and
 * throws at the next read or sync, after which the backend works normally again.
 */
import {
  type BackendName,
  FluxionError,
  oneHot,
  reshape,
  scatterAdd,
  slice,
  type Tensor,
  take,
  tensor,
  transpose,
} from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { skipNote, webgpuEnv } from './webgpu-env.js';

const gpu = await webgpuEnv();

const ids = (v: number[], backend: BackendName = 'cpu', shape?: number[]) =>
  shape ? tensor(v, shape, { dtype: 'int32', backend }) : tensor(v, { dtype: 'int32', backend });

/** Asserts that `promise` rejects with a FluxionError of `op` whose message matches `pattern`. */
async function expectRejects(promise: Promise<unknown>, op: string, pattern: RegExp): Promise<void> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error, `expected ${op} to raise`).toBeInstanceOf(FluxionError);
  expect((error as FluxionError).op).toBe(op);
  expect((error as FluxionError).message).toMatch(pattern);
}

/** Runs `fn` and reads what it made: the op (CPU) or the read (WebGPU) throws. */
function raised(fn: () => Tensor): Promise<unknown> {
  try {
    const out = fn();
    return out.data().finally(() => out.dispose());
  } catch (e) {
    return Promise.reject(e);
  }
}

describe('index checks on the CPU: the op raises at once', () => {
  it('take: past the end and negative, in the first and a later axis', () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(() => take(x, ids([0, 2]), 0)).toThrow(
      /^take: index 2 is out of range for axis 0 of size 2; valid: \[0, 2\)$/,
    );
    expect(() => take(x, ids([-1]), 1)).toThrow(/^take: index -1 is out of range for axis 1 of size 3/);
    expect(() =>
      take(x, ids([0]), 0, { op: 'Lookup', noun: 'row', range: 'a table of 2 rows' }),
    ).not.toThrow();
    expect(() => take(x, ids([5]), 0, { op: 'Lookup', noun: 'row', range: 'a table of 2 rows' })).toThrow(
      /^Lookup: row 5 is out of range for a table of 2 rows; valid: \[0, 2\)$/,
    );
  });

  it('oneHot: past the last class and negative', () => {
    expect(() => oneHot(ids([0, 3]), 3)).toThrow(
      /^oneHot: index 3 is out of range for 3 classes; valid: \[0, 3\)$/,
    );
    expect(() => oneHot(ids([-1, 0]), 3)).toThrow(/^oneHot: index -1 is out of range for 3 classes/);
    expect(() => oneHot(ids([0]), 0)).toThrow(
      /^oneHot: index 0 is out of range for 0 classes; there is none/,
    );
    expect(() => oneHot(ids([0]), 2.5)).toThrow(/^oneHot: classes must be a non-negative integer, got 2.5/);
  });

  it('scatterAdd: an index past the size', () => {
    expect(() => scatterAdd(tensor([1, 2]), ids([0, 4]), 0, 3)).toThrow(
      /^scatterAdd: index 4 is out of range for axis 0 of size 3/,
    );
  });
});

describe.skipIf(!gpu.backend)(
  `index checks on WebGPU: raised at the next read or sync${skipNote(gpu)}`,
  () => {
    const W: BackendName = 'webgpu';
    const table = () => tensor([10, 11, 12, 13], [4, 1], { backend: W });

    it('take raises at the read of its output, naming op, value and range; the backend is clean after', async () => {
      const x = table();
      const out = take(x, ids([1, 4, 2], W), 0); // no throw here: the indices live on the device
      await expectRejects(
        out.data(),
        'take',
        /^take: index 4 is out of range for axis 0 of size 4; valid: \[0, 4\) \(found on the webgpu device/,
      );
      out.dispose();
      const good = take(x, ids([3, 0], W), 0);
      expect(Array.from(await good.data())).toEqual([13, 10]);
      good.dispose();
      x.dispose();
    });

    it('a negative index, a strided index view and a later axis', async () => {
      const x = tensor([[1, 2, 3]], { backend: W });
      await expectRejects(
        raised(() => take(x, ids([0, -7], W), 1)),
        'take',
        /index -7 is out of range for axis 1 of size 3/,
      );
      const idx = ids([0, 1, 2, 1, 9, 0], W, [2, 3]);
      const column = slice(transpose(idx), [1, 2]); // the view [[1, 9]]: strides [1, 3], offset 1
      await expectRejects(
        raised(() => take(x, column, 1)),
        'take',
        /index 9 is out of range/,
      );
      x.dispose();
    });

    it('the next read of any tensor and sync() raise it too, and only once', async () => {
      const x = table();
      const other = tensor([5], { backend: W });
      const bad = take(x, ids([8], W), 0);
      await expectRejects(other.data(), 'take', /index 8 is out of range/);
      expect(Array.from(await other.data())).toEqual([5]); // reported once
      const bad2 = take(x, ids([-2], W), 0);
      await expectRejects(gpu.backend!.sync(), 'take', /index -2 is out of range/);
      await gpu.backend!.sync();
      for (const t of [x, other, bad, bad2]) t.dispose();
    });

    it('the first bad op of an interval is the one reported, across submits of many dispatches', async () => {
      const x = table();
      const outs: Tensor[] = [];
      for (let i = 0; i < 300; i++)
        outs.push(take(x, ids([i % 4], W), 0, { op: 'Fine', noun: 'id', range: 'r' }));
      outs.push(take(x, ids([6], W), 0, { op: 'First', noun: 'id', range: 'a table of 4' }));
      for (let i = 0; i < 10; i++) outs.push(take(x, ids([i % 4], W), 0));
      outs.push(take(x, ids([7], W), 0, { op: 'Second', noun: 'id', range: 'a table of 4' }));
      await expectRejects(
        outs[0].data(),
        'First',
        /^First: id 6 is out of range for a table of 4; valid: \[0, 4\)/,
      );
      expect(Array.from(await outs[299].data())).toEqual([13]);
      for (const t of [x, ...outs]) t.dispose();
    });

    it('oneHot and scatterAdd raise as on the CPU; in-range values equal the CPU', async () => {
      await expectRejects(
        raised(() => oneHot(ids([0, 3], W), 3)),
        'oneHot',
        /^oneHot: index 3 is out of range for 3 classes; valid: \[0, 3\)/,
      );
      await expectRejects(
        raised(() => oneHot(ids([-1], W), 3)),
        'oneHot',
        /index -1 is out of range for 3 classes/,
      );
      await expectRejects(
        raised(() => scatterAdd(tensor([1, 2], { backend: W }), ids([0, 4], W), 0, 3)),
        'scatterAdd',
        /^scatterAdd: index 4 is out of range for axis 0 of size 3/,
      );
      const hot = oneHot(reshape(ids([2, 0, 1, 2], W), [2, 2]), 3);
      const cpuHot = oneHot(reshape(ids([2, 0, 1, 2]), [2, 2]), 3);
      expect(Array.from(await hot.data())).toEqual(Array.from(await cpuHot.data()));
      hot.dispose();
      cpuHot.dispose();
    });

    it('in-range work reads back without a check failure, and buffers are not leaked', async () => {
      const before = gpu.backend!.memory().buffers;
      const x = table();
      for (let round = 0; round < 3; round++) {
        const [i4, i1] = [ids([4], W), ids([1], W)];
        const bad = take(x, i4, 0);
        await expectRejects(bad.data(), 'take', /index 4/);
        const good = take(x, i1, 0);
        expect(Array.from(await good.data())).toEqual([11]);
        for (const t of [i4, i1, bad, good]) t.dispose();
      }
      x.dispose();
      expect(gpu.backend!.memory().buffers).toBe(before);
    });
  },
);
