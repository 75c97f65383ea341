/**
 * The `fluxion` commands for the audio models (`wavegan`, `specvae`): training on the Free Spoken Digit
 * Dataset or a folder of labelled WAV files, and sampling WAV files (with a sheet of their
 * spectrograms) from a checkpoint. Training, resume and checkpoints work as for the image models
 * (`cli-common.ts`).
 */
import { join } from 'node:path';
import { noGrad } from '@fluxion/autograd';
import {
  concat,
  FluxionError,
  Generator,
  logMel,
  melSpectrogram,
  scope,
  type Tensor,
  tensor,
} from '@fluxion/tensor';
import {
  type AudioModelConfig,
  type CheckpointMeta,
  loadAudioCheckpoint,
  prepareOutputDir,
  saveCheckpoint,
  writeFileAtomically,
} from './checkpoint.js';
import type { EvalValues, SampleValues, TrainValues } from './cli.js';
import {
  chooseBackend,
  disposeModel,
  numberOption,
  refuseOptions,
  smoothHistory,
  startTraining,
  trainPrologue,
  UsageError,
} from './cli-common.js';
import {
  type AudioDataset,
  type AudioSplit,
  encodeWav,
  loadAudioFolder,
  loadFsdd,
} from './data/audio-files.js';
import { imageGrid, lossCurve } from './image/grid.js';
import {
  type AudioScores,
  audioBaselines,
  audioModelScores,
  audioScores,
  withAudioClassifier,
} from './metrics/index.js';
import type { AudioModel, AudioModelKind } from './models/audio-model.js';
import { pictureGenerator } from './models/model.js';
import { SpecVae, specVaeConfig } from './models/spec-vae.js';
import { WaveGan, type WaveGanConfig, waveganConfig } from './models/wavegan.js';
import { fitAudio } from './train.js';

/** The options of `fluxion sample` for an audio model (part of its `--help`). */
export const AUDIO_SAMPLE_OPTIONS = `  --n N              number of clips (default 10: one per class for a conditional model)
  --label D          class of every clip (conditional models; default: 0, 1, 2, … in turn)
  --seed N           the sampling stream (default: the stream of the per-epoch samples)
  --out DIR          folder of the WAV files and their spectrogram sheet (default samples/)
  --griffin-lim-iters N
                     specvae: Griffin-Lim iterations that turn its spectrograms into audio
                     (default: the model's, 32; more is cleaner and slower)`;

