/**
 * jax-js 0.1.25 as a peer, on its `webgpu` (Dawn through `navigator.gpu`, with a `userAgent`) and
 * `wasm` devices. Load this module only after `setupWebGPU()`.
 *
 * jax-js arrays are reference-counted and every function consumes its array arguments, so a value
 * used twice is passed as `x.ref` the first time (see its README). Ops run eagerly; training steps
 * are one `jit(valueAndGrad(loss))` program per network update with Adam written out in jax ops,
 * on the same model definitions as every other engine (models.ts, NCHW and PyTorch weight layouts,
 * which jax-js shares). The WGAN-GP critic loss takes its input gradient with `grad` inside the
 * `valueAndGrad` of the update (jax differentiates it again); the character Transformer is written
 * out in ops (one-hot products for the embedding, exact GELU through `erf`) with AdamW and
 * gradient clipping in the same `jit` program.
 */
import {
  blockUntilReady,
  grad,
  init,
  type Array as JaxArray,
  jit,
  lax,
  nn,
  numpy as np,
  tree,
  valueAndGrad,
} from '@jax-js/jax';
import type { AdamSpec, CharLmSpec, HostTensor, ModelSpec, Network, StepInputs } from '../models.js';
import { LEAKY_SLOPE, modelNetworks } from '../models.js';
import type { ConvGeometry, Engine, MatmulLayout, OpsEngine, StepRunner } from './engine.js';

type Device = 'webgpu' | 'wasm';

const pad2 = (p: number): [number, number][] => [
  [p, p],
  [p, p],
];

/**
 * The ops. Products and convolutions are `jit`-compiled (what a jax-js user writes for speed; a
 * transposed operand fuses into the product); add, exp and sum run eagerly, as single ops in user
 * code do (a jit call costs several times an eager op, which the dispatch case would otherwise
 * measure). Inputs are passed as `.ref` so the case's arrays survive the call.
 */
function opsFor(device: Device): OpsEngine<JaxArray> {
  const matmuls = {
    nn: jit((a: JaxArray, b: JaxArray) => np.matmul(a, b)),
    tn: jit((a: JaxArray, b: JaxArray) => np.matmul(np.transpose(a), b)),
    nt: jit((a: JaxArray, b: JaxArray) => np.matmul(a, np.transpose(b))),
  };
  const convs = new Map<string, ReturnType<typeof convPrograms>>();
  const convFor = (g: ConvGeometry, dims = 2) => {
    const key = `${dims}/${g.stride}/${g.padding}`;
    if (!convs.has(key)) convs.set(key, convPrograms(g, dims));
    return convs.get(key)!;
  };
  return {
    fromArray: (data, shape) => np.array(data, { shape: [...shape], device }),
    matmul: (a, b, layout: MatmulLayout) => matmuls[layout](a.ref, b.ref),
    add: (a, b) => np.add(a.ref, b.ref),
    exp: (a) => np.exp(a.ref),
    sum: (a) => np.sum(a.ref),
    conv2d: (x, w, g) => convFor(g).forward(x.ref, w.ref),
    conv2dGrads: (x, w, dy, g) => convFor(g).backward(x.ref, w.ref, dy.ref) as [JaxArray, JaxArray],
    conv1d: (x, w, g) => convFor(g, 1).forward(x.ref, w.ref),
    conv1dGrads: (x, w, dy, g) => convFor(g, 1).backward(x.ref, w.ref, dy.ref) as [JaxArray, JaxArray],
    read: async (h) => Float32Array.from(await h.ref.data()),
    sync: async (hs) => void (await blockUntilReady(hs)),
    dispose: (h) => h.dispose(),
  };
}

/** jit-compiled conv forward (2-D or 1-D) and its two gradients for one geometry. */
function convPrograms(g: ConvGeometry, dims: number) {
  const strides = Array.from({ length: dims }, () => g.stride);
  const padding = Array.from({ length: dims }, (): [number, number] => [g.padding, g.padding]);
  const conv = (x: JaxArray, w: JaxArray) => lax.conv(x, w, strides, padding);
  return {
    forward: jit(conv),
    backward: jit((x: JaxArray, w: JaxArray, dy: JaxArray) => {
      const [, grads] = valueAndGrad((xx: JaxArray, ww: JaxArray) => np.sum(np.multiply(conv(xx, ww), dy)), {
        argnums: [0, 1],
      })(x, w);
      return grads;
    }),
  };
}

