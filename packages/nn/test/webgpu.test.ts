/**
 * `@fluxion/nn` on WebGPU equals `@fluxion/nn` on the CPU (float32 tolerance): every layer's
 * initialisation (same seed ⇒ same parameters, Philox being shared), forward output, input
 * gradients, parameter gradients and buffers (BatchNorm's running statistics) after a training
 * forward; every loss with each reduction and its gradients; three steps of every optimizer from
 * the same parameters and gradients; gradient clipping. Each case also checks that it leaves no
 * GPU buffer behind.
 *
 * Layers are built directly on their backend (`{ backend }`) while the CPU stays the current
 * backend, so a layer that creates a tensor on the default backend instead of its input's fails
 * here. One case moves a CPU-built model with `Module.to('webgpu')` instead.
 *
 * Runs when a WebGPU adapter is found; with FLUXION_REQUIRE_WEBGPU=1 a missing adapter fails.
 */
import { noGrad } from '@fluxion/autograd';
import {
  Adagrad,
  Adam,
  type AdamOptions,
  AdamW,
  type AnyModule,
  AvgPool2d,
  BatchNorm1d,
  BatchNorm2d,
  bceWithLogits,
  binaryCrossEntropy,
  Conv2d,
  ConvTranspose2d,
  clipGradNorm,
  clipGradValue,
  crossEntropy,
  Dense,
  Dropout,
  ELU,
  Embedding,
  Flatten,
  GELU,
  gaussianKl,
  type HyperParams,
  LayerNorm,
  LeakyReLU,
  LogSoftmax,
  l1Loss,
  MaxPool2d,
  mseLoss,
  nllLoss,
  type Optimizer,
  Parameter,
  type ParamGroupSpec,
  type Reduction,
  ReLU,
  RMSprop,
  Sequential,
  SGD,
  Sigmoid,
  SiLU,
  Softmax,
  Softplus,
  Tanh,
  Unflatten,
} from '@fluxion/nn';
import {
  type BackendName,
  logSoftmax,
  memoryStats,
  mul,
  permute,
  randn,
  scope,
  sum,
  type Tensor,
  tensor,
  transpose,
  type WebGPUBackend,
} from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { expectAllClose, type Tolerance } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';

const gpu = await webgpuEnv();

/** Float32 tolerance of the comparisons (convolutions and norms sum tens of products). */
const F32: Tolerance = { atol: 1e-4, rtol: 1e-3 };

/** Host data of one input: float32 or int32 values and a shape; `grad` asks for its gradient. */
interface HostInput {
  shape: number[];
  data: Float32Array | Int32Array;
  grad: boolean;
}

/** Deterministic float32 values `offset + scale · u`, u in [−1, 1) (an LCG, as the nn helpers). */
function floats(
  shape: number[],
  seed: number,
  { scale = 1, offset = 0, grad = true }: { scale?: number; offset?: number; grad?: boolean } = {},
): HostInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  let s = seed * 9301 + 49297;
  for (let i = 0; i < n; i++) {
    s = (s * 9301 + 49297) % 233280;
    data[i] = offset + scale * ((s / 233280) * 2 - 1);
  }
  return { shape, data, grad };
}

/** Values rounded to multiples of 0.5, so that windows hold ties. */
function quantised(shape: number[], seed: number): HostInput {
  const h = floats(shape, seed, { scale: 1.5 });
  for (let i = 0; i < h.data.length; i++) h.data[i] = Math.round(h.data[i] * 2) / 2;
  return h;
}

/** Explicit float32 values. */
const values32 = (shape: number[], v: number[], grad = true): HostInput => ({
  shape,
  data: Float32Array.from(v),
  grad,
});

/** int32 values (class indices, ids): never differentiated. */
const ints = (shape: number[], v: number[]): HostInput => ({ shape, data: Int32Array.from(v), grad: false });

/** Rows of class probabilities `[n, c]` (positive, summing to 1), not differentiated. */
function probabilities(n: number, c: number, seed: number): HostInput {
  const raw = floats([n, c], seed, { scale: 0.45, offset: 0.55 }).data;
  for (let i = 0; i < n; i++) {
    let total = 0;
    for (let j = 0; j < c; j++) total += raw[i * c + j];
    for (let j = 0; j < c; j++) raw[i * c + j] /= total;
  }
  return { shape: [n, c], data: raw, grad: false };
}

function upload(h: HostInput, backend: BackendName): Tensor {
  const dtype = h.data instanceof Int32Array ? 'int32' : 'float32';
  const t = tensor(h.data, h.shape, { dtype, backend });
  if (h.grad) t.requiresGrad = true;
  return t;
}

const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data(), Number);

