/**
 * GRUCell, LSTMCell, GRU and LSTM: outputs and final states against the recurrences written as
 * plain float64 loops (cells, multi-layer stacks, with and without initial states and biases),
 * gradchecks in float64 with respect to inputs, initial states and every parameter, WebGPU
 * parity (float32) of forward and gradients, PyTorch's state-dict names and shapes, a safetensors
 * round trip, the initialisation bounds, errors, inter-layer dropout, and a small learning task.
 */
import { gradcheck, noGrad } from '@fluxion/autograd';
import {
  Adam,
  type AnyModule,
  bceWithLogits,
  Dense,
  GRU,
  GRUCell,
  LSTM,
  LSTMCell,
  loadSafetensors,
  saveSafetensors,
} from '@fluxion/nn';
import {
  type BackendName,
  concat,
  FluxionError,
  getBackend,
  memoryStats,
  mul,
  reshape,
  scope,
  sizeOf,
  slice,
  sum,
  type Tensor,
  tensor,
  zeros,
} from '@fluxion/tensor';
import { describe, expect, it, vi } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { expectClose, seeded, values } from './helpers.js';

const gpu = await webgpuEnv();
const f64 = { dtype: 'float64' } as const;

// ---------------------------------------------------------------------------------------------
// The recurrences as plain float64 loops.

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** One layer's weights as host arrays (biases zero when absent). */
interface HostWeights {
  wih: number[];
  whh: number[];
  bih: number[];
  bhh: number[];
}

/** `W v + b` for a row-major `W [rows, cols]` (row offset `r0`, `n` rows). */
function affine(w: number[], cols: number, v: number[], b: number[], r0: number, n: number): number[] {
  const out: number[] = [];
  for (let r = r0; r < r0 + n; r++) {
    let acc = b[r];
    for (let c = 0; c < cols; c++) acc += w[r * cols + c] * v[c];
    out.push(acc);
  }
  return out;
}

/** One GRU step for one sample: h' from x and h. */
function gruRef(x: number[], h: number[], w: HostWeights, H: number): number[] {
  const I = x.length;
  const gi = (g: number) => affine(w.wih, I, x, w.bih, g * H, H);
  const gh = (g: number) => affine(w.whh, H, h, w.bhh, g * H, H);
  const [ir, iz, inn] = [gi(0), gi(1), gi(2)];
  const [hr, hz, hn] = [gh(0), gh(1), gh(2)];
  return h.map((hk, k) => {
    const r = sigmoid(ir[k] + hr[k]);
    const z = sigmoid(iz[k] + hz[k]);
    const n = Math.tanh(inn[k] + r * hn[k]);
    return (1 - z) * n + z * hk;
  });
}

/** One LSTM step for one sample: [h', c'] from x, h and c. */
function lstmRef(x: number[], h: number[], c: number[], w: HostWeights, H: number): [number[], number[]] {
  const I = x.length;
  const gate = (g: number) => {
    const a = affine(w.wih, I, x, w.bih, g * H, H);
    const b = affine(w.whh, H, h, w.bhh, g * H, H);
    return a.map((v, k) => v + b[k]);
  };
  const [i, f, g, o] = [
    gate(0).map(sigmoid),
    gate(1).map(sigmoid),
    gate(2).map(Math.tanh),
    gate(3).map(sigmoid),
  ];
  const c2 = c.map((ck, k) => f[k] * ck + i[k] * g[k]);
  return [c2.map((ck, k) => o[k] * Math.tanh(ck)), c2];
}

/**
 * The stacked recurrence over a batch-first `x [B, T, I]` from initial states `[L, B, H]`
 * (flat); returns the flat output `[B, T, H]` and the flat final states `[L, B, H]`.
 */
