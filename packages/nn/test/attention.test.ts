/**
 * The Transformer layers: `MultiheadSelfAttention` against a hand-written loop over batch elements
 * and heads, all heads in one batched product, gradchecks (float64) of the attention and the block
 * with respect to input and every parameter, the causal property (fast-check: a causal block's
 * output at position t does not change when inputs after t change), `PositionalEmbedding`,
 * `tieWeights` (one parameter, gradients of both uses accumulated) and input errors. On WebGPU the
 * forward values, input and parameter gradients equal the CPU's, dropout included, without leaks.
 */
import { gradcheck } from '@fluxion/autograd';
import {
  Dense,
  Embedding,
  Module,
  MultiheadSelfAttention,
  PositionalEmbedding,
  TransformerBlock,
  tieWeights,
} from '@fluxion/nn';
import {
  type BackendName,
  gelu,
  getBackend,
  memoryStats,
  mul,
  scope,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import fc from 'fast-check';
import { describe, expect, test, vi } from 'vitest';
import { expectAllClose, runs } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';
import { seeded, values } from './helpers.js';

const gpu = await webgpuEnv();
const f64 = { dtype: 'float64' } as const;

/**
 * Runs `fn` with the named parameters of `module` (dotted field paths, as `namedParameters`
 * gives them) replaced by `tensors`, so that gradcheck can differentiate with respect to them.
 */
function withParams<T>(module: Module, names: string[], tensors: Tensor[], fn: () => T): T {
  const saved: [Record<string, unknown>, string, unknown][] = [];
  names.forEach((name, i) => {
    const path = name.split('.');
    const field = path.pop()!;
    const owner = path.reduce(
      (o, p) => o[p] as Record<string, unknown>,
      module as unknown as Record<string, unknown>,
    );
    saved.push([owner, field, owner[field]]);
    owner[field] = tensors[i];
  });
  try {
    return fn();
  } finally {
    for (const [owner, field, value] of saved.reverse()) owner[field] = value;
  }
}

/** Gradcheck of `module.forward` with respect to `x` and every parameter. */
async function gradcheckModule(module: Module, x: Tensor): Promise<void> {
  const named = module.namedParameters();
  const names = named.map(([n]) => n);
  const report = await gradcheck(
    (xx, ...ps) => withParams(module, names, ps, () => module.forward(xx)),
    [x, ...named.map(([, p]) => p)],
  );
  expect(report.ok).toBe(true);
  expect(report.checked).toBeGreaterThan(0);
}

/** Self-attention by hand: loops over batch elements, heads, queries and keys (float64). */
async function attentionReference(attn: MultiheadSelfAttention, x: Tensor): Promise<number[]> {
  const [B, T, D] = x.shape;
  const H = attn.numHeads;
  const d = D / H;
  const xv = await values(x);
  const wq = await values(attn.qkv.weight);
  const bq = await values(attn.qkv.bias!);
  const wo = await values(attn.proj.weight);
  const bo = await values(attn.proj.bias!);
  const affine = (row: number[], w: number[], b: number[], out: number) =>
    Array.from({ length: out }, (_, o) => row.reduce((s, v, i) => s + v * w[o * row.length + i], b[o]));
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    const rows = Array.from({ length: T }, (_, t) =>
      affine(xv.slice((b * T + t) * D, (b * T + t + 1) * D), wq, bq, 3 * D),
    );
    const merged = Array.from({ length: T }, () => new Array<number>(D).fill(0));
    for (let h = 0; h < H; h++) {
      const q = (t: number, j: number) => rows[t][h * d + j];
      const k = (t: number, j: number) => rows[t][D + h * d + j];
      const v = (t: number, j: number) => rows[t][2 * D + h * d + j];
      for (let i = 0; i < T; i++) {
        const last = attn.causal ? i : T - 1;
        const scores: number[] = [];
        for (let j = 0; j <= last; j++) {
          let s = 0;
          for (let c = 0; c < d; c++) s += q(i, c) * k(j, c);
          scores.push(s / Math.sqrt(d));
        }
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((a, c) => a + c, 0);
        for (let c = 0; c < d; c++) {
          merged[i][h * d + c] = e.reduce((s, w, j) => s + (w / z) * v(j, c), 0);
        }
      }
    }
    for (const row of merged) out.push(...affine(row, wo, bo, D));
  }
  return out;
}

