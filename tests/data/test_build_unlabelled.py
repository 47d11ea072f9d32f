"""`build-dataset --no-tracks` (an index of clips without labels, for inference) and `--start` / `--end`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.build import main
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.data.index import UNLABELLED_FEATURES, UNLABELLED_SPLIT, frame_index_array, load_index

START, END = "2023-10-02 00:00", "2023-10-02 03:00"


@pytest.fixture(scope="module")
def frames_dir(dataset_dir: Path) -> Path:
    """The embedded default's frames (read only)."""
    return dataset_dir / "source" / "frames"


@pytest.fixture(scope="module")
def unlabelled(frames_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("unlabelled") / "ds"
    args = ["--frames", str(frames_dir), "--no-tracks", "--out", str(out), "--start", START, "--end", END]
    assert main([*args, "--no-progress"]) == 0
    return out


def test_an_unlabelled_index_holds_every_tile_of_every_clip_in_the_period(unlabelled: Path) -> None:
    index = load_index(unlabelled)
    assert set(index) == {UNLABELLED_SPLIT}
    split = index[UNLABELLED_SPLIT]
    assert split.features == UNLABELLED_FEATURES  # no label, target or split column claims anything
    info = json.loads((unlabelled / "dataset_info.json").read_text())
    assert info["labelled"] is False and info["inputs"]["tracks"] is None
    table = split.to_pandas()
    hours = pd.date_range(START, END, freq="h")
    assert len(table) == len(hours) * info["n_tiles"] == info["counts"][UNLABELLED_SPLIT]["clips"]
    # clip time first, then the tiles row-major, as in a labelled index
    assert list(table["end_time"]) == [t for t in hours for _ in range(info["n_tiles"])]
    assert [list(o) for o in table[["x0", "y0"]].to_numpy()[: info["n_tiles"]]] == info["tile_offsets"]
    assert table["clip_id"].is_unique
    # the frames of one clip span before --start are packed, so the first clip is whole
    assert (
        info["frames"]["first"] == "2023-10-01T22:45:00" and info["frames"]["last"] == "2023-10-02T03:00:00"
    )
    frames = frame_index_array(split)
    assert frames.shape == (len(table), 16) and (np.diff(frames, axis=1) == 1).all()
    assert info["normalization"]["source"] == "all frames (no tracks)"


def test_the_summary_says_the_clips_are_unlabelled(unlabelled, frames_dir, capsys) -> None:
    args = [
        "--frames",
        str(frames_dir),
        "--no-tracks",
        "--out",
        str(unlabelled),
        "--start",
        START,
        "--end",
        END,
    ]
    assert main([*args, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "unlabelled clips (no track file: no labels, targets or splits): 48 of 48 candidates" in out
    assert "store: reused" in out  # the same frames: not packed again


def test_training_refuses_an_unlabelled_folder(unlabelled: Path) -> None:
    with pytest.raises(
        ValueError, match="built without tracks .*--no-tracks.*Build the dataset with --tracks"
    ):
        load_clip_datasets(unlabelled, "detection")


def test_a_tracks_file_without_rows_is_still_refused(frames_dir, tmp_path, capsys) -> None:
    tracks = tmp_path / "tracks.csv"
    tracks.write_text("time,start_time,end_time,lon,lat,name\n")
    args = ["--frames", str(frames_dir), "--tracks", str(tracks), "--out", str(tmp_path / "out")]
    assert main([*args, "--start", START, "--end", END, "--no-progress"]) == 1
    assert "no track rows after the header" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_tracks_or_no_tracks_exactly_one(frames_dir, tmp_path, capsys) -> None:
    base = ["--frames", str(frames_dir), "--out", str(tmp_path / "out")]
    for extra in ([], ["--tracks", "t.csv", "--no-tracks"]):
        with pytest.raises(SystemExit):
            main(base + extra)
        assert "--tracks" in capsys.readouterr().err


def test_a_labelled_build_keeps_the_clips_ending_in_the_period(dataset_dir, frames_dir, tmp_path) -> None:
    out = tmp_path / "labelled"
    tracks = dataset_dir / "source" / "tracks.csv"
    args = [
        "--frames",
        str(frames_dir),
        "--tracks",
        str(tracks),
        "--out",
        str(out),
        "--start",
        START,
        "--end",
        END,
    ]
    assert main([*args, "--no-progress"]) == 0
    index = load_index(out)
    ends = pd.concat([index[s].to_pandas()["end_time"] for s in ("train", "validation", "test")])
    assert len(ends) and ends.min() >= pd.Timestamp(START) and ends.max() <= pd.Timestamp(END)
    assert json.loads((out / "dataset_info.json").read_text())["labelled"] is True
