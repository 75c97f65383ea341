/**
 * The `ops` suite (issue 3's list): matrix products at N = 256…2048 (plain, and the backward
 * pass's Aᵀ·B and A·Bᵀ with the transposed operand read in place), elementwise add and exp on 1M
 * and 16M elements, a full sum reduction, the cost of one tiny dispatch, conv2d forward and
 * backward, and a WaveGAN critic's conv1d (kernel 25, stride 4) forward and backward. Throughput counts the arithmetic (2N³ flops for a product) or the bytes an ideal
 * kernel moves (add reads two arrays and writes one: 12 bytes per element).
 */
import type { ConvGeometry, Engine, HostLayout, MatmulLayout } from './engines/engine.js';
import type { BenchResult } from './harness.js';
import { type HostTensor, hostRandom } from './models.js';
import { type BenchCase, runCase, type SuiteContext } from './suite.js';

/** Inputs uploaded to one engine. */
interface Uploaded {
  inputs: unknown[];
}

const MB = 1 << 20;

/** Uploads host tensors to an engine. */
function upload(engine: Engine, hosts: HostTensor[], layouts: HostLayout[] = []): Uploaded {
  return { inputs: hosts.map((h, i) => engine.ops.fromArray(h.data, h.shape, layouts[i] ?? 'plain')) };
}

function release(engine: Engine, u: Uploaded): void {
  for (const h of u.inputs) engine.ops.dispose(h);
}

/**
 * A case of one op: `op` makes a fresh output from the uploaded inputs; `run` repeats it `reps`
 * times, waits for all the outputs, then disposes them.
 */
function opCase(spec: {
  name: string;
  hosts: () => Promise<HostTensor[]>;
  layouts?: HostLayout[];
  outLayout?: HostLayout;
  op: (engine: Engine, inputs: unknown[]) => unknown;
  tolerance: { rtol: number; atol: number };
  metrics: (ms: number) => Record<string, number>;
  skip?: (engine: Engine) => string | null;
  /** Reads a multi-output op's outputs together (conv2d grads); default: the output itself. */
  read?: (engine: Engine, out: unknown) => Promise<ArrayLike<number>>;
  /** The tensors of a multi-output op's result (conv2d grads); default: the result itself. */
  outputs?: (out: unknown) => unknown[];
}): BenchCase<Uploaded> {
  let hosts: Promise<HostTensor[]> | null = null;
  const disposeOut = (e: Engine, out: unknown) => {
    for (const t of spec.outputs?.(out) ?? [out]) e.ops.dispose(t);
  };
  return {
    suite: 'ops',
    name: spec.name,
    skip: spec.skip,
    tolerance: spec.tolerance,
    metrics: spec.metrics,
    timing: { minRunMs: 50 },
    async setup(engine) {
      hosts ??= spec.hosts();
      return upload(engine, await hosts, spec.layouts);
    },
    async values(engine, u) {
      const out = spec.op(engine, u.inputs);
      try {
        return spec.read ? await spec.read(engine, out) : await engine.ops.read(out, spec.outLayout);
      } finally {
        disposeOut(engine, out);
      }
    },
    async run(engine, u, reps) {
      const outs = Array.from({ length: reps }, () => spec.op(engine, u.inputs));
      await engine.ops.sync(outs.flatMap((o) => spec.outputs?.(o) ?? [o]));
      for (const o of outs) disposeOut(engine, o);
    },
    teardown: release,
  };
}

const slowSkip = (limit: string) => (engine: Engine) =>
  engine.slow ? `plain-JavaScript engine, ${limit} takes seconds per run` : null;

function matmulCase(n: number, layout: MatmulLayout): BenchCase<Uploaded> {
  const label = layout === 'nn' ? 'A·B' : layout === 'tn' ? 'Aᵀ·B' : 'A·Bᵀ';
  return opCase({
    name: `matmul ${label} ${n}`,
    hosts: async () => [
      await hostRandom([n, n], 11, { normal: true }),
      await hostRandom([n, n], 12, { normal: true }),
    ],
    op: (e, [a, b]) => e.ops.matmul(a, b, layout),
    tolerance: { rtol: 1e-3, atol: 1e-3 * Math.sqrt(n) },
    metrics: (ms) => ({ 'GFLOP/s': (2 * n ** 3) / (ms * 1e6) }),
    skip: n >= 1024 ? slowSkip(`N = ${n}`) : undefined,
  });
}

