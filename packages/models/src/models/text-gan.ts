/**
 * `textgan`: a GAN that generates text, as an adversarially regularised autoencoder (ARAE, Zhao et
 * al. 2018): a GAN in the continuous code space of a text autoencoder, whose samples are decoded to
 * characters.
 *
 * Why not a GAN on characters directly: a generator that emits discrete tokens (argmax or a
 * categorical draw) passes no gradient from the critic back to its parameters. The usual ways
 * around it each have a cost: REINFORCE-style policy gradients (SeqGAN) are high-variance and need
 * maximum-likelihood pre-training and many samples per update; the Gumbel-softmax relaxation lets
 * gradients through, but the critic then sees soft one-hot vectors for fakes and exact one-hots for
 * real text, so it wins by telling soft from hard rather than good from bad unless the temperature
 * is annealed carefully (a schedule that fails quietly). ARAE moves the adversarial game to a space
 * where everything is continuous: a GRU autoencoder learns codes c = enc(x)/‖enc(x)‖ on the unit
 * sphere (trained by teacher-forced cross-entropy, with Gaussian noise of std `codeNoise` added to
 * the codes so that the decoder also decodes codes near, not only at, those of training names), and
 * a WGAN-GP (the critic loss and the adversarial step of `adversarial.ts`, shared with the image
 * and audio GANs) trains an MLP generator from noise to codes against an MLP critic that sees the
 * codes of real names. A sample is a generated code decoded by the autoencoder's decoder, so every
 * gradient that the GAN needs is an ordinary one. ARAE's optional adversarial gradient into the
 * encoder (pulling real codes towards the generator's) is left out: the unit-sphere codes already
 * bound the space the critic compares, and it made the short runs less stable.
 *
 * Each training step does one autoencoder update on the batch, one critic update (real codes of the
 * batch against generated ones), and every `criticSteps` steps one generator update.
 */
import { noGrad } from '@fluxion/autograd';
import { Adam, type AnyModule, type Sequential } from '@fluxion/nn';
import {
  add,
  div,
  FluxionError,
  type Generator,
  mean,
  mul,
  neg,
  randn,
  scope,
  sqrt,
  square,
  stack,
  sub,
  sum,
  type Tensor,
} from '@fluxion/tensor';
import type { TextBatch, TextDataset } from '../data/text-batches.js';
import type { CharTokenizer } from '../data/tokenizer.js';
import { adversarialStep, wganGpLoss } from './adversarial.js';
import { type AnyOptimizer, pictureGenerator, readLosses, type StepLosses } from './model.js';
import { mlpDiscriminator, mlpGenerator } from './networks.js';
import type { TextEvaluation } from './text-lm.js';
import {
  latentConfigFor,
  type TextLatentBaseConfig,
  type TextLatentKind,
  TextLatentModel,
  type TextLatentOverrides,
  TextVae,
  type TextVaeConfig,
  textVaeDefaults,
} from './text-vae.js';

/** Configuration of {@link TextGan}. */
export interface TextGanConfig extends TextLatentBaseConfig {
  kind: 'textgan';
  /** Size of the generator's input noise. */
  noiseDim: number;
  /** Width of the two hidden layers of the generator and of the critic. */
  ganHidden: number;
  /** Adam learning rate of the generator and the critic (β₁ 0.5, β₂ 0.9, as WGAN-GP). */
  ganLr: number;
  /** WGAN-GP penalty weight λ. */
  gpWeight: number;
  /** Training steps per generator update (every step updates the autoencoder and the critic). */
  criticSteps: number;
  /** Std of the Gaussian noise added to the codes that the decoder learns from (0: none). */
  codeNoise: number;
}

/**
 * The defaults of `textgan` on names. `vocabSize` and `context` come from the data.
 *
 * @example
 * ```ts
 * textGanDefaults().criticSteps; // 5
 * ```
 */