/** Σ wᵢ·outᵢ with a fixed pattern of weights (not summing to zero over any axis), so gradients are not trivial. */
function weightedSum(out: Tensor): Tensor {
  const pattern = Float32Array.from({ length: out.size }, (_, i) => (((i * 7) % 11) - 5) / 4 + 0.3);
  return sum(mul(out, tensor(pattern, out.shape, { backend: out.backend.name })));
}

/** Named values read back from one backend, with shapes where they matter. */
type Snapshot = Map<string, number[]>;

const gpuBuffers = (): number => memoryStats().backends.webgpu?.buffers ?? 0;

/**
 * Runs `fn` on the WebGPU backend and checks that every GPU buffer it created was released;
 * returns its result.
 */
async function withoutGpuLeaks<T>(fn: () => Promise<T>): Promise<T> {
  const before = gpuBuffers();
  const result = await fn();
  expect(gpuBuffers(), 'GPU buffers left behind').toBe(before);
  return result;
}

/** Compares two snapshots key by key; the message names the first differing entry. */
async function expectSameSnapshots(gpuSnap: Snapshot, cpuSnap: Snapshot, tol: Tolerance): Promise<void> {
  expect([...gpuSnap.keys()]).toEqual([...cpuSnap.keys()]);
  for (const [key, expected] of cpuSnap) {
    try {
      await expectAllClose(gpuSnap.get(key)!, expected, tol);
    } catch (e) {
      throw new Error(`${key}: ${(e as Error).message}`);
    }
  }
}

/** A computation compared across backends: a module's forward, or a function of the inputs. */
interface ParityCase {
  name: string;
  inputs: HostInput[];
  /** Builds the module on a backend (omitted for plain functions such as losses). */
  build?: (backend: BackendName) => AnyModule;
  /** The computation (default: `module.forward(...inputs)`). */
  run?: (xs: Tensor[], module: AnyModule | undefined) => Tensor;
  /** Measure in eval mode (after the warm-up forwards in training mode). */
  mode?: 'train' | 'eval';
  /** Input sets run through the module in training mode first (sets running statistics). */
  warmup?: HostInput[][];
  tol?: Tolerance;
}

/**
 * Initial parameters, output (and its shape), gradients of Σ w·output with respect to every input
 * that asks for one and every parameter, and the buffers afterwards, on one backend.
 */
async function snapshotCase(c: ParityCase, backend: BackendName): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const module = c.build?.(backend);
  const xs = c.inputs.map((h) => upload(h, backend));
  try {
    for (const [name, p] of module?.namedParameters() ?? []) snap.set(`initial ${name}`, await read(p));
    for (const hosts of c.warmup ?? []) {
      const warm = hosts.map((h) => upload({ ...h, grad: false }, backend));
      noGrad(() => scope(() => void module!.forward(...warm)));
      for (const w of warm) w.dispose();
    }
    if (c.mode === 'eval') module!.eval();
    const run = c.run ?? ((inputs, m) => m!.forward(...inputs) as Tensor);
    const out = scope(() => run(xs, module));
    snap.set('output shape', [...out.shape]);
    snap.set('output', await read(out));
    const differentiable = xs.some((x) => x.requiresGrad) || (module?.parameters().length ?? 0) > 0;
    if (differentiable) {
      const loss = scope(() => weightedSum(out));
      loss.backward();
      loss.dispose();
    }
    if (!xs.includes(out)) out.dispose(); // Dropout in eval mode returns its input
    for (const [i, x] of xs.entries()) if (x.grad) snap.set(`grad of input ${i}`, await read(x.grad));
    for (const [name, p] of module?.namedParameters() ?? []) {
      snap.set(`grad of ${name}`, p.grad ? await read(p.grad) : []);
    }
    for (const [name, b] of module?.namedBuffers() ?? []) snap.set(`buffer ${name}`, await read(b));
  } finally {
    for (const x of xs) {
      x.zeroGrad();
      x.dispose();
    }
    module?.zeroGrad();
    module?.dispose();
  }
  return snap;
}

/** Every gradient the case asks for is present and not identically zero on the CPU. */
function expectMeaningfulGradients(c: ParityCase, cpu: Snapshot): void {
  c.inputs.forEach((h, i) => {
    if (!h.grad) return;
    const g = cpu.get(`grad of input ${i}`);
    expect(g, `gradient of input ${i}`).toBeDefined();
    expect(
      g!.some((v) => v !== 0),
      `gradient of input ${i} is all zeros`,
    ).toBe(true);
  });
  for (const [key, g] of cpu) {
    if (key.startsWith('grad of ') && !key.startsWith('grad of input')) {
      expect(
        g.some((v) => v !== 0),
        `${key} is all zeros`,
      ).toBe(true);
    }
  }
}

