/**
 * TensorFlow.js 4.22 as a peer: its `webgpu` (Dawn through `navigator.gpu`), `wasm` and `cpu`
 * backends. Load this module only after `setupWebGPU()` (the WebGPU backend registers itself at
 * import time only when `navigator.gpu` exists).
 *
 * Training steps are raw ops with `tf.variableGrads` and `tf.train.adam`, the same definitions as
 * every other engine (models.ts). TensorFlow.js convolutions want NHWC images and `[k, k, in, out]`
 * filters, so images and filters are converted on upload and read, and the Dense weights next to a
 * reshape between flat and image form are permuted once at upload, so that no transpose runs inside
 * a timed step. 1-D convolutions run as 2-D ones over `[N, 1, L, C]` (TensorFlow.js has no 1-D
 * transposed convolution, and its `conv1d` pads the height too when given a number).
 *
 * The WGAN-GP step nests `tf.grad` (the critic's input gradient) inside `minimize`, so its
 * critic's LeakyReLU is written as `(1 + a)/2 · x + (1 − a)/2 · |x|`: TensorFlow.js's own
 * `leakyRelu` gradient goes through `greater`, which has no gradient, so a second derivative
 * through it fails. The character Transformer is written out in ops (one-hot products for the
 * embedding, LayerNorm from moments, exact GELU through `erf`), with AdamW and clipping by hand:
 * `tf.train` has no AdamW.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-webgpu';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import type { CharLmSpec, HostTensor, Layer, ModelSpec, Network, StepInputs } from '../models.js';
import { LEAKY_SLOPE, modelNetworks } from '../models.js';
import type { ConvGeometry, Engine, HostLayout, MatmulLayout, OpsEngine, StepRunner } from './engine.js';

/** Points the WASM backend at its binaries: beside this bundle (GPU kit) or in node_modules. */
function locateWasmBinaries(): void {
  const here = dirname(fileURLToPath(import.meta.url));
  if (existsSync(join(here, 'tfjs-backend-wasm.wasm'))) {
    setWasmPaths(`${here}/`);
    return;
  }
  const pkg = createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm/package.json');
  setWasmPaths(`${join(dirname(pkg), 'dist')}/`);
}
locateWasmBinaries();

const NCHW_TO_NHWC = [0, 2, 3, 1];
const NHWC_TO_NCHW = [0, 3, 1, 2];
// PyTorch conv filter [out, in, k, k] → TensorFlow [k, k, in, out].
const OIHW_TO_HWIO = [2, 3, 1, 0];
const HWIO_TO_OIHW = [3, 2, 0, 1];

/** `[N, C, L]` → `[N, 1, L, C]`; a filter `[O, C, K]` → `[1, K, C, O]`. */
function oneDToEngine(t: tf.Tensor, layout: 'ncl' | 'oik'): tf.Tensor {
  const [a, b, c] = t.shape;
  return layout === 'ncl'
    ? tf.reshape(tf.transpose(t, [0, 2, 1]), [a, 1, c, b])
    : tf.reshape(tf.transpose(t, [2, 1, 0]), [1, c, b, a]);
}

/** The inverse of {@link oneDToEngine}. */
function oneDFromEngine(t: tf.Tensor, layout: 'ncl' | 'oik'): tf.Tensor {
  const [a, b, c, d] = t.shape as number[];
  return layout === 'ncl'
    ? tf.transpose(tf.reshape(t, [a, c, d]), [0, 2, 1])
    : tf.transpose(tf.reshape(t, [b, c, d]), [2, 1, 0]);
}

function toEngineLayout(t: tf.Tensor, layout: HostLayout): tf.Tensor {
  if (layout === 'plain') return t;
  if (layout === 'ncl' || layout === 'oik') return tf.tidy(() => oneDToEngine(t, layout));
  return tf.tidy(() => tf.transpose(t, layout === 'nchw' ? NCHW_TO_NHWC : OIHW_TO_HWIO));
}