export function textGanDefaults(): TextGanConfig {
  return {
    kind: 'textgan',
    mode: 'lines',
    vocabSize: 0,
    context: 16,
    dim: 32,
    hidden: 128,
    latent: 32,
    wordDropout: 0,
    lr: 3e-3,
    weightDecay: 0,
    clip: 1,
    warmup: 100,
    decaySteps: 0,
    seed: 0,
    noiseDim: 32,
    ganHidden: 128,
    ganLr: 2e-4,
    gpWeight: 10,
    criticSteps: 5,
    codeNoise: 0.1,
  };
}

/** Held-out figures of {@link TextGan.evaluate}. */
export interface TextGanEvaluation extends TextEvaluation {
  /** The autoencoder's teacher-forced cross-entropy per character at the items' codes, nats. */
  nats: number;
  bits: number;
  /** Items evaluated. */
  items: number;
  /** Share of characters (and ends) that the teacher-forced decoder ranks first. */
  accuracy: number;
  /** Share of items whose greedy decoding of their code is the item exactly. */
  exact: number;
  /** The critic's estimate of the Wasserstein distance, E[D(real codes)] − E[D(generated codes)]. */
  wasserstein: number;
}

/** c / ‖c‖ per row: codes on the unit sphere. */
function toSphere(c: Tensor): Tensor {
  return scope(() => div(c, sqrt(add(sum(square(c), 1, true), 1e-12))));
}

/**
 * `textgan`: the ARAE of the module doc — a GRU sentence autoencoder with codes on the unit sphere,
 * and a WGAN-GP in its code space (MLP generator from `noiseDim` noise, MLP critic); samples are
 * generated codes decoded to characters.
 *
 * Args:
 *   config: a {@link TextGanConfig} (see `textLatentConfig('textgan', ds)`).
 *   tokenizer: the data's tokenizer (with the boundary token).
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const gan = new TextGan(textLatentConfig('textgan', ds), ds.tokenizer);
 * for (const b of lineBatches(encodeLines(ds.tokenizer, ds.train), { boundaryId: 0 }, { batchSize: 64, seed: 0, epoch: 0 })) {
 *   await gan.trainStep(b); // { loss, accuracy, d, penalty, g }
 *   disposeTextBatch(b);
 * }
 * await gan.sample(5, { temperature: 0 });
 * ```
 */
export class TextGan extends TextLatentModel<TextGanConfig> {
  /** Noise `[n, noiseDim]` → code (before the projection to the sphere). */
  readonly generator: Sequential;
  /** The critic of codes `[n, latent]` → scores `[n, 1]`. */
  readonly discriminator: Sequential;
  readonly optG: Adam;
  readonly optD: Adam;
  /** The last generator loss, reported on steps without a generator update (checkpointed). */
  lastG = Number.NaN;

  constructor(config: TextGanConfig, tokenizer: CharTokenizer) {
    super(config, tokenizer, config.latent, ganConfigProblem);
    const { noiseDim, latent, ganHidden, seed } = config;
    this.generator = mlpGenerator(noiseDim, latent, seed + 1, [ganHidden, ganHidden]);
    this.discriminator = mlpDiscriminator(latent, seed + 2, [ganHidden, ganHidden]);
    const adam = { lr: config.ganLr, beta1: 0.5, beta2: 0.9 };
    this.optG = new Adam(this.generator.parameters(), adam);
    this.optD = new Adam(this.discriminator.parameters(), adam);
  }

  override modules(): Record<string, AnyModule> {
    return { net: this.net, generator: this.generator, discriminator: this.discriminator };
  }

  override optimizers(): Record<string, AnyOptimizer> {
    return { adamw: this.optimizer, generator: this.optG, discriminator: this.optD };
  }

  /** The autoencoder's codes (on the unit sphere) `[B, latent]` of rows `ids [B, T]`. */
  protected codesOf(ids: Tensor, last: Tensor): Tensor {
    return scope(() => toSphere(this.net.encode(ids, last)));
  }

  /** Generated codes `[n, latent]` on the unit sphere from noise drawn from `generator`. */
  protected priorLatents(n: number, generator: Generator): Tensor {
    return scope(() => toSphere(this.generator.forward(randn([n, this.config.noiseDim], { generator }))));
  }