async function checkParity(c: ParityCase): Promise<void> {
  const cpu = await snapshotCase(c, 'cpu');
  const onGpu = await withoutGpuLeaks(() => snapshotCase(c, 'webgpu'));
  expectMeaningfulGradients(c, cpu);
  await expectSameSnapshots(onGpu, cpu, c.tol ?? F32);
}

const layer = (
  name: string,
  build: (backend: BackendName) => AnyModule,
  inputs: HostInput[],
  extra: Partial<ParityCase> = {},
): ParityCase => ({ name, build, inputs, ...extra });

const ACTIVATION_NAMES = [
  'relu',
  'leakyRelu',
  'elu',
  'gelu',
  'geluTanh',
  'silu',
  'sigmoid',
  'tanh',
  'softplus',
  'softmax',
  'logSoftmax',
] as const;

const LAYER_CASES: ParityCase[] = [
  layer('Dense', (backend) => new Dense(5, 4, { seed: 1, backend }), [floats([3, 5], 1)]),
  layer(
    'Dense 300 → 130, batch 33 (ragged matmul tiles)',
    (backend) => new Dense(300, 130, { seed: 0, backend }),
    [floats([33, 300], 0)],
  ),
  layer(
    'Dense on a transposed view',
    (backend) => new Dense(5, 4, { seed: 1, backend }),
    [floats([5, 3], 1)],
    {
      run: ([x], m) => m!.forward(transpose(x)) as Tensor,
    },
  ),
  layer('Dense without bias, rank-3 input', (backend) => new Dense(5, 4, { seed: 2, bias: false, backend }), [
    floats([2, 3, 5], 2),
  ]),
  ...ACTIVATION_NAMES.map((activation) =>
    layer(`Dense + ${activation}`, (backend) => new Dense(6, 5, { seed: 3, activation, backend }), [
      floats([4, 6], 3, { scale: 2 }),
    ]),
  ),
  layer(
    'Sequential (Dense, LeakyReLU, LayerNorm, Dense, Tanh)',
    (backend) =>
      new Sequential(
        new Dense(6, 8, { seed: 4, backend }),
        new LeakyReLU(0.2),
        new LayerNorm(8, { backend }),
        new Dense(8, 3, { seed: 5, backend }),
        new Tanh(),
      ),
    [floats([4, 6], 4)],
  ),
  layer(
    'activation modules in a Sequential',
    () =>
      new Sequential(
        new ReLU(),
        new ELU(0.5),
        new GELU('tanh'),
        new SiLU(),
        new Softplus(),
        new Sigmoid(),
        new GELU(),
        new Softmax(1),
        new LogSoftmax(0),
      ),
    [floats([3, 7], 5, { scale: 3 })],
  ),
  layer('Dropout(0.3), training: same seed ⇒ same mask', () => new Dropout(0.3, { seed: 7 }), [
    floats([8, 16], 6),
  ]),
  layer('Dropout(0.3), eval: identity', () => new Dropout(0.3, { seed: 7 }), [floats([8, 16], 6)], {
    mode: 'eval',
  }),
  layer('BatchNorm1d [N, C], training', (backend) => new BatchNorm1d(5, { backend }), [
    floats([6, 5], 8, { scale: 2, offset: 0.5 }),
  ]),
  layer('BatchNorm1d [N, C, L], training', (backend) => new BatchNorm1d(3, { momentum: 0.3, backend }), [
    floats([4, 3, 5], 9, { scale: 2, offset: -0.5 }),
  ]),
  layer(
    'BatchNorm1d, eval after two training forwards',
    (backend) => new BatchNorm1d(5, { backend }),
    [floats([6, 5], 10)],
    {
      mode: 'eval',
      warmup: [
        [floats([6, 5], 11, { scale: 3, offset: 1 })],
        [floats([6, 5], 12, { scale: 0.5, offset: -1 })],
      ],
    },
  ),
  layer('BatchNorm2d, training', (backend) => new BatchNorm2d(3, { backend }), [
    floats([2, 3, 4, 5], 13, { scale: 2, offset: 0.3 }),
  ]),
  layer(
    'BatchNorm2d, eval after a training forward',
    (backend) => new BatchNorm2d(3, { eps: 1e-3, backend }),
    [floats([2, 3, 4, 5], 14)],
    { mode: 'eval', warmup: [[floats([2, 3, 4, 5], 15, { scale: 2, offset: 1 })]] },
  ),
  layer(
    'BatchNorm1d without running statistics, eval (batch statistics)',
    (backend) => new BatchNorm1d(4, { trackRunningStats: false, backend }),
    [floats([5, 4], 7, { scale: 2, offset: 1 })],
    { mode: 'eval' },
  ),
  layer('BatchNorm2d without affine, training', (backend) => new BatchNorm2d(2, { affine: false, backend }), [
    floats([3, 2, 3, 3], 16),
  ]),
  layer('LayerNorm over [4, 5]', (backend) => new LayerNorm([4, 5], { backend }), [
    floats([2, 3, 4, 5], 17, { scale: 2, offset: 0.5 }),
  ]),
  layer('LayerNorm without bias', (backend) => new LayerNorm(6, { bias: false, eps: 1e-3, backend }), [
    floats([5, 6], 18),
  ]),
  layer('Conv2d 3×3, padding 1', (backend) => new Conv2d(2, 4, 3, { padding: 1, seed: 20, backend }), [
    floats([2, 2, 6, 5], 20),
  ]),
  layer('Conv2d 8 → 16, 3×3 on 16×16', (backend) => new Conv2d(8, 16, 3, { padding: 1, seed: 19, backend }), [
    floats([4, 8, 16, 16], 19),
  ]),
  layer(
    'Conv2d on a permuted view (NHWC input)',
    (backend) => new Conv2d(3, 4, 3, { stride: 2, padding: 1, seed: 18, backend }),
    [floats([2, 7, 6, 3], 18)],
    { run: ([x], m) => m!.forward(permute(x, [0, 3, 1, 2])) as Tensor },
  ),
  layer(
    'Conv2d stride 2, padding 1, dilation 2',
    (backend) => new Conv2d(3, 4, 3, { stride: 2, padding: 1, dilation: 2, seed: 21, backend }),
    [floats([2, 3, 9, 8], 21)],
  ),
  layer(
    'Conv2d groups 2, kernel [3, 2], stride [2, 1], padding [1, 0]',
    (backend) => new Conv2d(4, 6, [3, 2], { groups: 2, stride: [2, 1], padding: [1, 0], seed: 22, backend }),
    [floats([2, 4, 7, 6], 22)],
  ),
  layer(
    'Conv2d depthwise (groups = C), no bias',
    (backend) => new Conv2d(3, 3, 2, { groups: 3, bias: false, seed: 23, backend }),
    [floats([1, 3, 5, 5], 23)],
  ),
  layer(
    'ConvTranspose2d 4×4, stride 2, padding 1 (DCGAN)',
    (backend) => new ConvTranspose2d(3, 2, 4, { stride: 2, padding: 1, seed: 24, backend }),
    [floats([2, 3, 4, 4], 24)],
  ),
  layer(
    'ConvTranspose2d stride 3, padding 1, output padding 2',
    (backend) => new ConvTranspose2d(2, 3, 3, { stride: 3, padding: 1, outputPadding: 2, seed: 25, backend }),
    [floats([2, 2, 3, 4], 25)],
  ),
  layer(
    'ConvTranspose2d groups 2, dilation 2, kernel [3, 2], stride [2, 1], output padding [1, 0]',
    (backend) =>
      new ConvTranspose2d(4, 2, [3, 2], {
        groups: 2,
        dilation: 2,
        stride: [2, 1],
        outputPadding: [1, 0],
        seed: 26,
        backend,
      }),
    [floats([1, 4, 3, 3], 26)],
  ),
  layer(
    'ConvTranspose2d padding beyond the kernel (cropped), no bias',
    (backend) => new ConvTranspose2d(2, 2, 2, { stride: 2, padding: 2, bias: false, seed: 27, backend }),
    [floats([1, 2, 5, 4], 27)],
  ),
  layer('MaxPool2d 2', () => new MaxPool2d(2), [floats([2, 3, 6, 5], 30)]),
  layer('MaxPool2d 2 with ties in the windows (shared gradients)', () => new MaxPool2d(2, { stride: 1 }), [
    quantised([2, 2, 5, 5], 29),
  ]),
  layer(
    'MaxPool2d 3, stride 2, padding 1 (−∞ padding, overlapping windows)',
    () => new MaxPool2d(3, { stride: 2, padding: 1 }),
    [floats([2, 2, 7, 6], 31)],
  ),
  layer('MaxPool2d [2, 3], dilation 2', () => new MaxPool2d([2, 3], { stride: 1, dilation: 2 }), [
    floats([1, 2, 6, 7], 32),
  ]),
  layer('AvgPool2d 2', () => new AvgPool2d(2), [floats([2, 3, 6, 5], 33)]),
  layer(
    'AvgPool2d 3, stride 2, padding 1, countIncludePad false',
    () => new AvgPool2d(3, { stride: 2, padding: 1, countIncludePad: false }),
    [floats([2, 2, 7, 6], 34)],
  ),
  layer('AvgPool2d 3, stride 2, padding 1', () => new AvgPool2d(3, { stride: 2, padding: 1 }), [
    floats([1, 2, 5, 5], 35),
  ]),
  layer('Flatten', () => new Flatten(), [floats([2, 3, 4, 5], 36)]),
  layer('Flatten(1, 2)', () => new Flatten(1, 2), [floats([2, 3, 4, 5], 37)]),
  layer('Unflatten(1, [2, −1, 3])', () => new Unflatten(1, [2, -1, 3]), [floats([2, 12, 2], 38)]),
  layer('Embedding', (backend) => new Embedding(7, 4, { seed: 40, backend }), [
    ints([2, 3], [1, 6, 0, 3, 3, 5]),
  ]),
  layer(
    'Embedding, 240 ids over 5 rows (gradient accumulation into repeated rows)',
    (backend) => new Embedding(5, 3, { seed: 39, backend }),
    [
      ints(
        [4, 60],
        Array.from({ length: 240 }, (_, i) => (i * i + 3 * i) % 5),
      ),
    ],
  ),
  layer('Embedding with paddingIdx', (backend) => new Embedding(6, 3, { seed: 41, paddingIdx: 2, backend }), [
    ints([5], [2, 0, 2, 5, 1]),
  ]),
  layer(
    'DCGAN-like stack (Dense, BatchNorm1d, Unflatten, ConvTranspose2d, BatchNorm2d, Conv2d, MaxPool2d, Flatten)',
    (backend) =>
      new Sequential(
        new Dense(4, 2 * 3 * 3, { seed: 42, backend }),
        new BatchNorm1d(18, { backend }),
        new ReLU(),
        new Unflatten(1, [2, 3, 3]),
        new ConvTranspose2d(2, 3, 4, { stride: 2, padding: 1, seed: 43, backend }),
        new BatchNorm2d(3, { backend }),
        new LeakyReLU(0.2),
        new Conv2d(3, 2, 3, { padding: 1, seed: 44, backend }),
        new MaxPool2d(2),
        new Flatten(),
      ),
    [floats([3, 4], 42)],
  ),
];

