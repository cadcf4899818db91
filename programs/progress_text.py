"""A match's processing progress as a few lines of text, for `polyvision process` and the demo.

One line per stage in pipeline order: a bar, chunks done out of the total, frames done out of
the total where the stage counts frames (stitch, detect, encode: the chunks in flight count
too), and the time the stage took once finished, or ``running``. The header names the stage
running now and, while several run side by side, all of them::

    stage: detect (running: stitch, detect)
      ingest   ######################## 1/1    0.3 s
      stitch   ################-------- 2/3 chunks, 1500/2250 frames  running
      detect   ######------------------ 0/3 chunks, 600/2250 frames  running
      track    ........................
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

BAR_WIDTH = 24


@dataclass(frozen=True)
class StageLine:
    """What one stage's line shows."""

    name: str
    done: int
    total: int
    frames_done: int = 0
    frames_total: int = 0
    seconds: float | None = None
    running: bool = False

    @property
    def moved(self) -> tuple[int, int]:
        """What changes while the stage makes progress (chunks and frames done)."""
        return self.done, self.frames_done


def _bar(done: int, total: int) -> str:
    total = max(total, 1)
    filled = round(BAR_WIDTH * min(max(done, 0), total) / total)
    return "#" * filled + "-" * (BAR_WIDTH - filled)


def stage_line(line: StageLine) -> str:
    """``  detect   ######------------------ 1/3 chunks, 600/2250 frames  running``."""
    if line.frames_total > 0:
        text = (
            f"  {line.name:<8} {_bar(line.frames_done, line.frames_total)} "
            f"{line.done}/{line.total} chunks, {line.frames_done}/{line.frames_total} frames"
        )
    else:
        text = f"  {line.name:<8} {_bar(line.done, line.total)} {line.done}/{line.total}"
    if line.seconds is not None:
        return text + f" {line.seconds:6.1f} s"
    return text + ("  running" if line.running else "")


def format_stages(
    stage: str,
    running: Sequence[str],
    lines: Sequence[StageLine],
    order: Sequence[str],
    warnings: Sequence[str] = (),
) -> str:
    """The header, one line per stage of ``order`` (dots for a stage not started), and a
    ``warning:`` line for each of the run's warnings (e.g. the cameras out of sync)."""
    header = f"stage: {stage}"
    if len(running) > 1:
        header += f" (running: {', '.join(running)})"
    by_name = {line.name: line for line in lines}
    text = [header]
    for name in order:
        line = by_name.get(name)
        text.append(f"  {name:<8} {'.' * BAR_WIDTH}" if line is None else stage_line(line))
    text.extend(f"warning: {warning}" for warning in warnings)
    return "\n".join(text)
