"""``python -m benchmarks [NAME ...] [--quick] [--max N]``: the same as ``sandbox-engine bench``."""

import sys

from engine.cli import main

sys.exit(main(["bench", *sys.argv[1:]]))
