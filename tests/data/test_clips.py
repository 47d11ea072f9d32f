"""Tiles, clip continuity, frame/clip labels and tracking targets (medicane_hf.data.clips)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.clips import (
    ClipSettings,
    TileLayout,
    assemble_windows,
    candidate_end_times,
    label_tiles,
    storm_pixel_positions,
)
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.tracks import read_tracks

GRID = SeviriGrid()
LAYOUT = TileLayout()
OFFSETS = LAYOUT.offsets(GRID.width, GRID.height)
END = pd.Timestamp("2021-10-28 12:00")


def _expected_times(end: pd.Timestamp = END, n: int = 16) -> np.ndarray:
    return pd.date_range(end - pd.Timedelta(minutes=5 * (n - 1)), end, freq="5min").to_numpy()[None, :]


def _positions(points: list[tuple[str, pd.Timestamp, float, float]], in_window: bool = True) -> pd.DataFrame:
    """Hand-made pixel positions (storm, time, x, y) in the layout of ``storm_pixel_positions``."""
    storm, time, x, y = zip(*points) if points else ((), (), (), ())
    lon, lat = GRID.pixel_to_lonlat(np.asarray(x, float), np.asarray(y, float))
    return pd.DataFrame(
        {
            "storm_id": list(storm),
            "time": pd.to_datetime(list(time)),
            "lat": lat,
            "lon": lon,
            "in_window": in_window,
            "x": np.asarray(x, float),
            "y": np.asarray(y, float),
        }
    )


def _label(points, settings: ClipSettings | None = None) -> dict[str, np.ndarray]:
    settings = settings or ClipSettings()
    out = label_tiles(_expected_times(), _positions(points), OFFSETS, (2, 6), settings, 224)
    return {k: v[0] for k, v in out.items()}  # the one clip: arrays over the 12 tiles


def _tile(x0: int, y0: int) -> int:
    return OFFSETS.index((x0, y0))


def _tracks(rows: list[tuple[str, str, float, float]], window: tuple[str, str] | None = None) -> pd.DataFrame:
    """Tidy tracks from (storm, time, lon, lat); window = whole span unless given."""
    df = pd.DataFrame(rows, columns=["storm_id", "time", "lon", "lat"])
    df["time"] = pd.to_datetime(df["time"])
    df["name"] = df["storm_id"]
    df["source"] = "test"
    span = df.groupby("storm_id")["time"]
    df["window_start"] = pd.to_datetime(window[0]) if window else span.transform("min")
    df["window_end"] = pd.to_datetime(window[1]) if window else span.transform("max")
    return df.sort_values(["storm_id", "time"]).reset_index(drop=True)


# ---- tiles --------------------------------------------------------------------------------


def test_default_tile_offsets_are_the_6_by_2_grid() -> None:
    xs = sorted({x for x, _ in OFFSETS})
    ys = sorted({y for _, y in OFFSETS})
    assert xs == [0, 213, 426, 639, 852, 1065]
    assert ys == [0, 196]
    assert len(OFFSETS) == 12 and OFFSETS[:2] == [(0, 0), (213, 0)]  # row-major, y outer
    assert max(x for x, _ in OFFSETS) + 224 == 1289  # column 1289 is not covered
    assert LAYOUT.shape(1290, 420) == (2, 6)


def test_tile_layout_is_a_setting() -> None:
    assert TileLayout(64, 64, 64).offsets(384, 128) == [(x, y) for y in (0, 64) for x in range(0, 384, 64)]
    with pytest.raises(ValueError, match="smaller than a tile"):
        TileLayout(224, 213, 196).offsets(384, 128)


# ---- continuity ---------------------------------------------------------------------------


def _store_times(missing: list[str] = ()) -> np.ndarray:
    times = pd.date_range("2021-10-28 10:00", "2021-10-28 14:00", freq="5min")
    return times.drop(pd.to_datetime(list(missing))).to_numpy()


def test_clip_ends_on_the_hour_and_a_gap_inside_skips_it() -> None:
    times = _store_times(missing=["2021-10-28 11:30", "2021-10-28 11:35"])
    settings = ClipSettings()
    ends = candidate_end_times(times, settings)
    assert [pd.Timestamp(t).strftime("%H:%M") for t in ends] == ["12:00", "13:00", "14:00"]
    windows = assemble_windows(times, np.ones(len(times), bool), ends, settings)
    assert list(windows.skip_reason) == ["missing_frames", "", ""]
    # the clip is checked on times, not rows: the kept 13:00 clip is exactly 11:45..13:00
    expected = pd.date_range("2021-10-28 11:45", "2021-10-28 13:00", freq="5min").to_numpy()
    assert np.array_equal(times[windows.frame_indices[1]], expected)


def test_fill_policy_fills_with_the_nearest_frame_and_counts() -> None:
    times = _store_times(missing=["2021-10-28 11:30", "2021-10-28 11:35"])
    valid = np.ones(len(times), bool)
    ends = candidate_end_times(times, ClipSettings())[:1]
    one = assemble_windows(times, valid, ends, ClipSettings(max_missing_frames=1))
    assert list(one.skip_reason) == ["missing_frames"]
    two = assemble_windows(times, valid, ends, ClipSettings(max_missing_frames=2))
    assert list(two.skip_reason) == [""] and list(two.n_filled) == [2]
    got = pd.DatetimeIndex(times[two.frame_indices[0]]).strftime("%H:%M").tolist()
    assert got[8:12] == ["11:25", "11:25", "11:40", "11:40"]  # each hole takes its nearest frame
    assert got[0] == "10:45" and got[-1] == "12:00"
    # one hole: both neighbours are 5 min away, the earlier frame wins
    times = _store_times(missing=["2021-10-28 11:30"])
    tie = assemble_windows(times, np.ones(len(times), bool), ends, ClipSettings(max_missing_frames=1))
    assert pd.Timestamp(times[tie.frame_indices[0][9]]).strftime("%H:%M") == "11:25"


def test_invalid_frames_count_as_missing() -> None:
    times = _store_times()
    valid = np.ones(len(times), bool)
    valid[np.flatnonzero(times == np.datetime64("2021-10-28 11:50"))] = False
    ends = candidate_end_times(times, ClipSettings())[:1]
    skipped = assemble_windows(times, valid, ends, ClipSettings())
    assert list(skipped.skip_reason) == ["invalid_frames"]
    filled = assemble_windows(times, valid, ends, ClipSettings(max_missing_frames=1))
    assert list(filled.n_filled) == [1]
    assert valid[filled.frame_indices[0]].all()


# ---- frame labels -------------------------------------------------------------------------


def test_time_rules_at_half_past() -> None:
    a, b, c = (100.0, 100.0), (400.0, 100.0), (700.0, 100.0)
    lon, lat = GRID.pixel_to_lonlat(np.array([a[0], b[0], c[0]]), np.array([a[1], b[1], c[1]]))
    tracks = _tracks([("S", f"2021-10-28 {h}:00", lo, la) for h, lo, la in zip((12, 13, 14), lon, lat)])
    query = pd.to_datetime(["2021-10-28 12:30", "2021-10-28 13:30"]).to_numpy()

    def x_at(rule: str) -> list[float]:
        pos = storm_pixel_positions(tracks, query, GRID, rule)
        return [round(v, 3) for v in pos.sort_values("time")["x"]]

    assert x_at("floor") == [100.0, 400.0]
    assert x_at("nearest") == [400.0, 700.0]  # half up at both, unlike pandas' half-to-even round('h')
    interp = x_at("interpolate")
    assert 200 < interp[0] < 300 and 500 < interp[1] < 600  # lon/lat interpolation: near the pixel midpoint


def test_point_in_tile_edges() -> None:
    # x = 223.5 is the east edge of tile (0, 0): outside it, inside (213, 0) whose west edge is 212.5
    labels = _label([("S", t, 223.5, 10.0) for t in pd.DatetimeIndex(_expected_times()[0])])
    assert labels["n_positive_frames"][_tile(0, 0)] == 0
    assert labels["n_positive_frames"][_tile(213, 0)] == 16
    # the west edge x = -0.5 is inside; a hair west of it is off the grid and in no tile
    assert _label([("S", END, -0.5, 10.0)])["n_storms"][_tile(0, 0)] == 1
    assert _label([("S", END, -0.51, 10.0)])["n_storms"].sum() == 0
    # column 1289 (x in [1288.5, 1289.5)) is in no tile
    assert _label([("S", END, 1288.5, 10.0)])["n_storms"].sum() == 0
    assert _label([("S", END, 1288.49, 10.0)])["n_storms"][_tile(1065, 0)] == 1
    # y = 195.5 is the north edge of the second row: in both rows (they overlap by 28 px)
    both = _label([("S", END, 100.0, 195.5)])["n_storms"]
    assert both[_tile(0, 0)] == 1 and both[_tile(0, 196)] == 1


def test_off_grid_points_are_never_clamped() -> None:
    tracks = _tracks([("E", "2021-10-28 11:00", 47.5, 40.0), ("E", "2021-10-28 13:00", 47.5, 40.0)])
    pos = storm_pixel_positions(tracks, _expected_times()[0], GRID, "interpolate")
    assert (pos["x"] > GRID.width - 0.5).all()  # east of the grid, reported as such
    labels = label_tiles(_expected_times(), pos, OFFSETS, (2, 6), ClipSettings(), 224)
    assert labels["n_positive_frames"].sum() == 0 and not labels["has_target"].any()


@pytest.mark.parametrize(("n_inside", "label"), [(5, 0), (6, 1)])
def test_six_of_sixteen_threshold(n_inside: int, label: int) -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    points = [("S", t, 300.0 if k < n_inside else 1000.0, 300.0) for k, t in enumerate(times)]
    labels = _label(points)
    tile = _tile(213, 196)
    assert labels["n_positive_frames"][tile] == n_inside
    assert labels["label"][tile] == label


def test_window_only_counts_inside_the_medicane_window() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    pos = _positions([("S", t, 300.0, 300.0) for t in times], in_window=False)
    out = label_tiles(_expected_times(), pos, OFFSETS, (2, 6), ClipSettings(), 224)
    assert out["label"].sum() == 0
    out = label_tiles(_expected_times(), pos, OFFSETS, (2, 6), ClipSettings(use_window=False), 224)
    assert out["label"][0, _tile(213, 196)] == 1


def test_neighbour_class_marks_the_eight_neighbours() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    labels = _label([("S", t, 500.0, 20.0) for t in times], ClipSettings(neighbour_class=True))
    grid = labels["label"].reshape(2, 6)
    # x = 500 is inside tile columns 2 (426..) only; y = 20 in row 0 only
    assert grid.tolist() == [[0, 2, 1, 2, 0, 0], [0, 2, 2, 2, 0, 0]]


# ---- tracking targets ---------------------------------------------------------------------


def test_target_is_relative_to_the_tile_at_the_last_frame() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    points = [("S", t, 700.0 + k, 300.5) for k, t in enumerate(times)]
    labels = _label(points)
    tile = _tile(639, 196)
    assert labels["has_target"][tile] and labels["storm_id"][tile] == "S"
    assert labels["target_x"][tile] == pytest.approx(715.0 - 639)
    assert labels["target_y"][tile] == pytest.approx(300.5 - 196)
    lon, lat = GRID.pixel_to_lonlat(715.0, 300.5)
    assert labels["target_lon"][tile] == pytest.approx(float(lon))
    assert labels["target_lat"][tile] == pytest.approx(float(lat))
    assert not labels["has_target"][_tile(0, 0)] and np.isnan(labels["target_x"][_tile(0, 0)])


def test_two_storms_in_one_tile_take_the_one_with_more_positive_frames() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    tile = _tile(0, 0)
    # A: in the tile for the last 8 frames, at the tile centre; B: all 16 frames, near a corner
    points = [("A", t, 111.5 if k >= 8 else 1000.0, 111.5) for k, t in enumerate(times)]
    points += [("B", t, 10.0, 10.0) for t in times]
    labels = _label(points)
    assert labels["n_storms"][tile] == 2
    assert labels["storm_id"][tile] == "B"
    assert labels["target_x"][tile] == pytest.approx(10.0)


def test_two_storms_tied_take_the_one_nearest_the_tile_centre() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    tile = _tile(0, 0)
    points = [("A", t, 10.0, 10.0) for t in times] + [("B", t, 120.0, 100.0) for t in times]
    labels = _label(points)
    assert labels["storm_id"][tile] == "B" and labels["n_storms"][tile] == 2
    assert (labels["target_x"][tile], labels["target_y"][tile]) == (120.0, 100.0)


def test_storm_that_left_the_tile_labels_but_has_no_target() -> None:
    times = pd.DatetimeIndex(_expected_times()[0])
    points = [("S", t, 100.0 if k < 10 else 1000.0, 100.0) for k, t in enumerate(times)]
    labels = _label(points)
    tile = _tile(0, 0)
    assert labels["label"][tile] == 1 and labels["storm_id"][tile] == "S"
    assert not labels["has_target"][tile] and labels["n_storms"][tile] == 0


# ---- real track files ---------------------------------------------------------------------


def _reference_clip_ids(table: pd.DataFrame) -> pd.DataFrame:
    parts = table["path"].str.split("_", expand=True)
    table = table.copy()
    table["end"] = pd.to_datetime(parts[0] + "_" + parts[1], format="%d-%m-%Y_%H%M")
    table["clip_id"] = table["end"].dt.strftime("%Y%m%d_%H%M") + "_" + parts[2] + "_" + parts[3]
    return table


def _label_reference_clips(shared_dir, reference: pd.DataFrame, track_file: str) -> pd.DataFrame:
    """Our labels on the old system's validation clips (a fake store: only the times)."""
    tracks = read_tracks(shared_dir / "tracks" / track_file)
    ends = np.sort(reference["end"].unique())
    store_times = np.unique(
        np.concatenate([pd.date_range(e - pd.Timedelta("80min"), e, freq="5min").to_numpy() for e in ends])
    )
    settings = ClipSettings()
    windows = assemble_windows(store_times, np.ones(len(store_times), bool), ends, settings)
    assert windows.keep.all()
    positions = storm_pixel_positions(
        tracks, np.unique(windows.expected_times), GRID, settings.time_rule, max_gap=settings.max_track_gap
    )
    out = label_tiles(windows.expected_times, positions, OFFSETS, (2, 6), settings, 224)
    ours = pd.DataFrame({k: v.ravel() for k, v in out.items()})
    ours["clip_id"] = [
        f"{pd.Timestamp(e):%Y%m%d_%H%M}_{x}_{y}" for e in windows.end_times for x, y in OFFSETS
    ]
    return reference.merge(ours, on="clip_id", how="left", validate="many_to_one")


