/**
 * The `fluxion` commands for the text models (`charlm`, `charrnn`, and the latent models
 * `textvae`, `textgan`, which take one item per line only): training on names, tiny Shakespeare
 * or a user's UTF-8 file, sampling text from a checkpoint, and evaluating it (held-out nats and
 * bits per character, or −ELBO and IWAE for textvae; the share of new and of distinct samples and,
 * with `--judge`, their fluency, beside real held-out text). Training, resume and checkpoints work
 * as for the image models (`cli-common.ts`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FluxionError, Generator } from '@fluxion/tensor';
import {
  type CheckpointMeta,
  loadAnyTextCheckpoint,
  loadTextCheckpoint,
  loadTextLatentCheckpoint,
  readCheckpointMeta,
  saveCheckpoint,
  writeFileAtomically,
} from './checkpoint.js';
import type { EvalValues, SampleValues, TrainValues } from './cli.js';
import {
  chooseBackend,
  disposeModel,
  numberOption,
  refuseOptions,
  savedRun,
  smoothHistory,
  startTraining,
  trainPrologue,
  UsageError,
} from './cli-common.js';
import {
  CharTokenizer,
  loadNames,
  loadShakespeare,
  loadTextFile,
  type TextDataset,
  type TextMode,
} from './data/text.js';
import { encodeLines, sequentialLineBatches, sequentialWindowBatches } from './data/text-batches.js';
import { lossCurve } from './image/grid.js';
import { pictureGenerator } from './models/model.js';
import {
  createTextLatentModel,
  TextGan,
  type TextLatentModelConfig,
  type TextLatentModelOf,
  textLatentConfig,
} from './models/text-gan.js';
import {
  createTextModel,
  type TextModel,
  type TextModelConfig,
  type TextModelKind,
  type TextModelOverrides,
  textModelConfig,
} from './models/text-lm.js';
import { TEXT_LATENT_KINDS, type TextLatentKind, TextVae } from './models/text-vae.js';
import { fitText, heldOutTextBatches, packsRows, textStepsPerEpoch } from './train.js';

/** The options of `fluxion sample` for a text model (part of its `--help`). */
export const TEXT_SAMPLE_OPTIONS = `  --n N              number of samples (default 20 for lines, 3 for one long text)
  --temperature X    softmax temperature, 0 (argmax) to 100 (default 1)
  --top-k K          draw among the K most likely characters only (default all)
  --prompt TEXT      the start of every sample (characters of the model's vocabulary; charlm
                     and charrnn only: textvae and textgan decode whole items from a latent)
  --length N         characters after the prompt: at most (lines; default the longest item
                     trained on) or exactly (one long text; default 200)
  --seed N           the sampling stream (default: the stream of the per-epoch sample files)
  --interpolate A,B  textvae and textgan: decode --n points (default 7) on the line between the
                     codes of the items A and B, greedily, from A's reconstruction to B's
  --out FILE         also write the samples to FILE`;

/** The options of `fluxion eval` for a text model (part of its `--help`). */
export const TEXT_EVAL_OPTIONS = `  --samples N        samples drawn for the statistics (default 1000)
  --temperature X    their softmax temperature (default 1)
  --iwae-k K         importance samples of textvae's IWAE bound (default 50)
  --judge DIR        a charlm checkpoint trained on the same data's training split (the same
                     tokenizer): it scores the fluency of the samples and of real held-out items

Prints the held-out loss in nats and bits per character (on the held-out part of the data the
model was trained on; for textvae −ELBO and the IWAE bound with the KL per item, for textgan its
autoencoder's teacher-forced reconstruction loss, which is not a likelihood), then for the samples
and, beside them, for as many real held-out items: the share that is new (not an item of the
training set; for one long text, its lines), the share of distinct ones and, with --judge, the
judge's nats per character (fluency: lower reads more like the data).`;

