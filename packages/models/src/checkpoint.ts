/**
 * Checkpoints: one file, `model.safetensors`, with every module's state dict as
 * `<module>.<parameter>`, every optimizer's state as `optim.<name>.<key>`, and in its metadata
 * under `fluxion.checkpoint` the model config, the training position, the noise stream's offset,
 * the run's options and the loss history (JSON); a text model's checkpoint also holds its tokenizer.
 * Image, text and audio models share the format: {@link loadCheckpoint},
 * {@link loadTextCheckpoint} and {@link loadAudioCheckpoint} rebuild each family. One file is one atomic unit: it is written to
 * `model.safetensors.tmp-<pid>` and renamed into place, so a crash or a full disk leaves either the
 * previous checkpoint or the new one, never weights of one step with the position of another.
 * Temporary files of a failed write are removed; those of a killed process are removed by the next
 * write into the folder. Resuming from a checkpoint continues exactly as the uninterrupted run.
 */
import {
  accessSync,
  constants,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join } from 'node:path';
import { loadSafetensors, saveSafetensors } from '@fluxion/nn';
import { FluxionError, type Tensor } from '@fluxion/tensor';
import { CharTokenizer, type CharTokenizerJSON } from './data/tokenizer.js';
import { AUDIO_MODEL_KINDS, type AudioModel } from './models/audio-model.js';
import { createModel, type ModelConfig } from './models/factory.js';
import { type GenerativeModel, MODEL_KINDS } from './models/model.js';
import { SpecVae, type SpecVaeConfig, specVaeConfig } from './models/spec-vae.js';
import {
  createTextLatentModel,
  type TextLatentModelConfig,
  type TextLatentModelOf,
} from './models/text-gan.js';
import { createTextModel, TEXT_MODEL_KINDS, type TextModel, type TextModelConfig } from './models/text-lm.js';
import { TEXT_LATENT_KINDS } from './models/text-vae.js';
import { WaveGan, type WaveGanConfig, waveganConfig } from './models/wavegan.js';
import type { LossHistory, TrainPosition } from './train.js';

/**
 * The checkpoint file inside a checkpoint folder (the whole checkpoint: one atomic unit).
 *
 * @example
 * ```ts
 * const bytes = readFileSync(join('runs/vae', CHECKPOINT_FILE));
 * ```
 */
export const CHECKPOINT_FILE = 'model.safetensors';
/** The safetensors metadata key that holds the {@link CheckpointMeta} as JSON. */
const META_KEY = 'fluxion.checkpoint';

/**
 * Any model a checkpoint holds: an image model, a text model or an audio model.
 *
 * @example
 * ```ts
 * const models: CheckpointModel[] = [createModel('vae'), new WaveGan(waveganConfig())];
 * ```
 */
export type CheckpointModel = GenerativeModel | TextModel | TextLatentModelOf | AudioModel;

/** The config of any model a checkpoint holds. */
export type AnyModelConfig =
  | ModelConfig
  | TextModelConfig
  | TextLatentModelConfig
  | WaveGanConfig
  | SpecVaeConfig;

/** The config of an audio model (`wavegan`, `specvae`). */
export type AudioModelConfig = WaveGanConfig | SpecVaeConfig;

/**
 * The family of a model kind: `'image'` (MNIST models), `'text'` or `'audio'`; undefined for an
 * unknown kind.
 *
 * @example
 * ```ts
 * modelFamily('charlm'); // 'text'
 * ```
 */
export function modelFamily(kind: unknown): 'image' | 'text' | 'audio' | undefined {
  if (MODEL_KINDS.includes(kind as never)) return 'image';
  if (TEXT_MODEL_KINDS.includes(kind as never) || TEXT_LATENT_KINDS.includes(kind as never)) return 'text';
  if (AUDIO_MODEL_KINDS.includes(kind as never)) return 'audio';
  return undefined;
}

/**
 * What a checkpoint holds besides the tensors (stored as JSON in the file's metadata).
 *
 * @example
 * ```ts
 * const meta: CheckpointMeta = readCheckpointMeta('runs/charlm');
 * meta.position.globalStep; // 484
 * ```
 */