/** Runs a network on x; consumes both `params` and `x` (pass `tree.ref(params)` to keep them). */
function forward(net: Network, params: JaxArray[], x: JaxArray): JaxArray {
  let p = 0;
  for (const layer of net.layers) {
    const batch = x.shape[0];
    if (layer.kind === 'reshape') {
      x = np.reshape(x, [batch, ...layer.shape]);
      continue;
    }
    const [w, b] = [params[p++], params[p++]];
    if (layer.kind === 'dense') x = np.add(np.matmul(x, np.transpose(w)), b);
    else if (layer.kind === 'conv1d' || layer.kind === 'convTranspose1d') {
      const bias = np.reshape(b, [1, layer.outChannels, 1]);
      const { stride, padding: p, outputPadding } = layer;
      // jax-js's transposed convolution takes PyTorch's padding; one less at the end adds
      // PyTorch's output padding of one sample.
      const y =
        layer.kind === 'conv1d'
          ? lax.conv(x, w, [stride], [[p, p]])
          : lax.convTranspose(x, w, [stride], [[p, p - outputPadding]], { transposeKernel: true });
      x = np.add(y, bias);
    } else {
      const bias = np.reshape(b, [1, layer.outChannels, 1, 1]);
      const s = [layer.stride, layer.stride];
      const y =
        layer.kind === 'conv'
          ? lax.conv(x, w, s, pad2(layer.padding))
          : lax.convTranspose(x, w, s, pad2(layer.padding), { transposeKernel: true });
      x = np.add(y, bias);
    }
    if (layer.act === 'relu') x = np.maximum(x, 0);
    else if (layer.act === 'leakyRelu') x = np.maximum(x.ref, np.multiply(x, LEAKY_SLOPE));
    else if (layer.act === 'tanh') x = np.tanh(x);
  }
  return x;
}

/** log(1 + eˣ) without overflow: max(x, 0) + log1p(e^−|x|). Consumes x. */
function softplus(x: JaxArray): JaxArray {
  return np.add(np.maximum(x.ref, 0), np.log1p(np.exp(np.negative(np.abs(x)))));
}

/**
 * One Adam update of every leaf; consumes everything. `c1` = lr / (1 − β₁ᵗ) and `c2` = 1 / (1 − β₂ᵗ)
 * are passed in as arrays so that the step count does not retrace the jit.
 */
function adam(
  spec: AdamSpec,
  params: JaxArray[],
  grads: JaxArray[],
  m: JaxArray[],
  v: JaxArray[],
  c1: JaxArray,
  c2: JaxArray,
): [JaxArray[], JaxArray[], JaxArray[]] {
  const out: [JaxArray[], JaxArray[], JaxArray[]] = [[], [], []];
  params.forEach((p, i) => {
    const g = grads[i];
    const m2 = np.add(np.multiply(m[i], spec.beta1), np.multiply(g.ref, 1 - spec.beta1));
    const v2 = np.add(np.multiply(v[i], spec.beta2), np.multiply(np.square(g), 1 - spec.beta2));
    const denom = np.add(np.sqrt(np.multiply(v2.ref, c2.ref)), spec.eps);
    out[0].push(np.subtract(p, np.divide(np.multiply(m2.ref, c1.ref), denom)));
    out[1].push(m2);
    out[2].push(v2);
  });
  c1.dispose();
  c2.dispose();
  return out;
}

/** Parameters and Adam moments of one optimizer group. */
interface Group {
  params: JaxArray[][];
  m: JaxArray[][];
  v: JaxArray[][];
}

class JaxRunner implements StepRunner {
  private readonly nets: Network[];
  private params: JaxArray[][];
  private moments: { m: JaxArray[][]; v: JaxArray[][] };
  private t = 0;
  private last: JaxArray[] = [];
  private readonly step1: (...args: never[]) => [JaxArray, Group];
  private readonly step2: ((...args: never[]) => [JaxArray, Group]) | null;

