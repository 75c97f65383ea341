/**
 * The IWAE bound in bounded memory (issue #18, item 8): `fluxion eval --iwae-k 5000` kept every
 * sample's intermediates alive until the end of a batch (~3 GB on WebGPU, then a segfault). The
 * bound is now evaluated in passes of at most `rowsPerPass` decoder rows, each freed before the
 * next, combined by a streaming log-sum-exp. Checked here: every way of cutting the work into
 * passes gives the unchunked value (the original one-scope loop, kept below as the reference), and
 * the peak of live buffers and bytes while the bound runs does not grow with k, on the CPU and on
 * WebGPU.
 */
import { noGrad } from '@fluxion/autograd';
import { createModel, type Vae } from '@fluxion/models';
import {
  add,
  type BackendName,
  concat,
  exp,
  getBackend,
  logSumExp,
  mean,
  mul,
  neg,
  rand,
  randint,
  randn,
  reshape,
  scope,
  setBackend,
  square,
  sub,
  sum,
  type Tensor,
} from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';

const gpu = await webgpuEnv();
const LOG_2PI = Math.log(2 * Math.PI);

/** The bound as it was computed before passes: one scope holding all k samples' intermediates. */
async function unchunkedIwae(vae: Vae, x: Tensor, k: number, labels?: Tensor): Promise<number> {
  const value = noGrad(() =>
    scope(() => {
      const q = vae.encode(x, labels);
      const n = x.shape[0];
      const logWeights: Tensor[] = [];
      for (let i = 0; i < k; i++) {
        const eps = randn(q.mu.shape, { generator: vae.noise });
        const z = add(q.mu, mul(exp(mul(q.logVar, 0.5)), eps));
        const logPz = mul(sum(add(square(z), LOG_2PI), 1), -0.5);
        const logQz = mul(sum(add(add(square(eps), q.logVar), LOG_2PI), 1), -0.5);
        const logPx = vae.logLikelihood(x, vae.decodeRaw(z, labels));
        logWeights.push(reshape(sub(add(logPx, logPz), logQz), [n, 1]));
      }
      return neg(mean(sub(logSumExp(concat(logWeights, 1), 1), Math.log(k))));
    }),
  );
  const v = await value.item();
  value.dispose();
  return v;
}

/** Runs `fn` from the noise offset `offset`, and checks it consumed `used` counters. */
async function fromOffset(
  vae: Vae,
  offset: number,
  used: number,
  fn: () => Promise<number>,
): Promise<number> {
  vae.noise.offset = offset;
  const v = await fn();
  expect(vae.noise.offset).toBe(offset + used);
  return v;
}

function disposeModel(vae: Vae): void {
  for (const m of Object.values(vae.modules())) m.dispose();
}

describe('IWAE in passes equals the unchunked bound', () => {
  const cases = [
    ['MLP VAE', 'vae', { latent: 6, height: 6, width: 5, classes: 10 }],
    ['conditional VAE', 'cvae', { latent: 4, height: 4, width: 4, classes: 3 }],
  ] as const;
  test.each(cases)('%s: every rowsPerPass gives the same value', async (_name, kind, config) => {
    const vae = createModel(kind, { seed: 5, ...config }) as Vae;
    const n = 7;
    const k = 9;
    const pixels = config.height * config.width;
    const x = rand([n, pixels], { seed: 1 });
    const labels = kind === 'cvae' ? randint(0, config.classes, [n], { seed: 2 }) : undefined;
    const used = k * n * config.latent;
    const start = vae.noise.offset;
    const reference = await fromOffset(vae, start, used, () => unchunkedIwae(vae, x, k, labels));
    expect(Number.isFinite(reference)).toBe(true);
    // One pass of all 63 rows; 3 samples or 1 sample of the whole batch per pass; blocks of 4 and
    // 3 images, or of 1 image, one sample at a time.
    for (const rowsPerPass of [1000, 63, 21, 7, 4, 1]) {
      const chunked = await fromOffset(vae, start, used, () => vae.iwaeBound(x, k, labels, { rowsPerPass }));
      expect(chunked, `rowsPerPass ${rowsPerPass}`).toBeCloseTo(reference, 4);
    }
    // k = 1 is one reparameterised sample: −ELBO's Monte Carlo estimate from the same noise.
    const k1 = await fromOffset(vae, start, n * config.latent, () =>
      vae.iwaeBound(x, 1, labels, { rowsPerPass: 2 }),
    );
    const k1Reference = await fromOffset(vae, start, n * config.latent, () =>
      unchunkedIwae(vae, x, 1, labels),
    );
    expect(k1).toBeCloseTo(k1Reference, 4);
    x.dispose();
    labels?.dispose();
    disposeModel(vae);
  });

  test('k and rowsPerPass must be positive integers', async () => {
    const vae = createModel('vae', { seed: 1, latent: 2, height: 2, width: 2 }) as Vae;
    const x = rand([2, 4], { seed: 1 });
    await expect(vae.iwaeBound(x, 0)).rejects.toThrow(/iwaeBound: k must be a positive integer, got 0/);
    await expect(vae.iwaeBound(x, 2.5)).rejects.toThrow(/got 2.5/);
    await expect(vae.iwaeBound(x, 2, undefined, { rowsPerPass: 0 })).rejects.toThrow(/rowsPerPass must be/);
    x.dispose();
    disposeModel(vae);
  });
});

