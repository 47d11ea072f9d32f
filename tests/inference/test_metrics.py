"""metrics.json and the figures: the stage's metric functions of the gathered predictions, with the model's
calibration, and the tracking baseline; the numbers equal evaluation's on the same logits and labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from medicane_hf.data.dataset_arrays import dataset_targets
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import load_index
from medicane_hf.evaluation import detection_metrics_from_logits, tracking_errors
from medicane_hf.evaluation import tracking_metrics as error_statistics
from medicane_hf.inference.metrics import summary_line
from medicane_hf.processing_medicane import read_dataset_contract
from medicane_hf.tasks import TASKS


def test_detection_metrics_are_evaluations_on_the_saved_logits(
    detection_run, dataset_dir, calibration
) -> None:
    temperature, threshold = calibration
    metrics = json.loads((detection_run / "metrics.json").read_text())
    logits = np.load(detection_run / "logits.npy")
    labels = np.asarray(load_index(dataset_dir)["test"]["label"])
    expected = detection_metrics_from_logits(logits, labels, temperature=temperature, threshold=threshold)
    assert metrics["num_clips"] == len(labels) == expected["num_samples"]
    for key in ("accuracy", "balanced_accuracy", "pod", "far", "csi", "hss", "average_precision", "ece"):
        assert metrics[key] == pytest.approx(expected[key], rel=1e-6, abs=1e-9), key
    assert metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert metrics["class_names"] == ["background", "medicane"]
    assert not any(key.startswith("cm_") for key in metrics)  # the matrix once, whole
    assert metrics["stage"] == "detection" and metrics["input"].startswith("the test split of")


def test_detection_figures(detection_run) -> None:
    for name in ("confusion_matrix.png", "pr_curve.png"):
        assert (detection_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_tracking_km_errors_are_evaluations(tracking_run, dataset_dir) -> None:
    table = pd.read_parquet(tracking_run / "predictions.parquet")
    metrics = json.loads((tracking_run / "metrics.json").read_text())
    grid = SeviriGrid.from_dict(read_dataset_contract(dataset_dir).grid)
    offsets = table[["x0", "y0"]].to_numpy(dtype=float)
    errors = tracking_errors(table[["pred_x", "pred_y"]], table[["target_x", "target_y"]], offsets, grid)
    np.testing.assert_allclose(table["err_km"], errors["err_km"], rtol=1e-12)
    np.testing.assert_allclose(table["err_px"], errors["err_px"], rtol=1e-12)
    stats = error_statistics(errors)
    for key in ("mean_km", "median_km", "rms_km", "p90_km", "mean_px", "median_px", "rms_px", "p90_px"):
        assert metrics[key] == pytest.approx(stats[key], rel=1e-9), key
    # the constant guess: the train split's mean centre for every clip
    train = load_clip_datasets(dataset_dir, "tracking", ("train",), train_max_shift=0, train_rot90=False)[
        "train"
    ]
    centre = dataset_targets(train).mean(axis=0)
    np.testing.assert_allclose(metrics["baseline"]["centre_tile_px"], centre)
    constant = error_statistics(
        tracking_errors(np.tile(centre, (len(table), 1)), errors[["target_x", "target_y"]], offsets, grid)
    )
    for key in ("mean_km", "median_km", "rms_km", "p90_km"):
        assert metrics[f"baseline_{key}"] == pytest.approx(constant[key], rel=1e-9), key
    # the heat-map head gives a spread: coverage of the 50 % / 90 % radii
    inside = table["err_px"] <= table["radius_90_px"]
    assert metrics["coverage_90"] == pytest.approx(inside.mean())
    assert (tracking_run / "tracking_errors.png").read_bytes()[:4] == b"\x89PNG"


def test_the_summary_shows_each_metric_beside_its_baseline() -> None:
    metrics = {"median_km": 12.0, "baseline_median_km": 150.0, "mean_km": 20.0, "coverage_50": 0.5}
    assert summary_line(TASKS["tracking"], metrics) == (
        "median_km 12 (constant guess 150), mean_km 20, coverage_50 0.5"
    )