function fromEngineLayout(t: tf.Tensor, layout: HostLayout): tf.Tensor {
  if (layout === 'plain') return t;
  if (layout === 'ncl' || layout === 'oik') return tf.tidy(() => oneDFromEngine(t, layout));
  return tf.tidy(() => tf.transpose(t, layout === 'nchw' ? NHWC_TO_NCHW : HWIO_TO_OIHW));
}

/** Padding of a 1-D convolution run as a 2-D one over `[N, 1, L, C]`: along the length only. */
const padLength = (p: number) =>
  [
    [0, 0],
    [0, 0],
    [p, p],
    [0, 0],
  ] as Parameters<typeof tf.conv2d>[3];

/** A 1-D convolution over `[N, 1, L, C]` with a `[1, K, C, O]` filter. */
function conv1dNlc(x: tf.Tensor, w: tf.Tensor, g: ConvGeometry): tf.Tensor4D {
  return tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, [1, g.stride], padLength(g.padding));
}

/** The parts of TensorFlow.js's WebGPU backend that flush its recorded work. */
interface TfWebGPUBackend {
  device: GPUDevice;
  ensureCommandEncoderReady(): void;
  endComputePassEncoder(): void;
  submitQueue(): void;
}

/**
 * Waits until the backend has finished the work queued so far. WebGPU: close the open compute
 * pass, submit the command encoder (as its own `read` does), then wait for the queue; the CPU
 * backends run synchronously.
 */
async function syncBackend(): Promise<void> {
  const backend = tf.backend() as Partial<TfWebGPUBackend>;
  if (!backend.submitQueue || !backend.device) return;
  const gpu = backend as TfWebGPUBackend;
  gpu.ensureCommandEncoderReady();
  gpu.endComputePassEncoder();
  gpu.submitQueue();
  await gpu.device.queue.onSubmittedWorkDone();
}

const ops: OpsEngine<tf.Tensor> = {
  fromArray(data, shape, layout = 'plain') {
    const plain = tf.tensor(data, [...shape], 'float32');
    const t = toEngineLayout(plain, layout);
    if (t !== plain) plain.dispose();
    return t;
  },
  matmul: (a, b, layout: MatmulLayout) =>
    tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D, layout === 'tn', layout === 'nt'),
  add: (a, b) => tf.add(a, b),
  exp: (a) => tf.exp(a),
  sum: (a) => tf.sum(a),
  conv2d: (x, w, g: ConvGeometry) => tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, g.stride, g.padding),
  conv2dGrads(x, w, dy, g: ConvGeometry) {
    const f = (xx: tf.Tensor, ww: tf.Tensor) =>
      tf.conv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, g.stride, g.padding);
    const [dx, dw] = tf.grads(f)([x, w], dy);
    return [dx, dw];
  },
  conv1d: (x, w, g: ConvGeometry) => conv1dNlc(x, w, g),
  conv1dGrads(x, w, dy, g: ConvGeometry) {
    const [dx, dw] = tf.grads((xx: tf.Tensor, ww: tf.Tensor) => conv1dNlc(xx, ww, g))([x, w], dy);
    return [dx, dw];
  },
  async read(h, layout = 'plain') {
    const t = fromEngineLayout(h, layout);
    const data = (await t.data()) as Float32Array;
    if (t !== h) t.dispose();
    return data;
  },
  sync: () => syncBackend(),
  dispose: (h) => h.dispose(),
};

/** One network's variables in TensorFlow.js layouts, and its forward pass. */
class TfNetwork {
  readonly vars: tf.Variable[] = [];
  private readonly slots: (tf.Variable[] | null)[] = [];

