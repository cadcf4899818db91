"""How much detection a worker does per frame: the detect stage's cost settings.

The full detector (every tile of a frame through the network) is by far the pipeline's largest
cost. A worker runs it on every ``stride``-th frame of the match -- on match frames
``f % stride == 0``, so the phase is the same in every chunk -- and the track stage carries the
players through the frames between (`activities.track.stride`). The ball's video cues
(`activities.detect.ball_video`) are cheap and run on every frame: a ball moves too fast to be
carried.

Read once per worker from the settings (``PV_DETECT_STRIDE``, ``PV_DETECT_TILES``,
``PV_INFERENCE_LAYOUT``); the stride a chunk was detected with is part of its manifest inputs
and of its output, which the track stage is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

TileScope = Literal["sized", "pitch", "all"]
InferenceLayout = Literal["auto", "ort-default"]

DEFAULT_STRIDE = 4
"""Full detection on every 4th frame (6.25 a second at 25 fps): see README "Performance" for the
accuracy and cost measured at 1 and 4."""


@dataclass(frozen=True)
class DetectTuning:
    """A worker's detect cost settings.

    Attributes:
        stride: The full detector runs on match frames ``f % stride == 0``; 1: every frame.
        tiles: "sized": tiles in bands scaled to the players' size there, over the pitch
            (`activities.detect.pitch_tiles`); "pitch": the input's one upscale everywhere,
            only tiles that see the pitch or a player standing on it (the tuned baseline);
            "all": every tile of the panorama at that upscale (the naive baseline).
        inference_layout: "auto": ONNX Runtime's sessions and threads sized from the machine;
            "ort-default": ONNX Runtime's own defaults (the naive baseline).
    """

    stride: int = DEFAULT_STRIDE
    tiles: TileScope = "sized"
    inference_layout: InferenceLayout = "auto"

    def __post_init__(self) -> None:
        if not 1 <= self.stride <= 10:
            raise ValueError(f"detect stride must be within 1..10, got {self.stride}")

    def detects(self, frame: int) -> bool:
        """Whether the full detector runs on this match frame."""
        return frame % self.stride == 0
