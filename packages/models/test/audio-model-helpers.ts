/**
 * What the audio model tests (wavegan, spec-model) share: reading a tensor, disposing a model and
 * a batch, FSDD clips cut to their middle, a batch of a fixed order, and a safetensors round trip
 * of a model's full training state (the modules' and optimizers' state dicts plus metadata).
 */
import { type AnyModule, loadSafetensors, saveSafetensors } from '@fluxion/nn';
import type { Tensor } from '@fluxion/tensor';
import { type AudioBatch, type AudioSplit, audioBatches } from '../src/index.js';
import type { AnyOptimizer } from '../src/models/model.js';

/** A model with named modules and optimizers (what holds its training state). */
interface Stateful {
  modules(): Record<string, AnyModule>;
  optimizers(): Record<string, AnyOptimizer>;
}

export const read = async (t: Tensor): Promise<number[]> => Array.from(await t.data(), Number);

export function dispose(model: Stateful): void {
  for (const m of Object.values(model.modules())) m.dispose();
  for (const o of Object.values(model.optimizers())) o.dispose();
}

export function disposeBatch(b: AudioBatch): void {
  b.audio.dispose();
  b.labels.dispose();
}

/** FSDD train clips cut to their middle `length` samples (where the word is). */
export function middleOf(split: AudioSplit, length: number): AudioSplit {
  const audio = new Float32Array(split.count * length);
  const from = (split.length - length) >> 1;
  for (let i = 0; i < split.count; i++) {
    audio.set(split.audio.subarray(i * split.length + from, i * split.length + from + length), i * length);
  }
  return { ...split, audio, length };
}

/** Batch `index` of the seed-0 epoch-0 order of `split`, on the current backend. */
export function batchOf(split: AudioSplit, size: number, index: number): AudioBatch {
  const it = audioBatches(split, size, { seed: 0, epoch: 0 });
  for (let i = 0; i < index; i++) disposeBatch(it.next().value as AudioBatch);
  return it.next().value as AudioBatch;
}

/**
 * The full training state of `model` as safetensors bytes (what a checkpoint would write), with
 * `metadata` (the model's own counters) beside the optimizers' metadata.
 */
export async function saveState(model: Stateful, metadata: Record<string, string>): Promise<Uint8Array> {
  const tensors: Record<string, Tensor> = {};
  const meta = { ...metadata };
  for (const [name, m] of Object.entries(model.modules()))
    for (const [k, t] of Object.entries(m.stateDict())) tensors[`${name}.${k}`] = t;
  for (const [name, o] of Object.entries(model.optimizers())) {
    const sd = o.stateDict();
    for (const [k, t] of Object.entries(sd.tensors)) tensors[`optim.${name}.${k}`] = t;
    for (const [k, v] of Object.entries(sd.metadata)) meta[`optim.${name}.${k}`] = v;
  }
  return saveSafetensors(tensors, meta);
}

/** Loads `bytes` from `saveState` into `model`'s modules and optimizers; returns the metadata. */
export function loadState(model: Stateful, bytes: Uint8Array): Record<string, string> {
  const { tensors, metadata } = loadSafetensors(bytes);
  const under = <T>(r: Record<string, T>, prefix: string) =>
    Object.fromEntries(
      Object.entries(r)
        .filter(([k]) => k.startsWith(`${prefix}.`))
        .map(([k, v]) => [k.slice(prefix.length + 1), v]),
    );
  for (const [name, m] of Object.entries(model.modules())) m.loadStateDict(under(tensors, name));
  for (const [name, o] of Object.entries(model.optimizers()))
    o.loadStateDict({ tensors: under(tensors, `optim.${name}`), metadata: under(metadata, `optim.${name}`) });
  for (const t of Object.values(tensors)) t.dispose();
  return metadata;
}