function sequenceRef(
  kind: 'gru' | 'lstm',
  x: number[],
  [B, T, I]: number[],
  layers: HostWeights[],
  H: number,
  h0: number[],
  c0: number[],
): { output: number[]; hN: number[]; cN: number[] } {
  let input: number[][][] = Array.from({ length: B }, (_, b) =>
    Array.from({ length: T }, (_, t) => x.slice((b * T + t) * I, (b * T + t + 1) * I)),
  );
  const hN: number[] = [];
  const cN: number[] = [];
  layers.forEach((w, l) => {
    const next: number[][][] = [];
    for (let b = 0; b < B; b++) {
      let h = h0.slice((l * B + b) * H, (l * B + b + 1) * H);
      let c = c0.slice((l * B + b) * H, (l * B + b + 1) * H);
      const row: number[][] = [];
      for (let t = 0; t < T; t++) {
        if (kind === 'gru') h = gruRef(input[b][t], h, w, H);
        else [h, c] = lstmRef(input[b][t], h, c, w, H);
        row.push(h);
      }
      next.push(row);
      hN.push(...h);
      cN.push(...c);
    }
    input = next;
  });
  return { output: input.flat(2), hN, cN };
}

/** The weights of layer `l` of a module, read back (names with a suffix, e.g. `_l1`, or none). */
async function hostWeights(m: AnyModule, suffix: string, rows: number): Promise<HostWeights> {
  const sd = m.stateDict();
  const read = async (name: string) =>
    sd[`${name}${suffix}`] ? values(sd[`${name}${suffix}`]) : new Array<number>(rows).fill(0);
  return {
    wih: await read('weight_ih'),
    whh: await read('weight_hh'),
    bih: await read('bias_ih'),
    bhh: await read('bias_hh'),
  };
}

// ---------------------------------------------------------------------------------------------

describe('GRUCell and LSTMCell against the recurrence in float64 loops', () => {
  it('GRUCell: h′ for a batch, from a given h and from zeros', async () => {
    const [B, I, H] = [3, 4, 5];
    const cell = new GRUCell(I, H, { ...f64, seed: 1 });
    const w = await hostWeights(cell, '', 3 * H);
    const x = seeded([B, I], 2);
    const h = seeded([B, H], 3);
    const xs = await values(x);
    const hs = await values(h);
    const expected = (h0: number[]) =>
      Array.from({ length: B }, (_, b) =>
        gruRef(xs.slice(b * I, (b + 1) * I), h0.slice(b * H, (b + 1) * H), w, H),
      ).flat();
    await expectClose(cell.forward(x, h), expected(hs), { atol: 1e-12, rtol: 1e-12 });
    await expectClose(cell.forward(x), expected(new Array(B * H).fill(0)), { atol: 1e-12, rtol: 1e-12 });
  });

  it('LSTMCell: [h′, c′] for a batch, with and without bias', async () => {
    const [B, I, H] = [2, 3, 4];
    for (const bias of [true, false]) {
      const cell = new LSTMCell(I, H, { ...f64, seed: 4, bias });
      expect(cell.parameters()).toHaveLength(bias ? 4 : 2);
      const w = await hostWeights(cell, '', 4 * H);
      const x = seeded([B, I], 5);
      const h = seeded([B, H], 6);
      const c = seeded([B, H], 7);
      const [xs, hs, cs] = [await values(x), await values(h), await values(c)];
      const ref = Array.from({ length: B }, (_, b) =>
        lstmRef(
          xs.slice(b * I, (b + 1) * I),
          hs.slice(b * H, (b + 1) * H),
          cs.slice(b * H, (b + 1) * H),
          w,
          H,
        ),
      );
      const [h2, c2] = cell.forward(x, [h, c]);
      await expectClose(
        h2,
        ref.flatMap(([hh]) => hh),
        { atol: 1e-12, rtol: 1e-12 },
      );
      await expectClose(
        c2,
        ref.flatMap(([, cc]) => cc),
        { atol: 1e-12, rtol: 1e-12 },
      );
    }
  });
});

