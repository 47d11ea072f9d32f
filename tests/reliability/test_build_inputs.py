"""Bad inputs to `medicane-hf build-dataset`, each named and counted (issue 11, items 3, 4 and 10).

A 2-hour archive of 128 x 64 px frames (two 64-px tiles) is built in well under a second per test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medicane_hf.data.build import main
from medicane_hf.data.frames import FrameStore, scan_frames
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.tracks import TrackFileError, read_tracks, write_tracks

GRID = SeviriGrid(width=128, height=64)
TIMES = pd.date_range("2022-01-10 00:00", "2022-01-10 02:00", freq="5min")


def _archive(root: Path, swap_lat_lon: bool = False) -> tuple[Path, Path]:
    """25 frames, a grid.json and one storm, Alpha, crossing the left tile for 3 hours."""
    frames = root / "frames"
    frames.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for t in TIMES:
        pixels = rng.integers(40, 200, (GRID.height, GRID.width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(frames / f"airmass_rgb_{t:%Y%m%d_%H%M}.png")
    (root / "grid.json").write_text(
        json.dumps({"grid": GRID.to_dict(), "tiles": {"tile_size": 64, "stride_x": 64, "stride_y": 64}})
    )
    lon, lat = GRID.pixel_to_lonlat(np.array([20.0, 25.0, 30.0]), np.array([20.0, 20.0, 20.0]))
    if swap_lat_lon:
        lon, lat = lat, lon
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


def _build(frames: Path, tracks: Path, out: Path, *flags: str) -> list[str]:
    return ["--frames", str(frames), "--tracks", str(tracks), "--out", str(out), "--no-progress", *flags]


def _frame_path(frames: Path, i: int) -> Path:
    return frames / f"airmass_rgb_{TIMES[i]:%Y%m%d_%H%M}.png"


# ---- item 3: storms that never reach the grid --------------------------------------------------------------


def test_storms_never_on_the_grid_are_named_in_the_summary(tmp_path, capsys):
    """lat/lon swapped: the build used to exit 0 with 0 Medicane clips anywhere and no word of why."""
    frames, tracks = _archive(tmp_path, swap_lat_lon=True)
    out = tmp_path / "out"
    assert main(_build(frames, tracks, out)) == 0
    text = capsys.readouterr().out
    assert "WARNING: 1 storm(s) of the tracks file never fall on the grid" in text and "Alpha (a1)" in text
    assert "WARNING: the train split holds no Medicane clip" in text
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["storms"]["never_on_grid"] == ["Alpha (a1)"]


def test_a_storm_on_the_grid_is_not_warned_about(tmp_path, capsys):
    frames, tracks = _archive(tmp_path)
    assert main(_build(frames, tracks, tmp_path / "out")) == 0
    text = capsys.readouterr().out
    assert "never fall on the grid" not in text
    assert json.loads((tmp_path / "out" / "dataset_info.json").read_text())["storms"]["never_on_grid"] == []


# ---- item 4: frames that are not RGB ------------------------------------------------------------------------


def test_a_grayscale_frame_is_named_and_counted_invalid(tmp_path, capsys):
    """A gray frame used to pass as valid, its gray copied into three channels."""
    frames, tracks = _archive(tmp_path)
    gray = _frame_path(frames, 6)
    Image.open(gray).convert("L").save(gray)
    scan = scan_frames(frames, expected_size=(GRID.width, GRID.height), progress=False)
    assert scan.unreadable["path"].tolist() == [str(gray)]
    assert "mode L (grayscale)" in scan.unreadable["reason"].iloc[0]
    out = tmp_path / "out"
    assert main(_build(frames, tracks, out)) == 0
    text = capsys.readouterr().out
    assert "not RGB 1" in text and gray.name in text
    store = FrameStore.open(out / "store")
    assert store.channels == 3 and not store.valid[6] and store.valid.sum() == len(TIMES) - 1


def test_a_grayscale_first_frame_does_not_make_a_one_channel_store(tmp_path):
    frames, tracks = _archive(tmp_path)
    first = _frame_path(frames, 0)
    Image.open(first).convert("L").save(first)
    out = tmp_path / "out"
    assert main(_build(frames, tracks, out)) == 0
    store = FrameStore.open(out / "store")
    assert store.channels == 3 and not store.valid[0] and store.valid[1:].all()


def test_rgba_frames_count_as_rgb_only_when_opaque(tmp_path):
    """An RGBA frame with an opaque alpha is its RGB bands; a transparent pixel makes it invalid, by name."""
    frames, tracks = _archive(tmp_path)
    opaque, transparent = _frame_path(frames, 3), _frame_path(frames, 4)
    rgb = np.asarray(Image.open(opaque))
    Image.open(opaque).convert("RGBA").save(opaque)
    alpha = np.full(rgb.shape[:2] + (1,), 255, np.uint8)
    alpha[10, 10] = 0
    Image.fromarray(np.concatenate([np.asarray(Image.open(transparent)), alpha], axis=2)).save(transparent)
    out = tmp_path / "out"
    assert main(_build(frames, tracks, out)) == 0
    store = FrameStore.open(out / "store")
    assert store.channels == 3 and store.valid[3] and not store.valid[4]
    np.testing.assert_array_equal(store.read_frame(3), rgb)
    info = json.loads((out / "dataset_info.json").read_text())
    assert "transparent" in " ".join(p["reason"] for p in info["frames"]["problems"]["not_rgb"])


# ---- item 10: what the scan knows is printed -----------------------------------------------------------------


def test_the_summary_lists_the_scan_problems_and_the_info_keeps_them_all(tmp_path, capsys):
    frames, tracks = _archive(tmp_path)
    (frames / "notes.txt").write_text("not a frame")
    (frames / "airmass_rgb_20221301_0000.png").write_bytes(_frame_path(frames, 0).read_bytes())  # month 13
    broken = _frame_path(frames, 8)
    broken.write_bytes(b"not a png")
    (frames / "copy").mkdir()
    same = frames / "copy" / _frame_path(frames, 2).name
    same.write_bytes(_frame_path(frames, 2).read_bytes())
    other = frames / "copy" / _frame_path(frames, 5).name
    other.write_bytes(_frame_path(frames, 9).read_bytes())  # time of frame 5, pixels of frame 9
    out = tmp_path / "out"
    assert main(_build(frames, tracks, out)) == 0
    text = capsys.readouterr().out
    assert "name does not match the pattern: 1" in text and "notes.txt" in text
    assert "impossible time in the name: 1" in text and "airmass_rgb_20221301_0000.png" in text
    assert "unreadable: 1" in text and broken.name in text
    assert "same time, different content: 1" in text and str(other) in text
    assert "same time, same content: 1" in text
    problems = json.loads((out / "dataset_info.json").read_text())["frames"]["problems"]
    assert [p["path"] for p in problems["ignored"]] == [str(frames / "notes.txt")]
    assert [p["path"] for p in problems["unreadable"]] == [str(broken)]
    assert [p["path"] for p in problems["duplicate_different"]] == [str(other)]
    assert [p["path"] for p in problems["duplicate_same"]] == [str(same)]


def test_a_tracks_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    frames, tracks = _archive(tmp_path)
    lines = tracks.read_bytes().splitlines(keepends=True)
    lines[2] = lines[2].replace(b"Alpha", b"Alph\xe0")  # latin-1 a-grave
    tracks.write_bytes(b"".join(lines))
    with pytest.raises(TrackFileError, match=r"tracks.csv, line 3: not UTF-8"):
        read_tracks(tracks)