/** Usage texts of the text models' commands. */
export const TEXT_USAGE = {
  train: `usage: fluxion train <charlm|charrnn|textvae|textgan> [--data names|shakespeare|FILE] [options]

  --data NAME|FILE   names (32,033 given names, one per line; 1,000 held out), shakespeare (tiny
                     Shakespeare, one long text; the last 10 % held out), or a UTF-8 file of your
                     own (default names)
  --mode lines|text  how FILE is read: one item per line (default), or one long text
  --epochs N         epochs to train (default 5); the learning rate decays over them
  --batch-size N     items or windows per batch (default 64)
  --lr X             peak learning rate (default: the model's for the data)
  --seed N           seed of initialisation, dropout and data order (default 0)
  --context N        positions per training row: the window of one long text (default 64), at
                     least the longest line + 1 for lines (the default)
  --dim N            embedding width (default 64 for lines, 128 for text; charrnn 32 / 64;
                     textvae, textgan 32)
  --layers N         Transformer blocks or recurrent layers (charlm, charrnn)
  --heads N          attention heads (charlm; dim must be a multiple)
  --hidden N         hidden size (charrnn; textvae and textgan: their GRUs, default 128)
  --cell gru|lstm    recurrent cell (charrnn; default gru)
  --latent N         latent size (textvae, default 16; textgan, default 32)
  --dropout X        dropout probability while training, 0 to 0.99 (default 0); for textvae and
                     textgan, character dropout on the decoder's inputs (default 0.25 / 0)
  --kl-warmup N      steps over which textvae's KL weight rises to 1 (default 500)
  --warmup N         steps of linear learning-rate warm-up (default 100)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --out DIR          where the checkpoint and files go (default out/<model>)
  --resume           continue the run in --out with its own settings (any of the flags above
                     given with another value is refused; --epochs may be raised, the schedule
                     stays the one planned); bit-exact with the uninterrupted run
  --max-steps N      stop after N steps (a short run; the schedule is still planned for --epochs)
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text

textvae and textgan model one item per line: names or a FILE read as lines (--data shakespeare
and --mode text are refused). textgan is an adversarially regularised autoencoder: a WGAN-GP in
the code space of a GRU sentence autoencoder, its generated codes decoded to characters.

After every epoch: the held-out nats and bits per character (printed, and kept in the checkpoint;
−ELBO for textvae, the autoencoder's reconstruction loss for textgan),
the checkpoint (model.safetensors, with the tokenizer), samples-epoch-<E>.txt (drawn from a stream
of their own, so writing them leaves the run exact) and loss.png. Numbers are decimal; every
argument is checked before a backend starts; a NaN or infinite loss stops the run with exit code 1
and keeps the last checkpoint.`,
};

/** Options of `fluxion train` that a text model does not take. */
const NOT_TEXT = ['length', 'model-size', 'unconditional'];

/** Options of `fluxion train` that each text kind does not take (besides {@link NOT_TEXT}). */
const NOT_OF_KIND: Record<AnyTextKind, string[]> = {
  charlm: ['hidden', 'cell'],
  charrnn: ['heads'],
  textvae: ['layers', 'heads', 'cell'],
  textgan: ['layers', 'heads', 'cell', 'kl-warmup'],
};

/** Any text model kind: a language model (charlm, charrnn) or a latent model (textvae, textgan). */
export type AnyTextKind = TextModelKind | TextLatentKind;
/** Any text model. */
type AnyTextModel = TextModel | TextLatentModelOf;
/** Any text model's config. */
type AnyTextConfig = TextModelConfig | TextLatentModelConfig;

/** Whether `kind` is a latent text model (textvae, textgan: one item per line, no prompt). */
function isLatentKind(kind: unknown): kind is TextLatentKind {
  return TEXT_LATENT_KINDS.includes(kind as never);
}

/** What the held-out figure of each kind is, for the printed reports. */
function heldOutName(kind: string): string {
  if (kind === 'textvae') return 'held-out −ELBO';
  if (kind === 'textgan')
    return 'held-out reconstruction loss (teacher-forced autoencoder, not a likelihood)';
  return 'held-out';
}

