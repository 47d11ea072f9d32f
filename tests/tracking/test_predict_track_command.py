"""``medicane-hf predict-track`` end to end on a few held-out hours of the default basin with tiny models, and
each bad input's one line."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from medicane_hf.data.tracks import read_tracks
from medicane_hf.inference.command import main as infer_main
from medicane_hf.tracking.command import main
from medicane_hf.tracking.tables import read_detections
from tests.tracking.hours import END, HOURS, START, run_argv

FILES = ("detections.csv", "hours.csv", "tracks.csv", "summary.json", "map.png", "animation.gif")


argv = run_argv


def error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("medicane-hf predict-track: error: ")]
    assert len(lines) == 1, err
    return lines[0]


def test_every_output_is_written_and_consistent(batch_run, dataset_dir) -> None:
    for name in FILES:
        assert (batch_run / name).stat().st_size > 0, name
    hours = pd.read_csv(batch_run / "hours.csv", parse_dates=["time"])
    assert list(hours["time"]) == HOURS
    assert (hours["tiles"] == 12).all() and (hours["detections"] == 12).all()  # 6 x 2 tiles, threshold 0
    detections = read_detections(batch_run / "detections.csv")
    assert len(detections) == 6 * 12
    assert detections.groupby("time")["kept"].sum().tolist() == hours["storms"].tolist()
    # every storm centre of a kept track is a tracks.csv point that build-dataset's reader takes back
    tracks = read_tracks(batch_run / "tracks.csv")
    on_track = detections[detections["kept"] & (detections["track_id"] != "")]
    assert len(tracks) == len(on_track) > 0
    assert np.allclose(
        tracks.sort_values(["storm_id", "time"])["lat"], on_track.sort_values(["track_id", "time"])["lat"]
    )
    assert (tracks["window_start"] == tracks.groupby("storm_id")["time"].transform("min")).all()
    raw = pd.read_csv(batch_run / "tracks.csv")
    assert list(raw.columns[:6]) == ["time", "start_time", "end_time", "lon", "lat", "name"]
    assert {"probability", "spread_km"} <= set(raw.columns) and raw["spread_km"].notna().all()
    summary = json.loads((batch_run / "summary.json").read_text())
    assert summary["hours"]["processed"] == 6 and summary["detections"] == 72
    assert len(summary["tracks"]) == tracks["storm_id"].nunique()
    scores = summary["scores"]
    assert scores["true_positions"] == 12  # both storms of episode 5 in their windows for 6 hours
    assert scores["hits"] + scores["misses"] == 12 and scores["hits"] + scores["false_alarms"] == len(tracks)
    with Image.open(batch_run / "animation.gif") as gif:
        assert gif.n_frames == 6 and gif.width >= 768


def test_the_numbers_are_batch_inference_s_own(batch_run, tiny_models, dataset_dir, tmp_path) -> None:
    """The shared core: the detector's probabilities and the tracker's centres are those of infer_*.py."""
    detections = read_detections(batch_run / "detections.csv").set_index("clip_id")
    frames = dataset_dir / "source" / "frames"
    for stage, columns in (
        ("detection", ("prob_medicane", "probability")),
        ("tracking", ("pred_lon", "lon")),
    ):
        out = tmp_path / stage
        assert infer_main(stage, ["--model_name_or_path", str(tiny_models[stage]), "--frames", str(frames),
                                  "--start", START, "--end", END, "--output_dir", str(out), "--num_workers", "0",
                                  "--no_progress"]) == 0  # fmt: skip
        table = pd.read_csv(out / "predictions.csv").set_index("clip_id").loc[detections.index]
        assert np.allclose(table[columns[0]], detections[columns[1]], atol=1e-6)


def test_a_swapped_detector_and_tracker_are_named(tiny_models, dataset_dir, tmp_path, capsys) -> None:
    swapped = {"detection": tiny_models["tracking"], "tracking": tiny_models["detection"]}
    assert main(argv(swapped, dataset_dir / "source" / "frames", tmp_path / "out")) == 2
    line = error_line(capsys)
    assert "--detector" in line and "MedicaneVideoMAEForTracking" in line and "swap" in line
    assert not (tmp_path / "out" / "frames_dataset").exists()  # refused before anything was packed


def test_a_tracks_file_that_does_not_parse(tiny_models, dataset_dir, tmp_path, capsys) -> None:
    bad = tmp_path / "tracks.csv"
    bad.write_text("time,start_time,end_time,lon,lat,name\n2023-10-17 12:00,2023-10-17 12:00,x,15,38,A\n")
    assert (
        main(argv(tiny_models, dataset_dir / "source" / "frames", tmp_path / "out", "--tracks", str(bad)))
        == 2
    )
    line = error_line(capsys)
    assert str(bad) in line and "line 2" in line


def test_an_empty_folder(tiny_models, tmp_path, capsys) -> None:
    (tmp_path / "frames").mkdir()
    assert main(argv(tiny_models, tmp_path / "frames", tmp_path / "out")) == 2
    assert "no frame matching" in error_line(capsys)


def test_frames_of_another_size_or_interval_fail_the_contract(
    tiny_models, dataset_dir, tmp_path, capsys
) -> None:
    small = tmp_path / "small"
    small.mkdir()
    for minute in range(0, 80, 5):
        time = pd.Timestamp(START) + pd.Timedelta(minutes=minute)
        Image.new("RGB", (100, 50)).save(small / f"airmass_rgb_{time:%Y%m%d_%H%M}.png")
    assert main(argv(tiny_models, small, tmp_path / "out1")) == 2
    line = error_line(capsys)
    assert "100" in line and "384" in line
    sparse = tmp_path / "sparse"  # every other frame: 10 minutes apart, the model wants 5
    sparse.mkdir()
    for path in sorted((dataset_dir / "source" / "frames").rglob("airmass_rgb_20231017_1*.png"))[::2]:
        shutil.copy(path, sparse / path.name)
    assert main(argv(tiny_models, sparse, tmp_path / "out2")) == 2
    assert "no complete 16-frame clip" in error_line(capsys)


def test_a_failed_rerun_loses_nothing(batch_run, tiny_models, tmp_path, capsys) -> None:
    before = {name: (batch_run / name).read_bytes() for name in FILES}
    assert main(argv(tiny_models, tmp_path / "missing", batch_run)) == 2
    assert "already holds results" in error_line(capsys)
    assert main(argv(tiny_models, tmp_path / "missing", batch_run, "--overwrite")) == 2
    assert "no such folder" in error_line(capsys)
    assert {name: (batch_run / name).read_bytes() for name in FILES} == before


def test_no_arguments_without_the_models_names_the_training_commands(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([]) == 2
    line = error_line(capsys)
    assert "scripts/train_classification.py" in line and "scripts/train_tracking.py" in line


@pytest.mark.slow
def test_no_arguments_runs_the_held_out_days_as_the_demo_does(tiny_models, dataset_dir, tmp_path, monkeypatch,
                                                               capsys) -> None:  # fmt: skip
    from medicane_hf import demo
    from medicane_hf.data.index import load_index
    from medicane_hf.tracking.command import run

    monkeypatch.chdir(tmp_path)
    for stage in ("detection", "tracking"):  # where the no-argument training runs leave their best models
        shutil.copytree(tiny_models[stage], tmp_path / "outputs" / f"{stage}-tiny-default" / "best")
    summary = run([])
    held_out = pd.to_datetime(pd.Series(load_index(dataset_dir)["test"]["end_time"]))
    out = tmp_path / "outputs" / "predict-track-default"
    hours = pd.read_csv(out / "hours.csv", parse_dates=["time"])["time"]
    assert hours.min() >= held_out.min() and hours.max() == held_out.max()
    assert set(hours) == set(held_out)  # the hours of the test split's clips, no other
    assert summary["truth"] == str(dataset_dir / "source" / "tracks.csv") and summary["scores"] is not None
    assert all((out / name).is_file() for name in FILES)
    line = demo.track_line(summary)
    assert f"of {len(summary['scores']['storms'])} true storms found" in line
    assert "map: " in capsys.readouterr().out


def test_a_detector_with_grid_position_gets_each_tiles_offset(tiny_models, dataset_dir, tmp_path) -> None:
    import torch

    from medicane_hf.cli import main as cli_main
    from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection

    detector = MedicaneVideoMAEForDetection.from_pretrained(tiny_models["detection"], detection_position=True)
    torch.nn.init.normal_(detector.position_embedding.weight)  # the position changes the scores
    detector.save_pretrained(tmp_path / "detector")
    models = {**tiny_models, "detection": tmp_path / "detector"}
    source = dataset_dir / "source"
    # a detector that is not given its tiles' offsets raises instead of scoring
    argv = run_argv(models, source / "frames", tmp_path / "run", "--threshold", "0")
    assert cli_main(["predict-track", *argv]) == 0
    assert len(read_detections(tmp_path / "run" / "detections.csv")) == 6 * 12