/**
 * The peak of the backend's live buffers and bytes (what `memoryStats()` counts) while `fn` runs,
 * above what was live before: every allocation is followed by a look at the counters.
 */
async function peakDuring(
  backend: BackendName,
  fn: () => Promise<unknown>,
): Promise<{ buffers: number; bytes: number }> {
  const b = getBackend(backend);
  const before = b.memory();
  const peak = { buffers: 0, bytes: 0 };
  const alloc = b.alloc;
  b.alloc = function (this: typeof b, ...args: Parameters<typeof alloc>) {
    const buffer = alloc.apply(this, args);
    const now = b.memory();
    peak.buffers = Math.max(peak.buffers, now.buffers - before.buffers);
    peak.bytes = Math.max(peak.bytes, now.bytes - before.bytes);
    return buffer;
  };
  try {
    await fn();
  } finally {
    if (Object.hasOwn(b, 'alloc') && Object.getPrototypeOf(b).alloc === alloc)
      delete (b as { alloc?: unknown }).alloc;
    else b.alloc = alloc;
  }
  return peak;
}

/**
 * Peaks of the bound for each k on `backend` (MNIST-sized MLP VAE, 20 images, 5 samples per pass),
 * after a first run that warms up what is created once (WebGPU's cached constants and fusion state
 * make the very first run's peak differ from every later one's).
 */
async function peaksForK(backend: BackendName, ks: readonly number[]) {
  setBackend(backend);
  try {
    const vae = createModel('vae', { seed: 3, latent: 16 }) as Vae;
    const x = rand([20, 784], { seed: 4 });
    await vae.iwaeBound(x, 2, undefined, { rowsPerPass: 100 });
    const peaks = [];
    for (const k of ks)
      peaks.push(await peakDuring(backend, () => vae.iwaeBound(x, k, undefined, { rowsPerPass: 100 })));
    x.dispose();
    disposeModel(vae);
    return peaks;
  } finally {
    setBackend('cpu');
  }
}

/** One pass of 100 rows of a 784-pixel MLP VAE holds a few MB; 64 MB bounds it with room to spare. */
const PEAK_BYTES = 64 * 2 ** 20;

describe('IWAE memory does not grow with k', () => {
  test('cpu: k = 400 peaks no higher than k = 10', async () => {
    const [small, large] = await peaksForK('cpu', [10, 400]);
    expect(large.buffers).toBeLessThanOrEqual(small.buffers);
    expect(large.bytes).toBeLessThanOrEqual(small.bytes);
    expect(large.bytes).toBeLessThan(PEAK_BYTES);
  }, 60_000);

  test.skipIf(!gpu.backend)(
    `webgpu: k = 400 peaks no higher than k = 10${skipNote(gpu)}`,
    async () => {
      const [small, large] = await peaksForK('webgpu', [10, 400]);
      expect(large.buffers).toBeLessThanOrEqual(small.buffers);
      expect(large.bytes).toBeLessThanOrEqual(small.bytes);
      expect(large.bytes).toBeLessThan(PEAK_BYTES);
    },
    120_000,
  );
});
