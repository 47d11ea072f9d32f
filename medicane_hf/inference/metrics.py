"""Scores and figures of an inference run with labels: the stage's own metric function, as training computes them.

The metrics are `TaskSpec.metrics_fn` of the gathered predictions and labels (the function that scores the
validation and test splits in training), with the model's calibration (``config.detection_temperature`` and
``config.detection_threshold``) and, for a stage with a constant-guess baseline, the train split's mean target:
the same numbers the training run's ``test_metrics.json`` shows for the same model and split. The figures are the
stage's `InferenceSpec.figures`; a figure that cannot be drawn (e.g. a PR curve without one Medicane clip) is
reported, and the run goes on.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.processing_medicane import DataContract
from medicane_hf.tasks import MetricContext, StageMetrics, TaskSpec

__all__ = ["compute_metrics", "draw_figures", "metric_context", "metrics_document", "summary_line"]

logger = logging.getLogger("medicane_hf.inference")


def metric_context(
    config: Any, model: DataContract, data: DataContract, baseline_xy: np.ndarray | None
) -> MetricContext:
    """Class names (the model's), the input's grid, the model's calibration and the baseline centre (tile px)."""
    return MetricContext(
        class_names=list(model.class_names),
        grid=SeviriGrid.from_dict(data.grid),  # a build-dataset folder always records its grid
        baseline_xy=None if baseline_xy is None else np.asarray(baseline_xy, dtype=np.float64),
        detection_temperature=float(getattr(config, "detection_temperature", 1.0)),
        detection_threshold=getattr(config, "detection_threshold", None),
        tracking_radius_factors=getattr(config, "tracking_radius_factors", None),
    )


def compute_metrics(
    task: TaskSpec,
    predictions: np.ndarray,
    labels: np.ndarray | None,
    dataset: Dataset,
    context: MetricContext,
) -> StageMetrics | None:
    """The stage's metrics of the whole input (None without labels or a metric function).

    Args:
        predictions: ``[N, ...]`` the stage's ``predictions_fn`` output, in `dataset` order.
        labels: ``[N, ...]`` the dataset's labels, same order.
        dataset: the predicted dataset (tracking reads its tile offsets for the km errors).
    """
    if labels is None or task.metrics_fn is None:
        return None
    return task.metrics_fn(EvalPrediction(predictions=predictions, label_ids=labels), dataset, context)


def metrics_document(
    task: TaskSpec, result: StageMetrics, context: MetricContext, num_clips: int, source: dict[str, Any]
) -> dict[str, Any]:
    """What ``metrics.json`` holds: the scalars, the JSON-able details (confusion matrix, class names), the
    number of clips, what the baseline is, and where model and input came from."""
    document: dict[str, Any] = {"stage": task.name, "num_clips": num_clips, **source}
    # cm_i_j scalars repeat the confusion matrix, which is written whole below
    document.update({k: v for k, v in result.scalars.items() if not k.startswith("cm_")})
    # the details hold the same numbers as computed (counts as ints, not the loggers' floats) and the lists
    document.update(
        {
            k: v
            for k, v in result.details.items()
            if k not in source and isinstance(v, list | str | int | float)
        }
    )
    if context.baseline_xy is not None and any(k.startswith("baseline_") for k in result.scalars):
        document["baseline"] = {
            "what": "the constant guess: every clip's centre at the train split's mean centre",
            "centre_tile_px": [float(v) for v in context.baseline_xy],
        }
    return document


def draw_figures(task: TaskSpec, table: pd.DataFrame, result: StageMetrics, folder: Path) -> dict[str, str]:
    """The stage's figures into `folder`: ``{file name: "written" | the reason it was not}``."""
    outcome = {}
    figures = task.inference.figures if task.inference is not None else ()
    for figure in figures:
        try:
            figure.draw(table, result, folder / figure.file_name)
            outcome[figure.file_name] = "written"
        except Exception as error:  # a figure must not lose a finished run: say why and go on
            outcome[figure.file_name] = f"not drawn: {error}"
            logger.warning("%s not drawn: %s", figure.file_name, error)
    return outcome


def summary_line(task: TaskSpec, metrics: dict[str, Any]) -> str:
    """The stage's `InferenceSpec.summary_metrics`, each beside its constant-guess baseline when there is one."""
    keys = task.inference.summary_metrics if task.inference is not None else ()
    parts = []
    for key in keys:
        if key.startswith("baseline_") or not isinstance(metrics.get(key), float | int):
            continue
        text = f"{key} {metrics[key]:.4g}"
        baseline = metrics.get(f"baseline_{key}")
        if isinstance(baseline, float | int):
            text += f" (constant guess {baseline:.4g})"
        parts.append(text)
    return ", ".join(parts)