  /**
   * `secondOrder`: LeakyReLU written as `(1 + a)/2 · x + (1 − a)/2 · |x|`, whose gradient can be
   * differentiated again (the WGAN-GP critic).
   */
  constructor(
    readonly net: Network,
    params: HostTensor[],
    private readonly secondOrder = false,
  ) {
    let p = 0;
    net.layers.forEach((layer, i) => {
      if (layer.kind === 'reshape') {
        this.slots.push(null);
        return;
      }
      const [w, b] = [params[p++], params[p++]];
      const weight = tf.tidy(() => this.weightFor(layer, i, w));
      const bias = tf.tidy(() => this.biasFor(layer, i, b));
      const vars = [tf.variable(weight), tf.variable(bias)];
      weight.dispose();
      bias.dispose();
      this.vars.push(...vars);
      this.slots.push(vars);
    });
  }

  /**
   * The channels-first shape (`[C, H, W]` image or `[C, L]` signal) of a reshape right after
   * (`+1`) or before (`−1`) layer i.
   */
  private imageShapeNear(i: number, side: 1 | -1): number[] | null {
    const layer = this.net.layers[i + side];
    if (side === 1) return layer?.kind === 'reshape' && layer.shape.length >= 2 ? layer.shape : null;
    // A flattening reshape before layer i: its input shape is the output of the conv before it.
    if (layer?.kind !== 'reshape' || layer.shape.length !== 1) return null;
    const conv = this.net.layers[i - 2];
    if (conv?.kind === 'conv1d' || conv?.kind === 'convTranspose1d')
      return [conv.outChannels, layer.shape[0] / conv.outChannels];
    if (!conv || (conv.kind !== 'conv' && conv.kind !== 'convTranspose')) return null;
    const hw = Math.sqrt(layer.shape[0] / conv.outChannels);
    return [conv.outChannels, hw, hw];
  }

  private weightFor(layer: Exclude<Layer, { kind: 'reshape' }>, i: number, w: HostTensor): tf.Tensor {
    const t = tf.tensor(w.data, w.shape);
    if (layer.kind === 'conv') return tf.transpose(t, OIHW_TO_HWIO);
    // ConvTranspose2d [in, out, k, k] → TensorFlow's conv2dTranspose filter [k, k, out, in].
    if (layer.kind === 'convTranspose') return tf.transpose(t, [2, 3, 1, 0]);
    // Conv1d [out, in, k] → [1, k, in, out]; ConvTranspose1d [in, out, k] → [1, k, out, in].
    if (layer.kind === 'conv1d' || layer.kind === 'convTranspose1d') {
      const [a, b, k] = w.shape;
      return tf.reshape(tf.transpose(t, [2, 1, 0]), [1, k, b, a]);
    }
    // Dense: TensorFlow multiplies x·W with W [in, out]; channels-first features become
    // channels-last order (CHW → HWC, CL → LC).
    const [out, inF] = w.shape;
    let m = t;
    const after = this.imageShapeNear(i, 1);
    if (after) {
      const perm = after.length === 3 ? [1, 2, 0, 3] : [1, 0, 2];
      m = tf.reshape(tf.transpose(tf.reshape(m, [...after, inF]), perm), [out, inF]);
    }
    const before = this.imageShapeNear(i, -1);
    if (before) {
      const perm = before.length === 3 ? [0, 2, 3, 1] : [0, 2, 1];
      m = tf.reshape(tf.transpose(tf.reshape(m, [out, ...before]), perm), [out, inF]);
    }
    return tf.transpose(m);
  }