describe.skipIf(!gpu.backend)(`nn layers: WebGPU equals CPU, forward and gradients${skipNote(gpu)}`, () => {
  test.each(LAYER_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await checkParity(c);
  });

  test('Dropout drops about p of the elements, by the same mask on both backends', async () => {
    const c = LAYER_CASES.find((k) => k.name.startsWith('Dropout(0.3), training'))!;
    const cpu = await snapshotCase(c, 'cpu');
    const onGpu = await snapshotCase(c, 'webgpu');
    const zeros = (s: Snapshot) => s.get('output')!.flatMap((v, i) => (v === 0 ? [i] : []));
    expect(zeros(onGpu)).toEqual(zeros(cpu));
    expect(zeros(cpu).length).toBeGreaterThan(0.15 * 128);
    expect(zeros(cpu).length).toBeLessThan(0.45 * 128);
  });

  test('Dropout in eval mode returns its input on WebGPU', async () => {
    const c = LAYER_CASES.find((k) => k.name.startsWith('Dropout(0.3), eval'))!;
    const onGpu = await snapshotCase(c, 'webgpu');
    await expectAllClose(onGpu.get('output')!, c.inputs[0].data, { atol: 0, rtol: 0 });
  });

  test('BatchNorm running statistics move on WebGPU as on the CPU after a training forward', async () => {
    const c = LAYER_CASES.find((k) => k.name === 'BatchNorm2d, training')!;
    const onGpu = await snapshotCase(c, 'webgpu');
    // Started at mean 0, variance 1; one step of momentum 0.1 towards mean ≈ 0.3.
    expect(onGpu.get('buffer runningMean')!.some((v) => Math.abs(v) > 1e-3)).toBe(true);
    expect(onGpu.get('buffer runningVar')!.some((v) => Math.abs(v - 1) > 1e-3)).toBe(true);
  });

  test('a CPU-built model moved with Module.to("webgpu") computes what the CPU model computes', async () => {
    const build = () =>
      new Sequential(
        new Dense(5, 6, { seed: 50 }),
        new BatchNorm1d(6),
        new ReLU(),
        new Dense(6, 2, { seed: 51 }),
      );
    const input = floats([4, 5], 50);
    const warm = [[floats([4, 5], 51, { scale: 2, offset: 1 })]];
    const cpu = await snapshotCase(
      layer('moved', () => build(), [input], { warmup: warm }),
      'cpu',
    );
    const moved = await withoutGpuLeaks(async () => {
      const m = build();
      // Running statistics travel too: set them on the CPU first.
      const x = upload({ ...warm[0][0], grad: false }, 'cpu');
      noGrad(() => scope(() => void m.forward(x)));
      x.dispose();
      await m.to('webgpu');
      for (const t of [...m.parameters(), ...m.buffers()]) expect(t.backend.name).toBe('webgpu');
      return snapshotCase(
        layer('moved', () => m, [input]),
        'webgpu',
      );
    });
    // The CPU snapshot's initial parameters precede its warm-up; compare everything else.
    for (const key of [...cpu.keys()].filter((k) => k.startsWith('initial'))) {
      cpu.delete(key);
      moved.delete(key);
    }
    await expectSameSnapshots(moved, cpu, F32);
  });
});

