"""The stage registry (medicane_hf.tasks): every entry is complete, and no other layer branches on a stage."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.datasets import DATASET_KINDS
from medicane_hf.data.index import load_index
from medicane_hf.tasks import RUN_SETTINGS, TASKS, MetricContext, StageMetrics, get_task

PACKAGE = Path(__file__).resolve().parents[1] / "medicane_hf"
STAGE_COMPARISON = re.compile(r"""(==|!=)\s*["'](specialization|detection|tracking|classification)["']""")


@pytest.mark.parametrize("name", list(TASKS))
def test_every_stage_is_complete(name: str, dataset_dir: Path) -> None:
    task = TASKS[name]
    assert task.name == name
    assert task.model_class().__name__ == task.model_class_name
    assert task.dataset_kind in DATASET_KINDS
    assert (PACKAGE.parent / "scripts" / task.script).is_file()
    assert (PACKAGE.parent / "configs" / name).is_dir()  # configs/<stage>/, one name per stage
    assert task.starts_from is None or task.starts_from in TASKS
    assert (task.metrics_fn is None) == (task.predictions_fn is None)
    assert len({f.file_name for f in task.figures}) == len(task.figures)
    columns = set(load_index(dataset_dir)["train"].column_names)
    assert set(task.label_columns) <= columns, set(task.label_columns) - columns


def test_unknown_stage_names_the_stages() -> None:
    with pytest.raises(ValueError, match="specialization"):
        get_task("classification")


def test_no_layer_branches_on_a_stage_name() -> None:
    """A new stage is a registry entry: nothing outside medicane_hf/tasks.py compares a stage's name.

    Excluded: convert/, whose --task names model heads (pretraining | detection | tracking), and the
    learning check, which states each stage's own pass mark.
    """
    offenders = [
        f"{path.relative_to(PACKAGE)}:{number}: {line.strip()}"
        for path in PACKAGE.rglob("*.py")
        if path.name not in ("tasks.py", "learning_check.py") and "convert" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if STAGE_COMPARISON.search(line)
    ]
    assert offenders == []


def test_metrics_return_what_they_compute() -> None:
    logits = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 2.0], [2.0, 0.0]])
    result = TASKS["detection"].metrics_fn(
        EvalPrediction(logits, np.array([0, 1, 0, 0])), None, MetricContext()
    )
    assert isinstance(result, StageMetrics)
    assert result.scalars["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert np.asarray(result.details["confusion_matrix"]).tolist() == [[2, 1], [0, 1]]
    assert {f.name for f in dataclasses.fields(MetricContext)} == {"class_names", "grid", "baseline_xy"}


@pytest.mark.parametrize("name", list(TASKS))
def test_config_files_state_the_recipe_of_the_registry(name: str) -> None:
    """The recipe is stated once (medicane_hf.tasks); a config file that departs from it fails here
    instead of silently winning."""
    for path in sorted((PACKAGE.parent / "configs" / name).glob("*.yaml")):
        values = yaml.safe_load(path.read_text())
        recipe = TASKS[name].recipe_for(values["preset"])
        stray = sorted(set(values) - set(recipe) - RUN_SETTINGS)
        assert stray == [], f"{path}: keys neither recipe nor run settings: {stray}"
        disagree = {
            k: (v, recipe[k])
            for k, v in values.items()
            if k in recipe and k not in RUN_SETTINGS and v != recipe[k]
        }
        assert disagree == {}, f"{path} (file, registry): {disagree}"
