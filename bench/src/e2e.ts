/**
 * The `e2e` suite (issue 7): one epoch of each model on real MNIST (the 9,000-digit training
 * split of the 10,000 digits the models package ships, in its seeded order), on every
 * engine. The epoch's inputs (pixels scaled for the model, latent noise) are prepared on the host
 * before timing; the timed run uploads each batch, runs every step, waits for the device every
 * {@link QUEUED_STEPS} steps (as a loop that logs its losses now and then) and at the end. The
 * first step's losses on the first batch are checked against the reference first. `--max-steps N`
 * shortens the epoch.
 */
import { loadMnist, permutation, splitDataset } from '@fluxion/models/node';
import type { Engine } from './engines/engine.js';
import type { BenchResult } from './harness.js';
import { DCGAN, GAN, type ModelSpec, type StepInputs, stepInputs, VAE } from './models.js';
import { type BenchCase, runCase, type SuiteContext } from './suite.js';
import { LOSS_TOLERANCE, makeRunner, modelParams, skipSlowConv } from './train.js';

/**
 * Steps queued before the epoch loop waits for the device, on every engine. Without a wait an
 * epoch's work piles up: jax-js is lazy, and its pending steps hold every buffer they use (about
 * 60 MB per GAN step, past WASM's 4 GiB within the epoch); TensorFlow.js's WebGPU backend makes a
 * bind group per dispatch, and on lavapipe each leaves a 4 KB memory mapping that Dawn frees only
 * after it has seen the submission finish, which its Node binding checks only while one of its
 * promises is pending: at the kernel's 65,530-mapping limit (about step 130) Dawn segfaulted.
 */
export const QUEUED_STEPS = 8;

/** The host inputs of every step of one epoch of `spec` on MNIST's training split. */
async function epochInputs(spec: ModelSpec, maxSteps: number): Promise<StepInputs[]> {
  const { train } = splitDataset(loadMnist(), 1000);
  const order = permutation(train.count, 0, 0);
  const pixels = train.height * train.width;
  let steps = Math.floor(train.count / spec.batch);
  if (maxSteps > 0) steps = Math.min(steps, maxSteps);
  const epoch: StepInputs[] = [];
  for (let s = 0; s < steps; s++) {
    const images = new Float32Array(spec.batch * pixels);
    for (let i = 0; i < spec.batch; i++) {
      const src = order[s * spec.batch + i];
      images.set(train.images.subarray(src * pixels, (src + 1) * pixels), i * pixels);
    }
    epoch.push(await stepInputs(spec, 1000 + 3 * s, images));
  }
  return epoch;
}

function epochCase(
  spec: ModelSpec,
  maxSteps: number,
): BenchCase<{ runner: Awaited<ReturnType<typeof makeRunner>> }> {
  let prepared: Promise<[Awaited<ReturnType<typeof modelParams>>, StepInputs[]]> | null = null;
  const prepare = () => {
    prepared ??= Promise.all([modelParams(spec), epochInputs(spec, maxSteps)]);
    return prepared;
  };
  let steps = 0;
  return {
    suite: 'e2e',
    name: `${spec.name.replace(/ step$/, '')} epoch`,
    skip: (engine: Engine) =>
      engine.slow ? 'plain-JavaScript engine, minutes per epoch' : (skipSlowConv(spec)(engine) ?? null),
    tolerance: LOSS_TOLERANCE,
    timing: { warmup: 0, runs: 1 },
    metrics: (ms) => ({ 'images/s': (steps * spec.batch * 1000) / ms, steps }),
    async setup(engine) {
      const [params, epoch] = await prepare();
      steps = epoch.length;
      return { runner: await makeRunner(engine, spec, params) };
    },
    async values(_engine, { runner }) {
      const [, epoch] = await prepare();
      await runner.step(epoch[0]);
      return runner.losses();
    },
    async run(_engine, { runner }, reps) {
      const [, epoch] = await prepare();
      for (let r = 0; r < reps; r++) {
        for (let s = 0; s < epoch.length; s++) {
          await runner.step(epoch[s]);
          if ((s + 1) % QUEUED_STEPS === 0) await runner.sync();
        }
      }
      await runner.sync();
    },
    teardown: (_engine, { runner }) => runner.dispose(),
  };
}

/** The `e2e` suite: an epoch of each model on every engine. */
export async function e2eSuite(ctx: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const spec of [GAN, VAE, DCGAN]) {
    results.push(...(await runCase(epochCase(spec, ctx.options.maxSteps), ctx)));
  }
  return results;
}
