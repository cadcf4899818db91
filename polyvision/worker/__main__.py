"""``python -m polyvision.worker``: the same as ``polyvision worker`` (tests, debugging)."""

from __future__ import annotations

import sys

from polyvision.cli import run

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", *sys.argv[1:]]
    run()
