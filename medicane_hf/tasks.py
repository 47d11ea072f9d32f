"""The stage registry: everything that differs between the three stages, declared once each.

A stage (`TaskSpec`) is its name, the model class, the dataset kind it trains on
(`medicane_hf.data.datasets.load_clip_datasets`), the label/target columns of the clip index, what the
metrics see as predictions (the post-processing of the model outputs), its metrics, the one validation
metric that picks the best checkpoint, its recipe defaults (DOMAIN.md section 5), the files drawn at
the end of a run and, for the stages a user runs on new clips, its batch inference (`InferenceSpec`: the
script, the columns of the prediction table, the figures). Data, training, evaluation, inference and the
converter read this table; none of them branches on a stage's name. A new stage is one entry here, plus its
model head, dataset kind and metrics.

The names are the ones of the output folders (``outputs/<name>...``) and of ``configs/<name>/``.
``scripts/train_classification.py`` keeps the seed project's file name; it trains ``detection``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.dataset_arrays import dataset_labels, tile_offsets
from medicane_hf.processing_medicane import INPUT_FIELDS

if TYPE_CHECKING:
    from medicane_hf.training.trainer import MedicaneTrainer


# ---------------------------------------------------------------------------------------------- metrics


@dataclass
class MetricContext:
    """What metrics need beside predictions and labels: class names, the grid, a baseline."""

    class_names: list[str] = field(default_factory=lambda: ["background", "medicane"])
    grid: Any = None  # medicane_hf.data.geo.SeviriGrid
    baseline_xy: np.ndarray | None = None  # tracking: the train split's mean centre, tile pixels
    # detection: the model's calibration (config.detection_temperature / detection_threshold); the defaults
    # (1, arg-max) until a run has chosen them on validation
    detection_temperature: float = 1.0
    detection_threshold: float | None = None
    # tracking: the radius factor per share of true centres (config.tracking_radius_factors); None = Gaussian
    tracking_radius_factors: dict[str, float] | None = None


@dataclass(frozen=True)
class StageMetrics:
    """What a stage's metric function computed: `scalars` for loggers, checkpoint choice and JSON files;
    `details` (confusion matrix, per-clip errors) for the figures of the same evaluation."""

    scalars: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


MetricsFn = Callable[[EvalPrediction, Dataset, MetricContext], StageMetrics]


def detection_metrics(prediction: EvalPrediction, dataset: Dataset, context: MetricContext) -> StageMetrics:
    """Accuracy, balanced accuracy, POD, FAR, CSI, HSS, PR-AUC, ECE and the confusion matrix (as cm_i_j).

    ``prediction.predictions``: logits ``[N, num_classes]``; ``label_ids``: ``[N]`` class ids. Classes at the
    context's calibration (arg-max until a run has chosen a threshold on validation).
    """
    from medicane_hf.evaluation import detection_metrics_from_logits, scalar_metrics

    logits = np.asarray(prediction.predictions, dtype=np.float64)
    labels = np.asarray(prediction.label_ids).astype(np.int64)
    full = detection_metrics_from_logits(
        logits, labels, class_names=context.class_names,
        temperature=context.detection_temperature, threshold=context.detection_threshold,
    )  # fmt: skip
    return StageMetrics(scalar_metrics(full), full)


# Detection scores that need every class in the evaluated split: without a Medicane clip, balanced accuracy is
# background recall alone and POD, CSI, HSS, PR-AUC, ROC AUC have nothing to measure.
CLASS_DEPENDENT_DETECTION_METRICS = frozenset(
    {
        "balanced_accuracy", "pod", "far", "csi", "hss", "precision", "f1", "average_precision", "roc_auc",
        "recall_background", "recall_medicane", "recall_neighbouring",
    }
)  # fmt: skip


def detection_selection_problem(metric: str, dataset: Dataset, context: MetricContext) -> str | None:
    """Why detection score `metric` cannot choose a checkpoint on `dataset` (None: it can): a class-dependent
    score on a split that lacks a class."""
    name = metric.removeprefix("eval_")
    if name not in CLASS_DEPENDENT_DETECTION_METRICS:
        return None
    counts = np.bincount(dataset_labels(dataset), minlength=len(context.class_names))
    missing = [context.class_names[k] for k, count in enumerate(counts) if count == 0]
    if not missing:
        return None
    held = ", ".join(f"{context.class_names[k]} {int(c)}" for k, c in enumerate(counts))
    return f"the validation split holds no {' or '.join(missing)} clip ({held}): {name} is undefined there"


def calibrate_detection(prediction: EvalPrediction, context: MetricContext, config: Any) -> dict[str, Any]:
    """Config updates from validation predictions: the NLL-optimal temperature, then the threshold on the calibrated
    Medicane probability that maximises the score of ``config.detection_threshold_rule`` (balanced accuracy or HSS;
    `medicane_hf.evaluation.calibration`). ``{}`` when the split lacks a class (nothing can be chosen; the run says
    so)."""
    from medicane_hf.evaluation import choose_threshold, fit_temperature, softmax

    logits = np.asarray(prediction.predictions, dtype=np.float64)
    labels = np.asarray(prediction.label_ids).astype(np.int64)
    positive = positive_class(context.class_names)
    is_medicane = labels == positive
    if is_medicane.all() or not is_medicane.any():
        return {}
    temperature = fit_temperature(logits, labels)
    probability = softmax(logits / temperature, axis=1)[:, positive]
    return {
        "detection_temperature": temperature,
        "detection_threshold": choose_threshold(is_medicane, probability, config.detection_threshold_rule),
    }


def centre_and_spread(predictions: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """Tracking predictions (`_centre_and_spread`'s columns) as centres ``[N, 2]`` (x, y, tile px) and spreads
    ``[N]`` (sigma, px), or None when the head gives none (two columns)."""
    values = np.asarray(predictions, dtype=np.float64)
    values = values.reshape(len(values), -1)
    return values[:, :2], (values[:, 2] if values.shape[1] == 3 else None)


def tracking_metrics(prediction: EvalPrediction, dataset: Dataset, context: MetricContext) -> StageMetrics:
    """Centre error mean, median, RMS, p90 in km and px; `baseline_*` (mean, median, RMS, p90): the constant
    train-mean guess; with a
    spread, ``coverage_50`` / ``coverage_90`` (share of true centres inside the predicted 50 % / 90 % radius) and
    ``median_spread_px``.

    ``prediction.predictions``: ``[N, 2]`` (x, y) in tile pixels, or ``[N, 3]`` with the centre spread (sigma, px)
    as third column (`_centre_and_spread`); ``label_ids``: ``[N, 2]``; in `dataset` order.
    ``details["errors"]``: the per-clip error table (with a ``spread_px`` column when there is a spread, and
    ``baseline_err_km`` / ``baseline_err_px``, the constant guess's, when the context has it).
    """
    from medicane_hf.evaluation import COVERAGE_SHARES, coverage, tracking_errors
    from medicane_hf.evaluation import tracking_metrics as error_statistics

    predicted, spread = centre_and_spread(prediction.predictions)
    target = np.asarray(prediction.label_ids, dtype=np.float64).reshape(-1, 2)
    offsets = tile_offsets(dataset)
    if len(offsets) != len(target):
        raise ValueError(f"{len(target)} predictions for {len(offsets)} clips: evaluation order was lost")
    errors = tracking_errors(predicted, target, offsets, context.grid)
    metrics = {k: float(v) for k, v in error_statistics(errors).items()}
    if spread is not None:
        errors["spread_px"] = spread
        metrics["median_spread_px"] = float(np.median(spread)) if len(spread) else float("nan")
        for share in COVERAGE_SHARES:
            metrics[f"coverage_{round(share * 100)}"] = coverage(
                errors["err_px"], spread, share, context.tracking_radius_factors
            )
    if context.baseline_xy is not None:
        constant = np.broadcast_to(context.baseline_xy, target.shape)
        baseline_errors = tracking_errors(constant, target, offsets, context.grid)
        baseline = error_statistics(baseline_errors)
        metrics.update(
            {
                f"baseline_{k}": float(v)
                for k, v in baseline.items()
                if k.startswith(("mean", "median", "rms", "p90"))
            }
        )
        # per clip too, so that the error table and its figure show the model beside the constant guess
        for unit in ("km", "px"):
            errors[f"baseline_err_{unit}"] = baseline_errors[f"err_{unit}"].to_numpy()
    return StageMetrics(metrics, {**metrics, "errors": errors})


def calibrate_tracking(prediction: EvalPrediction, context: MetricContext, config: Any) -> dict[str, Any]:
    """Config update from validation predictions ``[N, 3]`` (x, y, spread): the ``tracking_spread_scale`` that makes
    the spread the maximum-likelihood Gaussian sigma (`fit_spread_scale`; the predictions were made with
    ``config.tracking_spread_scale``, so the new scale is that times the fitted factor), and the
    ``tracking_radius_factors`` of the rescaled spread (`fit_radius_factors`). ``{}`` when the head gives no
    spread."""
    from medicane_hf.evaluation import fit_radius_factors, fit_spread_scale

    centre, spread = centre_and_spread(prediction.predictions)
    if spread is None or len(centre) == 0:
        return {}
    target = np.asarray(prediction.label_ids, dtype=np.float64).reshape(-1, 2)
    error = np.hypot(*(centre - target).T)
    factor = fit_spread_scale(error, spread)
    return {
        "tracking_spread_scale": float(config.tracking_spread_scale) * factor,
        "tracking_radius_factors": fit_radius_factors(error, factor * spread),
    }


def _logits(outputs: Any) -> torch.Tensor:
    """Detection's prediction post-processing: the model's class scores ``[B, C]``."""
    return outputs["logits"]


def _centre_and_spread(outputs: Any) -> torch.Tensor:
    """Tracking's: the centre ``[B, 2]``, with the spread as a third column ``[B, 3]`` when the head gives one."""
    spread = outputs.get("centre_spread") if hasattr(outputs, "get") else None
    centre = outputs["logits"]
    return centre if spread is None else torch.cat([centre, spread[:, None].to(centre.dtype)], dim=1)


# ---------------------------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class FigureInputs:
    """What a stage's end-of-run file may draw from."""

    details: dict[str, Any]  # `StageMetrics.details` of the test evaluation
    trainer: MedicaneTrainer
    splits: dict[str, Dataset]
    num_examples: int = 4


@dataclass(frozen=True)
class Figure:
    """One file written at the end of a run, when the test details hold `needs`."""

    file_name: str
    draw: Callable[[FigureInputs, Path], None]
    needs: str | None = None


def _confusion_matrix(inputs: FigureInputs, path: Path) -> None:
    from medicane_hf.evaluation import plots

    plots.plot_confusion_matrix(inputs.details["confusion_matrix"], inputs.details["class_names"], path)


def _error_table(inputs: FigureInputs, path: Path) -> None:
    inputs.details["errors"].to_csv(path, index=False)


def _tracking_errors(inputs: FigureInputs, path: Path) -> None:
    from medicane_hf.evaluation import plots

    plots.plot_tracking_errors(inputs.details["errors"], path)


@torch.no_grad()
def _reconstructions(inputs: FigureInputs, path: Path) -> None:
    """Originals, reconstructions and masks of the first validation clips (the decoder's own view)."""
    from medicane_hf.evaluation.plots import plot_reconstructions
    from medicane_hf.evaluation.reconstructions import reconstruction_views

    trainer, dataset = inputs.trainer, inputs.splits["validation"]
    model = trainer.accelerator.unwrap_model(trainer.model).eval()
    count = min(inputs.num_examples, len(dataset))
    pixel_values = torch.stack([dataset[i]["pixel_values"] for i in range(count)]).to(trainer.args.device)
    generator = torch.Generator(device=pixel_values.device).manual_seed(trainer.args.seed)
    outputs = model(pixel_values, generator=generator)
    original, reconstruction, mask_video = reconstruction_views(model, pixel_values, outputs)
    plot_reconstructions(original.cpu(), reconstruction.cpu(), mask_video.cpu(), path)


# ---------------------------------------------------------------------------------------------- inference


@dataclass(frozen=True)
class PredictionInputs:
    """What a stage's prediction table is made from (batch inference, `medicane_hf.inference`); rows in clip order.

    Attributes:
        predictions: the stage's `TaskSpec.predictions_fn` output of every clip, float64 ``[N, ...]`` (what the
            metrics see: detection logits ``[N, C]``; tracking centre ``[N, 2]`` tile px, or ``[N, 3]`` with the
            spread sigma px).
        labels: the clips' labels as the dataset gives them (detection class ids ``[N]``, tracking centres
            ``[N, 2]`` tile px), None for unlabelled input.
        clips: one row per clip: ``clip_id``, ``end_time``, ``x0``, ``y0`` (tile offset, grid px), ``tile_row``,
            ``tile_col``.
        context: class names, grid and the model's calibration.
    """

    predictions: np.ndarray
    labels: np.ndarray | None
    clips: pd.DataFrame
    context: MetricContext


@dataclass(frozen=True)
class InferenceFigure:
    """One figure of an inference run with labels: drawn from the prediction table and the metrics."""

    file_name: str
    draw: Callable[[pd.DataFrame, StageMetrics, Path], Any]


@dataclass(frozen=True)
class InferenceSpec:
    """Batch inference of a stage (`medicane_hf.inference`).

    Attributes:
        script: ``scripts/<script>``, the entry point (``accelerate launch`` or plain python).
        table_fn: the stage's columns of ``predictions.parquet`` (truth when known, predictions), one row per clip.
        figures: drawn when the input has labels.
        summary_metrics: the metrics a person looks at first (the closing lines and the demo), with the baseline's.
        contract_fields: the fields of the model's data contract the input must agree with
            (`medicane_hf.processing_medicane.contract_differences`).
    """

    script: str
    table_fn: Callable[[PredictionInputs], pd.DataFrame]
    figures: tuple[InferenceFigure, ...] = ()
    summary_metrics: tuple[str, ...] = ()
    contract_fields: tuple[str, ...] = INPUT_FIELDS


def positive_class(class_names: list[str] | tuple[str, ...]) -> int:
    """The Medicane class id (the cyclone class of the detection scores and of the threshold)."""
    return list(class_names).index("medicane") if "medicane" in class_names else 1


def detection_table(inputs: PredictionInputs) -> pd.DataFrame:
    """``label``, ``label_name`` (when known), ``predicted``, ``predicted_name`` and ``prob_<class>`` per class.

    Probabilities are calibrated, ``softmax(logits / detection_temperature)`` (float64: each row sums to 1);
    the predicted class is the Medicane where its probability reaches ``detection_threshold``, else the most
    probable other class (arg-max when the model has no threshold): the classes the metrics count.
    """
    from medicane_hf.evaluation import classes_at_threshold, softmax

    context = inputs.context
    logits = np.asarray(inputs.predictions, dtype=np.float64)
    probability = softmax(logits / context.detection_temperature, axis=1)
    predicted = classes_at_threshold(
        probability, context.detection_threshold, positive_class(context.class_names)
    )
    names = np.asarray(context.class_names, dtype=object)
    columns: dict[str, Any] = {}
    if inputs.labels is not None:
        labels = np.asarray(inputs.labels, dtype=np.int64)
        columns.update(label=labels, label_name=names[labels])
    columns.update(predicted=predicted.astype(np.int64), predicted_name=names[predicted])
    for k, name in enumerate(context.class_names):
        columns[f"prob_{name}"] = probability[:, k]
    return pd.DataFrame(columns)


def tracking_table(inputs: PredictionInputs) -> pd.DataFrame:
    """The centre in tile px (``pred_x``, ``pred_y``), grid px (``pred_x_global``, ``pred_y_global``), lon/lat
    (``pred_lon``, ``pred_lat``) and ``pred_on_grid``; with a spread ``spread_px`` (sigma) and the radii holding 50 %
    and 90 % of true centres (``radius_50_px``, ``radius_90_px``: with the model's radius factors where a run
    chose them, else the Gaussian's); with labels the true centre in the same three frames and
    the errors ``err_px`` / ``err_km`` (`medicane_hf.evaluation.tracking_errors`, the numbers the metrics use)."""
    from medicane_hf.evaluation import COVERAGE_SHARES, radius_for_share, tracking_errors

    centre, spread = centre_and_spread(inputs.predictions)
    offsets = inputs.clips[["x0", "y0"]].to_numpy(dtype=np.float64)
    grid = inputs.context.grid
    if grid is None:  # lon/lat and km on a guessed grid would look right and be wrong
        raise ValueError("tracking_table needs the frames' grid (MetricContext.grid)")
    if inputs.labels is not None:
        table = tracking_errors(centre, inputs.labels, offsets, grid).drop(
            columns=["tile_offset_x", "tile_offset_y"]  # the clip columns x0, y0 say it
        )
    else:
        x, y = centre[:, 0] + offsets[:, 0], centre[:, 1] + offsets[:, 1]
        lon, lat = grid.pixel_to_lonlat(x, y)
        table = pd.DataFrame(
            {
                "pred_x": centre[:, 0],
                "pred_y": centre[:, 1],
                "pred_x_global": x,
                "pred_y_global": y,
                "pred_lon": lon,
                "pred_lat": lat,
                "pred_on_grid": grid.on_grid(x, y),
            }
        )
    if spread is not None:
        table["spread_px"] = spread
        for share in COVERAGE_SHARES:
            table[f"radius_{round(share * 100)}_px"] = radius_for_share(
                spread, share, inputs.context.tracking_radius_factors
            )
    # the prediction (tile px, grid px, lon/lat), its spread, then the truth in the same frames and the errors
    order = [c for c in _TRACKING_ORDER if c in table.columns]
    return table[order + [c for c in table.columns if c not in order]]


_TRACKING_ORDER = (
    "pred_x", "pred_y", "pred_x_global", "pred_y_global", "pred_lon", "pred_lat", "pred_on_grid",
    "spread_px", "radius_50_px", "radius_90_px",
    "target_x", "target_y", "target_x_global", "target_y_global", "target_lon", "target_lat",
    "err_px", "err_km",
)  # fmt: skip


def _inference_confusion_matrix(table: pd.DataFrame, metrics: StageMetrics, path: Path) -> None:
    from medicane_hf.evaluation import plots

    plots.plot_confusion_matrix(metrics.details["confusion_matrix"], metrics.details["class_names"], path)


def _inference_pr_curve(table: pd.DataFrame, metrics: StageMetrics, path: Path) -> None:
    from medicane_hf.evaluation import plots

    names = list(metrics.details["class_names"])
    probability = table[f"prob_{names[positive_class(names)]}"].to_numpy()
    plots.plot_pr_curve(table["label"].to_numpy(), probability, path, positive_class=positive_class(names))


def _inference_tracking_errors(table: pd.DataFrame, metrics: StageMetrics, path: Path) -> None:
    from medicane_hf.evaluation import plots

    plots.plot_tracking_errors(table, path)


# ---------------------------------------------------------------------------------------------- the registry


@dataclass(frozen=True)
class TaskSpec:
    """One training stage."""

    name: str
    script: str
    model_class_name: str
    dataset_kind: str  # a kind of medicane_hf.data.datasets.DATASET_KINDS
    label_columns: tuple[str, ...]  # clip-index columns the targets come from (none: self-supervised)
    metric_for_best_model: str
    greater_is_better: bool
    predictions_fn: Callable[[Any], torch.Tensor] | None
    metrics_fn: MetricsFn | None
    recipe: dict[str, Any]  # argument defaults: the DOMAIN.md recipe
    quick_run: dict[str, Any]  # what the no-argument run changes (short schedule, frequent evaluation)
    # where a backbone size departs from the recipe (its configs/<stage>/<preset>.yaml says the same;
    # tests/test_tasks.py checks every config file against recipe + these)
    preset_recipe: dict[str, dict[str, Any]] = field(default_factory=dict)
    figures: tuple[Figure, ...] = ()
    summary_metrics: tuple[str, ...] = ()  # test metrics a person looks at first (the demo's summary)
    starts_from: str | None = None  # the no-argument run loads this stage's default best model if present
    class_weights: bool = False  # `--class_weights` applies (a classification loss)
    train_mean_baseline: bool = False  # metrics compare with the constant train-mean guess
    # (validation predictions, context, model config) -> config updates: the calibration a run chooses on
    # validation at its end and saves with the best model (threshold, temperature, spread scale)
    calibrate_fn: Callable[[EvalPrediction, MetricContext, Any], dict[str, Any]] | None = None
    # (metric, validation dataset, context) -> why that metric cannot choose the best checkpoint on it (None: it
    # can); the run then chooses on the validation loss and says so
    selection_problem: Callable[[str, Dataset, MetricContext], str | None] | None = None
    # metrics (fnmatch patterns) where lower is better, beside any "*loss": the direction a
    # --metric_for_best_model given without --greater_is_better takes
    lower_is_better: tuple[str, ...] = ()
    inference: InferenceSpec | None = None  # batch inference on new clips (None: the stage has none)
    description: str = ""

    def recipe_for(self, preset: str) -> dict[str, Any]:
        """The recipe of one backbone size, with the best-model choice: what a config file must agree with."""
        return {
            **self.recipe,
            **self.preset_recipe.get(preset, {}),
            "metric_for_best_model": self.metric_for_best_model,
            "greater_is_better": self.greater_is_better,
        }

    def greater_is_better_for(self, metric: str) -> bool:
        """Whether a larger value of validation metric `metric` (with or without ``eval_``) is better."""
        name = metric.removeprefix("eval_")
        if name == self.metric_for_best_model:
            return self.greater_is_better
        if name.endswith("loss"):
            return False
        return not any(fnmatch.fnmatch(name, pattern) for pattern in self.lower_is_better)

    def model_class(self) -> type:
        """The model class (imported on first use: the model module pulls in transformers' models)."""
        import medicane_hf.modeling_medicane as modeling

        return getattr(modeling, self.model_class_name)

    def output_dir(self) -> Path:
        """`outputs/<stage>`, relative to the working directory: where a run with arguments writes."""
        return Path("outputs") / self.name

    def default_output_dir(self, preset: str = "tiny") -> Path:
        """`outputs/<stage>-<preset>-default`: where the no-argument run writes."""
        return Path("outputs") / f"{self.name}-{preset}-default"


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
        dataset_kind="pretraining",
        label_columns=(),
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
            # a 16-px linear patch embedding cannot see a 2-3 px eye; a conv stem inside each patch can
            # (benchmarks/RESULTS.md, section "learning"); checkpoints loaded from elsewhere keep theirs
            "patch_embedding": "conv",
        },
        preset_recipe={
            # 14-px patches do not halve down to one pixel; the giant starts from a converted (linear) checkpoint
            "giant": {"patch_embedding": "linear"},
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
        figures=(Figure("reconstructions.png", _reconstructions),),
        summary_metrics=("test_loss",),
        description="MAE specialization of a VideoMAE v2 encoder on unlabelled clips (dual masking).",
    ),
    "detection": TaskSpec(
        name="detection",
        script="train_classification.py",
        model_class_name="MedicaneVideoMAEForDetection",
        dataset_kind="detection",
        label_columns=("label",),
        metric_for_best_model="balanced_accuracy",
        greater_is_better=True,
        predictions_fn=_logits,
        metrics_fn=detection_metrics,
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
            # the pixels of the last frames, weighted by a per-pixel score that is told where the eye is:
            # held-out ROC AUC 0.96-0.98 where token pooling gave 0.65-0.68 (benchmarks/RESULTS.md, "learning")
            "detection_pooling": "heatmap",
            # the saved threshold maximises the validation Heidke skill score: on the realistic basin FAR 0.68
            # -> 0.55 at validation balanced accuracy 0.85 -> 0.82 (Youden's J buys the last hits of a rare
            # event with many false alarms; docs/skill.md)
            "detection_threshold_rule": "hss",
        },
        quick_run={
            **_QUICK,
            "max_steps": 80,
            "eval_steps": 40,
            "save_steps": 40,
            "learning_rate": 5e-4,
            "scale_lr": False,
        },
        preset_recipe={
            "tiny": {"learning_rate": 1e-3},
            # the old system's rate; it started from a Kinetics-710 fine-tuned giant (docs/training.md)
            "giant": {"learning_rate": 1e-6},
        },
        figures=(Figure("confusion_matrix_test.png", _confusion_matrix, needs="confusion_matrix"),),
        summary_metrics=("test_balanced_accuracy", "test_pod", "test_far", "test_average_precision"),
        calibrate_fn=calibrate_detection,
        selection_problem=detection_selection_problem,
        lower_is_better=("far", "ece"),
        inference=InferenceSpec(
            script="infer_classification.py",
            table_fn=detection_table,
            figures=(
                InferenceFigure("confusion_matrix.png", _inference_confusion_matrix),
                InferenceFigure("pr_curve.png", _inference_pr_curve),
            ),
            summary_metrics=("balanced_accuracy", "pod", "far", "csi", "hss", "average_precision", "ece"),
            # the labels are class ids of the model's classes: a dataset with other classes cannot be scored
            contract_fields=(*INPUT_FIELDS, "class_names"),
        ),
        starts_from="specialization",
        class_weights=True,
        description="Clip classification: is a Medicane in this tile at this hour?",
    ),
    "tracking": TaskSpec(
        name="tracking",
        script="train_tracking.py",
        model_class_name="MedicaneVideoMAEForTracking",
        dataset_kind="tracking",
        label_columns=("target_x", "target_y"),
        metric_for_best_model="median_km",
        greater_is_better=False,
        predictions_fn=_centre_and_spread,
        metrics_fn=tracking_metrics,
        recipe={
            **_COMMON,
            "num_train_epochs": 300,
            "learning_rate": 1e-4,
            "scale_lr": False,
            "lr_scheduler_type": "constant_with_warmup",
            "weight_decay": 0.05,
            "warmup_epochs": 5,
            "drop_path_rate": 0.1,
            # a full-resolution heat map keeps position below a token: 0.2-0.3 px on held-out synthetic
            # storms where the soft arg-max over tokens gave 18 px (benchmarks/RESULTS.md, section "learning")
            "tracking_head": "heatmap",
            # trained as a likelihood and read at its peak: on `realistic` validation (labels ~20 km off the
            # visible centre, hidden eyes, look-alikes) 46 km median where the soft arg-max's MSE gave 259-369 km;
            # on the embedded default 0.6 km (docs/skill.md)
            "tracking_loss": "heatmap",
            "tracking_readout": "peak",
            # the label's own uncertainty, ~15 km per axis: ~4 px on SEVIRI's 3-5 km grid
            "heatmap_target_sigma": 4.0,
            # and the map told of it (forward correction for label noise): the blur takes the labels' scatter,
            # the map sharpens on the eye the frames show. On `realistic` (labels 20 km RMS off the drawn eye)
            # 13.2 -> 7.3 km validation median against the drawn centre (docs/skill.md); not measured on real
            # imagery. Exact labels (the embedded default) want 0: tiny (and so the no-argument run) keeps 0
            "heatmap_label_noise": 4.0,
        },
        preset_recipe={
            # the demo grid's pixels are ~13 km, and the embedded default's labels are the drawn eye itself
            "tiny": {"heatmap_target_sigma": 1.0, "heatmap_label_noise": 0.0},
        },
        quick_run={**_QUICK, "max_steps": 80, "eval_steps": 40, "save_steps": 40, "learning_rate": 5e-4},
        figures=(
            Figure("test_errors.csv", _error_table, needs="errors"),
            Figure("tracking_errors_test.png", _tracking_errors, needs="errors"),
        ),
        summary_metrics=("test_median_km", "test_baseline_median_km", "test_mean_km", "test_p90_km"),
        calibrate_fn=calibrate_tracking,
        lower_is_better=("*_km", "*_px"),
        inference=InferenceSpec(
            script="infer_tracking.py",
            table_fn=tracking_table,
            figures=(InferenceFigure("tracking_errors.png", _inference_tracking_errors),),
            summary_metrics=(
                "median_km",
                "baseline_median_km",
                "mean_km",
                "baseline_mean_km",
                "p90_km",
                "baseline_p90_km",
                "coverage_50",
                "coverage_90",
            ),  # fmt: skip
        ),
        starts_from="specialization",
        train_mean_baseline=True,
        description="Storm-centre regression: (x, y) of the Medicane at the clip's last frame, tile pixels.",
    ),
}


# What a config file may set for its machine and backbone size beside the recipe: paths, batch sizes,
# precision, memory, workers and log frequency. Every other key of a config file is recipe.
RUN_SETTINGS = frozenset(
    {
        "preset",
        "model_name_or_path",
        "output_dir",
        "per_device_train_batch_size",
        "per_device_eval_batch_size",
        "dataloader_num_workers",
        "logging_steps",
        "bf16",
        "activation_checkpointing",
        "train_max_shift",
        "train_rot90",
    }
)


def get_task(name: str) -> TaskSpec:
    """The stage called `name`; a ValueError naming the stages otherwise."""
    try:
        return TASKS[name]
    except KeyError:
        raise ValueError(f"unknown stage {name!r}; the stages are {tuple(TASKS)}") from None
