"""Linking and scoring on truth that is known: detections drawn from a synthetic basin's own centres (an oracle
detector and tracker) give back the true tracks and perfect scores; noise and dropped hours lower them as much as
they should. Nothing here depends on a model's skill."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.synthetic.default import read_source_truth
from medicane_hf.data.tracks import read_tracks
from medicane_hf.tracking.linking import assign_tracks
from medicane_hf.tracking.scoring import score_tracks, true_positions
from medicane_hf.tracking.settings import TrackingSettings
from medicane_hf.tracking.tables import track_points

KM_PER_DEG = np.pi * 6371.0088 / 180.0


@pytest.fixture(scope="module")
def basin(dataset_dir: Path) -> dict:
    """The embedded default's grid, true tracks, drawn Medicane centres at every hour, and the hours."""
    grid = SeviriGrid.from_dict(json.loads((dataset_dir / "dataset_info.json").read_text())["grid"])
    truth = read_source_truth(dataset_dir)
    times = pd.to_datetime(truth["time"])
    drawn = truth[(truth["kind"] == "medicane") & (times == times.dt.floor("h"))].copy()
    drawn["time"] = pd.to_datetime(drawn["time"])
    hours = pd.DatetimeIndex(sorted(drawn["time"].unique()))
    return {"grid": grid, "tracks": read_tracks(dataset_dir / "source" / "tracks.csv"), "drawn": drawn,
            "hours": hours}  # fmt: skip


def oracle_detections(
    basin: dict, *, noise_km: float = 0.0, drop: float = 0.0, seed: int = 0
) -> pd.DataFrame:
    """One detection per Medicane and hour inside its window and on the grid, from the drawn centres; optionally
    moved by isotropic Gaussian noise (sigma `noise_km` per axis) and with a share `drop` of them left out."""
    rng = np.random.default_rng(seed)
    positions = true_positions(basin["tracks"], basin["hours"], basin["grid"])
    drawn = basin["drawn"].set_index(["object_id", "time"])[["lon", "lat"]]
    centres = drawn.loc[list(zip(positions["storm_id"], positions["time"]))].to_numpy(float)
    lon, lat = centres[:, 0], centres[:, 1]
    east, north = rng.normal(0.0, noise_km, (2, len(lon))) if noise_km else np.zeros((2, len(lon)))
    lat2 = lat + north / KM_PER_DEG
    lon2 = lon + east / (KM_PER_DEG * np.cos(np.radians(lat)))
    table = pd.DataFrame(
        {"detection_id": [f"d{i}" for i in range(len(lon))], "time": positions["time"], "lon": lon2, "lat": lat2,
         "probability": 0.9, "spread_km": np.nan, "storm": positions["storm_id"]}
    )  # fmt: skip
    keep = rng.random(len(table)) >= drop
    return table[keep].reset_index(drop=True)


def run(basin: dict, detections: pd.DataFrame, settings: TrackingSettings) -> tuple[pd.DataFrame, dict]:
    points = track_points(assign_tracks(detections, settings))
    return points, score_tracks(
        points, basin["tracks"], basin["hours"], basin["grid"], settings.match_radius_km
    )


def test_the_oracle_gives_back_the_true_tracks_and_perfect_scores(basin) -> None:
    settings = TrackingSettings()
    detections = oracle_detections(basin)
    points, scores = run(basin, detections, settings)
    true = true_positions(basin["tracks"], basin["hours"], basin["grid"])
    spans = true.groupby("storm_id")["time"].agg(["min", "max"])
    long_enough = spans[(spans["max"] - spans["min"]) >= pd.Timedelta(hours=settings.min_duration_hours)]
    predicted = points.groupby("storm_id")["time"].agg(["min", "max"]).sort_values(["min", "max"])
    assert len(predicted) == len(long_enough) >= 10
    # each track is one true storm from its first hour to its last
    members = detections.set_index("detection_id")["storm"]
    storm_of_track = points.groupby("storm_id")["detection_id"].agg(lambda ids: set(members[ids]))
    assert all(len(storms) == 1 for storms in storm_of_track)
    for track_id, storms in storm_of_track.items():
        (storm,) = storms
        assert tuple(predicted.loc[track_id]) == tuple(spans.loc[storm])
    assert scores["pod"] == 1.0 and scores["far"] == 0.0
    assert scores["hits"] == scores["true_positions"] == len(detections)
    assert scores["centre_error_km"]["mean"] < 1e-6 and scores["centre_error_km"]["p90"] < 1e-6
    assert scores["false_tracks"] == 0 and scores["storms_found"] == len(spans)
    assert all(s["delay_hours"] == 0 and s["hours_found"] == s["hours_true"] for s in scores["storms"])


