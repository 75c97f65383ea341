/**
 * The README's main job until the models land: a small real computation on the best available
 * backend. It fits y = 3x − 2 by least squares through the normal equations (matmul, a 2×2 solve),
 * prints the fitted coefficients and the backend used.
 */
import * as F from '@fluxion/tensor';

const useBest = (F as unknown as { useBestBackend?: () => Promise<string> }).useBestBackend;
const backend = useBest ? await useBest() : F.currentBackend();
const n = 1000;
const x = F.rand([n, 1], { seed: 1 });
const noise = F.mul(F.randn([n, 1], { seed: 2 }), 0.01);
const y = F.add(F.sub(F.mul(x, 3), 2), noise);
const X = F.concat([x, F.ones([n, 1])], 1);
const [[a, b], [, d]] = (await F.matmul(X.T, X).array()) as number[][];
const [[p], [q]] = (await F.matmul(X.T, y).array()) as number[][];
const det = a * d - b * b;
const slope = (d * p - b * q) / det;
const intercept = (a * q - b * p) / det;
console.log(`backend: ${backend}`);
console.log(
  `fitted y = ${slope.toFixed(4)}·x + ${intercept.toFixed(4)} (true: 3·x − 2) on ${n} noisy points`,
);