describe('GRU and LSTM against the recurrence in float64 loops', () => {
  const [B, T, I, H] = [2, 5, 3, 4];
  const cases = [
    { name: '1 layer, zero state', numLayers: 1, bias: true, state: false },
    { name: '3 layers, given initial state', numLayers: 3, bias: true, state: true },
    { name: '2 layers, no bias, given initial state', numLayers: 2, bias: false, state: true },
  ];

  it.each(cases)('GRU: $name', async ({ numLayers, bias, state }) => {
    const gru = new GRU(I, H, { ...f64, numLayers, bias, seed: 10 });
    const layers = await Promise.all(
      Array.from({ length: numLayers }, (_, l) => hostWeights(gru, `_l${l}`, 3 * H)),
    );
    const x = seeded([B, T, I], 11);
    const h0 = seeded([numLayers, B, H], 12);
    const h0s = state ? await values(h0) : new Array(numLayers * B * H).fill(0);
    const ref = sequenceRef('gru', await values(x), [B, T, I], layers, H, h0s, h0s);
    const [output, hN] = gru.forward(x, state ? h0 : undefined);
    expect(output.shape).toEqual([B, T, H]);
    expect(hN.shape).toEqual([numLayers, B, H]);
    await expectClose(output, ref.output, { atol: 1e-12, rtol: 1e-12 });
    await expectClose(hN, ref.hN, { atol: 1e-12, rtol: 1e-12 });
  });

  it.each(cases)('LSTM: $name', async ({ numLayers, bias, state }) => {
    const lstm = new LSTM(I, H, { ...f64, numLayers, bias, seed: 13 });
    const layers = await Promise.all(
      Array.from({ length: numLayers }, (_, l) => hostWeights(lstm, `_l${l}`, 4 * H)),
    );
    const x = seeded([B, T, I], 14);
    const h0 = seeded([numLayers, B, H], 15);
    const c0 = seeded([numLayers, B, H], 16);
    const zero = new Array(numLayers * B * H).fill(0);
    const ref = sequenceRef(
      'lstm',
      await values(x),
      [B, T, I],
      layers,
      H,
      state ? await values(h0) : zero,
      state ? await values(c0) : zero,
    );
    const [output, [hN, cN]] = lstm.forward(x, state ? [h0, c0] : undefined);
    expect(output.shape).toEqual([B, T, H]);
    expect(hN.shape).toEqual([numLayers, B, H]);
    expect(cN.shape).toEqual([numLayers, B, H]);
    await expectClose(output, ref.output, { atol: 1e-12, rtol: 1e-12 });
    await expectClose(hN, ref.hN, { atol: 1e-12, rtol: 1e-12 });
    await expectClose(cN, ref.cN, { atol: 1e-12, rtol: 1e-12 });
  });

  it('a one-layer GRU equals its cell run step by step with the same weights', async () => {
    const gru = new GRU(I, H, { ...f64, seed: 17 });
    const cell = new GRUCell(I, H, f64);
    cell.loadStateDict(
      Object.fromEntries(Object.entries(gru.stateDict()).map(([k, v]) => [k.replace('_l0', ''), v])),
    );
    const x = seeded([B, T, I], 18);
    const [output, hN] = gru.forward(x);
    let h = zeros([B, H], f64);
    const steps: number[][] = [];
    for (let t = 0; t < T; t++) {
      h = cell.forward(slice(x, null, t), h);
      steps.push(await values(h));
    }
    const outs = await values(output);
    for (let t = 0; t < T; t++) {
      await expectClose(
        Array.from({ length: B * H }, (_, k) => outs[(Math.floor(k / H) * T + t) * H + (k % H)]),
        steps[t],
        { atol: 0, rtol: 0 },
      );
    }
    await expectClose(hN, steps[T - 1], { atol: 0, rtol: 0 });
  });

  it('leaves no tensor behind but its results, with and without gradients', () => {
    const lstm = new LSTM(I, H, { numLayers: 2, seed: 19 });
    const x = seeded([B, T, I], 20, 'float32');
    const before = memoryStats().liveTensors;
    const [output, [hN, cN]] = noGrad(() => lstm.forward(x));
    expect(memoryStats().liveTensors - before).toBe(3);
    for (const t of [output, hN, cN]) t.dispose();
    const [o2, [h2, c2]] = lstm.forward(x);
    for (const t of [o2, h2, c2]) t.dispose();
    expect(memoryStats().liveTensors).toBe(before);
  });

  it('backward writes a number of elements linear in the sequence length', () => {
    const cpu = getBackend('cpu');
    /** Elements written by the kernels of one backward pass, per element of the output. */
    const perOutput = (steps: number) => {
      const gru = new GRU(I, H, { seed: 21 });
      const x = seeded([B, steps, I], 22, 'float32');
      const spy = vi.spyOn(cpu, 'run');
      try {
        return scope(() => {
          const [output] = gru.forward(x);
          spy.mockClear();
          sum(output).backward();
          return spy.mock.calls.reduce((n, [, , out]) => n + sizeOf(out.shape), 0) / output.size;
        });
      } finally {
        spy.mockRestore();
        x.dispose();
      }
    };
    // The steps' gradients are joined in one concat: the same work per step at T = 4 and 32
    // (padding each to [B, T, 3H] and adding made it grow with T).
    expect(perOutput(32)).toBeLessThanOrEqual(perOutput(4) * 1.1);
  });
});