/** Usage texts of `fluxion train <kind>` for each audio model. */
export const AUDIO_TRAIN_USAGE: Record<AudioModelKind, string> = {
  wavegan: `usage: fluxion train wavegan [--data fsdd|DIR] [options]

  --data fsdd|DIR    the Free Spoken Digit Dataset (default; 2,700 clips train, takes 0–4 test),
                     or a folder of WAV files labelled by sub-folder (7/a.wav) or name (7_a.wav)
  --epochs N         epochs to train (default 5)
  --batch-size N     clips per batch (default 64)
  --lr X             learning rate of both players (default 1e-4)
  --latent N         latent size (default 100)
  --seed N           seed of initialisation, noise and data order (default 0)
  --length N         samples per clip, a multiple of 256 (default 8192: 1.02 s at 8 kHz)
  --model-size N     width d of the critic's first and generator's last block (default ${waveganConfig().modelSize})
  --unconditional    ignore the labels (no --label when sampling)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --out DIR          where the checkpoint and files go (default out/wavegan)
  --resume           continue the run in --out with its own settings; bit-exact with the
                     uninterrupted run (--epochs may be raised)
  --max-steps N      stop after N steps
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text

After every epoch: the checkpoint (model.safetensors), samples-epoch-<E>/ with a WAV file per
class (drawn from a stream of their own, so writing them leaves the run exact),
spectrograms-epoch-<E>.png (log-mel spectrograms: generated clips above, real test clips below)
and loss.png. Every argument is checked before a backend starts; a NaN or infinite loss stops the
run with exit code 1 and keeps the last checkpoint.`,
  specvae: `usage: fluxion train specvae [--data fsdd|DIR] [options]

A conditional VAE of log-magnitude spectrograms (STFT 256, hop 64: 128 bins × length/64 frames,
normalised per bin by the training clips' statistics), turned into audio by Griffin-Lim.

  --data fsdd|DIR    the Free Spoken Digit Dataset (default; 2,700 clips train, takes 0–4 test),
                     or a folder of WAV files labelled by sub-folder (7/a.wav) or name (7_a.wav)
  --epochs N         epochs to train (default 5)
  --batch-size N     clips per batch (default 32)
  --lr X             learning rate of Adam (default 1e-3)
  --latent N         latent size (default 32)
  --seed N           seed of initialisation, noise and data order (default 0)
  --length N         samples per clip, a multiple of 1024 (default 8192: 1.02 s at 8 kHz)
  --model-size N     channel width d of the first of the 4 convolution blocks: d, 2d, 4d, 8d
                     (default 16)
  --unconditional    ignore the labels (no --label when sampling)
  --backend NAME     webgpu or cpu (default: webgpu when an adapter exists)
  --out DIR          where the checkpoint and files go (default out/specvae)
  --resume           continue the run in --out with its own settings; bit-exact with the
                     uninterrupted run (--epochs may be raised)
  --max-steps N      stop after N steps
  --minutes X        stop after X minutes of training (at a step boundary)
  --help             this text

Before the first step the per-bin spectrogram statistics are computed from the training clips
(once; the checkpoint keeps them). After every epoch: the checkpoint (model.safetensors),
samples-epoch-<E>/ with a WAV file per class (32 Griffin-Lim iterations; drawn from a stream of
their own, so writing them leaves the run exact), spectrograms-epoch-<E>.png (the model's
normalised spectrograms: generated above, real test clips below) and loss.png (the mean squared
error of the normalised spectrogram; the negative ELBO in nats is in the checkpoint's history as
loss = recon + kl). Every argument is checked before a backend starts; a NaN or infinite loss
stops the run with exit code 1 and keeps the last checkpoint.`,
};

/** Options of `fluxion train` that an audio model does not take. */
const NOT_AUDIO = ['mode', 'context', 'dim', 'layers', 'heads', 'hidden', 'cell', 'dropout', 'warmup'];

/** The clips of `--data` at `length` samples; a problem with it is a {@link UsageError}. */
function loadAudioData(data: string, length: number | undefined): AudioDataset {
  try {
    return data === 'fsdd' ? loadFsdd({ length }) : loadAudioFolder(data, { length });
  } catch (e) {
    if (e instanceof FluxionError) throw new UsageError(`--data ${data}: ${e.message}`);
    throw e;
  }
}

