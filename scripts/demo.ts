/**
 * The README's main job: train the default model (the seed article's VAE, done correctly) on the
 * built-in MNIST digits for about two minutes on the best available backend, then write sample and
 * reconstruction grids and the loss curve to out/vae/, and print the test-set −ELBO and the
 * classifier-FID of its samples.
 */
import { evaluateModel, loadCheckpoint, loadMnist, runCli, splitDataset } from '@fluxion/models/node';

const out = process.argv[2] ?? 'out/vae';
const code = await runCli(['train', 'vae', '--epochs', '30', '--minutes', '2', '--out', out]);
if (code !== 0) process.exit(code);
const { model, meta } = loadCheckpoint(out);
const { train, test } = splitDataset(loadMnist(), 1000);
const report = await evaluateModel(model, test, { iwaeK: 10, train });
console.log(
  `after ${meta.position.globalStep} steps: test −ELBO ${report.negElbo.toFixed(1)} nats/image, ` +
    `IWAE(k=10) bound ${report.iwae10.toFixed(1)} nats/image; classifier-FID of 1,000 samples ` +
    `${report.classifierFid.toFixed(1)} (real digits ${report.fidRealVsReal.toFixed(1)}, noise ${report.fidNoiseVsReal.toFixed(0)})`,
);
console.log(`images: ${out}/samples-epoch-*.png, ${out}/reconstructions-epoch-*.png, ${out}/loss.png`);