/** The built-in text sets. */
const BUILT_IN: Record<string, () => TextDataset> = { names: loadNames, shakespeare: loadShakespeare };

/** Lines longer than this in a file read by default (lines mode) suggest one long text. */
const LONGEST_DEFAULT_LINE = 256;

/**
 * The data of `--data` (and `--mode` for a file); any problem with it (unknown name, missing or
 * bad file, a mode for a built-in set) is a {@link UsageError} raised before a backend starts.
 */
function loadTextData(data: string, mode: string | undefined): TextDataset {
  if (Object.hasOwn(BUILT_IN, data)) {
    if (mode !== undefined)
      throw new UsageError(
        `--mode applies to --data FILE; ${data} has its own (${data === 'names' ? 'lines' : 'text'})`,
      );
    return BUILT_IN[data]();
  }
  if (mode !== undefined && mode !== 'lines' && mode !== 'text')
    throw new UsageError(`--mode must be lines or text, got '${mode}'`);
  if (!existsSync(data))
    throw new UsageError(
      `--data must be names, shakespeare or a UTF-8 text file; '${data}' is none (no such file)`,
    );
  let ds: TextDataset;
  try {
    ds = loadTextFile(data, { mode: (mode ?? 'lines') as TextMode });
  } catch (e) {
    if (e instanceof FluxionError) throw new UsageError(`--data ${data}: ${e.message}`);
    throw e;
  }
  if (mode === undefined && ds.mode === 'lines') {
    const longest = Math.max(...[...ds.train, ...ds.test].map((l) => [...l].length));
    if (longest > LONGEST_DEFAULT_LINE)
      throw new UsageError(
        `--data ${data}: its longest line has ${longest} characters; for one long text (a book, a play) pass --mode text, or --mode lines to train on lines this long`,
      );
  }
  return ds;
}

/** What a text run records in `run` besides batch size, epochs and data. */
interface TextRun extends Record<string, unknown> {
  batchSize: number;
  epochs: number;
  data: string;
  /** The mode a file was read in (absent for the built-in sets). */
  mode?: TextMode;
}

/** The data of a checkpoint's run, checked against the checkpoint's tokenizer. */
function dataOfRun(meta: CheckpointMeta, dir: string): TextDataset {
  const { data } = savedRun(meta, dir);
  const mode = meta.run.mode as string | undefined;
  const ds = loadTextData(data, Object.hasOwn(BUILT_IN, data) ? undefined : (mode ?? 'lines'));
  checkVocabulary(ds, meta, dir);
  return ds;
}

/** The data's tokenizer must be the checkpoint's: an error when the file changed since training. */
function checkVocabulary(ds: TextDataset, meta: CheckpointMeta, dir: string): void {
  if (JSON.stringify(ds.tokenizer.toJSON()) !== JSON.stringify(meta.tokenizer))
    throw new FluxionError(
      'fluxion',
      `the vocabulary of --data ${ds.name} (${ds.tokenizer.vocabSize} tokens) differs from the checkpoint's in '${dir}': the data changed since the run was trained`,
    );
}

/**
 * `fluxion train charlm|charrnn|textvae|textgan`: every argument checked (against the checkpoint
 * with `--resume`) before the data's model is built or a backend starts.
 */
