"""`medicane-hf build-dataset` end to end: synthetic basin -> store + index, rerun, errors, default dataset."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medicane_hf.data.build import format_summary, main
from medicane_hf.data.frames import FrameStore
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import frame_index_array, load_index
from medicane_hf.data.synthetic import default as default_module
from medicane_hf.data.synthetic import generate_basin

SYNTH_START = "2023-10-01"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One day of the demo preset, built once through the command line entry point."""
    root = tmp_path_factory.mktemp("synth")
    basin = generate_basin(root / "basin", start=SYNTH_START, days=1, seed=0, preset="demo", progress=False)
    out = root / "dataset"
    started = time.perf_counter()
    code = main(
        [
            "--frames",
            str(basin.frames_dir),
            "--tracks",
            str(basin.tracks_path),
            "--out",
            str(out),
            "--no-progress",
        ]
    )
    seconds = time.perf_counter() - started
    assert code == 0
    return {"basin": basin, "out": out, "seconds": seconds}


def _all_clips(out: Path) -> pd.DataFrame:
    index = load_index(out)
    return pd.concat([index[name].to_pandas() for name in ("train", "validation", "test")], ignore_index=True)


def test_writes_the_documented_files(built: dict) -> None:
    out = built["out"]
    assert (out / "store" / "store.json").is_file()
    assert (out / "index" / "dataset_dict.json").is_file()
    index = load_index(out)
    assert set(index) == {"train", "validation", "test", "pretrain"}
    assert {"window_id", "start_time", "frame_indices", "n_filled"} <= set(index["pretrain"].column_names)
    norm = json.loads((out / "normalization.json").read_text())
    assert len(norm["image_mean"]) == 3 and all(0 < v < 1 for v in norm["image_mean"] + norm["image_std"])
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["grid"]["width"] == 384 and info["tiles"] == {"tile_size": 64, "stride_x": 64, "stride_y": 64}
    assert info["n_tiles"] == 12 and info["class_names"] == ["background", "medicane"]
    assert sum(info["counts"][s]["clips"] for s in ("train", "validation", "test")) == len(_all_clips(out))
    assert info["package_version"] and info["created_utc"]
    assert not list(out.glob(".staging-*")) and not list(out.glob(".old-*"))


def test_positives_are_where_the_tracks_are(built: dict) -> None:
    """Expected positive frames per (clip, tile), computed here straight from tracks.csv and the grid."""
    basin, clips = built["basin"], _all_clips(built["out"])
    grid = SeviriGrid.from_dict(json.loads(basin.grid_path.read_text())["grid"])
    tracks = pd.read_csv(basin.tracks_path, parse_dates=["time", "start_time", "end_time"])
    ends = pd.DatetimeIndex(sorted(clips["end_time"].unique()))
    frame_times = np.stack([ends - pd.Timedelta(minutes=5 * (15 - k)) for k in range(16)], axis=1)  # [n, 16]
    t = frame_times.astype("datetime64[ns]").astype(np.int64)
    positive = {}
    for x0 in range(0, 384, 64):
        for y0 in (0, 64):
            positive[(x0, y0)] = np.zeros(t.shape, bool)
    for _, track in tracks.groupby("storm_id"):
        tt = track["time"].to_numpy().astype("datetime64[ns]").astype(np.int64)
        lat = np.interp(t, tt, track["lat"])
        lon = np.interp(t, tt, track["lon"])
        live = (t >= tt[0]) & (t <= tt[-1])
        live &= (t >= track["start_time"].iloc[0].value) & (t <= track["end_time"].iloc[0].value)
        x, y = grid.lonlat_to_pixel(lon, lat)
        for (x0, y0), flags in positive.items():
            flags |= live & (x >= x0 - 0.5) & (x < x0 + 63.5) & (y >= y0 - 0.5) & (y < y0 + 63.5)
    row_of_end = {e: i for i, e in enumerate(ends)}
    expected = np.array(
        [
            positive[(x0, y0)][row_of_end[e]].sum()
            for e, x0, y0 in zip(clips["end_time"], clips["x0"], clips["y0"])
        ]
    )
    assert np.array_equal(clips["n_positive_frames"].to_numpy(), expected)
    assert np.array_equal(clips["label"].to_numpy(), (expected >= 6).astype(int))
    assert 10 <= int((expected >= 6).sum()) < len(clips) // 2  # storms are there, and not everywhere