export interface CheckpointMeta<C extends AnyModelConfig = AnyModelConfig> {
  format: 2;
  config: C;
  /** A text model's tokenizer (`tokenizer.toJSON()`); absent for other models. */
  tokenizer?: CharTokenizerJSON;
  /** Figures measured once per completed epoch (e.g. `heldOutNats` of a text model), by name. */
  epochMetrics?: Record<string, number[]>;
  position: TrainPosition;
  /** Counters consumed from the model's noise stream. */
  noiseOffset: number;
  /** Steps taken by a GAN (its critic schedule) or a text model (its learning-rate schedule). */
  modelSteps: number;
  /** A GAN's last generator loss (reported on WGAN-GP steps without a generator update); null if none. */
  lastGeneratorLoss: number | null;
  history: LossHistory;
  /** Options of the run (batch size, epochs, data), for `--resume`. */
  run: Record<string, unknown>;
}

/** The error code of a failed file-system call (`ENOENT`, `EROFS`, …). */
function errorCode(e: unknown): string | undefined {
  return (e as NodeJS.ErrnoException).code;
}

/** Temporary files of this module: `<name>.tmp-<pid>`. */
const TEMP_NAME = /\.tmp-(\d+)$/;

function processAlive(pid: number): boolean {
  if (pid === process.pid) return false; // ours: no write of this process is in flight here
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return errorCode(e) === 'EPERM';
  }
}

/**
 * Makes `dir` (and its parents) if needed, checks that files can be written there, and removes the
 * temporary files that killed writers left in it (`*.tmp-<pid>` of processes that no longer run).
 * Errors name the real cause: Node's recursive `mkdir` reports `ENOENT` on a read-only file
 * system, this reports `EROFS` (or `EACCES`, `ENOTDIR`, …) and the folder.
 *
 * @example
 * ```ts
 * prepareOutputDir('out/vae'); // throws "cannot write to 'out/vae': EROFS: read-only file system …"
 * ```
 */
export function prepareOutputDir(dir: string): void {
  const make = (path: string): void => {
    try {
      mkdirSync(path);
    } catch (e) {
      if (errorCode(e) === 'EEXIST') {
        if (!statSync(path).isDirectory()) throw new Error(`ENOTDIR: '${path}' is a file, not a folder`);
        return;
      }
      if (errorCode(e) !== 'ENOENT' || dirname(path) === path) throw e;
      make(dirname(path));
      make(path);
    }
  };
  try {
    make(dir);
    accessSync(dir, constants.W_OK);
  } catch (e) {
    throw new FluxionError('output', `cannot write to '${dir}': ${(e as Error).message}`);
  }
  for (const name of readdirSync(dir)) {
    const pid = TEMP_NAME.exec(name);
    if (pid && !processAlive(Number(pid[1]))) rmSync(join(dir, name), { force: true });
  }
}

/**
 * Writes `bytes` to `path` through `path.tmp-<pid>` and a rename, so `path` is never half-written;
 * on failure the temporary file is removed and the error names the file.
 *
 * @example
 * ```ts
 * writeFileAtomically('out/vae/loss.png', png);
 * ```
 */
export function writeFileAtomically(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new FluxionError('write', `cannot write '${path}': ${(e as Error).message}`);
  }
}

/**
 * Writes a checkpoint of `model` (an image, text or audio model) at `position` into `dir`
 * (created if needed) as one file, {@link CHECKPOINT_FILE}, replaced atomically. A text model's
 * tokenizer and step count go into the metadata with the config; `epochMetrics` are figures per
 * completed epoch (e.g. held-out nats per character).
 *
 * @example
 * ```ts
 * await saveCheckpoint('runs/vae', model, { epoch: 1, step: 0, globalStep: 70 }, history, { batchSize: 128 });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  model: CheckpointModel,
  position: TrainPosition,
  history: LossHistory,
  run: Record<string, unknown> = {},
  epochMetrics?: Record<string, number[]>,
): Promise<void> {
  prepareOutputDir(dir);
  const tensors: Record<string, Tensor> = {};
  const metadata: Record<string, string> = {};
  for (const [name, module] of Object.entries(model.modules())) {
    for (const [key, t] of Object.entries(module.stateDict())) tensors[`${name}.${key}`] = t;
  }
  for (const [name, opt] of Object.entries(model.optimizers())) {
    const sd = opt.stateDict();
    for (const [key, t] of Object.entries(sd.tensors)) tensors[`optim.${name}.${key}`] = t;
    for (const [key, v] of Object.entries(sd.metadata)) metadata[`optim.${name}.${key}`] = v;
  }
  // GANs (image and audio) count steps for their critic schedule and keep the last generator
  // loss; text models count steps for their learning-rate schedule; VAEs have neither.
  const { steps = 0, lastG = Number.NaN } = model as { steps?: number; lastG?: number };
  const meta: CheckpointMeta = {
    format: 2,
    config: model.config as AnyModelConfig,
    ...('tokenizer' in model ? { tokenizer: model.tokenizer.toJSON() } : {}),
    ...(epochMetrics ? { epochMetrics } : {}),
    position,
    noiseOffset: model.noise.offset,
    modelSteps: steps,
    lastGeneratorLoss: Number.isFinite(lastG) ? lastG : null,
    history,
    run,
  };
  metadata[META_KEY] = JSON.stringify(meta);
  writeFileAtomically(join(dir, CHECKPOINT_FILE), await saveSafetensors(tensors, metadata));
}

/** Splits `prefix.rest` entries of a record into the ones under `prefix.` (prefix removed). */
function under<T>(record: Record<string, T>, prefix: string): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [key, v] of Object.entries(record))
    if (key.startsWith(`${prefix}.`)) out[key.slice(prefix.length + 1)] = v;
  return out;
}

