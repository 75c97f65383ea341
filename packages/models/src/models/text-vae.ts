/**
 * Latent-variable models of one-item-per-line text (names): a sentence autoencoder network shared
 * by `textvae` and `textgan`, the base class of both (config, optimiser, teacher-forced
 * likelihood, decoding latents to strings, reconstruction and interpolation), and `textvae`, the
 * sentence VAE of Bowman et al. (2016), "Generating Sentences from a Continuous Space".
 *
 * The VAE's encoder, a GRU over the characters of an item, gives a diagonal Gaussian
 * q(z|x) = N(μ, diag σ²); a latent z = μ + σ·ε is drawn by reparameterisation and a GRU decoder
 * predicts the item one character at a time with teacher forcing, p(x|z) = Πₜ p(xₜ | x₍<t₎, z),
 * ending with the boundary token. Training maximises the ELBO
 *   log p(x) ≥ E_q[log p(x|z)] − KL(q(z|x) ‖ N(0, I)).
 * A strong autoregressive decoder can model names without z, and early in training the cheapest
 * way to lower the KL term is to make q equal the prior for every input ("posterior collapse"),
 * after which z carries nothing. Two remedies of the paper are built in: KL annealing (the KL
 * weight β rises linearly from 1/klWarmup to 1 over the first `klWarmup` steps, so the encoder
 * learns to put information in z before it pays the full price for it) and character dropout on
 * the decoder's inputs (each input character but the start token is replaced by a zero embedding,
 * an "unknown" token, with probability `wordDropout`, so the decoder must lean on z to fill gaps).
 */
import { noGrad } from '@fluxion/autograd';
import {
  AdamW,
  type AnyModule,
  clipGradNorm,
  crossEntropy,
  Dense,
  Embedding,
  GRU,
  gaussianKl,
  Module,
} from '@fluxion/nn';
import {
  add,
  argmax,
  type BackendName,
  cast,
  concat,
  equal,
  exp,
  expand,
  FluxionError,
  fmtShape,
  type Generator,
  greaterEqual,
  mul,
  ones,
  rand,
  randn,
  reshape,
  sampleLogits,
  scope,
  slice,
  stack,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
} from '@fluxion/tensor';
import {
  encodeLines,
  IGNORE_INDEX,
  sequentialLineBatches,
  type TextBatch,
  type TextDataset,
  textWindow,
} from '../data/text-batches.js';
import type { CharTokenizer } from '../data/tokenizer.js';
import { type AnyOptimizer, noiseGenerator, pictureGenerator, readLosses, type StepLosses } from './model.js';
import { type TextEvaluation, textLearningRate, textTrainingProblem } from './text-lm.js';
import { iwaeLogLikelihood, type Posterior } from './vae.js';

/** The latent-variable text model families. */
export const TEXT_LATENT_KINDS = ['textvae', 'textgan'] as const;
/** One of {@link TEXT_LATENT_KINDS}. */
export type TextLatentKind = (typeof TEXT_LATENT_KINDS)[number];

/** Options every latent-variable text model accepts (one item per line only). */
export interface TextLatentBaseConfig {
  kind: TextLatentKind;
  /** Always `'lines'`: the models encode and generate whole items (names). */
  mode: 'lines';
  /** Tokens in the vocabulary (the tokenizer's `vocabSize`, with the boundary token). */
  vocabSize: number;
  /** Positions per row: the longest item + 1 (see `textWindow`); sampling stops after context − 1 characters. */
  context: number;
  /** Width of the character embedding (shared by encoder and decoder). */
  dim: number;
  /** Hidden size of the encoder GRU and of the decoder GRU. */
  hidden: number;
  /** Size of the latent code z. */
  latent: number;
  /** Probability of replacing a decoder input character by the zero ("unknown") embedding while training. */
  wordDropout: number;
  /** Peak learning rate of the autoencoder's AdamW. */
  lr: number;
  /** AdamW's decoupled weight decay on matrices. */
  weightDecay: number;
  /** Largest global gradient norm of the autoencoder (0: no clipping). */
  clip: number;
  /** Steps of linear learning-rate warm-up (0: none). */
  warmup: number;
  /** Steps after the warm-up over which the rate falls by a cosine to lr/10 (0: constant). */
  decaySteps: number;
  /** Seed of the initialisation and of the model's noise stream. */
  seed: number;
}

/** Configuration of {@link TextVae}. */
export interface TextVaeConfig extends TextLatentBaseConfig {
  kind: 'textvae';
  /** Steps over which the KL weight β rises linearly to 1: β = min(1, (step + 1) / klWarmup); 0: β = 1. */
  klWarmup: number;
}

