"""The merge and linking rules on hand-made centres: who wins a merge, the speed gate, the gap tolerance."""

from __future__ import annotations

import numpy as np
import pandas as pd

from medicane_hf.data.geo import haversine_km
from medicane_hf.tracking.linking import assign_tracks, link_tracks
from medicane_hf.tracking.merge import merge_detections
from medicane_hf.tracking.settings import TrackingSettings

T0 = pd.Timestamp("2023-10-01 00:00")


def centres(points: list[tuple[int, float, float]]) -> pd.DataFrame:
    """(hour, lon, lat) -> a centres table."""
    return pd.DataFrame(
        {"time": [T0 + pd.Timedelta(hours=h) for h, _, _ in points], "lon": [p[1] for p in points],
         "lat": [p[2] for p in points]}
    )  # fmt: skip


def test_the_most_confident_of_close_detections_wins() -> None:
    table = pd.DataFrame(
        {"detection_id": ["a", "b", "c", "d"], "time": [T0] * 3 + [T0 + pd.Timedelta(hours=1)],
         "lon": [15.0, 15.3, 25.0, 15.3], "lat": [38.0, 38.1, 35.0, 38.1], "probability": [0.6, 0.9, 0.8, 0.5]}
    )  # fmt: skip
    assert haversine_km(15.0, 38.0, 15.3, 38.1) < 150
    merged = merge_detections(table, 150.0)
    assert merged["merged_into"].tolist() == ["b", "b", "c", "d"]
    assert merged["kept"].tolist() == [False, True, True, True]


def test_complete_linkage_does_not_chain_storms_through_a_line_of_tiles() -> None:
    # three detections 100 km apart in a line: a and c are 200 km apart, so not all three are one storm
    lat = 38.0
    step = 100.0 / (111.195 * np.cos(np.radians(lat)))
    table = pd.DataFrame(
        {"detection_id": ["a", "b", "c"], "time": [T0] * 3, "lon": [15.0, 15.0 + step, 15.0 + 2 * step],
         "lat": [lat] * 3, "probability": [0.9, 0.5, 0.8]}
    )  # fmt: skip
    assert merge_detections(table, 150.0)["kept"].sum() == 2


def test_two_storms_crossing_paths_keep_their_tracks() -> None:
    # two storms 300 km apart moving towards each other's lane at 20 km/h: assignment keeps each on its own track
    points = [(h, 15.0 + 0.2 * h, 36.0) for h in range(12)] + [(h, 15.0 + 0.2 * h, 39.0) for h in range(12)]
    ids = link_tracks(centres(points), TrackingSettings())
    assert ids[:12].nunique() == ids[12:].nunique() == 1 and ids[0] != ids[12]


def test_a_jump_faster_than_the_gate_starts_a_new_track() -> None:
    # 0.2 deg lon/h at 38 N = 17.5 km/h; then a jump of 3.2 degrees (280 km) in one hour
    points = [(h, 15.0 + 0.2 * h, 38.0) for h in range(8)] + [(h, 18.0 + 0.2 * h, 38.0) for h in range(8, 16)]
    ids = link_tracks(centres(points), TrackingSettings(max_speed_kmh=80.0, position_error_km=50.0))
    assert ids.tolist() == ["P001"] * 8 + ["P002"] * 8
    # a gate above that speed joins them, and so does a position error that covers the jump
    assert link_tracks(centres(points), TrackingSettings(max_speed_kmh=300.0)).nunique() == 1
    assert link_tracks(centres(points), TrackingSettings(position_error_km=250.0)).nunique() == 1


def test_gaps_up_to_the_tolerance_are_bridged_longer_ones_split() -> None:
    def hours_with_gap(gap: int) -> list[tuple[int, float, float]]:
        return [(h, 15.0 + 0.1 * h, 38.0) for h in list(range(8)) + list(range(8 + gap, 16 + gap))]

    assert link_tracks(centres(hours_with_gap(3)), TrackingSettings(max_gap_hours=3)).nunique() == 1
    assert link_tracks(centres(hours_with_gap(4)), TrackingSettings(max_gap_hours=3)).nunique() == 2


def test_tracks_shorter_than_the_minimum_are_dropped() -> None:
    points = [(h, 15.0, 38.0) for h in range(6)] + [(h, 30.0, 34.0) for h in range(7)]  # 5 h and 6 h long
    ids = link_tracks(centres(points), TrackingSettings(min_duration_hours=6))
    assert ids[:6].tolist() == [""] * 6 and ids[6:].tolist() == ["P001"] * 7


def test_ids_do_not_depend_on_the_row_order() -> None:
    points = [(h, 15.0 + 0.1 * h, 38.0) for h in range(10)] + [
        (h, 25.0, 34.0 + 0.05 * h) for h in range(2, 12)
    ]
    table = centres(points).assign(detection_id=[f"d{i}" for i in range(20)], probability=0.8)
    shuffled = table.sample(frac=1.0, random_state=3)
    first = assign_tracks(table, TrackingSettings()).set_index("detection_id")["track_id"]
    second = assign_tracks(shuffled, TrackingSettings()).set_index("detection_id")["track_id"]
    assert first.sort_index().tolist() == second.sort_index().tolist()
    assert first["d0"] == "P001" and first["d10"] == "P002"
