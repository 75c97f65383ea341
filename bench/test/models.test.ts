/**
 * The text and audio training steps (models.ts `CHARLM`, `WAVEGAN`) are defined once and built by
 * every engine. These tests tie the definitions to `@fluxion/models`' own networks (the same
 * parameter names and shapes) and check that every engine builds the same number of parameters
 * and that one step from the shared start gives the same losses as Fluxion's CPU backend. Steps
 * run at batch 2 (the parameter count does not depend on the batch) to stay fast.
 */
import {
  CharTransformer,
  textModelDefaults,
  waveganConfig,
  waveganCritic,
  waveganGenerator,
} from '@fluxion/models';
import { Generator } from '@fluxion/tensor';
import { describe, expect, it } from 'vitest';
import { setupWebGPU } from '../src/device.js';
import { type Engine, engineLabel } from '../src/engines/engine.js';
import { fluxionEngine } from '../src/engines/fluxion.js';
import {
  CHARLM,
  charLmParamDefs,
  type ModelSpec,
  modelParamShapes,
  modelParams,
  parameterCount,
  stepInputs,
  WAVEGAN,
} from '../src/models.js';
import { makeRunner, skipSlowConv } from '../src/train.js';

const adapter = await setupWebGPU();
if (!adapter && process.env.FLUXION_REQUIRE_WEBGPU === '1') {
  throw new Error('bench models test: no WebGPU adapter (FLUXION_REQUIRE_WEBGPU=1)');
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

describe('shared definitions match @fluxion/models', () => {
  it('charlm: the names Transformer, parameter by parameter (202,816 in all)', () => {
    const defaults = textModelDefaults('charlm', 'lines');
    expect(defaults.kind).toBe('charlm');
    if (defaults.kind !== 'charlm') return;
    // The names data: 26 letters and the boundary token; lines of at most 15 letters.
    expect({ ...CHARLM, vocab: 27, context: 16 }).toEqual(CHARLM);
    expect([CHARLM.dim, CHARLM.layers, CHARLM.heads]).toEqual([
      defaults.dim,
      defaults.layers,
      defaults.heads,
    ]);
    expect([CHARLM.adamw.lr, CHARLM.adamw.weightDecay, CHARLM.clip]).toEqual([
      defaults.lr,
      defaults.weightDecay,
      defaults.clip,
    ]);
    const net = new CharTransformer(
      { vocabSize: 27, context: 16, dim: 64, layers: 4, heads: 4, dropout: 0, tie: true },
      new Generator(0),
    );
    const theirs = net.namedParameters().map(([name, p]) => ({ name, shape: [...p.shape] }));
    net.dispose();
    expect(charLmParamDefs(CHARLM).map(({ name, shape }) => ({ name, shape }))).toEqual(theirs);
    expect(parameterCount(CHARLM)).toBe(202_816);
  });

  it('wavegan: the default generator and (unconditional) critic, parameter by parameter', () => {
    const c = waveganConfig({ conditional: false, phaseShuffle: 0 });
    const g = waveganGenerator(c.latent, c.length, c.modelSize, c.blocks, 0);
    const d = waveganCritic(c.length, c.modelSize, c.blocks, 0, 0, new Generator(0), 1);
    const shapes = [g, d].map((m) => m.parameters().map((p) => [...p.shape]));
    g.dispose();
    d.dispose();
    expect(modelParamShapes(WAVEGAN)).toEqual(shapes);
    expect([WAVEGAN.latent, WAVEGAN.pixels, WAVEGAN.gpWeight]).toEqual([c.latent, c.length, c.gpWeight]);
    expect([WAVEGAN.adam.lr, WAVEGAN.adam.beta1, WAVEGAN.adam.beta2]).toEqual([c.lr, c.beta1, c.beta2]);
    expect(parameterCount(WAVEGAN)).toBe(274_305 + 69_569);
  });
});

/** Every engine that starts here: Fluxion and TensorFlow.js on the CPU always, the rest with an adapter. */
async function engines(): Promise<Engine[]> {
  const made: (Engine | string | null)[] = [await fluxionEngine('cpu')];
  const { tfjsEngine } = await import('../src/engines/tfjs.js');
  made.push(await tfjsEngine('cpu'), await tfjsEngine('wasm'));
  const { jaxEngine } = await import('../src/engines/jax.js');
  made.push(await jaxEngine('wasm'));
  if (adapter)
    made.push(await fluxionEngine('webgpu'), await tfjsEngine('webgpu'), await jaxEngine('webgpu'));
  return made.filter((e): e is Engine => e !== null && typeof e !== 'string');
}

/**
 * Losses of two steps at batch 2 from the shared start (the second one sees the first update), and
 * the shapes of the parameters built.
 */
async function oneStep(engine: Engine, spec: ModelSpec) {
  await engine.activate();
  const [params, inputs] = await Promise.all([modelParams(spec), stepInputs(spec, 7)]);
  const runner = await makeRunner(engine, spec, params);
  try {
    const losses: number[] = [];
    for (let i = 0; i < 2; i++) {
      await runner.step(inputs);
      losses.push(...(await runner.losses()));
    }
    return { losses, shapes: runner.parameterShapes() };
  } finally {
    runner.dispose();
  }
}

describe('every engine builds the same model and its steps agree', async () => {
  const all = await engines();
  const cases: [ModelSpec, (e: Engine) => boolean][] = [
    [{ ...CHARLM, batch: 2 }, () => true],
    // The engines the bench times it on (not the plain-JavaScript ones, nor jax-js's WASM backend:
    // too slow; TensorFlow.js's WASM backend has no Conv2DBackpropFilter kernel), and the reference.
    [
      { ...WAVEGAN, batch: 2 },
      (e) =>
        engineLabel(e) === 'fluxion-cpu' || (engineLabel(e) !== 'tfjs-wasm' && !skipSlowConv(WAVEGAN)(e)),
    ],
  ];
  for (const [spec, runs] of cases) {
    it(`${spec.name}: ${all.filter(runs).map(engineLabel).join(', ')}`, { timeout: 1_200_000 }, async () => {
      const [reference, ...others] = all.filter(runs);
      expect(engineLabel(reference)).toBe('fluxion-cpu');
      const expected = await oneStep(reference, spec);
      const count = parameterCount(spec);
      expect(expected.shapes.map(size).reduce((a, b) => a + b)).toBe(count);
      expect(expected.losses.every(Number.isFinite)).toBe(true);
      for (const engine of others) {
        const got = await oneStep(engine, spec);
        // Each tensor's size in the engine's own layout (TensorFlow.js keeps Dense weights [in, out]).
        expect(got.shapes.map(size), engineLabel(engine)).toEqual(expected.shapes.map(size));
        got.losses.forEach((loss, i) => {
          const want = expected.losses[i];
          expect(Math.abs(loss - want), `${engineLabel(engine)} loss ${i}: ${loss} vs ${want}`).toBeLessThan(
            1e-3 + 2e-3 * Math.abs(want),
          );
        });
      }
    });
  }
});
