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
    context = MetricContext()
    before = dataclasses.asdict(context)
    result = TASKS["detection"].metrics_fn(EvalPrediction(logits, np.array([0, 1, 0, 0])), None, context)
    assert isinstance(result, StageMetrics)
    assert result.scalars["balanced_accuracy"] == pytest.approx((2 / 3 + 1) / 2)
    assert np.asarray(result.details["confusion_matrix"]).tolist() == [[2, 1], [0, 1]]
    # the context is an input (what the metrics need, the calibration chosen on validation); no metric writes it
    assert dataclasses.asdict(context) == before
    assert {f.name for f in dataclasses.fields(MetricContext)} == {
        "class_names",
        "grid",
        "baseline_xy",
        "detection_temperature",
        "detection_threshold",
        "tracking_radius_factors",
    }


def test_detection_metrics_use_the_calibration_in_the_context() -> None:
    # P(medicane) = sigmoid(logit gap): 0.5, 0.62, 0.73, 0.88 for gaps 0, 0.5, 1, 2
    logits = np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0], [0.0, 2.0]])
    labels = np.array([0, 0, 1, 1])
    argmax = TASKS["detection"].metrics_fn(EvalPrediction(logits, labels), None, MetricContext())
    assert argmax.scalars["far"] == pytest.approx(
        1 / 3
    )  # gaps 0.5, 1, 2 are Medicane by arg-max (gap 0: class 0)
    chosen = MetricContext(detection_threshold=0.7)
    at_threshold = TASKS["detection"].metrics_fn(EvalPrediction(logits, labels), None, chosen)
    assert at_threshold.scalars["balanced_accuracy"] == 1.0 and at_threshold.scalars["far"] == 0.0
    # a temperature of 4 flattens 0.73 to sigmoid(0.25) = 0.56 < 0.7: the second Medicane is missed
    hot = MetricContext(detection_threshold=0.7, detection_temperature=4.0)
    assert TASKS["detection"].metrics_fn(EvalPrediction(logits, labels), None, hot).scalars["pod"] == 0.0


def test_calibration_of_each_stage_is_chosen_from_validation_predictions() -> None:
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

    config = MedicaneVideoMAEConfig()
    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(200, int), np.ones(200, int)]
    gap = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 2.0, 400)
    over_confident = np.stack([np.zeros(400), 5 * gap], axis=1)  # 5x too sharp: T near 5
    chosen = TASKS["detection"].calibrate_fn(EvalPrediction(over_confident, labels), MetricContext(), config)
    assert 3.5 < chosen["detection_temperature"] < 7.0
    assert 0.2 < chosen["detection_threshold"] < 0.8
    assert (
        TASKS["detection"].calibrate_fn(
            EvalPrediction(over_confident, np.zeros(400, int)), MetricContext(), config
        )
        == {}
    )


def test_the_detectors_threshold_follows_its_configs_rule() -> None:
    """One Medicane clip in twelve, half of them among look-alikes: balanced accuracy (Youden's J) takes those
    hits with the look-alikes' false alarms, the Heidke rule does not; each is the rule's own maximum."""
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.evaluation.detection import choose_threshold, detection_metrics, softmax

    rng = np.random.default_rng(0)
    labels = np.r_[np.zeros(1100, int), np.ones(100, int)]
    gap = np.where(labels == 1, 3.0, -3.0) + rng.normal(0, 1.0, 1200)
    gap[:150] = rng.normal(1.0, 1.0, 150)  # look-alikes
    gap[1100:1150] = rng.normal(1.0, 1.0, 50)  # Medicanes that look like them
    logits = np.stack([np.zeros(1200), gap], axis=1)
    scores = {}
    for rule in ("balanced_accuracy", "hss"):
        config = MedicaneVideoMAEConfig(detection_threshold_rule=rule)
        chosen = TASKS["detection"].calibrate_fn(EvalPrediction(logits, labels), MetricContext(), config)
        probability = softmax(logits / chosen["detection_temperature"], axis=1)[:, 1]
        assert chosen["detection_threshold"] == choose_threshold(labels, probability, rule)
        scores[rule] = detection_metrics(labels, scores=probability, threshold=chosen["detection_threshold"])
    j, hss = scores["balanced_accuracy"], scores["hss"]
    assert hss["far"] < j["far"] - 0.1 and hss["hss"] > j["hss"]
    assert j["balanced_accuracy"] > hss["balanced_accuracy"] and j["pod"] > hss["pod"]
    # tracking: errors drawn with sigma 2 px, spreads that say 1 px (and a scale already at 1.5) -> 2 x 1.5 = 3
    centre = rng.normal(0, 2.0, (4000, 2))
    predictions = np.c_[centre, np.ones(4000)]
    config.tracking_spread_scale = 1.5
    chosen = TASKS["tracking"].calibrate_fn(
        EvalPrediction(predictions, np.zeros((4000, 2))), MetricContext(), config
    )
    assert chosen["tracking_spread_scale"] == pytest.approx(3.0, rel=0.05)
    # Gaussian errors: the conformal radius factors of the calibrated spread are the Rayleigh quantiles
    factors = chosen["tracking_radius_factors"]
    assert factors["0.5"] == pytest.approx(np.sqrt(-2 * np.log(0.5)), rel=0.06)
    assert factors["0.9"] == pytest.approx(np.sqrt(-2 * np.log(0.1)), rel=0.06)
    assert (
        TASKS["tracking"].calibrate_fn(EvalPrediction(centre, np.zeros((4000, 2))), MetricContext(), config)
        == {}
    )


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


@pytest.mark.parametrize("name", [name for name, task in TASKS.items() if task.inference is not None])
def test_every_inference_entry_is_complete(name: str) -> None:
    from medicane_hf.processing_medicane import DataContract

    task = TASKS[name]
    spec = task.inference
    assert (PACKAGE.parent / "scripts" / spec.script).is_file()
    assert (
        task.predictions_fn is not None and task.metrics_fn is not None
    )  # inference scores what it predicts
    assert len({f.file_name for f in spec.figures}) == len(spec.figures)
    assert set(spec.contract_fields) <= {f.name for f in dataclasses.fields(DataContract)}
    assert spec.summary_metrics


def test_the_detection_table_predicts_at_the_model_threshold_or_by_arg_max() -> None:
    import pandas as pd

    from medicane_hf.tasks import PredictionInputs, detection_table

    # P(medicane) at temperature 2: sigmoid(gap / 2) = 0.5, 0.56, 0.62, 0.73
    logits = np.array([[0.0, 0.0], [0.0, 0.5], [0.0, 1.0], [0.0, 2.0]]) - 0.25
    clips = pd.DataFrame({"clip_id": list("abcd")})
    argmax = detection_table(PredictionInputs(logits, None, clips, MetricContext(detection_temperature=2.0)))
    assert argmax["predicted"].tolist() == [0, 1, 1, 1]  # the first row ties: arg-max takes class 0
    assert argmax["prob_medicane"].round(2).tolist() == [0.5, 0.56, 0.62, 0.73]
    assert "label" not in argmax
    context = MetricContext(detection_temperature=2.0, detection_threshold=0.6)
    thresholded = detection_table(PredictionInputs(logits, np.array([0, 0, 1, 1]), clips, context))
    assert thresholded["predicted"].tolist() == [0, 0, 1, 1]
    assert thresholded["label_name"].tolist() == ["background", "background", "medicane", "medicane"]
    assert np.allclose(thresholded[["prob_background", "prob_medicane"]].sum(axis=1), 1.0)