// ---------------------------------------------------------------------------------------------

/** Runs `fn` with some of `module`'s fields temporarily replaced by `fields`. */
function withFields<T>(module: AnyModule, fields: Record<string, Tensor>, fn: () => T): T {
  const target = module as unknown as Record<string, unknown>;
  const saved = Object.fromEntries(Object.keys(fields).map((k) => [k, target[k]]));
  Object.assign(target, fields);
  try {
    return fn();
  } finally {
    Object.assign(target, saved);
  }
}

/** All tensors joined flat, so that gradcheck sees one output. */
const flatJoin = (ts: Tensor[]): Tensor => concat(ts.map((t) => reshape(t, [t.size])));

/** gradcheck of `run(inputs…)` with respect to the inputs and every parameter of `m`. */
async function gradcheckModule(
  m: AnyModule,
  inputs: Tensor[],
  run: (inputs: Tensor[]) => Tensor[],
): Promise<number> {
  const names = m.namedParameters().map(([n]) => n);
  const f = (...args: Tensor[]) =>
    withFields(m, Object.fromEntries(names.map((n, i) => [n, args[inputs.length + i]])), () =>
      flatJoin(run(args.slice(0, inputs.length))),
    );
  const report = await gradcheck(f, [...inputs, ...m.parameters()]);
  expect(report.ok).toBe(true);
  return report.checked;
}

describe('gradcheck (float64) with respect to input, initial state and every parameter', () => {
  it('GRUCell', async () => {
    const cell = new GRUCell(3, 2, { ...f64, seed: 30 });
    await gradcheckModule(cell, [seeded([2, 3], 31), seeded([2, 2], 32)], ([x, h]) => [cell.forward(x, h)]);
  });

  it('LSTMCell', async () => {
    const cell = new LSTMCell(3, 2, { ...f64, seed: 33 });
    await gradcheckModule(cell, [seeded([2, 3], 34), seeded([2, 2], 35), seeded([2, 2], 36)], ([x, h, c]) =>
      cell.forward(x, [h, c]),
    );
  });

  it('GRU, 2 layers: output and final state', async () => {
    const gru = new GRU(3, 2, { ...f64, numLayers: 2, seed: 37 });
    expect(gru.parameters()).toHaveLength(8);
    await gradcheckModule(gru, [seeded([2, 3, 3], 38), seeded([2, 2, 2], 39)], ([x, h0]) =>
      gru.forward(x, h0),
    );
  });

  it('LSTM, 2 layers: output and final states', async () => {
    const lstm = new LSTM(3, 2, { ...f64, numLayers: 2, seed: 40 });
    await gradcheckModule(
      lstm,
      [seeded([2, 3, 3], 41), seeded([2, 2, 2], 42), seeded([2, 2, 2], 43)],
      ([x, h0, c0]) => {
        const [output, [hN, cN]] = lstm.forward(x, [h0, c0]);
        return [output, hN, cN];
      },
    );
  });
});