  private biasFor(layer: Exclude<Layer, { kind: 'reshape' }>, i: number, b: HostTensor): tf.Tensor {
    const after = layer.kind === 'dense' ? this.imageShapeNear(i, 1) : null;
    if (!after) return tf.tensor(b.data, b.shape);
    // Image-order features [C, H, W] become HWC order, permuted here rather than by reshaping a
    // transposed tensor: a reshape shares its data, and the WASM backend's fused product checks
    // the rank of the data ([H, W, C]), not of the tensor, so it would reject the bias.
    const [c, ...spatial] = after;
    const positions = spatial.reduce((x, y) => x * y, 1);
    const hwc = new Float32Array(b.data.length);
    for (let ch = 0; ch < c; ch++)
      for (let p = 0; p < positions; p++) hwc[p * c + ch] = b.data[ch * positions + p];
    return tf.tensor(hwc, b.shape);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const batch = x.shape[0];
    this.net.layers.forEach((layer, i) => {
      if (layer.kind === 'reshape') {
        const s = layer.shape;
        // Channels last: an image [C, H, W] is [H, W, C], a signal [C, L] is [1, L, C].
        const shape =
          s.length === 3
            ? [batch, s[1], s[2], s[0]]
            : s.length === 2
              ? [batch, 1, s[1], s[0]]
              : [batch, ...s];
        x = tf.reshape(x, shape);
        return;
      }
      const [w, b] = this.slots[i]!;
      // The product with its bias in one kernel, as `tf.layers.dense` computes it.
      if (layer.kind === 'dense') x = tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b });
      else if (layer.kind === 'conv1d') x = tf.add(conv1dNlc(x, w, layer), b);
      else if (layer.kind === 'convTranspose1d') {
        const { stride, padding, outputPadding, kernel, outChannels } = layer;
        const length = (x.shape[2]! - 1) * stride - 2 * padding + kernel + outputPadding;
        const out: [number, number, number, number] = [batch, 1, length, outChannels];
        x = tf.add(
          tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, out, [1, stride], padLength(padding)),
          b,
        );
      } else if (layer.kind === 'conv') {
        x = tf.add(tf.conv2d(x as tf.Tensor4D, w as tf.Tensor4D, layer.stride, layer.padding), b);
      } else {
        const [, h, wd] = x.shape;
        const out: [number, number, number, number] = [
          batch,
          h! * layer.stride,
          wd! * layer.stride,
          layer.outChannels,
        ];
        x = tf.add(
          tf.conv2dTranspose(x as tf.Tensor4D, w as tf.Tensor4D, out, layer.stride, layer.padding),
          b,
        );
      }
      if (layer.act === 'relu') x = tf.relu(x);
      else if (layer.act === 'leakyRelu' && this.secondOrder) {
        const a = LEAKY_SLOPE;
        x = tf.add(tf.mul(x, (1 + a) / 2), tf.mul(tf.abs(x), (1 - a) / 2));
      } else if (layer.act === 'leakyRelu') x = tf.leakyRelu(x, LEAKY_SLOPE);
      else if (layer.act === 'tanh') x = tf.tanh(x);
    });
    return x;
  }
}

/** log(1 + eˣ) without overflow: max(x, 0) + log1p(e^−|x|). */
function softplus(x: tf.Tensor): tf.Tensor {
  return tf.add(tf.relu(x), tf.log1p(tf.exp(tf.neg(tf.abs(x)))));
}

/** A training-step runner: variables, Adam per network group, last losses. */
class TfRunner implements StepRunner {
  private readonly nets: TfNetwork[];
  private readonly optimizers: tf.Optimizer[];
  private last: tf.Scalar[] = [];

  constructor(
    private readonly spec: Exclude<ModelSpec, CharLmSpec>,
    params: HostTensor[][],
  ) {
    const secondOrder = spec.kind === 'wgan-gp';
    this.nets = modelNetworks(spec).map((net, i) => new TfNetwork(net, params[i], secondOrder));
    const { lr, beta1, beta2, eps } = spec.adam;
    const groups = spec.kind === 'vae' ? 1 : 2;
    this.optimizers = Array.from({ length: groups }, () => tf.train.adam(lr, beta1, beta2, eps));
  }

