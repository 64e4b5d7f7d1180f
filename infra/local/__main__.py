"""Entry point: python -m infra.local <command> (see infra/local/cli.py)."""

import sys

from infra.local.cli import main

sys.exit(main(sys.argv[1:]))
