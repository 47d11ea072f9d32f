"""Track files of every layout -> one tidy table; round trips; interpolation; errors naming file and line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.tracks import (
    LAYOUTS,
    TRACK_COLUMNS,
    TrackFileError,
    interpolate_positions,
    read_tracks,
    write_tracks,
)

# counted from the files: distinct names (era5), id_cyc_unico (manos), id_final (new windows)
REAL_FILES = {
    "era5_medicanes.csv": (891, ["Apollo", "Blas", "Daniel", "Helios", "Ianos", "Juliette"], []),
    "manos_medicanes_only.csv": (
        878,
        [],
        ["7001328", "7001430", "7001461", "7001542", "7001575", "7001622", "7001702"],
    ),
    "medicanes_new_windows.csv": (
        946,
        ["Apollo", "Blas", "Daniel", "Juliette"],
        [
            "7001283",
            "7001328",
            "7001358",
            "7001421",
            "7001461",
            "7001466",
            "7001500",
            "7001521",
            "7001542",
            "7001575",
            "7001674",
            "7001702",
            "7001715",
            "7001716",
        ],
    ),
}

ERA5_HEADER = "time,start_time,end_time,lon,lat,name"
RAW_TEXT = """\
1283 2.226 39.598 2010 10 12 13 1002.5
1283 2.075 39.605 2010 10 12 14 1001.0