describe('MultiheadSelfAttention', () => {
  test.each([
    { causal: true, heads: 2 },
    { causal: false, heads: 3 },
    { causal: true, heads: 1 },
  ])(
    'equals a loop over batch elements and heads (causal $causal, $heads heads)',
    async ({ causal, heads }) => {
      const attn = new MultiheadSelfAttention(6, heads, { ...f64, causal, seed: 1 });
      const x = seeded([2, 5, 6], 2);
      await expectAllClose(attn.forward(x), await attentionReference(attn, x), { atol: 1e-12, rtol: 1e-10 });
    },
  );

  test('all heads in one batched product: four matmul launches whatever the number of heads', () => {
    const cpu = getBackend('cpu');
    for (const heads of [1, 4]) {
      const attn = new MultiheadSelfAttention(8, heads, { causal: true, seed: 0 });
      const x = seeded([2, 5, 8], 1, 'float32');
      const spy = vi.spyOn(cpu, 'run');
      try {
        scope(() => attn.forward(x));
        const matmuls = spy.mock.calls.filter(([op]) => op === 'matmul').map(([, , out]) => out.shape);
        // qkv, q kᵀ of every head and batch element, weights · v, output projection (the two
        // projections as one 2-D product over all 2 × 5 rows)
        expect(matmuls).toEqual([
          [10, 24],
          [2, heads, 5, 5],
          [2, heads, 5, 8 / heads],
          [10, 8],
        ]);
      } finally {
        spy.mockRestore();
      }
    }
  });

  test('gradcheck (float64) with respect to input and parameters, causal and not', async () => {
    await gradcheckModule(
      new MultiheadSelfAttention(4, 2, { ...f64, causal: true, seed: 3 }),
      seeded([2, 3, 4], 4),
    );
    await gradcheckModule(
      new MultiheadSelfAttention(4, 2, { ...f64, bias: false, seed: 5 }),
      seeded([1, 3, 4], 6),
    );
  });

  test('parameter names, shapes and errors', () => {
    const attn = new MultiheadSelfAttention(6, 2);
    expect(attn.namedParameters().map(([n, p]) => `${n} ${p.shape}`)).toEqual([
      'qkv.weight 18,6',
      'qkv.bias 18',
      'proj.weight 6,6',
      'proj.bias 6',
    ]);
    expect(() => new MultiheadSelfAttention(6, 4)).toThrow(
      /^MultiheadSelfAttention: dim must be a positive multiple of numHeads .* got dim 6, numHeads 4/,
    );
    expect(() => attn.forward(seeded([5, 6], 0, 'float32'))).toThrow(
      /^MultiheadSelfAttention: expected input \[B, T, 6\], got \[5,6\] float32/,
    );
  });
});

describe('TransformerBlock', () => {
  test('gradcheck (float64) with respect to input and every parameter', async () => {
    const block = new TransformerBlock(4, 2, { ...f64, mlpRatio: 2, causal: true, seed: 7 });
    expect(block.namedParameters().map(([n]) => n)).toEqual([
      'ln1.weight',
      'ln1.bias',
      'attn.qkv.weight',
      'attn.qkv.bias',
      'attn.proj.weight',
      'attn.proj.bias',
      'ln2.weight',
      'ln2.bias',
      'fc1.weight',
      'fc1.bias',
      'fc2.weight',
      'fc2.bias',
    ]);
    await gradcheckModule(block, seeded([2, 3, 4], 8));
  });

  test('is x + attn(LN(x)), then + MLP(LN(·)) with GELU', async () => {
    const block = new TransformerBlock(6, 3, { ...f64, causal: true, seed: 9 });
    const x = seeded([2, 4, 6], 10);
    const h = x.add(block.attn.forward(block.ln1.forward(x)));
    const want = h.add(block.fc2.forward(gelu(block.fc1.forward(block.ln2.forward(h)))));
    await expectAllClose(block.forward(x), want, { atol: 1e-12, rtol: 1e-12 });
  });

  test('causal: the output at position t does not change when inputs after t change', async () => {
    const block = new TransformerBlock(8, 2, { ...f64, causal: true, seed: 11 });
    const T = 6;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: T - 2 }),
        fc.integer({ min: 0, max: 1000 }),
        fc.integer({ min: 0, max: 1000 }),
        async (t, seedA, seedB) => {
          const a = await values(seeded([2, T, 8], seedA));
          const b = await values(seeded([2, T, 8], seedB));
          // Same inputs up to t, different after.
          const mixed = a.map((v, i) => (Math.floor(i / 8) % T <= t ? v : b[i] * 3));
          const ya = await values(block.forward(tensor(a, [2, T, 8], f64)));
          const yb = await values(block.forward(tensor(mixed, [2, T, 8], f64)));
          const upToT = (y: number[]) => y.filter((_, i) => Math.floor(i / 8) % T <= t);
          expect(upToT(yb)).toEqual(upToT(ya));
          expect(yb.slice(-8)).not.toEqual(ya.slice(-8)); // the property is not vacuous
        },
      ),
      runs(20),
    );
    // Without the mask the first position sees the last one.
    const open = new TransformerBlock(8, 2, { ...f64, seed: 11 });
    const x = await values(seeded([1, T, 8], 1));
    const y1 = await values(open.forward(tensor(x, [1, T, 8], f64)));
    const y2 = await values(
      open.forward(
        tensor(
          x.map((v, i) => (i >= 8 * (T - 1) ? v + 1 : v)),
          [1, T, 8],
          f64,
        ),
      ),
    );
    expect(y2.slice(0, 8)).not.toEqual(y1.slice(0, 8));
  });

  test('dropout draws from the layer stream while training and is off in eval mode', async () => {
    const make = () => new TransformerBlock(8, 2, { causal: true, dropout: 0.5, seed: 3 });
    const x = seeded([2, 4, 8], 1, 'float32');
    const a = make();
    const b = make();
    expect(await values(a.forward(x))).toEqual(await values(b.forward(x)));
    const train2 = await values(a.forward(x));
    const evalOut = await values(a.eval().forward(x));
    expect(await values(a.forward(x))).toEqual(evalOut);
    expect(train2).not.toEqual(evalOut);
  });
});

