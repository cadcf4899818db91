"""Run every benchmark: `python -m bench`."""

from __future__ import annotations

from bench import (
    analytics_accuracy,
    ball_real,
    detect_int8,
    detect_tiling,
    foot_point,
    ladder,
    load_delivery,
    native_blend,
    ort_threads,
    pipeline,
    stitch_activity,
    stitch_kernel,
    stitch_quality,
    synth_detect_recall,
    synth_speed,
    trackers,
    upload_storm,
    vcam_render,
)


def main() -> None:
    native_blend.main()
    stitch_kernel.main([])
    vcam_render.main([])
    ladder.main([])
    load_delivery.main([])  # five targets of 20 s each: about two minutes
    upload_storm.main([])  # 50 agents through a cutting proxy: about a minute
    detect_tiling.main([])
    synth_speed.main([])
    synth_detect_recall.main([])
    stitch_quality.main([])
    stitch_activity.main([])
    trackers.main([])
    foot_point.main([])
    ball_real.main([])
    ort_threads.main([])
    detect_int8.main([])
    pipeline.main([])  # the whole workflow per setting: about an hour
    analytics_accuracy.main([])  # three 60 s seeds through the workflow: about 45 minutes


if __name__ == "__main__":
    main()