function isCount(v: unknown): v is number {
  return Number.isSafeInteger(v) && (v as number) >= 0;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Why `meta` is not a valid {@link CheckpointMeta}, or null when it is. */
function metaProblem(meta: unknown): string | null {
  if (!isRecord(meta)) return 'its metadata is not an object';
  if (meta.format !== 2) return `unknown checkpoint format ${JSON.stringify(meta.format)}`;
  const { config, position, history } = meta;
  const family = isRecord(config) ? modelFamily(config.kind) : undefined;
  if (!isRecord(config) || !family)
    return `config.kind ${JSON.stringify(isRecord(config) ? config.kind : config)} is not a model kind`;
  if (!isCount(config.seed)) return `config.seed ${JSON.stringify(config.seed)} is not an integer ≥ 0`;
  // Text models have no latent code; they carry their tokenizer instead.
  if (family !== 'text' && (!isCount(config.latent) || config.latent < 1))
    return `config.latent ${JSON.stringify(config.latent)} is not an integer ≥ 1`;
  if (family === 'text' && !isRecord(meta.tokenizer))
    return `a ${config.kind} checkpoint needs its tokenizer, got ${JSON.stringify(meta.tokenizer)}`;
  if (typeof config.lr !== 'number' || !(config.lr > 0) || !Number.isFinite(config.lr))
    return `config.lr ${JSON.stringify(config.lr)} is not a positive number`;
  if (!isRecord(position)) return 'position is missing';
  for (const key of ['epoch', 'step', 'globalStep'] as const)
    if (!isCount(position[key]))
      return `position.${key} ${JSON.stringify(position[key])} is not an integer ≥ 0`;
  if ((position.step as number) > (position.globalStep as number))
    return `position.step ${position.step} exceeds position.globalStep ${position.globalStep}`;
  for (const key of ['noiseOffset', 'modelSteps'] as const)
    if (!isCount(meta[key])) return `${key} ${JSON.stringify(meta[key])} is not an integer ≥ 0`;
  if (meta.lastGeneratorLoss !== null && !Number.isFinite(meta.lastGeneratorLoss))
    return `lastGeneratorLoss ${JSON.stringify(meta.lastGeneratorLoss)} is not a number`;
  if (!isRecord(history) || !Object.values(history).every((h) => Array.isArray(h)))
    return 'history is not a record of loss arrays';
  if (!isRecord(meta.run)) return 'run is not an object';
  const { epochMetrics } = meta;
  if (
    epochMetrics !== undefined &&
    !(
      isRecord(epochMetrics) &&
      Object.values(epochMetrics).every((m) => Array.isArray(m) && m.every((v) => typeof v === 'number'))
    )
  )
    return 'epochMetrics is not a record of number arrays';
  return null;
}

/** The checkpoint metadata in a safetensors file's header, checked. */
function metaOf(bytes: Uint8Array, file: string): CheckpointMeta {
  const fail = (why: string) =>
    new FluxionError('loadCheckpoint', `'${file}' is not a valid checkpoint: ${why}`);
  if (bytes.byteLength < 8) throw fail(`${bytes.byteLength} bytes is too short`);
  const length = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(bytes.byteLength - 8)) throw fail(`its header length ${length} exceeds the file`);
  let raw: unknown;
  try {
    const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + Number(length))));
    const metadata = isRecord(header) ? header.__metadata__ : undefined;
    raw = isRecord(metadata) && Object.hasOwn(metadata, META_KEY) ? metadata[META_KEY] : undefined;
    if (typeof raw !== 'string') {
      throw fail(
        `it has no '${META_KEY}' metadata (a checkpoint of an older Fluxion, whose config.json and weights could not be checked against each other, or not a Fluxion checkpoint)`,
      );
    }
    raw = JSON.parse(raw);
  } catch (e) {
    throw e instanceof FluxionError ? e : fail(`its header is not valid JSON (${(e as Error).message})`);
  }
  const problem = metaProblem(raw);
  if (problem) throw fail(problem);
  return raw as CheckpointMeta;
}