def test_noise_and_dropped_hours_lower_the_scores_as_expected(basin) -> None:
    settings = TrackingSettings()
    clean = run(basin, oracle_detections(basin), settings)[0]
    sigma, drop = 15.0, 0.2
    noisy = oracle_detections(basin, noise_km=sigma, drop=drop, seed=1)
    points, scores = run(basin, noisy, settings)
    # every dropped hour is a miss, nothing else: the noise stays far inside the match radius
    assert scores["pod"] == pytest.approx(1 - drop, abs=0.05)
    assert scores["far"] == 0.0 and scores["false_tracks"] == 0
    # 2-D Gaussian noise of sigma s per axis: distances are Rayleigh, mean s * sqrt(pi / 2)
    assert scores["centre_error_km"]["mean"] == pytest.approx(sigma * np.sqrt(np.pi / 2), rel=0.15)
    assert scores["centre_error_km"]["median"] == pytest.approx(sigma * np.sqrt(2 * np.log(2)), rel=0.2)
    # gaps up to the tolerance are bridged, longer ones split a storm; pieces shorter than the minimum go
    expected = 0
    for _, rows in noisy.groupby("storm"):
        times = rows["time"].sort_values()
        piece = (times.diff() > pd.Timedelta(hours=settings.max_gap_hours + 1)).cumsum()
        spans = times.groupby(piece.to_numpy()).agg(lambda t: t.max() - t.min())
        expected += int((spans >= pd.Timedelta(hours=settings.min_duration_hours)).sum())
    assert points["storm_id"].nunique() == expected >= clean["storm_id"].nunique() - 1
    # and no track mixes two storms
    members = noisy.set_index("detection_id")["storm"]
    assert points.groupby("storm_id")["detection_id"].agg(lambda ids: members[ids].nunique()).max() == 1


def test_errors_beyond_the_match_radius_are_misses_and_false_alarms(basin) -> None:
    settings = TrackingSettings(match_radius_km=20.0)
    points, scores = run(basin, oracle_detections(basin, noise_km=30.0, seed=2), settings)
    # P(distance <= 20 km) for Rayleigh with sigma 30 km: 1 - exp(-20^2 / (2 * 30^2)) = 0.20
    expected = 1 - np.exp(-(20.0**2) / (2 * 30.0**2))
    assert scores["pod"] == pytest.approx(expected, abs=0.07)
    assert scores["far"] == pytest.approx(1 - expected, abs=0.07)
    assert scores["centre_error_km"]["p90"] <= 20.0


def test_a_persistent_false_storm_is_one_false_track_and_a_flicker_is_dropped(basin) -> None:
    settings = TrackingSettings()
    detections = oracle_detections(basin)
    hours = basin["hours"]
    # a look-alike over the Sahara for 10 hours, and a single-hour false alarm elsewhere
    fake = pd.DataFrame(
        {"detection_id": [f"f{i}" for i in range(11)], "time": [*hours[100:110], hours[200]],
         "lon": [10.0 + 0.1 * i for i in range(10)] + [40.0], "lat": [31.0] * 10 + [47.0],
         "probability": 0.7, "spread_km": np.nan, "storm": ""}
    )  # fmt: skip
    points, scores = run(basin, pd.concat([detections, fake], ignore_index=True), settings)
    assert scores["false_tracks"] == 1 and scores["pod"] == 1.0
    assert scores["false_alarms"] == 10
    assert scores["far"] == pytest.approx(10 / (len(detections) + 10))
