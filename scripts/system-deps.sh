#!/usr/bin/env bash
# Debian packages the project needs on a fresh machine. Idempotent; needs root for apt.
set -euo pipefail
need=()
command -v node >/dev/null || need+=(nodejs npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v gcc >/dev/null || need+=(gcc)
if ((${#need[@]})); then
  if [[ $(id -u) -ne 0 ]]; then echo "missing system packages: ${need[*]} (run as root)" >&2; exit 1; fi
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
fi
