#!/usr/bin/env bash
# Stop the background stack; `./teardown.sh --wipe` also deletes its data.
set -euo pipefail
cd "$(dirname "$0")"
make --no-print-directory install >/dev/null
PYTHONPATH="$PWD" exec .venv/bin/python -m infra.local down "$@"