function readCheckpointFile(dir: string): { bytes: Uint8Array; file: string } {
  const file = join(dir, CHECKPOINT_FILE);
  try {
    return { bytes: readFileSync(file), file };
  } catch (e) {
    throw new FluxionError('loadCheckpoint', `cannot read a checkpoint in '${dir}': ${(e as Error).message}`);
  }
}

/**
 * Reads and checks a checkpoint's metadata (config, position, history, run options) without
 * building the model, so a command line can check its arguments against it before a backend starts.
 *
 * @example
 * ```ts
 * const { position, config } = readCheckpointMeta('runs/vae'); // { epoch: 2, step: 0, globalStep: 140 }
 * ```
 */
export function readCheckpointMeta(dir: string): CheckpointMeta {
  const { bytes, file } = readCheckpointFile(dir);
  return metaOf(bytes, file);
}

/** Loads the tensors of a checkpoint file into `model`, and its noise offset and step counters. */
function restore(model: CheckpointModel, bytes: Uint8Array, meta: CheckpointMeta): void {
  const { tensors, metadata } = loadSafetensors(bytes);
  try {
    for (const [name, module] of Object.entries(model.modules())) module.loadStateDict(under(tensors, name));
    for (const [name, opt] of Object.entries(model.optimizers())) {
      opt.loadStateDict({
        tensors: under(tensors, `optim.${name}`),
        metadata: under(metadata, `optim.${name}`),
      });
    }
  } finally {
    for (const t of Object.values(tensors)) t.dispose();
  }
  model.noise.offset = meta.noiseOffset;
  const counters = model as { steps?: number; lastG?: number };
  if ('steps' in counters) counters.steps = meta.modelSteps;
  if ('lastG' in counters) counters.lastG = meta.lastGeneratorLoss ?? Number.NaN;
}

/** The checkpoint in `dir`, checked to hold a model of `family` (`use` names the loader to call instead). */
function readFamily(dir: string, family: 'image' | 'text' | 'audio') {
  const { bytes, file } = readCheckpointFile(dir);
  const meta = metaOf(bytes, file);
  const found = modelFamily(meta.config.kind);
  if (found !== family) {
    const loader = { image: 'loadCheckpoint', text: 'loadTextCheckpoint', audio: 'loadAudioCheckpoint' }[
      found!
    ];
    throw new FluxionError(
      'loadCheckpoint',
      `'${file}' holds a ${meta.config.kind} (a${found === 'image' ? 'n' : ''} ${found} model), not a${family === 'image' ? 'n' : ''} ${family} model; load it with ${loader}`,
    );
  }
  return { bytes, file, meta };
}

/** Builds a model from a checkpoint's config; a config the model refuses is an invalid checkpoint. */
function build<M>(file: string, make: () => M): M {
  try {
    return make();
  } catch (e) {
    throw new FluxionError('loadCheckpoint', `'${file}' is not a valid checkpoint: ${(e as Error).message}`);
  }
}

/**
 * Reads a checkpoint of an image model: rebuilds the model from its config, loads every module and
 * optimizer state and the noise stream's position. A file whose metadata is missing or invalid (a
 * hand-edited position, another format) is refused with an error that says what is wrong, and so
 * is a checkpoint of a text or audio model (see {@link loadTextCheckpoint},
 * {@link loadAudioCheckpoint}).
 *
 * @example
 * ```ts
 * const { model, meta } = loadCheckpoint('runs/vae');
 * const images = model.sample(16);
 * ```
 */
export function loadCheckpoint(dir: string): { model: GenerativeModel; meta: CheckpointMeta<ModelConfig> } {
  const { bytes, meta } = readFamily(dir, 'image');
  const config = meta.config as ModelConfig;
  const model = createModel(config.kind, config);
  restore(model, bytes, meta);
  return { model, meta: meta as CheckpointMeta<ModelConfig> };
}