// ---------------------------------------------------------------------------------------------

describe("PyTorch's parameter names, shapes and initialisation", () => {
  const shapes = (m: AnyModule) => Object.entries(m.stateDict()).map(([k, v]) => [k, [...v.shape]]);

  it('state-dict keys and shapes are those of torch.nn.GRU/LSTM/GRUCell/LSTMCell', () => {
    expect(shapes(new GRU(3, 4, { numLayers: 2 }))).toEqual([
      ['weight_ih_l0', [12, 3]],
      ['weight_hh_l0', [12, 4]],
      ['bias_ih_l0', [12]],
      ['bias_hh_l0', [12]],
      ['weight_ih_l1', [12, 4]],
      ['weight_hh_l1', [12, 4]],
      ['bias_ih_l1', [12]],
      ['bias_hh_l1', [12]],
    ]);
    expect(shapes(new LSTM(3, 4, { numLayers: 2 }))).toEqual([
      ['weight_ih_l0', [16, 3]],
      ['weight_hh_l0', [16, 4]],
      ['bias_ih_l0', [16]],
      ['bias_hh_l0', [16]],
      ['weight_ih_l1', [16, 4]],
      ['weight_hh_l1', [16, 4]],
      ['bias_ih_l1', [16]],
      ['bias_hh_l1', [16]],
    ]);
    expect(shapes(new LSTM(5, 2, { bias: false }))).toEqual([
      ['weight_ih_l0', [8, 5]],
      ['weight_hh_l0', [8, 2]],
    ]);
    expect(shapes(new GRUCell(3, 4))).toEqual([
      ['weight_ih', [12, 3]],
      ['weight_hh', [12, 4]],
      ['bias_ih', [12]],
      ['bias_hh', [12]],
    ]);
    expect(shapes(new LSTMCell(3, 4, { bias: false }))).toEqual([
      ['weight_ih', [16, 3]],
      ['weight_hh', [16, 4]],
    ]);
  });

  it('weights saved as safetensors load by name into a fresh layer and compute the same', async () => {
    const a = new LSTM(3, 4, { numLayers: 2, seed: 50 });
    const bytes = await saveSafetensors(a.stateDict());
    const b = new LSTM(3, 4, { numLayers: 2, seed: 51 });
    const { tensors } = loadSafetensors(bytes);
    expect(Object.keys(tensors).sort()).toEqual(Object.keys(a.stateDict()).sort());
    b.loadStateDict(tensors);
    const x = seeded([2, 4, 3], 52, 'float32');
    const [oa, [ha, ca]] = a.forward(x);
    const [ob, [hb, cb]] = b.forward(x);
    for (const [u, v] of [
      [oa, ob],
      [ha, hb],
      [ca, cb],
    ]) {
      await expectClose(u, v, { atol: 0, rtol: 0 });
    }
    // A GRU checkpoint does not fit an LSTM: the layouts differ by name and shape.
    expect(() => new GRU(3, 4, { numLayers: 2 }).loadStateDict(tensors)).toThrow(/expects \[12,3\]/);
  });

  it('every parameter is U(−1/√H, 1/√H): within the bound, spread over it, seeded', async () => {
    const H = 16;
    const bound = 1 / Math.sqrt(H);
    for (const m of [
      new GRU(8, H, { numLayers: 2, seed: 60 }),
      new LSTM(8, H, { numLayers: 2, seed: 60 }),
      new GRUCell(8, H, { seed: 60 }),
      new LSTMCell(8, H, { seed: 60 }),
    ]) {
      for (const [name, p] of m.namedParameters()) {
        const v = await values(p);
        expect(
          v.every((u) => Math.abs(u) <= bound),
          `${m} ${name} within ±${bound}`,
        ).toBe(true);
        expect(Math.max(...v), `${m} ${name}`).toBeGreaterThan(0.8 * bound);
        expect(Math.min(...v), `${m} ${name}`).toBeLessThan(-0.8 * bound);
        expect(new Set(v).size, `${m} ${name} distinct values`).toBeGreaterThan(v.length / 2);
      }
      // Two parameters of one layer draw different numbers from the layer's stream.
      const [p0, p1] = m.parameters();
      expect((await values(p0)).slice(0, 8)).not.toEqual((await values(p1)).slice(0, 8));
    }
    const again = () => values(new GRU(8, H, { numLayers: 2, seed: 60 }).stateDict().weight_hh_l1);
    expect(await again()).toEqual(await again());
  });
});

