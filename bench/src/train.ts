/**
 * The `train` suite (issue 7): one training step of the seed GAN (batch 64), the VAE (batch 128),
 * a DCGAN (batch 64), the WaveGAN's WGAN-GP step (batch 32) and the names character Transformer
 * (batch 64, reported in tokens per second too), as defined in models.ts, on every engine from the same initial weights
 * and inputs. Before timing, two steps' losses are compared with the reference engine's, so
 * forward, backward and the Adam update all agree. A step's time includes uploading its inputs
 * and waiting for the device; the losses are not read back while timing. Each engine's steps run
 * untimed for {@link TRAIN_WARMUP_MS} first.
 */
import type { Engine, StepRunner } from './engines/engine.js';
import type { BenchResult } from './harness.js';
import {
  CHARLM,
  DCGAN,
  GAN,
  type HostTensor,
  type ModelSpec,
  modelParams,
  parameterCount,
  type StepInputs,
  stepFlops,
  stepInputs,
  VAE,
  WAVEGAN,
} from './models.js';
import { type BenchCase, runCase, type SuiteContext } from './suite.js';

export { modelParams } from './models.js';

/** Builds an engine's runner for a model, or throws the engine's reason for not having one. */
export async function makeRunner(
  engine: Engine,
  spec: ModelSpec,
  params: HostTensor[][],
): Promise<StepRunner> {
  const runner = await engine.trainer(spec, params);
  if (typeof runner === 'string') throw new Error(runner);
  return runner;
}

/** Losses agree to this (float32 engines, two Adam steps from the same start). */
export const LOSS_TOLERANCE = { rtol: 2e-3, atol: 2e-4 };

/**
 * Skips engines whose convolutions make a DCGAN or WaveGAN step take minutes: the plain-JavaScript
 * ones and jax-js's WASM backend (85 s per DCGAN step on 2 loaded cores, so 7 minutes for check,
 * warm-up and a run).
 */
export const skipSlowConv = (spec: ModelSpec) => (engine: Engine) => {
  if (spec !== DCGAN && spec !== WAVEGAN) return null;
  if (engine.slow) return 'plain-JavaScript engine, seconds per step';
  if (engine.engine === 'jax-js' && engine.backend === 'wasm')
    return 'jax-js WASM convolutions: 85 s per step here';
  return null;
};

/**
 * Every engine warms up for this long before a step is timed, so that steps are timed at their
 * steady speed, once JavaScript has been optimised (see `warmupMs` in harness.ts).
 */
export const TRAIN_WARMUP_MS = 2000;

interface TrainState {
  runner: StepRunner;
  inputs: StepInputs;
}

function trainCase(spec: ModelSpec): BenchCase<TrainState> {
  let prepared: Promise<[HostTensor[][], StepInputs]> | null = null;
  const prepare = () => {
    prepared ??= Promise.all([modelParams(spec), stepInputs(spec, 7)]);
    return prepared;
  };
  const flops = stepFlops(spec);
  // The Transformer's throughput in tokens (batch × context positions) per second comes first.
  const tokens = spec.kind === 'charlm' ? spec.batch * spec.context : 0;
  return {
    suite: 'train',
    name: spec.name,
    skip: skipSlowConv(spec),
    tolerance: LOSS_TOLERANCE,
    metrics: (ms) => ({
      ...(tokens && { 'tokens/s': (tokens * 1000) / ms }),
      'steps/s': 1000 / ms,
      'GFLOP/s': flops / (ms * 1e6),
    }),
    timing: { warmupMs: TRAIN_WARMUP_MS },
    async setup(engine) {
      const [params, inputs] = await prepare();
      const runner = await makeRunner(engine, spec, params);
      const count = runner.parameterShapes().reduce((t, s) => t + s.reduce((a, b) => a * b, 1), 0);
      if (count !== parameterCount(spec)) {
        runner.dispose();
        throw new Error(`${count} parameters built, the definition has ${parameterCount(spec)}`);
      }
      return { runner, inputs };
    },
    async values(_engine, { runner, inputs }) {
      const losses: number[] = [];
      for (let i = 0; i < 2; i++) {
        await runner.step(inputs);
        losses.push(...(await runner.losses()));
      }
      return losses;
    },
    async run(_engine, { runner, inputs }, reps) {
      for (let i = 0; i < reps; i++) await runner.step(inputs);
      await runner.sync();
    },
    teardown: (_engine, { runner }) => runner.dispose(),
  };
}

/** The `train` suite: a step of each model on every engine. */
export async function trainSuite(ctx: SuiteContext): Promise<BenchResult[]> {
  const results: BenchResult[] = [];
  for (const spec of [GAN, VAE, DCGAN, WAVEGAN, CHARLM]) {
    if (!spec.name.includes(ctx.options.filter)) continue;
    ctx.log(`train: ${spec.name} has ${parameterCount(spec).toLocaleString('en')} parameters (float32)`);
    results.push(...(await runCase(trainCase(spec), ctx)));
  }
  return results;
}