export async function trainText(kind: AnyTextKind, values: TrainValues): Promise<void> {
  const latent = isLatentKind(kind);
  refuseOptions(values, latent ? NOT_TEXT : [...NOT_TEXT, 'latent', 'kl-warmup'], `a text model (${kind})`);
  refuseOptions(values, NOT_OF_KIND[kind], `a ${kind}`);
  if (values.cell !== undefined && values.cell !== 'gru' && values.cell !== 'lstm')
    throw new UsageError(`--cell must be gru or lstm, got '${values.cell}'`);
  if (latent && values.mode !== undefined && values.mode !== 'lines')
    throw new UsageError(`--mode ${values.mode}: a ${kind} models one item per line (--mode lines)`);
  const sizes = {
    context: numberOption(values, 'context'),
    dim: numberOption(values, 'dim'),
    layers: numberOption(values, 'layers'),
    heads: numberOption(values, 'heads'),
    hidden: numberOption(values, 'hidden'),
    cell: values.cell as 'gru' | 'lstm' | undefined,
    latent: numberOption(values, 'latent'),
    dropout: numberOption(values, 'dropout'),
    warmup: numberOption(values, 'warmup'),
    'kl-warmup': numberOption(values, 'kl-warmup'),
  };
  const given = {
    'batch-size': numberOption(values, 'batch-size'),
    lr: numberOption(values, 'lr'),
    seed: numberOption(values, 'seed'),
    data: values.data,
    mode: values.mode,
    ...sizes,
  };
  const plan = trainPrologue(kind, values, {
    given,
    settings: (meta, run) => {
      const c = meta.config as AnyTextConfig;
      const lm = c.kind === 'charlm' || c.kind === 'charrnn' ? c : undefined;
      const lat = c.kind === 'textvae' || c.kind === 'textgan' ? c : undefined;
      return {
        data: run.data,
        mode: meta.run.mode as string | undefined,
        context: c.context,
        dim: c.dim,
        layers: lm?.layers,
        heads: c.kind === 'charlm' ? c.heads : undefined,
        hidden: c.kind === 'charlm' ? undefined : c.hidden,
        cell: c.kind === 'charrnn' ? c.cell : undefined,
        latent: lat?.latent,
        dropout: lm ? lm.dropout : lat?.wordDropout,
        warmup: c.warmup,
        'kl-warmup': c.kind === 'textvae' ? c.klWarmup : undefined,
      };
    },
    unset: { mode: 'the data set’s own' },
    batchSize: 64,
    check: () => {
      if (latent && (given.data ?? 'names') === 'shakespeare')
        throw new UsageError(
          `--data shakespeare is one long text; a ${kind} models one item per line (names, or a FILE of lines)`,
        );
    },
  });
  const { out, resumed, saved, epochs, batchSize } = plan;
  const data = given.data ?? saved?.data ?? 'names';
  const ds = loadTextData(data, given.mode ?? saved?.mode);
  if (latent && ds.mode !== 'lines')
    throw new UsageError(`--data ${data} is one long text; a ${kind} models one item per line`);
  if (resumed) checkVocabulary(ds, resumed.meta, out);

  // The config, checked before a backend starts (the window against the data, heads against dim).
  let config: AnyTextConfig;
  try {
    if (resumed) config = resumed.meta.config as AnyTextConfig;
    else if (latent) {
      const { dropout, 'kl-warmup': klWarmup, cell: _, layers: __, heads: ___, ...rest } = sizes;
      const overrides: Record<string, number> = { seed: given.seed ?? 0 };
      for (const [key, v] of Object.entries({ lr: given.lr, ...rest, wordDropout: dropout, klWarmup }))
        if (v !== undefined) overrides[key] = v;
      config = textLatentConfig(kind, ds, overrides);
    } else {
      const { latent: _, 'kl-warmup': __, ...lmSizes } = sizes;
      const overrides: TextModelOverrides = { seed: given.seed ?? 0 };
      for (const [key, v] of Object.entries({ lr: given.lr, ...lmSizes }))
        if (v !== undefined) (overrides as Record<string, unknown>)[key] = v;
      config = textModelConfig(kind, ds, overrides);
    }
  } catch (e) {
    if (e instanceof FluxionError) throw new UsageError(`--context: ${e.message}`);
    throw e;
  }
  if (config.kind === 'charlm' && config.dim % config.heads !== 0)
    throw new UsageError(`--dim ${config.dim} must be a multiple of --heads ${config.heads}`);
  const stepsPerEpoch = textStepsPerEpoch(ds, batchSize, config.context, { packed: packsRows(kind, ds) });
  if (stepsPerEpoch === 0)
    throw new UsageError(`--batch-size ${batchSize} exceeds the ${ds.train.length} training items`);
  // The cosine decay spans the planned run (--max-steps and --minutes interrupt it, not re-plan it).
  if (!resumed) config = { ...config, decaySteps: Math.max(0, epochs * stepsPerEpoch - config.warmup) };
  const epochMetrics: Record<string, number[]> = { heldOutNats: [] };
  const items =
    ds.mode === 'lines' ? `${ds.train.length} items` : `${ds.tokenizer.encode(ds.train).length} characters`;
  const run: TextRun = {
    batchSize,
    epochs,
    data,
    ...(Object.hasOwn(BUILT_IN, data) ? {} : { mode: ds.mode }),
  };
  const settled = config;
  await startTraining(plan, {
    stepsPerEpoch,
    load: (dir): { model: AnyTextModel; meta: CheckpointMeta } => {
      const loaded = loadAnyTextCheckpoint(dir);
      Object.assign(epochMetrics, loaded.meta.epochMetrics);
      return loaded;
    },
    create: () =>
      settled.kind === 'textvae' || settled.kind === 'textgan'
        ? createTextLatentModel(settled, ds.tokenizer)
        : createTextModel(settled, ds.tokenizer),
    data: ds.name,
    details: `${items}, vocabulary ${ds.tokenizer.vocabSize}, window ${config.context}`,
    fit: (model, { onEpoch, ...options }) =>
      fitText(model, ds, {
        ...options,
        onEpoch: async (position, history, heldOut) => {
          if (heldOut) {
            epochMetrics.heldOutNats.push(heldOut.nats);
            console.log(
              `epoch ${position.epoch}: ${heldOutName(kind)} ${heldOut.nats.toFixed(4)} nats/char (${heldOut.bits.toFixed(4)} bits/char)`,
            );
          }
          await onEpoch(position, history);
        },
      }),
    snapshot: async (model, position, history) => {
      await saveCheckpoint(out, model, position, history, run, epochMetrics);
      const samples = await model.sample(ds.mode === 'lines' ? 20 : 3, {
        generator: pictureGenerator(model.config.seed),
      });
      writeFileAtomically(join(out, `samples-epoch-${position.epoch}.txt`), formatSamples(samples, ds.mode));
      writeFileAtomically(join(out, 'loss.png'), lossCurve(smoothHistory(history)));
    },
  });
}