/** `fluxion train wavegan|specvae`: every argument checked before the data loads or a backend starts. */
export async function trainAudio(kind: AudioModelKind, values: TrainValues): Promise<void> {
  refuseOptions(values, NOT_AUDIO, `an audio model (${kind})`);
  const given = {
    'batch-size': numberOption(values, 'batch-size'),
    lr: numberOption(values, 'lr'),
    seed: numberOption(values, 'seed'),
    latent: numberOption(values, 'latent'),
    length: numberOption(values, 'length'),
    'model-size': numberOption(values, 'model-size'),
    unconditional: values.unconditional,
    data: values.data,
  };
  const plan = trainPrologue(kind, values, {
    given,
    settings: (meta, run) => {
      const c = meta.config as AudioModelConfig;
      return {
        latent: c.latent,
        length: c.length,
        'model-size': c.modelSize,
        unconditional: c.conditional ? undefined : true,
        data: run.data,
      };
    },
    batchSize: kind === 'specvae' ? 32 : 64,
  });
  const { out, resumed, saved, epochs, batchSize } = plan;
  const data = given.data ?? saved?.data ?? 'fsdd';
  // Check the config before loading clips of a length the model cannot take.
  // The options mean the same for both kinds (--model-size: the first convolution's width d).
  const overrides: Partial<Pick<WaveGanConfig, 'lr' | 'latent' | 'length' | 'modelSize'>> &
    Pick<WaveGanConfig, 'seed' | 'conditional'> = {
    seed: given.seed ?? 0,
    conditional: !given.unconditional,
  };
  if (given.lr !== undefined) overrides.lr = given.lr;
  if (given.latent !== undefined) overrides.latent = given.latent;
  if (given.length !== undefined) overrides.length = given.length;
  if (given['model-size'] !== undefined) overrides.modelSize = given['model-size'];
  let config: AudioModelConfig;
  try {
    if (resumed) config = resumed.meta.config as AudioModelConfig;
    else config = kind === 'specvae' ? specVaeConfig(overrides) : waveganConfig(overrides);
  } catch (e) {
    if (e instanceof FluxionError) throw new UsageError(e.message);
    throw e;
  }
  const ds = loadAudioData(data, config.length);
  if (!resumed) config = { ...config, sampleRate: ds.sampleRate, classes: Math.max(1, ds.classNames.length) };
  if (batchSize > ds.train.count)
    throw new UsageError(`--batch-size ${batchSize} exceeds the ${ds.train.count} training clips`);
  const run = { batchSize, epochs, data };
  const settled = config;
  await startTraining(plan, {
    stepsPerEpoch: Math.floor(ds.train.count / batchSize),
    load: loadAudioCheckpoint,
    create: async (): Promise<AudioModel> => {
      if (settled.kind !== 'specvae') return new WaveGan(settled);
      const vae = new SpecVae(settled);
      await vae.codec.fit(ds.train); // once; a resumed run has the statistics from its checkpoint
      return vae;
    },
    data: ds.name,
    details: `${ds.train.count} clips of ${config.length} samples at ${config.sampleRate} Hz`,
    fit: (model, options) => fitAudio(model, ds.train, options),
    snapshot: async (model, position, history) => {
      await saveCheckpoint(out, model, position, history, run);
      const n = model.conditional ? Math.min(10, model.config.classes) : 4;
      await writeClips(
        model,
        join(out, `samples-epoch-${position.epoch}`),
        n,
        undefined,
        pictureGenerator(model.config.seed),
        {
          real: ds.test.count > 0 ? ds.test : ds.train,
          sheet: join(out, `spectrograms-epoch-${position.epoch}.png`),
        },
      );
      // specvae: only the mse (loss and recon go negative in nats once it fits well).
      const plotted = model instanceof SpecVae ? { mse: history.mse ?? [] } : history;
      writeFileAtomically(join(out, 'loss.png'), lossCurve(smoothHistory(plotted)));
    },
  });
}

/**
 * Writes `n` generated clips as WAV files into `dir` (`clip-<i>[-label-<c>].wav`) and, with
 * `sheet`, a PNG sheet of their spectrograms (above those of the first `n` clips of `real`, when
 * given): log-mel for wavegan, the model's own normalised spectrograms for specvae. Clips come
 * from `generator`, never the training noise; `griffinLimIters` applies to specvae.
 */
async function writeClips(
  model: AudioModel,
  dir: string,
  n: number,
  label: number | undefined,
  generator: Generator,
  { real, sheet, griffinLimIters }: { real?: AudioSplit; sheet?: string; griffinLimIters?: number } = {},
): Promise<string[]> {
  prepareOutputDir(dir);
  const { classes, sampleRate, length } = model.config;
  const labels = model.conditional ? Array.from({ length: n }, (_, i) => label ?? i % classes) : undefined;
  if (model instanceof SpecVae) {
    // The sheet's spectrograms are the ones the clips were made of: the same generator state.
    const again = new Generator(generator.seed);
    again.offset = generator.offset;
    const clips = model.sample(n, { labels, generator, griffinLimIters });
    const files = await writeWavs(clips, dir, labels, length, sampleRate);
    clips.dispose();
    if (sheet) {
      const generated = model.sampleSpectrograms(n, { labels, generator: again });
      let all = generated;
      if (real) {
        const k = Math.min(n, real.count);
        all = noGrad(() =>
          scope(() =>
            concat([generated, model.codec.forward(tensor(real.audio.slice(0, k * length), [k, length]))], 0),
          ),
        );
        generated.dispose();
      }
      writeFileAtomically(sheet, await normalizedSheet(all, n));
      all.dispose();
    }
    return files;
  }
  const clips = model.sample(n, { labels, generator });
  const files = await writeWavs(clips, dir, labels, length, sampleRate);
  if (sheet) {
    let all = clips;
    let rows = n;
    if (real) {
      const k = Math.min(n, real.count);
      const r = tensor(real.audio.slice(0, k * length), [k, length]);
      all = concat([clips, r], 0);
      r.dispose();
      rows = n + k;
    }
    writeFileAtomically(sheet, await spectrogramSheet(all, rows, sampleRate, n));
    if (all !== clips) all.dispose();
  }
  clips.dispose();
  return files;
}

