"""Per-clip arrays of a torch dataset (labels, targets, tile offsets) without reading its pixels.

Training wraps the clip datasets (`torch.utils.data.Subset` for sample limits and oversampling, the
per-sample seeding wrapper for augmentation); these helpers look through any wrapper that exposes the
dataset it wraps as ``.dataset`` (and, like ``Subset``, its rows as ``.indices``), so no wrapper class
needs to be named here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from torch.utils.data import Dataset


def base_and_indices(dataset: Dataset) -> tuple[Any, np.ndarray | None]:
    """The innermost dataset under wrappers and the row numbers into it (None = all rows, in order)."""
    indices: np.ndarray | None = None
    while hasattr(dataset, "dataset"):
        if hasattr(dataset, "indices"):
            rows = np.asarray(dataset.indices)
            indices = rows if indices is None else rows[indices]
        dataset = dataset.dataset
    return dataset, indices


def tile_offsets(dataset: Dataset) -> np.ndarray:
    """[N, 2] tile offsets (x0, y0) in grid pixels of every clip of `dataset`, in dataset order.

    Reads the `x0` / `y0` arrays of a `medicane_hf.data.datasets.ClipVideoDataset` (through wrappers).
    """
    base, rows = base_and_indices(dataset)
    if not (hasattr(base, "x0") and hasattr(base, "y0")):
        raise ValueError(
            f"{type(base).__name__} does not expose the tile offsets (x0, y0) of its clips; "
            "tracking errors in km need them"
        )
    offsets = np.stack([np.asarray(base.x0), np.asarray(base.y0)], axis=1).astype(np.float64)
    return offsets if rows is None else offsets[rows]


def dataset_labels(dataset: Dataset) -> np.ndarray:
    """[N] class ids of a detection dataset: its `labels` array when it has one (no pixels read)."""
    base, rows = base_and_indices(dataset)
    labels = getattr(base, "labels", None)
    if labels is not None:
        labels = np.asarray(labels, dtype=np.int64)
        return labels if rows is None else labels[rows]
    return np.asarray([int(dataset[i]["labels"]) for i in range(len(dataset))], dtype=np.int64)


def dataset_targets(dataset: Dataset) -> np.ndarray:
    """[N, 2] tracking targets (x, y) in tile pixels: the dataset's `targets` array, or read item by item."""
    base, rows = base_and_indices(dataset)
    targets = getattr(base, "targets", None)
    if targets is not None:
        targets = np.asarray(targets, dtype=np.float64).reshape(-1, 2)
        return targets if rows is None else targets[rows]
    return np.stack([np.asarray(dataset[i]["labels"], dtype=np.float64) for i in range(len(dataset))])