/** A token embedding and a tied output layer in one module. */
class TiedLm extends Module {
  emb = new Embedding(5, 3, { seed: 2 });
  head = tieWeights(new Dense(3, 5, { seed: 3 }), this.emb);
  forward(ids: Tensor) {
    return this.head.forward(this.emb.forward(ids));
  }
}
const tiedModel = () => new TiedLm();

describe('PositionalEmbedding and tieWeights', () => {
  test('gradcheck (float64) of PositionalEmbedding', async () => {
    await gradcheckModule(new PositionalEmbedding(4, 3, { ...f64, seed: 1 }), seeded([2, 3, 3], 2));
  });

  test('a tied model keeps one parameter through toDtype', () => {
    const lm = tiedModel().toDtype('float64');
    expect(lm.head.weight).toBe(lm.emb.weight);
    expect(lm.emb.weight.dtype).toBe('float64');
    expect(lm.namedParameters().map(([n]) => n)).toEqual(['emb.weight', 'head.bias']);
  });

  test('adds the rows of the positions, from an offset; only those rows get gradient', async () => {
    const pos = new PositionalEmbedding(5, 3, { ...f64, seed: 0 });
    const w = await values(pos.weight);
    const x = seeded([2, 2, 3], 1);
    const xv = await values(x);
    const y = pos.forward(x, 2);
    expect(await values(y)).toEqual(xv.map((v, i) => v + w[6 + (i % 6)]));
    sum(y).backward();
    expect(await values(pos.weight.grad!)).toEqual([0, 0, 0, 0, 0, 0, 2, 2, 2, 2, 2, 2, 0, 0, 0]);
    expect(() => pos.forward(x, 4)).toThrow(
      /^PositionalEmbedding: positions 4…5 of input \[2,2,3\] exceed maxLength 5/,
    );
    expect(() => pos.forward(seeded([2, 4], 0))).toThrow(
      /^PositionalEmbedding: expected input \[\.\.\., T, 3\]/,
    );
  });

  test('a tied output layer shares the embedding parameter; both uses add up in its gradient', async () => {
    const ids = tensor([1, 3, 3, 0], [4], { dtype: 'int32' });
    const build = (tied: boolean) => {
      const emb = new Embedding(5, 3, { ...f64, seed: 2 });
      const head = new Dense(3, 5, { ...f64, seed: 3 });
      if (tied) tieWeights(head, emb);
      else head.weight.assign(emb.weight);
      return { emb, head };
    };
    const loss = (m: { emb: Embedding; head: Dense }) => {
      const logits = m.head.forward(m.emb.forward(ids));
      return sum(mul(logits, seeded(logits.shape as number[], 4)));
    };
    const tied = build(true);
    expect(tied.head.weight).toBe(tied.emb.weight);
    expect(Object.keys(tiedModel().stateDict())).toEqual(['emb.weight', 'head.bias']);
    loss(tied).backward();
    const untied = build(false);
    loss(untied).backward();
    const eg = await values(untied.emb.weight.grad!);
    const hg = await values(untied.head.weight.grad!);
    await expectAllClose(
      tied.emb.weight.grad!,
      eg.map((v, i) => v + hg[i]),
      { atol: 1e-12, rtol: 1e-12 },
    );
    expect(() => tieWeights(new Dense(3, 4), new Embedding(5, 3))).toThrow(
      /^tieWeights: the output layer's weight \[4,3\] float32 on cpu must match the embedding's \[5,3\] float32 on cpu/,
    );
  });
});