/**
 * The defaults of `textvae` on names (latent 16: a name holds about 2.1 nats per character × 7
 * characters ≈ 15 nats in all, so a few dimensions carry what the decoder cannot predict).
 * `vocabSize` and `context` come from the data (see `textLatentConfig`).
 *
 * @example
 * ```ts
 * textVaeDefaults().latent; // 16
 * ```
 */
export function textVaeDefaults(): TextVaeConfig {
  return {
    kind: 'textvae',
    mode: 'lines',
    vocabSize: 0,
    context: 16,
    dim: 32,
    hidden: 128,
    latent: 16,
    wordDropout: 0.25,
    klWarmup: 500,
    lr: 3e-3,
    weightDecay: 0,
    clip: 1,
    warmup: 100,
    decaySteps: 0,
    seed: 0,
  };
}

const isPositiveInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;
const isCount = (v: unknown) => Number.isInteger(v) && (v as number) >= 0;

/**
 * Why a latent text model's config is invalid for `tokenizer` (the checks both kinds share), or
 * null.
 *
 * @example
 * ```ts
 * latentConfigProblem({ ...config, latent: 0 }, tok); // 'latent must be a positive integer, got 0'
 * ```
 */
export function latentConfigProblem(c: TextLatentBaseConfig, tokenizer: CharTokenizer): string | null {
  if (c.mode !== 'lines')
    return `mode must be 'lines' (the model encodes and generates whole items), got ${JSON.stringify(c.mode)}`;
  if (tokenizer.boundaryId === undefined) return `mode 'lines' needs a tokenizer with the boundary token`;
  if (c.vocabSize !== tokenizer.vocabSize)
    return `vocabSize ${c.vocabSize} differs from the tokenizer's ${tokenizer.vocabSize}`;
  for (const key of ['context', 'dim', 'hidden', 'latent'] as const)
    if (!isPositiveInt(c[key])) return `${key} must be a positive integer, got ${c[key]}`;
  if (c.context < 2) return `context must be at least 2 (one character and the end), got ${c.context}`;
  const training = textTrainingProblem(c);
  if (training) return training;
  if (!(c.wordDropout >= 0 && c.wordDropout < 1))
    return `wordDropout must lie in [0, 1), got ${c.wordDropout}`;
  return null;
}

/**
 * The overrides of a latent text model's config: any option of either kind (those that the kind
 * lacks are ignored).
 */
export type TextLatentOverrides = Partial<Record<string, number | string | boolean>>;

/**
 * A latent text model's config for a lines data set: `defaults` (of the kind), the data's
 * vocabulary size and window (`textWindow`: the longest item + 1, or `overrides.context` checked
 * against both splits), then the `overrides` that the kind has.
 *
 * @example
 * ```ts
 * const config = latentConfigFor(textVaeDefaults(), loadNames(), { latent: 32 });
 * ```
 */
export function latentConfigFor<C extends TextLatentBaseConfig>(
  defaults: C,
  ds: TextDataset,
  overrides: TextLatentOverrides = {},
): C {
  if (ds.mode !== 'lines')
    throw new FluxionError(
      defaults.kind,
      `${ds.name}: ${defaults.kind} models one item per line (names); read the data in 'lines' mode`,
    );
  const applied = Object.fromEntries(Object.entries(overrides).filter(([key]) => key in defaults));
  const context = textWindow(ds, overrides.context as number | undefined);
  return {
    ...defaults,
    ...applied,
    kind: defaults.kind,
    mode: 'lines',
    vocabSize: ds.tokenizer.vocabSize,
    context,
  };
}

// ——— the network ———

/**
 * A sentence autoencoder: a character embedding shared by both halves, a GRU encoder whose state
 * after an item's last character goes through a Dense layer to a code (`codeSize` numbers: μ and
 * log σ² for the VAE, the code for the GAN), and a GRU decoder. The decoder starts from
 * h₀ = tanh(W z + b) and reads [embedding of the previous character ; z] at every step: Bowman et
 * al. feed z only through h₀, but a GRU's state drifts away from its start within a few
 * characters, and concatenating z to each input keeps it one matrix product away from every
 * prediction, which makes using z cheaper than ignoring it (less posterior collapse) at a cost of
 * `latent` more input columns.
 *
 * Args:
 *   c.vocabSize, c.dim, c.hidden, c.latent: sizes; c.codeSize: the encoder's outputs.
 *   generator: the stream of the initialisation.
 *
 * Shape:
 *   `forward(ids [B, T] int32, last [B, T, 1])` → codes `[B, codeSize]` (the encoder), where
 *   `last` is 1 at each row's last character and 0 elsewhere.
 *
 * @example
 * ```ts
 * const net = new SentenceAutoencoder({ vocabSize: 27, dim: 32, hidden: 128, latent: 16, codeSize: 32 }, new Generator(0));
 * const codes = net.encode(ids, lastCharacter(lengths, T)); // [B, 32]
 * const [logits] = net.decode(ids, z);                       // [B, T, 27]
 * ```
 */
