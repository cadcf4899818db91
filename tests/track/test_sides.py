"""Which kit is home: the colour conversion, each rule, their order, the override and the record."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from activities.track.sides import (
    DEFAULT_SIDES,
    KitCluster,
    SideAssignment,
    SideSettings,
    SidesRecord,
    assign_sides,
    hex_to_lab8,
    hex_to_rgb,
    lab8_from_lab,
    rgb_to_lab8,
    served_swap,
)

RED, BLUE, WHITE = "#c8102e", "#1d428a", "#ffffff"


def _kit(colour: str, mean_x: float = math.nan) -> KitCluster:
    """A cluster whose mean shirt colour is ``colour`` as OpenCV would measure it."""
    rgb = np.array([[hex_to_rgb(colour)]], np.uint8)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab).reshape(3).astype(float)
    return KitCluster(lab=(lab[0], lab[1], lab[2]), mean_x=mean_x)


# Cluster 0 wears blue and stands on the right; cluster 1 wears red and stands on the left.
CLUSTERS = {0: _kit(BLUE, mean_x=70.0), 1: _kit(RED, mean_x=35.0)}


# -- colour ---------------------------------------------------------------------------------


def test_rgb_to_lab8_follows_opencv_8_bit_lab() -> None:
    rng = np.random.default_rng(7)
    pixels = np.vstack(
        [
            rng.integers(0, 256, (5000, 3)),
            [[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255], [3, 2, 1]],
        ]
    ).astype(np.uint8)
    expected = cv2.cvtColor(pixels.reshape(-1, 1, 3), cv2.COLOR_RGB2Lab).reshape(-1, 3)
    ours = rgb_to_lab8(pixels)
    assert ours.shape == pixels.shape
    # OpenCV's fixed-point tables round; the float formula stays within two units of them.
    error = np.abs(ours - expected.astype(np.float64))
    assert error.max() <= 2.0
    assert error.mean() < 0.5


def test_hex_colours_parse_in_either_case_and_refuse_anything_else() -> None:
    assert hex_to_rgb("#C8102e") == (200, 16, 46)
    np.testing.assert_allclose(hex_to_lab8("#ffffff"), [255.0, 128.0, 128.0], atol=0.5)
    for bad in ("c8102e", "#c8102", "#c8102e0", "#gg0000", "red", ""):
        with pytest.raises(ValueError, match="#rrggbb"):
            hex_to_rgb(bad)
    with pytest.raises(ValueError, match="#rrggbb"):
        SideSettings(home_kit_colour="#12345")


def test_float_lab_converts_to_the_8_bit_scale() -> None:
    pixel = np.array([[[200, 16, 46]]], np.uint8)
    as_float = cv2.cvtColor(pixel.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab).reshape(3)
    as_8_bit = cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab).reshape(3)
    np.testing.assert_allclose(lab8_from_lab(as_float), as_8_bit, atol=1.0)
    kit = KitCluster.from_float_lab(as_float, mean_x=12.5)
    np.testing.assert_allclose(kit.lab, as_8_bit, atol=1.0)
    assert kit.mean_x == 12.5


def test_float_lab_clusters_decide_like_8_bit_ones() -> None:
    """The detect stage measures float Lab; converted, one kit colour decides correctly."""

    def measured(colour: str) -> KitCluster:
        pixel = np.array([[hex_to_rgb(colour)]], np.float32) / 255.0
        return KitCluster.from_float_lab(cv2.cvtColor(pixel, cv2.COLOR_RGB2Lab).reshape(3))

    clusters = {0: measured(BLUE), 1: measured(RED)}
    assert assign_sides(clusters, SideSettings(away_kit_colour=BLUE)).sides == {
        0: "away",
        1: "home",
    }
    assert assign_sides(clusters, SideSettings(home_kit_colour=BLUE)).sides == {
        0: "home",
        1: "away",
    }


# -- the rules ------------------------------------------------------------------------------


def test_nothing_given_keeps_the_old_convention() -> None:
    decided = assign_sides(CLUSTERS, SideSettings())
    assert decided == SideAssignment({0: "away", 1: "home"}, "default", swapped=False)
    assert decided.sides == DEFAULT_SIDES
    assert decided.team_codes() == {0: 0, 1: 1}
    # Nothing known of the clusters at all: still the default.
    assert assign_sides({}, SideSettings()).rule == "default"


def test_kit_colours_pick_the_closer_assignment() -> None:
    red_home = assign_sides(CLUSTERS, SideSettings(home_kit_colour=RED, away_kit_colour=BLUE))
    assert (red_home.sides, red_home.rule) == ({0: "away", 1: "home"}, "kit_colour")
    blue_home = assign_sides(CLUSTERS, SideSettings(home_kit_colour=BLUE, away_kit_colour=RED))
    assert (blue_home.sides, blue_home.rule) == ({0: "home", 1: "away"}, "kit_colour")
    assert blue_home.team_codes() == {0: 1, 1: 0}


@pytest.mark.parametrize(
    ("settings", "home"),
    [
        (SideSettings(home_kit_colour=BLUE), 0),
        (SideSettings(away_kit_colour=BLUE), 1),
        (SideSettings(home_kit_colour="#ff3040"), 1),  # a brighter red than measured
        (SideSettings(away_kit_colour="#0a2a6a"), 1),  # a darker blue than measured
    ],
)
def test_one_kit_colour_is_enough(settings: SideSettings, home: int) -> None:
    decided = assign_sides(CLUSTERS, settings)
    assert decided.rule == "kit_colour"
    assert decided.sides[home] == "home" and decided.sides[1 - home] == "away"


def test_lightness_counts_less_than_hue() -> None:
    # A sunlit pale blue against a shaded dark blue kit and a red one: hue decides.
    clusters = {0: _kit("#102040"), 1: _kit("#e05050")}
    decided = assign_sides(clusters, SideSettings(home_kit_colour="#6fa8ff"))
    assert decided.sides == {0: "home", 1: "away"}


def test_the_starting_side_decides_without_colours() -> None:
    # Cluster 1 stands nearer the goal at x = 0.
    left = assign_sides(CLUSTERS, SideSettings(home_starts_left=True))
    assert (left.sides, left.rule) == ({0: "away", 1: "home"}, "starting_side")
    right = assign_sides(CLUSTERS, SideSettings(home_starts_left=False))
    assert (right.sides, right.rule) == ({0: "home", 1: "away"}, "starting_side")


def test_kit_colours_win_over_the_starting_side() -> None:
    # The colours say blue (cluster 0) is home; the side would say cluster 1.
    decided = assign_sides(CLUSTERS, SideSettings(home_kit_colour=BLUE, home_starts_left=True))
    assert (decided.sides, decided.rule) == ({0: "home", 1: "away"}, "kit_colour")


@pytest.mark.parametrize(
    "clusters",
    [
        {0: KitCluster((math.nan, math.nan, math.nan), 70.0), 1: _kit(RED, 35.0)},
        {1: _kit(RED, 35.0)},
    ],
)
def test_a_rule_without_its_figures_falls_through(clusters: dict[int, KitCluster]) -> None:
    settings = SideSettings(home_kit_colour=RED, home_starts_left=True)
    if 0 in clusters:
        assert assign_sides(clusters, settings).rule == "starting_side"
    else:
        assert assign_sides(clusters, settings).rule == "default"


def test_a_colour_half_way_between_the_kits_decides_nothing() -> None:
    grey = KitCluster((128.0, 128.0, 128.0), 40.0)
    clusters = {0: grey, 1: grey}
    assert assign_sides(clusters, SideSettings(home_kit_colour=RED)).rule == "default"
    level = {0: _kit(BLUE, 50.0), 1: _kit(RED, 50.0)}
    assert assign_sides(level, SideSettings(home_starts_left=True)).rule == "default"


@pytest.mark.parametrize(
    "settings",
    [
        SideSettings(),
        SideSettings(home_kit_colour=RED, away_kit_colour=BLUE),
        SideSettings(home_starts_left=False),
    ],
)
def test_the_override_swaps_whatever_rule_decided(settings: SideSettings) -> None:
    plain = assign_sides(CLUSTERS, settings)
    overridden = assign_sides(
        CLUSTERS,
        SideSettings(
            settings.home_kit_colour,
            settings.away_kit_colour,
            settings.home_starts_left,
            teams_swapped=True,
        ),
    )
    assert overridden.rule == plain.rule and overridden.swapped and not plain.swapped
    assert overridden.sides == {0: plain.sides[1], 1: plain.sides[0]}


def test_clusters_other_than_the_two_kits_are_refused() -> None:
    with pytest.raises(ValueError, match="0 and 1"):
        assign_sides({0: _kit(RED), 2: _kit(BLUE)}, SideSettings())


# -- the record and the read-time swap --------------------------------------------------------


def test_the_record_round_trips_through_json() -> None:
    clusters = {0: _kit(BLUE, 70.0), 1: KitCluster((math.nan, 1.0, 2.0))}
    record = SidesRecord.decide(clusters, SideSettings(home_kit_colour=RED, teams_swapped=True))
    body = record.to_json()
    assert b"NaN" not in body  # unknown figures are null: strict JSON
    back = SidesRecord.from_json(body)
    assert back.settings == record.settings and back.assignment == record.assignment
    assert back.clusters[0] == clusters[0]
    assert math.isnan(back.clusters[1].lab[0]) and math.isnan(back.clusters[1].mean_x)


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"version": 2}', b'{"version": 1}', b'{"version": 1, "settings": 3}'],
)
def test_a_broken_record_is_a_value_error(body: bytes) -> None:
    with pytest.raises(ValueError):
        SidesRecord.from_json(body)


def test_a_record_with_a_bad_side_is_a_value_error() -> None:
    body = SidesRecord.decide(CLUSTERS, SideSettings()).to_json().replace(b'"home"', b'"h"')
    with pytest.raises(ValueError, match="side"):
        SidesRecord.from_json(body)


def test_served_swap_follows_settings_changed_after_tracking() -> None:
    at_processing = SideSettings(home_kit_colour=RED)
    record = SidesRecord.decide(CLUSTERS, at_processing)
    assert record.assignment.sides == {0: "away", 1: "home"}
    # Unchanged settings, or changes that decide the same: the stored codes stand.
    assert not served_swap(record, at_processing)
    assert not served_swap(record, SideSettings(home_kit_colour=RED, away_kit_colour=BLUE))
    # The operator's override, or kit colours that now say the other kit is home: swap.
    assert served_swap(record, SideSettings(home_kit_colour=RED, teams_swapped=True))
    assert served_swap(record, SideSettings(home_kit_colour=BLUE))
    assert served_swap(record, SideSettings(home_starts_left=False))
    # A run that used the override, served after the operator took it back: swap back.
    swapped_run = SidesRecord.decide(CLUSTERS, SideSettings(teams_swapped=True))
    assert served_swap(swapped_run, SideSettings())
    assert not served_swap(swapped_run, SideSettings(teams_swapped=True))


def test_unchanged_settings_never_swap_whatever_the_rules_say_now() -> None:
    # A record whose answer today's rules would not give (an older rule, say): left alone.
    record = SidesRecord.decide(CLUSTERS, SideSettings(home_kit_colour=RED))
    older = SidesRecord(
        record.settings, record.clusters, SideAssignment({0: "home", 1: "away"}, "kit_colour")
    )
    assert not served_swap(older, SideSettings(home_kit_colour=RED))
    assert served_swap(older, SideSettings(home_kit_colour=RED, away_kit_colour=BLUE))


def test_without_a_record_only_the_override_applies() -> None:
    assert not served_swap(None, SideSettings(home_kit_colour=BLUE))
    assert served_swap(None, SideSettings(teams_swapped=True))