def test_clips_with_missing_or_black_frames_are_skipped(built: dict) -> None:
    basin, out = built["basin"], built["out"]
    faults = pd.read_csv(basin.faults_path, parse_dates=["time"])
    bad = set(faults.loc[faults["fault"].isin(["missing", "black"]), "time"])
    assert bad, "the demo preset has faults in a day"
    store_times = pd.DatetimeIndex(np.load(out / "store" / "times.npy").astype("datetime64[ns]"))
    clips = _all_clips(out)
    for name in ("train", "validation", "test", "pretrain"):
        split = load_index(out)[name]
        times = store_times[frame_index_array(split).ravel()] if len(split) else []
        assert not bad & set(times), f"{name} uses a missing or black frame"
    # every candidate hour whose window holds a fault is counted as skipped, tile by tile
    first_end = (pd.Timestamp(SYNTH_START) + pd.Timedelta("75min")).ceil("h")
    hours = pd.date_range(first_end, store_times[-1].floor("h"), freq="1h")
    hit = [h for h in hours if any(h - pd.Timedelta(minutes=5 * k) in bad for k in range(16))]
    info = json.loads((out / "dataset_info.json").read_text())
    continuity = sum(v for k, v in info["skipped"].items() if k != "split_boundary")
    assert continuity == 12 * len(hit)
    assert len(clips) + sum(info["skipped"].values()) == info["candidate_clips"] == 12 * len(hours)


def test_no_frame_is_shared_between_splits(built: dict) -> None:
    index = load_index(built["out"])
    frames = {name: set(frame_index_array(index[name]).ravel().tolist()) for name in index}
    assert not frames["train"] & (frames["validation"] | frames["test"])
    assert not frames["validation"] & frames["test"]
    assert not frames["pretrain"] & (frames["validation"] | frames["test"])


def test_main_prints_the_summary(built: dict, capsys: pytest.CaptureFixture[str]) -> None:
    basin, out = built["basin"], built["out"]
    args = ["--frames", str(basin.frames_dir), "--tracks", str(basin.tracks_path), "--out", str(out)]
    started = time.perf_counter()
    assert main([*args, "--no-progress", "--export", "csv"]) == 0
    rerun = time.perf_counter() - started
    text = capsys.readouterr().out
    for needle in (
        "frames: 2",
        "gaps:",
        "invalid frames:",
        "train",
        "validation",
        "test",
        "skipped clips:",
        "storms in",
    ):
        assert needle in text, needle
    # the store is reused, not repacked, and the summary says so and why
    assert rerun < max(5.0, built["seconds"])
    assert "store: reused (the same" in text and "size and modification time match" in text
    export = pd.read_csv(out / "export" / "train.csv")
    assert len(export) == load_index(out)["train"].num_rows
    assert all(len(v.split()) == 16 for v in export["frame_indices"].astype(str))


def test_a_failed_rerun_keeps_the_previous_output(built: dict, capsys: pytest.CaptureFixture[str]) -> None:
    basin, out = built["basin"], built["out"]
    before = (out / "dataset_info.json").read_text()
    args = ["--frames", str(basin.frames_dir), "--tracks", str(basin.tracks_path), "--out", str(out)]
    assert main([*args, "--no-progress", "--val-storms", "NoSuchStorm"]) == 1
    err = capsys.readouterr().err
    assert "NoSuchStorm" in err and "Aiolos" in err  # lists the known storms
    assert (out / "dataset_info.json").read_text() == before
    assert load_index(out)["train"].num_rows > 0