describe.skipIf(!gpu.backend)(`Transformer layers on WebGPU equal the CPU${skipNote(gpu)}`, () => {
  const TOL = { atol: 1e-4, rtol: 1e-3 };
  const gpuBuffers = () => memoryStats().backends.webgpu?.buffers ?? 0;

  /** Output, input gradient and parameter gradients of Σ w·forward(x) on a backend. */
  async function snapshot(build: (backend: BackendName) => Module, shape: number[], backend: BackendName) {
    const module = build(backend);
    const x = tensor(await values(seeded(shape, 5, 'float32')), shape, { backend });
    x.requiresGrad = true;
    const y = module.forward(x);
    const w = tensor(
      Array.from({ length: y.size }, (_, i) => ((i * 7) % 11) / 4 - 1.2),
      y.shape,
      { backend },
    );
    const loss = scope(() => sum(mul(y, w)));
    loss.backward();
    const snap: [string, number[]][] = [
      ['output', await values(y)],
      ['grad of x', await values(x.grad!)],
    ];
    for (const [name, p] of module.namedParameters()) snap.push([`grad of ${name}`, await values(p.grad!)]);
    x.zeroGrad();
    for (const t of [x, y, w, loss]) t.dispose();
    module.zeroGrad();
    module.dispose();
    return snap;
  }

  const small = [2, 7, 8];
  test.each([
    [
      'causal attention',
      (backend: BackendName) => new MultiheadSelfAttention(8, 2, { causal: true, seed: 1, backend }),
    ],
    [
      'causal attention, T 33, dim 32, 4 heads (ragged matmul tiles)',
      (backend: BackendName) => new MultiheadSelfAttention(32, 4, { causal: true, seed: 6, backend }),
      [3, 33, 32],
    ],
    [
      'attention, 4 heads, no bias',
      (backend: BackendName) => new MultiheadSelfAttention(8, 4, { bias: false, seed: 2, backend }),
    ],
    [
      'causal block with dropout 0.1',
      (backend: BackendName) => new TransformerBlock(8, 2, { causal: true, dropout: 0.1, seed: 3, backend }),
    ],
    [
      'block, tanh GELU, mlpRatio 3',
      (backend: BackendName) =>
        new TransformerBlock(8, 4, { mlpRatio: 3, approximate: 'tanh', seed: 4, backend }),
    ],
  ] as [string, (backend: BackendName) => Module, number[]?][])(
    '%s: output and gradients',
    async (_, build, shape = small) => {
      const cpu = await snapshot(build, shape, 'cpu');
      const before = gpuBuffers();
      const onGpu = await snapshot(build, shape, 'webgpu');
      expect(gpuBuffers(), 'GPU buffers left behind').toBe(before);
      expect(onGpu.map(([k]) => k)).toEqual(cpu.map(([k]) => k));
      for (const [i, [key, want]] of cpu.entries()) {
        expect(
          want.some((v) => v !== 0),
          `${key} is all zeros`,
        ).toBe(true);
        try {
          await expectAllClose(onGpu[i][1], want, TOL);
        } catch (e) {
          throw new Error(`${key}: ${(e as Error).message}`);
        }
      }
    },
  );

  test('a tied model moved to WebGPU stays tied', async () => {
    const lm = tiedModel();
    await lm.to('webgpu');
    expect(lm.head.weight).toBe(lm.emb.weight);
    expect(lm.emb.weight.backend.name).toBe('webgpu');
    expect(lm.parameters().length).toBe(2);
    lm.dispose();
  });

  test('causal on WebGPU: later inputs leave earlier outputs unchanged', async () => {
    const block = new TransformerBlock(8, 2, { causal: true, seed: 5, backend: 'webgpu' });
    const a = await values(seeded([1, 6, 8], 1, 'float32'));
    const b = a.map((v, i) => (i >= 24 ? v * -2 + 1 : v));
    const ya = await values(block.forward(tensor(a, [1, 6, 8], { backend: 'webgpu' })));
    const yb = await values(block.forward(tensor(b, [1, 6, 8], { backend: 'webgpu' })));
    expect(yb.slice(0, 24)).toEqual(ya.slice(0, 24));
    block.dispose();
  });
});
