/**
 * Fluxion itself, on its `cpu` reference backend and its `webgpu` backend. The CPU engine is also the reference every other engine's
 * results are checked against (the CPU backend is the specification).
 *
 * Training steps are written as a user would: Parameters, the model definitions of models.ts run
 * with tensor ops and `@fluxion/nn`'s convolutions, `loss.backward()` from `@fluxion/autograd`,
 * `@fluxion/nn`'s Adam, each step inside a `scope` so that its intermediates are freed. The WGAN-GP
 * critic loss takes its input gradient with `createGraph`, as `@fluxion/models`' `wganGpLoss`.
 * The character Transformer is `@fluxion/models`' own `CharTransformer` (its layers, attention
 * and tied output) with the shared initial weights assigned, trained as `CharLm.trainStep` does:
 * cross-entropy, `clipGradNorm`, AdamW with decay on the matrices only.
 */
import '@fluxion/autograd';
import { gradients, noGrad } from '@fluxion/autograd';
import { CharTransformer } from '@fluxion/models';
import {
  Adam,
  AdamW,
  clipGradNorm,
  conv1d,
  conv2d,
  convTranspose1d,
  convTranspose2d,
  crossEntropy,
  Parameter,
} from '@fluxion/nn';
import {
  add,
  type BackendName,
  exp,
  Generator,
  getBackend,
  initWebGPU,
  keep,
  leakyRelu,
  linear,
  matmul,
  mean,
  mul,
  neg,
  relu,
  reshape,
  scope,
  setBackend,
  softplus,
  sqrt,
  square,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
  transpose,
  type WebGPUBackend,
} from '@fluxion/tensor';
import type { CharLmSpec, HostTensor, ModelSpec, Network, StepInputs } from '../models.js';
import { charLmParamDefs, LEAKY_SLOPE, modelNetworks } from '../models.js';
import type { ConvGeometry, Engine, MatmulLayout, OpsEngine, StepRunner } from './engine.js';

function opsFor(backend: BackendName): OpsEngine<Tensor> {
  return {
    fromArray: (data, shape) => tensor(data, [...shape], { backend }),
    matmul: (a, b, layout: MatmulLayout) =>
      matmul(layout === 'tn' ? transpose(a) : a, layout === 'nt' ? transpose(b) : b),
    add: (a, b) => add(a, b),
    exp: (a) => exp(a),
    sum: (a) => sum(a),
    conv2d: (x, w, g: ConvGeometry) => conv2d(x, w, null, g),
    conv2dGrads(x, w, dy, g: ConvGeometry) {
      x.requiresGrad = true;
      w.requiresGrad = true;
      const [dx, dw] = scope(() => gradients(conv2d(x, w, null, g), [x, w], { seed: dy }));
      return [dx, dw];
    },
    conv1d: (x, w, g: ConvGeometry) => conv1d(x, w, null, g),
    conv1dGrads(x, w, dy, g: ConvGeometry) {
      x.requiresGrad = true;
      w.requiresGrad = true;
      const [dx, dw] = scope(() => gradients(conv1d(x, w, null, g), [x, w], { seed: dy }));
      return [dx, dw];
    },
    read: async (h) => Float32Array.from(await h.data()),
    sync: () => getBackend(backend).sync(),
    dispose: (h) => h.dispose(),
  };
}

/** Runs a network (models.ts layer list) on x. */
function forward(net: Network, params: Tensor[], x: Tensor): Tensor {
  let p = 0;
  for (const layer of net.layers) {
    if (layer.kind === 'reshape') {
      x = reshape(x, [x.shape[0], ...layer.shape]);
      continue;
    }
    const [w, b] = [params[p++], params[p++]];
    if (layer.kind === 'dense') x = linear(x, w, b);
    else if (layer.kind === 'conv1d') x = conv1d(x, w, b, { stride: layer.stride, padding: layer.padding });
    else if (layer.kind === 'convTranspose1d') {
      const { stride, padding, outputPadding } = layer;
      x = convTranspose1d(x, w, b, { stride, padding, outputPadding });
    } else {
      const geometry = { stride: layer.stride, padding: layer.padding };
      x = layer.kind === 'conv' ? conv2d(x, w, b, geometry) : convTranspose2d(x, w, b, geometry);
    }
    if (layer.act === 'relu') x = relu(x);
    else if (layer.act === 'leakyRelu') x = leakyRelu(x, LEAKY_SLOPE);
    else if (layer.act === 'tanh') x = tanh(x);
  }
  return x;
}

