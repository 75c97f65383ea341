#!/usr/bin/env node
// Builds one workspace package (run from its folder by `pnpm -r run build`): esbuild bundles each
// entry of the package (src/index.ts, and src/node.ts where there is one: the Node-only entry of
// @fluxion/models) into dist/ (ESM; dependencies stay external; code shared by two entries goes
// to one chunk, so both entries see the same classes), then tsc writes the declarations from
// tsconfig.build.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
if (!existsSync('src/index.ts')) {
  console.log(`${pkg.name}: no sources yet, nothing to build`);
  process.exit(0);
}
rmSync('dist', { recursive: true, force: true });
await build({
  entryPoints: ['src/index.ts', 'src/node.ts'].filter((f) => existsSync(f)),
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  sourcemap: true,
  packages: 'external',
  external: ['webgpu', 'node:*'],
  logLevel: 'warning',
});
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
console.log(`built ${pkg.name}`);
