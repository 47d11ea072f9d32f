"""Splits by storm, explicit lists, per-day splitting and leakage checks (medicane_hf.data.splits)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.clips import ClipSettings, TileLayout
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import build_clip_index, frame_index_array
from medicane_hf.data.splits import (
    SPLITS,
    SplitSettings,
    UnknownStormError,
    assign_clip_splits,
    plan_splits,
    storm_groups,
)

MARGIN = pd.Timedelta(minutes=75)


def _tracks(spans: dict[str, tuple[str, str]], lon: float = 15.0, lat: float = 37.0) -> pd.DataFrame:
    """Hourly tracks standing still at (lon, lat), one per storm, over the given [start, end]."""
    rows = []
    for storm, (start, end) in spans.items():
        for t in pd.date_range(start, end, freq="1h"):
            rows.append((storm, storm.title(), t, lat, lon, pd.Timestamp(start), pd.Timestamp(end), "test"))
    columns = ["storm_id", "name", "time", "lat", "lon", "window_start", "window_end", "source"]
    return pd.DataFrame(rows, columns=columns).sort_values(["storm_id", "time"]).reset_index(drop=True)


FIVE_STORMS = {
    "s1": ("2021-01-02 00:00", "2021-01-03 00:00"),
    "s2": ("2021-01-05 00:00", "2021-01-06 00:00"),
    "s3": ("2021-01-08 00:00", "2021-01-09 00:00"),
    "s4": ("2021-01-11 00:00", "2021-01-12 00:00"),
    "s5": ("2021-01-14 00:00", "2021-01-15 00:00"),
}


def test_storms_overlapping_within_one_clip_span_share_a_group() -> None:
    tracks = _tracks(
        {
            "a": ("2021-01-02 00:00", "2021-01-02 10:00"),
            "b": ("2021-01-02 12:00", "2021-01-02 20:00"),  # 2 h after a: < 2 x 75 min apart
            "c": ("2021-01-03 12:00", "2021-01-03 20:00"),
        }
    )
    groups = storm_groups(tracks, MARGIN)
    assert [g.storms for g in groups] == [["a", "b"], ["c"]]
    assert groups[0].block_start == np.datetime64("2021-01-01T22:45")
    assert groups[0].block_end == np.datetime64("2021-01-02T21:15")


def test_seeded_split_is_by_storm_with_every_split_non_empty() -> None:
    tracks = _tracks(FIVE_STORMS)
    plan = plan_splits(tracks, SplitSettings(seed=3), margin=MARGIN)
    per_split = plan.storms_per_split()
    assert sorted(sum(per_split.values(), [])) == sorted(s.title() + f" ({s})" for s in FIVE_STORMS)
    assert [len(per_split[s]) for s in SPLITS] == [3, 1, 1]
    # same seed, same plan; the split really depends on the seed
    again = plan_splits(tracks, SplitSettings(seed=3), margin=MARGIN).storms_per_split()
    assert again == per_split
    plans = {
        tuple(plan_splits(tracks, SplitSettings(seed=s), margin=MARGIN).storms_per_split()["test"])
        for s in range(8)
    }
    assert len(plans) > 1


def test_explicit_lists_by_name_or_id_case_insensitive() -> None:
    tracks = _tracks(FIVE_STORMS)
    plan = plan_splits(tracks, SplitSettings(val_storms=["S2"], test_storms=["s4", "S5"]), margin=MARGIN)
    per_split = plan.storms_per_split()
    assert per_split["validation"] == ["S2 (s2)"]
    assert per_split["test"] == ["S4 (s4)", "S5 (s5)"]
    assert per_split["train"] == ["S1 (s1)", "S3 (s3)"]


def test_unknown_storm_name_lists_the_known_ones() -> None:
    tracks = _tracks(FIVE_STORMS)
    with pytest.raises(UnknownStormError, match=r"unknown storm\(s\) \['Zorbas'\].*S1 \(s1\).*S5 \(s5\)"):
        plan_splits(tracks, SplitSettings(val_storms=["Zorbas"]), margin=MARGIN)


def test_storms_outside_the_frames_period_are_not_split() -> None:
    tracks = _tracks(FIVE_STORMS)
    plan = plan_splits(
        tracks, SplitSettings(), margin=MARGIN, period=("2021-01-04 00:00", "2021-01-09 12:00")
    )
    assert sorted(sum(plan.storms_per_split().values(), [])) == ["S2 (s2)", "S3 (s3)"]
    assert plan.storms_outside_period == ["S1 (s1)", "S4 (s4)", "S5 (s5)"]


def test_storm_free_times_split_by_whole_days() -> None:
    plan = plan_splits(
        _tracks({"a": ("2021-01-02 00:00", "2021-01-02 05:00")}), SplitSettings(), margin=MARGIN
    )
    times = pd.date_range("2021-02-01", "2021-12-31 23:55", freq="55min").to_numpy()
    codes = plan.split_codes(times)
    per_day = pd.Series(codes).groupby(pd.DatetimeIndex(times).date).nunique()
    assert (per_day == 1).all()  # one split per day
    shares = np.bincount(pd.Series(codes).groupby(pd.DatetimeIndex(times).date).first(), minlength=3) / len(
        per_day
    )
    assert shares == pytest.approx([0.7, 0.15, 0.15], abs=0.08)
    # a day's split does not depend on which other days are asked about
    assert np.array_equal(plan.split_codes(times[-200:]), codes[-200:])


def test_clip_touching_two_splits_is_dropped() -> None:
    tracks = _tracks({"a": ("2021-01-02 06:00", "2021-01-02 10:00")})
    plan = plan_splits(tracks, SplitSettings(test_storms=["a"]), margin=MARGIN)  # block 04:45 .. 11:15
    day_code = plan.split_codes(np.array(["2021-01-02T00:00"], dtype="datetime64[ns]"))[0]
    assert SPLITS[day_code] != "test", "the test below needs a non-test day around the block"
    ends = pd.to_datetime(["2021-01-02 05:00", "2021-01-02 06:00", "2021-01-02 11:00", "2021-01-02 12:00"])
    frames = np.stack([pd.date_range(e - MARGIN, e, freq="5min").to_numpy() for e in ends])
    split, boundary = assign_clip_splits(plan, frames)
    # 05:00 clip starts 03:45 (day block), 12:00 clip starts 10:45 (storm block): dropped
    assert boundary.tolist() == [True, False, False, True]
    assert split.tolist()[1:3] == ["test", "test"]


def test_no_frame_of_a_validation_or_test_clip_is_in_a_train_clip() -> None:
    tracks = _tracks(FIVE_STORMS)
    times = pd.date_range("2021-01-01", "2021-01-16", freq="5min").to_numpy()
    store = SimpleNamespace(times=times, valid=np.ones(len(times), bool))
    grid = SeviriGrid(width=384, height=128)
    built = build_clip_index(
        store, tracks, grid, TileLayout(64, 64, 64), ClipSettings(), SplitSettings(seed=1)
    )
    frames = {name: set(frame_index_array(built.index[name]).ravel().tolist()) for name in built.index}
    assert all(frames[name] for name in SPLITS), "every split has clips"
    assert not frames["train"] & frames["validation"]
    assert not frames["train"] & frames["test"]
    assert not frames["validation"] & frames["test"]
    assert not frames["pretrain"] & (frames["validation"] | frames["test"])
    assert built.skipped.get("split_boundary", 0) > 0
    # each storm's clips are all in the storm's own split
    for name in SPLITS:
        storms = set(built.index[name]["storm_id"]) - {""}
        expected = {s.split(" (")[1].rstrip(")") for s in built.plan.storms_per_split()[name]}
        assert storms <= expected
