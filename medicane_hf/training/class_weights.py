"""`--class_weights`: per-class loss weights of a classification stage (see `TaskSpec.class_weights`)."""

from __future__ import annotations

import numpy as np
from torch.utils.data import Dataset

from medicane_hf.data.dataset_arrays import dataset_labels


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
