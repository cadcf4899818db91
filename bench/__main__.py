"""Run every benchmark: `python -m bench`."""

from __future__ import annotations

from bench import detect_tiling, native_blend


def main() -> None:
    native_blend.main()
    detect_tiling.main()


if __name__ == "__main__":
    main()