function elementwiseCase(kind: 'add' | 'exp' | 'sum', n: number): BenchCase<Uploaded> {
  const inputs = kind === 'add' ? 2 : 1;
  const bytesPerElement = kind === 'add' ? 12 : kind === 'exp' ? 8 : 4;
  return opCase({
    name: `${kind} ${n / MB}M`,
    hosts: async () =>
      Promise.all(
        Array.from({ length: inputs }, (_, i) =>
          hostRandom([n], 21 + i, kind === 'sum' ? { lo: 0, hi: 1 } : { normal: true }),
        ),
      ),
    op: (e, xs) =>
      kind === 'add' ? e.ops.add(xs[0], xs[1]) : kind === 'exp' ? e.ops.exp(xs[0]) : e.ops.sum(xs[0]),
    tolerance: kind === 'sum' ? { rtol: 1e-3, atol: 0 } : { rtol: 1e-5, atol: 1e-6 },
    metrics: (ms) => ({ 'GB/s': (bytesPerElement * n) / (ms * 1e6) }),
  });
}

/** 1000 chained adds of a one-element tensor, then one sync: the cost of a tiny dispatch. */
function dispatchCase(): BenchCase<Uploaded> {
  const chain = 1000;
  const chainOnce = (e: Engine, [x0, one]: unknown[]) => {
    let x = x0;
    for (let i = 0; i < chain; i++) {
      const next = e.ops.add(x, one);
      if (x !== x0) e.ops.dispose(x);
      x = next;
    }
    return x;
  };
  return {
    suite: 'ops',
    name: `dispatch (${chain} tiny adds)`,
    tolerance: { rtol: 0, atol: 0 },
    expected: () => [chain],
    metrics: (ms) => ({ 'µs/op': (ms * 1000) / chain }),
    async setup(e) {
      return upload(e, [
        { data: new Float32Array([0]), shape: [1] },
        { data: new Float32Array([1]), shape: [1] },
      ]);
    },
    async values(e, u) {
      const x = chainOnce(e, u.inputs);
      try {
        return await e.ops.read(x);
      } finally {
        e.ops.dispose(x);
      }
    },
    async run(e, u, reps) {
      for (let r = 0; r < reps; r++) {
        const x = chainOnce(e, u.inputs);
        await e.ops.sync([x]);
        e.ops.dispose(x);
      }
    },
    teardown: release,
  };
}

/** conv2d 3×3, stride 1, padding 1 on [16, 32, 28, 28] → [16, 64, 28, 28]: forward, or both gradients. */
function convCase(direction: 'forward' | 'backward'): BenchCase<Uploaded> {
  const [n, c, hw, o, k] = [16, 32, 28, 64, 3];
  const g: ConvGeometry = { stride: 1, padding: 1 };
  const flops = 2 * n * o * hw * hw * c * k * k * (direction === 'forward' ? 1 : 2);
  const unsupported = (e: Engine) =>
    !e.ops.conv2d || !e.ops.conv2dGrads
      ? `${e.engine} has no conv2d`
      : e.slow
        ? 'plain-JavaScript engine'
        : null;
  const hosts = async () => [
    await hostRandom([n, c, hw, hw], 31, { normal: true }),
    await hostRandom([o, c, k, k], 32, { normal: true }),
    ...(direction === 'backward' ? [await hostRandom([n, o, hw, hw], 33, { normal: true })] : []),
  ];
  const layouts: HostLayout[] = ['nchw', 'oihw', 'nchw'];
  const tolerance = { rtol: 1e-3, atol: 1e-3 * Math.sqrt(c * k * k) };
  const metrics = (ms: number) => ({ 'GFLOP/s': flops / (ms * 1e6) });
  if (direction === 'forward') {
    return opCase({
      name: 'conv2d forward',
      hosts,
      layouts,
      outLayout: 'nchw',
      op: (e, [x, w]) => e.ops.conv2d!(x, w, g),
      tolerance,
      metrics,
      skip: unsupported,
    });
  }
  return opCase({
    name: 'conv2d backward',
    hosts,
    layouts,
    op: (e, [x, w, dy]) => e.ops.conv2dGrads!(x, w, dy, g),
    read: async (e, out) => {
      const [dx, dw] = out as [unknown, unknown];
      const [a, b] = [await e.ops.read(dx, 'nchw'), await e.ops.read(dw, 'oihw')];
      const both = new Float32Array(a.length + b.length);
      both.set(a);
      both.set(b, a.length);
      return both;
    },
    outputs: (out) => out as unknown[],
    tolerance: { rtol: 1e-3, atol: 1e-3 * Math.sqrt(n * hw * hw) },
    metrics,
    skip: unsupported,
  });
}

