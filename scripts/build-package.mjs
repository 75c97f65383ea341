#!/usr/bin/env node
// Builds one workspace package (run from its folder by `pnpm -r run build`): esbuild bundles
// src/index.ts into dist/index.js (ESM; dependencies stay external), then tsc writes the
// declarations from tsconfig.build.json.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { build } from 'esbuild';

const pkg = JSON.parse(readFileSync('package.json', 'utf8'));
if (!existsSync('src/index.ts')) {
  console.log(`${pkg.name}: no sources yet, nothing to build`);
  process.exit(0);
}
await build({
  entryPoints: ['src/index.ts'],
  bundle: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  outfile: 'dist/index.js',
  sourcemap: true,
  packages: 'external',
  external: ['webgpu', 'node:*'],
  logLevel: 'warning',
});
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
execFileSync(process.execPath, [tsc, '-p', 'tsconfig.build.json'], { stdio: 'inherit' });
console.log(`built ${pkg.name}`);