export class SentenceAutoencoder extends Module<[Tensor, Tensor], Tensor> {
  readonly tokens: Embedding;
  readonly encoder: GRU;
  readonly codeHead: Dense;
  readonly init: Dense;
  readonly decoder: GRU;
  readonly head: Dense;

  constructor(
    readonly sizes: { vocabSize: number; dim: number; hidden: number; latent: number; codeSize: number },
    generator: Generator,
  ) {
    super();
    const { vocabSize, dim, hidden, latent, codeSize } = sizes;
    const random = { generator };
    this.tokens = new Embedding(vocabSize, dim, random);
    this.encoder = new GRU(dim, hidden, random);
    this.codeHead = new Dense(hidden, codeSize, random);
    this.init = new Dense(latent, hidden, random);
    this.decoder = new GRU(dim + latent, hidden, random);
    this.head = new Dense(hidden, vocabSize, random);
  }

  forward(ids: Tensor, last: Tensor): Tensor {
    return this.encode(ids, last);
  }

  /** The codes `[B, codeSize]` of rows `ids [B, T]`: the encoder's state where `last [B, T, 1]` is 1. */
  encode(ids: Tensor, last: Tensor): Tensor {
    return scope(() => {
      const [out] = this.encoder.forward(this.tokens.forward(ids));
      return this.codeHead.forward(sum(mul(out, last), 1));
    });
  }

  /** The decoder's first state `[1, B, hidden]` for latents `[B, latent]`: tanh(W z + b). */
  initialState(z: Tensor): Tensor {
    return scope(() => reshape(tanh(this.init.forward(z)), [1, z.shape[0], this.sizes.hidden]));
  }

  /**
   * Next-character logits `[B, T, vocab]` and the final state of the decoder fed `ids [B, T]` and
   * latents `z [B, latent]`, from `state` (the initial state of z by default). `keep [B, T, 1]`
   * (0 or 1) zeroes the embeddings of dropped input characters.
   */
  decode(ids: Tensor, z: Tensor, state?: Tensor, keep?: Tensor): [Tensor, Tensor] {
    return scope(() => {
      const [b, t] = ids.shape;
      let e = this.tokens.forward(ids);
      if (keep) e = mul(e, keep);
      const zs = expand(reshape(z, [b, 1, this.sizes.latent]), [b, t, this.sizes.latent]);
      const [out, hN] = this.decoder.forward(concat([e, zs], 2), state ?? this.initialState(z));
      return [this.head.forward(out), hN];
    });
  }
}

/**
 * The selector of each row's last character, float `[B, T, 1]`: 1 at position `lengths[r] − 1`
 * (the batch's `lengths` count the characters and the end, and the inputs start with the boundary
 * token, so that position holds the last character), 0 elsewhere.
 *
 * @example
 * ```ts
 * lastCharacter(Int32Array.of(3, 2), 4); // [[0,0,1,0],[0,1,0,0]] as [2, 4, 1]
 * ```
 */
export function lastCharacter(lengths: Int32Array, window: number, backend?: BackendName): Tensor {
  const data = new Float32Array(lengths.length * window);
  for (const [r, n] of lengths.entries()) data[r * window + n - 1] = 1;
  return tensor(data, [lengths.length, window, 1], backend ? { backend } : {});
}

/** Options of {@link TextLatentModel.sample} and {@link TextLatentModel.decodeLatents}. */
export interface LatentSampleOptions {
  /** Softmax temperature of each character (default 1; 0 is greedy decoding). */
  temperature?: number;
  /** Sample among the k most likely characters only (default all). */
  topK?: number;
  /** Most characters per item (default context − 1, the longest item trained on). */
  length?: number;
  /** The stream of latents and characters; the model's noise stream by default. */
  generator?: Generator;
}

