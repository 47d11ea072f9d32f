"""The clip index: labelled tile-clips and unlabelled pretraining windows as a ``datasets.DatasetDict``.

``build_clip_index`` puts ``clips`` (windows, continuity, labels, targets) and ``splits``
together. The result has four splits:

- ``train``, ``validation``, ``test``: one row per (clip ending on the hour, tile), columns
  ``LABELLED_FEATURES`` (see docs/DESIGN.md);
- ``pretrain``: unlabelled windows of ``num_frames`` consecutive frames starting every
  ``pretrain_stride`` frames (any minute), in train blocks only, stored per window without a
  tile (the pretraining dataset picks the tile or crop when it samples), columns
  ``PRETRAIN_FEATURES``.

Frames without a track file (``build_unlabelled_index``, ``medicane-hf build-dataset --no-tracks``) give an
index with one split, ``unlabelled``: every tile of every complete clip ending on the hour, columns
``UNLABELLED_FEATURES`` (no label, target or split: nothing is known about them, and nothing claims it). Batch
inference predicts them; training refuses such a folder.

Counts of skipped clips are in tile-clips (one clip time x one tile) for the labelled splits,
in windows for ``pretrain``. Normalisation statistics (``compute_normalization``) come from
frames of train clips only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import datasets
import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
from tqdm.auto import tqdm

from medicane_hf.data.clips import (
    ClipSettings,
    ClipWindows,
    TileLayout,
    assemble_windows,
    candidate_end_times,
    candidate_start_times,
    label_tiles,
    storm_pixel_positions,
)
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.splits import SPLITS, SplitPlan, SplitSettings, assign_clip_splits, plan_splits

__all__ = [
    "INDEX_SPLITS",
    "LABELLED_FEATURES",
    "PRETRAIN_FEATURES",
    "UNLABELLED_FEATURES",
    "UNLABELLED_SPLIT",
    "ClipIndex",
    "TimedStore",
    "UnlabelledIndex",
    "build_clip_index",
    "build_unlabelled_index",
    "compute_normalization",
    "export_index",
    "frame_index_array",
    "load_index",
    "save_index",
]

INDEX_SPLITS = (*SPLITS, "pretrain")

LABELLED_FEATURES = datasets.Features(
    {
        "clip_id": datasets.Value("string"),
        "end_time": datasets.Value("timestamp[ns]"),
        "x0": datasets.Value("int32"),
        "y0": datasets.Value("int32"),
        "tile_row": datasets.Value("int32"),
        "tile_col": datasets.Value("int32"),
        "frame_indices": datasets.List(datasets.Value("int64")),
        "n_filled": datasets.Value("int32"),
        "n_positive_frames": datasets.Value("int32"),
        "label": datasets.Value("int64"),
        "storm_id": datasets.Value("string"),
        "n_storms": datasets.Value("int32"),
        "has_target": datasets.Value("bool"),
        "target_x": datasets.Value("float64"),
        "target_y": datasets.Value("float64"),
        "target_lat": datasets.Value("float64"),
        "target_lon": datasets.Value("float64"),
        "split": datasets.Value("string"),
    }
)
UNLABELLED_SPLIT = "unlabelled"
# what a clip is, before anything is known of what it shows: the first columns of LABELLED_FEATURES
_CLIP_COLUMNS = ("clip_id", "end_time", "x0", "y0", "tile_row", "tile_col", "frame_indices", "n_filled")
UNLABELLED_FEATURES = datasets.Features({name: LABELLED_FEATURES[name] for name in _CLIP_COLUMNS})
"""The clip columns of an index built without tracks: the first columns of ``LABELLED_FEATURES``, no labels."""
PRETRAIN_FEATURES = datasets.Features(
    {
        "window_id": datasets.Value("string"),
        "start_time": datasets.Value("timestamp[ns]"),
        "frame_indices": datasets.List(datasets.Value("int64")),
        "n_filled": datasets.Value("int32"),
    }
)


class TimedStore(Protocol):
    """What the index needs from a frame store: sorted frame times and a validity flag per frame."""

    times: np.ndarray
    valid: np.ndarray


@dataclass
class ClipIndex:
    """A built index with the figures a user wants to see.

    Attributes:
        index: the DatasetDict (``INDEX_SPLITS``).
        plan: storm groups and their splits.
        candidate_clips: tile-clips considered (clip times x tiles).
        skipped: tile-clips skipped, by reason (``missing_frames``, ``invalid_frames``, ``split_boundary``).
        filled_clips: kept tile-clips with at least one filled frame.
        pretrain_candidates, pretrain_skipped: the same for pretraining windows.
        num_classes: 2, or 3 with the neighbouring class; ``counts`` lists every class.
    """

    index: datasets.DatasetDict
    plan: SplitPlan
    candidate_clips: int
    skipped: dict[str, int]
    filled_clips: int
    pretrain_candidates: int
    pretrain_skipped: dict[str, int] = field(default_factory=dict)
    num_classes: int = 2

    def counts(self) -> dict[str, dict[str, int]]:
        """Split -> {"clips", "label_<k>" ..., "has_target"} (pretrain: {"windows"})."""
        out: dict[str, dict[str, int]] = {}
        for name in SPLITS:
            ds = self.index[name]
            labels = np.asarray(ds["label"], dtype=np.int64) if len(ds) else np.zeros(0, np.int64)
            has_target = np.asarray(ds["has_target"], dtype=bool) if len(ds) else np.zeros(0, bool)
            row = {"clips": len(ds)}
            # every class, even an absent one: readers of dataset_info.json index label_<k> directly
            for k, n in enumerate(np.bincount(labels, minlength=self.num_classes)):
                row[f"label_{k}"] = int(n)
            row["has_target"] = int(has_target.sum())
            out[name] = row
        out["pretrain"] = {"windows": len(self.index["pretrain"])}
        return out


@dataclass
class UnlabelledIndex:
    """An index of frames without tracks: one ``unlabelled`` split of clips, with the figures of the build.

    Attributes:
        index: the DatasetDict (only ``UNLABELLED_SPLIT``, columns ``UNLABELLED_FEATURES``).
        candidate_clips: tile-clips considered (clip times x tiles).
        skipped: tile-clips skipped, by reason (``no_frames``, ``missing_frames``, ``invalid_frames``).
        filled_clips: kept tile-clips with at least one filled frame.
    """

    index: datasets.DatasetDict
    candidate_clips: int
    skipped: dict[str, int]
    filled_clips: int

    def counts(self) -> dict[str, dict[str, int]]:
        """``{"unlabelled": {"clips": n}}``."""
        return {UNLABELLED_SPLIT: {"clips": len(self.index[UNLABELLED_SPLIT])}}


def _format_time(ns: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    return pd.DatetimeIndex(ns.astype("datetime64[ns]")).strftime("%Y%m%d_%H%M").to_numpy(dtype=object)


def _skip_counts(reasons: npt.NDArray[np.object_], per_clip: int) -> dict[str, int]:
    values, counts = np.unique(reasons[reasons != ""].astype(str), return_counts=True)
    return {str(v): int(c) * per_clip for v, c in zip(values, counts)}


def _labelled_table(
    windows: ClipWindows,
    split: npt.NDArray[np.object_],
    labels: dict[str, np.ndarray],
    offsets: list[tuple[int, int]],
    tile_shape: tuple[int, int],
) -> pd.DataFrame:
    """One row per (clip, tile), clip-major then tile row-major."""
    n_clips, n_tiles = len(windows), len(offsets)
    offs = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
    clip = np.repeat(np.arange(n_clips), n_tiles)
    tile = np.tile(np.arange(n_tiles), n_clips)
    end_ns = windows.end_times.astype(np.int64)
    x0, y0 = offs[tile, 0], offs[tile, 1]
    stamp = _format_time(end_ns)[clip] if n_clips else np.zeros(0, dtype=object)
    clip_id = [f"{s}_{a}_{b}" for s, a, b in zip(stamp, x0, y0)]
    table = pd.DataFrame(
        {
            "clip_id": clip_id,
            "end_time": end_ns[clip].astype("datetime64[ns]"),
            "x0": x0,
            "y0": y0,
            "tile_row": tile // tile_shape[1],
            "tile_col": tile % tile_shape[1],
            "frame_indices": list(windows.frame_indices[clip]),
            "n_filled": windows.n_filled[clip],
        }
    )
    for key, values in labels.items():
        table[key] = values.reshape(-1)
    table["split"] = split[clip] if n_clips else np.zeros(0, dtype=object)
    return table


def _to_dataset(table: pd.DataFrame, features: datasets.Features) -> datasets.Dataset:
    """Columns -> Arrow directly (``Dataset.from_dict`` encodes row by row: 30 s for a year)."""
    arrays = []
    for name in features:
        if name == "frame_indices":
            rows = table[name].to_list()
            flat = np.concatenate(rows).astype(np.int64) if rows else np.zeros(0, np.int64)
            offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
            arrays.append(pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat)))
        else:
            arrays.append(pa.array(table[name].to_numpy()))
    arrow = pa.Table.from_arrays(arrays, names=list(features)).cast(features.arrow_schema)
    return datasets.Dataset(arrow, info=datasets.DatasetInfo(features=features))


def _pretrain_windows(
    times: np.ndarray, valid: np.ndarray, plan: SplitPlan, settings: ClipSettings, stride: int
) -> tuple[pd.DataFrame, int, dict[str, int]]:
    starts = candidate_start_times(times, settings, stride)
    windows = assemble_windows(times, valid, starts, settings, anchor="start")
    codes = plan.split_codes(windows.expected_times)
    not_train = (codes != 0).any(axis=1) if len(windows) else np.zeros(0, bool)
    reasons = windows.skip_reason.copy()
    reasons[(reasons == "") & not_train] = "not_train_time"
    kept = windows.subset(reasons == "")
    start_ns = kept.expected_times[:, 0].astype(np.int64) if len(kept) else np.zeros(0, np.int64)
    table = pd.DataFrame(
        {
            "window_id": _format_time(start_ns),
            "start_time": start_ns.astype("datetime64[ns]"),
            "frame_indices": list(kept.frame_indices),
            "n_filled": kept.n_filled,
        }
    )
    return table, len(windows), _skip_counts(reasons, 1)


def build_clip_index(
    store: TimedStore,
    tracks: pd.DataFrame,
    grid: SeviriGrid,
    layout: TileLayout,
    settings: ClipSettings,
    split_settings: SplitSettings,
    *,
    pretrain_stride: int = 4,
) -> ClipIndex:
    """Windows, continuity, splits and labels for every clip time and tile of ``store``.

    Args:
        store: anything with sorted ``times`` (datetime64 [N]) and ``valid`` (bool [N]).
        tracks: tidy table from ``read_tracks``.
        grid: the pixel grid of the store's frames.
        layout: tiles.
        settings: clip and label rules.
        split_settings: how storms are split.
        pretrain_stride: frames between the starts of two pretraining windows.

    Returns:
        ``ClipIndex`` (the DatasetDict plus counts).
    """
    times = np.asarray(store.times, dtype="datetime64[ns]")
    valid = np.asarray(store.valid, dtype=bool)
    offsets = layout.offsets(grid.width, grid.height)
    tile_shape = layout.shape(grid.width, grid.height)
    period = (times[0], times[-1]) if len(times) else None
    plan = plan_splits(tracks, split_settings, margin=settings.span, period=period)

    windows = assemble_windows(times, valid, candidate_end_times(times, settings), settings)
    split, boundary = assign_clip_splits(plan, windows.expected_times)
    reasons = windows.skip_reason.copy()
    reasons[(reasons == "") & boundary] = "split_boundary"
    keep = reasons == ""
    kept = windows.subset(keep)

    positions = storm_pixel_positions(
        tracks, np.unique(kept.expected_times), grid, settings.time_rule, max_gap=settings.max_track_gap
    )
    labels = label_tiles(kept.expected_times, positions, offsets, tile_shape, settings, layout.tile_size)
    table = _labelled_table(kept, split[keep], labels, offsets, tile_shape)

    pretrain, pretrain_candidates, pretrain_skipped = _pretrain_windows(
        times, valid, plan, settings, pretrain_stride
    )
    parts = {name: _to_dataset(table[table["split"] == name], LABELLED_FEATURES) for name in SPLITS}
    parts["pretrain"] = _to_dataset(pretrain, PRETRAIN_FEATURES)
    return ClipIndex(
        index=datasets.DatasetDict(parts),
        plan=plan,
        candidate_clips=len(windows) * len(offsets),
        skipped=_skip_counts(reasons, len(offsets)),
        filled_clips=int((kept.n_filled > 0).sum()) * len(offsets),
        pretrain_candidates=pretrain_candidates,
        pretrain_skipped=pretrain_skipped,
        num_classes=settings.num_classes,
    )


def build_unlabelled_index(
    store: TimedStore, grid: SeviriGrid, layout: TileLayout, settings: ClipSettings
) -> UnlabelledIndex:
    """Every tile of every clip ending at minute ``settings.end_minute`` whose frames pass the continuity rule.

    The clip windows, continuity rule, clip ids and row order (clip time, then tile row-major) are those of
    `build_clip_index`; no track is read, so there are no labels, targets, splits or pretraining windows.

    Args:
        store: anything with sorted ``times`` (datetime64 [N]) and ``valid`` (bool [N]).
        grid: the pixel grid of the store's frames.
        layout: tiles.
        settings: ``num_frames``, ``frame_interval_minutes``, ``end_minute`` and ``max_missing_frames`` are used.
    """
    times = np.asarray(store.times, dtype="datetime64[ns]")
    valid = np.asarray(store.valid, dtype=bool)
    offsets = layout.offsets(grid.width, grid.height)
    tile_shape = layout.shape(grid.width, grid.height)
    windows = assemble_windows(times, valid, candidate_end_times(times, settings), settings)
    kept = windows.subset(windows.keep)
    table = _labelled_table(kept, np.full(len(kept), UNLABELLED_SPLIT, dtype=object), {}, offsets, tile_shape)
    return UnlabelledIndex(
        index=datasets.DatasetDict({UNLABELLED_SPLIT: _to_dataset(table, UNLABELLED_FEATURES)}),
        candidate_clips=len(windows) * len(offsets),
        skipped=_skip_counts(windows.skip_reason, len(offsets)),
        filled_clips=int((kept.n_filled > 0).sum()) * len(offsets),
    )


# ---- frame indices, normalisation ---------------------------------------------------------


def frame_index_array(split: datasets.Dataset) -> npt.NDArray[np.int64]:
    """The ``frame_indices`` column as an int64 array [n, T] (fast: straight from Arrow)."""
    if len(split) == 0:
        return np.zeros((0, 0), np.int64)
    # through the arrow formatter so that a select()/filter() view gives its own rows, not the backing table's
    column = split.with_format("arrow")[:]["frame_indices"].combine_chunks()
    lengths = np.diff(column.offsets.to_numpy())
    if not np.all(lengths == lengths[0]):
        raise ValueError("frame_indices rows differ in length: the index is corrupt")
    return column.flatten().to_numpy().astype(np.int64).reshape(len(split), int(lengths[0]))


def compute_normalization(
    store: Any, frame_indices: Any, *, max_frames: int = 200, seed: int = 0, progress: bool = True
) -> dict[str, Any]:
    """Per-channel mean and std in 0..1 units over (a seeded sample of) whole frames.

    Args:
        store: a ``FrameStore`` (``read_frame(i) -> [H, W, C] uint8``, ``valid``).
        frame_indices: store indices to draw from (duplicates merged, invalid frames ignored).
        max_frames: at most this many frames are read.

    Returns:
        ``{"image_mean": [C floats], "image_std": [C floats], "n_frames": k}``.
    """
    candidates = np.unique(np.asarray(frame_indices, dtype=np.int64).ravel())
    candidates = candidates[candidates >= 0]
    valid = np.asarray(store.valid, dtype=bool)
    candidates = candidates[valid[candidates]]
    if len(candidates) == 0:
        raise ValueError("no valid frame to compute normalisation statistics from")
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, size=min(max_frames, len(candidates)), replace=False))
    total = total_sq = None
    count = 0
    for i in tqdm(chosen, desc="normalisation statistics", unit="frame", leave=False, disable=not progress):
        frame = np.asarray(store.read_frame(int(i)), dtype=np.float64) / 255.0
        flat = frame.reshape(-1, frame.shape[-1])
        total = flat.sum(axis=0) if total is None else total + flat.sum(axis=0)
        total_sq = (flat**2).sum(axis=0) if total_sq is None else total_sq + (flat**2).sum(axis=0)
        count += len(flat)
    mean = total / count
    std = np.sqrt(np.maximum(total_sq / count - mean**2, 0.0))
    # a constant channel would divide by zero at training time
    std = np.where(std < 1e-6, 1.0, std)
    return {
        "image_mean": [float(v) for v in mean],
        "image_std": [float(v) for v in std],
        "n_frames": int(len(chosen)),
    }


# ---- save, load, export -------------------------------------------------------------------


def save_index(index: datasets.DatasetDict, path: str | os.PathLike[str]) -> None:
    """Write the DatasetDict with ``save_to_disk`` (``path`` must not exist yet: callers swap atomically)."""
    # an empty split saved with 0 shards cannot be loaded back (datasets 5): give every split >= 1 shard
    shards = {name: 1 for name, split in index.items() if len(split) == 0}
    index.save_to_disk(str(path), num_shards=shards or None)


def load_index(dataset_dir: str | os.PathLike[str]) -> datasets.DatasetDict:
    """Load ``DIR/index`` (a build-dataset folder) or an index folder itself."""
    path = Path(dataset_dir)
    if (path / "index").is_dir():
        path = path / "index"
    if not (path / "dataset_dict.json").is_file():
        raise FileNotFoundError(
            f"{path} is not a clip index (no dataset_dict.json); run `medicane-hf build-dataset`"
        )
    return datasets.load_from_disk(str(path))


def export_index(dataset_dir: str | os.PathLike[str], fmt: str = "csv") -> list[Path]:
    """Write each split as a flat table ``DIR/export/<split>.<fmt>`` (csv or parquet).

    In CSV, ``frame_indices`` is written as space-separated integers.

    Returns:
        the written paths.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"export format must be 'csv' or 'parquet', got {fmt!r}")
    index = load_index(dataset_dir)
    out_dir = Path(dataset_dir) / "export"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, split in index.items():
        table = split.to_pandas()
        path = out_dir / f"{name}.{fmt}"
        if fmt == "csv":
            table["frame_indices"] = [" ".join(map(str, row)) for row in table["frame_indices"]]
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
        written.append(path)
    return written
