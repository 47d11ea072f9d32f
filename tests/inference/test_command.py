"""The scripts end to end: frames without tracks, the embedded default, and each bad input's one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.index import load_index
from medicane_hf.inference.command import build_parser, parse_arguments
from medicane_hf.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[2]
PERIOD = ["--start", "2023-10-02 00:00", "--end", "2023-10-02 01:00"]


def error_line(capsys: pytest.CaptureFixture[str], stage: str) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith(f"{TASKS[stage].inference.script}: error:")]
    assert len(lines) == 1, err
    return lines[0]


def test_unlabelled_frames_every_tile_of_every_hourly_clip(
    models, dataset_dir, tmp_path, infer, capsys
) -> None:
    frames = dataset_dir / "source" / "frames"
    out = tmp_path / "frames-run"
    argv = ["--model_name_or_path", str(models["tracking"]), "--frames", str(frames), *PERIOD,
            "--output_dir", str(out), "--save_embeddings", "--num_workers", "0", "--no_progress"]  # fmt: skip
    assert infer("tracking", argv) == 0
    assert "no labels: no metrics" in capsys.readouterr().out
    table = pd.read_parquet(out / "predictions.parquet")
    assert len(table) == 2 * 12 and table["clip_id"].is_unique
    assert (
        table["end_time"].tolist()
        == [pd.Timestamp("2023-10-02 00:00")] * 12 + [pd.Timestamp("2023-10-02 01:00")] * 12
    )
    assert not {"target_x", "err_km", "label"} & set(table.columns)
    assert np.load(out / "embeddings.npy").shape[0] == 24
    assert not (out / "metrics.json").exists() and not list(out.glob("*.png"))
    assert (out / "frames_dataset" / "store").is_dir()
    # a second run on the same frames reuses the packed store
    assert infer("tracking", [*argv, "--overwrite"]) == 0
    start = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert any("store in" in note and note.endswith(": reused") for note in start["notes"])


def test_frames_without_a_whole_clip(models, dataset_dir, tmp_path, infer, capsys) -> None:
    frames = tmp_path / "frames"
    source = sorted((dataset_dir / "source" / "frames").rglob("airmass_rgb_20231002_0[0-9]*.png"))
    frames.mkdir()
    for path in source[::2]:  # every other frame: 10-minute gaps, no 16-frame clip of 5-minute steps
        shutil.copy(path, frames / path.name)
    shutil.copy(dataset_dir / "source" / "grid.json", tmp_path / "grid.json")
    argv = ["--model_name_or_path", str(models["detection"]), "--frames", str(frames), "--output_dir",
            str(tmp_path / "out"), "--no_progress"]  # fmt: skip
    assert infer("detection", argv) == 2
    line = error_line(capsys, "detection")
    assert "holds no complete 16-frame clip ending on the hour" in line and "missing_frames" in line


def test_a_contract_mismatch_lists_every_difference(models, dataset_dir, tmp_path, infer, capsys) -> None:
    folder = tmp_path / "other-grid"
    shutil.copytree(models["detection"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["grid"]["width"] = 1290
    config["tiles"]["stride_x"] = 213
    config["frame_interval_minutes"] = 15
    (folder / "config.json").write_text(json.dumps(config))
    argv = ["--model_name_or_path", str(folder), "--dataset_dir", str(dataset_dir), "--output_dir",
            str(tmp_path / "out")]  # fmt: skip
    assert infer("detection", argv) == 2
    line = error_line(capsys, "detection")
    assert line.count("model ") >= 3
    for field in ("frame_interval_minutes: model 15, dataset 5", "grid: model", "tiles: model"):
        assert field in line
    assert not (tmp_path / "out").exists()  # refused before the first batch, nothing written


def test_no_arguments_without_the_default_model_names_the_training_command(
    tmp_path, infer, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert infer("detection", []) == 2
    line = error_line(capsys, "detection")
    assert "no model in outputs/detection-tiny-default/best" in line
    assert "run `python scripts/train_classification.py` first" in line


def test_no_arguments_runs_the_embedded_default_as_the_demo_does(
    models, dataset_dir, tmp_path, infer, monkeypatch
) -> None:
    from accelerate.state import AcceleratorState

    from medicane_hf import demo

    monkeypatch.chdir(tmp_path)
    for stage in ("detection", "tracking"):  # where the no-argument training runs leave their best models
        shutil.copytree(models[stage], tmp_path / "outputs" / f"{stage}-tiny-default" / "best")
    results = demo.infer_all()
    assert set(results) == {"detection", "tracking"}
    assert (
        results["detection"]["num_clips"] == len(load_index(dataset_dir)["test"])
        and "baseline_median_km" in results["tracking"]
    )
    AcceleratorState._reset_state(reset_partial_state=True)
    assert infer("tracking", []) == 0  # a second no-argument run replaces the first one's results
    out = tmp_path / "outputs" / "tracking-tiny-default" / "inference"
    metrics = json.loads((out / "metrics.json").read_text())
    assert (
        metrics["num_clips"]
        == len(pd.read_parquet(out / "predictions.parquet"))
        == results["tracking"]["num_clips"]
    )
    assert metrics["input"].startswith("the test split of")


def test_help_says_what_it_does_first() -> None:
    for stage in ("detection", "tracking"):
        text = build_parser(TASKS[stage]).format_help()
        assert text.splitlines()[0].startswith(f"usage: scripts/{TASKS[stage].inference.script}")
        description = text.split("\n\n")[1]
        assert description.startswith(f"Batch inference of the {stage} stage")


def test_arguments_must_be_complete_and_consistent(capsys) -> None:
    task = TASKS["detection"]
    for argv, message in (
        (["--dataset_dir", "d"], "give --model_name_or_path, --output_dir too"),
        (
            ["--model_name_or_path", "m", "--dataset_dir", "d", "--frames", "f", "--output_dir", "o"],
            "not allowed with",
        ),
        (
            ["--model_name_or_path", "m", "--frames", "f", "--split", "test", "--output_dir", "o"],
            "--split applies to",
        ),
        (
            ["--model_name_or_path", "m", "--dataset_dir", "d", "--start", "2023-10-01", "--output_dir", "o"],
            "apply to --frames",
        ),
        (
            ["--model_name_or_path", "m", "--dataset_dir", "d", "--bf16", "--fp16", "--output_dir", "o"],
            "not allowed with",
        ),
    ):
        with pytest.raises(SystemExit):
            parse_arguments(task, argv)
        assert message in capsys.readouterr().err, argv
    args = parse_arguments(task, ["--model_name_or_path", "m", "--dataset_dir", "d", "--output_dir", "o", "--bf16",
                                  "--save_logits", "--save_embeddings"])  # fmt: skip
    assert args.mixed_precision == "bf16" and args.saved_arrays == ("logits", "embeddings")


def test_the_script_runs_with_plain_python(models, dataset_dir, tmp_path) -> None:
    out = tmp_path / "script"
    command = [sys.executable, str(REPO / "scripts" / "infer_classification.py"), "--model_name_or_path",
               str(models["detection"]), "--dataset_dir", str(dataset_dir), "--max_clips", "9", "--bf16",
               "--output_dir", str(out), "--num_workers", "0"]  # fmt: skip
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "detection inference: 9 clips" in result.stdout and "clip/s" in result.stderr  # the progress bar
    start = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert start["mixed_precision"] == "bf16"


def test_a_split_with_no_clips(models, dataset_dir, tmp_path, infer, capsys) -> None:
    from medicane_hf.data.build import main as build_dataset

    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((dataset_dir / "source" / "frames").rglob("airmass_rgb_20231002_00*.png"))[::2]:
        shutil.copy(path, frames / path.name)  # every other frame: no whole clip
    built = tmp_path / "empty-ds"
    args = ["--frames", str(frames), "--no-tracks", "--grid", str(dataset_dir / "source" / "grid.json")]
    assert build_dataset([*args, "--out", str(built), "--no-progress"]) == 0
    argv = ["--model_name_or_path", str(models["detection"]), "--dataset_dir", str(built), "--output_dir",
            str(tmp_path / "out")]  # fmt: skip
    assert infer("detection", argv) == 2
    line = error_line(capsys, "detection")
    assert f"the unlabelled split of {built} has no clips for the detection stage: nothing to predict" in line


def test_frames_are_never_packed_over_a_labelled_dataset(
    models, dataset_dir, tmp_path, infer, capsys
) -> None:
    labelled = tmp_path / "labelled"
    labelled.mkdir()
    shutil.copy(dataset_dir / "dataset_info.json", labelled / "dataset_info.json")
    argv = ["--model_name_or_path", str(models["tracking"]), "--frames", str(dataset_dir / "source" / "frames"),
            *PERIOD, "--store_dir", str(labelled), "--output_dir", str(tmp_path / "out")]  # fmt: skip
    assert infer("tracking", argv) == 2
    assert f"{labelled} holds a labelled build-dataset folder" in error_line(capsys, "tracking")
    assert sorted(p.name for p in labelled.iterdir()) == ["dataset_info.json"]