@pytest.mark.parametrize("track_file", ["medicanes_new_windows.csv", "era5_medicanes.csv"])
def test_real_tracks_reproduce_the_old_validation_labels(shared_dir, track_file: str) -> None:
    reference = _reference_clip_ids(pd.read_csv(shared_dir / "reference" / "val_detection_predictions.csv"))
    merged = _label_reference_clips(shared_dir, reference, track_file)
    assert len(merged) == 2400 and merged["label"].notna().all()
    # the old labels (Blas, Daniel, Juliette: 201 positive of 2400) come out clip for clip
    assert int(merged["label"].sum()) == 201
    assert (merged["label"] == merged["labels"]).all()


def test_real_tracks_give_the_old_targets_without_its_row_bug(shared_dir) -> None:
    reference = _reference_clip_ids(pd.read_csv(shared_dir / "reference" / "val_tracking_predictions.csv"))
    reference = reference.rename(
        columns={"target_x": "old_x", "target_y": "old_y", "has_target": "old_has_target"}
    )
    # 192 rows for 190 clips: the old distributed sampler's padding repeats two of them
    merged = _label_reference_clips(shared_dir, reference, "medicanes_new_windows.csv")
    assert len(merged) == 192 and merged["has_target"].all() and (merged["label"] == 1).all()
    # the old y is ours + 1 (rows counted from 1 on the way in); it snapped to a 0.25 deg grid, we do not
    assert (merged["target_x"] - merged["old_x"]).abs().max() < 1.0
    assert (merged["target_y"] - (merged["old_y"] - 1)).abs().max() < 1.0
    assert (merged["target_y"] - merged["old_y"]).abs().mean() > 0.5
