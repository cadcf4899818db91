"""The `polyvision` console script: a clear line when this installation lacks the server parts.

Every extra installs the `polyvision` command, but an edge box (``pip install 'polyvision[edge]'``)
has none of the packages the server commands import; this entry point says so in one line
instead of a ModuleNotFoundError traceback.
"""

from __future__ import annotations

import sys


def run() -> None:
    """Start `programs.cli.run`, or explain which extra is missing."""
    try:
        from programs.cli import run as run_cli
    except ModuleNotFoundError as exc:
        sys.stderr.write(
            f"polyvision: this installation lacks the package {exc.name!r} the server commands "
            "need; install 'polyvision[stack]' (or [api], [worker]); an edge box uploads with "
            "polyvision-edge\n"
        )
        raise SystemExit(2) from None
    run_cli()
