/**
 * Finds a file shipped inside the `@fluxion/models` package (`assets/`, `data/`) from wherever the
 * code runs: its TypeScript sources, its bundled `dist/index.js`, the installed package, or a bundle
 * written elsewhere (e.g. by `scripts/run-ts.mjs` under `node_modules/.cache/`).
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FluxionError } from '@fluxion/tensor';

/**
 * The places where `relativePath` (relative to the package root, e.g. `data/text/names.txt`) may
 * be, in the order they are tried: next to this module (`src/` and `dist/` both sit one folder
 * below the package root), the installed `@fluxion/models` package, then every folder from the
 * working directory upwards for `packages/models/` or `node_modules/@fluxion/models/`.
 *
 * @example
 * ```ts
 * packageFileCandidates('assets/mnist-classifier.safetensors')[0]; // '/…/packages/models/assets/…'
 * ```
 */
export function packageFileCandidates(relativePath: string): string[] {
  const candidates: string[] = [];
  try {
    candidates.push(fileURLToPath(new URL(`../${relativePath}`, import.meta.url)));
  } catch {
    // Not a file: URL (e.g. a data: URL); the other places remain.
  }
  try {
    const packageJson = createRequire(import.meta.url).resolve('@fluxion/models/package.json');
    candidates.push(join(dirname(packageJson), relativePath));
  } catch {
    // Not installed as a package here.
  }
  for (let dir = process.cwd(); ; dir = dirname(dir)) {
    candidates.push(join(dir, 'packages', 'models', relativePath));
    candidates.push(join(dir, 'node_modules', '@fluxion', 'models', relativePath));
    if (dirname(dir) === dir) break;
  }
  return candidates;
}

/**
 * The path of a file shipped in the package (see {@link packageFileCandidates} for where it
 * looks); a {@link FluxionError} from `op` that says where it looked, followed by `hint`, when it
 * is nowhere.
 *
 * @example
 * ```ts
 * readFileSync(packageFilePath('data/text/names.txt', 'loadNames'), 'utf8');
 * ```
 */
export function packageFilePath(relativePath: string, op: string, hint = ''): string {
  const candidates = packageFileCandidates(relativePath);
  const found = candidates.find((p) => existsSync(p));
  if (found) return found;
  throw new FluxionError(
    op,
    `cannot find ${relativePath} of @fluxion/models (looked in ${candidates.length} places, e.g. ${candidates[0]})` +
      (hint ? `; ${hint}` : ''),
  );
}
