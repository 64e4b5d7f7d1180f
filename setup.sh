#!/usr/bin/env bash
# Bring the local stack up in the background (migrated and seeded); returns when /health answers.
# `./setup.sh --help` prints the options and starts nothing.
set -euo pipefail
cd "$(dirname "$0")"
# The arguments are read first, with the standard library only: --help or a typo installs and starts nothing.
parsed=0
PYTHONPATH="$PWD" python3 -m infra.local --parse-only up "$@" || parsed=$?
[ "$parsed" = 10 ] && exit 0 # --help was printed
[ "$parsed" = 0 ] || exit "$parsed"
make --no-print-directory install-stack
PYTHONPATH="$PWD" exec .venv/bin/python -m infra.local up "$@"
