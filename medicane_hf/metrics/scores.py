"""The detection and tracking scores of the `evaluate` modules, from plain arrays.

Each function checks the shapes (one line naming the input when they are wrong), then calls the stage's own
metric function of `medicane_hf.tasks` (`TaskSpec.metrics_fn`: the one training and batch inference use), so an
`evaluate` module gives exactly the figures of ``metrics.json`` / ``test_metrics.json`` for the same predictions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from transformers.trainer_utils import EvalPrediction

from medicane_hf.data.geo import SeviriGrid
from medicane_hf.tasks import MetricContext, detection_metrics, tracking_metrics

Sized = Sequence[Any] | np.ndarray  # a list, tuple or array with one entry per clip

# the metric modules' citation (each evaluate script imports it: one copy)
CITATION = """\
@article{tong2022videomae,
  title={VideoMAE: Masked Autoencoders are Data-Efficient Learners for Self-Supervised Video Pre-Training},
  author={Tong, Zhan and Song, Yibing and Wang, Jue and Wang, Limin},
  journal={Advances in Neural Information Processing Systems},
  year={2022}
}
"""


def _matrix(values: Any, name: str, widths: Sequence[int], what: str) -> np.ndarray:
    """`values` as a float64 ``[N, width]`` array with a width of `widths`, else one line saying what it is."""
    rows = [np.asarray(row, dtype=np.float64).reshape(-1) for row in values]
    lengths = sorted({len(row) for row in rows})
    if len(lengths) > 1:
        first = next(i for i, row in enumerate(rows) if len(row) != len(rows[0]))
        raise ValueError(f"{name}: row {first} holds {len(rows[first])} values, row 0 {len(rows[0])}; {what}")
    if rows and lengths[0] not in widths:
        raise ValueError(f"{name}: rows of {lengths[0]} values; {what}")
    return np.stack(rows) if rows else np.zeros((0, widths[0]))


def _same_length(**arrays: Sized) -> None:
    lengths = {name: len(values) for name, values in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError("inputs of different lengths: " + ", ".join(f"{k} {v}" for k, v in lengths.items()))


def detection_scores(
    predictions: Sized,
    references: Sized,
    *,
    class_names: Sequence[str] | None = None,
    temperature: float = 1.0,
    threshold: float | None = None,
) -> dict[str, float]:
    """The detection metrics of training and inference (`medicane_hf.tasks.detection_metrics`).

    Args:
        predictions: ``[N, C]`` logits (one row of C class scores per clip, before softmax).
        references: ``[N]`` true class ids (0 background, 1 medicane [, 2 neighbouring]).
        class_names: one per class (default: background, medicane; the model's ``config.id2label``).
        temperature: softmax temperature (the model's ``config.detection_temperature``).
        threshold: Medicane probability from which a clip is a Medicane (``config.detection_threshold``);
            None: the arg-max class.

    Returns:
        accuracy, balanced_accuracy, recall_<class>, pod, far, csi, hss, precision, f1, tp, fp, fn, tn,
        average_precision, roc_auc, ece, num_samples and the confusion matrix as ``cm_<true>_<pred>``.
    """
    _same_length(predictions=predictions, references=references)
    names = list(class_names) if class_names is not None else ["background", "medicane"]
    logits = _matrix(
        predictions, "predictions", [len(names)], f"expected {len(names)} logits per clip ({names})"
    )
    labels = np.asarray(references)
    if labels.ndim != 1:
        raise ValueError(f"references: expected one class id per clip, got shape {labels.shape}")
    if labels.size and not np.array_equal(labels, np.round(labels.astype(np.float64))):
        raise ValueError(f"references: class ids must be whole numbers, got {labels[:5].tolist()}")
    context = MetricContext(
        class_names=names, detection_temperature=temperature, detection_threshold=threshold
    )
    return detection_metrics(EvalPrediction(predictions=logits, label_ids=labels), None, context).scalars


@dataclass(frozen=True)
class TileOffsets:
    """The clips' tile offsets in grid pixels, as `medicane_hf.data.dataset_arrays.tile_offsets` reads them."""

    x0: np.ndarray
    y0: np.ndarray


def tracking_scores(
    predictions: Sized,
    references: Sized,
    x0: Sized,
    y0: Sized,
    *,
    grid: SeviriGrid | Mapping[str, Any],
    baseline_xy: npt.ArrayLike | None = None,
    radius_factors: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """The tracking metrics of training and inference (`medicane_hf.tasks.tracking_metrics`).

    Args:
        predictions: ``[N, 2]`` predicted centre (x, y) in tile pixels, or ``[N, 3]`` with the centre spread
            (sigma, px) as third value (the heat-map head's ``centre_spread``).
        references: ``[N, 2]`` true centre (x, y) in tile pixels.
        x0, y0: ``[N]`` each clip's tile offset in grid pixels (the clip index's ``x0`` / ``y0``).
        grid: the frames' pixel grid (``SeviriGrid`` or its ``to_dict()``, e.g. a model's ``config.grid``):
            what turns pixels into km.
        baseline_xy: ``[2]`` a constant guess (the train split's mean centre) measured beside the model.
        radius_factors: ``{"0.5": f, "0.9": f}``, the 50 % / 90 % radius per unit of spread (a model's
            ``config.tracking_radius_factors``, chosen on validation); None: the Gaussian's.

    Returns:
        count, mean / median / rms / p90 of the centre error in km and px, nonfinite_km / nonfinite_px; with a
        spread coverage_50, coverage_90, median_spread_px; with a baseline baseline_<statistic>.
    """
    _same_length(predictions=predictions, references=references, x0=x0, y0=y0)
    centre = _matrix(predictions, "predictions", [2, 3], "expected (x, y) or (x, y, spread) per clip")
    target = _matrix(references, "references", [2], "expected the true centre (x, y) per clip")
    if not isinstance(grid, SeviriGrid):
        grid = SeviriGrid.from_dict(dict(grid))
    baseline = None
    if baseline_xy is not None:
        baseline = np.asarray(baseline_xy, dtype=np.float64)
        if baseline.shape != (2,):
            raise ValueError(f"baseline_xy: expected one centre (x, y), got shape {baseline.shape}")
    offsets = TileOffsets(np.asarray(x0, dtype=np.float64), np.asarray(y0, dtype=np.float64))
    factors = None if radius_factors is None else {str(k): float(v) for k, v in dict(radius_factors).items()}
    context = MetricContext(grid=grid, baseline_xy=baseline, tracking_radius_factors=factors)
    return tracking_metrics(EvalPrediction(predictions=centre, label_ids=target), offsets, context).scalars