1283 1.937 39.592 2010 10 12 15 999.75
7001702.0 15.113 30.021 2020 9 12 21 1005.0
7001702.0 15.550 30.027 2020 9 12 22 1004.0
"""


def _write(tmp_path: Path, text: str, name: str = "tracks.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _era5_file(tmp_path: Path, rows: list[str], header: str = ERA5_HEADER) -> Path:
    return _write(tmp_path, "\n".join([header, *rows]) + "\n")


GOOD_ROWS = [
    "2021-10-24 16:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,34.5,Apollo",
    "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,36.0,Apollo",
    "2021-10-24 18:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.5,36.5,Apollo",
]


# ---- real files -----------------------------------------------------------------------------


@pytest.mark.parametrize("filename", sorted(REAL_FILES))
def test_real_files_load(shared_dir: Path, filename: str) -> None:
    n_rows, names, ids = REAL_FILES[filename]
    df = read_tracks(shared_dir / "tracks" / filename)
    assert list(df.columns) == TRACK_COLUMNS
    assert len(df) == n_rows
    assert sorted(df["storm_id"].unique()) == sorted(names + ids)
    named = df[df["name"] != ""]
    # named storms keep their name as id; id-only storms have a clean integer string
    assert (named["storm_id"] == named["name"]).all()
    assert sorted(named["name"].unique()) == sorted(names)
    unnamed_ids = df.loc[df["name"] == "", "storm_id"]
    assert unnamed_ids.str.fullmatch(r"[1-9]\d*").all()
    # hourly, UTC-naive, sorted, windows consistent
    assert df["time"].dtype == np.dtype("datetime64[ns]")
    assert (df["time"].dt.minute == 0).all() and (df["time"].dt.second == 0).all()
    assert df.groupby("storm_id")["time"].is_monotonic_increasing.all()
    assert (df["window_end"] >= df["window_start"]).all()
    assert df.groupby("storm_id")[["window_start", "window_end", "name"]].nunique().max().max() == 1
    assert df["lat"].between(28.0, 45.0).all() and df["lon"].between(-7.0, 44.0).all()


def test_windows_file_details(shared_dir: Path) -> None:
    df = read_tracks(shared_dir / "tracks" / "medicanes_new_windows.csv")
    first = df[df["storm_id"] == "7001283"].iloc[0]
    assert first["time"] == pd.Timestamp("2010-10-12 13:00")
    assert (first["lat"], first["lon"]) == (39.598, 2.226)
    assert first["window_start"] == pd.Timestamp("2010-10-12 12:55")
    assert first["source"] == "CL7"
    assert set(df.loc[df["name"] != "", "source"]) == {"ERA5"}
    assert (df["storm_id"] == "Juliette").sum() == 67


def test_layout_detection_and_forcing(shared_dir: Path) -> None:
    era5 = read_tracks(shared_dir / "tracks" / "era5_medicanes.csv", layout="era5")
    assert set(era5["source"]) == {"ERA5"}
    manos = read_tracks(shared_dir / "tracks" / "manos_medicanes_only.csv", layout="composite_windows")
    assert manos.equals(read_tracks(shared_dir / "tracks" / "manos_medicanes_only.csv"))
    with pytest.raises(TrackFileError, match=r"era5_medicanes\.csv, line 1: missing column.*id_cyc_unico"):
        read_tracks(shared_dir / "tracks" / "era5_medicanes.csv", layout="composite_windows")
    with pytest.raises(ValueError, match="layout must be"):
        read_tracks(shared_dir / "tracks" / "era5_medicanes.csv", layout="csv")


# ---- raw whitespace composite layout -----------------------------------------------------------


def test_raw_whitespace_file_loads(tmp_path: Path) -> None:
    df = read_tracks(_write(tmp_path, RAW_TEXT, "CL7.txt"))
    assert list(df.columns) == [*TRACK_COLUMNS, "pressure"]
    assert df["storm_id"].tolist() == ["1283", "1283", "1283", "7001702", "7001702"]
    assert (df["name"] == "").all() and (df["source"] == "composite").all()
    assert df["time"].iloc[2] == pd.Timestamp("2010-10-12 15:00")
    assert df["pressure"].tolist() == [1002.5, 1001.0, 999.75, 1005.0, 1004.0]
    # no window in the file: the window is the track span
    storm = df[df["storm_id"] == "1283"]
    assert (storm["window_start"] == pd.Timestamp("2010-10-12 13:00")).all()
    assert (storm["window_end"] == pd.Timestamp("2010-10-12 15:00")).all()
    assert read_tracks(tmp_path / "CL7.txt", layout="raw").equals(df)


# ---- round trips ------------------------------------------------------------------------------


@pytest.mark.parametrize("filename", sorted(REAL_FILES))
def test_write_read_round_trip_real(shared_dir: Path, tmp_path: Path, filename: str) -> None:
    df = read_tracks(shared_dir / "tracks" / filename)
    write_tracks(df, tmp_path / "out" / "tracks.csv")
    header = (tmp_path / "out" / "tracks.csv").read_text().splitlines()[0]
    assert header.startswith(ERA5_HEADER + ",storm_id")
    pd.testing.assert_frame_equal(read_tracks(tmp_path / "out" / "tracks.csv"), df)


def test_write_read_round_trip_raw_with_pressure_and_odd_floats(tmp_path: Path) -> None:
    df = read_tracks(_write(tmp_path, RAW_TEXT, "CL7.txt"))
    df["lat"] = df["lat"] + 1e-13 / 3  # full float precision must survive
    write_tracks(df, tmp_path / "tracks.csv")
    pd.testing.assert_frame_equal(read_tracks(tmp_path / "tracks.csv"), df)


def test_write_tracks_rejects_incomplete_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="window_end"):
        write_tracks(pd.DataFrame({"storm_id": ["a"]}), tmp_path / "x.csv")


def test_lon_normalised_to_minus_180_180(tmp_path: Path) -> None:
    rows = [r.replace(",14.0,", ",354.0,") for r in GOOD_ROWS[:2]]
    df = read_tracks(_era5_file(tmp_path, rows))
    assert df["lon"].tolist() == [-6.0, -6.0]


# ---- interpolation ----------------------------------------------------------------------------


def test_interpolation_half_past_is_midpoint_and_no_extrapolation(tmp_path: Path) -> None:
    tracks = read_tracks(_era5_file(tmp_path, GOOD_ROWS))
    times = pd.to_datetime(
        [
            "2021-10-24 15:30",
            "2021-10-24 16:00",
            "2021-10-24 16:30",
            "2021-10-24 17:30",
            "2021-10-24 18:00",
            "2021-10-24 18:05",
        ]
    )
    out = interpolate_positions(tracks, times)
    assert list(out.columns) == ["storm_id", "time", "lat", "lon", "in_window"]
    assert out["time"].tolist() == list(times[1:5])  # 15:30 and 18:05 are outside the track
    np.testing.assert_allclose(out["lat"], [34.5, 35.25, 36.25, 36.5])
    np.testing.assert_allclose(out["lon"], [14.0, 14.0, 14.25, 14.5])
    assert out["in_window"].all()


def test_interpolation_window_flag_and_several_storms(shared_dir: Path) -> None:
    tracks = read_tracks(shared_dir / "tracks" / "medicanes_new_windows.csv")
    juliette = tracks[tracks["storm_id"] == "Juliette"]
    times = pd.date_range(juliette["time"].min(), juliette["time"].max(), freq="5min")
    out = interpolate_positions(tracks, times)
    assert set(out["storm_id"]) == {"Juliette"}
    assert len(out) == len(times)
    # window ends 2023-03-02 13:30 while the track goes on to 13:00 only: all in window
    assert out["in_window"].all()
    # the track points themselves come back unchanged
    at_points = out[out["time"].isin(juliette["time"])]
    np.testing.assert_array_equal(at_points["lat"].to_numpy(), juliette["lat"].to_numpy())

    apollo = tracks[tracks["storm_id"] == "Apollo"]
    early = pd.Timestamp("2021-10-24 12:00")
    assert early < apollo["time"].min()
    assert interpolate_positions(tracks, [early]).empty


def test_in_window_false_outside_window(tmp_path: Path) -> None:
    rows = [r.replace("2021-10-24 19:00:00", "2021-10-24 16:30:00") for r in GOOD_ROWS]
    tracks = read_tracks(_era5_file(tmp_path, rows))
    out = interpolate_positions(tracks, pd.date_range("2021-10-24 16:00", periods=3, freq="30min"))
    assert out["in_window"].tolist() == [True, True, False]


def test_interpolation_max_gap(tmp_path: Path) -> None:
    rows = [*GOOD_ROWS[:2], GOOD_ROWS[2].replace("2021-10-24 18:00:00", "2021-10-24 23:00:00", 1)]
    tracks = read_tracks(_era5_file(tmp_path, rows))
    times = pd.date_range("2021-10-24 16:00", "2021-10-24 23:00", freq="30min")
    assert len(interpolate_positions(tracks, times)) == len(times)
    kept = interpolate_positions(tracks, times, max_gap="1h")
    assert kept["time"].dt.strftime("%H:%M").tolist() == ["16:00", "16:30", "17:00", "23:00"]


def test_interpolation_empty_and_scalar_input(tmp_path: Path) -> None:
    tracks = read_tracks(_era5_file(tmp_path, GOOD_ROWS))
    one = interpolate_positions(tracks, "2021-10-24 17:00")
    assert one["lat"].tolist() == [36.0]
    none = interpolate_positions(tracks.iloc[:0], pd.date_range("2021-10-24", periods=3, freq="h"))
    assert none.empty and list(none.columns) == ["storm_id", "time", "lat", "lon", "in_window"]
    assert none["time"].dtype == np.dtype("datetime64[ns]")


# ---- bad input --------------------------------------------------------------------------------


def _bad(rows: list[int | str]) -> list[str]:
    """GOOD_ROWS with some replaced: entries are indices into GOOD_ROWS or literal rows."""
    return [GOOD_ROWS[r] if isinstance(r, int) else r for r in rows]


@pytest.mark.parametrize(
    ("rows", "line", "message"),
    [
        (
            [0, "2021-10-24 25:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,36.0,Apollo"],
            3,
            "time .* is not a time",
        ),
        (
            [0, 1, "2021-10-24 18:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,95.0,Apollo"],
            4,
            "lat 95.0 is outside",
        ),
        (
            ["2021-10-24 18:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,360.0,35.0,Apollo"],
            2,
            "lon 360.0 is outside",
        ),
        (
            [0, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,-180.5,35.0,Apollo"],
            3,
            "lon -180.5",
        ),
        (
            [0, 1, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,15.0,35.0,Apollo"],
            4,
            "duplicate track point.*Apollo.*already on line 3",
        ),
        (
            ["2021-10-24 16:00:00,2021-10-24 19:00:00,2021-10-24 16:00:00,14.0,35.0,Apollo"],
            2,
            "window end .* is before window start",
        ),
        (
            [0, 1, "2021-10-24 18:00:00,2021-10-24 16:00:00,2021-10-25 19:00:00,14.0,35.0,Apollo"],
            4,
            "storm 'Apollo' has window_end .* on line 2",
        ),
        (
            [0, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,abc,35.0,Apollo"],
            3,
            "lon 'abc' is not a number",
        ),
        (
            [0, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,,Apollo"],
            3,
            "lat '' is not a number",
        ),
        ([0, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,35.0,"], 3, "no storm id"),
        ([0, "2021-10-24 17:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,35.0"], 3, "5 fields"),
    ],
)
def test_bad_rows_name_file_and_line(tmp_path: Path, rows: list[int | str], line: int, message: str) -> None:
    path = _era5_file(tmp_path, _bad(rows))
    with pytest.raises(TrackFileError, match=rf"tracks\.csv, line {line}: {message}") as info:
        read_tracks(path)
    assert info.value.line == line and info.value.path == str(path)


def test_blank_lines_do_not_shift_line_numbers(tmp_path: Path) -> None:
    rows = _bad([0, "", 1, "2021-10-24 18:00:00,2021-10-24 16:00:00,2021-10-24 19:00:00,14.0,-91,Apollo"])
    with pytest.raises(TrackFileError, match=r"line 5: lat -91.0 is outside"):
        read_tracks(_era5_file(tmp_path, rows))


def test_missing_column_names_it(tmp_path: Path) -> None:
    path = _era5_file(
        tmp_path, [r.rsplit(",", 2)[0] + ",Apollo" for r in GOOD_ROWS], "time,start_time,end_time,lon,name"
    )
    with pytest.raises(
        TrackFileError, match=r"tracks\.csv, line 1: missing column\(s\) \['lat'\] for the 'era5'"
    ):
        read_tracks(path)


def test_unknown_layout_lists_columns_and_layouts(tmp_path: Path) -> None:
    path = _write(tmp_path, "a,b,c\n1,2,3\n")
    with pytest.raises(TrackFileError, match=r"tracks\.csv, line 1: unknown layout") as info:
        read_tracks(path)
    text = str(info.value)
    assert "['a', 'b', 'c']" in text
    for name in [*LAYOUTS, "raw"]:
        assert name in text


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("", 1, "the file is empty"),
        ("\n  \n", 1, "the file is empty"),
        (ERA5_HEADER + "\n\n", 2, "no track rows"),
    ],
)
def test_empty_files(tmp_path: Path, text: str, line: int, message: str) -> None:
    with pytest.raises(TrackFileError, match=rf"tracks\.csv, line {line}: {message}"):
        read_tracks(_write(tmp_path, text))


@pytest.mark.parametrize(
    ("bad_line", "line", "message"),
    [
        ("1283 1.9 39.5 2010 13 12 15 999", 3, "year/month/day/hour 2010 13 12 15 is not a valid time"),
        ("1283 1.9 39.5 2010 10 12 15.5 999", 3, "hour '15.5' is not a whole number"),
        ("1283 1.9 39.5 2010 10 12 15", 3, "7 fields"),
        ("0 1.9 39.5 2010 10 12 15 999", 3, "storm id is 0"),
        ("1283 1.9 99.5 2010 10 12 15 999", 3, "lat 99.5 is outside"),
        ("1283 1.9 39.5 2010 10 12 14 999", 3, "duplicate track point.*already on line 2"),
    ],
)
def test_bad_raw_rows(tmp_path: Path, bad_line: str, line: int, message: str) -> None:
    text = "1283 2.0 39.6 2010 10 12 13 1002\n1283 2.1 39.6 2010 10 12 14 1001\n" + bad_line + "\n"
    with pytest.raises(TrackFileError, match=rf"CL7\.txt, line {line}: {message}"):
        read_tracks(_write(tmp_path, text, "CL7.txt"))


def test_time_zone_offsets_become_naive_utc(tmp_path: Path) -> None:
    rows = [r.replace("2021-10-24 16:00:00,", "2021-10-24T18:00:00+02:00,", 1) for r in GOOD_ROWS[:1]]
    df = read_tracks(_era5_file(tmp_path, rows))
    assert df["time"].iloc[0] == pd.Timestamp("2021-10-24 16:00")