  constructor(
    private readonly spec: Exclude<ModelSpec, CharLmSpec>,
    hostParams: HostTensor[][],
    private readonly device: Device,
  ) {
    this.nets = modelNetworks(spec);
    const upload = (h: HostTensor) => np.array(h.data, { shape: h.shape, device });
    this.params = hostParams.map((ps) => ps.map(upload));
    const zeros = () => hostParams.map((ps) => ps.map((h) => np.zeros(h.shape, { device })));
    this.moments = { m: zeros(), v: zeros() };
    const a = spec.adam;
    if (spec.kind === 'wgan-gp') {
      const [G, D] = this.nets;
      const gpWeight = spec.gpWeight;
      // WGAN-GP: E[D(fake)] − E[D(real)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)·fake.
      const criticLoss = (dp: JaxArray[], real: JaxArray, fake: JaxArray, eps: JaxArray) => {
        const interp = np.add(np.multiply(eps.ref, real.ref), np.multiply(np.subtract(1, eps), fake.ref));
        const gx = grad((xi: JaxArray) => np.sum(forward(D, tree.ref(dp), xi)))(interp);
        const penalty = np.mean(np.square(np.subtract(np.sqrt(np.add(np.sum(np.square(gx), 1), 1e-12)), 1)));
        const wasserstein = np.subtract(
          np.mean(forward(D, tree.ref(dp), fake)),
          np.mean(forward(D, dp, real)),
        );
        return np.add(wasserstein, np.multiply(penalty, gpWeight));
      };
      this.step1 = jit(
        (
          g: Group,
          gp: JaxArray[],
          real: JaxArray,
          z1: JaxArray,
          eps: JaxArray,
          c1: JaxArray,
          c2: JaxArray,
        ) => {
          const fake = lax.stopGradient(forward(G, gp, z1));
          const [loss, grads] = valueAndGrad(criticLoss)(tree.ref(g.params[0]), real, fake, eps);
          const [p, m, v] = adam(a, g.params[0], grads, g.m[0], g.v[0], c1, c2);
          return [loss, { params: [p], m: [m], v: [v] }];
        },
      ) as never;
      const gLoss = (gp: JaxArray[], dp: JaxArray[], z: JaxArray) =>
        np.negative(np.mean(forward(D, dp, forward(G, gp, z))));
      this.step2 = jit((g: Group, dp: JaxArray[], z2: JaxArray, c1: JaxArray, c2: JaxArray) => {
        const [loss, grads] = valueAndGrad(gLoss)(tree.ref(g.params[0]), dp, z2);
        const [p, m, v] = adam(a, g.params[0], grads, g.m[0], g.v[0], c1, c2);
        return [loss, { params: [p], m: [m], v: [v] }];
      }) as never;
    } else if (spec.kind === 'gan') {
      const [G, D] = this.nets;
      const dLoss = (dp: JaxArray[], real: JaxArray, fake: JaxArray) =>
        np.add(
          np.mean(softplus(np.negative(forward(D, tree.ref(dp), real)))),
          np.mean(softplus(forward(D, dp, fake))),
        );
      const gLoss = (gp: JaxArray[], dp: JaxArray[], z: JaxArray) =>
        np.mean(softplus(np.negative(forward(D, dp, forward(G, gp, z)))));
      // Discriminator update: G's output is a constant here.
      this.step1 = jit(
        (g: Group, gp: JaxArray[], real: JaxArray, z1: JaxArray, c1: JaxArray, c2: JaxArray) => {
          const fake = lax.stopGradient(forward(G, gp, z1));
          const [loss, grads] = valueAndGrad(dLoss)(tree.ref(g.params[0]), real, fake);
          const [p, m, v] = adam(a, g.params[0], grads, g.m[0], g.v[0], c1, c2);
          return [loss, { params: [p], m: [m], v: [v] }];
        },
      ) as never;
      // Generator update through the (just updated) discriminator.
      this.step2 = jit((g: Group, dp: JaxArray[], z2: JaxArray, c1: JaxArray, c2: JaxArray) => {
        const [loss, grads] = valueAndGrad(gLoss)(tree.ref(g.params[0]), dp, z2);
        const [p, m, v] = adam(a, g.params[0], grads, g.m[0], g.v[0], c1, c2);
        return [loss, { params: [p], m: [m], v: [v] }];
      }) as never;
    } else {
      const [enc, muNet, lvNet, dec] = this.nets;
      const batch = spec.batch;
      const loss = (ps: JaxArray[][], x: JaxArray, eps: JaxArray) => {
        const h = forward(enc, ps[0], x.ref);
        const mu = forward(muNet, ps[1], h.ref);
        const lv = forward(lvNet, ps[2], h);
        const z = np.add(mu.ref, np.multiply(np.exp(np.multiply(lv.ref, 0.5)), eps));
        const logits = forward(dec, ps[3], z);
        const recon = np.sum(np.subtract(softplus(logits.ref), np.multiply(x, logits)));
        const kl = np.multiply(
          np.sum(np.subtract(np.subtract(np.add(lv.ref, 1), np.square(mu)), np.exp(lv))),
          -0.5,
        );
        return np.divide(np.add(recon, kl), batch);
      };
      this.step1 = jit((g: Group, x: JaxArray, eps: JaxArray, c1: JaxArray, c2: JaxArray) => {
        const [value, grads] = valueAndGrad(loss)(tree.ref(g.params), x, eps);
        const flat = adam(a, g.params.flat(), grads.flat(), g.m.flat(), g.v.flat(), c1, c2);
        const regroup = (xs: JaxArray[]) => {
          let i = 0;
          return g.params.map((ps) => ps.map(() => xs[i++]));
        };
        return [value, { params: regroup(flat[0]), m: regroup(flat[1]), v: regroup(flat[2]) }];
      }) as never;
      this.step2 = null;
    }
  }