  /**
   * One autoencoder update (teacher-forced cross-entropy per character at the batch's codes plus
   * `codeNoise` noise), one WGAN-GP critic update on the batch's codes against as many generated
   * codes, and every `criticSteps` steps one generator update. Returns `loss` (the autoencoder's
   * nats per character), `accuracy` (its teacher-forced accuracy per character), `d` (the critic
   * loss), `penalty` (the gradient penalty before λ) and `g` (the generator loss, the last one on
   * steps without a generator update).
   */
  async trainStep(batch: TextBatch): Promise<StepLosses> {
    const { last, characters } = this.checkBatch(batch);
    const [b, t] = batch.inputs.shape;
    const { codeNoise, criticSteps, gpWeight } = this.config;
    this.net.train();
    try {
      const ae = scope(() => {
        let z = this.codesOf(batch.inputs, last);
        if (codeNoise > 0) z = add(z, mul(randn(z.shape, { generator: this.noise }), codeNoise));
        const { nll, logits } = this.rowNll(batch, z, this.wordKeepMask(b, t));
        const loss = mul(sum(nll), 1 / characters);
        this.updateAutoencoder(loss);
        return { loss, accuracy: mul(this.correct(logits, batch.targets), 1 / characters) };
      });
      const updateG = this.steps % criticSteps === 0;
      const gan = await adversarialStep(
        this,
        () => ({
          real: noGrad(() => this.codesOf(batch.inputs, last)),
          fake: noGrad(() => this.priorLatents(b, this.noise)),
        }),
        ({ real, fake }) => {
          const { loss, penalty } = wganGpLoss(
            (x) => this.discriminator.forward(x),
            real,
            fake,
            gpWeight,
            this.noise,
          );
          return { d: loss, penalty };
        },
        updateG ? () => neg(mean(this.discriminator.forward(this.priorLatents(b, this.noise)))) : null,
      );
      this.steps++;
      return { ...(await readLosses(ae)), ...gan };
    } finally {
      last.dispose();
    }
  }

  /**
   * Held-out figures, without gradients: the autoencoder's teacher-forced nats per character and
   * accuracy at the items' codes, the share of items whose greedy decoding is exact, and the
   * critic's Wasserstein estimate against as many generated codes (drawn from `generator`, a fresh
   * evaluation stream by default, so the training noise is not touched). Batches are disposed.
   *
   * @example
   * ```ts
   * await gan.evaluate(sequentialLineBatches(encodeLines(tok, ds.test), { boundaryId: 0 }, 250));
   * ```
   */
  async evaluate(
    batches: Iterable<TextBatch>,
    options: { generator?: Generator } = {},
  ): Promise<TextGanEvaluation> {
    const generator = options.generator ?? pictureGenerator(this.config.seed);
    const wasTraining = this.net.training;
    this.net.eval();
    let characters = 0;
    let items = 0;
    let exact = 0;
    let total: Tensor | null = null;
    try {
      for (const batch of batches) {
        let last: Tensor | null = null;
        let codes: Tensor | null = null;
        try {
          const checked = this.checkBatch(batch);
          last = checked.last;
          const n = batch.inputs.shape[0];
          characters += checked.characters;
          items += n;
          codes = noGrad(() => this.codesOf(batch.inputs, last as Tensor));
          const part = noGrad(() =>
            scope(() => {
              const { nll, logits } = this.rowNll(batch, codes as Tensor);
              const real = sum(this.discriminator.forward(codes as Tensor));
              const fake = sum(this.discriminator.forward(this.priorLatents(n, generator)));
              const s = stack([sum(nll), this.correct(logits, batch.targets), sub(real, fake)]);
              return total ? add(total, s) : s;
            }),
          );
          total?.dispose();
          total = part;
          const decoded = await this.decodeLatents(codes, { temperature: 0 });
          const ids = await batch.inputs.data();
          const window = batch.inputs.shape[1];
          for (const [r, text] of decoded.entries()) {
            const row = Array.from(ids.slice(r * window + 1, r * window + checked.lengths[r]), Number);
            if (text === this.tokenizer.decode(row)) exact++;
          }
        } finally {
          last?.dispose();
          codes?.dispose();
          batch.inputs.dispose();
          batch.targets.dispose();
          batch.mask?.dispose();
        }
      }
    } finally {
      this.net.train(wasTraining);
    }
    if (!total) throw new FluxionError('textgan.evaluate', 'no batches to evaluate');
    const [nll, correct, gap] = Array.from(await (total as Tensor).data(), Number);
    (total as Tensor).dispose();
    const nats = nll / characters;
    return {
      nats,
      bits: nats / Math.LN2,
      characters,
      items,
      accuracy: correct / characters,
      exact: exact / items,
      wasserstein: gap / items,
    };
  }
}