/** Samples as a text file: one per line (lines), or separated by a rule (one long text). */
function formatSamples(samples: readonly string[], mode: TextMode): string {
  return mode === 'lines' ? `${samples.join('\n')}\n` : `${samples.join('\n\n———\n\n')}\n`;
}

/** The sampling options of `fluxion sample` / `eval`, checked against the checkpoint's tokenizer. */
function samplingOptions(values: SampleValues | EvalValues, meta: CheckpointMeta) {
  const tokenizer = CharTokenizer.fromJSON(meta.tokenizer);
  const temperature = numberOption(values, 'temperature');
  const topK = 'top-k' in values ? numberOption(values, 'top-k') : undefined;
  if (topK !== undefined && topK > tokenizer.vocabSize)
    throw new UsageError(
      `--top-k must be at most the vocabulary's ${tokenizer.vocabSize} tokens, got ${topK}`,
    );
  const prompt = 'prompt' in values ? values.prompt : undefined;
  if (prompt !== undefined && isLatentKind(meta.config.kind))
    throw new UsageError(
      `--prompt: a ${meta.config.kind} generates whole items from its latent space and takes no prompt`,
    );
  if (prompt !== undefined) {
    try {
      tokenizer.encode(prompt);
    } catch (e) {
      throw new UsageError(
        `--prompt holds a character outside the model's vocabulary: ${(e as Error).message}`,
      );
    }
  }
  return { tokenizer, temperature, topK, prompt };
}