  step(inputs: StepInputs): void {
    for (const l of this.last) l.dispose();
    const input = (name: string) => tf.tensor(inputs[name].data, inputs[name].shape);
    const held = Object.keys(inputs).map((k) => [k, input(k)] as const);
    const x = Object.fromEntries(held);
    if (this.spec.kind === 'gan') {
      const [g, d] = this.nets;
      const fake = tf.tidy(() => g.forward(x.z1));
      const dLoss = this.optimizers[1].minimize(
        () =>
          tf.add(
            tf.mean(softplus(tf.neg(d.forward(x.real)))),
            tf.mean(softplus(d.forward(fake))),
          ) as tf.Scalar,
        true,
        d.vars,
      )!;
      fake.dispose();
      const gLoss = this.optimizers[0].minimize(
        () => tf.mean(softplus(tf.neg(d.forward(g.forward(x.z2))))) as tf.Scalar,
        true,
        g.vars,
      )!;
      this.last = [dLoss, gLoss];
    } else if (this.spec.kind === 'wgan-gp') {
      const [g, d] = this.nets;
      const gpWeight = this.spec.gpWeight;
      const fake = tf.tidy(() => g.forward(x.z1));
      const dLoss = this.optimizers[1].minimize(
        () => {
          // WGAN-GP: E[D(fake)] − E[D(real)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)·fake.
          const interp = tf.add(tf.mul(x.eps, x.real), tf.mul(tf.sub(1, x.eps), fake));
          const grad = tf.grad((xi: tf.Tensor) => tf.sum(d.forward(xi)))(interp);
          const norm = tf.sqrt(tf.add(tf.sum(tf.square(grad), 1), 1e-12));
          const penalty = tf.mean(tf.square(tf.sub(norm, 1)));
          const wasserstein = tf.sub(tf.mean(d.forward(fake)), tf.mean(d.forward(x.real)));
          return tf.add(wasserstein, tf.mul(penalty, gpWeight)) as tf.Scalar;
        },
        true,
        d.vars,
      )!;
      fake.dispose();
      const gLoss = this.optimizers[0].minimize(
        () => tf.neg(tf.mean(d.forward(g.forward(x.z2)))) as tf.Scalar,
        true,
        g.vars,
      )!;
      this.last = [dLoss, gLoss];
    } else {
      const [enc, mu, logVar, dec] = this.nets;
      const batch = this.spec.batch;
      const loss = this.optimizers[0].minimize(
        () => {
          const h = enc.forward(x.x);
          const m = mu.forward(h);
          const lv = logVar.forward(h);
          const z = tf.add(m, tf.mul(tf.exp(tf.mul(lv, 0.5)), x.eps));
          const logits = dec.forward(z);
          // BCE with logits summed over pixels: softplus(l) − x·l.
          const recon = tf.sum(tf.sub(softplus(logits), tf.mul(x.x, logits)));
          const kl = tf.mul(tf.sum(tf.sub(tf.sub(tf.add(lv, 1), tf.square(m)), tf.exp(lv))), -0.5);
          return tf.div(tf.add(recon, kl), batch) as tf.Scalar;
        },
        true,
        this.nets.flatMap((n) => n.vars),
      )!;
      this.last = [loss];
    }
    for (const [, t] of held) t.dispose();
  }

  sync(): Promise<void> {
    return syncBackend();
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map(async (l) => (await l.data())[0]));
  }

  parameterShapes(): number[][] {
    return this.nets.flatMap((n) => n.vars.map((v) => [...v.shape]));
  }

  dispose(): void {
    for (const l of this.last) l.dispose();
    for (const o of this.optimizers) o.dispose();
    for (const n of this.nets) for (const v of n.vars) v.dispose();
  }
}

/** LayerNorm over the last axis: `(x − μ) / √(σ² + ε) · γ + β` (biased variance). */
function layerNorm(x: tf.Tensor, gamma: tf.Tensor, beta: tf.Tensor, eps: number): tf.Tensor {
  const centred = tf.sub(x, tf.mean(x, -1, true));
  const variance = tf.mean(tf.square(centred), -1, true);
  return tf.add(tf.mul(tf.div(centred, tf.sqrt(tf.add(variance, eps))), gamma), beta);
}

