#!/usr/bin/env bash
# Stop the background stack; `./teardown.sh --wipe` also deletes its data; `--help` prints the options.
set -euo pipefail
cd "$(dirname "$0")"
# The arguments are read first, with the standard library only: --help or a typo stops nothing.
parsed=0
PYTHONPATH="$PWD" python3 -m infra.local --parse-only down "$@" || parsed=$?
[ "$parsed" = 10 ] && exit 0 # --help was printed
[ "$parsed" = 0 ] || exit "$parsed"
make --no-print-directory install-stack
PYTHONPATH="$PWD" exec .venv/bin/python -m infra.local down "$@"