// ---------------------------------------------------------------------------------------------

describe('errors and options', () => {
  it('wrong input rank, size, dtype, state shapes and sizes are FluxionErrors naming the layer', () => {
    const gru = new GRU(3, 4, { numLayers: 2 });
    const lstm = new LSTM(3, 4);
    const expectError = (fn: () => unknown, pattern: RegExp) => {
      expect(fn).toThrow(FluxionError);
      expect(fn).toThrow(pattern);
    };
    expectError(() => gru.forward(zeros([2, 3])), /GRU: expected input \[batch, time, 3\].*got \[2,3\]/);
    expectError(() => gru.forward(zeros([2, 5, 4])), /GRU: .*got \[2,5,4\] float32/);
    expectError(
      () => gru.forward(zeros([2, 5, 3], { dtype: 'int32' })),
      /GRU: .*\(batch first, float\), got \[2,5,3\] int32/,
    );
    expectError(() => gru.forward(zeros([2, 0, 3])), /GRU: the sequence is empty/);
    expectError(
      () => gru.forward(zeros([2, 5, 3]), zeros([1, 2, 4])),
      /GRU: expected h0 \[2,2,4\].*\[1,2,4\]/,
    );
    expectError(
      () => lstm.forward(zeros([2, 5, 3]), [zeros([1, 2, 4]), zeros([1, 3, 4])]),
      /LSTM: expected c0 \[1,2,4\].*\[1,3,4\]/,
    );
    expectError(() => new GRUCell(3, 4).forward(zeros([2, 5, 3])), /GRUCell: expected input \[batch, 3\]/);
    expectError(
      () => new LSTMCell(3, 4).forward(zeros([2, 3]), [zeros([2, 4]), zeros([2, 5])]),
      /LSTMCell: expected c \[2,4\]/,
    );
    expectError(() => new LSTM(3, 0), /LSTM: hiddenSize must be a positive integer, got 0/);
    expectError(() => new GRU(3, 4, { numLayers: 1.5 }), /GRU: numLayers must be a positive integer/);
    expectError(() => new GRU(3, 4, { dropout: 2 }), /GRU: dropout must lie in \[0, 1\], got 2/);
    expectError(() => new GRUCell(-1, 4), /GRUCell: inputSize must be a positive integer/);
  });

  it('dropout between layers acts in training only; eval equals the model without dropout', async () => {
    const withDrop = new GRU(3, 4, { numLayers: 2, dropout: 0.5, seed: 70 });
    const plain = new GRU(3, 4, { numLayers: 2, seed: 70 });
    const x = seeded([2, 6, 3], 71, 'float32');
    const [train] = withDrop.forward(x);
    const [reference] = plain.forward(x);
    expect(await values(train)).not.toEqual(await values(reference));
    const [evaluated] = withDrop.eval().forward(x);
    await expectClose(evaluated, reference, { atol: 0, rtol: 0 });
    // Back to training mode, dropout acts again; the layer is one leaf module (one summary row).
    expect(await values(withDrop.train().forward(x)[0])).not.toEqual(await values(reference));
    expect(withDrop.modules()).toEqual([withDrop]);
    expect(withDrop.summary([2, 6, 3], { print: false })).toMatch(
      /\(model\) \(GRU\) +\[2,6,4\], \[2,2,4\] +228/,
    );
    expect(String(withDrop)).toBe('GRU(3 → 4, 2 layers)');
    expect(String(new LSTMCell(2, 5))).toBe('LSTMCell(2 → 5)');
  });
});

