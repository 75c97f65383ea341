/**
 * The generative models on WebGPU equal the same models on the CPU (float32 tolerance): from one
 * seed and one batch of real MNIST digits, a training step of the MLP GAN, the VAE and WGAN-GP
 * (whose gradient penalty differentiates through a gradient) gives the same losses, the same
 * parameters afterwards and the same sampled images on both backends; and training the VAE on
 * WebGPU for 20 steps keeps the number of live GPU buffers flat.
 *
 * The models draw their noise from the current backend, so each run sets it (and restores the
 * CPU afterwards). Runs when a WebGPU adapter is found; with FLUXION_REQUIRE_WEBGPU=1 a missing
 * adapter fails.
 */
import {
  type Batch,
  createModel,
  type GenerativeModel,
  loadMnist,
  type ModelConfig,
  type ModelKind,
  type StepLosses,
} from '@fluxion/models/node';
import { type BackendName, memoryStats, setBackend, type Tensor, tensor } from '@fluxion/tensor';
import { describe, expect, test } from 'vitest';
import { expectAllClose } from '../../tensor/test/helpers.js';
import { skipNote, webgpuEnv } from '../../tensor/test/webgpu-env.js';

const gpu = await webgpuEnv();

const mnist = gpu.backend ? loadMnist() : null;
const PIXELS = 28 * 28;

/** Batch `index` of `size` consecutive digits (class-balanced: the dataset interleaves classes). */
function uploadBatch(size: number, index: number, backend: BackendName): Batch {
  const start = index * size;
  const images = mnist!.images.subarray(start * PIXELS, (start + size) * PIXELS);
  const labels = mnist!.labels.subarray(start, start + size);
  return {
    images: tensor(Float32Array.from(images), [size, PIXELS], { backend }),
    labels: tensor(Int32Array.from(labels), [size], { dtype: 'int32', backend }),
  };
}

function disposeBatch(b: Batch): void {
  b.images.dispose();
  b.labels.dispose();
}

/** Runs `fn` with `backend` as the current backend, restoring the CPU afterwards. */
async function onBackend<T>(backend: BackendName, fn: () => Promise<T>): Promise<T> {
  setBackend(backend);
  try {
    return await fn();
  } finally {
    setBackend('cpu');
  }
}

const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data(), Number);

function disposeModel(model: GenerativeModel): void {
  for (const m of Object.values(model.modules())) m.dispose();
  for (const opt of Object.values(model.optimizers())) opt.dispose();
}

interface StepResult {
  losses: StepLosses;
  /** Every parameter after the step, by `<module>.<name>`. */
  params: Map<string, number[]>;
  /** Images sampled after the step, in [0, 1]. */
  samples: number[];
}

/** A fresh model on `backend`, one training step on batch 0, then its parameters and 4 samples. */
async function trainStepOn(
  kind: ModelKind,
  overrides: Partial<ModelConfig>,
  backend: BackendName,
): Promise<StepResult> {
  return onBackend(backend, async () => {
    const model = createModel(kind, { seed: 3, ...overrides });
    const batch = uploadBatch(16, 0, backend);
    try {
      for (const m of Object.values(model.modules())) {
        for (const p of m.parameters()) expect(p.backend.name).toBe(backend);
      }
      const losses = await model.trainStep(batch);
      const params = new Map<string, number[]>();
      for (const [moduleName, m] of Object.entries(model.modules())) {
        for (const [name, p] of m.namedParameters()) params.set(`${moduleName}.${name}`, await read(p));
      }
      const images = model.sample(4);
      const samples = await read(images);
      images.dispose();
      return { losses, params, samples };
    } finally {
      disposeBatch(batch);
      disposeModel(model);
    }
  });
}

/**
 * Tolerances. Losses and samples at float32's. Parameters at a fifth of the learning rate: one
 * Adam step moves each parameter by about ±lr (m̂/√v̂ ≈ sign(g) on the first step), so a parameter
 * that did not move, or moved the wrong way, on one backend fails, while rounding differences in
 * near-zero gradients have room (on lavapipe the largest difference is about 5e-6).
 */
const LOSS_TOL = { atol: 1e-5, rtol: 1e-4 };
const SAMPLE_TOL = { atol: 1e-4, rtol: 1e-3 };

async function expectSameStep(onGpu: StepResult, cpu: StepResult, lr: number): Promise<void> {
  expect(Object.keys(onGpu.losses)).toEqual(Object.keys(cpu.losses));
  for (const [name, value] of Object.entries(cpu.losses)) {
    expect(Number.isFinite(value), `${name} loss is finite`).toBe(true);
    try {
      await expectAllClose([onGpu.losses[name]], [value], LOSS_TOL);
    } catch (e) {
      throw new Error(`loss ${name}: ${(e as Error).message}`);
    }
  }
  expect([...onGpu.params.keys()]).toEqual([...cpu.params.keys()]);
  for (const [name, expected] of cpu.params) {
    try {
      await expectAllClose(onGpu.params.get(name)!, expected, { atol: lr / 5, rtol: 1e-4 });
    } catch (e) {
      throw new Error(`parameter ${name}: ${(e as Error).message}`);
    }
  }
  await expectAllClose(onGpu.samples, cpu.samples, SAMPLE_TOL);
  expect(cpu.samples.every((v) => v >= 0 && v <= 1)).toBe(true);
}

const CASES: { name: string; kind: ModelKind; overrides: Partial<ModelConfig>; lr: number }[] = [
  { name: 'MLP GAN (non-saturating, the seed sizes)', kind: 'gan', overrides: {}, lr: 2e-4 },
  { name: 'VAE (Bernoulli decoder, latent 32)', kind: 'vae', overrides: {}, lr: 1e-3 },
  { name: 'WGAN-GP (gradient penalty through a gradient)', kind: 'wgan-gp', overrides: {}, lr: 1e-4 },
];

describe.skipIf(!gpu.backend)(`models: a WebGPU training step equals a CPU one${skipNote(gpu)}`, () => {
  test.each(CASES.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const cpu = await trainStepOn(c.kind, c.overrides, 'cpu');
    const onGpu = await trainStepOn(c.kind, c.overrides, 'webgpu');
    await expectSameStep(onGpu, cpu, c.lr);
  });

  test('20 VAE training steps on WebGPU keep the live GPU buffers flat', async () => {
    const buffers = () => memoryStats().backends.webgpu?.buffers ?? 0;
    const before = buffers();
    const counts: number[] = [];
    const losses: number[] = [];
    await onBackend('webgpu', async () => {
      const model = createModel('vae', { seed: 1 });
      try {
        for (let step = 0; step < 20; step++) {
          const batch = uploadBatch(32, step, 'webgpu');
          try {
            losses.push((await model.trainStep(batch)).loss);
          } finally {
            disposeBatch(batch);
          }
          counts.push(buffers());
        }
      } finally {
        disposeModel(model);
      }
    });
    // The first step creates Adam's moments, the next ones join parameters and moments into shared
    // buffers (freeing the separate ones as the pool turns over); from then on every step frees
    // what it allocates.
    expect(counts.slice(5)).toEqual(Array(15).fill(counts[5]));
    expect(Math.max(...counts)).toBe(counts[0]);
    expect(buffers()).toBe(before);
    // And it trained: −ELBO fell (its first value is about 543 nats).
    expect(losses[19]).toBeLessThan(losses[0] - 50);
  });
});