/** Sums over a batch, accumulated on the device and read once. */
class DeviceSums {
  private total: Tensor | null = null;
  add(parts: Tensor[]): void {
    const next = noGrad(() =>
      scope(() => {
        const s = stack(parts);
        return this.total ? add(this.total, s) : s;
      }),
    );
    this.total?.dispose();
    this.total = next;
  }
  async read(): Promise<number[]> {
    if (!this.total) throw new FluxionError('evaluate', 'no batches to evaluate');
    const values = Array.from(await this.total.data(), Number);
    this.total.dispose();
    this.total = null;
    return values;
  }
}

/**
 * What `textvae` and `textgan` share: the {@link SentenceAutoencoder} and its AdamW with the
 * warm-up/cosine schedule of the text models, checked batches, the teacher-forced likelihood,
 * decoding latents to strings (sampled or greedy), and reconstruction and interpolation of items
 * through their codes. A subclass says how an item's code is found ({@link codesOf}) and where
 * sampled latents come from ({@link priorLatents}).
 */
export abstract class TextLatentModel<C extends TextLatentBaseConfig> {
  /** The stream of training noise (latents, dropout, penalties) and of default sampling; checkpointed. */
  readonly noise: Generator;
  readonly net: SentenceAutoencoder;
  /** AdamW of the autoencoder. */
  readonly optimizer: AdamW;
  /** Training steps taken (the schedules count them; checkpointed). */
  steps = 0;

