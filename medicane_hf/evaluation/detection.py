"""Detection metrics over a whole evaluation set (DOMAIN.md section 6).

Everything is computed from one global confusion matrix over all clips, never
averaged per batch: call these functions once with every clip of the split
(after ``accelerator.gather_for_metrics``, which drops a distributed sampler's
padding duplicates).

Cyclone-vs-rest scores. The categorical scores (POD, FAR, CSI, HSS, precision,
F1 and the tp/fp/fn/tn counts) are for the cyclone class ``positive_class``
(default 1, medicane) against every other class. In the 3-class variant
(0 background, 1 medicane, 2 neighbouring) the "neighbouring" class is **not a
cyclone**: a medicane clip predicted as neighbouring is a miss (FN), a
neighbouring clip predicted as medicane is a false alarm (FP), and background
and neighbouring confused with each other are correct negatives (TN).

Undefined ratios. A score whose denominator is zero (POD with no cyclone clip,
FAR with no cyclone prediction, HSS on a constant table, average precision
with no cyclone clip, ROC AUC with a single class present) is NaN, never an
exception: NaN says "not measurable on this set", which 0 or 1 would hide.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sklearn.metrics import average_precision_score, roc_auc_score

__all__ = [
    "DEFAULT_CLASS_NAMES",
    "choose_threshold",
    "classes_at_threshold",
    "detection_metrics",
    "detection_metrics_from_logits",
    "scalar_metrics",
    "softmax",
]

DEFAULT_CLASS_NAMES: dict[int, list[str]] = {
    2: ["background", "medicane"],
    3: ["background", "medicane", "neighbouring"],
}
"""Class names used when none are given, by number of classes."""

MetricValue = float | int | list
IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


def _to_numpy(values: Any, name: str) -> np.ndarray:
    """numpy view of an array-like or a torch tensor (any device or dtype, bf16 included)."""
    if hasattr(values, "detach"):  # a torch tensor; avoid importing torch for numpy users
        values = values.detach().float().cpu().numpy() if values.is_floating_point() else values.cpu().numpy()
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name}: cannot convert {type(values).__name__} to an array ({err})") from err


def _as_class_ids(values: Any, name: str) -> IntArray:
    """1-D integer class ids; bools and whole-number floats are accepted."""
    arr = _to_numpy(values, name)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D [N], got shape {arr.shape}")
    if arr.dtype == np.bool_:
        arr = arr.astype(np.int64)
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{name} must hold integer class ids, got dtype {arr.dtype}")
    if not np.issubdtype(arr.dtype, np.integer):
        bad = np.flatnonzero(~np.isfinite(arr) | (arr != np.round(arr)))
        if bad.size:
            raise ValueError(f"{name} must hold integer class ids; row {int(bad[0])} is {arr[bad[0]]!r}")
    if arr.size and arr.min() < 0:
        row = int(np.argmin(arr))
        raise ValueError(f"{name} must hold class ids >= 0; row {row} is {arr[row]}")
    return arr.astype(np.int64)


def softmax(logits: npt.ArrayLike, axis: int = -1) -> FloatArray:
    """Numerically stable softmax along ``axis`` (float64)."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - np.max(z, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


