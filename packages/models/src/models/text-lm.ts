/**
 * Character language models of text: `charlm`, an autoregressive character Transformer (GPT-style:
 * token and learned positional embeddings, causal pre-LayerNorm blocks, a final LayerNorm and an
 * output layer, optionally tied to the token embedding), and `charrnn`, the same task with a GRU or
 * LSTM. Both model p(x) = Πₜ p(xₜ | x₍<t₎) with a softmax over the character vocabulary and are
 * trained by cross-entropy on next-character targets (nats per character), with AdamW, gradient
 * clipping and a warm-up / cosine learning-rate schedule. They share one class for everything but
 * the network: training, held-out evaluation and sampling one character at a time.
 *
 * A causal model's output at position t depends only on the inputs at positions ≤ t, so the
 * logits of the last position of a prefix are p(next | prefix): sampling feeds the prefix, draws
 * one character, appends it and repeats (the Transformer recomputes its window of at most
 * `context` characters, the RNN carries its state forward).
 */
import { noGrad } from '@fluxion/autograd';
import {
  AdamW,
  type AnyModule,
  clipGradNorm,
  crossEntropy,
  Dense,
  Dropout,
  Embedding,
  GRU,
  LayerNorm,
  LSTM,
  Module,
  PositionalEmbedding,
  segmentMask,
  TransformerBlock,
  tieWeights,
} from '@fluxion/nn';
import {
  add,
  cast,
  FluxionError,
  fmtShape,
  type Generator,
  mul,
  notEqual,
  reshape,
  sampleLogits,
  scope,
  slice,
  stack,
  sum,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import {
  disposeTextBatch,
  IGNORE_INDEX,
  type TextBatch,
  type TextDataset,
  type TextMode,
  textWindow,
} from '../data/text-batches.js';
import type { CharTokenizer } from '../data/tokenizer.js';
import { type AnyOptimizer, noiseGenerator, readLosses, type StepLosses } from './model.js';

/** The text model families. */
export const TEXT_MODEL_KINDS = ['charlm', 'charrnn'] as const;
/** One of {@link TEXT_MODEL_KINDS}. */
export type TextModelKind = (typeof TEXT_MODEL_KINDS)[number];

/** Options every text model accepts. */
export interface TextBaseConfig {
  kind: TextModelKind;
  /** `'lines'`: one item per line (names), wrapped in the boundary token; `'text'`: one long text. */
  mode: TextMode;
  /** Tokens in the vocabulary (the tokenizer's `vocabSize`). */
  vocabSize: number;
  /** Positions per training row; the longest prefix the Transformer sees (its positional table). */
  context: number;
  /** Width of the token embedding (and of the Transformer). */
  dim: number;
  /** Transformer blocks, or stacked recurrent layers. */
  layers: number;
  /** Dropout probability while training (embeddings, attention, residual branches, between RNN layers). */
  dropout: number;
  /** Peak learning rate of AdamW. */
  lr: number;
  /** AdamW's decoupled weight decay, applied to matrices (weights and embeddings) only. */
  weightDecay: number;
  /** Largest global gradient norm (0: no clipping). */
  clip: number;
  /** Steps of linear warm-up from lr/warmup to lr (0: none). */
  warmup: number;
  /** Steps after the warm-up over which the rate falls by a cosine to lr/10 (0: constant lr). */
  decaySteps: number;
  /** Seed of the initialisation and of the model's noise stream (dropout, default sampling). */
  seed: number;
}

/** Configuration of the character Transformer ({@link CharTransformer}). */
export interface CharLmConfig extends TextBaseConfig {
  kind: 'charlm';
  /** Attention heads per block (`dim` must be a multiple). */
  heads: number;
  /** Tie the output layer's weight to the token embedding. */
  tie: boolean;
}

/** Configuration of the character RNN ({@link CharRnn}). */
export interface CharRnnConfig extends TextBaseConfig {
  kind: 'charrnn';
  /** The recurrent cell. */
  cell: 'gru' | 'lstm';
  /** Hidden size of each recurrent layer. */
  hidden: number;
}

/** The config of any text model. */
export type TextModelConfig = CharLmConfig | CharRnnConfig;

/**
 * The default sizes of a kind for one kind of data: `'lines'` (names) a small model for a short
 * context, `'text'` (Shakespeare) nanoGPT's CPU-sized Transformer (4 layers, 4 heads, width 128,
 * context 64). `vocabSize` and, for `'lines'`, `context` come from the data (see
 * {@link textModelConfig}). Set `decaySteps` to the planned number of steps for the cosine decay.
 *
 * Measured on lavapipe (llvmpipe, 2 CPU cores), names, batch 64: `charlm` (202,816 parameters,
 * packed rows, ≈ 0.25 s/step) 1.9225 nats/char held out after 15 epochs in 802 s of training;
 * `charrnn` (GRU, 66,555 parameters, ≈ 0.08 s/step) 1.961 after 10 epochs in 383 s. Shakespeare,
 * batch 32: `charlm` 1.6355 after 4 epochs in 1,759 s.
 *
 * @example
 * ```ts
 * textModelDefaults('charlm', 'text').context; // 64
 * ```
 */
export function textModelDefaults(kind: TextModelKind, mode: TextMode): TextModelConfig {
  const lines = mode === 'lines';
  const base = {
    mode,
    vocabSize: 0,
    context: lines ? 16 : 64,
    weightDecay: 0.1,
    clip: 1,
    warmup: 100,
    decaySteps: 0,
    seed: 0,
  };
  if (kind === 'charlm') {
    return {
      ...base,
      kind,
      dim: lines ? 64 : 128,
      layers: 4,
      heads: 4,
      tie: true,
      dropout: 0,
      lr: lines ? 2e-3 : 1e-3,
    };
  }
  if (kind === 'charrnn') {
    return {
      ...base,
      kind,
      cell: 'gru',
      dim: lines ? 32 : 64,
      hidden: lines ? 128 : 256,
      layers: lines ? 1 : 2,
      dropout: 0,
      lr: lines ? 3e-3 : 2e-3,
    };
  }
  throw new FluxionError(
    'textModelDefaults',
    `unknown text model '${kind}'; expected one of ${TEXT_MODEL_KINDS.join(', ')}`,
  );
}

/** Overrides of a text model's config: the options of either kind (those of the other kind are ignored). */
export type TextModelOverrides = Partial<Omit<CharLmConfig, 'kind'> & Omit<CharRnnConfig, 'kind'>>;

/**
 * The config of a text model for a data set: the defaults of the kind for the data's mode, the
 * data's vocabulary size and window ({@link textWindow}: the longest item + 1 for lines, the
 * default or `overrides.context` for one long text, checked against both splits), then the
 * `overrides` that apply to the kind.
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const config = textModelConfig('charlm', ds, { layers: 2 }); // context 16, vocabSize 27
 * const model = createTextModel(config, ds.tokenizer);
 * ```
 */
export function textModelConfig<K extends TextModelKind>(
  kind: K,
  ds: TextDataset,
  overrides: TextModelOverrides = {},
): Extract<TextModelConfig, { kind: K }> {
  const base = textModelDefaults(kind, ds.mode) as unknown as Record<string, unknown>;
  const applied = Object.fromEntries(Object.entries(overrides).filter(([key]) => key in base));
  const context = textWindow(
    ds,
    overrides.context ?? (ds.mode === 'text' ? (base.context as number) : undefined),
  );
  return {
    ...base,
    ...applied,
    kind,
    mode: ds.mode,
    vocabSize: ds.tokenizer.vocabSize,
    context,
  } as unknown as Extract<TextModelConfig, { kind: K }>;
}

const isPositiveInt = (v: unknown) => Number.isInteger(v) && (v as number) >= 1;

/**
 * Why the training settings that every text model has (schedule, seed, AdamW, clipping; see
 * {@link TextBaseConfig}) are invalid, or null: the checks the language and the latent models
 * share.
 *
 * @example
 * ```ts
 * textTrainingProblem({ ...config, clip: -1 }); // 'clip must be ≥ 0 (0: no clipping), got -1'
 * ```
 */
export function textTrainingProblem(
  c: Pick<TextBaseConfig, 'warmup' | 'decaySteps' | 'seed' | 'lr' | 'weightDecay' | 'clip'>,
): string | null {
  for (const key of ['warmup', 'decaySteps', 'seed'] as const)
    if (!(Number.isInteger(c[key]) && c[key] >= 0)) return `${key} must be an integer ≥ 0, got ${c[key]}`;
  if (!(c.lr > 0 && Number.isFinite(c.lr))) return `lr must be a positive number, got ${c.lr}`;
  if (!(c.weightDecay >= 0 && Number.isFinite(c.weightDecay)))
    return `weightDecay must be ≥ 0, got ${c.weightDecay}`;
  if (!(c.clip >= 0)) return `clip must be ≥ 0 (0: no clipping), got ${c.clip}`;
  return null;
}

/** Why a config is invalid (with the tokenizer it is meant for), or null. */
function configProblem(c: TextModelConfig, tokenizer: CharTokenizer): string | null {
  if (!TEXT_MODEL_KINDS.includes(c.kind)) return `kind ${JSON.stringify(c.kind)} is not a text model`;
  if (c.mode !== 'lines' && c.mode !== 'text')
    return `mode must be 'lines' or 'text', got ${JSON.stringify(c.mode)}`;
  if (c.vocabSize !== tokenizer.vocabSize)
    return `vocabSize ${c.vocabSize} differs from the tokenizer's ${tokenizer.vocabSize}`;
  const boundary = tokenizer.boundaryId !== undefined;
  if (boundary !== (c.mode === 'lines'))
    return `mode '${c.mode}' needs a tokenizer ${c.mode === 'lines' ? 'with' : 'without'} the boundary token`;
  for (const key of ['context', 'dim', 'layers'] as const)
    if (!isPositiveInt(c[key])) return `${key} must be a positive integer, got ${c[key]}`;
  const training = textTrainingProblem(c);
  if (training) return training;
  if (!(c.dropout >= 0 && c.dropout < 1)) return `dropout must lie in [0, 1), got ${c.dropout}`;
  if (c.kind === 'charlm') {
    if (!isPositiveInt(c.heads) || c.dim % c.heads)
      return `dim ${c.dim} must be a multiple of heads ${c.heads}`;
  } else {
    if (c.cell !== 'gru' && c.cell !== 'lstm')
      return `cell must be 'gru' or 'lstm', got ${JSON.stringify(c.cell)}`;
    if (!isPositiveInt(c.hidden)) return `hidden must be a positive integer, got ${c.hidden}`;
  }
  return null;
}

/**
 * The learning rate at step `t` (0, 1, …) of a config: linear warm-up over `warmup` steps to
 * `lr`, then (with `decaySteps` > 0) a cosine from `lr` to `lr/10` over `decaySteps` steps, and
 * `lr/10` after; constant `lr` after the warm-up otherwise (nanoGPT's schedule).
 *
 * @example
 * ```ts
 * textLearningRate({ lr: 1e-3, warmup: 100, decaySteps: 1900 }, 2000); // 1e-4
 * ```
 */
export function textLearningRate(c: Pick<TextBaseConfig, 'lr' | 'warmup' | 'decaySteps'>, t: number): number {
  if (t < c.warmup) return (c.lr * (t + 1)) / c.warmup;
  if (c.decaySteps === 0) return c.lr;
  const progress = Math.min(1, (t - c.warmup) / c.decaySteps);
  const min = c.lr / 10;
  return min + 0.5 * (c.lr - min) * (1 + Math.cos(Math.PI * progress));
}

/** Held-out figures of {@link TextModel.evaluate}. */
export interface TextEvaluation {
  /** Mean negative log-likelihood per predicted character (each item's end counts as one), in nats. */
  nats: number;
  /** The same in bits: nats / ln 2. */
  bits: number;
  /** Characters predicted. */
  characters: number;
}

/**
 * Options of {@link TextModel.sample}.
 *
 * @example
 * ```ts
 * await model.sample(5, { temperature: 0.8, topK: 10, generator: new Generator(1) });
 * ```
 */
export interface TextSampleOptions {
  /** Softmax temperature (default 1; 0 is argmax decoding). */
  temperature?: number;
  /** Sample among the k most likely characters only (default all). */
  topK?: number;
  /** The start of every sample (default: none for lines; a newline, when in the vocabulary, for text). */
  prompt?: string;
  /**
   * Characters to generate after the prompt: for lines the most (an item ends earlier at the
   * boundary token; default `context − 1`, the longest item trained on), for text exactly
   * (default 200).
   */
  length?: number;
  /** The stream to draw from; the model's noise stream by default. */
  generator?: Generator;
}

/**
 * A trainable generative model of text: the counterpart of `GenerativeModel` for characters, with
 * its tokenizer (saved with a checkpoint as `tokenizer.toJSON()`).
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const model = createTextModel(textModelConfig('charlm', ds), ds.tokenizer);
 * const items = encodeLines(ds.tokenizer, ds.train);
 * for (const b of lineBatches(items, { boundaryId: 0 }, { batchSize: 32, seed: 0, epoch: 0 })) {
 *   await model.trainStep(b); // { loss } in nats/char
 *   disposeTextBatch(b);
 * }
 * await model.sample(5, { temperature: 0.8 }); // ['kaylen', 'mara', …]
 * ```
 */
export interface TextModel {
  readonly config: TextModelConfig;
  readonly tokenizer: CharTokenizer;
  /** The stream of dropout masks and default sampling; its offset is checkpointed. */
  readonly noise: Generator;
  /** Training steps taken (drives the learning-rate schedule; checkpointed). */
  steps: number;
  /** Named networks (checkpointed as `<name>.<parameter>`). */
  modules(): Record<string, AnyModule>;
  /** Named optimizers (checkpointed under `optim.<name>.…`). */
  optimizers(): Record<string, AnyOptimizer>;
  /**
   * Next-token logits `[B, T, vocab]` of int32 ids `[B, T]` (T ≤ context for the Transformer);
   * `packing` (the `positions` and `segments` of a packed batch, see `packedLineBatches`) for a
   * model that packs rows ({@link TEXT_PACKING_KINDS}).
   */
  logits(ids: Tensor, packing?: TextPacking): Tensor;
  /** One update on a batch; returns `{ loss }`, the mean cross-entropy per target in nats. */
  trainStep(batch: TextBatch): Promise<StepLosses>;
  /** Held-out nats and bits per character over every kept target of `batches` (each disposed). */
  evaluate(batches: Iterable<TextBatch>): Promise<TextEvaluation>;
  /** `n` generated texts (each starting with the prompt). */
  sample(n: number, options?: TextSampleOptions): Promise<string[]>;
}

/** The layout of a packed row: each position's place in its item and the item's index in the row. */
export interface TextPacking {
  /** int32 `[B, T]`, from 0 at each item's boundary token. */
  positions: Tensor;
  /** int32 `[B, T]`: attention stays within positions of equal value. */
  segments: Tensor;
}

/**
 * The text models that train on packed rows of items (several names per row, see
 * `packedLineBatches`): the Transformer, whose attention can be kept within each item. A recurrent
 * model would carry its state from one item into the next, so it takes one item per row.
 */
export const TEXT_PACKING_KINDS: readonly TextModelKind[] = ['charlm'];

/** The packing of a batch, when it has one. */
function batchPacking(batch: TextBatch): TextPacking | undefined {
  return batch.positions && batch.segments
    ? { positions: batch.positions, segments: batch.segments }
    : undefined;
}

/**
 * How sampling reaches a network: `start` feeds a prefix `[n, k]` and returns the logits of the
 * next token `[n, vocab]`; each `next` feeds one more token per row and returns the following
 * logits. `dispose` frees what it holds.
 */
interface Decoder {
  start(prefix: Int32Array, n: number): Tensor;
  next(tokens: Int32Array): Tensor;
  dispose(): void;
}

/**
 * What the two text models share: the optimiser and its schedule, the training step, held-out
 * evaluation and the sampling loop. A subclass gives the network ({@link TextLanguageModel.net}),
 * its logits and its {@link Decoder}.
 */
abstract class TextLanguageModel<C extends TextModelConfig, N extends AnyModule> implements TextModel {
  readonly noise: Generator;
  readonly net: N;
  readonly optimizer: AdamW;
  steps = 0;

  /** Checks `config` against `tokenizer`, builds the network from the noise stream, and AdamW. */
  protected constructor(
    readonly config: C,
    readonly tokenizer: CharTokenizer,
    build: (config: C, generator: Generator) => N,
  ) {
    const problem = configProblem(config, tokenizer);
    if (problem) throw new FluxionError(config.kind, problem);
    this.noise = noiseGenerator(config.seed);
    this.net = build(config, this.noise);
    // Weight decay on matrices only (weights and embeddings; not biases nor LayerNorm), as nanoGPT.
    const params = this.net.parameters();
    this.optimizer = new AdamW(
      [
        { params: params.filter((p) => p.rank >= 2), weightDecay: config.weightDecay },
        { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
      ],
      { lr: config.lr, beta2: 0.99 },
    );
  }

  abstract logits(ids: Tensor, packing?: TextPacking): Tensor;
  protected abstract decoder(): Decoder;

  modules(): Record<string, AnyModule> {
    return { net: this.net };
  }

  optimizers(): Record<string, AnyOptimizer> {
    return { adamw: this.optimizer };
  }

  protected checkIds(op: string, ids: Tensor): void {
    if (ids.dtype !== 'int32' || ids.rank !== 2)
      throw new FluxionError(op, `expected int32 ids [B, T], got ${fmtShape(ids.shape)} ${ids.dtype}`);
  }

  /** Cross-entropy of the batch's logits against its targets (padding ignored), as `reduction`. */
  private loss(batch: TextBatch, reduction: 'mean' | 'sum'): Tensor {
    return scope(() => {
      const logits = this.logits(batch.inputs, batchPacking(batch));
      const v = this.config.vocabSize;
      return crossEntropy(reshape(logits, [-1, v]), reshape(batch.targets, [-1]), {
        ignoreIndex: IGNORE_INDEX,
        reduction,
      });
    });
  }

  async trainStep(batch: TextBatch): Promise<StepLosses> {
    const lr = textLearningRate(this.config, this.steps);
    for (const group of this.optimizer.paramGroups) group.lr = lr;
    this.net.train();
    const loss = scope(() => {
      const l = this.loss(batch, 'mean');
      this.optimizer.zeroGrad();
      l.backward();
      if (this.config.clip > 0) clipGradNorm(this.net.parameters(), this.config.clip).dispose();
      this.optimizer.step();
      return l;
    });
    this.steps++;
    return readLosses({ loss });
  }

  /**
   * Held-out loss: the sum of −log p over every target that is not {@link IGNORE_INDEX}, divided by
   * their count, in evaluation mode (no dropout) and without gradients. Sums stay on the device and
   * are read once at the end. Each batch is disposed after use.
   */
  async evaluate(batches: Iterable<TextBatch>): Promise<TextEvaluation> {
    const wasTraining = this.net.training;
    this.net.eval();
    let total: Tensor | null = null;
    try {
      for (const batch of batches) {
        try {
          const part = noGrad(() =>
            scope(() => {
              const nll = this.loss(batch, 'sum');
              const count = sum(cast(notEqual(batch.targets, IGNORE_INDEX), nll.dtype));
              const both = stack([nll, count]);
              return total ? add(both, total) : both;
            }),
          );
          total?.dispose();
          total = part;
        } finally {
          disposeTextBatch(batch);
        }
      }
    } finally {
      this.net.train(wasTraining);
    }
    if (!total) throw new FluxionError('evaluate', 'no batches to evaluate');
    const [nll, count] = Array.from(await (total as Tensor).data(), Number);
    (total as Tensor).dispose();
    if (count === 0) throw new FluxionError('evaluate', 'the batches hold no targets (all padding)');
    return { nats: nll / count, bits: nll / count / Math.LN2, characters: count };
  }

  /**
   * Samples `n` texts: lines mode starts every row with the boundary token (then the prompt) and
   * stops a row at the next boundary token or after `length` characters; text mode continues the
   * prompt for exactly `length` characters. One draw per row and step from `generator` (the
   * model's noise stream by default), so a seeded generator gives the same texts every time.
   */
  async sample(n: number, options: TextSampleOptions = {}): Promise<string[]> {
    const op = `${this.config.kind}.sample`;
    if (!isPositiveInt(n)) throw new FluxionError(op, `n must be a positive integer, got ${n}`);
    const { temperature = 1, topK, generator = this.noise } = options;
    const lines = this.config.mode === 'lines';
    const boundary = this.tokenizer.boundaryId;
    let promptText = options.prompt;
    if (!lines && (promptText === undefined || promptText === '')) {
      if (!this.tokenizer.covers('\n'))
        throw new FluxionError(op, 'the vocabulary has no newline to start from: give a prompt');
      promptText = '\n';
    }
    const prompt = this.tokenizer.encode(promptText ?? '');
    const length = options.length ?? (lines ? this.config.context - 1 : 200);
    if (!(Number.isInteger(length) && length >= 0))
      throw new FluxionError(op, `length must be an integer ≥ 0, got ${length}`);
    const prefix = lines ? Int32Array.of(boundary!, ...prompt) : prompt;
    const rows: number[][] = Array.from({ length: n }, () => [...prompt]);
    const done = new Array<boolean>(n).fill(false);
    if (length === 0) return rows.map((ids) => this.tokenizer.decode(ids));
    const wasTraining = this.net.training;
    this.net.eval();
    const dec = this.decoder();
    let logits: Tensor | null = null;
    try {
      const tiled = new Int32Array(n * prefix.length);
      for (let r = 0; r < n; r++) tiled.set(prefix, r * prefix.length);
      logits = noGrad(() => dec.start(tiled, n));
      for (let step = 0; ; step++) {
        const drawn = sampleLogits(logits, { temperature, topK, generator });
        logits.dispose();
        logits = null;
        const ids = Int32Array.from(await drawn.data());
        drawn.dispose();
        for (let r = 0; r < n; r++) {
          if (done[r]) continue;
          if (lines && ids[r] === boundary) done[r] = true;
          else rows[r].push(ids[r]);
        }
        if (step === length - 1 || done.every(Boolean)) break;
        logits = noGrad(() => dec.next(ids));
      }
    } finally {
      logits?.dispose();
      dec.dispose();
      this.net.train(wasTraining);
    }
    return rows.map((ids) => this.tokenizer.decode(ids));
  }

  /** The backend of the parameters, where inputs are uploaded. */
  protected get backendName() {
    return this.net.parameters()[0].backend.name;
  }
}

// ——— charlm ———

/**
 * A GPT-style character Transformer: `logits = head(LN_f(blocks(drop(E[x] + P[t]))))` with causal
 * pre-LN {@link TransformerBlock}s, and `head.weight = E` when tied. Token embeddings are
 * initialised N(0, 0.02²) (GPT-2's; PyTorch's N(0, 1) would make tied logits start far from
 * uniform).
 *
 * Args:
 *   config: vocabSize, context (positions), dim, layers, heads, dropout, tie.
 *   generator: the stream of the initialisation and of the dropout masks.
 *
 * Shape:
 *   int32 `[B, T]`, T ≤ context → `[B, T, vocabSize]`.
 *
 * @example
 * ```ts
 * const net = new CharTransformer({ vocabSize: 27, context: 16, dim: 64, layers: 4, heads: 4, dropout: 0, tie: true }, new Generator(0));
 * net.forward(tensor([[0, 5, 13]], { dtype: 'int32' })).shape; // [1, 3, 27]
 * ```
 */
export class CharTransformer extends Module<[Tensor, TextPacking?]> {
  readonly tokens: Embedding;
  readonly positions: PositionalEmbedding;
  readonly drop: Dropout;
  readonly blocks: TransformerBlock[];
  readonly lnF: LayerNorm;
  readonly head: Dense;

  constructor(
    c: Pick<CharLmConfig, 'vocabSize' | 'context' | 'dim' | 'layers' | 'heads' | 'dropout' | 'tie'>,
    generator: Generator,
  ) {
    super();
    const random = { generator };
    this.tokens = new Embedding(c.vocabSize, c.dim, random);
    const w = this.tokens.weight;
    noGrad(() => scope(() => w.assign(mul(w, 0.02))));
    this.positions = new PositionalEmbedding(c.context, c.dim, random);
    this.drop = new Dropout(c.dropout, random);
    this.blocks = Array.from(
      { length: c.layers },
      () => new TransformerBlock(c.dim, c.heads, { ...random, causal: true, dropout: c.dropout }),
    );
    this.lnF = new LayerNorm(c.dim);
    this.head = new Dense(c.dim, c.vocabSize, { ...random, bias: !c.tie });
    if (c.tie) tieWeights(this.head, this.tokens);
  }

  /**
   * Logits `[B, T, vocab]` of ids `[B, T]`; with `packing`, each position's embedding is that of
   * its place in its item and attention stays within the item, so every item of a packed row gets
   * exactly the logits it would get alone.
   */
  forward(ids: Tensor, packing?: TextPacking): Tensor {
    return scope(() => {
      const embedded = this.tokens.forward(ids);
      let x = this.drop.forward(this.positions.forward(embedded, packing?.positions));
      const mask = packing ? segmentMask(packing.segments) : undefined;
      for (const block of this.blocks) x = block.forward(x, mask);
      return this.head.forward(this.lnF.forward(x));
    });
  }
}

/**
 * `charlm`: the autoregressive character Transformer ({@link CharTransformer}) with AdamW,
 * gradient clipping and the warm-up/cosine schedule. Sampling recomputes the last `context`
 * characters for every new one (no key/value cache: the windows are short).
 *
 * @example
 * ```ts
 * const ds = loadShakespeare();
 * const lm = new CharLm(textModelConfig('charlm', ds), ds.tokenizer);
 * await lm.sample(1, { prompt: 'ROMEO:', length: 100, temperature: 0.8 });
 * ```
 */
export class CharLm extends TextLanguageModel<CharLmConfig, CharTransformer> {
  constructor(config: CharLmConfig, tokenizer: CharTokenizer) {
    super(config, tokenizer, (c, generator) => new CharTransformer(c, generator));
  }

  logits(ids: Tensor, packing?: TextPacking): Tensor {
    this.checkIds('charlm', ids);
    if (ids.shape[1] > this.config.context)
      throw new FluxionError(
        'charlm',
        `ids ${fmtShape(ids.shape)} are longer than the context of ${this.config.context} positions`,
      );
    return this.net.forward(ids, packing);
  }

  protected decoder(): Decoder {
    const context = this.config.context;
    const backend = this.backendName;
    let n = 0;
    let rows: number[][] = [];
    const run = (): Tensor =>
      scope(() => {
        const t = Math.min(context, rows[0].length);
        const window = new Int32Array(n * t);
        for (const [r, row] of rows.entries()) window.set(row.slice(row.length - t), r * t);
        const logits = this.net.forward(tensor(window, [n, t], { dtype: 'int32', backend }));
        return reshape(slice(logits, null, t - 1), [n, this.config.vocabSize]);
      });
    return {
      start: (prefix, count) => {
        n = count;
        const k = prefix.length / count;
        rows = Array.from({ length: n }, (_, r) => Array.from(prefix.subarray(r * k, (r + 1) * k)));
        return run();
      },
      next: (tokens) => {
        for (const [r, row] of rows.entries()) row.push(tokens[r]);
        return run();
      },
      dispose: () => {},
    };
  }
}

// ——— charrnn ———

/**
 * A character RNN: `logits = head(RNN(drop(E[x])))` with a multi-layer {@link GRU} or
 * {@link LSTM} (batch-first, inter-layer dropout) and a Dense output layer.
 *
 * Args:
 *   config: vocabSize, dim (embedding width), hidden, layers, cell, dropout.
 *   generator: the stream of the initialisation and of the dropout masks.
 *
 * Shape:
 *   int32 `[B, T]` (and optional state) → `[[B, T, vocabSize], final state]`.
 *
 * @example
 * ```ts
 * const net = new CharRnnNet({ vocabSize: 27, dim: 32, hidden: 128, layers: 1, cell: 'gru', dropout: 0 }, new Generator(0));
 * const [logits, state] = net.forward(tensor([[0, 5]], { dtype: 'int32' })); // [1, 2, 27]
 * net.forward(tensor([[7]], { dtype: 'int32' }), state); // continues from the state
 * ```
 */
export class CharRnnNet extends Module<[Tensor, RnnState?], [Tensor, RnnState]> {
  readonly tokens: Embedding;
  readonly drop: Dropout;
  readonly rnn: GRU | LSTM;
  readonly head: Dense;

  constructor(
    c: Pick<CharRnnConfig, 'vocabSize' | 'dim' | 'hidden' | 'layers' | 'cell' | 'dropout'>,
    generator: Generator,
  ) {
    super();
    const random = { generator };
    this.tokens = new Embedding(c.vocabSize, c.dim, random);
    this.drop = new Dropout(c.dropout, random);
    const options = { ...random, numLayers: c.layers, dropout: c.dropout };
    this.rnn = c.cell === 'lstm' ? new LSTM(c.dim, c.hidden, options) : new GRU(c.dim, c.hidden, options);
    this.head = new Dense(c.hidden, c.vocabSize, random);
  }

  forward(ids: Tensor, state?: RnnState): [Tensor, RnnState] {
    return scope(() => {
      const x = this.drop.forward(this.tokens.forward(ids));
      const [out, next] =
        this.rnn instanceof LSTM
          ? this.rnn.forward(x, state as [Tensor, Tensor] | undefined)
          : this.rnn.forward(x, state as Tensor | undefined);
      return [this.head.forward(this.drop.forward(out)), next];
    });
  }
}

/** The state of a {@link CharRnnNet}: h `[layers, B, hidden]` (GRU), or h and c (LSTM). */
export type RnnState = Tensor | [Tensor, Tensor];

function disposeState(s: RnnState | undefined): void {
  if (!s) return;
  if (Array.isArray(s)) for (const t of s) t.dispose();
  else s.dispose();
}

/**
 * `charrnn`: a character GRU or LSTM ({@link CharRnnNet}) trained on the same windows as `charlm`
 * (its `context` is only the training row length: it samples any length, carrying its state).
 *
 * @example
 * ```ts
 * const ds = loadNames();
 * const rnn = new CharRnn(textModelConfig('charrnn', ds, { cell: 'lstm' }), ds.tokenizer);
 * ```
 */
export class CharRnn extends TextLanguageModel<CharRnnConfig, CharRnnNet> {
  constructor(config: CharRnnConfig, tokenizer: CharTokenizer) {
    super(config, tokenizer, (c, generator) => new CharRnnNet(c, generator));
  }

  logits(ids: Tensor, packing?: TextPacking): Tensor {
    this.checkIds('charrnn', ids);
    if (packing)
      throw new FluxionError(
        'charrnn',
        'a recurrent model takes one item per row: packed rows would carry its state from one item into the next',
      );
    return scope(() => {
      const [logits, state] = this.net.forward(ids);
      disposeState(state);
      return logits;
    });
  }

  protected decoder(): Decoder {
    const backend = this.backendName;
    let state: RnnState | undefined;
    let n = 0;
    const feed = (ids: Int32Array, k: number): Tensor => {
      const [last, next] = scope(() => {
        const [logits, s] = this.net.forward(tensor(ids, [n, k], { dtype: 'int32', backend }), state);
        return [reshape(slice(logits, null, k - 1), [n, this.config.vocabSize]), s] as const;
      });
      disposeState(state);
      state = next;
      return last;
    };
    return {
      start: (prefix, count) => {
        n = count;
        return feed(prefix, prefix.length / count);
      },
      next: (tokens) => feed(tokens, 1),
      dispose: () => disposeState(state),
    };
  }
}

/**
 * A text model from its full config and tokenizer (what a checkpoint holds: `config` and
 * `tokenizer.toJSON()`); the config is checked against the tokenizer.
 *
 * @example
 * ```ts
 * const model = createTextModel(meta.config, CharTokenizer.fromJSON(meta.tokenizer));
 * ```
 */
export function createTextModel(config: TextModelConfig, tokenizer: CharTokenizer): TextModel {
  if (config.kind === 'charlm') return new CharLm(config, tokenizer);
  if (config.kind === 'charrnn') return new CharRnn(config, tokenizer);
  throw new FluxionError(
    'createTextModel',
    `unknown text model '${(config as { kind: unknown }).kind}'; expected one of ${TEXT_MODEL_KINDS.join(', ')}`,
  );
}