  protected constructor(
    readonly config: C,
    readonly tokenizer: CharTokenizer,
    codeSize: number,
    extraProblem: (c: C) => string | null,
  ) {
    const problem = latentConfigProblem(config, tokenizer) ?? extraProblem(config);
    if (problem) throw new FluxionError(config.kind, problem);
    this.noise = noiseGenerator(config.seed);
    this.net = new SentenceAutoencoder({ ...config, codeSize }, this.noise);
    const params = this.net.parameters();
    this.optimizer = new AdamW(
      [
        { params: params.filter((p) => p.rank >= 2), weightDecay: config.weightDecay },
        { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
      ],
      { lr: config.lr, beta2: 0.99 },
    );
  }

  /** Named networks (checkpointed as `<name>.<parameter>`). */
  modules(): Record<string, AnyModule> {
    return { net: this.net };
  }

  /** Named optimizers (checkpointed under `optim.<name>.…`). */
  optimizers(): Record<string, AnyOptimizer> {
    return { adamw: this.optimizer };
  }

  /** One update on a line batch; returns the losses. */
  abstract trainStep(batch: TextBatch): Promise<StepLosses>;

  /** Held-out figures over every batch (each disposed). */
  abstract evaluate(batches: Iterable<TextBatch>): Promise<TextEvaluation>;

  /** The codes used to reconstruct and interpolate (posterior means, or the autoencoder's codes) `[B, latent]`. */
  protected abstract codesOf(ids: Tensor, last: Tensor): Tensor;

  /** `n` latents to decode from the model's prior, drawn from `generator`. */
  protected abstract priorLatents(n: number, generator: Generator): Tensor;

  /** Checks a line batch and returns its lengths and last-character selector. */
  protected checkBatch(batch: TextBatch): { lengths: Int32Array; last: Tensor; characters: number } {
    const op = this.config.kind;
    const { inputs, targets, lengths } = batch;
    if (inputs.dtype !== 'int32' || inputs.rank !== 2)
      throw new FluxionError(
        op,
        `expected int32 inputs [B, T], got ${fmtShape(inputs.shape)} ${inputs.dtype}`,
      );
    if (!lengths || lengths.length !== inputs.shape[0])
      throw new FluxionError(op, 'expected a line batch with lengths (lineBatches or sequentialLineBatches)');
    if (targets.shape.join() !== inputs.shape.join())
      throw new FluxionError(
        op,
        `targets ${fmtShape(targets.shape)} differ from inputs ${fmtShape(inputs.shape)}`,
      );
    const window = inputs.shape[1];
    let characters = 0;
    for (const n of lengths) {
      if (!(n >= 2 && n <= window))
        throw new FluxionError(op, `an item of length ${n - 1} does not fit rows of ${window} positions`);
      characters += n;
    }
    return { lengths, last: lastCharacter(lengths, window, inputs.backend.name), characters };
  }

  /** Sets each optimiser group's learning rate for the current step. */
  protected scheduleLearningRate(): void {
    const lr = textLearningRate(this.config, this.steps);
    for (const group of this.optimizer.paramGroups) group.lr = lr;
  }

  /**
   * The keep mask `[B, T, 1]` of character dropout on decoder inputs: 1 at position 0 (the start
   * token), elsewhere 1 with probability 1 − wordDropout (from the noise stream); null when off.
   */
  protected wordKeepMask(b: number, t: number): Tensor | null {
    const p = this.config.wordDropout;
    if (!(p > 0) || t < 2) return null;
    return scope(() =>
      concat(
        [ones([b, 1, 1]), cast(greaterEqual(rand([b, t - 1, 1], { generator: this.noise }), p), 'float32')],
        1,
      ),
    );
  }

  /**
   * The decoder's negative log-likelihood per row `[B]` (nats, padding ignored) and its logits, of
   * `batch` given latents `z [B, latent]`, with teacher forcing.
   */
  protected rowNll(batch: TextBatch, z: Tensor, keep?: Tensor | null): { nll: Tensor; logits: Tensor } {
    return scope(() => {
      const [b, t] = batch.inputs.shape;
      const [logits] = this.net.decode(batch.inputs, z, undefined, keep ?? undefined);
      const ce = crossEntropy(reshape(logits, [-1, this.config.vocabSize]), reshape(batch.targets, [-1]), {
        ignoreIndex: IGNORE_INDEX,
        reduction: 'none',
      });
      return { nll: sum(reshape(ce, [b, t]), 1), logits };
    });
  }

  /** Kept targets that the teacher-forced logits rank first (a count, scalar). */
  protected correct(logits: Tensor, targets: Tensor): Tensor {
    return scope(() => sum(cast(equal(argmax(logits, -1), targets), 'float32')));
  }

  /** Backward of `loss`, clipping and an AdamW step on the autoencoder, at the scheduled rate. */
  protected updateAutoencoder(loss: Tensor): void {
    this.scheduleLearningRate();
    this.optimizer.zeroGrad();
    loss.backward();
    if (this.config.clip > 0) clipGradNorm(this.net.parameters(), this.config.clip).dispose();
    this.optimizer.step();
  }

  /**
   * Decodes latents `z [n, latent]` to strings: the decoder starts from the boundary token and
   * h₀(z), draws one character per row and step with `sampleLogits` (temperature 0: the argmax,
   * no draws), and stops a row at the boundary token or after `length` characters.
   *
   * @example
   * ```ts
   * await model.decodeLatents(randn([4, 16]), { temperature: 0 }); // greedy
   * ```
   */
  async decodeLatents(z: Tensor, options: LatentSampleOptions = {}): Promise<string[]> {
    const op = `${this.config.kind}.decode`;
    const { temperature = 1, topK, generator = this.noise } = options;
    const length = options.length ?? this.config.context - 1;
    if (!isCount(length)) throw new FluxionError(op, `length must be an integer ≥ 0, got ${length}`);
    if (z.rank !== 2 || z.shape[1] !== this.config.latent)
      throw new FluxionError(op, `expected latents [n, ${this.config.latent}], got ${fmtShape(z.shape)}`);
    const n = z.shape[0];
    const boundary = this.tokenizer.boundaryId!;
    const backend = z.backend.name;
    const rows: number[][] = Array.from({ length: n }, () => []);
    const done = new Array<boolean>(n).fill(false);
    const wasTraining = this.net.training;
    this.net.eval();
    let state: Tensor | null = null;
    let ids = new Int32Array(n).fill(boundary);
    try {
      state = noGrad(() => this.net.initialState(z));
      for (let step = 0; step < length && !done.every(Boolean); step++) {
        const [drawn, next] = noGrad(() =>
          scope(() => {
            const input = tensor(ids, [n, 1], { dtype: 'int32', backend });
            const [logits, h] = this.net.decode(input, z, state as Tensor);
            const v = this.config.vocabSize;
            return [sampleLogits(reshape(logits, [n, v]), { temperature, topK, generator }), h] as const;
          }),
        );
        (state as Tensor).dispose();
        state = next;
        ids = Int32Array.from(await drawn.data());
        drawn.dispose();
        for (let r = 0; r < n; r++) {
          if (done[r]) continue;
          if (ids[r] === boundary) done[r] = true;
          else rows[r].push(ids[r]);
        }
      }
    } finally {
      (state as Tensor | null)?.dispose();
      this.net.train(wasTraining);
    }
    return rows.map((r) => this.tokenizer.decode(r));
  }

  /**
   * `n` generated items: latents from the model's prior ({@link priorLatents}), decoded by
   * {@link decodeLatents}. Every draw comes from `generator` (the model's noise stream by default),
   * so a seeded generator gives the same items every time and leaves the training noise alone.
   *
   * @example
   * ```ts
   * await model.sample(5, { temperature: 0.8, generator: new Generator(1) }); // ['kaylen', …]
   * ```
   */
  async sample(n: number, options: LatentSampleOptions = {}): Promise<string[]> {
    if (!isPositiveInt(n))
      throw new FluxionError(`${this.config.kind}.sample`, `n must be a positive integer, got ${n}`);
    const generator = options.generator ?? this.noise;
    const wasTraining = this.net.training;
    this.net.eval();
    const z = noGrad(() => this.priorLatents(n, generator));
    try {
      return await this.decodeLatents(z, { ...options, generator });
    } finally {
      z.dispose();
      this.net.train(wasTraining);
    }
  }

  /** The codes `[items, latent]` of items (strings), in evaluation mode. */
  encodeItems(items: readonly string[]): Tensor {
    const op = `${this.config.kind}.encode`;
    if (items.length === 0) throw new FluxionError(op, 'no items to encode');
    const ids = encodeLines(this.tokenizer, items);
    for (const [i, item] of ids.entries())
      if (item.length === 0) throw new FluxionError(op, `item ${i} is empty`);
    const [batch] = sequentialLineBatches(
      ids,
      {
        boundaryId: this.tokenizer.boundaryId!,
        window: Math.max(this.config.context, ...ids.map((l) => l.length + 1)),
      },
      ids.length,
    );
    const wasTraining = this.net.training;
    this.net.eval();
    try {
      return noGrad(() =>
        scope(() => this.codesOf(batch.inputs, lastCharacter(batch.lengths!, batch.inputs.shape[1]))),
      );
    } finally {
      this.net.train(wasTraining);
      batch.inputs.dispose();
      batch.targets.dispose();
      batch.mask?.dispose();
    }
  }

  /**
   * Greedy reconstructions of items: each item's code (the posterior mean for the VAE) decoded at
   * temperature 0.
   *
   * @example
   * ```ts
   * await model.reconstruct(['emma', 'olivia']); // ['emma', 'olivia'] once trained
   * ```
   */
  async reconstruct(
    items: readonly string[],
    options: Pick<LatentSampleOptions, 'length'> = {},
  ): Promise<string[]> {
    const z = this.encodeItems(items);
    try {
      return await this.decodeLatents(z, { ...options, temperature: 0 });
    } finally {
      z.dispose();
    }
  }

  /**
   * `steps` items decoded greedily along the straight line between the codes of `a` and `b`
   * (posterior means for the VAE): z(s) = (1 − s)·z_a + s·z_b for s = 0, 1/(steps − 1), …, 1, so
   * the first and last are the reconstructions of `a` and `b`.
   *
   * @example
   * ```ts
   * await vae.interpolate('emma', 'olivia', 5); // ['emma', 'emia', …, 'olivia']
   * ```
   */
  async interpolate(a: string, b: string, steps: number): Promise<string[]> {
    if (!(Number.isInteger(steps) && steps >= 2))
      throw new FluxionError(`${this.config.kind}.interpolate`, `steps must be an integer ≥ 2, got ${steps}`);
    const ends = this.encodeItems([a, b]);
    const z = noGrad(() =>
      scope(() => {
        const s = Float32Array.from({ length: steps }, (_, i) => i / (steps - 1));
        const t = tensor(s, [steps, 1], { backend: ends.backend.name });
        return add(mul(sub(1, t), slice(ends, [0, 1])), mul(t, slice(ends, [1, 2])));
      }),
    );
    ends.dispose();
    try {
      return await this.decodeLatents(z, { temperature: 0 });
    } finally {
      z.dispose();
    }
  }
}

// ——— textvae ———

/** Held-out figures of {@link TextVae.evaluate}. */
export interface TextVaeEvaluation extends TextEvaluation {
  /** −ELBO per predicted character (each item's end counts as one), nats; one latent sample per item. */
  nats: number;
  /** `nats` in bits. */
  bits: number;
  /** Items (names) evaluated. */
  items: number;
  /** −ELBO per item, nats. */
  natsPerItem: number;
  /** The reconstruction term −E_q[log p(x|z)] per character, nats. */
  recon: number;
  /** KL(q(z|x) ‖ N(0, I)) per item, nats (≥ 0). */
  kl: number;
  /** The IWAE bound on −log p(x) per character with `iwaeK` samples (only when `iwaeK` > 0); ≤ −ELBO. */
  iwae?: number;
  iwaeK?: number;
}

/** Options of {@link TextVae.evaluate}. */
export interface TextVaeEvalOptions {
  /** Importance samples of the IWAE bound (0, the default: none). */
  iwaeK?: number;
  /** Decoder rows (items × samples) per IWAE pass: bounds the memory (default 1000). */
  rowsPerPass?: number;
  /** The stream of the latent samples; a fresh `pictureGenerator(seed)` by default (the training noise is not touched). */
  generator?: Generator;
}

/**
 * `textvae`: the sentence VAE (see the module doc): GRU encoder → μ, log σ² → z → GRU decoder
 * with teacher forcing, KL annealing over `klWarmup` steps and character dropout on the decoder
 * inputs.
 *
 * Args:
 *   config: a {@link TextVaeConfig} (see `textLatentConfig('textvae', ds)`).
 *   tokenizer: the data's tokenizer (with the boundary token).
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const vae = new TextVae(textLatentConfig('textvae', ds), ds.tokenizer);
 * const items = encodeLines(ds.tokenizer, ds.train);
 * for (const b of lineBatches(items, { boundaryId: 0 }, { batchSize: 64, seed: 0, epoch: 0 })) {
 *   await vae.trainStep(b); // { loss, elbo, recon, kl, beta }
 *   disposeTextBatch(b);
 * }
 * await vae.sample(5, { temperature: 0.8 });
 * await vae.interpolate('emma', 'olivia', 5);
 * ```
 */
export class TextVae extends TextLatentModel<TextVaeConfig> {
  constructor(config: TextVaeConfig, tokenizer: CharTokenizer) {
    super(config, tokenizer, 2 * config.latent, (c) =>
      isCount(c.klWarmup) ? null : `klWarmup must be an integer ≥ 0, got ${c.klWarmup}`,
    );
  }

