"""The evaluate modules of medicane_hf/metrics: loaded offline from their folders, they give exactly the figures
of the stage registry's metric functions (what training and batch inference write) on the same inputs."""

from __future__ import annotations

import fnmatch
import math
import tomllib
from pathlib import Path

import evaluate
import numpy as np
import pytest
from huggingface_hub import SpaceCard
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.dataset_arrays import dataset_targets, tile_offsets
from medicane_hf.data.datasets import load_clip_datasets
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.metrics import MODULES, module_path
from medicane_hf.metrics.scores import detection_scores
from medicane_hf.processing_medicane import read_dataset_contract
from medicane_hf.tasks import MetricContext, detection_metrics, tracking_metrics

REPO = Path(__file__).resolve().parents[2]


def same_figures(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), (key, got[key], value)


@pytest.fixture(scope="module")
def detection_module():
    return evaluate.load(module_path("medicane_detection"))


@pytest.fixture(scope="module")
def tracking_module():
    return evaluate.load(module_path("medicane_tracking"))


@pytest.mark.parametrize(
    ("class_names", "temperature", "threshold"),
    [(["background", "medicane"], 1.0, None), (["background", "medicane", "neighbouring"], 1.7, 0.35)],
)
def test_detection_module_gives_the_training_figures(detection_module, class_names, temperature, threshold):
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(60, len(class_names))).astype(np.float32)  # what the trainer gathers
    labels = rng.integers(0, len(class_names), size=60)
    context = MetricContext(class_names=class_names, detection_temperature=temperature, detection_threshold=threshold)
    expected = detection_metrics(EvalPrediction(predictions=logits, label_ids=labels), None, context).scalars
    # in two batches, as an evaluation loop adds them
    detection_module.add_batch(predictions=logits[:25].tolist(), references=labels[:25].tolist())
    detection_module.add_batch(predictions=logits[25:].tolist(), references=labels[25:].tolist())
    got = detection_module.compute(class_names=class_names, temperature=temperature, threshold=threshold)
    same_figures(got, expected)
    assert 0 < got["balanced_accuracy"] < 1 and got["cm_0_0"] > 0


def test_tracking_module_gives_the_training_figures(tracking_module, dataset_dir):
    validation = load_clip_datasets(dataset_dir, "tracking", ("validation",))["validation"]
    targets, offsets = dataset_targets(validation), tile_offsets(validation)
    rng = np.random.default_rng(1)
    predictions = np.column_stack([targets + rng.normal(0, 4, targets.shape), rng.uniform(1, 6, len(targets))])
    grid = read_dataset_contract(dataset_dir).grid
    baseline = targets.mean(axis=0)
    factors = {"0.5": 1.4, "0.9": 2.6}  # a calibrated model's config.tracking_radius_factors
    # what a training run's metric function computes on the validation split (run.metric_context)
    context = MetricContext(grid=SeviriGrid.from_dict(grid), baseline_xy=baseline, tracking_radius_factors=factors)
    expected = tracking_metrics(EvalPrediction(predictions=predictions, label_ids=targets), validation, context)
    got = tracking_module.compute(
        predictions=predictions.tolist(), references=targets.tolist(),
        x0=offsets[:, 0].astype(int).tolist(), y0=offsets[:, 1].astype(int).tolist(),
        grid=grid, baseline_xy=baseline.tolist(), radius_factors=factors,
    )  # fmt: skip
    same_figures(got, expected.scalars)
    assert got["count"] == len(targets) > 10 and got["median_km"] > 0 and "coverage_90" in got


def test_bad_input_is_one_line(detection_module, tracking_module):
    cases = [
        (lambda: detection_module.compute(predictions=[[1.0, 0.0]] * 3, references=[0, 1]), "Mismatch in the number"),
        (lambda: detection_module.compute(predictions=[[1.0, 0.0, 2.0]] * 2, references=[0, 1]), "predictions: rows of 3"),
        (lambda: detection_module.compute(predictions=[[1.0, 0.0], [1.0]], references=[0, 1]), "predictions: row 1 holds 1"),
        (lambda: detection_scores([[1.0, 0.0]], [0.5]), "references: class ids must be whole numbers"),
        (
            lambda: tracking_module.compute(predictions=[[1.0]], references=[[1.0, 2.0]], x0=[0], y0=[0], grid={}),
            "predictions: rows of 1 values",
        ),
        (lambda: tracking_module.compute(predictions=[[1.0, 2.0]], references=[[1.0, 2.0]], x0=[0], y0=[0]), "grid: required"),
    ]  # fmt: skip
    for call, start in cases:
        with pytest.raises(ValueError) as error:
            call()
        message = str(error.value)
        assert message.startswith(start) and "\n" not in message.strip(), message


def test_each_module_folder_is_a_metric_space_shipped_with_the_package():
    package_data = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    for name in MODULES:
        folder = Path(module_path(name))
        files = {path.name for path in folder.iterdir() if path.is_file()}
        assert files == {f"{name}.py", "README.md", "requirements.txt", "app.py"}
        card = SpaceCard.load(folder / "README.md")
        assert card.data.sdk == "gradio" and card.data.app_file == "app.py"
        assert {"evaluate", "metric"} <= set(card.data.tags) and card.data.description
        assert {"evaluate>=0.4", "medicane-hf"} <= set((folder / "requirements.txt").read_text().split())
        for file in files:  # every file goes into the wheel
            relative = f"metrics/{name}/{file}"
            assert any(fnmatch.fnmatch(relative, pattern) for pattern in package_data["medicane_hf"]), relative
    with pytest.raises(ValueError, match="no evaluate module 'accuracy'"):
        module_path("accuracy")
