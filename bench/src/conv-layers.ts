/**
 * Times Fluxion's convolutions layer by layer on the WebGPU adapter: each of the `conv` primitive's
 * three results (output, input adjoint, weight adjoint) on its own, and a layer's forward and
 * forward + backward, for the ops suite's conv2d case, the DCGAN layers and a WaveGAN-sized conv1d
 * (N 16, C 64 → 128, L 4096, K 25, stride 4, padding 11). Medians of `--runs` (default 5) after
 * one warm-up, with a sync after each run.
 *
 *   node ../scripts/run-ts.mjs src/conv-layers.ts [--runs 5] [--filter TEXT]
 */
import { parseArgs } from 'node:util';
import { gradients } from '@fluxion/autograd';
import { conv1d, conv2d, convTranspose2d } from '@fluxion/nn';
import {
  type ConvResult,
  conv,
  initWebGPU,
  randn,
  scope,
  setBackend,
  sum,
  type Tensor,
} from '@fluxion/tensor';

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '5' }, filter: { type: 'string', default: '' } },
});
const backend = await initWebGPU();
setBackend('webgpu');
console.log(`adapter: ${backend.adapterInfo.description || backend.adapterInfo.vendor}`);

async function time(name: string, flops: number, fn: () => Tensor | Tensor[]): Promise<void> {
  if (!name.includes(args.filter ?? '')) return;
  const runs = Number(args.runs);
  const once = async () => {
    const start = performance.now();
    const out = scope(fn);
    await backend.sync();
    const ms = performance.now() - start;
    for (const t of Array.isArray(out) ? out : [out]) t.dispose();
    return ms;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) times.push(await once());
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(
    `${name.padEnd(44)} ${median.toFixed(1).padStart(8)} ms  ${(flops / median / 1e6).toFixed(1).padStart(6)} GFLOP/s  (min ${times[0].toFixed(1)})`,
  );
}

interface Layer {
  name: string;
  x: number[];
  w: number[];
  stride: number;
  padding: number;
  transposed?: boolean;
  oneD?: boolean;
}
const layers: Layer[] = [
  { name: 'ops conv2d 3×3 [16,32,28,28]→64', x: [16, 32, 28, 28], w: [64, 32, 3, 3], stride: 1, padding: 1 },
  { name: 'dcgan D conv 1→32 28→14', x: [64, 1, 28, 28], w: [32, 1, 4, 4], stride: 2, padding: 1 },
  { name: 'dcgan D conv 32→64 14→7', x: [64, 32, 14, 14], w: [64, 32, 4, 4], stride: 2, padding: 1 },
  {
    name: 'dcgan G convT 64→32 7→14',
    x: [64, 64, 7, 7],
    w: [64, 32, 4, 4],
    stride: 2,
    padding: 1,
    transposed: true,
  },
  {
    name: 'dcgan G convT 32→1 14→28',
    x: [64, 32, 14, 14],
    w: [32, 1, 4, 4],
    stride: 2,
    padding: 1,
    transposed: true,
  },
  {
    name: 'wavegan conv1d 64→128 L4096 K25 s4',
    x: [16, 64, 4096],
    w: [128, 64, 25],
    stride: 4,
    padding: 11,
    oneD: true,
  },
];

for (const l of layers) {
  const x = randn(l.x);
  const w = randn(l.w);
  x.requiresGrad = true;
  w.requiresGrad = true;
  const opts = { stride: l.stride, padding: l.padding };
  const run = (xx: Tensor, ww: Tensor) =>
    l.oneD
      ? conv1d(xx, ww, null, opts)
      : l.transposed
        ? convTranspose2d(xx, ww, null, opts)
        : conv2d(xx, ww, null, opts);
  const y = run(x, w);
  // FLOPs: 2 per multiply-add of the forward (the same for each of the three results).
  const [big, small] = l.transposed ? [y, x] : [x, y];
  const flops =
    2 *
    small.shape.slice(2).reduce((a, b) => a * b, 1) *
    small.shape[0] *
    w.shape.slice(1).reduce((a, b) => a * b, 1) *
    w.shape[0];
  void big;
  await time(`${l.name} forward`, flops, () => run(x, w));
  await time(`${l.name} fwd+bwd`, 3 * flops, () => {
    const [gx, gw] = gradients(sum(run(x, w)), [x, w]);
    return [gx, gw];
  });
  if (!l.oneD) {
    const geometry = {
      stride: [l.stride, l.stride],
      padding: [l.padding, l.padding],
      dilation: [1, 1],
      groups: 1,
    } as const;
    const [img, out] = l.transposed ? [y, x] : [x, y];
    const results: [ConvResult, Tensor, Tensor, [number, number]][] = [
      ['output', img, w, [out.shape[2], out.shape[3]]],
      ['input', out, w, [img.shape[2], img.shape[3]]],
      ['weight', img, out, [w.shape[2], w.shape[3]]],
    ];
    for (const [result, a, b, size] of results)
      await time(`${l.name} conv ${result}`, flops, () => conv(a, b, { ...geometry, result, size }));
  }
  y.dispose();
  x.dispose();
  w.dispose();
}
process.exit(0);
