"""best/ is never chosen on a score the validation split cannot measure (issue 11, item 3, training side).

The 8 validation clips that `--max_eval_samples 8` spreads over the embedded default's validation split are all
background: balanced accuracy there is background recall alone, and POD / PR-AUC are undefined.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from medicane_hf.data.dataset_arrays import dataset_labels
from medicane_hf.tasks import TASKS, MetricContext
from medicane_hf.training.run import main
from tests.runs import log_records, quick_flags

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_detection_without_a_medicane_in_validation_selects_on_the_loss_and_says_so(
    finished_detection, capfd
):
    out, _ = finished_detection
    settings = json.loads((out / "effective_settings.json").read_text())
    assert settings["metric_for_best_model"] == "loss" and settings["greater_is_better"] is False
    assert any("balanced_accuracy" in note and "no medicane clip" in note for note in settings["notes"])
    best = json.loads((out / "best" / "metrics.json").read_text())
    losses = {r["step"]: r["eval_loss"] for r in log_records(out) if "eval_loss" in r}
    assert best["eval_loss"] == min(losses.values())  # the lowest validation loss, not the first "1.0"


def test_the_fallback_is_printed(dataset_dir, tmp_path, capfd):
    assert main("detection", quick_flags(dataset_dir, tmp_path / "run", steps=2)) == 0
    err = " ".join(capfd.readouterr().err.split())
    assert "best/ is chosen on the validation loss" in err and "no medicane clip" in err


def test_a_validation_split_with_both_classes_keeps_the_recipe_metric(dataset_dir):
    """The registry's check, on the full validation split of the default dataset (24 Medicane clips of 288)."""
    from medicane_hf.data.datasets import load_clip_datasets

    validation = load_clip_datasets(dataset_dir, "detection", ("validation",))["validation"]
    context = MetricContext(class_names=["background", "medicane"])
    check = TASKS["detection"].selection_problem
    assert np.bincount(dataset_labels(validation)).tolist() == [264, 24]
    assert check("balanced_accuracy", validation, context) is None
    assert check("loss", validation, context) is None