/** A loss case: `fn` of the uploaded inputs. */
const loss = (name: string, inputs: HostInput[], run: (xs: Tensor[]) => Tensor): ParityCase => ({
  name,
  inputs,
  run,
});

const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];

/** Logits of BCE, including the saturated ±100 where naive formulas overflow. */
const saturatedLogits = (): HostInput => {
  const h = floats([4, 5], 60, { scale: 6 });
  h.data.set([100, -100, 30, -30], 0);
  return h;
};

const LOSS_CASES: ParityCase[] = [
  ...REDUCTIONS.flatMap((reduction) => [
    loss(`mseLoss, ${reduction}`, [floats([4, 5], 61), floats([4, 5], 62)], ([x, y]) =>
      mseLoss(x, y, { reduction }),
    ),
    loss(`l1Loss, ${reduction}`, [floats([4, 5], 63), floats([4, 5], 64)], ([x, y]) =>
      l1Loss(x, y, { reduction }),
    ),
    loss(
      `binaryCrossEntropy, ${reduction}`,
      [floats([4, 5], 65, { scale: 0.45, offset: 0.5 }), floats([4, 5], 66, { scale: 0.5, offset: 0.5 })],
      ([p, y]) => binaryCrossEntropy(p, y, { reduction }),
    ),
    loss(
      `bceWithLogits (logits up to ±100), ${reduction}`,
      [saturatedLogits(), floats([4, 5], 67, { scale: 0.5, offset: 0.5 })],
      ([x, y]) => bceWithLogits(x, y, { reduction }),
    ),
    loss(
      `nllLoss of logSoftmax, ${reduction}`,
      [floats([4, 5], 68, { scale: 3 }), ints([4], [0, 4, 2, 2])],
      ([x, t]) => nllLoss(logSoftmax(x, 1), t, { reduction }),
    ),
    loss(
      `crossEntropy with class indices, ${reduction}`,
      [floats([4, 5], 69, { scale: 3 }), ints([4], [1, 0, 4, 3])],
      ([x, t]) => crossEntropy(x, t, { reduction }),
    ),
    loss(
      `crossEntropy with probabilities and label smoothing 0.1, ${reduction}`,
      [floats([4, 5], 70, { scale: 3 }), probabilities(4, 5, 71)],
      ([x, q]) => crossEntropy(x, q, { reduction, labelSmoothing: 0.1 }),
    ),
  ]),
  loss(
    'binaryCrossEntropy with weight, and probabilities 0 and 1 (clamped logs; forward only)',
    [values32([2, 3], [0, 1, 0.5, 1, 0, 0.25], false), values32([2, 3], [1, 0, 1, 1, 0, 0], false)],
    ([p, y]) =>
      binaryCrossEntropy(p, y, {
        weight: tensor([0.5, 2, 1], { backend: p.backend.name }),
        reduction: 'none',
      }),
  ),
  loss(
    'bceWithLogits with weight and posWeight',
    [
      saturatedLogits(),
      floats([4, 5], 72, { scale: 0.5, offset: 0.5 }),
      floats([5], 73, { offset: 2, grad: false }),
    ],
    ([x, y, pw]) =>
      bceWithLogits(x, y, {
        posWeight: pw,
        weight: tensor([[2], [1], [0.5], [1]], { backend: x.backend.name }),
      }),
  ),
  loss('nllLoss, unbatched [C]', [floats([6], 74, { scale: 2 }), ints([], [4])], ([x, t]) =>
    nllLoss(logSoftmax(x, 0), t),
  ),
  loss(
    'crossEntropy over [N, C, H, W] with indices [N, H, W], label smoothing 0.2',
    [floats([2, 3, 2, 2], 75, { scale: 3 }), ints([2, 2, 2], [0, 1, 2, 0, 2, 2, 1, 0])],
    ([x, t]) => crossEntropy(x, t, { labelSmoothing: 0.2 }),
  ),
  ...(['sum', 'batchmean', 'mean', 'none'] as const).flatMap((reduction) => [
    loss(
      `gaussianKl against N(0, I), ${reduction}`,
      [floats([4, 3], 76), floats([4, 3], 77, { scale: 1.5 })],
      ([mu, logVar]) => gaussianKl(mu, logVar, { reduction }),
    ),
    loss(
      `gaussianKl between two diagonal Gaussians, ${reduction}`,
      [floats([4, 3], 78), floats([4, 3], 79), floats([1, 3], 80), floats([1, 3], 81)],
      ([mu, logVar, mu2, logVar2]) =>
        gaussianKl(mu, logVar, { reduction, prior: { mu: mu2, logVar: logVar2 } }),
    ),
  ]),
];