/**
 * The default WaveGAN critic's second block (models.ts `WAVEGAN`, batch 32): conv1d kernel 25,
 * stride 4, padding 11, [32, 8, 2048] → [32, 16, 512]; forward, or both gradients (`backward`:
 * the input and weight adjoints, twice the forward's arithmetic).
 */
export const CONV1D = { n: 32, c: 8, l: 2048, o: 16, k: 25, stride: 4, padding: 11 } as const;

function conv1dCase(direction: 'forward' | 'backward'): BenchCase<Uploaded> {
  const { n, c, l, o, k, stride, padding } = CONV1D;
  const g: ConvGeometry = { stride, padding };
  const out = Math.floor((l + 2 * padding - k) / stride) + 1;
  const flops = 2 * n * o * out * c * k * (direction === 'forward' ? 1 : 2);
  const unsupported = (e: Engine) =>
    !e.ops.conv1d || !e.ops.conv1dGrads
      ? `${e.engine} has no conv1d`
      : e.slow
        ? 'plain-JavaScript engine'
        : null;
  const hosts = async () => [
    await hostRandom([n, c, l], 41, { normal: true }),
    await hostRandom([o, c, k], 42, { normal: true }),
    ...(direction === 'backward' ? [await hostRandom([n, o, out], 43, { normal: true })] : []),
  ];
  const layouts: HostLayout[] = ['ncl', 'oik', 'ncl'];
  const metrics = (ms: number) => ({ 'GFLOP/s': flops / (ms * 1e6) });
  if (direction === 'forward') {
    return opCase({
      name: 'conv1d forward',
      hosts,
      layouts,
      outLayout: 'ncl',
      op: (e, [x, w]) => e.ops.conv1d!(x, w, g),
      tolerance: { rtol: 1e-3, atol: 1e-3 * Math.sqrt(c * k) },
      metrics,
      skip: unsupported,
    });
  }
  return opCase({
    name: 'conv1d backward',
    hosts,
    layouts,
    op: (e, [x, w, dy]) => e.ops.conv1dGrads!(x, w, dy, g),
    read: async (e, res) => {
      const [dx, dw] = res as [unknown, unknown];
      const [a, b] = [await e.ops.read(dx, 'ncl'), await e.ops.read(dw, 'oik')];
      const both = new Float32Array(a.length + b.length);
      both.set(a);
      both.set(b, a.length);
      return both;
    },
    outputs: (res) => res as unknown[],
    tolerance: { rtol: 1e-3, atol: 1e-3 * Math.sqrt(n * out) },
    metrics,
    skip: unsupported,
  });
}

/** The cases of the `ops` suite (fewer with `--quick`). */
export function opsCases(quick: boolean): BenchCase<Uploaded>[] {
  const sizes = quick ? [256, 512] : [256, 512, 1024, 2048];
  const counts = quick ? [MB] : [MB, 16 * MB];
  return [
    ...sizes.flatMap((n) => (['nn', 'tn', 'nt'] as const).map((l) => matmulCase(n, l))),
    ...counts.flatMap((n) => [elementwiseCase('add', n), elementwiseCase('exp', n)]),
    ...counts.map((n) => elementwiseCase('sum', n)),
    dispatchCase(),
    convCase('forward'),
    convCase('backward'),
    conv1dCase('forward'),
    conv1dCase('backward'),
  ];
}

/** The `ops` suite: every case on every engine. */
export async function opsSuite(ctx: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const c of opsCases(ctx.options.quick)) {
    results.push(...(await runCase(c, ctx)));
  }
  return results;
}
