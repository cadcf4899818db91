"""The pitch frame and the dimensions of the pitch: one definition for every stage.

Pitch frame (shared by ``rig.json``, the synthetic ground truth and every stage): metres, origin
at the corner of the near touchline and the left goal line, ``x`` along the near touchline
(0..length), ``y`` towards the far touchline (0..width), ``z`` up. Cameras stand beyond the near
touchline (``y < 0``).
"""

from __future__ import annotations

PITCH_LENGTH_M = 105.0
"""FIFA's preferred pitch length (touchline), metres."""

PITCH_WIDTH_M = 68.0
"""FIFA's preferred pitch width (goal line), metres."""

PITCH_M = (PITCH_LENGTH_M, PITCH_WIDTH_M)
"""``(length, width)`` of the pitch, metres."""

BALL_RADIUS_M = 0.11
"""A size-5 ball: 22 cm across."""