describe.skipIf(!gpu.backend)(`nn losses: WebGPU equals CPU, value and gradients${skipNote(gpu)}`, () => {
  test.each(LOSS_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    await checkParity(c);
  });
});

/** Parameters, and the gradients of each of three steps, as host data. */
const OPTIM_PARAMS = [floats([3, 4], 90), floats([5], 91, { offset: 0.5 })];
const optimGrads = (step: number) => [floats([3, 4], 100 + step), floats([5], 110 + step, { scale: 2 })];

interface OptimizerCase {
  name: string;
  make: (params: Parameter[]) => Optimizer<HyperParams>;
}

/** Runs three steps with fixed gradients; returns the parameters after each step and the final state. */
async function snapshotOptimizer(c: OptimizerCase, backend: BackendName): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const params = OPTIM_PARAMS.map((h) => scope(() => new Parameter(upload({ ...h, grad: false }, backend))));
  try {
    const opt = c.make(params);
    for (let step = 1; step <= 3; step++) {
      const grads = optimGrads(step);
      params.forEach((p, i) => {
        p.zeroGrad();
        p.grad = upload({ ...grads[i], grad: false }, backend);
      });
      opt.step();
      for (const [i, p] of params.entries()) snap.set(`param ${i} after step ${step}`, await read(p));
    }
    for (const [name, t] of Object.entries(opt.stateDict().tensors)) snap.set(name, await read(t));
    opt.dispose(); // its state tensors and the joined buffers its parameters are slices of
  } finally {
    for (const p of params) {
      p.zeroGrad();
      p.dispose();
    }
  }
  return snap;
}

