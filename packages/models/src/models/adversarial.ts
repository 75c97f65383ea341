/**
 * What the adversarial models share, whatever they generate (images in {@link Gan}, waveforms in
 * {@link WaveGan}): the WGAN-GP critic loss with its gradient penalty, and one training step that
 * updates the critic and then, on the steps that do, the generator through the frozen critic.
 */
import { gradients } from '@fluxion/autograd';
import type { AnyModule } from '@fluxion/nn';
import {
  add,
  type Generator,
  keep,
  mean,
  mul,
  rand,
  reshape,
  scope,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
} from '@fluxion/tensor';
import { type AnyOptimizer, readLosses, type StepLosses } from './model.js';

/** The parts of a WGAN-GP critic loss (scalars). */
export interface WganGpLoss {
  /** What the critic minimises: `E[D(G(z))] − E[D(x)] + λ·penalty`. */
  loss: Tensor;
  /** The gradient penalty `E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²]`, before the weight λ. */
  penalty: Tensor;
}

/**
 * The WGAN-GP critic loss (Gulrajani et al. 2017):
 * `E[D(G(z))] − E[D(x)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²]` with `x̂ = εx + (1 − ε)G(z)`, one
 * `ε ~ U(0, 1)` per example drawn from `noise`. The penalty's gradient needs second derivatives,
 * so the input gradient is taken with autograd's `createGraph`. The norm is over every axis but
 * the batch axis, so `real` and `fake` may be `[n, features]` or `[n, C, L]`, ….
 *
 * Args:
 *   critic: the critic's scores `[n, 1]` of a batch (a closure that applies the labels, if any).
 *   real, fake: batches of one shape `[n, …]` (`fake` without a graph to the generator).
 *   gpWeight: the penalty weight λ (10 in the paper).
 *   noise: the stream the interpolation weights are drawn from.
 *
 * @example
 * ```ts
 * const { loss, penalty } = wganGpLoss((x) => critic.forward(x), real, fake, 10, model.noise);
 * ```
 */
export function wganGpLoss(
  critic: (x: Tensor) => Tensor,
  real: Tensor,
  fake: Tensor,
  gpWeight: number,
  noise: Generator,
): WganGpLoss {
  const n = real.shape[0];
  const dReal = critic(real);
  const dFake = critic(fake);
  const eps = rand([n, ...real.shape.slice(1).map(() => 1)], { generator: noise });
  const interp = add(mul(eps, real), mul(sub(1, eps), fake));
  interp.requiresGrad = true;
  const [g] = gradients(sum(critic(interp)), [interp], { createGraph: true });
  const norm = sqrt(add(sum(square(reshape(g, [n, -1])), 1), 1e-12));
  const penalty = mean(square(sub(norm, 1)));
  return { loss: add(sub(mean(dFake), mean(dReal)), mul(penalty, gpWeight)), penalty };
}

/** Marks every parameter of `module` as trainable or frozen. */
export function setTrainable(module: AnyModule, trainable: boolean): void {
  for (const p of module.parameters()) p.requiresGrad = trainable;
}

/** The two players of an adversarial model and the generator loss reported between its updates. */
export interface AdversarialPlayers {
  readonly discriminator: AnyModule;
  readonly optD: AnyOptimizer;
  readonly optG: AnyOptimizer;
  /** The last generator loss, reported on steps without a generator update (updated here). */
  lastG: number;
}

/**
 * One adversarial training step, all in one tensor scope: `setup()` makes the step's inputs
 * (labels, real and generated batches); the critic minimises `critic(s).d` (one optimizer step);
 * then, when `generator` is given, the generator minimises `generator(s)` through the critic with
 * the critic's parameters frozen (and unfrozen afterwards, even on an error). Returns the critic's
 * named losses (`d` and whatever else it reports) and `g`, which is `players.lastG` on steps
 * without a generator update (so a WGAN-GP run reports a generator loss on every step).
 *
 * @example
 * ```ts
 * const losses = await adversarialStep(
 *   this,
 *   () => ({ real, fake: noGrad(() => this.generate(n)) }),
 *   ({ real, fake }) => ({ d: this.criticLoss(real, fake) }),
 *   updateG ? () => this.generatorLoss(n) : null,
 * ); // { d, g }
 * ```
 */
export async function adversarialStep<S>(
  players: AdversarialPlayers,
  setup: () => S,
  critic: (s: S) => { d: Tensor } & Record<string, Tensor>,
  generator: ((s: S) => Tensor) | null,
): Promise<StepLosses> {
  const { discriminator, optD, optG } = players;
  const [reported, gLoss] = scope(() => {
    const s = setup();
    const named = critic(s);
    optD.zeroGrad();
    named.d.backward();
    optD.step();
    let g: Tensor | null = null;
    if (generator) {
      setTrainable(discriminator, false);
      try {
        g = generator(s);
        optG.zeroGrad();
        g.backward();
        optG.step();
      } finally {
        setTrainable(discriminator, true);
      }
    }
    const kept = Object.fromEntries(Object.entries(named).map(([k, t]) => [k, keep(t)]));
    return [kept, g ? keep(g) : null] as const;
  });
  if (!gLoss) return { ...(await readLosses(reported)), g: players.lastG };
  const losses = await readLosses({ ...reported, g: gLoss });
  players.lastG = losses.g;
  return losses;
}
