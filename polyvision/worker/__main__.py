"""``python -m polyvision.worker``: the same as ``polyvision worker`` (tests, debugging)."""

from __future__ import annotations

import sys

from polyvision.cli import main

if __name__ == "__main__":
    sys.exit(main(["worker", *sys.argv[1:]]))
