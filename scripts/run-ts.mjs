#!/usr/bin/env node
// Runs a TypeScript entry point: bundles it with esbuild (workspace packages resolved to their
// sources, `webgpu` and other npm dependencies left external) into a temporary .mjs next to the
// repository's node_modules, then imports it with the remaining arguments in process.argv.
// TensorFlow.js (a bench peer) is the exception: it is bundled from its ES modules, because its
// Node (CommonJS) build has no gradients registered.
//
//   node scripts/run-ts.mjs bench/src/main.ts ops --runs 5
import { mkdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const [entry, ...rest] = process.argv.slice(2);
if (!entry) {
  console.error('usage: node scripts/run-ts.mjs ENTRY.ts [ARGS...]');
  process.exit(2);
}
const outDir = join(root, 'node_modules', '.cache', 'fluxion-run');
mkdirSync(outDir, { recursive: true });
const outfile = join(outDir, `${entry.replace(/[^A-Za-z0-9]+/g, '_')}.mjs`);
await build({
  entryPoints: [resolve(entry)],
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outfile,
  sourcemap: 'inline',
  conditions: ['source'],
  mainFields: ['module', 'main'],
  plugins: [
    {
      name: 'external-packages',
      setup(b) {
        b.onResolve({ filter: /^[^./]/ }, (args) =>
          args.path.startsWith('@fluxion/') || args.path.startsWith('@tensorflow/')
            ? undefined
            : { external: true },
        );
      },
    },
  ],
  alias: {
    '@fluxion/models/node': join(root, 'packages', 'models', 'src', 'node.ts'),
    ...Object.fromEntries(
      ['tensor', 'autograd', 'nn', 'models'].map((p) => [
        `@fluxion/${p}`,
        join(root, 'packages', p, 'src', 'index.ts'),
      ]),
    ),
  },
  logLevel: 'warning',
  banner: {
    js: [
      "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      "import { fileURLToPath as __fu } from 'node:url'; const __filename = __fu(import.meta.url);",
      "const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));",
    ].join(' '),
  },
});
process.argv = [process.argv[0], resolve(entry), ...rest];
await import(pathToFileURL(outfile).href);
