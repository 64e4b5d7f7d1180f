#!/usr/bin/env bash
# Race Platform smoke test: "is the stack alive?" Six paths, one PASS/FAIL line each.
#   make smoke
#   API_URL=https://api.example.com WS_URL=wss://ws.example.com ./tools/smoke-test.sh
# Variables and steps: ./tools/smoke-test.sh --help. Exit 0 all passed, 1 a step failed, 2 usage.
# The logic lives in tools/smoke_test.py (standard library only).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"

# Prefer the repo's virtualenv, else python3 (the script needs nothing beyond the stdlib).
# A candidate must actually run: a .venv copied from another machine has dangling links.
py=""
for candidate in "${SMOKE_PYTHON:-}" "$repo/.venv/bin/python" python3; do
  [[ -n "$candidate" ]] || continue
  if command -v "$candidate" >/dev/null 2>&1 && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 8))' 2>/dev/null; then
    py="$candidate"
    break
  fi
done
if [[ -z "$py" ]]; then
  echo "smoke-test: needs python3 (3.8 or newer) on PATH" >&2
  exit 2
fi

exec "$py" "$here/smoke_test.py" "$@"
