import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

const src = (pkg: string, entry = 'index') =>
  fileURLToPath(new URL(`./packages/${pkg}/src/${entry}.ts`, import.meta.url));

// One vitest run covers every package. Workspace packages resolve to their TypeScript sources,
// so tests never need a build first. A subpath comes before its package: an alias also matches
// the paths under it.
export default defineConfig({
  resolve: {
    alias: {
      '@fluxion/tensor': src('tensor'),
      '@fluxion/autograd': src('autograd'),
      '@fluxion/nn': src('nn'),
      '@fluxion/models/node': src('models', 'node'),
      '@fluxion/models': src('models'),
    },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'bench/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