/** `fluxion sample` for a text model: prints the samples (and writes them with `--out`). */
export async function textSample(values: SampleValues, meta: CheckpointMeta): Promise<void> {
  const dir = values.checkpoint as string;
  const kind = meta.config.kind;
  if (values.label !== undefined)
    throw new UsageError(`--label applies to conditional image and audio models; a ${kind} has no labels`);
  const config = meta.config as AnyTextConfig;
  if (values.interpolate !== undefined) return textInterpolate(values, meta, values.interpolate);
  const n = numberOption(values, 'n') ?? (config.mode === 'lines' ? 20 : 3);
  const length = numberOption(values, 'length');
  const seed = numberOption(values, 'seed');
  const { temperature, topK, prompt } = samplingOptions(values, meta);
  await chooseBackend(values.backend);
  const { model } = loadAnyTextCheckpoint(dir);
  const generator = seed === undefined ? pictureGenerator(config.seed) : new Generator(seed);
  let samples: string[];
  try {
    samples = await model.sample(n, { temperature, topK, length, generator, ...(prompt ? { prompt } : {}) });
  } finally {
    disposeModel(model);
  }
  const text = formatSamples(samples, config.mode);
  console.log(text.trimEnd());
  if (values.out) {
    writeFileAtomically(values.out, text);
    console.error(`wrote ${n} samples of ${dir} to ${values.out}`);
  }
}

/**
 * `fluxion sample --interpolate A,B` for a latent text model: `--n` items (default 7) decoded
 * greedily along the line between the codes of A and B ({@link TextVae.interpolate}), printed one
 * per line (and written with `--out`). Every argument is checked before a backend starts.
 */
async function textInterpolate(values: SampleValues, meta: CheckpointMeta, pair: string): Promise<void> {
  const dir = values.checkpoint as string;
  const kind = meta.config.kind;
  if (!isLatentKind(kind))
    throw new UsageError(
      `--interpolate needs a latent model (textvae, textgan); ${kind} has no latent space`,
    );
  refuseOptions(
    values,
    ['temperature', 'top-k', 'prompt', 'length', 'seed'],
    '--interpolate (greedy decoding)',
  );
  const ends = pair.split(',');
  if (ends.length !== 2 || ends.some((e) => e === ''))
    throw new UsageError(
      `--interpolate takes two items separated by a comma (e.g. emma,olivia), got '${pair}'`,
    );
  const tokenizer = CharTokenizer.fromJSON(meta.tokenizer);
  for (const item of ends) {
    try {
      tokenizer.encode(item);
    } catch (e) {
      throw new UsageError(
        `--interpolate: '${item}' holds a character outside the model's vocabulary: ${(e as Error).message}`,
      );
    }
    if (item.length + 1 > (meta.config as AnyTextConfig).context)
      throw new UsageError(
        `--interpolate: '${item}' is longer than the model's items (at most ${(meta.config as AnyTextConfig).context - 1} characters)`,
      );
  }
  const steps = numberOption(values, 'n') ?? 7;
  if (steps < 2) throw new UsageError(`--n must be at least 2 with --interpolate (both ends), got ${steps}`);
  await chooseBackend(values.backend);
  const { model } = loadTextLatentCheckpoint(dir);
  let items: string[];
  try {
    items = await model.interpolate(ends[0], ends[1], steps);
  } finally {
    disposeModel(model);
  }
  const text = formatSamples(items, 'lines');
  console.log(text.trimEnd());
  if (values.out) {
    writeFileAtomically(values.out, text);
    console.error(`wrote ${steps} interpolated items of ${dir} to ${values.out}`);
  }
}

/**
 * The share of new and of distinct items among samples: for lines each sample is an item, new
 * when it is not a training item; for one long text the items are the samples' non-empty lines,
 * new when no line of the training text equals them.
 *
 * @example
 * ```ts
 * textSampleStats(['emma', 'zorblax', 'zorblax'], ds); // { shareNew: 0.667, shareDistinct: 0.667, items: 3 }
 * ```
 */