def _ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator, NaN when the denominator is zero."""
    return float(numerator) / float(denominator) if denominator != 0 else math.nan


def _confusion_matrix(labels: IntArray, predictions: IntArray, num_classes: int) -> IntArray:
    """[num_classes, num_classes] counts, rows = true class, columns = predicted class."""
    flat = labels * num_classes + predictions
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def _cyclone_scores(tp: int, fp: int, fn: int, tn: int) -> dict[str, float]:
    """Categorical verification scores of the 2x2 cyclone-vs-rest table."""
    pod = _ratio(tp, tp + fn)
    precision = _ratio(tp, tp + fp)
    # Heidke: 2(ad - bc) / [(a + c)(c + d) + (a + b)(b + d)], a = hits, b = false alarms, c = misses
    hss_den = (tp + fn) * (fn + tn) + (tp + fp) * (fp + tn)
    return {
        "pod": pod,
        "far": _ratio(fp, tp + fp),
        "csi": _ratio(tp, tp + fp + fn),
        "hss": _ratio(2.0 * (tp * tn - fp * fn), hss_den),
        "precision": precision,
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }


def _cyclone_probability(scores: Any, n: int, num_classes: int, positive_class: int) -> FloatArray:
    """Probability (or any monotone score) of the cyclone class, [N].

    ``scores`` is either [N] (already a probability or score of the cyclone class)
    or [N, C] logits, turned into probabilities with a softmax over C.
    """
    arr = _to_numpy(scores, "scores").astype(np.float64)
    if arr.ndim == 2:
        if arr.shape[1] != num_classes:
            raise ValueError(f"scores: logits have {arr.shape[1]} classes but num_classes is {num_classes}")
        arr = softmax(arr, axis=1)[:, positive_class]
    elif arr.ndim != 1:
        raise ValueError(f"scores must be [N] cyclone probabilities or [N, C] logits, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"scores has {arr.shape[0]} rows but labels has {n}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"scores: row {int(np.flatnonzero(~np.isfinite(arr))[0])} is not finite")
    return arr


def _ranking_scores(is_cyclone: npt.NDArray[np.bool_], probability: FloatArray) -> dict[str, float]:
    """Area under the precision-recall curve (step-wise average precision) and ROC AUC; NaN if undefined."""
    n_pos = int(is_cyclone.sum())
    n_neg = int(is_cyclone.size - n_pos)
    ap = float(average_precision_score(is_cyclone, probability)) if n_pos > 0 else math.nan
    auc = float(roc_auc_score(is_cyclone, probability)) if n_pos > 0 and n_neg > 0 else math.nan
    return {"average_precision": ap, "roc_auc": auc}


def _predictions_from_scores(scores: Any, positive_class: int, threshold: float) -> IntArray:
    """Class ids from scores: argmax of [N, C] logits, or ``positive_class`` where an [N] probability >= threshold."""
    arr = _to_numpy(scores, "scores")
    if arr.ndim == 2:
        return np.argmax(arr, axis=1).astype(np.int64)
    if arr.ndim == 1:
        negative_class = 1 if positive_class == 0 else 0
        return np.where(arr.astype(np.float64) >= threshold, positive_class, negative_class).astype(np.int64)
    raise ValueError(f"scores must be [N] cyclone probabilities or [N, C] logits, got shape {arr.shape}")


def _resolve_num_classes(
    num_classes: int | None, labels: IntArray, predictions: IntArray, scores: Any, positive_class: int
) -> int:
    """The given ``num_classes`` (checked against the data), or the smallest one that fits it (at least 2)."""
    seen = max(int(labels.max(initial=0)), int(predictions.max(initial=0)), positive_class) + 1
    if scores is not None:
        shape = np.shape(scores)
        if len(shape) == 2:
            seen = max(seen, shape[1])
    if num_classes is None:
        return max(2, seen)
    if num_classes < 2:
        raise ValueError(f"num_classes must be >= 2, got {num_classes}")
    for name, arr in (("labels", labels), ("predictions", predictions)):
        if arr.size and arr.max() >= num_classes:
            row = int(np.argmax(arr))
            raise ValueError(f"{name}: row {row} holds class {arr[row]} but num_classes is {num_classes}")
    if positive_class >= num_classes:
        raise ValueError(f"positive_class {positive_class} is not below num_classes {num_classes}")
    return num_classes


def _class_names(class_names: Sequence[str] | None, num_classes: int) -> list[str]:
    if class_names is None:
        return DEFAULT_CLASS_NAMES.get(num_classes, [f"class_{i}" for i in range(num_classes)])
    names = [str(n) for n in class_names]
    if len(names) != num_classes:
        raise ValueError(f"class_names has {len(names)} names for {num_classes} classes: {names}")
    return names


def detection_metrics(
    labels: npt.ArrayLike,
    predictions: npt.ArrayLike | None = None,
    scores: npt.ArrayLike | None = None,
    *,
    positive_class: int = 1,
    num_classes: int | None = None,
    class_names: Sequence[str] | None = None,
    threshold: float = 0.5,
) -> dict[str, MetricValue]:
    """Detection scores of one whole evaluation set.

    Args:
        labels: [N] true class ids (0 background, 1 medicane, 2 neighbouring).
        predictions: [N] predicted class ids. When None they come from ``scores``:
            argmax of [N, C] logits, or ``positive_class`` where an [N] probability
            >= ``threshold`` (else class 0, or 1 when ``positive_class`` is 0).
        scores: optional [N] probability (any monotone score) of the cyclone class,
            or [N, C] logits (softmax over C, then the ``positive_class`` column).
            Enables ``average_precision`` and ``roc_auc``.
        positive_class: the cyclone class for the cyclone-vs-rest scores.
        num_classes: size of the confusion matrix; default: the smallest that holds
            every label, prediction and logit column (at least 2).
        class_names: one name per class; default background / medicane (/ neighbouring).
        threshold: probability threshold used only when predictions come from [N] scores.

    Returns:
        ``confusion_matrix`` (list of lists of int, rows = true, columns = predicted),
        ``class_names``, ``num_samples``, ``accuracy``, ``balanced_accuracy`` (mean
        recall over the classes present in ``labels``), ``recall_<class name>`` for
        every class, cyclone-vs-rest ``pod``, ``far``, ``csi``, ``hss``, ``precision``,
        ``f1`` and counts ``tp``, ``fp``, ``fn``, ``tn``; with scores also
        ``average_precision`` (step-wise area under the precision-recall curve, as
        sklearn's ``average_precision_score``) and ``roc_auc``. Undefined ratios are NaN.

    Raises:
        ValueError: shape mismatch, non-integer or negative class ids, ids beyond
            ``num_classes``, non-finite scores, or neither predictions nor scores.
    """
    y_true = _as_class_ids(labels, "labels")
    if predictions is None:
        if scores is None:
            raise ValueError("detection_metrics needs predictions or scores (or both)")
        y_pred = _predictions_from_scores(scores, positive_class, threshold)
    else:
        y_pred = _as_class_ids(predictions, "predictions")
    if y_pred.shape != y_true.shape:
        raise ValueError(f"predictions has {y_pred.shape[0]} rows but labels has {y_true.shape[0]}")
    if positive_class < 0:
        raise ValueError(f"positive_class must be >= 0, got {positive_class}")

    k = _resolve_num_classes(num_classes, y_true, y_pred, scores, positive_class)
    names = _class_names(class_names, k)
    cm = _confusion_matrix(y_true, y_pred, k)
    n = int(cm.sum())

    support = cm.sum(axis=1)
    recalls = [_ratio(cm[i, i], support[i]) for i in range(k)]
    present = [r for r, s in zip(recalls, support) if s > 0]

    tp = int(cm[positive_class, positive_class])
    fn = int(support[positive_class]) - tp
    fp = int(cm[:, positive_class].sum()) - tp
    tn = n - tp - fn - fp

    metrics: dict[str, MetricValue] = {
        "confusion_matrix": cm.tolist(),
        "class_names": names,
        "num_samples": n,
        "accuracy": _ratio(np.trace(cm), n),
        "balanced_accuracy": float(np.mean(present)) if present else math.nan,
    }
    metrics.update({f"recall_{name}": r for name, r in zip(names, recalls)})
    metrics.update(_cyclone_scores(tp, fp, fn, tn))
    metrics.update({"tp": tp, "fp": fp, "fn": fn, "tn": tn})
    if scores is not None:
        probability = _cyclone_probability(scores, n, k, positive_class)
        metrics.update(_ranking_scores(y_true == positive_class, probability))
    return metrics


def detection_metrics_from_logits(
    logits: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    positive_class: int = 1,
    class_names: Sequence[str] | None = None,
    temperature: float = 1.0,
    threshold: float | None = None,
) -> dict[str, MetricValue]:
    """``detection_metrics`` for a classifier's raw output: scores = ``softmax(logits / temperature)``.

    Args:
        logits: [N, C] unnormalised class scores (numpy array or torch tensor, any dtype).
        labels: [N] true class ids.
        temperature: the calibration temperature (a model's ``config.detection_temperature``).
        threshold: None: predictions are the arg-max; else `classes_at_threshold` of the calibrated
            probabilities (a model's ``config.detection_threshold``, chosen on validation).

    Returns:
        The dict of ``detection_metrics`` with ``num_classes`` = C, including
        ``average_precision``, ``roc_auc`` and ``ece`` (expected calibration error of the
        calibrated cyclone probability, 10 bins).
    """
    from medicane_hf.evaluation.calibration import expected_calibration_error

    arr = _to_numpy(logits, "logits")
    if arr.ndim != 2:
        raise ValueError(f"logits must be [N, C], got shape {arr.shape}")
    scaled = arr / float(temperature)
    probability = softmax(scaled, axis=1)
    predictions = classes_at_threshold(probability, threshold, positive_class)
    metrics = detection_metrics(
        labels,
        predictions,
        scaled,
        positive_class=positive_class,
        num_classes=arr.shape[1],
        class_names=class_names,
    )
    is_cyclone = _as_class_ids(labels, "labels") == positive_class
    metrics["ece"] = expected_calibration_error(probability[:, positive_class], is_cyclone)
    return metrics


def classes_at_threshold(
    probability: npt.ArrayLike, threshold: float | None, positive_class: int = 1
) -> IntArray:
    """Class ids ``[N]`` from probabilities ``[N, C]``: ``positive_class`` where its probability reaches
    ``threshold``, else the most probable of the other classes; the arg-max when ``threshold`` is None (a model
    without a chosen threshold). The one rule the metrics and the inference tables count classes by."""
    p = np.asarray(probability, dtype=np.float64)
    if threshold is None:
        return np.argmax(p, axis=1).astype(np.int64)
    others = p.copy()
    others[:, positive_class] = -np.inf
    return np.where(p[:, positive_class] >= threshold, positive_class, np.argmax(others, axis=1)).astype(
        np.int64
    )


def scalar_metrics(metrics: dict[str, Any], prefix: str = "") -> dict[str, float]:
    """Only the numbers of a metrics dict, for loggers that take scalars (Trainer, TensorBoard).

    The confusion matrix becomes ``cm_<true>_<pred>`` entries (class indices);
    other lists (class names) are dropped.
    """
    out: dict[str, float] = {}
    for key, value in metrics.items():
        if key == "confusion_matrix":
            for i, row in enumerate(value):
                for j, count in enumerate(row):
                    out[f"{prefix}cm_{i}_{j}"] = float(count)
        elif isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool):
            out[f"{prefix}{key}"] = float(value)
    return out


def choose_threshold(
    labels: npt.ArrayLike, probability: npt.ArrayLike, rule: str = "balanced_accuracy"
) -> float:
    """The probability threshold that maximises `rule`'s score on a labelled set.

    Choose it on validation and apply it unchanged to other sets (never choose it on the test split).

    Args:
        labels: [N] booleans or 0/1, True = cyclone.
        probability: [N] cyclone probability (any monotone score).
        rule: a key of `DETECTION_THRESHOLD_RULES`: ``"balanced_accuracy"`` (Youden's J / the Peirce skill
            score, POD minus the false alarm rate: blind to how rare the event is, it buys a rare event's last
            few hits with many false alarms) or ``"hss"`` (the Heidke skill score, which weighs misses and false
            alarms against the chance table: a rare event's threshold sits higher, fewer false alarms for a few
            more misses).

    Returns:
        A threshold t: predict cyclone where ``probability >= t``. Between two observed scores it is their
        midpoint, so a tie on the validation set does not decide the test set. Of equal scores the highest
        threshold wins.

    Raises:
        ValueError: when ``labels`` hold only one class (no threshold is defined), or for an unknown rule.
    """
    from sklearn.metrics import roc_curve

    # the rules are the model config's choices; imported here so that the metrics do not load transformers
    from medicane_hf.configuration_medicane import DETECTION_THRESHOLD_RULES

    if rule not in DETECTION_THRESHOLD_RULES:
        raise ValueError(
            f"detection threshold rule {rule!r}: expected one of {', '.join(DETECTION_THRESHOLD_RULES)}"
        )
    y = np.asarray(labels).astype(bool)
    p = _to_numpy(probability, "probability").astype(np.float64)
    if y.all() or not y.any():
        raise ValueError("choose_threshold needs both classes in labels")
    # every distinct score is a candidate (no dropped points: the Heidke maximum need not be on the ROC hull)
    fpr, tpr, thresholds = roc_curve(y, p, drop_intermediate=False)
    if rule == "balanced_accuracy":
        score = tpr - fpr
    else:  # the scores' own Heidke formula, per candidate (undefined, NaN, never wins)
        positives, negatives = int(y.sum()), int((~y).sum())
        hits, false_alarms = np.rint(tpr * positives).astype(int), np.rint(fpr * negatives).astype(int)
        score = np.array(
            [_cyclone_scores(a, b, positives - a, negatives - b)["hss"] for a, b in zip(hits, false_alarms)]
        )
        score = np.nan_to_num(score, nan=-np.inf)
    best = int(np.argmax(score))
    if best == 0:  # sklearn's first threshold is +inf: predict nothing
        return float(thresholds[1])
    below = p[p < thresholds[best]]
    return float((thresholds[best] + below.max()) / 2) if below.size else float(thresholds[best])
