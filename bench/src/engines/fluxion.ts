/**
 * Fluxion itself, on its `cpu` reference backend and its `webgpu` backend. The CPU engine is also the reference every other engine's
 * results are checked against (the CPU backend is the specification).
 *
 * Training steps are written as a user would: Parameters, the model definitions of models.ts run
 * with tensor ops and `@fluxion/nn`'s convolutions, `loss.backward()` from `@fluxion/autograd`,
 * `@fluxion/nn`'s Adam, each step inside a `scope` so that its intermediates are freed.
 */
import '@fluxion/autograd';
import { gradients, noGrad } from '@fluxion/autograd';
import { Adam, conv2d, convTranspose2d, Parameter } from '@fluxion/nn';
import {
  add,
  type BackendName,
  exp,
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
  square,
  sub,
  sum,
  type Tensor,
  tanh,
  tensor,
  transpose,
  type WebGPUBackend,
} from '@fluxion/tensor';
import type { HostTensor, ModelSpec, Network, StepInputs } from '../models.js';
import { LEAKY_SLOPE, modelNetworks } from '../models.js';
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
    else {
      const geometry = { stride: layer.stride, padding: layer.padding };
      x = layer.kind === 'conv' ? conv2d(x, w, b, geometry) : convTranspose2d(x, w, b, geometry);
    }
    if (layer.act === 'relu') x = relu(x);
    else if (layer.act === 'leakyRelu') x = leakyRelu(x, LEAKY_SLOPE);
    else if (layer.act === 'tanh') x = tanh(x);
  }
  return x;
}

class FluxionRunner implements StepRunner {
  private readonly nets: Network[];
  private readonly params: Parameter[][];
  private readonly optimizers: Adam[];
  private last: Tensor[] = [];

  constructor(
    private readonly spec: ModelSpec,
    hostParams: HostTensor[][],
    private readonly backend: BackendName,
  ) {
    this.nets = modelNetworks(spec);
    this.params = hostParams.map((ps) =>
      ps.map((h) => {
        const t = tensor(h.data, h.shape, { backend });
        const p = new Parameter(t);
        t.dispose();
        return p;
      }),
    );
    const groups = spec.kind === 'gan' ? this.params : [this.params.flat()];
    this.optimizers = groups.map((ps) => new Adam(ps, { ...spec.adam }));
  }

  step(inputs: StepInputs): void {
    for (const l of this.last) l.dispose();
    this.last = scope(() => {
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
        return keep([dLoss.detach(), gLoss.detach()]);
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
      return keep([loss.detach()]);
    });
  }

  sync(): Promise<void> {
    return getBackend(this.backend).sync();
  }

  async losses(): Promise<number[]> {
    return Promise.all(this.last.map((l) => l.item()));
  }

  dispose(): void {
    for (const l of this.last) l.dispose();
    for (const o of this.optimizers) o.dispose();
    for (const p of this.params.flat()) {
      p.zeroGrad();
      p.dispose();
    }
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
