/**
 * TensorFlow.js 4.22 as a peer: its `webgpu` (Dawn through `navigator.gpu`), `wasm` and `cpu`
 * backends. Load this module only after `setupWebGPU()` (the WebGPU backend registers itself at
 * import time only when `navigator.gpu` exists).
 *
 * Training steps are raw ops with `tf.variableGrads` and `tf.train.adam`, the same definitions as
 * every other engine (models.ts). TensorFlow.js convolutions want NHWC images and `[k, k, in, out]`
 * filters, so images and filters are converted on upload and read, and the Dense weights next to a
 * reshape between flat and image form are permuted once at upload, so that no transpose runs inside
 * a timed step.
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
import type { HostTensor, Layer, ModelSpec, Network, StepInputs } from '../models.js';
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

function toEngineLayout(t: tf.Tensor, layout: HostLayout): tf.Tensor {
  if (layout === 'plain') return t;
  return tf.tidy(() => tf.transpose(t, layout === 'nchw' ? NCHW_TO_NHWC : OIHW_TO_HWIO));
}

function fromEngineLayout(t: tf.Tensor, layout: HostLayout): tf.Tensor {
  if (layout === 'plain') return t;
  return tf.tidy(() => tf.transpose(t, layout === 'nchw' ? NHWC_TO_NCHW : HWIO_TO_OIHW));
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

  constructor(
    readonly net: Network,
    params: HostTensor[],
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

  /** The image shape `[C, H, W]` of a reshape right after (`+1`) or before (`−1`) layer i. */
  private imageShapeNear(i: number, side: 1 | -1): number[] | null {
    const layer = this.net.layers[i + side];
    if (side === 1) return layer?.kind === 'reshape' && layer.shape.length === 3 ? layer.shape : null;
    // A flattening reshape before layer i: its input image shape is the output of the conv before it.
    if (layer?.kind !== 'reshape' || layer.shape.length !== 1) return null;
    const conv = this.net.layers[i - 2];
    if (!conv || (conv.kind !== 'conv' && conv.kind !== 'convTranspose')) return null;
    const hw = Math.sqrt(layer.shape[0] / conv.outChannels);
    return [conv.outChannels, hw, hw];
  }

  private weightFor(layer: Exclude<Layer, { kind: 'reshape' }>, i: number, w: HostTensor): tf.Tensor {
    const t = tf.tensor(w.data, w.shape);
    if (layer.kind === 'conv') return tf.transpose(t, OIHW_TO_HWIO);
    // ConvTranspose2d [in, out, k, k] → TensorFlow's conv2dTranspose filter [k, k, out, in].
    if (layer.kind === 'convTranspose') return tf.transpose(t, [2, 3, 1, 0]);
    // Dense: TensorFlow multiplies x·W with W [in, out]; image-order features become HWC order.
    const [out, inF] = w.shape;
    let m = t;
    const after = this.imageShapeNear(i, 1);
    if (after) m = tf.reshape(tf.transpose(tf.reshape(m, [...after, inF]), [1, 2, 0, 3]), [out, inF]);
    const before = this.imageShapeNear(i, -1);
    if (before) m = tf.reshape(tf.transpose(tf.reshape(m, [out, ...before]), [0, 2, 3, 1]), [out, inF]);
    return tf.transpose(m);
  }

  private biasFor(layer: Exclude<Layer, { kind: 'reshape' }>, i: number, b: HostTensor): tf.Tensor {
    const after = layer.kind === 'dense' ? this.imageShapeNear(i, 1) : null;
    if (!after) return tf.tensor(b.data, b.shape);
    // Image-order features [C, H, W] become HWC order, permuted here rather than by reshaping a
    // transposed tensor: a reshape shares its data, and the WASM backend's fused product checks
    // the rank of the data ([H, W, C]), not of the tensor, so it would reject the bias.
    const [c, h, w] = after;
    const hwc = new Float32Array(b.data.length);
    for (let ch = 0; ch < c; ch++) for (let p = 0; p < h * w; p++) hwc[p * c + ch] = b.data[ch * h * w + p];
    return tf.tensor(hwc, b.shape);
  }

  forward(x: tf.Tensor): tf.Tensor {
    const batch = x.shape[0];
    this.net.layers.forEach((layer, i) => {
      if (layer.kind === 'reshape') {
        const s = layer.shape;
        x = tf.reshape(x, s.length === 3 ? [batch, s[1], s[2], s[0]] : [batch, ...s]);
        return;
      }
      const [w, b] = this.slots[i]!;
      // The product with its bias in one kernel, as `tf.layers.dense` computes it.
      if (layer.kind === 'dense') x = tf.fused.matMul({ a: x as tf.Tensor2D, b: w as tf.Tensor2D, bias: b });
      else if (layer.kind === 'conv') {
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
      else if (layer.act === 'leakyRelu') x = tf.leakyRelu(x, LEAKY_SLOPE);
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
    private readonly spec: ModelSpec,
    params: HostTensor[][],
  ) {
    this.nets = modelNetworks(spec).map((net, i) => new TfNetwork(net, params[i]));
    const { lr, beta1, beta2, eps } = spec.adam;
    const groups = spec.kind === 'gan' ? 2 : 1;
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

  dispose(): void {
    for (const l of this.last) l.dispose();
    for (const o of this.optimizers) o.dispose();
    for (const n of this.nets) for (const v of n.vars) v.dispose();
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
      return new TfRunner(spec, params);
    },
  };
}
