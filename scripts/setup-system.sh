#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks to build, test and run Fluxion:
#   - pnpm (pinned), through npm;
#   - a real WebGPU adapter for Dawn on a machine with no GPU: Mesa's software Vulkan driver
#     (lavapipe) from bookworm-backports. Debian 12's own Mesa 22 is too old for Dawn's Vulkan
#     backend. The backports source is derived from the machine's existing apt sources, so no
#     registry host name is written here;
#   - Debian's Chromium, which the playground test drives headless (WebGPU on SwiftShader), and
#     whose SwiftShader Vulkan driver (vk_swiftshader_icd.json) `pnpm test` uses as a second
#     WebGPU adapter for the Node suites.
# Idempotent: each step is skipped when its result is already present.
set -euo pipefail

need_root() { if [ "$(id -u)" != 0 ]; then echo "setup-system: run as root (apt-get)" >&2; exit 1; fi; }

if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version)" != "10.34.9" ]; then
  npm i -g pnpm@10.34.9 >/dev/null
fi

have_new_mesa() {
  dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | grep -Eq '^(2[4-9]|[3-9][0-9])\.'
}

if ! have_new_mesa; then
  need_root
  src=/etc/apt/sources.list.d/debian.sources
  backports=/etc/apt/sources.list.d/fluxion-backports.sources
  if [ ! -f "$backports" ]; then
    if [ -f "$src" ]; then
      # Copy the first stanza (the main archive) with its suite changed to bookworm-backports.
      awk 'BEGIN{RS="";ORS="\n\n"} NR==1{print}' "$src" |
        sed -E 's/^Suites:.*/Suites: bookworm-backports/' >"$backports"
    elif [ -f /etc/apt/sources.list ]; then
      line=$(grep -E '^deb .* bookworm .*main' /etc/apt/sources.list | head -n1)
      echo "${line/ bookworm / bookworm-backports }" >/etc/apt/sources.list.d/fluxion-backports.list
    else
      echo "setup-system: no apt sources found to derive bookworm-backports from" >&2; exit 1
    fi
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
fi
if ! command -v chromium >/dev/null 2>&1; then
  need_root
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
if [ ! -f /usr/lib/chromium/vk_swiftshader_icd.json ]; then
  echo "setup-system: chromium installed no /usr/lib/chromium/vk_swiftshader_icd.json (SwiftShader)" >&2; exit 1
fi
echo "setup-system: pnpm $(pnpm --version), mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), $(chromium --version 2>/dev/null | head -n1)"