def test_frame_size_must_match_the_grid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    frames = tmp_path / "frames"
    frames.mkdir()
    for minute in (0, 5):
        Image.new("RGB", (100, 50)).save(frames / f"airmass_rgb_20230101_00{minute:02d}.png")
    tracks = tmp_path / "tracks.csv"
    tracks.write_text(
        "time,start_time,end_time,lon,lat,name\n2023-01-01 00:00:00,2023-01-01 00:00:00,2023-01-01 00:00:00,15,38,X\n"
    )
    code = main(
        ["--frames", str(frames), "--tracks", str(tracks), "--out", str(tmp_path / "out"), "--no-progress"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "airmass_rgb_20230101_0000.png is 100 x 50 px" in err and "1290 x 420" in err


def test_ensure_default_dataset_builds_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(default_module, "DEFAULT_EPISODES", (("2023-10-01", 0.25), ("2023-10-03", 0.25)))
    builds = []
    real_build = default_module._build

    def counting_build(target: Path, *args: object, **kwargs: object) -> None:
        builds.append(target)
        real_build(target, *args, **kwargs)

    monkeypatch.setattr(default_module, "_build", counting_build)
    results: list[Path] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(default_module.ensure_default_dataset(tmp_path, progress=False))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    name = default_module.DEFAULT_NAME
    assert len(builds) == 1 and results == [tmp_path / name] * 2
    info = json.loads((tmp_path / name / "dataset_info.json").read_text())
    assert info["out_dir"] == str(tmp_path / name)
    assert (tmp_path / name / "source" / "tracks.csv").is_file()
    assert not list(tmp_path.glob(f".{name}-building-*"))
    # cached: no second build
    assert default_module.ensure_default_dataset(tmp_path) == tmp_path / name and len(builds) == 1


def _one_day_build(root: Path, *flags: str) -> tuple[list[str], Path]:
    basin = generate_basin(root / "basin", start=SYNTH_START, days=0.5, seed=1, preset="demo", progress=False)
    out = root / "dataset"
    args = ["--frames", str(basin.frames_dir), "--tracks", str(basin.tracks_path), "--out", str(out), *flags]
    assert main([*args, "--no-progress"]) == 0
    return args, out


@pytest.mark.parametrize("check_content", [False, True])
def test_a_changed_frame_invalidates_the_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], check_content: bool
) -> None:
    """Same names and times, other pixels: the rerun must not serve the old pixels under the new names."""
    args, out = _one_day_build(tmp_path, *(["--check-content"] if check_content else []))
    path = Path(pd.read_csv(out / "store" / "frames.csv")["path"].iloc[5])
    before = os.stat(path)
    old = np.asarray(Image.open(path))
    new = (255 - old).astype(np.uint8)  # another image, same size
    Image.fromarray(new).save(path)
    # a distinct modification time even where the file system's clock is coarse
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    capsys.readouterr()
    assert main([*args, "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "store: repacked (1 frame(s) differ" in text and path.name in text
    np.testing.assert_array_equal(FrameStore.open(out / "store").read_frame(5), new)
    info = json.loads((out / "dataset_info.json").read_text())
    assert info["store"]["action"] == "repacked" and info["store"]["changed"] == [str(path)]


def test_check_content_reuses_a_store_whose_files_were_only_touched(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With --check-content the bytes decide: a new modification time alone does not repack."""
    args, out = _one_day_build(tmp_path, "--check-content")
    path = Path(pd.read_csv(out / "store" / "frames.csv")["path"].iloc[3])
    os.utime(path, ns=(1, 1))
    capsys.readouterr()
    assert main([*args, "--no-progress"]) == 0
    assert "store: reused (the same" in capsys.readouterr().out


def test_split_warnings_in_the_summary(built: dict) -> None:
    """An empty train split, or validation / test without one Medicane clip, is a warning in the summary."""
    info = json.loads((built["out"] / "dataset_info.json").read_text())
    assert "WARNING: the train split is empty" not in format_summary(info)  # the built demo day trains
    info["counts"]["train"]["clips"] = 0
    info["counts"]["validation"].update(clips=10, label_1=3)
    info["counts"]["test"].update(clips=10, label_1=0)
    text = format_summary(info)
    assert "WARNING: the train split is empty" in text
    assert "WARNING: the test split holds no Medicane clip (10 clips)" in text
    assert "WARNING: the validation split holds no Medicane clip" not in text