export function textSampleStats(
  samples: readonly string[],
  ds: TextDataset,
): { shareNew: number; shareDistinct: number; items: number } {
  const linesOf = (text: string) => text.split(/\r?\n/).filter((l) => l !== '');
  const items = ds.mode === 'lines' ? samples : samples.flatMap(linesOf);
  const training = new Set(ds.mode === 'lines' ? ds.train : linesOf(ds.train));
  const count = Math.max(1, items.length);
  return {
    shareNew: items.filter((s) => !training.has(s)).length / count,
    shareDistinct: new Set(items).size / count,
    items: items.length,
  };
}

/** The first `n` real held-out items (lines), or the held-out text cut in `n` pieces of `length` characters. */
function realHeldOut(ds: TextDataset, n: number, length: number): string[] {
  if (ds.mode === 'lines') return ds.test.slice(0, n);
  const chars = [...ds.test];
  const pieces: string[] = [];
  for (let i = 0; i < n && (i + 1) * length <= chars.length; i++)
    pieces.push(chars.slice(i * length, (i + 1) * length).join(''));
  return pieces;
}

/** The checked `--judge` checkpoint of `fluxion eval` (a charlm of the same vocabulary), or undefined. */
function readJudge(
  values: EvalValues,
  meta: CheckpointMeta,
): { dir: string; meta: CheckpointMeta } | undefined {
  const dir = values.judge;
  if (dir === undefined) return undefined;
  let judge: CheckpointMeta;
  try {
    judge = readCheckpointMeta(dir);
  } catch (e) {
    throw new UsageError(`--judge ${dir}: ${(e as Error).message}`);
  }
  if (judge.config.kind !== 'charlm')
    throw new UsageError(`--judge ${dir} holds a ${judge.config.kind}; the judge of fluency is a charlm`);
  const own = CharTokenizer.fromJSON(meta.tokenizer);
  if (JSON.stringify(judge.tokenizer) !== JSON.stringify(meta.tokenizer))
    throw new UsageError(
      `--judge ${dir}: its tokenizer (${CharTokenizer.fromJSON(judge.tokenizer).vocabSize} tokens) differs from the checkpoint's (${own.vocabSize} tokens); train the judge on the same data`,
    );
  const config = judge.config as TextModelConfig;
  const ours = meta.config as AnyTextConfig;
  if (config.mode !== ours.mode)
    throw new UsageError(
      `--judge ${dir} was trained in '${config.mode}' mode, the checkpoint in '${ours.mode}'`,
    );
  if (ours.mode === 'lines' && config.context < ours.context)
    throw new UsageError(
      `--judge ${dir}: its window of ${config.context} positions is shorter than the checkpoint's ${ours.context}, so it cannot score the longest samples`,
    );
  return { dir, meta: judge };
}

/**
 * Fluency: the nats per character that `judge` (a charlm trained on the training split) assigns to
 * `texts`: items as line batches, or (one long text) the texts joined by newlines in windows.
 */
async function fluency(judge: TextModel, texts: readonly string[], mode: TextMode): Promise<number> {
  const { tokenizer, config } = judge;
  if (mode === 'lines') {
    const layout = { boundaryId: tokenizer.boundaryId as number, window: config.context };
    return (await judge.evaluate(sequentialLineBatches(encodeLines(tokenizer, texts), layout, 256))).nats;
  }
  const joined = tokenizer.chars.includes('\n') ? texts.join('\n') : texts.join('');
  return (await judge.evaluate(sequentialWindowBatches(tokenizer.encode(joined), config.context, 64))).nats;
}

/**
 * `fluxion eval` for a text model: held-out nats and bits per character (−ELBO and IWAE for
 * textvae; the autoencoder's reconstruction loss for textgan), sample statistics and, with
 * `--judge`, the fluency of samples and of real held-out items.
 */