/**
 * What both Fluxion runners share: each step runs inside a `scope` that keeps only its losses
 * (detached, and freed when the next step starts), and `sync` waits for the backend.
 */
abstract class ScopedRunner {
  private last: Tensor[] = [];

  constructor(protected readonly backend: BackendName) {}

  /** Runs one step's work in a scope, keeping the losses it returns and freeing the last step's. */
  protected runStep(work: () => Tensor[]): void {
    for (const l of this.last) l.dispose();
    this.last = scope(() => keep(work().map((l) => l.detach())));
  }

  sync(): Promise<void> {
    return getBackend(this.backend).sync();
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map((l) => l.item()));
  }

  /** Frees the last step's losses; each runner frees its own networks and optimizers after. */
  dispose(): void {
    for (const l of this.last) l.dispose();
  }
}

class FluxionRunner extends ScopedRunner implements StepRunner {
  private readonly nets: Network[];
  private readonly params: Parameter[][];
  private readonly optimizers: Adam[];

  constructor(
    private readonly spec: Exclude<ModelSpec, CharLmSpec>,
    hostParams: HostTensor[][],
    backend: BackendName,
  ) {
    super(backend);
    this.nets = modelNetworks(spec);
    this.params = hostParams.map((ps) =>
      ps.map((h) => {
        const t = tensor(h.data, h.shape, { backend });
        const p = new Parameter(t);
        t.dispose();
        return p;
      }),
    );
    const groups = spec.kind === 'vae' ? [this.params.flat()] : this.params;
    this.optimizers = groups.map((ps) => new Adam(ps, { ...spec.adam }));
  }

  step(inputs: StepInputs): void {
    this.runStep(() => {
      const x = Object.fromEntries(
        Object.entries(inputs).map(([k, h]) => [k, tensor(h.data, h.shape, { backend: this.backend })]),
      );
      if (this.spec.kind === 'gan') {
        const [G, D] = this.nets;
        const [gp, dp] = this.params;
        const [optG, optD] = this.optimizers;
        const fake = noGrad(() => forward(G, gp, x.z1));
        optD.zeroGrad();
        const dLoss = add(mean(softplus(neg(forward(D, dp, x.real)))), mean(softplus(forward(D, dp, fake))));
        dLoss.backward();
        optD.step();
        optG.zeroGrad();
        const gLoss = mean(softplus(neg(forward(D, dp, forward(G, gp, x.z2)))));
        // Gradients for the generator only, as the peers' steps (tfjs `minimize(…, varList)`, jax's
        // grad with respect to G's parameters): the discriminator's weight gradients are skipped.
        gLoss.backward(undefined, { inputs: gp });
        optG.step();
        return [dLoss, gLoss];
      }
      if (this.spec.kind === 'wgan-gp') {
        const [G, D] = this.nets;
        const [gp, dp] = this.params;
        const [optG, optD] = this.optimizers;
        const fake = noGrad(() => forward(G, gp, x.z1));
        optD.zeroGrad();
        // WGAN-GP: E[D(fake)] − E[D(real)] + λ·E[(‖∇ₓ̂ D(x̂)‖₂ − 1)²], x̂ = εx + (1 − ε)·fake.
        const interp = add(mul(x.eps, x.real), mul(sub(1, x.eps), fake));
        interp.requiresGrad = true;
        const [g] = gradients(sum(forward(D, dp, interp)), [interp], { createGraph: true });
        const penalty = mean(square(sub(sqrt(add(sum(square(g), 1), 1e-12)), 1)));
        const wasserstein = sub(mean(forward(D, dp, fake)), mean(forward(D, dp, x.real)));
        const dLoss = add(wasserstein, mul(penalty, this.spec.gpWeight));
        dLoss.backward();
        optD.step();
        optG.zeroGrad();
        const gLoss = neg(mean(forward(D, dp, forward(G, gp, x.z2))));
        gLoss.backward(undefined, { inputs: gp });
        optG.step();
        return [dLoss, gLoss];
      }
      const [enc, muNet, lvNet, dec] = this.nets;
      const [pe, pm, pl, pd] = this.params;
      this.optimizers[0].zeroGrad();
      const h = forward(enc, pe, x.x);
      const mu = forward(muNet, pm, h);
      const lv = forward(lvNet, pl, h);
      const z = add(mu, mul(exp(mul(lv, 0.5)), x.eps));
      const logits = forward(dec, pd, z);
      // BCE with logits summed over pixels: softplus(l) − x·l; KL(q ‖ N(0, I)).
      const recon = sum(sub(softplus(logits), mul(x.x, logits)));
      const kl = mul(sum(sub(sub(add(lv, 1), square(mu)), exp(lv))), -0.5);
      const loss = mul(add(recon, kl), 1 / this.spec.batch);
      loss.backward();
      this.optimizers[0].step();
      return [loss];
    });
  }