/** Why a textgan config's own options are invalid, or null. */
function ganConfigProblem(c: TextGanConfig): string | null {
  for (const key of ['noiseDim', 'ganHidden', 'criticSteps'] as const)
    if (!(Number.isInteger(c[key]) && c[key] >= 1)) return `${key} must be a positive integer, got ${c[key]}`;
  if (!(c.ganLr > 0 && Number.isFinite(c.ganLr))) return `ganLr must be a positive number, got ${c.ganLr}`;
  if (!(c.gpWeight >= 0 && Number.isFinite(c.gpWeight))) return `gpWeight must be ≥ 0, got ${c.gpWeight}`;
  if (!(c.codeNoise >= 0 && Number.isFinite(c.codeNoise))) return `codeNoise must be ≥ 0, got ${c.codeNoise}`;
  return null;
}

// ——— both latent text models ———

/** The config of either latent text model. */
export type TextLatentModelConfig = TextVaeConfig | TextGanConfig;

/**
 * The defaults of a latent text model kind.
 *
 * @example
 * ```ts
 * textLatentDefaults('textgan').noiseDim; // 32
 * ```
 */
export function textLatentDefaults<K extends TextLatentKind>(
  kind: K,
): Extract<TextLatentModelConfig, { kind: K }> {
  if (kind === 'textvae') return textVaeDefaults() as Extract<TextLatentModelConfig, { kind: K }>;
  if (kind === 'textgan') return textGanDefaults() as Extract<TextLatentModelConfig, { kind: K }>;
  throw new FluxionError(
    'textLatentDefaults',
    `unknown latent text model '${kind}'; expected textvae or textgan`,
  );
}

/**
 * The config of a latent text model for a lines data set (names): the kind's defaults, the data's
 * vocabulary size and window (the longest item + 1), then the `overrides` that the kind has. One
 * long text (`'text'` mode) is an error: these models encode and generate whole items.
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const config = textLatentConfig('textvae', ds, { latent: 32, klWarmup: 2000 }); // context 16, vocabSize 27
 * const model = createTextLatentModel(config, ds.tokenizer);
 * ```
 */
export function textLatentConfig<K extends TextLatentKind>(
  kind: K,
  ds: TextDataset,
  overrides: TextLatentOverrides = {},
): Extract<TextLatentModelConfig, { kind: K }> {
  return latentConfigFor(textLatentDefaults(kind), ds, overrides);
}

/** A latent text model of either kind. */
export type TextLatentModelOf = TextVae | TextGan;

/**
 * A latent text model from its full config and tokenizer (what a checkpoint holds: `config` and
 * `tokenizer.toJSON()`); the config is checked against the tokenizer.
 *
 * @example
 * ```ts
 * const model = createTextLatentModel(meta.config, CharTokenizer.fromJSON(meta.tokenizer));
 * ```
 */
export function createTextLatentModel(
  config: TextLatentModelConfig,
  tokenizer: CharTokenizer,
): TextLatentModelOf {
  if (config.kind === 'textvae') return new TextVae(config, tokenizer);
  if (config.kind === 'textgan') return new TextGan(config, tokenizer);
  throw new FluxionError(
    'createTextLatentModel',
    `unknown latent text model '${(config as { kind: unknown }).kind}'; expected textvae or textgan`,
  );
}
