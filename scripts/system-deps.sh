#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only when something is missing.
# Usage: scripts/system-deps.sh demo|test
set -euo pipefail

need=()
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ "${1:-}" = "test" ]; then
  command -v mosquitto >/dev/null 2>&1 || need+=(mosquitto)
  command -v socat >/dev/null 2>&1 || need+=(socat)
  command -v node >/dev/null 2>&1 || need+=(nodejs)
  command -v npm >/dev/null 2>&1 || need+=(npm)
  command -v chromium >/dev/null 2>&1 || need+=(chromium)  # the installer page's browser tests (Playwright)
fi
[ ${#need[@]} -eq 0 ] && exit 0

echo "Installing Debian packages: ${need[*]}"
if ! command -v apt-get >/dev/null 2>&1; then
  echo "error: these packages are missing and apt-get is not available: ${need[*]}" >&2
  exit 1
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "error: run as root or install sudo to get: ${need[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}"