// ---------------------------------------------------------------------------------------------

describe('learning (CPU)', () => {
  /**
   * y_t = x_t XOR x_{t−1} (x_0 XOR 0 at the start): the parity of the last two bits, which needs
   * the memory of one step and a nonlinearity. Bits are drawn by a fixed LCG.
   */
  function parityBatch(B: number, T: number, seed: number): [Tensor, Tensor] {
    let s = seed;
    const bits = Array.from({ length: B * T }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s >> 16 > 16383 ? 1 : 0;
    });
    const y = bits.map((b, i) => (i % T === 0 ? b : b ^ bits[i - 1]));
    return [tensor(bits, [B, T, 1]), tensor(y, [B, T, 1])];
  }

  it.each(['GRU', 'LSTM'] as const)(
    '%s learns the parity of the last two bits: BCE from ≈ ln 2 down ≥ 10× in 150 Adam steps',
    async (kind) => {
      const H = 8;
      const rnn = kind === 'GRU' ? new GRU(1, H, { seed: 80 }) : new LSTM(1, H, { seed: 80 });
      const head = new Dense(H, 1, { seed: 81 });
      const opt = new Adam([...rnn.parameters(), ...head.parameters()], { lr: 0.03 });
      const lossAt = (x: Tensor, y: Tensor) => scope(() => bceWithLogits(head.forward(rnn.forward(x)[0]), y));
      const [xTest, yTest] = parityBatch(64, 12, 7);
      const initial = (await noGrad(() => lossAt(xTest, yTest)).item()) as number;
      for (let step = 0; step < 150; step++) {
        const [x, y] = parityBatch(16, 12, 1000 + step);
        opt.zeroGrad();
        const loss = lossAt(x, y);
        loss.backward();
        opt.step();
        for (const t of [loss, x, y]) t.dispose();
      }
      const final = (await noGrad(() => lossAt(xTest, yTest)).item()) as number;
      expect(initial).toBeGreaterThan(0.6);
      // Measured: 0.69 → 0.005 (GRU), 0.69 → 0.002 (LSTM).
      expect(final).toBeLessThan(initial / 10);
    },
  );
});

// ---------------------------------------------------------------------------------------------

const gpuBuffers = (): number => memoryStats().backends.webgpu?.buffers ?? 0;

/** Σ wᵢ·tᵢ over all the tensors with fixed weights, so that gradients are not trivial. */
function weightedSum(ts: Tensor[]): Tensor {
  const flat = flatJoin(ts);
  const pattern = Float32Array.from({ length: flat.size }, (_, i) => (((i * 7) % 11) - 5) / 4 + 0.3);
  return sum(mul(flat, tensor(pattern, [flat.size], { backend: flat.backend.name })));
}

/** Outputs, input gradients and parameter gradients of one case on one backend, by name. */
async function snapshot(
  build: (backend: BackendName) => AnyModule,
  inputs: Tensor[],
  run: (m: AnyModule, xs: Tensor[]) => Tensor[],
  backend: BackendName,
): Promise<Map<string, number[]>> {
  const snap = new Map<string, number[]>();
  const m = build(backend);
  const xs = await Promise.all(
    inputs.map(async (t) => {
      const u = tensor(await t.data(), t.shape, { backend });
      u.requiresGrad = true;
      return u;
    }),
  );
  const outs = scope(() => run(m, xs));
  for (const [i, o] of outs.entries()) snap.set(`output ${i}`, await values(o));
  const loss = scope(() => weightedSum(outs));
  loss.backward();
  for (const t of [loss, ...outs]) t.dispose();
  for (const [i, x] of xs.entries()) snap.set(`grad of input ${i}`, await values(x.grad!));
  for (const [name, p] of m.namedParameters()) snap.set(`grad of ${name}`, await values(p.grad!));
  for (const x of xs) {
    x.zeroGrad();
    x.dispose();
  }
  m.zeroGrad();
  m.dispose();
  return snap;
}