/** Clips `[n, length]` as WAV files `clip-<i>[-label-<c>].wav` in `dir`; returns their paths. */
async function writeWavs(
  clips: Tensor,
  dir: string,
  labels: number[] | undefined,
  length: number,
  sampleRate: number,
): Promise<string[]> {
  const data = Float32Array.from(await clips.data());
  const files: string[] = [];
  for (let i = 0; i < clips.shape[0]; i++) {
    const name = `clip-${String(i).padStart(2, '0')}${labels ? `-label-${labels[i]}` : ''}.wav`;
    writeFileAtomically(join(dir, name), encodeWav(data.subarray(i * length, (i + 1) * length), sampleRate));
    files.push(join(dir, name));
  }
  return files;
}

/**
 * Normalised spectrograms `[rows, bins, frames]` in [−1, 1] (a specvae's) as one grayscale PNG
 * (`cols` per row, low frequencies at the bottom, grey = (s + 1) / 2).
 */
async function normalizedSheet(spec: Tensor, cols: number): Promise<Uint8Array> {
  const [rows, bins, frames] = spec.shape;
  const values = await spec.data();
  const image = new Float32Array(rows * bins * frames);
  for (let c = 0; c < rows; c++)
    for (let f = 0; f < bins; f++)
      for (let t = 0; t < frames; t++) {
        const v = Number(values[(c * bins + f) * frames + t]);
        image[(c * bins + (bins - 1 - f)) * frames + t] = Math.min(1, Math.max(0, (v + 1) / 2));
      }
  return imageGrid(image, rows, bins, frames, Math.max(1, cols));
}

/**
 * Log-mel spectrograms of clips `[rows, length]` as one grayscale PNG (`cols` per row, low
 * frequencies at the bottom, the top 80 dB of the sheet mapped to black … white).
 */
async function spectrogramSheet(
  clips: Tensor,
  rows: number,
  sampleRate: number,
  cols: number,
): Promise<Uint8Array> {
  const nFft = 256;
  const nMels = 64;
  const mel = noGrad(() =>
    scope(() => logMel(melSpectrogram(clips, { sampleRate, nFft, hopLength: 64, nMels, power: 2 }))),
  );
  const values = Float32Array.from(await mel.data());
  const frames = mel.shape[2];
  mel.dispose();
  let top = Number.NEGATIVE_INFINITY;
  for (const v of values) if (v > top) top = v;
  const range = (80 / 10) * Math.LN10; // 80 dB in natural-log units of power
  const image = new Float32Array(values.length);
  for (let c = 0; c < rows; c++)
    for (let m = 0; m < nMels; m++)
      for (let t = 0; t < frames; t++) {
        const v = values[(c * nMels + m) * frames + t];
        image[(c * nMels + (nMels - 1 - m)) * frames + t] = Math.max(0, 1 - (top - v) / range);
      }
  return imageGrid(image, rows, nMels, frames, Math.max(1, cols));
}

