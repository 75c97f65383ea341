/**
 * The `fluxion` commands for the text models (`charlm`, `charrnn`): training on names, tiny
 * Shakespeare or a user's UTF-8 file, sampling text from a checkpoint, and evaluating it (held-out
 * nats and bits per character; the share of new and of distinct samples beside real held-out
 * text). Training, resume and checkpoints work as for the image models (`cli-common.ts`).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { FluxionError, Generator } from '@fluxion/tensor';
import {
  type CheckpointMeta,
  loadTextCheckpoint,
  prepareOutputDir,
  saveCheckpoint,
  writeFileAtomically,
} from './checkpoint.js';
import type { EvalValues, SampleValues, TrainValues } from './cli.js';
import {
  checkBackendName,
  checkResumePosition,
  chooseBackend,
  numberOption,
  plannedTotal,
  readResume,
  refuseOptions,
  runTraining,
  savedRun,
  smoothHistory,
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
import { lossCurve } from './image/grid.js';
import { pictureGenerator } from './models/model.js';
import {
  createTextModel,
  type TextModel,
  type TextModelConfig,
  type TextModelKind,
  type TextModelOverrides,
  textModelConfig,
} from './models/text-lm.js';
import { fitText, heldOutTextBatches, type LossHistory, textStepsPerEpoch } from './train.js';

/** The options of `fluxion sample` for a text model (part of its `--help`). */
export const TEXT_SAMPLE_OPTIONS = `  --n N              number of samples (default 20 for lines, 3 for one long text)
  --temperature X    softmax temperature, 0 (argmax) to 100 (default 1)
  --top-k K          draw among the K most likely characters only (default all)
  --prompt TEXT      the start of every sample (characters of the model's vocabulary)
  --length N         characters after the prompt: at most (lines; default the longest item
                     trained on) or exactly (one long text; default 200)
  --seed N           the sampling stream (default: the stream of the per-epoch sample files)
  --out FILE         also write the samples to FILE`;

/** The options of `fluxion eval` for a text model (part of its `--help`). */
export const TEXT_EVAL_OPTIONS = `  --samples N        samples drawn for the statistics (default 1000)
  --temperature X    their softmax temperature (default 1)

Prints the held-out loss in nats and bits per character (on the held-out part of the data the
model was trained on), then for the samples and, beside them, for as many real held-out items:
the share that is new (not an item of the training set; for one long text, its lines) and the
share of distinct ones.`;

/** Usage texts of the text models' commands. */
export const TEXT_USAGE = {
  train: `usage: fluxion train <charlm|charrnn> [--data names|shakespeare|FILE] [options]

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
  --dim N            embedding width (default 64 for lines, 128 for text; charrnn 32 / 64)
  --layers N         Transformer blocks or recurrent layers
  --heads N          attention heads (charlm; dim must be a multiple)
  --hidden N         hidden size (charrnn)
  --cell gru|lstm    recurrent cell (charrnn; default gru)
  --dropout X        dropout probability while training, 0 to 0.99 (default 0)
  --warmup N         steps of linear learning-rate warm-up (default 100)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --out DIR          where the checkpoint and files go (default out/<model>)
  --resume           continue the run in --out with its own settings (any of the flags above
                     given with another value is refused; --epochs may be raised, the schedule
                     stays the one planned); bit-exact with the uninterrupted run
  --max-steps N      stop after N steps (a short run; the schedule is still planned for --epochs)
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text

After every epoch: the held-out nats and bits per character (printed, and kept in the checkpoint),
the checkpoint (model.safetensors, with the tokenizer), samples-epoch-<E>.txt (drawn from a stream
of their own, so writing them leaves the run exact) and loss.png. Numbers are decimal; every
argument is checked before a backend starts; a NaN or infinite loss stops the run with exit code 1
and keeps the last checkpoint.`,
};

/** Options of `fluxion train` that a text model does not take. */
const NOT_TEXT = ['latent', 'length', 'model-size', 'unconditional'];

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
 * `fluxion train charlm|charrnn`: every argument checked (against the checkpoint with
 * `--resume`) before the data's model is built or a backend starts.
 */