  parameterShapes(): number[][] {
    return this.params.flat().map((p) => [...p.shape]);
  }

  override dispose(): void {
    super.dispose();
    for (const o of this.optimizers) o.dispose();
    for (const p of this.params.flat()) {
      p.zeroGrad();
      p.dispose();
    }
  }
}

/** The character Transformer of `@fluxion/models` with the shared weights, trained as `CharLm` does. */
class FluxionCharLmRunner extends ScopedRunner implements StepRunner {
  readonly net: CharTransformer;
  private readonly optimizer: AdamW;

  constructor(
    private readonly spec: CharLmSpec,
    hostParams: HostTensor[],
    backend: BackendName,
  ) {
    super(backend);
    const { vocab: vocabSize, context, dim, layers, heads } = spec;
    setBackend(backend);
    this.net = new CharTransformer(
      { vocabSize, context, dim, layers, heads, dropout: 0, tie: true },
      new Generator(0),
    );
    const named = this.net.namedParameters();
    const defs = charLmParamDefs(spec);
    const names = named.map(([n]) => n).join(', ');
    if (names !== defs.map((d) => d.name).join(', ')) {
      this.net.dispose();
      throw new Error(`CharTransformer's parameters (${names}) differ from the bench's definition`);
    }
    named.forEach(([, p], i) => {
      const t = tensor(hostParams[i].data, hostParams[i].shape, { backend });
      noGrad(() => p.assign(t));
      t.dispose();
    });
    const params = this.net.parameters();
    const { weightDecay, ...adam } = spec.adamw;
    this.optimizer = new AdamW(
      [
        { params: params.filter((p) => p.rank >= 2), weightDecay },
        { params: params.filter((p) => p.rank < 2), weightDecay: 0 },
      ],
      adam,
    );
  }

  step(inputs: StepInputs): void {
    const ints = (h: HostTensor) =>
      tensor(Int32Array.from(h.data), h.shape, { dtype: 'int32', backend: this.backend });
    this.runStep(() => {
      const logits = this.net.forward(ints(inputs.ids));
      const v = this.spec.vocab;
      const loss = crossEntropy(reshape(logits, [-1, v]), reshape(ints(inputs.targets), [-1]));
      this.optimizer.zeroGrad();
      loss.backward();
      clipGradNorm(this.net.parameters(), this.spec.clip).dispose();
      this.optimizer.step();
      return [loss];
    });
  }

  parameterShapes(): number[][] {
    return this.net.parameters().map((p) => [...p.shape]);
  }

  override dispose(): void {
    super.dispose();
    this.optimizer.dispose();
    this.net.zeroGrad();
    this.net.dispose();
  }
}

/**
 * Fluxion on one backend, or a string saying why it is not available here. WebGPU goes through
 * `initWebGPU`, which takes `navigator.gpu` (set up by device.ts), so every engine shares Dawn's
 * instance and adapter.
 */
export async function fluxionEngine(backend: BackendName): Promise<Engine | string> {
  let gpu: WebGPUBackend | null = null;
  if (backend === 'webgpu') {
    try {
      gpu = await initWebGPU();
      console.error(`bench: fluxion-webgpu uses the '${gpu.matmulVariant}' matmul kernels on this adapter`);
    } catch (e) {
      return `initWebGPU failed: ${(e as Error).message}`;
    }
  }
  const profiler = gpu?.canProfile ? gpu : null;
  return {
    engine: 'fluxion',
    backend,
    slow: backend === 'cpu',
    async activate() {
      setBackend(backend);
    },
    ops: opsFor(backend) as OpsEngine,
    async trainer(spec, params) {
      if (spec.kind === 'charlm') return new FluxionCharLmRunner(spec, params[0], backend);
      return new FluxionRunner(spec, params, backend);
    },
    ...(profiler && {
      async gpuTime(work: () => Promise<void>) {
        const timings = await profiler.profile(work);
        return timings.reduce((total, t) => total + t.ms, 0);
      },
    }),
  };
}