  /** Takes group `i` (one network for a GAN, all of them for the VAE) out of the runner's state. */
  private take(indices: number[]): Group {
    return {
      params: indices.map((i) => this.params[i]),
      m: indices.map((i) => this.moments.m[i]),
      v: indices.map((i) => this.moments.v[i]),
    };
  }

  private put(indices: number[], g: Group): void {
    indices.forEach((i, k) => {
      this.params[i] = g.params[k];
      this.moments.m[i] = g.m[k];
      this.moments.v[i] = g.v[k];
    });
  }

  step(inputs: StepInputs): void {
    tree.dispose(this.last);
    const up = (name: string) =>
      np.array(inputs[name].data, { shape: inputs[name].shape, device: this.device });
    const { beta1, beta2, lr } = this.spec.adam;
    this.t++;
    const c1 = () => np.array(lr / (1 - beta1 ** this.t), { device: this.device });
    const c2 = () => np.array(1 / (1 - beta2 ** this.t), { device: this.device });
    if (this.spec.kind === 'gan' || this.spec.kind === 'wgan-gp') {
      const eps = this.spec.kind === 'wgan-gp' ? [up('eps')] : [];
      const [dLoss, d] = this.step1(
        this.take([1]) as never,
        tree.ref(this.params[0]) as never,
        up('real') as never,
        up('z1') as never,
        ...(eps as never[]),
        c1() as never,
        c2() as never,
      );
      this.put([1], d);
      const [gLoss, g] = this.step2!(
        this.take([0]) as never,
        tree.ref(this.params[1]) as never,
        up('z2') as never,
        c1() as never,
        c2() as never,
      );
      this.put([0], g);
      this.last = [dLoss, gLoss];
    } else {
      const all = this.params.map((_, i) => i);
      const [loss, g] = this.step1(
        this.take(all) as never,
        up('x') as never,
        up('eps') as never,
        c1() as never,
        c2() as never,
      );
      this.put(all, g);
      this.last = [loss];
    }
  }