export async function textEval(values: EvalValues, meta: CheckpointMeta): Promise<void> {
  const dir = values.checkpoint as string;
  const kind = meta.config.kind;
  if (kind !== 'textvae')
    refuseOptions(values, ['iwae-k'], `a text model (${kind}; only textvae has an IWAE bound)`);
  if (values.data !== undefined)
    throw new UsageError(`--data: a ${kind} is evaluated on the held-out part of the data it was trained on`);
  const count = numberOption(values, 'samples') ?? 1000;
  const iwaeK = numberOption(values, 'iwae-k') ?? 50;
  const { temperature } = samplingOptions(values, meta);
  const ds = dataOfRun(meta, dir);
  const judgeMeta = readJudge(values, meta);
  await chooseBackend(values.backend);
  const { model } = loadAnyTextCheckpoint(dir);
  let judge: TextModel | undefined;
  const report: [string, string][] = [];
  try {
    const config = model.config;
    const batches = heldOutTextBatches(ds, model.tokenizer, config.context);
    if (model instanceof TextVae) {
      const e = await model.evaluate(batches, { iwaeK });
      report.push(
        ['held-out −ELBO nats/char', e.nats.toFixed(4)],
        ['held-out −ELBO bits/char', e.bits.toFixed(4)],
        [`held-out IWAE nats/char (k = ${iwaeK})`, (e.iwae as number).toFixed(4)],
        [`held-out IWAE bits/char (k = ${iwaeK})`, ((e.iwae as number) / Math.LN2).toFixed(4)],
        ['held-out reconstruction nats/char', e.recon.toFixed(4)],
        ['held-out KL nats/item', e.kl.toFixed(4)],
        ['held-out −ELBO nats/item', e.natsPerItem.toFixed(4)],
        ['held-out characters', String(e.characters)],
      );
    } else if (model instanceof TextGan) {
      const g = await model.evaluate(batches);
      report.push(
        [
          'held-out reconstruction nats/char (teacher-forced autoencoder; not a likelihood)',
          g.nats.toFixed(4),
        ],
        ['held-out reconstruction bits/char', g.bits.toFixed(4)],
        ['held-out reconstruction accuracy', g.accuracy.toFixed(4)],
        ['held-out items decoded exactly', g.exact.toFixed(4)],
        ['critic Wasserstein estimate', g.wasserstein.toFixed(4)],
        ['held-out characters', String(g.characters)],
      );
    } else {
      const e = await model.evaluate(batches);
      report.push(
        ['held-out nats/char', e.nats.toFixed(4)],
        ['held-out bits/char', e.bits.toFixed(4)],
        ['held-out characters', String(e.characters)],
      );
    }
    const generator = pictureGenerator(config.seed);
    const length = ds.mode === 'lines' ? undefined : 200;
    const samples: string[] = [];
    for (let done = 0; done < count; done += 250)
      samples.push(...(await model.sample(Math.min(250, count - done), { temperature, generator, length })));
    const realItems = realHeldOut(ds, count, length ?? 0);
    const ours = textSampleStats(samples, ds);
    const real = textSampleStats(realItems, ds);
    judge = judgeMeta ? loadTextCheckpoint(judgeMeta.dir).model : undefined;
    const fluent = judge
      ? { ours: await fluency(judge, samples, ds.mode), real: await fluency(judge, realItems, ds.mode) }
      : undefined;
    report.push(
      [`samples (${count}${ds.mode === 'text' ? ` × ${length} characters, ${ours.items} lines` : ''})`, ''],
      ['  share new', ours.shareNew.toFixed(3)],
      ['  share distinct', ours.shareDistinct.toFixed(3)],
      ...(fluent ? ([['  fluency (judge nats/char)', fluent.ours.toFixed(4)]] as [string, string][]) : []),
      [`real held-out (${real.items}${ds.mode === 'text' ? ' lines' : ''})`, ''],
      ['  share new', real.shareNew.toFixed(3)],
      ['  share distinct', real.shareDistinct.toFixed(3)],
      ...(fluent ? ([['  fluency (judge nats/char)', fluent.real.toFixed(4)]] as [string, string][]) : []),
    );
    if (judgeMeta) report.push(['fluency judge', `${judgeMeta.dir} (charlm, nats per character it assigns)`]);
  } finally {
    disposeModel(model);
    if (judge) disposeModel(judge);
  }
  for (const [name, value] of report) console.log(value ? `${name}: ${value}` : `${name}:`);
}
