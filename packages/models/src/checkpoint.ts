/**
 * Checkpoints: a folder with `model.safetensors` (every module's state dict as
 * `<module>.<parameter>` and every optimizer's state as `optim.<name>.<key>`) and `config.json`
 * (the model config, the training position, the noise stream's offset and the loss history).
 * Each file is written to a temporary name and renamed into place, so a crash never leaves a
 * half-written file; resuming from a checkpoint continues exactly as the uninterrupted run.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, saveSafetensors } from '@fluxion/nn';
import { FluxionError, type Tensor } from '@fluxion/tensor';
import { createModel, type ModelConfig } from './models/factory.js';
import { Gan } from './models/gan.js';
import type { GenerativeModel } from './models/model.js';
import type { LossHistory, TrainPosition } from './train.js';

/** What `config.json` holds. */
export interface CheckpointMeta {
  format: 1;
  config: ModelConfig;
  position: TrainPosition;
  /** Counters consumed from the model's noise stream. */
  noiseOffset: number;
  /** Steps taken by a GAN (its critic schedule). */
  modelSteps: number;
  history: LossHistory;
  /** Options of the run (batch size, epochs, data), for `--resume`. */
  run: Record<string, unknown>;
}

function writeAtomically(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

/**
 * Writes a checkpoint of `model` at `position` into `dir` (created if needed).
 *
 * @example
 * ```ts
 * await saveCheckpoint('runs/vae', model, { epoch: 1, step: 0, globalStep: 70 }, history, { batchSize: 128 });
 * ```
 */
export async function saveCheckpoint(
  dir: string,
  model: GenerativeModel,
  position: TrainPosition,
  history: LossHistory,
  run: Record<string, unknown> = {},
): Promise<void> {
  mkdirSync(dir, { recursive: true });
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
  writeAtomically(join(dir, 'model.safetensors'), await saveSafetensors(tensors, metadata));
  const meta: CheckpointMeta = {
    format: 1,
    config: model.config as ModelConfig,
    position,
    noiseOffset: model.noise.offset,
    modelSteps: model instanceof Gan ? model.steps : 0,
    history,
    run,
  };
  writeAtomically(join(dir, 'config.json'), `${JSON.stringify(meta, null, 1)}\n`);
}

/** Splits `prefix.rest` entries of a record into the ones under `prefix.` (prefix removed). */
function under<T>(record: Record<string, T>, prefix: string): Record<string, T> {
  const out: Record<string, T> = {};
  for (const [key, v] of Object.entries(record))
    if (key.startsWith(`${prefix}.`)) out[key.slice(prefix.length + 1)] = v;
  return out;
}

/**
 * Reads a checkpoint: rebuilds the model from its config, loads every module and optimizer state
 * and the noise stream's position.
 *
 * @example
 * ```ts
 * const { model, meta } = loadCheckpoint('runs/vae');
 * const images = model.sample(16);
 * ```
 */
export function loadCheckpoint(dir: string): { model: GenerativeModel; meta: CheckpointMeta } {
  let meta: CheckpointMeta;
  let bytes: Uint8Array;
  try {
    meta = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as CheckpointMeta;
    bytes = readFileSync(join(dir, 'model.safetensors'));
  } catch (e) {
    throw new FluxionError('loadCheckpoint', `cannot read a checkpoint in '${dir}': ${(e as Error).message}`);
  }
  if (meta.format !== 1)
    throw new FluxionError('loadCheckpoint', `unknown checkpoint format ${meta.format} in '${dir}'`);
  const model = createModel(meta.config.kind, meta.config);
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
  if (model instanceof Gan) model.steps = meta.modelSteps;
  return { model, meta };
}