  /** The KL weight β at step `t`: min(1, (t + 1) / klWarmup), or 1 without warm-up. */
  klWeight(t = this.steps): number {
    const w = this.config.klWarmup;
    return w === 0 ? 1 : Math.min(1, (t + 1) / w);
  }

  /** q(z|x): μ and log σ² `[B, latent]` of rows `ids [B, T]`. */
  posterior(ids: Tensor, last: Tensor): { mu: Tensor; logVar: Tensor } {
    return scope(() => {
      const code = this.net.encode(ids, last);
      const l = this.config.latent;
      return { mu: slice(code, null, [0, l]), logVar: slice(code, null, [l, 2 * l]) };
    });
  }

  protected codesOf(ids: Tensor, last: Tensor): Tensor {
    return scope(() => this.posterior(ids, last).mu);
  }

  protected priorLatents(n: number, generator: Generator): Tensor {
    return randn([n, this.config.latent], { generator });
  }

  /**
   * One AdamW step on (Σ −log p(x|z) + β·Σ KL) / characters of the batch, with one reparameterised
   * latent per item and character dropout on the decoder inputs. Returns `loss` (that objective),
   * `elbo` (−ELBO per character, β = 1), `recon` (per character), `kl` (per item) and `beta`.
   */
  async trainStep(batch: TextBatch): Promise<StepLosses> {
    const { last, characters } = this.checkBatch(batch);
    const beta = this.klWeight();
    this.net.train();
    const [b, t] = batch.inputs.shape;
    const named = scope(() => {
      const { mu, logVar } = this.posterior(batch.inputs, last);
      const z = add(mu, mul(exp(mul(logVar, 0.5)), randn(mu.shape, { generator: this.noise })));
      const { nll } = this.rowNll(batch, z, this.wordKeepMask(b, t));
      const recon = sum(nll);
      const kl = gaussianKl(mu, logVar, { reduction: 'sum' });
      const loss = mul(add(recon, mul(kl, beta)), 1 / characters);
      this.updateAutoencoder(loss);
      return {
        loss,
        elbo: mul(add(recon, kl), 1 / characters),
        recon: mul(recon, 1 / characters),
        kl: mul(kl, 1 / b),
      };
    });
    last.dispose();
    this.steps++;
    return { ...(await readLosses(named)), beta };
  }

