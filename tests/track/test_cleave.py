"""Identities cut where their kit changes for long, not for a few noisy samples."""

from __future__ import annotations

import numpy as np

from activities.track.cleave import CleaveSettings, split_on_kit_change
from activities.track.linking import TrackRows

RED = np.array([50.0, 60.0, 40.0])
BLUE = np.array([40.0, 10.0, -40.0])


def _match(swapped_at: int | None, frames: int = 500) -> tuple[TrackRows, np.ndarray]:
    """Ten red and ten blue identities; identity 1 turns blue at ``swapped_at``."""
    rng = np.random.default_rng(1)
    frame, ids, lab = [], [], []
    for track in range(1, 21):
        kit = np.tile(RED if track <= 10 else BLUE, (frames, 1))
        if track == 1 and swapped_at is not None:
            kit[swapped_at:] = BLUE
        noisy = rng.random(frames) < 0.2  # a fifth of the samples look like the other kit
        kit[noisy] = np.where(kit[noisy] == RED, BLUE, RED)
        frame.append(np.arange(frames))
        ids.append(np.full(frames, track))
        lab.append(kit + rng.normal(0, 3, (frames, 3)))
    rows = TrackRows.of(np.concatenate(frame), np.concatenate(ids), np.zeros((20 * frames, 2)))
    return rows, np.concatenate(lab)


def test_a_long_run_of_the_other_kit_cuts_the_identity_there() -> None:
    rows, lab = _match(swapped_at=300)
    cut = split_on_kit_change(rows, lab, 25.0, CleaveSettings(window_s=2.0, min_run_s=4.0))
    first = cut.track_id[rows.track_id == 1]
    assert len(np.unique(first)) == 2
    change = np.flatnonzero(first[1:] != first[:-1])[0] + 1
    assert abs(change - 300) <= 25
    assert len(np.unique(cut.track_id)) == 21


def test_noisy_samples_alone_cut_nothing() -> None:
    rows, lab = _match(swapped_at=None)
    cut = split_on_kit_change(rows, lab, 25.0, CleaveSettings(window_s=2.0, min_run_s=4.0))
    np.testing.assert_array_equal(cut.track_id, rows.track_id)