/** Exact GELU: `x · Φ(x) = ½x(1 + erf(x/√2))`. */
function gelu(x: tf.Tensor): tf.Tensor {
  return tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1));
}

/**
 * The character Transformer (models.ts `CHARLM`) in TensorFlow.js ops, with AdamW and global
 * gradient-norm clipping by hand. Dense weights are kept `[in, out]` (transposed once at upload);
 * the token table `E` `[vocab, dim]` serves the embedding (a one-hot product) and the tied output
 * layer (`x Eᵀ`).
 */
class TfCharLmRunner implements StepRunner {
  private readonly vars: tf.Variable[];
  private readonly m: tf.Variable[];
  private readonly v: tf.Variable[];
  /** Whether each parameter gets weight decay (the matrices). */
  private readonly decays: boolean[];
  private readonly mask: tf.Tensor;
  private t = 0;
  private last: tf.Tensor[] = [];

  constructor(
    private readonly spec: CharLmSpec,
    params: HostTensor[],
  ) {
    this.vars = params.map((h, i) => {
      // Dense weights [out, in] → [in, out]; the token table (parameter 0) stays [vocab, dim].
      const t = tf.tensor(h.data, h.shape);
      const laidOut = h.shape.length === 2 && i >= 2 ? tf.transpose(t) : t;
      const variable = tf.variable(laidOut);
      if (laidOut !== t) laidOut.dispose();
      t.dispose();
      return variable;
    });
    this.decays = params.map((h) => h.shape.length >= 2);
    this.m = this.vars.map((p) => tf.variable(tf.zerosLike(p), false));
    this.v = this.vars.map((p) => tf.variable(tf.zerosLike(p), false));
    // Causal mask: 0 where a position may attend (key ≤ query), −1e9 above the diagonal.
    const t = spec.context;
    this.mask = tf.tensor(
      Float32Array.from({ length: t * t }, (_, k) => (k % t > Math.floor(k / t) ? -1e9 : 0)),
      [t, t],
    );
  }

  private loss(ids: tf.Tensor, targets: tf.Tensor): tf.Scalar {
    const { batch: b, context: t, dim, heads, vocab, lnEps } = this.spec;
    const d = dim / heads;
    const [tokens, positions, ...rest] = this.vars;
    // (A cast, not `oneHot`'s dtype argument: with it, the WASM backend's loss came out as 4e-45.)
    const oneHot = (i: tf.Tensor) => tf.cast(tf.oneHot(i as tf.Tensor1D, vocab), 'float32');
    let x = tf.add(tf.reshape(tf.matMul(oneHot(ids), tokens), [b, t, dim]), positions);
    x = tf.reshape(x, [b * t, dim]);
    let p = 0;
    const next = () => rest[p++];
    const dense = (h: tf.Tensor) => {
      const [w, bias] = [next(), next()];
      return tf.fused.matMul({ a: h as tf.Tensor2D, b: w as tf.Tensor2D, bias });
    };
    for (let layer = 0; layer < this.spec.layers; layer++) {
      const h = layerNorm(x, next(), next(), lnEps);
      // [B·T, 3·dim] → q, k, v [B·h, T, d].
      const qkv = tf.transpose(tf.reshape(dense(h), [b, t, 3, heads, d]), [2, 0, 3, 1, 4]);
      const [q, k, v] = tf.split(qkv, 3, 0).map((s) => tf.reshape(s, [b * heads, t, d]));
      const scores = tf.add(tf.mul(tf.matMul(q, k, false, true), 1 / Math.sqrt(d)), this.mask);
      const attended = tf.matMul(tf.softmax(scores), v); // [B·h, T, d]
      const merged = tf.reshape(tf.transpose(tf.reshape(attended, [b, heads, t, d]), [0, 2, 1, 3]), [
        b * t,
        dim,
      ]);
      x = tf.add(x, dense(merged));
      const h2 = layerNorm(x, next(), next(), lnEps);
      x = tf.add(x, dense(gelu(dense(h2))));
    }
    const logits = tf.matMul(layerNorm(x, next(), next(), lnEps), tokens, false, true); // [B·T, vocab]
    const picked = tf.sum(tf.mul(tf.logSoftmax(logits), oneHot(targets)), 1);
    return tf.neg(tf.mean(picked)) as tf.Scalar;
  }

