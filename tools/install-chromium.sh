#!/usr/bin/env bash
# Installs Debian's Chromium for the browser tests (tests/browser calls this when it is missing).
# Only as root on Debian; never downloads a browser build of its own (no `playwright install`).
# Exit 0: chromium is there. Exit 2: cannot install here (not root / not Debian / apt failed).
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  echo "install-chromium: not root; install Chromium yourself (Debian: apt-get install chromium)" >&2
  exit 2
fi
if [ ! -f /etc/debian_version ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-chromium: not a Debian system; install Chromium at /usr/bin/chromium yourself" >&2
  exit 2
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-chromium: apt-get install chromium (one time, about a minute)" >&2
if ! apt-get update -qq >&2 || ! apt-get install -y -qq chromium fonts-dejavu-core >&2; then
  echo "install-chromium: apt-get failed" >&2
  exit 2
fi
[ -x /usr/bin/chromium ] || { echo "install-chromium: /usr/bin/chromium still missing" >&2; exit 2; }