  async sync(): Promise<void> {
    await blockUntilReady([this.last, this.params, this.moments.m, this.moments.v]);
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map(async (l) => (await l.ref.data())[0]));
  }

  parameterShapes(): number[][] {
    return this.params.flat().map((p) => [...p.shape]);
  }

  dispose(): void {
    // A step that threw (out of memory, say) has consumed some of the state: free what is left.
    const state = [this.last, this.params, this.moments.m, this.moments.v].flat(2);
    for (const a of state) if (a.refCount > 0) a.dispose();
    for (const f of [this.step1, this.step2]) (f as { dispose?: () => void } | null)?.dispose?.();
  }
}

/** LayerNorm over the last axis, `(x − μ) / √(σ² + ε) · γ + β`; consumes its arguments. */
function layerNorm(x: JaxArray, gamma: JaxArray, beta: JaxArray, eps: number): JaxArray {
  const centred = np.subtract(x.ref, np.mean(x, -1, { keepdims: true }));
  const variance = np.mean(np.square(centred.ref), -1, { keepdims: true });
  return np.add(np.multiply(np.divide(centred, np.sqrt(np.add(variance, eps))), gamma), beta);
}

/** Exact GELU, `½x(1 + erf(x/√2))`; consumes x. */
function gelu(x: JaxArray): JaxArray {
  return np.multiply(np.multiply(x.ref, 0.5), np.add(lax.erf(np.multiply(x, Math.SQRT1_2)), 1));
}

/**
 * The character Transformer (models.ts `CHARLM`) as one `jit` program per step: forward,
 * cross-entropy, gradients, global-norm clipping and AdamW (decay on the matrices only).
 * Parameters keep PyTorch's layouts; the token table serves the embedding (a one-hot product) and
 * the tied output layer.
 */
class JaxCharLmRunner implements StepRunner {
  private params: JaxArray[];
  private m: JaxArray[];
  private v: JaxArray[];
  private t = 0;
  private last: JaxArray[] = [];
  /** The causal mask: 0 where a query may see a key (key ≤ query), −1e9 above the diagonal. */
  private readonly maskData: Float32Array;
  private readonly program: (...args: never[]) => [JaxArray, JaxArray[], JaxArray[], JaxArray[]];

