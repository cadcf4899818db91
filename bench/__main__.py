"""Run every benchmark: `python -m bench`."""

from __future__ import annotations

from bench import (
    ball_real,
    detect_tiling,
    foot_point,
    native_blend,
    stitch_activity,
    stitch_kernel,
    stitch_quality,
    synth_detect_recall,
    synth_speed,
    trackers,
)


def main() -> None:
    native_blend.main()
    stitch_kernel.main([])
    detect_tiling.main([])
    synth_speed.main([])
    synth_detect_recall.main([])
    stitch_quality.main([])
    stitch_activity.main([])
    trackers.main([])
    foot_point.main([])
    ball_real.main([])


if __name__ == "__main__":
    main()
