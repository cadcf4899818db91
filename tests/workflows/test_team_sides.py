"""The match's side settings travel from the workflow's input to the track stage's input."""

from __future__ import annotations

import dataclasses

from temporalio import activity
from temporalio.client import Client

from activities.track.contracts import TrackInput, TrackOutput
from polyvision.temporal.queues import QueueRole, queue_names
from tests.fixtures.standin_workers import SHORT_MATCH, standin_workers
from tests.workflows.standins import StandinActivities
from workflows.match import MatchWorkflow, workflow_id_for
from workflows.types import MatchInput


class RecordingActivities(StandinActivities):
    """The stand-ins, keeping every input the track stage was given."""

    def __init__(self) -> None:
        super().__init__(SHORT_MATCH)
        self.track_inputs: list[TrackInput] = []

    @activity.defn(name="track_match")
    async def track_match(self, input: TrackInput) -> TrackOutput:
        """Keep the input, then answer like the stand-in."""
        self.track_inputs.append(input)
        return await super().track_match(input)


async def _track_input(client: Client, task_queue: str, given: MatchInput) -> TrackInput:
    activities = RecordingActivities()
    async with standin_workers(client, f"-{task_queue}", activities):
        await client.execute_workflow(
            MatchWorkflow.run,
            given,
            id=workflow_id_for(given.match_id),
            task_queue=queue_names(f"-{task_queue}")[QueueRole.cpu],
        )
    [track] = activities.track_inputs
    return track


def _input(task_queue: str, suffix: str) -> MatchInput:
    match_id = f"m-{task_queue}-{suffix}"
    return MatchInput(
        organization_id="o1",
        match_id=match_id,
        left_key=f"orgs/o1/uploads/{match_id}/left.mp4",
        right_key=f"orgs/o1/uploads/{match_id}/right.mp4",
        rig_key=f"orgs/o1/uploads/{match_id}/rig.json",
        task_queue_suffix=f"-{task_queue}",
    )


async def test_the_side_settings_reach_the_track_stage(
    temporal_client: Client, task_queue: str
) -> None:
    given = dataclasses.replace(
        _input(task_queue, "set"),
        home_kit_colour="#c8102e",
        away_kit_colour="#1d428a",
        home_starts_left=False,
        teams_swapped=True,
    )
    track = await _track_input(temporal_client, task_queue, given)
    assert (track.home_kit_colour, track.away_kit_colour) == ("#c8102e", "#1d428a")
    assert (track.home_starts_left, track.teams_swapped) == (False, True)


async def test_a_match_without_settings_tracks_with_none(
    temporal_client: Client, task_queue: str
) -> None:
    track = await _track_input(temporal_client, task_queue, _input(task_queue, "unset"))
    assert (track.home_kit_colour, track.away_kit_colour) == (None, None)
    assert (track.home_starts_left, track.teams_swapped) == (None, False)