const adamLike = (make: typeof Adam, options: Partial<AdamOptions>) => (params: Parameter[]) =>
  new make(params, options) as unknown as Optimizer<HyperParams>;

const OPTIMIZER_CASES: OptimizerCase[] = [
  { name: 'SGD', make: (p) => new SGD(p, { lr: 0.1 }) as unknown as Optimizer<HyperParams> },
  {
    name: 'SGD with momentum, dampening and weight decay',
    make: (p) =>
      new SGD(p, {
        lr: 0.1,
        momentum: 0.9,
        dampening: 0.2,
        weightDecay: 0.05,
      }) as unknown as Optimizer<HyperParams>,
  },
  {
    name: 'SGD Nesterov',
    make: (p) => new SGD(p, { lr: 0.05, momentum: 0.8, nesterov: true }) as unknown as Optimizer<HyperParams>,
  },
  { name: 'Adam', make: adamLike(Adam, { lr: 0.01 }) },
  {
    name: 'Adam AMSGrad with L2 weight decay',
    make: adamLike(Adam, { lr: 0.01, amsgrad: true, weightDecay: 0.1 }),
  },
  {
    name: 'Adam β₁ 0.5, β₂ 0.9, ε 1e-3',
    make: adamLike(Adam, { lr: 2e-4, beta1: 0.5, beta2: 0.9, eps: 1e-3 }),
  },
  { name: 'AdamW (decoupled decay 0.1)', make: adamLike(AdamW, { lr: 0.01, weightDecay: 0.1 }) },
  { name: 'AdamW AMSGrad', make: adamLike(AdamW, { lr: 0.01, amsgrad: true }) },
  { name: 'RMSprop', make: (p) => new RMSprop(p, { lr: 0.01 }) as unknown as Optimizer<HyperParams> },
  {
    name: 'RMSprop centred with momentum and weight decay',
    make: (p) =>
      new RMSprop(p, {
        lr: 0.01,
        centered: true,
        momentum: 0.9,
        weightDecay: 0.1,
      }) as unknown as Optimizer<HyperParams>,
  },
  { name: 'Adagrad', make: (p) => new Adagrad(p, { lr: 0.1 }) as unknown as Optimizer<HyperParams> },
  {
    name: 'Adagrad with lr decay, initial accumulator and weight decay',
    make: (p) =>
      new Adagrad(p, {
        lr: 0.1,
        lrDecay: 0.5,
        initialAccumulatorValue: 0.3,
        weightDecay: 0.1,
      }) as unknown as Optimizer<HyperParams>,
  },
  {
    name: 'Adam with two parameter groups',
    make: (p) => {
      const groups: ParamGroupSpec<AdamOptions>[] = [
        { params: [p[0]], lr: 0.05 },
        { params: [p[1]], beta1: 0.5 },
      ];
      return new Adam(groups, { lr: 0.01 }) as unknown as Optimizer<HyperParams>;
    },
  },
];