/**
 * Reads a checkpoint of a text language model (`charlm`, `charrnn`; see
 * {@link loadTextLatentCheckpoint} for `textvae` and `textgan`): rebuilds the tokenizer and the model
 * from the metadata (`createTextModel(config, CharTokenizer.fromJSON(tokenizer))`, which checks
 * them against each other), loads the weights, the optimizer state, the noise offset and the step
 * count that drives the learning-rate schedule.
 *
 * @example
 * ```ts
 * const { model } = loadTextCheckpoint('runs/charlm');
 * await model.sample(5, { temperature: 0.8 }); // ['kaylen', …]
 * ```
 */
export function loadTextCheckpoint(dir: string): { model: TextModel; meta: CheckpointMeta<TextModelConfig> } {
  const { bytes, file, meta } = readFamily(dir, 'text');
  if (TEXT_LATENT_KINDS.includes(meta.config.kind as never))
    throw new FluxionError(
      'loadCheckpoint',
      `'${file}' holds a ${meta.config.kind} (a latent text model); load it with loadTextLatentCheckpoint`,
    );
  const config = meta.config as TextModelConfig;
  const model = build(file, () => createTextModel(config, CharTokenizer.fromJSON(meta.tokenizer)));
  restore(model, bytes, meta);
  return { model, meta: meta as CheckpointMeta<TextModelConfig> };
}

/**
 * Reads a checkpoint of a latent text model (`textvae`, `textgan`): rebuilds the tokenizer and the
 * model from the metadata (`createTextLatentModel`, which checks them against each other), loads
 * every module and optimizer state, the noise offset, the step count of the schedules and (textgan)
 * the last generator loss.
 *
 * @example
 * ```ts
 * const { model } = loadTextLatentCheckpoint('runs/textvae');
 * await model.sample(5, { temperature: 0.8 }); // ['maren', …]
 * ```
 */
export function loadTextLatentCheckpoint(dir: string): {
  model: TextLatentModelOf;
  meta: CheckpointMeta<TextLatentModelConfig>;
} {
  const { bytes, file, meta } = readFamily(dir, 'text');
  if (!TEXT_LATENT_KINDS.includes(meta.config.kind as never))
    throw new FluxionError(
      'loadCheckpoint',
      `'${file}' holds a ${meta.config.kind}, not a latent text model; load it with loadTextCheckpoint`,
    );
  const config = meta.config as TextLatentModelConfig;
  const model = build(file, () => createTextLatentModel(config, CharTokenizer.fromJSON(meta.tokenizer)));
  restore(model, bytes, meta);
  return { model, meta: meta as CheckpointMeta<TextLatentModelConfig> };
}

/**
 * Either kind of text checkpoint: {@link loadTextCheckpoint} for charlm and charrnn,
 * {@link loadTextLatentCheckpoint} for textvae and textgan.
 *
 * @example
 * ```ts
 * const { model } = loadAnyTextCheckpoint('runs/textgan');
 * ```
 */
export function loadAnyTextCheckpoint(dir: string): {
  model: TextModel | TextLatentModelOf;
  meta: CheckpointMeta<TextModelConfig | TextLatentModelConfig>;
} {
  const meta = readCheckpointMeta(dir);
  return TEXT_LATENT_KINDS.includes(meta.config.kind as never)
    ? loadTextLatentCheckpoint(dir)
    : loadTextCheckpoint(dir);
}

/**
 * Reads a checkpoint of an audio model (`wavegan`, `specvae`): rebuilds it from its config (checked
 * by {@link waveganConfig} or {@link specVaeConfig}), loads every module and optimizer state (a
 * specvae's spectrogram statistics are buffers of its codec module), the noise offset and, for
 * wavegan, the critic schedule's step count and the last generator loss.
 *
 * @example
 * ```ts
 * const { model } = loadAudioCheckpoint('runs/wavegan');
 * const sevens = model.sample(4, { labels: [7, 7, 7, 7] }); // [4, 8192] in [−1, 1]
 * ```
 */
export function loadAudioCheckpoint(dir: string): {
  model: AudioModel;
  meta: CheckpointMeta<AudioModelConfig>;
} {
  const { bytes, file, meta } = readFamily(dir, 'audio');
  const config = meta.config as AudioModelConfig;
  const model: AudioModel = build(file, () =>
    config.kind === 'specvae' ? new SpecVae(specVaeConfig(config)) : new WaveGan(waveganConfig(config)),
  );
  restore(model, bytes, meta);
  return { model, meta: meta as CheckpointMeta<AudioModelConfig> };
}