  /**
   * Held-out figures, without gradients and without dropout: −ELBO per character and per item
   * (one latent sample per item, the KL in closed form), its reconstruction and KL parts, and with
   * `iwaeK` > 0 the importance-weighted bound (Burda et al. 2016)
   *   −log p(x) ≤ −log (1/k) Σᵢ p(x|zᵢ) p(zᵢ) / q(zᵢ|x),  zᵢ ~ q(z|x),
   * summed over items and divided by their characters: in nats per character, comparable with a
   * language model's held-out loss, and ≤ −ELBO (equal in expectation at k = 1). The bound is
   * computed in passes of at most `rowsPerPass` decoder rows combined by a streaming log-sum-exp,
   * so memory does not grow with k. Draws come from `generator` (by default a fresh evaluation
   * stream, so evaluation is repeatable and leaves the training noise alone). Batches are disposed.
   *
   * @example
   * ```ts
   * const items = encodeLines(ds.tokenizer, ds.test);
   * await vae.evaluate(sequentialLineBatches(items, { boundaryId: 0 }, 250), { iwaeK: 100 }); // { nats, iwae, kl, … }
   * ```
   */
  async evaluate(batches: Iterable<TextBatch>, options: TextVaeEvalOptions = {}): Promise<TextVaeEvaluation> {
    const { iwaeK = 0, rowsPerPass = 1000 } = options;
    if (!isCount(iwaeK))
      throw new FluxionError('textvae.evaluate', `iwaeK must be an integer ≥ 0, got ${iwaeK}`);
    if (!isPositiveInt(rowsPerPass))
      throw new FluxionError(
        'textvae.evaluate',
        `rowsPerPass must be a positive integer, got ${rowsPerPass}`,
      );
    const generator = options.generator ?? pictureGenerator(this.config.seed);
    const wasTraining = this.net.training;
    this.net.eval();
    const sums = new DeviceSums();
    let characters = 0;
    let items = 0;
    let iwaeTotal = 0;
    try {
      for (const batch of batches) {
        let last: Tensor | null = null;
        try {
          const checked = this.checkBatch(batch);
          last = checked.last;
          characters += checked.characters;
          items += batch.inputs.shape[0];
          const q = noGrad(() => this.posterior(batch.inputs, last as Tensor));
          try {
            sums.add(
              noGrad(() =>
                scope(() => {
                  const z = add(q.mu, mul(exp(mul(q.logVar, 0.5)), randn(q.mu.shape, { generator })));
                  return [sum(this.rowNll(batch, z).nll), gaussianKl(q.mu, q.logVar, { reduction: 'sum' })];
                }),
              ),
            );
            if (iwaeK > 0) iwaeTotal += await this.iwaeLogLikelihood(batch, q, iwaeK, rowsPerPass, generator);
          } finally {
            q.mu.dispose();
            q.logVar.dispose();
          }
        } finally {
          last?.dispose();
          batch.inputs.dispose();
          batch.targets.dispose();
          batch.mask?.dispose();
        }
      }
    } finally {
      this.net.train(wasTraining);
    }
    const [recon, kl] = await sums.read();
    const nats = (recon + kl) / characters;
    return {
      nats,
      bits: nats / Math.LN2,
      characters,
      items,
      natsPerItem: (recon + kl) / items,
      recon: recon / characters,
      kl: kl / items,
      ...(iwaeK > 0 ? { iwae: -iwaeTotal / characters, iwaeK } : {}),
    };
  }

