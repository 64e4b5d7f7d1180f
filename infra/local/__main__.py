"""Entry point: python -m infra.local <command>."""

import sys

from infra.local.stack import main

sys.exit(main(sys.argv[1:]))
