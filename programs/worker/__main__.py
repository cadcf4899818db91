"""``python -m programs.worker``: the same as ``polyvision worker`` (tests, debugging)."""

from __future__ import annotations

import sys

from programs.cli import run

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "worker", *sys.argv[1:]]
    run()
