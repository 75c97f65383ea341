/**
 * What the adversarial models share, whatever they generate (images in {@link Gan}, waveforms in
 * {@link WaveGan}): the WGAN-GP critic loss with its gradient penalty, one training step that
 * updates the critic and then, on the steps that do, the generator through the frozen critic, and
 * {@link AdversarialModel}, the base class of both: the two networks and their Adam optimizers,
 * the noise stream and step counters, generating from latents and one-hot labels, scoring with a
 * plain or a projection critic, and sampling in evaluation mode.
 */
import { gradients, noGrad } from '@fluxion/autograd';
import { Adam, type AnyModule, type Sequential } from '@fluxion/nn';
import {
  add,
  concat,
  FluxionError,
  type Generator,
  keep,
  mean,
  mul,
  oneHot,
  rand,
  randint,
  randn,
  reshape,
  scope,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import { type AnyOptimizer, noiseGenerator, readLosses, type StepLosses } from './model.js';
import { ProjectionCritic } from './networks.js';

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

/** The options every {@link AdversarialModel} has. */
export interface AdversarialConfig {
  kind: string;
  /** Size of the latent code z. */
  latent: number;
  /** Learning rate of both players. */
  lr: number;
  /** Seed of the initialisation and of the noise stream. */
  seed: number;
  /** Number of classes of a conditional model. */
  classes: number;
  /** Condition both players on the class (one-hot appended to z; a projection critic). */
  conditional: boolean;
  /** Adam's β₁ and β₂ (of both players). */
  beta1: number;
  beta2: number;
}

/**
 * The base of a GAN of any output (images, waveforms): a generator fed z (with the one-hot label
 * appended when conditional), a discriminator or critic (a {@link ProjectionCritic} when
 * conditional), one Adam per player with the config's lr and betas, the noise stream, and the
 * counters a checkpoint keeps (`steps`, `lastG`). A subclass builds the networks and says what a
 * training step does; {@link adversarialStep} runs it.
 *
 * @example
 * ```ts
 * class TinyGan extends AdversarialModel<TinyConfig, Sequential> {
 *   constructor(config: TinyConfig) {
 *     super(config, () => ({ generator: mlpGenerator(config.latent, 4, 0), discriminator: mlpDiscriminator(4, 1) }));
 *   }
 * }
 * ```
 */
export abstract class AdversarialModel<C extends AdversarialConfig, D extends Sequential | ProjectionCritic>
  implements AdversarialPlayers
{
  /** The stream of training noise (latents, penalties, phase shuffle) and of default sampling; checkpointed. */
  readonly noise: Generator;
  readonly generator: Sequential;
  /** The discriminator or critic (a {@link ProjectionCritic} when conditional). */
  readonly discriminator: D;
  readonly optG: Adam;
  readonly optD: Adam;
  /** Training steps taken (the critic schedule counts them; checkpointed). */
  steps = 0;
  /** The last generator loss, reported on steps without a generator update (checkpointed). */
  lastG = Number.NaN;

  /** `players` builds the two networks (given the noise stream, which a critic may draw from). */
  protected constructor(
    readonly config: C,
    players: (noise: Generator) => { generator: Sequential; discriminator: D },
  ) {
    this.noise = noiseGenerator(config.seed);
    const { generator, discriminator } = players(this.noise);
    this.generator = generator;
    this.discriminator = discriminator;
    const betas = { beta1: config.beta1, beta2: config.beta2 };
    this.optG = new Adam(generator.parameters(), { lr: config.lr, ...betas });
    this.optD = new Adam(discriminator.parameters(), { lr: config.lr, ...betas });
  }

  /** Whether `sample` takes labels. */
  get conditional(): boolean {
    return this.config.conditional;
  }

  /** Named networks (checkpointed as `<name>.<parameter>`). */
  modules(): Record<string, AnyModule> {
    return { generator: this.generator, discriminator: this.discriminator };
  }

  /** Named optimizers (checkpointed under `optim.<name>.…`). */
  optimizers(): Record<string, AnyOptimizer> {
    return { generator: this.optG, discriminator: this.optD };
  }

  /** The one-hot labels `[n, classes]` the players are conditioned on (null when unconditional). */
  protected condition(labels: Tensor): Tensor | null {
    return this.config.conditional ? oneHot(labels, this.config.classes) : null;
  }

  /** Generator output for `n` latents drawn from `noise` (and one-hot labels). */
  protected generate(n: number, labels: Tensor | null, noise = this.noise): Tensor {
    return scope(() => {
      const z = randn([n, this.config.latent], { generator: noise });
      return this.generator.forward(labels ? concat([z, labels], 1) : z);
    });
  }

  /** The discriminator's scores (logits) `[n, 1]` of a batch, given one-hot labels when conditional. */
  protected score(x: Tensor, labels: Tensor | null): Tensor {
    const d: Sequential | ProjectionCritic = this.discriminator;
    if (d instanceof ProjectionCritic) {
      if (!labels) throw new FluxionError(this.config.kind, 'the conditional critic needs labels');
      return d.forward(x, labels);
    }
    return d.forward(x);
  }

  /**
   * `n` generator outputs, without gradients and with the generator in evaluation mode, passed
   * through `finish` (e.g. to pixels in [0, 1]). A conditional model takes one label per output
   * (random classes when none are given); latents and random labels come from `generator`.
   */
  protected sampleOutputs(
    n: number,
    labels: readonly number[] | undefined,
    generator: Generator,
    finish: (x: Tensor) => Tensor = (x) => x,
  ): Tensor {
    const { classes, conditional } = this.config;
    const wasTraining = this.generator.training;
    this.generator.eval();
    try {
      return noGrad(() =>
        scope(() => {
          let y: Tensor | null = null;
          if (conditional) {
            const ids = labels ? tensor(Int32Array.from(labels)) : randint(0, classes, [n], { generator });
            y = oneHot(ids, classes);
          }
          return finish(this.generate(n, y, generator));
        }),
      );
    } finally {
      if (wasTraining) this.generator.train();
    }
  }
}
