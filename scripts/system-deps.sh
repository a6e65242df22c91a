#!/usr/bin/env bash
# Debian packages the project needs on a fresh machine. Idempotent; needs root for apt.
#   nodejs/npm  — the @mysten/seal interop oracle      socat    — host proxy tests and benchmark
#   nix-bin     — parse-checks the Nix flake           iproute2 — network namespaces for enclave tests
#   gcc-12 make binutils libc6-dev flex bison bc libelf-dev xz-utils — the enclave kernel build (the exact
#                 versions are pinned in imagebuild/inputs.lock.json and checked before building)
#   qemu-system-x86 — boots the enclave image in the boot tests (tests/boot)
set -euo pipefail
need=()
command -v node >/dev/null || need+=(nodejs)
command -v npm >/dev/null || need+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v gcc >/dev/null || need+=(gcc)
command -v socat >/dev/null || need+=(socat)
command -v nix-instantiate >/dev/null || need+=(nix-bin)
command -v ip >/dev/null || need+=(iproute2)
for tool in gcc-12 make flex bison bc; do command -v "$tool" >/dev/null || need+=("$tool"); done
command -v ld >/dev/null || need+=(binutils)
command -v xz >/dev/null || need+=(xz-utils)
for package in libc6-dev libelf-dev; do
  dpkg-query --show --showformat='${db:Status-Abbrev}' "$package" 2>/dev/null | grep -q '^ii' || need+=("$package")
done
command -v qemu-system-x86_64 >/dev/null || need+=(qemu-system-x86)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "missing system packages: ${need[*]} (run as root)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