/** `fluxion sample` for an audio model: WAV files and their spectrogram sheet in `--out`. */
export async function audioSample(values: SampleValues, meta: CheckpointMeta): Promise<void> {
  const dir = values.checkpoint as string;
  const config = meta.config as AudioModelConfig;
  refuseOptions(values, ['temperature', 'top-k', 'prompt', 'length'], `an audio model (${config.kind})`);
  const n = numberOption(values, 'n') ?? (config.conditional ? Math.min(10, config.classes) : 10);
  const label = numberOption(values, 'label');
  const seed = numberOption(values, 'seed');
  const griffinLimIters = numberOption(values, 'griffin-lim-iters');
  if (label !== undefined) {
    if (!config.conditional)
      throw new UsageError(
        `--label needs a conditional model; this ${config.kind} was trained with --unconditional`,
      );
    if (label >= config.classes)
      throw new UsageError(`--label must be below ${config.classes}, got ${label}`);
  }
  const out = values.out ?? 'samples';
  prepareOutputDir(out);
  await chooseBackend(values.backend);
  const { model } = loadAudioCheckpoint(dir);
  const generator = seed === undefined ? pictureGenerator(config.seed) : new Generator(seed);
  let files: string[];
  try {
    files = await writeClips(model, out, n, label, generator, {
      sheet: join(out, 'spectrograms.png'),
      griffinLimIters,
    });
  } finally {
    disposeModel(model);
  }
  console.log(`wrote ${files.length} clips of ${dir} to ${out}/ (and spectrograms.png)`);
}

/**
 * `fluxion eval` for an audio model: `--samples` generated clips (default 300, balanced over the
 * digits for a conditional model) scored by the shipped spoken-digit classifier — the share
 * classified as the digit asked for, the Inception score over the 10 digits and the Fréchet
 * distance of the classifier's features to the real test takes — with the same figures for real
 * test takes and for noise beside them. Samples come from the picture stream, never the training
 * noise.
 */
export async function audioEval(values: EvalValues, meta: CheckpointMeta): Promise<void> {
  refuseOptions(values, ['temperature', 'iwae-k', 'judge'], `an audio model (${meta.config.kind})`);
  const n = numberOption(values, 'samples') ?? 300;
  await chooseBackend(values.backend);
  const { model } = loadAudioCheckpoint(values.checkpoint as string);
  const { conditional } = model;
  let rows: { generated: AudioScores; real: AudioScores; noise: AudioScores };
  try {
    const generator = pictureGenerator(model.config.seed);
    rows = await withAudioClassifier(undefined, async (classifier) => {
      let generated: AudioScores;
      if (model.conditional) {
        const sampler = {
          conditional: true,
          sample: (count: number, options?: { labels?: readonly number[] }) =>
            model.sample(count, { labels: options?.labels, generator }),
        };
        generated = await audioModelScores(sampler, n, { classifier });
      } else {
        const clips = model.sample(n, { generator });
        try {
          generated = await audioScores(clips, new Int32Array(n), { classifier });
        } finally {
          clips.dispose();
        }
      }
      const { real, noise } = await audioBaselines({ classifier });
      return { generated, real, noise };
    });
  } finally {
    disposeModel(model);
  }
  const row = (name: string, s: AudioScores, accuracy: boolean) =>
    `${name.padEnd(16)}${String(s.count).padStart(6)}${(accuracy ? `${(s.accuracy * 100).toFixed(1)} %` : '–').padStart(11)}` +
    `${s.inceptionScore.mean.toFixed(2).padStart(11)}${s.frechetDistance.toFixed(1).padStart(11)}`;
  console.log(
    `${'clips'.padEnd(16)}${'n'.padStart(6)}${'accuracy'.padStart(11)}${'inception'.padStart(11)}${'fréchet'.padStart(11)}`,
  );
  console.log(row(`${meta.config.kind} samples`, rows.generated, conditional));
  console.log(row('real test takes', rows.real, true));
  console.log(row('noise', rows.noise, true));
  console.log(
    'accuracy: share classified as the digit asked for (true digit for real clips); inception: exp E[KL(p(y|x) ‖ p(y))] over 10 digits; fréchet: distance of classifier features to the real test takes',
  );
}