  constructor(
    private readonly spec: CharLmSpec,
    host: HostTensor[],
    private readonly device: Device,
  ) {
    this.params = host.map((h) => np.array(h.data, { shape: h.shape, device }));
    this.m = host.map((h) => np.zeros(h.shape, { device }));
    this.v = host.map((h) => np.zeros(h.shape, { device }));
    const { batch: b, context: t, dim, heads, vocab, lnEps, layers, clip } = spec;
    const d = dim / heads;
    const { beta1, beta2, eps, lr, weightDecay } = spec.adamw;
    const decays = host.map((h) => h.shape.length >= 2);
    const maskData = Float32Array.from({ length: t * t }, (_, k) => (k % t > Math.floor(k / t) ? -1e9 : 0));
    const loss = (ps: JaxArray[], ids: JaxArray, targets: JaxArray, mask: JaxArray) => {
      const [tokens, positions, ...rest] = ps;
      let p = 0;
      const next = () => rest[p++];
      const dense = (h: JaxArray) => np.add(np.matmul(h, np.transpose(next())), next());
      const embedded = np.matmul(nn.oneHot(ids, vocab), tokens.ref);
      let x = np.reshape(np.add(np.reshape(embedded, [b, t, dim]), positions), [b * t, dim]);
      for (let layer = 0; layer < layers; layer++) {
        const h = layerNorm(x.ref, next(), next(), lnEps);
        const qkv = np.transpose(np.reshape(dense(h), [b, t, 3, heads, d]), [2, 0, 3, 1, 4]);
        const [q, k, v] = np.split(qkv, 3, 0).map((s) => np.reshape(s, [b * heads, t, d]));
        const scores = np.add(
          np.multiply(np.matmul(q, np.transpose(k, [0, 2, 1])), 1 / Math.sqrt(d)),
          mask.ref,
        );
        const attended = np.matmul(nn.softmax(scores, -1), v);
        const merged = np.reshape(np.transpose(np.reshape(attended, [b, heads, t, d]), [0, 2, 1, 3]), [
          b * t,
          dim,
        ]);
        x = np.add(x, dense(merged));
        const h2 = layerNorm(x.ref, next(), next(), lnEps);
        const hidden = gelu(dense(h2));
        x = np.add(x, dense(hidden));
      }
      mask.dispose();
      const logits = np.matmul(layerNorm(x, next(), next(), lnEps), np.transpose(tokens));
      const picked = np.sum(np.multiply(nn.logSoftmax(logits, -1), nn.oneHot(targets, vocab)), 1);
      return np.negative(np.mean(picked));
    };
    this.program = jit(
      (
        ps: JaxArray[],
        m: JaxArray[],
        v: JaxArray[],
        ids: JaxArray,
        targets: JaxArray,
        mask: JaxArray,
        c1: JaxArray,
        c2: JaxArray,
      ) => {
        const [value, grads] = valueAndGrad(loss)(tree.ref(ps), ids, targets, mask);
        // Clip the global norm to `clip`: every gradient times min(1, clip / (norm + 1e-6)).
        const norm = np.sqrt(grads.map((g) => np.sum(np.square(g.ref))).reduce((a, c) => np.add(a, c)));
        const coef = np.minimum(np.divide(clip, np.add(norm, 1e-6)), 1);
        const out: [JaxArray[], JaxArray[], JaxArray[]] = [[], [], []];
        ps.forEach((param, i) => {
          const g = np.multiply(grads[i], coef.ref);
          const decayed = decays[i] ? np.multiply(param, 1 - lr * weightDecay) : param;
          const m2 = np.add(np.multiply(m[i], beta1), np.multiply(g.ref, 1 - beta1));
          const v2 = np.add(np.multiply(v[i], beta2), np.multiply(np.square(g), 1 - beta2));
          const denom = np.add(np.sqrt(np.multiply(v2.ref, c2.ref)), eps);
          out[0].push(np.subtract(decayed, np.divide(np.multiply(m2.ref, c1.ref), denom)));
          out[1].push(m2);
          out[2].push(v2);
        });
        coef.dispose();
        c1.dispose();
        c2.dispose();
        return [value, ...out];
      },
    ) as never;
    this.maskData = maskData;
  }

  step(inputs: StepInputs): void {
    tree.dispose(this.last);
    const device = this.device;
    const ints = (h: HostTensor) =>
      np.array(Int32Array.from(h.data), { shape: [h.data.length], dtype: np.int32, device });
    const { beta1, beta2, lr } = this.spec.adamw;
    this.t++;
    const t = this.spec.context;
    const [loss, params, m, v] = this.program(
      this.params as never,
      this.m as never,
      this.v as never,
      ints(inputs.ids) as never,
      ints(inputs.targets) as never,
      np.array(this.maskData, { shape: [t, t], device }) as never,
      np.array(lr / (1 - beta1 ** this.t), { device }) as never,
      np.array(1 / (1 - beta2 ** this.t), { device }) as never,
    );
    [this.params, this.m, this.v] = [params, m, v];
    this.last = [loss];
  }

  async sync(): Promise<void> {
    await blockUntilReady([this.last, this.params, this.m, this.v]);
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map(async (l) => (await l.ref.data())[0]));
  }

  parameterShapes(): number[][] {
    return this.params.map((p) => [...p.shape]);
  }

  dispose(): void {
    for (const a of [this.last, this.params, this.m, this.v].flat()) if (a.refCount > 0) a.dispose();
    (this.program as { dispose?: () => void }).dispose?.();
  }
}

let initialised: string[] | null = null;

/** jax-js on one device, or null when that device is not available here. */
export async function jaxEngine(device: Device): Promise<Engine | null> {
  initialised ??= await init();
  if (!initialised.includes(device)) return null;
  return {
    engine: 'jax-js',
    backend: device,
    slow: false,
    async activate() {},
    ops: opsFor(device) as OpsEngine,
    async trainer(spec, params) {
      if (spec.kind === 'charlm') return new JaxCharLmRunner(spec, params[0], device);
      return new JaxRunner(spec, params, device);
    },
  };
}
