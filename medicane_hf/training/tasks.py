"""The three training stages, declared once each.

A stage is a model class, a dataset kind, what the metrics see as predictions,
its metrics, the one validation metric that picks the best checkpoint, the
recipe defaults (DOMAIN.md section 5) and the figures drawn at the end. The
trainer and the entry point (``medicane_hf.training.run``) are the same for all
three; nothing else differs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Subset
from transformers.trainer_utils import EvalPrediction

logger = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------- dataset helpers


def _base_and_indices(dataset: Dataset) -> tuple[Any, np.ndarray | None]:
    """The innermost dataset under `Subset`s and the row numbers into it (None = all rows)."""
    indices: np.ndarray | None = None
    while isinstance(dataset, Subset) or type(dataset).__name__ == "PerSampleSeeded":
        if isinstance(dataset, Subset):
            rows = np.asarray(dataset.indices)
            indices = rows if indices is None else rows[indices]
        dataset = dataset.dataset
    return dataset, indices


def tile_offsets(dataset: Dataset) -> np.ndarray:
    """[N, 2] tile offsets (x0, y0) in grid pixels of every clip of `dataset`, in dataset order.

    Reads the `x0` / `y0` arrays of a `medicane_hf.data.datasets.ClipVideoDataset` (through `Subset`s).
    """
    base, rows = _base_and_indices(dataset)
    if not (hasattr(base, "x0") and hasattr(base, "y0")):
        raise ValueError(
            f"{type(base).__name__} does not expose the tile offsets (x0, y0) of its clips; "
            "tracking errors in km need them"
        )
    offsets = np.stack([np.asarray(base.x0), np.asarray(base.y0)], axis=1).astype(np.float64)
    return offsets if rows is None else offsets[rows]


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """[N] class ids of a detection dataset: its `labels` array when it has one (no pixels read)."""
    base, rows = _base_and_indices(dataset)
    labels = getattr(base, "labels", None)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        return labels if rows is None else labels[rows]
    return np.asarray([int(dataset[i]["labels"]) for i in range(len(dataset))], dtype=np.int64)


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """[N, 2] tracking targets (x, y) in tile pixels: the dataset's `targets` array, or read item by item."""
    base, rows = _base_and_indices(dataset)
    targets = getattr(base, "targets", None)
    if targets is not None:
        targets = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
        return targets if rows is None else targets[rows]
    return np.stack([np.asarray(dataset[i]["labels"], dtype=np.float64) for i in range(len(dataset))])


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> list[float]:
    """n / (num_classes x count_c) per class (sklearn's "balanced"); a class absent from `labels` is an error."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]
    if (counts == 0).any():
        missing = [int(c) for c in np.flatnonzero(counts == 0)]
        raise ValueError(
            f"--class_weights balanced: the train split has no clip of class {missing} (counts {counts.tolist()})"
        )
    return (counts.sum() / (num_classes * counts)).astype(float).tolist()


def parse_class_weights(spec: str | None, train_dataset: Dataset, num_classes: int) -> list[float] | None:
    """`--class_weights`: None, `balanced`, or a comma-separated list with one weight per class."""
    if spec is None or spec == "" or spec == "none":
        return None
    if spec == "balanced":
        return balanced_class_weights(dataset_labels(train_dataset), num_classes)
    weights = [float(v) for v in str(spec).split(",")]
    if len(weights) != num_classes:
        raise ValueError(f"--class_weights {spec!r}: {len(weights)} values for {num_classes} classes")
    return weights


# ---------------------------------------------------------------------------------------------- metric context


@dataclass
class MetricContext:
    """What metrics need beside predictions and labels: class names, the grid, a baseline."""

    class_names: list[str] = field(default_factory=lambda: ["background", "medicane"])
    grid: Any = None  # medicane_hf.data.geo.SeviriGrid
    baseline_xy: np.ndarray | None = None  # tracking: the train split's mean centre, tile pixels
    last_full_metrics: dict[str, Any] = field(default_factory=dict)  # every value of the last evaluation


def detection_metrics_fn(
    prediction: EvalPrediction, dataset: Dataset, context: MetricContext
) -> dict[str, float]:
    """Accuracy, balanced accuracy, POD, FAR, CSI, HSS, PR-AUC and the confusion matrix (as cm_i_j)."""
    from medicane_hf.evaluation import detection_metrics_from_logits, scalar_metrics

    logits = np.asarray(prediction.predictions, dtype=np.float64)
    labels = np.asarray(prediction.label_ids).astype(np.int64)
    full = detection_metrics_from_logits(logits, labels, class_names=context.class_names)
    context.last_full_metrics = full
    return scalar_metrics(full)


def tracking_metrics_fn(
    prediction: EvalPrediction, dataset: Dataset, context: MetricContext
) -> dict[str, float]:
    """Centre error mean, median, RMS, p90 in km and px; `baseline_*`: the constant train-mean guess."""
    from medicane_hf.evaluation import tracking_errors, tracking_metrics

    predicted = np.asarray(prediction.predictions, dtype=np.float64).reshape(-1, 2)
    target = np.asarray(prediction.label_ids, dtype=np.float64).reshape(-1, 2)
    offsets = tile_offsets(dataset)
    if len(offsets) != len(target):
        raise ValueError(f"{len(target)} predictions for {len(offsets)} clips: evaluation order was lost")
    errors = tracking_errors(predicted, target, offsets, context.grid)
    metrics = {k: float(v) for k, v in tracking_metrics(errors).items()}
    if context.baseline_xy is not None:
        constant = np.broadcast_to(context.baseline_xy, target.shape)
        baseline = tracking_metrics(tracking_errors(constant, target, offsets, context.grid))
        metrics.update(
            {f"baseline_{k}": float(v) for k, v in baseline.items() if k.startswith(("mean", "median"))}
        )
    context.last_full_metrics = {**metrics, "errors": errors}
    return metrics


# ---------------------------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class TaskSpec:
    """One training stage."""

    name: str
    script: str
    model_class_name: str
    data_task: str  # the `task` of medicane_hf.data.datasets.load_clip_datasets
    metric_for_best_model: str
    greater_is_better: bool
    predictions_fn: Callable[[Any], torch.Tensor] | None
    metrics_fn: Callable[[EvalPrediction, Dataset, MetricContext], dict[str, float]] | None
    recipe: dict[str, Any]  # argument defaults: the DOMAIN.md recipe
    quick_run: dict[str, Any]  # what the no-argument run changes (short schedule, frequent evaluation)
    description: str = ""

    def model_class(self) -> type:
        """The model class (imported on first use)."""
        import medicane_hf.modeling_medicane as modeling

        return getattr(modeling, self.model_class_name)

    def default_output_dir(self, preset: str = "tiny") -> Path:
        """`outputs/<stage>-<preset>-default`, relative to the working directory."""
        return Path("outputs") / f"{self.name}-{preset}-default"


def _logits(outputs: Any) -> torch.Tensor:
    return outputs["logits"]


# Shared by every stage; each stage's recipe overrides.
_COMMON: dict[str, Any] = {
    "adam_beta1": 0.9,
    "adam_beta2": 0.95,
    "lr_scheduler_type": "cosine",
    "report_to": ["tensorboard"],
    "eval_strategy": "epoch",
    "save_strategy": "epoch",
    "logging_strategy": "steps",
    "logging_steps": 10,
    "save_total_limit": 2,
    "max_grad_norm": 1.0,
    "dataloader_num_workers": 2,
    "seed": 42,
}

# The embedded default: tiny model, the demo basin, a schedule that fits in ~2 minutes on 2 CPU cores.
_QUICK: dict[str, Any] = {
    "preset": "tiny",
    "per_device_train_batch_size": 8,
    "per_device_eval_batch_size": 16,
    "eval_strategy": "steps",
    "save_strategy": "steps",
    "logging_steps": 5,
    "warmup_epochs": None,
    "warmup_steps": 10,
    "dataloader_num_workers": 0,
    "dataloader_pin_memory": False,
}

TASKS: dict[str, TaskSpec] = {
    "specialization": TaskSpec(
        name="specialization",
        script="train_specialization.py",
        model_class_name="MedicaneVideoMAEForPreTraining",
        data_task="specialization",
        metric_for_best_model="loss",
        greater_is_better=False,
        predictions_fn=None,
        metrics_fn=None,
        recipe={
            **_COMMON,
            "num_train_epochs": 150,
            "learning_rate": 1e-3,
            "scale_lr": True,
            "weight_decay": 0.05,
            "warmup_epochs": 10,
            "mask_ratio": 0.9,
            "decoder_mask_ratio": 0.5,
            "drop_path_rate": 0.0,
        },
        quick_run={
            **_QUICK,
            "max_steps": 80,
            "eval_steps": 40,
            "save_steps": 40,
            "learning_rate": 1.5e-3,
            "scale_lr": False,
            "max_eval_samples": 96,
        },
        description="MAE specialization of a VideoMAE v2 encoder on unlabelled clips (dual masking).",
    ),
    "detection": TaskSpec(
        name="detection",
        script="train_classification.py",
        model_class_name="MedicaneVideoMAEForDetection",
        data_task="detection",
        metric_for_best_model="balanced_accuracy",
        greater_is_better=True,
        predictions_fn=_logits,
        metrics_fn=detection_metrics_fn,
        recipe={
            **_COMMON,
            "num_train_epochs": 30,
            "learning_rate": 5e-4,
            "scale_lr": True,
            "weight_decay": 0.05,
            "warmup_epochs": 5,
            "label_smoothing_factor": 0.1,
            "layer_decay": 0.75,
            "drop_path_rate": 0.1,
            "class_weights": "balanced",
            # a Medicane fills a few patches of a tile: mean pooling dilutes it, attention pooling
            # does not (held-out synthetic storms, benchmarks/RESULTS.md section "learning")
            "detection_pooling": "attention",
        },
        quick_run={
            **_QUICK,
            "max_steps": 80,
            "eval_steps": 40,
            "save_steps": 40,
            "learning_rate": 5e-4,
            "scale_lr": False,
        },
        description="Clip classification: is a Medicane in this tile at this hour?",
    ),
    "tracking": TaskSpec(
        name="tracking",
        script="train_tracking.py",
        model_class_name="MedicaneVideoMAEForTracking",
        data_task="tracking",
        metric_for_best_model="median_km",
        greater_is_better=False,
        predictions_fn=_logits,
        metrics_fn=tracking_metrics_fn,
        recipe={
            **_COMMON,
            "num_train_epochs": 300,
            "learning_rate": 1e-4,
            "scale_lr": False,
            "lr_scheduler_type": "constant_with_warmup",
            "weight_decay": 0.05,
            "warmup_epochs": 5,
            "drop_path_rate": 0.1,
            # mean pooling averages location away: on held-out synthetic storms it stayed at the constant
            # guess, the soft arg-max did not (benchmarks/RESULTS.md, section "learning")
            "tracking_head": "token_argmax",
        },
        quick_run={**_QUICK, "max_steps": 80, "eval_steps": 40, "save_steps": 40, "learning_rate": 5e-4},
        description="Storm-centre regression: (x, y) of the Medicane at the clip's last frame, tile pixels.",
    ),
}