  /**
   * Σ over the batch's items of log (1/k) Σᵢ wᵢ, the IWAE estimate of log p(x) (nats), in passes
   * of at most `rowsPerPass` decoder rows (see {@link iwaeLogLikelihood}: the result does not
   * depend on `rowsPerPass`, to float rounding).
   */
  private iwaeLogLikelihood(
    batch: TextBatch,
    q: Posterior,
    k: number,
    rowsPerPass: number,
    generator: Generator,
  ): Promise<number> {
    const n = batch.inputs.shape[0];
    return iwaeLogLikelihood(
      { items: n, k, latent: this.config.latent, rowsPerPass, generator },
      (first, m) => {
        const rows = (t: Tensor) => (m === n ? t : slice(t, [first, first + m]));
        const block = { mu: rows(q.mu), logVar: rows(q.logVar) };
        return {
          q: block,
          logLikelihood: (z, tile) => {
            const tiled = { inputs: tile(rows(batch.inputs)), targets: tile(rows(batch.targets)) };
            return mul(this.rowNll(tiled, z).nll, -1);
          },
          dispose: () => {
            if (m === n) return;
            block.mu.dispose();
            block.logVar.dispose();
          },
        };
      },
    );
  }
}

/**
 * The `textvae` config for a lines data set: {@link textVaeDefaults}, the data's vocabulary and
 * window, then `overrides`.
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const vae = new TextVae(textVaeConfig(ds, { latent: 32 }), ds.tokenizer);
 * ```
 */
export function textVaeConfig(ds: TextDataset, overrides: TextLatentOverrides = {}): TextVaeConfig {
  return latentConfigFor(textVaeDefaults(), ds, overrides);
}
