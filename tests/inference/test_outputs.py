"""The run folder: each file's content (one row per clip, probabilities, centres, arrays aligned, the log), and
results already there: refused unless --overwrite, never lost to a failed run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import load_index
from medicane_hf.evaluation import softmax
from medicane_hf.inference.inputs import CLIP_COLUMNS, dataset_input
from medicane_hf.inference.loading import load_model
from medicane_hf.inference.outputs import ResultsExistError, RunFolder, check_output_dir, result_names
from medicane_hf.processing_medicane import DataContract
from medicane_hf.tasks import TASKS

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_the_detection_table_has_one_row_per_clip_in_index_order(
    detection_run, dataset_dir, calibration
) -> None:
    temperature, threshold = calibration
    table = pd.read_parquet(detection_run / "predictions.parquet")
    test = load_index(dataset_dir)["test"].to_pandas()
    assert len(table) == len(test) and table["clip_id"].tolist() == test["clip_id"].tolist()
    assert list(table.columns[: len(CLIP_COLUMNS)]) == list(CLIP_COLUMNS)
    assert (table["end_time"].to_numpy() == test["end_time"].to_numpy()).all()
    np.testing.assert_array_equal(table["label"], test["label"])
    assert set(table["label_name"]) <= {"background", "medicane"}
    probability = table[["prob_background", "prob_medicane"]].to_numpy()
    np.testing.assert_allclose(probability.sum(axis=1), 1.0, atol=1e-12)
    logits = np.load(detection_run / "logits.npy")
    np.testing.assert_allclose(probability, softmax(logits / temperature, axis=1), rtol=1e-6)
    # the model's saved threshold decides, not the arg-max
    np.testing.assert_array_equal(table["predicted"], np.where(probability[:, 1] >= threshold, 1, 0))
    assert ((probability[:, 1] >= threshold) != (probability[:, 1] >= 0.5)).any()  # the two rules differ here
    csv = pd.read_csv(detection_run / "predictions.csv", parse_dates=["end_time"], keep_default_na=False)
    pd.testing.assert_frame_equal(csv, table, check_dtype=False)


def test_logits_and_embeddings_rows_are_the_table_rows(detection_run, models, dataset_dir) -> None:
    task = TASKS["detection"]
    model = load_model(task, str(models["detection"]))
    source = dataset_input(task, dataset_dir, "test", DataContract.from_config(model.config).normalization)
    rows = [0, 150, len(source.dataset) - 1]
    with torch.inference_mode():
        outputs = model(pixel_values=torch.stack([source.dataset[i]["pixel_values"] for i in rows]))
    logits, embeddings = np.load(detection_run / "logits.npy"), np.load(detection_run / "embeddings.npy")
    assert len(logits) == len(embeddings) == len(source.dataset)
    np.testing.assert_allclose(logits[rows], outputs.logits.numpy(), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(embeddings[rows], outputs.embeddings.numpy(), rtol=1e-4, atol=1e-5)


def test_the_tracking_table_in_tile_grid_and_lonlat(tracking_run, dataset_dir) -> None:
    table = pd.read_parquet(tracking_run / "predictions.parquet")
    test = load_index(dataset_dir)["test"].to_pandas()
    assert table["clip_id"].tolist() == test.loc[test["has_target"], "clip_id"].tolist()
    np.testing.assert_allclose(table[["pred_x", "pred_y"]], np.load(tracking_run / "logits.npy"), rtol=1e-6)
    np.testing.assert_allclose(table["target_x"], test.loc[test["has_target"], "target_x"], rtol=1e-6)
    np.testing.assert_allclose(table["pred_x_global"], table["pred_x"] + table["x0"])
    np.testing.assert_allclose(table["target_y_global"], table["target_y"] + table["y0"], rtol=1e-6)
    grid = SeviriGrid.from_dict(json.loads((dataset_dir / "dataset_info.json").read_text())["grid"])
    lon, lat = grid.pixel_to_lonlat(table["pred_x_global"].to_numpy(), table["pred_y_global"].to_numpy())
    np.testing.assert_allclose(table["pred_lon"], lon)
    np.testing.assert_allclose(table["target_lat"], test.loc[test["has_target"], "target_lat"], atol=1e-3)
    assert (table["spread_px"] > 0).all() and (table["radius_90_px"] > table["radius_50_px"]).all()


def test_the_log_tells_the_run(detection_run) -> None:
    records = [json.loads(line) for line in (detection_run / "log.jsonl").read_text().splitlines()]
    events = [r["event"] for r in records]
    assert events[0] == "start" and events[-2:] == ["metrics", "done"] and "progress" in events
    start, done = records[0], records[-1]
    assert (
        start["clips"] == done["clips"]
        and start["processes"] == 1
        and start["arrays"] == ["logits", "embeddings"]
    )
    assert start["calibration"]["detection_threshold"] is not None
    assert done["clips_per_second"] > 0
    assert not [p.name for p in detection_run.iterdir() if p.name.startswith(".")]  # no staging left


def test_results_are_refused_unless_overwrite_and_never_lost(
    tracking_run, models, dataset_dir, infer, capsys
) -> None:
    out = tracking_run.parent / "again"
    shutil.copytree(tracking_run, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    base = ["--model_name_or_path", str(models["tracking"]), "--dataset_dir", str(dataset_dir),
            "--output_dir", str(out), "--num_workers", "0", "--no_progress"]  # fmt: skip
    assert infer("tracking", base) == 2
    err = capsys.readouterr().err
    assert f"{out} already holds results (predictions.parquet" in err and "--overwrite" in err
    # --overwrite, but the run fails (a split with no such name): the old results stay as they were
    assert infer("tracking", [*base, "--overwrite", "--split", "nope"]) == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    # --overwrite and a run that finishes: replaced, and an array it did not write is gone with the old run
    assert infer("tracking", [*base, "--overwrite", "--max_clips", "5"]) == 0
    assert len(pd.read_parquet(out / "predictions.parquet")) == 5 and not (out / "logits.npy").exists()
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]


def test_run_folder_publishes_only_at_the_end(tmp_path: Path) -> None:
    (tmp_path / "metrics.json").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")  # not a result: never touched
    assert check_output_dir(tmp_path, overwrite=True) == ["metrics.json"]
    with pytest.raises(ResultsExistError):
        check_output_dir(tmp_path, overwrite=False)
    folder = RunFolder(tmp_path)
    folder.path("predictions.csv").write_text("new")
    assert (tmp_path / "metrics.json").read_text() == "old"  # nothing moved yet
    assert folder.publish() == ["predictions.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "predictions.csv"]
    assert "pr_curve.png" in result_names() and "tracking_errors.png" in result_names()
