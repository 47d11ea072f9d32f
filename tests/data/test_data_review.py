"""Regression tests from the review of the data layer (track holes, early errors, class counts)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medicane_hf.data.build import main
from medicane_hf.data.clips import ClipSettings, TileLayout, storm_pixel_positions
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import build_clip_index
from medicane_hf.data.splits import SplitSettings
from medicane_hf.data.tracks import read_tracks, write_tracks

GRID = SeviriGrid()
LAYOUT = TileLayout()
ALL_TRAIN = SplitSettings(fractions=(1.0, 0.0, 0.0))


@dataclass
class TimesOnlyStore:
    """The part of a FrameStore the index needs: frame times and validity (no pixels)."""

    times: np.ndarray
    valid: np.ndarray

    @classmethod
    def every_5_min(cls, first: str, last: str) -> TimesOnlyStore:
        times = pd.date_range(first, last, freq="5min").to_numpy()
        return cls(times, np.ones(len(times), bool))


def _tracks(storm: str, times: pd.DatetimeIndex, x: float, y: float) -> pd.DataFrame:
    """A storm standing still at pixel (x, y) of the SEVIRI grid at the given track times."""
    lon, lat = GRID.pixel_to_lonlat(np.full(len(times), x), np.full(len(times), y))
    return pd.DataFrame(
        {
            "storm_id": storm,
            "name": storm,
            "time": times,
            "lat": lat,
            "lon": lon,
            "window_start": times.min(),
            "window_end": times.max(),
            "source": "test",
        }
    )


def _positive_frames(index, x0: int, y0: int) -> pd.Series:
    """n_positive_frames of one tile, by clip end time (HH:MM)."""
    table = index.index["train"].to_pandas()
    table = table[(table["x0"] == x0) & (table["y0"] == y0)]
    return table.set_index(table["end_time"].dt.strftime("%H:%M"))["n_positive_frames"]


# ---- track holes --------------------------------------------------------------------------


def test_a_hole_in_an_hourly_track_is_not_bridged() -> None:
    # hourly points 00..06 and 13..18 on the south edge, nothing in between (rows cut off the grid)
    hours = pd.date_range("2020-09-13 00:00", "2020-09-13 06:00", freq="h").append(
        pd.date_range("2020-09-13 13:00", "2020-09-13 18:00", freq="h")
    )
    tracks = _tracks("7001702", hours, 700.0, 410.0)
    store = TimesOnlyStore.every_5_min("2020-09-13 00:00", "2020-09-13 18:00")

    index = build_clip_index(store, tracks, GRID, LAYOUT, ClipSettings(), ALL_TRAIN)
    got = _positive_frames(index, 639, 196)
    assert got["06:00"] == 16  # on the track: untouched
    assert got["07:00"] == 4  # 05:45..06:00 only
    assert (got[["08:00", "09:00", "10:00", "11:00", "12:00"]] == 0).all()  # inside the 7 h hole
    assert got["13:00"] == 1 and got["14:00"] == 13
    assert index.counts()["train"]["label_1"] == len(got) - 5 - 2  # 07:00 and 13:00 are below 6 of 16

    # the old behaviour (bridge every hole) invented the storm for the whole hole
    bridged = build_clip_index(store, tracks, GRID, LAYOUT, ClipSettings(max_track_gap_minutes=0), ALL_TRAIN)
    assert (_positive_frames(bridged, 639, 196) == 16).all()


def test_a_two_hour_hole_is_still_bridged() -> None:
    hours = pd.DatetimeIndex(["2020-09-13 00:00", "2020-09-13 01:00", "2020-09-13 03:00", "2020-09-13 04:00"])
    tracks = _tracks("S", hours, 700.0, 410.0)
    store = TimesOnlyStore.every_5_min("2020-09-13 00:00", "2020-09-13 04:00")
    index = build_clip_index(store, tracks, GRID, LAYOUT, ClipSettings(), ALL_TRAIN)
    assert (_positive_frames(index, 639, 196) == 16).all()


def test_ianos_is_not_labelled_while_it_was_off_the_grid(shared_dir: Path) -> None:
    """Ianos (7001702) jumps 21:00 -> 03:00 and 10:00 -> 23:00 on 12-13 Sep 2020 while south of the grid."""
    tracks = read_tracks(shared_dir / "tracks" / "manos_medicanes_only.csv")
    tracks = tracks[tracks["storm_id"] == "7001702"]
    store = TimesOnlyStore.every_5_min("2020-09-13 00:00", "2020-09-14 00:00")

    def positive_ends(settings: ClipSettings) -> set[str]:
        table = build_clip_index(store, tracks, GRID, LAYOUT, settings, ALL_TRAIN).index["train"].to_pandas()
        return set(table.loc[table["label"] == 1, "end_time"].dt.strftime("%d %H:%M"))

    ends = positive_ends(ClipSettings())
    hole = {f"13 {h:02d}:00" for h in [2, 3, *range(11, 24)]}  # the first clip ends at 02:00
    assert not ends & hole
    assert {"13 05:00", "13 10:00", "14 00:00"} <= ends  # the storm on the grid still counts
    assert hole <= positive_ends(ClipSettings(max_track_gap_minutes=0))  # what bridging gave


def test_a_coarse_track_is_warned_about() -> None:
    six_hourly = _tracks("Coarse", pd.date_range("2020-09-13 00:00", periods=4, freq="6h"), 700.0, 300.0)
    times = pd.date_range("2020-09-13 00:00", "2020-09-13 18:00", freq="5min").to_numpy()
    with pytest.warns(UserWarning, match=r"Coarse \(0 days 06:00:00\).*--max-track-gap"):
        positions = storm_pixel_positions(
            six_hourly, times, GRID, "interpolate", max_gap=ClipSettings().max_track_gap
        )
    assert len(positions) == 4  # only the track points themselves


def test_clip_settings_from_an_older_dataset_info_keep_the_default_gap() -> None:
    old = ClipSettings().to_dict()
    del old["max_track_gap_minutes"]
    assert ClipSettings.from_dict(old).max_track_gap == pd.Timedelta("2h")
    assert ClipSettings(max_track_gap_minutes=0).max_track_gap is None
    with pytest.raises(ValueError, match="max_track_gap_minutes"):
        ClipSettings(max_track_gap_minutes=-5)


# ---- class counts -------------------------------------------------------------------------


def test_counts_list_every_class_even_when_absent() -> None:
    # a storm outside its Medicane window: no positive, hence no neighbouring tile either
    tracks = _tracks("S", pd.date_range("2020-09-13 00:00", periods=5, freq="h"), 700.0, 300.0)
    tracks["window_start"] = tracks["window_end"] = pd.Timestamp("2020-09-20")
    store = TimesOnlyStore.every_5_min("2020-09-13 00:00", "2020-09-13 04:00")
    index = build_clip_index(store, tracks, GRID, LAYOUT, ClipSettings(neighbour_class=True), ALL_TRAIN)
    row = index.counts()["train"]
    assert (row["label_0"], row["label_1"], row["label_2"]) == (row["clips"], 0, 0)


# ---- command line -------------------------------------------------------------------------


SMALL_GRID = SeviriGrid(width=128, height=64)


def _small_archive(root: Path) -> tuple[Path, Path]:
    """2 h of 5-min frames (128 x 64 px, two 64-px tiles) and one storm, Alpha."""
    frames = root / "frames"
    frames.mkdir(parents=True)
    times = pd.date_range("2022-01-10 00:00", "2022-01-10 02:00", freq="5min")
    pixels = np.full((SMALL_GRID.height, SMALL_GRID.width, 3), 120, np.uint8)
    for t in times:
        Image.fromarray(pixels).save(frames / f"airmass_rgb_{t:%Y%m%d_%H%M}.png")
    (root / "grid.json").write_text(
        json.dumps({"grid": SMALL_GRID.to_dict(), "tiles": {"tile_size": 64, "stride_x": 64, "stride_y": 64}})
    )
    lon, lat = SMALL_GRID.pixel_to_lonlat(np.array([20.0, 25.0, 30.0]), np.array([20.0, 20.0, 20.0]))
    tracks = pd.DataFrame(
        {
            "storm_id": "a1",
            "name": "Alpha",
            "time": pd.date_range("2022-01-10 00:00", periods=3, freq="h"),
            "lat": lat,
            "lon": lon,
            "window_start": pd.Timestamp("2022-01-10 00:00"),
            "window_end": pd.Timestamp("2022-01-10 02:00"),
            "source": "test",
        }
    )
    write_tracks(tracks, root / "tracks.csv")
    return frames, root / "tracks.csv"


def test_an_unknown_split_storm_fails_before_any_frame_is_packed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames, tracks = _small_archive(tmp_path)
    out = tmp_path / "out"
    args = ["--frames", str(frames), "--tracks", str(tracks), "--out", str(out), "--no-progress"]
    assert main([*args, "--val-storms", "Apollo"]) == 1
    assert "unknown storm(s) ['Apollo']" in capsys.readouterr().err
    assert not (out / "store").exists()  # a year of frames is not packed just to report a typo

    assert main([*args, "--val-storms", "alpha", "--max-track-gap", "90"]) == 0
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["settings"]["clips"]["max_track_gap_minutes"] == 90
    assert info["storms"]["validation"] == ["Alpha (a1)"]


def test_a_single_storm_name_given_as_a_string_is_one_storm() -> None:
    settings = SplitSettings(val_storms="Ianos", test_storms=["Apollo"])
    assert settings.val_storms == ("Ianos",) and settings.test_storms == ("Apollo",)
