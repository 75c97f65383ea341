/**
 * Creating a model from its kind and overrides, and the config types of every family.
 */
import { FluxionError } from '@fluxion/tensor';
import { Gan, type GanConfig, ganDefaults } from './gan.js';
import { type GenerativeModel, MODEL_KINDS, type ModelKind } from './model.js';
import { Vae, type VaeConfig, vaeDefaults } from './vae.js';

/** The config of any model. */
export type ModelConfig = GanConfig | VaeConfig;

/** Whether a kind is a GAN. */
export function isGanKind(kind: ModelKind): kind is GanConfig['kind'] {
  return kind === 'gan' || kind === 'dcgan' || kind === 'cgan' || kind === 'wgan-gp';
}

/** The default config of a kind with `overrides` applied. */
export function modelConfig(kind: ModelKind, overrides: Partial<ModelConfig> = {}): ModelConfig {
  if (!MODEL_KINDS.includes(kind)) {
    throw new FluxionError(
      'createModel',
      `unknown model '${kind}'; expected one of ${MODEL_KINDS.join(', ')}`,
    );
  }
  const base = isGanKind(kind) ? ganDefaults(kind) : vaeDefaults(kind);
  return { ...base, ...overrides, kind } as ModelConfig;
}

/**
 * A fresh model of a kind.
 *
 * @example
 * ```ts
 * const vae = createModel('vae', { latent: 16, seed: 3 });
 * ```
 */
export function createModel(kind: ModelKind, overrides: Partial<ModelConfig> = {}): GenerativeModel {
  const config = modelConfig(kind, overrides);
  return isGanKind(config.kind) ? new Gan(config as GanConfig) : new Vae(config as VaeConfig);
}
