"""Run every benchmark: `python -m bench`."""

from __future__ import annotations

from bench import native_blend


def main() -> None:
    native_blend.main()


if __name__ == "__main__":
    main()