export async function trainText(kind: TextModelKind, values: TrainValues): Promise<void> {
  refuseOptions(values, NOT_TEXT, `a text model (${kind})`);
  refuseOptions(values, kind === 'charlm' ? ['hidden', 'cell'] : ['heads'], `a ${kind}`);
  if (values.cell !== undefined && values.cell !== 'gru' && values.cell !== 'lstm')
    throw new UsageError(`--cell must be gru or lstm, got '${values.cell}'`);
  const sizes = {
    context: numberOption(values, 'context'),
    dim: numberOption(values, 'dim'),
    layers: numberOption(values, 'layers'),
    heads: numberOption(values, 'heads'),
    hidden: numberOption(values, 'hidden'),
    cell: values.cell as 'gru' | 'lstm' | undefined,
    dropout: numberOption(values, 'dropout'),
    warmup: numberOption(values, 'warmup'),
  };
  const given = {
    'batch-size': numberOption(values, 'batch-size'),
    lr: numberOption(values, 'lr'),
    seed: numberOption(values, 'seed'),
    data: values.data,
    mode: values.mode,
    ...sizes,
  };
  const epochsGiven = numberOption(values, 'epochs');
  const maxSteps = numberOption(values, 'max-steps');
  const minutes = numberOption(values, 'minutes');
  checkBackendName(values.backend);
  const out = values.out ?? join('out', kind);
  prepareOutputDir(out);
  const resumed = values.resume
    ? readResume(
        out,
        kind,
        given,
        (meta) => {
          const run = savedRun(meta, out);
          const c = meta.config as TextModelConfig;
          return {
            'batch-size': run.batchSize,
            lr: c.lr,
            seed: c.seed,
            data: run.data,
            mode: meta.run.mode as string | undefined,
            context: c.context,
            dim: c.dim,
            layers: c.layers,
            heads: c.kind === 'charlm' ? c.heads : undefined,
            hidden: c.kind === 'charrnn' ? c.hidden : undefined,
            cell: c.kind === 'charrnn' ? c.cell : undefined,
            dropout: c.dropout,
            warmup: c.warmup,
            epochs: run.epochs,
          };
        },
        { mode: 'the data set’s own' },
      )
    : undefined;
  const saved = resumed?.saved;
  const data = given.data ?? saved?.data ?? 'names';
  const ds = loadTextData(data, given.mode ?? saved?.mode);
  if (resumed) checkVocabulary(ds, resumed.meta, out);
  const epochs = epochsGiven ?? saved?.epochs ?? 5;
  const batchSize = saved?.['batch-size'] ?? given['batch-size'] ?? 64;

  // The config, checked before a backend starts (the window against the data, heads against dim).
  const overrides: TextModelOverrides = { seed: given.seed ?? 0 };
  for (const [key, v] of Object.entries({ lr: given.lr, ...sizes }))
    if (v !== undefined) (overrides as Record<string, unknown>)[key] = v;
  let config: TextModelConfig;
  try {
    config = resumed ? (resumed.meta.config as TextModelConfig) : textModelConfig(kind, ds, overrides);
  } catch (e) {
    if (e instanceof FluxionError) throw new UsageError(`--context: ${e.message}`);
    throw e;
  }
  if (config.kind === 'charlm' && config.dim % config.heads !== 0)
    throw new UsageError(`--dim ${config.dim} must be a multiple of --heads ${config.heads}`);
  const stepsPerEpoch = textStepsPerEpoch(ds, batchSize, config.context);
  if (stepsPerEpoch === 0)
    throw new UsageError(`--batch-size ${batchSize} exceeds the ${ds.train.length} training items`);
  if (resumed) checkResumePosition(resumed.meta, out, stepsPerEpoch, epochs);
  // The cosine decay spans the planned run (--max-steps and --minutes interrupt it, not re-plan it).
  else config = { ...config, decaySteps: Math.max(0, epochs * stepsPerEpoch - config.warmup) };

  const backend = await chooseBackend(values.backend);
  let model: TextModel;
  let history: LossHistory = {};
  const epochMetrics: Record<string, number[]> = { heldOutNats: [] };
  const from = resumed?.meta.position;
  if (resumed) {
    const loaded = loadTextCheckpoint(out);
    model = loaded.model;
    history = loaded.meta.history;
    Object.assign(epochMetrics, loaded.meta.epochMetrics);
  } else model = createTextModel(config, ds.tokenizer);
  const items =
    ds.mode === 'lines' ? `${ds.train.length} items` : `${ds.tokenizer.encode(ds.train).length} characters`;
  console.log(
    `training ${kind} on ${ds.name} (${items}, vocabulary ${ds.tokenizer.vocabSize}, window ${config.context}; batch ${batchSize}, ${stepsPerEpoch} steps/epoch, ${epochs} epochs) on ${backend}; output in ${out}`,
  );
  const run: TextRun = {
    batchSize,
    epochs,
    data,
    ...(Object.hasOwn(BUILT_IN, data) ? {} : { mode: ds.mode }),
  };
  await runTraining({
    out,
    from,
    total: plannedTotal(epochs, stepsPerEpoch, from, maxSteps),
    fit: ({ onStep, onEpoch }) =>
      fitText(model, ds, {
        epochs,
        batchSize,
        from,
        maxSteps,
        seconds: minutes === undefined ? undefined : minutes * 60,
        history,
        onStep,
        onEpoch: async (position, history, heldOut) => {
          if (heldOut) {
            epochMetrics.heldOutNats.push(heldOut.nats);
            console.log(
              `epoch ${position.epoch}: held-out ${heldOut.nats.toFixed(4)} nats/char (${heldOut.bits.toFixed(4)} bits/char)`,
            );
          }
          await onEpoch(position, history);
        },
      }),
    snapshot: async (position, history) => {
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
  const config = meta.config as TextModelConfig;
  const n = numberOption(values, 'n') ?? (config.mode === 'lines' ? 20 : 3);
  const length = numberOption(values, 'length');
  const seed = numberOption(values, 'seed');
  const { temperature, topK, prompt } = samplingOptions(values, meta);
  await chooseBackend(values.backend);
  const { model } = loadTextCheckpoint(dir);
  const generator = seed === undefined ? pictureGenerator(config.seed) : new Generator(seed);
  const samples = await model.sample(n, { temperature, topK, prompt, length, generator });
  const text = formatSamples(samples, config.mode);
  console.log(text.trimEnd());
  if (values.out) {
    writeFileAtomically(values.out, text);
    console.error(`wrote ${n} samples of ${dir} to ${values.out}`);
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

/** `fluxion eval` for a text model: held-out nats and bits per character, sample statistics. */
export async function textEval(values: EvalValues, meta: CheckpointMeta): Promise<void> {
  const dir = values.checkpoint as string;
  const kind = meta.config.kind;
  refuseOptions(values, ['iwae-k'], `a text model (${kind})`);
  if (values.data !== undefined)
    throw new UsageError(`--data: a ${kind} is evaluated on the held-out part of the data it was trained on`);
  const count = numberOption(values, 'samples') ?? 1000;
  const { temperature } = samplingOptions(values, meta);
  const ds = dataOfRun(meta, dir);
  await chooseBackend(values.backend);
  const { model } = loadTextCheckpoint(dir);
  const config = model.config;
  const heldOut = await model.evaluate(heldOutTextBatches(ds, model.tokenizer, config.context));
  const generator = pictureGenerator(config.seed);
  const length = ds.mode === 'lines' ? undefined : 200;
  const samples: string[] = [];
  for (let done = 0; done < count; done += 250)
    samples.push(...(await model.sample(Math.min(250, count - done), { temperature, generator, length })));
  const ours = textSampleStats(samples, ds);
  const real = textSampleStats(realHeldOut(ds, count, length ?? 0), ds);
  const report: [string, string][] = [
    ['held-out nats/char', heldOut.nats.toFixed(4)],
    ['held-out bits/char', heldOut.bits.toFixed(4)],
    ['held-out characters', String(heldOut.characters)],
    [`samples (${count}${ds.mode === 'text' ? ` × ${length} characters, ${ours.items} lines` : ''})`, ''],
    ['  share new', ours.shareNew.toFixed(3)],
    ['  share distinct', ours.shareDistinct.toFixed(3)],
    [`real held-out (${real.items}${ds.mode === 'text' ? ' lines' : ''})`, ''],
    ['  share new', real.shareNew.toFixed(3)],
    ['  share distinct', real.shareDistinct.toFixed(3)],
  ];
  for (const [name, value] of report) console.log(value ? `${name}: ${value}` : `${name}:`);
}
