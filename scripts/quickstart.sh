#!/usr/bin/env bash
# The README's first command: installs everything a fresh Debian 12 machine lacks (see
# setup-system.sh), installs the workspace from the lockfile, and runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-system.sh
pnpm install --frozen-lockfile
export XDG_RUNTIME_DIR=${XDG_RUNTIME_DIR:-/tmp}
pnpm demo "$@"