describe.skipIf(!gpu.backend)(
  `recurrent layers: WebGPU equals CPU, forward and gradients${skipNote(gpu)}`,
  () => {
    const f32 = (shape: number[], seed: number) => seeded(shape, seed, 'float32');
    const cases: [
      string,
      (backend: BackendName) => AnyModule,
      Tensor[],
      (m: AnyModule, xs: Tensor[]) => Tensor[],
    ][] = [
      [
        'GRUCell',
        (backend) => new GRUCell(5, 6, { seed: 90, backend }),
        [f32([3, 5], 91), f32([3, 6], 92)],
        (m, [x, h]) => [(m as GRUCell).forward(x, h)],
      ],
      [
        'LSTMCell',
        (backend) => new LSTMCell(5, 6, { seed: 93, backend }),
        [f32([3, 5], 94), f32([3, 6], 95), f32([3, 6], 96)],
        (m, [x, h, c]) => (m as LSTMCell).forward(x, [h, c]),
      ],
      [
        'GRU, 2 layers, 7 steps, initial state',
        (backend) => new GRU(5, 6, { numLayers: 2, seed: 97, backend }),
        [f32([3, 7, 5], 98), f32([2, 3, 6], 99)],
        (m, [x, h0]) => (m as GRU).forward(x, h0),
      ],
      [
        'LSTM, 2 layers, 7 steps, initial state',
        (backend) => new LSTM(5, 6, { numLayers: 2, seed: 100, backend }),
        [f32([3, 7, 5], 101), f32([2, 3, 6], 102), f32([2, 3, 6], 103)],
        (m, [x, h0, c0]) => {
          const [output, [hN, cN]] = (m as LSTM).forward(x, [h0, c0]);
          return [output, hN, cN];
        },
      ],
    ];

    it('a CPU-built LSTM moved with Module.to("webgpu") keeps its names and computes what it computed', async () => {
      const lstm = new LSTM(4, 5, { numLayers: 2, seed: 104 });
      const x = f32([2, 6, 4], 105);
      const [cpuOut, [cpuH, cpuC]] = lstm.forward(x);
      const before = gpuBuffers();
      await lstm.to('webgpu');
      expect(Object.keys(lstm.stateDict())).toEqual([
        'weight_ih_l0',
        'weight_hh_l0',
        'bias_ih_l0',
        'bias_hh_l0',
        'weight_ih_l1',
        'weight_hh_l1',
        'bias_ih_l1',
        'bias_hh_l1',
      ]);
      for (const p of lstm.parameters()) expect(p.backend.name).toBe('webgpu');
      const xGpu = tensor(await x.data(), x.shape, { backend: 'webgpu' });
      const [out, [h, c]] = lstm.forward(xGpu);
      await expectAllClose(out, await values(cpuOut), { atol: 1e-5, rtol: 1e-4 });
      await expectAllClose(h, await values(cpuH), { atol: 1e-5, rtol: 1e-4 });
      await expectAllClose(c, await values(cpuC), { atol: 1e-5, rtol: 1e-4 });
      for (const t of [out, h, c, xGpu]) t.dispose();
      lstm.dispose();
      expect(gpuBuffers()).toBeLessThanOrEqual(before);
    });

    it.each(cases)('%s', async (_name, build, inputs, run) => {
      const cpu = await snapshot(build, inputs, run, 'cpu');
      const before = gpuBuffers();
      const onGpu = await snapshot(build, inputs, run, 'webgpu');
      expect(gpuBuffers(), 'GPU buffers left behind').toBe(before);
      expect([...onGpu.keys()]).toEqual([...cpu.keys()]);
      for (const [key, expected] of cpu) {
        expect(
          expected.some((v) => v !== 0),
          `${key} is all zeros`,
        ).toBe(true);
        try {
          await expectAllClose(onGpu.get(key)!, expected, { atol: 1e-4, rtol: 1e-3 });
        } catch (e) {
          throw new Error(`${key}: ${(e as Error).message}`);
        }
      }
    });
  },
);
