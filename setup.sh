#!/usr/bin/env bash
# Bring the local stack up in the background (migrated and seeded); returns when /health answers.
set -euo pipefail
cd "$(dirname "$0")"
make --no-print-directory install >/dev/null
PYTHONPATH="$PWD" exec .venv/bin/python -m infra.local up "$@"
