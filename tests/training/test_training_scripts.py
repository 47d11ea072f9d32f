"""Smoke tests of the three training entry points on the embedded default dataset.

Each stage runs `main()` for a few steps, the result reloads with `from_pretrained`, and a second call
resumes from the newest complete checkpoint. Detection and tracking start from the specialization run.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForTracking,
)
from medicane_hf.training.checkpoints import last_complete_checkpoint
from medicane_hf.training.run import DatasetTooSmallError, main, run
from tests.runs import log_records, quick_flags

REPO = Path(__file__).resolve().parents[2]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def is_finite_number(value: object) -> bool:
    """A real number that is not NaN or infinite (JSON `null`, written for NaN, is not one)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


@pytest.fixture(scope="module")
def specialization_run(dataset_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("specialization")
    assert main("specialization", quick_flags(dataset_dir, output_dir)) == 0
    return output_dir


def test_specialization_outputs_reload_and_resume(specialization_run, dataset_dir):
    out = specialization_run
    for name in (
        "training_arguments.yaml",
        "effective_settings.json",
        "test_metrics.json",
        "training_curves.png",
        "reconstructions.png",
    ):
        assert (out / name).is_file(), name
    model = MedicaneVideoMAEForPreTraining.from_pretrained(out / "best")
    contract = json.loads((dataset_dir / "normalization.json").read_text())
    assert model.config.image_mean == pytest.approx(contract["image_mean"])
    assert model.config.tiles["tile_size"] == 64
    best = json.loads((out / "best" / "metrics.json").read_text())
    assert "eval_loss" in best and "test_loss" in best  # chosen on validation, tested once
    assert yaml.safe_load((out / "best" / "training_arguments.yaml").read_text())["max_steps"] == 4
    evals = [r for r in log_records(out) if "eval_loss" in r]
    assert [r["step"] for r in evals] == [2, 4]
    assert last_complete_checkpoint(out).name == "checkpoint-4"

    # Resume: the same command with a longer schedule continues from checkpoint-4.
    assert main("specialization", quick_flags(dataset_dir, out, steps=6)) == 0
    state = json.loads((last_complete_checkpoint(out) / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    assert json.loads((out / "effective_settings.json").read_text())["resumed_from"].endswith("checkpoint-4")
    steps = [r["step"] for r in log_records(out) if "loss" in r]
    assert steps == [1, 2, 3, 4, 5, 6]  # steps 1-4 not trained again


def test_detection_starts_from_the_specialized_encoder(specialization_run, dataset_dir, tmp_path):
    flags = quick_flags(dataset_dir, tmp_path) + ["--model_name_or_path", str(specialization_run / "best")]
    assert main("detection", flags + ["--class_weights", "1,3"]) == 0
    report = json.loads((tmp_path / "loading_report.json").read_text())
    # the recipe's heat-map pooling adds its pixel head to the new head
    assert {k.split(".")[0] for k in report["newly_initialised"]} == {"classifier", "fc_norm", "heatmap_head"}
    assert any(k.startswith("decoder.") for k in report["unused"])
    model = MedicaneVideoMAEForDetection.from_pretrained(tmp_path / "best")
    assert model.config.class_weights == [1.0, 3.0] and model.config.label_smoothing == pytest.approx(0.1)
    assert model.config.detection_pooling == "heatmap"
    test = json.loads((tmp_path / "test_metrics.json").read_text())
    assert test["test_num_samples"] == 8
    tn, fp, fn, tp = (test[f"test_cm_{t}_{p}"] for t, p in ((0, 0), (0, 1), (1, 0), (1, 1)))
    assert tn + fp + fn + tp == 8
    # every score is a finite number, except those undefined for these 8 clips: with no Medicane clip,
    # POD and PR-AUC have no positives to measure (JSON null); a NaN anywhere else fails
    always = ("test_accuracy", "test_balanced_accuracy", "test_far", "test_csi", "test_hss", "test_loss")
    for key in always + ("test_pod", "test_average_precision"):
        if key in always or tp + fn > 0:
            assert is_finite_number(test.get(key)), (key, test.get(key))
        else:
            assert test[key] is None, (key, test[key])
    assert test["test_accuracy"] == pytest.approx((tn + tp) / 8)
    recalls = [tn / (tn + fp) if tn + fp else None, tp / (tp + fn) if tp + fn else None]
    defined = [r for r in recalls if r is not None]
    assert test["test_balanced_accuracy"] == pytest.approx(sum(defined) / len(defined))
    if tp + fp:
        assert test["test_far"] == pytest.approx(fp / (tp + fp))
    assert (tmp_path / "confusion_matrix_test.png").is_file()


def test_detection_calibration_chosen_on_validation_is_saved_with_best(
    specialization_run, dataset_dir, tmp_path
):
    # 96 validation clips spread over the split hold both classes (8 do not: nothing could be chosen there)
    flags = quick_flags(dataset_dir, tmp_path) + [
        "--model_name_or_path", str(specialization_run / "best"), "--max_eval_samples", "96",
    ]  # fmt: skip
    assert main("detection", flags) == 0
    test = json.loads((tmp_path / "test_metrics.json").read_text())
    chosen = test["calibration"]
    assert chosen["detection_temperature"] > 0 and 0 <= chosen["detection_threshold"] <= 1
    model = MedicaneVideoMAEForDetection.from_pretrained(tmp_path / "best")
    assert model.config.detection_threshold == chosen.get("detection_threshold")
    assert model.config.detection_temperature == chosen.get("detection_temperature", 1.0)
    final = MedicaneVideoMAEForDetection.from_pretrained(tmp_path / "final").config
    assert (final.detection_threshold, final.detection_temperature) == (None, 1.0)
    assert json.loads((tmp_path / "best" / "metrics.json").read_text())["calibration"] == chosen


def test_detection_with_grid_position_trains_and_predicts(dataset_dir, tmp_path):
    from accelerate.state import AcceleratorState

    from medicane_hf.inference.command import main as infer

    out = tmp_path / "train"
    flags = quick_flags(dataset_dir, out) + [
        "--detection_position", "true", "--detection_pooling", "heatmap", "--patch_embedding", "conv",
    ]  # fmt: skip
    assert main("detection", flags) == 0
    saved = json.loads((out / "best" / "config.json").read_text())
    assert saved["detection_position"] is True and saved["grid"]["width"] > 0
    model = MedicaneVideoMAEForDetection.from_pretrained(out / "best")
    assert model.position_embedding is not None
    # the predict loop hands every batch's tile offsets to the detector (it refuses a batch without them)
    AcceleratorState._reset_state(reset_partial_state=True)
    argv = [
        "--model_name_or_path", str(out / "best"), "--dataset_dir", str(dataset_dir), "--split", "test",
        "--max_clips", "8", "--output_dir", str(tmp_path / "predict"), "--batch_size", "4", "--num_workers", "0",
        "--no_progress",
    ]  # fmt: skip
    assert infer("detection", argv) == 0
    AcceleratorState._reset_state(reset_partial_state=True)


def test_tracking_reports_km_and_px(specialization_run, dataset_dir, tmp_path):
    flags = quick_flags(dataset_dir, tmp_path) + ["--model_name_or_path", str(specialization_run / "best")]
    assert main("tracking", flags) == 0
    MedicaneVideoMAEForTracking.from_pretrained(tmp_path / "final")
    test = json.loads((tmp_path / "test_metrics.json").read_text())
    for key in (
        "test_mean_km",
        "test_median_km",
        "test_rms_km",
        "test_p90_km",
        "test_median_px",
        "test_baseline_median_km",
    ):
        assert is_finite_number(test.get(key)) and test[key] >= 0.0, (key, test.get(key))
    assert test["test_count"] == 8
    # ordered statistics of one set of errors
    assert test["test_median_km"] <= test["test_p90_km"] and test["test_mean_km"] <= test["test_rms_km"]
    assert (tmp_path / "tracking_errors_test.png").is_file()
    errors = pd.read_csv(tmp_path / "test_errors.csv")
    # the spread's scale is fitted on validation and saved with best/ only; the test metrics use it
    scale = test["calibration"]["tracking_spread_scale"]
    assert (
        MedicaneVideoMAEForTracking.from_pretrained(tmp_path / "best").config.tracking_spread_scale
        == scale
        != 1.0
    )
    assert MedicaneVideoMAEForTracking.from_pretrained(tmp_path / "final").config.tracking_spread_scale == 1.0
    assert (errors["spread_px"] > 0).all() and len(errors) == 8
    # the 90 % radius is the factor chosen on validation times the spread, saved with best/ beside the scale
    factors = test["calibration"]["tracking_radius_factors"]
    best = MedicaneVideoMAEForTracking.from_pretrained(tmp_path / "best").config
    assert best.tracking_radius_factors == factors and factors["0.9"] >= factors["0.5"] > 0
    assert (
        MedicaneVideoMAEForTracking.from_pretrained(tmp_path / "final").config.tracking_radius_factors is None
    )
    inside_90 = errors["err_px"] <= errors["spread_px"] * factors["0.9"]
    assert test["test_coverage_90"] == pytest.approx(inside_90.mean())


def test_train_split_smaller_than_a_global_batch(dataset_dir, tmp_path):
    flags = quick_flags(dataset_dir, tmp_path) + [
        "--max_train_samples",
        "3",
        "--per_device_train_batch_size",
        "4",
    ]
    with pytest.raises(DatasetTooSmallError, match="3 clips, fewer than one optimizer step needs"):
        run("detection", flags)
    assert main("detection", flags) == 2  # the command line gets a message and exit code 2, not a traceback


def test_script_help_lists_the_arguments():
    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_tracking.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0
    assert "--model_name_or_path" in result.stdout and "--layer_decay" in result.stdout


def test_script_help_shows_the_learning_rate_a_run_uses():
    from medicane_hf.tasks import TASKS

    result = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "train_classification.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())  # argparse wraps help lines
    shown = re.search(
        r"--learning_rate LEARNING_RATE, --learning-rate LEARNING_RATE [^()]*\(default: ([^)]+)\)", text
    )
    assert float(shown.group(1)) == TASKS["detection"].recipe["learning_rate"] == 5e-4
    assert (
        "--num-train-epochs NUM_TRAIN_EPOCHS Total number of training epochs to perform. (default: 30)"
        in text
    )
    # what the no-argument run changes
    assert "max_steps=80" in text and "output_dir=outputs/detection-tiny-default" in text