describe.skipIf(!gpu.backend)(
  `nn optimizers: three WebGPU steps equal three CPU steps${skipNote(gpu)}`,
  () => {
    test.each(OPTIMIZER_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const cpu = await snapshotOptimizer(c, 'cpu');
      const onGpu = await withoutGpuLeaks(() => snapshotOptimizer(c, 'webgpu'));
      // The parameters moved.
      const start = [...OPTIM_PARAMS[0].data];
      expect(cpu.get('param 0 after step 3')!.some((v, i) => Math.abs(v - start[i]) > 1e-5)).toBe(true);
      await expectSameSnapshots(onGpu, cpu, { atol: 1e-5, rtol: 1e-4 });
    });

    test('an Adam step over 14 parameters is 2 launches on lavapipe once they share a buffer: gradients joined, one update', async () => {
      const backend = gpu.backend as WebGPUBackend;
      const shapes = [784, 256, 128, 20, 20, 128, 256, 784].flatMap((n, i, all) =>
        i + 1 < all.length ? [[all[i + 1], n], [all[i + 1]]] : [],
      );
      await withoutGpuLeaks(async () => {
        const params = shapes.map((s, i) =>
          scope(() => new Parameter(randn(s, { backend: 'webgpu', seed: i }))),
        );
        const opt = new Adam(params, { lr: 1e-3 });
        const launchesOfStep = () => {
          for (const p of params) {
            p.zeroGrad();
            p.grad = scope(() => mul(randn(p.shape, { backend: 'webgpu', seed: 99 }), 0.1));
          }
          backend.flush(); // records the gradients' own (deferred) launches before counting
          const before = backend.stats().dispatches;
          opt.step();
          return backend.stats().dispatches - before;
        };
        // Gather launches bind at most 16 inputs (15 on lavapipe, which binds 16 buffers).
        const gathers = Math.ceil(shapes.length / Math.min(backend.maxStorageBuffers - 1, 16));
        launchesOfStep(); // joins the zero moments and the parameters (copies) once
        expect(launchesOfStep()).toBe(gathers + 1);
        expect(launchesOfStep()).toBe(gathers + 1);
        opt.dispose();
        // A bucket of one (a parameter alone in its group, or over the bucket size) copies nothing.
        const alone = new Adam([params[0]], { lr: 1e-3 });
        for (let i = 0; i < 2; i++) {
          params[0].zeroGrad();
          params[0].grad = scope(() => mul(randn(params[0].shape, { backend: 'webgpu', seed: i }), 0.1));
          backend.flush();
          const before = backend.stats().dispatches;
          alone.step();
          expect(backend.stats().dispatches - before).toBe(1);
        }
        alone.dispose();
        for (const p of params) {
          p.zeroGrad();
          p.dispose();
        }
      });
    });
  },
);

interface ClipCase {
  name: string;
  clip: (params: Parameter[]) => Tensor | undefined;
}

/** Gradients (and the returned total norm) after clipping, on one backend. */
async function snapshotClip(c: ClipCase, backend: BackendName): Promise<Snapshot> {
  const snap: Snapshot = new Map();
  const params = OPTIM_PARAMS.map((h) => scope(() => new Parameter(upload({ ...h, grad: false }, backend))));
  try {
    const grads = optimGrads(1);
    params.forEach((p, i) => {
      p.grad = upload({ ...grads[i], grad: false }, backend);
    });
    const total = c.clip(params);
    if (total) {
      snap.set('total norm', await read(total));
      total.dispose();
    }
    for (const [i, p] of params.entries()) snap.set(`grad ${i}`, await read(p.grad!));
  } finally {
    for (const p of params) {
      p.zeroGrad();
      p.dispose();
    }
  }
  return snap;
}

const CLIP_CASES: ClipCase[] = [
  { name: 'clipGradNorm 2-norm, clipping (maxNorm 1)', clip: (p) => clipGradNorm(p, 1) },
  { name: 'clipGradNorm 2-norm, not clipping (maxNorm 100)', clip: (p) => clipGradNorm(p, 100) },
  { name: 'clipGradNorm ∞-norm (maxNorm 0.5)', clip: (p) => clipGradNorm(p, 0.5, Number.POSITIVE_INFINITY) },
  { name: 'clipGradNorm 1.5-norm (maxNorm 1)', clip: (p) => clipGradNorm(p, 1, 1.5) },
  {
    name: 'clipGradValue 0.3',
    clip: (p) => {
      clipGradValue(p, 0.3);
      return undefined;
    },
  },
];

describe.skipIf(!gpu.backend)(`nn gradient clipping: WebGPU equals CPU${skipNote(gpu)}`, () => {
  test.each(CLIP_CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const cpu = await snapshotClip(c, 'cpu');
    const onGpu = await withoutGpuLeaks(() => snapshotClip(c, 'webgpu'));
    await expectSameSnapshots(onGpu, cpu, { atol: 1e-5, rtol: 1e-4 });
  });
});