  step(inputs: StepInputs): void {
    for (const l of this.last) l.dispose();
    const ints = (h: HostTensor) => tf.tensor(Int32Array.from(h.data), [h.data.length], 'int32');
    const [ids, targets] = [ints(inputs.ids), ints(inputs.targets)];
    const { value, grads } = tf.variableGrads(() => this.loss(ids, targets), this.vars);
    const { lr, beta1, beta2, eps, weightDecay } = this.spec.adamw;
    this.t++;
    const stepSize = lr / (1 - beta1 ** this.t);
    const rootCorrection2 = Math.sqrt(1 - beta2 ** this.t);
    tf.tidy(() => {
      const gs = this.vars.map((p) => grads[p.name]);
      // Clip the global norm to `clip`: every gradient times min(1, clip / (norm + 1e-6)).
      // (A stack, not `addN`: the WebGPU backend's addN binds every input, 38 here, over its limit.)
      const norm = tf.sqrt(tf.sum(tf.stack(gs.map((g) => tf.sum(tf.square(g))))));
      const coef = tf.minimum(tf.div(this.spec.clip, tf.add(norm, 1e-6)), 1);
      this.vars.forEach((param, i) => {
        const g = tf.mul(gs[i], coef);
        const decayed = this.decays[i] ? tf.mul(param, 1 - lr * weightDecay) : param;
        const m = tf.add(tf.mul(this.m[i], beta1), tf.mul(g, 1 - beta1));
        const v = tf.add(tf.mul(this.v[i], beta2), tf.mul(tf.square(g), 1 - beta2));
        const update = tf.div(m, tf.add(tf.div(tf.sqrt(v), rootCorrection2), eps));
        param.assign(tf.sub(decayed, tf.mul(update, stepSize)));
        this.m[i].assign(m);
        this.v[i].assign(v);
      });
    });
    tf.dispose([ids, targets, ...Object.values(grads)]);
    this.last = [value];
  }

  sync(): Promise<void> {
    return syncBackend();
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map(async (l) => (await l.data())[0]));
  }

  parameterShapes(): number[][] {
    return this.vars.map((v) => [...v.shape]);
  }

  dispose(): void {
    tf.dispose([...this.last, ...this.vars, ...this.m, ...this.v, this.mask]);
  }
}

/** TensorFlow.js on one backend, or null when that backend fails to initialise here. */
export async function tfjsEngine(backend: 'webgpu' | 'wasm' | 'cpu'): Promise<Engine | null> {
  // Every op on the device: TensorFlow.js's WebGPU backend would otherwise run ops on tensors of
  // under 1,000 elements on the CPU when their data is there, hiding its dispatch cost. The size
  // threshold (`WEBGPU_CPU_HANDOFF_SIZE_THRESHOLD`) is read once when the backend's module loads,
  // so setting it here would change nothing; `WEBGPU_CPU_FORWARD` is read at every op.
  if (backend === 'webgpu') tf.env().set('WEBGPU_CPU_FORWARD', false);
  if (!(await tf.setBackend(backend))) return null;
  await tf.ready();
  return {
    engine: 'tfjs',
    backend,
    slow: backend === 'cpu',
    async activate() {
      if (tf.getBackend() !== backend) await tf.setBackend(backend);
      await tf.ready();
    },
    ops: ops as OpsEngine,
    async trainer(spec, params) {
      if (spec.kind === 'charlm') return new TfCharLmRunner(spec, params[0]);
      return new TfRunner(spec, params);
    },
  };
}
