"""torch datasets over a build-dataset folder: clips are cut from the packed store when sampled.

Every item is a dict ``{"pixel_values": float32 [T, C, H, W], "labels": ...}`` with
``pixel_values`` scaled to 0..1 and normalised with the data's own mean/std by
`medicane_hf.processing_medicane.to_pixel_values` (the path inference takes too):

- ``DetectionDataset``: ``labels`` int64 scalar (0 background, 1 medicane, 2 neighbouring), ``centre``
  and ``tile_offset`` float32 ``[2]`` = (x0, y0), the grid pixel of the (moved) tile's top-left corner;
- ``TrackingDataset``: only clips with a target; ``labels`` float32 ``[2]`` = (x, y) of the
  centre at the last frame, tile pixels;
- ``ClipVideoDataset``: the labelled clips with no labels (MAE validation); with ``with_tile_offset``
  (inference) also ``tile_offset`` as below;
- ``PretrainingDataset``: unlabelled windows with a random tile (and optional crop) per sample.

The store may be given as a path (opened lazily, once per worker process) or a
``FrameStore`` (which pickles as its path), so datasets are safe to send to DataLoader
workers. Index columns are read into numpy once at construction: ``__getitem__`` touches
neither Arrow nor pandas.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import datasets
import numpy as np
import torch
from torch.utils.data import Dataset, Subset

from medicane_hf.data.frames import FrameStore
from medicane_hf.data.index import UNLABELLED_SPLIT, frame_index_array, load_index
from medicane_hf.data.transforms import MultiScaleCrop
from medicane_hf.processing_medicane import DataContract, read_dataset_contract, to_pixel_values

__all__ = [
    "DATASET_KINDS",
    "DEFAULT_TRAIN_SHIFT_FRACTION",
    "ClipVideoDataset",
    "DetectionDataset",
    "PretrainingDataset",
    "TrackingDataset",
    "balanced_oversampling",
    "load_clip_datasets",
    "rotate_point",
]

# Detection and tracking train tiles move by up to this fraction of the tile side (16 px on 64-px
# tiles): far enough to decorrelate position from storm, near enough that the storm stays well inside.
DEFAULT_TRAIN_SHIFT_FRACTION = 0.25
Transform = Callable[[torch.Tensor], torch.Tensor]
StoreLike = FrameStore | str | os.PathLike[str]


def _tile_size_of(store: StoreLike) -> int:
    """Tile side from ``dataset_info.json`` in the store's parent (the build-dataset folder)."""
    store_dir = Path(store.path if isinstance(store, FrameStore) else store)
    info_path = store_dir.parent / "dataset_info.json"
    if not info_path.is_file():
        raise ValueError(f"tile_size not given and {info_path} does not exist: pass tile_size=")
    with open(info_path) as f:
        return int(json.load(f)["tiles"]["tile_size"])


class _StoreMixin:
    """Lazy store access: a path is opened on first use in each process."""

    _store_source: StoreLike
    _store: FrameStore | None

    def _init_store(self, store: StoreLike) -> None:
        self._store_source = store
        self._store = store if isinstance(store, FrameStore) else None

    @property
    def store(self) -> FrameStore:
        if self._store is None:
            self._store = FrameStore.open(self._store_source)
        return self._store

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        if not isinstance(self._store_source, FrameStore):
            state["_store"] = None  # reopened in the worker
        return state


class ClipVideoDataset(_StoreMixin, Dataset):
    """The clips of an index split (fixed tile per row; labelled or ``unlabelled``) as ``{"pixel_values"}``; the base
    of the labelled datasets.

    Args:
        index_split: a labelled split of the clip index (``datasets.Dataset``).
        store: the ``FrameStore`` or its folder.
        normalization: ``{"image_mean": [C], "image_std": [C]}`` in 0..1 units.
        transform: applied to the float 0..1 ``[T, C, H, W]`` clip before normalisation.
        tile_size: tile side in pixels; None reads it from the ``dataset_info.json`` beside the
            store (a build-dataset folder).
        with_tile_offset: items also carry ``"tile_offset"``: float32 ``[2]`` = (x0, y0), the grid pixel of
            the tile's top-left corner (what a detector with ``detection_position`` needs; off for MAE
            validation, whose model takes no such input).
    """

    def __init__(
        self,
        index_split: datasets.Dataset,
        store: StoreLike,
        normalization: dict[str, Sequence[float]],
        transform: Transform | None = None,
        tile_size: int | None = None,
        *,
        with_tile_offset: bool = False,
    ) -> None:
        self._init_store(store)
        self.mean = [float(v) for v in normalization["image_mean"]]
        self.std = [float(v) for v in normalization["image_std"]]
        self.transform = transform
        self.tile_size = _tile_size_of(store) if tile_size is None else int(tile_size)
        self.frame_indices = frame_index_array(index_split)
        self.x0 = np.asarray(index_split["x0"], dtype=np.int64)
        self.y0 = np.asarray(index_split["y0"], dtype=np.int64)
        self.clip_ids = list(index_split["clip_id"])
        self.with_tile_offset = bool(with_tile_offset)

    def __len__(self) -> int:
        return len(self.frame_indices)

    def pixel_values(self, i: int, dx: int = 0, dy: int = 0) -> torch.Tensor:
        """Normalised float32 ``[T, C, tile, tile]`` of row ``i``, its tile moved by ``(dx, dy)`` pixels."""
        clip = self.store.read_clip(
            self.frame_indices[i], int(self.y0[i]) + dy, int(self.x0[i]) + dx, self.tile_size, self.tile_size
        )
        return to_pixel_values(clip, self.mean, self.std, self.transform)

    def tile_offset(self, i: int, dx: int = 0, dy: int = 0) -> torch.Tensor:
        """float32 ``[2]`` (x0 + dx, y0 + dy): the grid pixel of row ``i``'s tile top-left, moved by ``(dx, dy)``."""
        return torch.tensor([int(self.x0[i]) + dx, int(self.y0[i]) + dy], dtype=torch.float32)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = {"pixel_values": self.pixel_values(i)}
        if self.with_tile_offset:
            item["tile_offset"] = self.tile_offset(i)
        return item


class DetectionDataset(ClipVideoDataset):
    """Labelled clips -> ``{"pixel_values": float32 [T, C, H, W], "labels": int64 scalar, "centre": float32 [2],
    "tile_offset": float32 [2]}``.

    ``centre`` is the storm centre (x, y) at the last frame in tile pixels of a Medicane clip with a target
    (moved with the tile), NaN for every other clip: a heat-map detection head learns where the eye is from it
    (``MedicaneVideoMAEForDetection``), other heads ignore it. ``tile_offset`` is (x0 + dx, y0 + dy), the grid
    pixel of the moved tile's top-left corner: a detector with ``detection_position`` places the storm on the
    grid with it (land or sea), the others ignore it.

    With ``max_shift > 0`` (train split only) rows whose label cannot change are read at a random
    translation ``(dx, dy)``, integers drawn uniformly from ``[-max_shift, max_shift]`` (torch's
    global generator, exact-resume safe like ``TrackingDataset``), window always inside the grid:

    - a Medicane clip with a centre target: the last frame's centre stays at least ``shift_margin``
      px inside the moved tile (a storm moves a few pixels in a 16-frame clip: 50 km at 40 km/h,
      ~4 px on the demo grid, ~12 px on SEVIRI's, so the clip keeps far more than 6 positive frames;
      with a margin below the distance a storm covers in 10 frames, ~3 px on the demo grid, a storm
      entering the tile could be labelled Medicane with fewer than 6 frames inside);
    - a background clip whose tile saw no centre in any frame (``n_positive_frames == 0``): the
      moved tile stays at least ``max(shift_margin, 8)`` px away from every centre target of the split at
      the same clip time (up to ten draws, else unmoved);
    - anything else (neighbouring class, two storms, a storm crossing the tile edge) stays put.

    A storm's eye then appears at every position within a patch and on every patch, not at the
    ~10 positions per storm the fixed tiles give: a small detector with 16-px patches otherwise
    learns where the train storms were instead of what a Medicane looks like.

    Args:
        max_shift: largest translation in pixels (0 = none).
        shift_margin: distance in pixels kept between a centre and the moved tile's edge.
    """

    _BACKGROUND_TRIES = 10
    # a moved background tile keeps at least this far from every centre, whatever shift_margin says: a storm moves a
    # few pixels in a clip, and one just outside at the last frame may have been inside for 6 frames (a positive)
    _BACKGROUND_CLEARANCE_PX = 8

    def __init__(
        self,
        index_split: datasets.Dataset,
        store: StoreLike,
        normalization: dict[str, Sequence[float]],
        transform: Transform | None = None,
        tile_size: int | None = None,
        *,
        max_shift: int = 0,
        shift_margin: int = 8,
    ) -> None:
        super().__init__(index_split, store, normalization, transform, tile_size)
        _check_shift(max_shift, shift_margin, self.tile_size)
        self.labels = np.asarray(index_split["label"], dtype=np.int64)
        self.max_shift = int(max_shift)
        self.shift_margin = int(shift_margin)
        has_target = np.asarray(index_split["has_target"], dtype=bool)
        self._targets = np.stack(
            [
                np.asarray(index_split["target_x"], np.float64),
                np.asarray(index_split["target_y"], np.float64),
            ],
            axis=1,
        ).reshape(-1, 2)
        # the centre a heat-map detection head learns to point at: Medicane clips with a target only
        self.centres = np.where(((self.labels == 1) & has_target)[:, None], self._targets, np.nan)
        if self.max_shift == 0:
            return
        centres = self._targets + np.stack([self.x0, self.y0], axis=1)  # grid pixels
        end_times = np.asarray(index_split["end_time"])
        n_positive = np.asarray(index_split["n_positive_frames"], dtype=np.int64)
        n_storms = np.asarray(index_split["n_storms"], dtype=np.int64)
        self._centres_at = _group_rows_by_time(centres, end_times, has_target)
        self._end_times = end_times
        self._movable_medicane = (self.labels == 1) & has_target & (n_storms == 1)
        self._movable_background = (self.labels == 0) & (n_positive == 0) & (n_storms == 0)

    def _draw_shift(self, i: int) -> tuple[int, int]:
        """One random ``(dx, dy)`` for row ``i`` (pixels) that keeps its label (see the class docstring)."""
        if self.max_shift == 0:
            return 0, 0
        store, x0, y0 = self.store, int(self.x0[i]), int(self.y0[i])
        if self._movable_medicane[i]:
            return _random_inside_shift(
                (x0, y0), self._targets[i], (store.width, store.height), self.tile_size, self.max_shift,
                self.shift_margin,
            )  # fmt: skip
        if not self._movable_background[i]:
            return 0, 0
        xr = (max(-self.max_shift, -x0), min(self.max_shift, store.width - self.tile_size - x0))
        yr = (max(-self.max_shift, -y0), min(self.max_shift, store.height - self.tile_size - y0))
        centres = self._centres_at.get(self._end_times[i], np.zeros((0, 2)))
        for _ in range(self._BACKGROUND_TRIES):
            dx, dy = _randint_between(*xr), _randint_between(*yr)
            near = max(self.shift_margin, self._BACKGROUND_CLEARANCE_PX)
            inside_x = (centres[:, 0] >= x0 + dx - near) & (centres[:, 0] <= x0 + dx + self.tile_size + near)
            inside_y = (centres[:, 1] >= y0 + dy - near) & (centres[:, 1] <= y0 + dy + self.tile_size + near)
            if not np.any(inside_x & inside_y):
                return dx, dy
        return 0, 0

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        dx, dy = self._draw_shift(i)
        return {
            "pixel_values": self.pixel_values(i, dx, dy),
            "labels": torch.tensor(self.labels[i], dtype=torch.int64),
            "centre": torch.tensor(self.centres[i] - (dx, dy), dtype=torch.float32),
            "tile_offset": self.tile_offset(i, dx, dy),
        }


def rotate_point(xy: Sequence[float] | np.ndarray, turns: int, size: int) -> tuple[float, float]:
    """Where pixel ``(x, y)`` of a ``size x size`` tile goes under ``torch.rot90(tile, turns, dims=(-2, -1))``.

    One turn maps ``(x, y)`` to ``(y, size - 1 - x)`` (pixel centres at integer coordinates).
    """
    x, y = float(xy[0]), float(xy[1])
    for _ in range(turns % 4):
        x, y = y, size - 1 - x
    return x, y


def _check_shift(max_shift: int, shift_margin: int, tile_size: int) -> None:
    if max_shift < 0 or shift_margin < 0 or 2 * shift_margin >= tile_size:
        raise ValueError(
            f"max_shift ({max_shift}) and shift_margin ({shift_margin}) must be >= 0 and "
            f"2 x shift_margin < tile_size ({tile_size})"
        )


def _group_rows_by_time(values: np.ndarray, times: np.ndarray, keep: np.ndarray) -> dict[Any, np.ndarray]:
    """``{time: values[rows kept at that time]}`` in one sort (a mask per time would be O(times x rows))."""
    rows = np.flatnonzero(keep)
    unique_times, group = np.unique(times[rows], return_inverse=True)
    order = np.argsort(group, kind="stable")
    bounds = np.searchsorted(group[order], np.arange(len(unique_times) + 1))
    return {
        t: values[rows[order[a:b]]] for t, a, b in zip(unique_times, bounds[:-1], bounds[1:], strict=True)
    }


def _randint_between(lo: int, hi: int) -> int:
    """A uniform random integer in ``[lo, hi]`` from torch's global generator (per-sample seeded in training)."""
    return lo + int(torch.randint(hi - lo + 1, (1,)).item())


def _random_inside_shift(
    offset: tuple[int, int],
    target: Sequence[float] | np.ndarray,
    extent: tuple[int, int],
    tile_size: int,
    max_shift: int,
    margin: int,
) -> tuple[int, int]:
    """A uniform random ``(dx, dy)`` (torch's generator) that keeps the window on the grid and the centre inside.

    Per axis, the window ``[offset + d, offset + d + tile_size)`` stays inside ``[0, extent)``, ``|d| <= max_shift``
    and the centre (``target``, tile pixels) stays ``margin`` px from both edges; an axis where no shift can
    do that (the centre is already outside the margin and cannot be brought in) does not move.
    """
    shift = []
    for start, centre, size in zip(offset, target, extent, strict=True):
        lo = max(-max_shift, -start, int(np.ceil(float(centre) - (tile_size - margin))))
        hi = min(max_shift, size - tile_size - start, int(np.floor(float(centre) - margin)))
        if lo > hi:
            lo = hi = 0
        shift.append(_randint_between(lo, hi))
    return shift[0], shift[1]


class TrackingDataset(ClipVideoDataset):
    """Clips with a target -> ``{"pixel_values", "labels": float32 [2] = (x, y) in tile pixels}``.

    Transforms must not move pixels (no crops): the target would no longer match. Translation is
    done here instead, where the target can follow: with ``max_shift > 0`` each item reads its
    tile at ``(x0 + dx, y0 + dy)`` with integer ``dx, dy`` drawn uniformly from
    ``[-max_shift, max_shift]`` (torch's global generator, so ``PerSampleSeeded`` makes it
    exact-resume safe) and returns the target ``(x - dx, y - dy)``. Only shifts that keep the
    window inside the grid and the centre at least ``shift_margin`` px inside the tile are drawn.
    With ~130 train targets on the default basin this turns each target into ``(2 max_shift + 1)^2`` distinct
    (image, target) pairs, so the regressor cannot memorise a position per storm.

    With ``rot90`` each item is also turned by a random multiple of 90 degrees (after the shift),
    and the target with it. A turned cyclone still turns counter-clockwise (a rotation keeps the
    sense of rotation; a mirror image would not), so the storm stays a plausible storm while the
    background around it stops being a clue to where the centre was in the train storms.

    Args:
        max_shift: largest translation in pixels (0 = none; use it for the train split only).
        shift_margin: the shifted centre stays this many pixels from every tile edge.
        rot90: random quarter turns (train split only).
    """

    def __init__(
        self,
        index_split: datasets.Dataset,
        store: StoreLike,
        normalization: dict[str, Sequence[float]],
        transform: Transform | None = None,
        tile_size: int | None = None,
        *,
        max_shift: int = 0,
        shift_margin: int = 8,
        rot90: bool = False,
    ) -> None:
        has_target = np.asarray(index_split["has_target"], dtype=bool)
        index_split = index_split.select(np.flatnonzero(has_target))
        super().__init__(index_split, store, normalization, transform, tile_size)
        _check_shift(max_shift, shift_margin, self.tile_size)
        self.max_shift = int(max_shift)
        self.shift_margin = int(shift_margin)
        self.rot90 = bool(rot90)
        self.targets = np.stack(
            [
                np.asarray(index_split["target_x"], np.float32),
                np.asarray(index_split["target_y"], np.float32),
            ],
            axis=1,
        ).reshape(-1, 2)

    def _draw_shift(self, i: int) -> tuple[int, int]:
        """One random ``(dx, dy)`` for row ``i`` (pixels)."""
        if self.max_shift == 0:
            return 0, 0
        store = self.store
        return _random_inside_shift(
            (int(self.x0[i]), int(self.y0[i])), self.targets[i], (store.width, store.height), self.tile_size,
            self.max_shift, self.shift_margin,
        )  # fmt: skip

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        dx, dy = self._draw_shift(i)
        target = self.targets[i] - np.asarray([dx, dy], dtype=np.float32)
        pixel_values = self.pixel_values(i, dx, dy)
        if self.rot90:
            turns = int(torch.randint(4, (1,)).item())
            pixel_values = torch.rot90(pixel_values, turns, dims=(-2, -1)).contiguous()
            target = np.asarray(rotate_point(target, turns, self.tile_size), dtype=np.float32)
        return {"pixel_values": pixel_values, "labels": torch.from_numpy(target)}


class PretrainingDataset(_StoreMixin, Dataset):
    """Unlabelled windows -> ``{"pixel_values": float32 [T, C, tile, tile]}`` with a random tile per sample.

    Args:
        pretrain_split: the ``pretrain`` split of the clip index.
        store: the ``FrameStore`` or its folder.
        normalization: ``{"image_mean", "image_std"}`` in 0..1 units.
        tile_size: side of the cut square, pixels.
        tiles: tile offsets ``(x0, y0)`` to draw from; None = any position on the frame.
        crop: applied to the 0..1 clip after cutting, e.g. ``MultiScaleCrop(tile_size)``.
        generator: torch generator for the tile draw (default: torch's, seeded per worker).
    """

    def __init__(
        self,
        pretrain_split: datasets.Dataset,
        store: StoreLike,
        normalization: dict[str, Sequence[float]],
        tile_size: int,
        tiles: Sequence[tuple[int, int]] | None = None,
        crop: Transform | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self._init_store(store)
        self.mean = [float(v) for v in normalization["image_mean"]]
        self.std = [float(v) for v in normalization["image_std"]]
        self.tile_size = int(tile_size)
        self.tiles = None if tiles is None else np.asarray(tiles, dtype=np.int64).reshape(-1, 2)
        self.crop = crop
        self.generator = generator
        self.frame_indices = frame_index_array(pretrain_split)

    def __len__(self) -> int:
        return len(self.frame_indices)

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator).item())

    def _offset(self) -> tuple[int, int]:
        if self.tiles is not None:
            x0, y0 = self.tiles[self._randint(len(self.tiles))]
            return int(x0), int(y0)
        store = self.store
        return self._randint(store.width - self.tile_size + 1), self._randint(
            store.height - self.tile_size + 1
        )

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        x0, y0 = self._offset()
        clip = self.store.read_clip(self.frame_indices[i], y0, x0, self.tile_size, self.tile_size)
        return {"pixel_values": to_pixel_values(clip, self.mean, self.std, self.crop)}


def balanced_oversampling(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Row numbers that show every present class as often as the most frequent one.

    Each class's rows are repeated whole as often as they fit, and the remainder is a seeded
    random choice of its rows, so the result is a fixed function of ``labels`` and ``seed``.
    With ~7% Medicane clips, plain sampling shows a batch of 8 a positive about every other
    step and a short run learns "always background"; class weights alone give those few
    positives large, noisy gradients instead.

    Args:
        labels: ``[N]`` class ids.
        seed: seed of the remainder draw.

    Returns:
        ``[M]`` int64 row numbers into ``labels`` (``M = n_classes_present x max count``), sorted.
    """
    labels = np.asarray(labels, dtype=np.int64)
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) == 0:
        return np.zeros(0, dtype=np.int64)
    target = int(counts.max())
    rng = np.random.default_rng(seed)
    rows = []
    for c, count in zip(classes, counts, strict=True):
        members = np.flatnonzero(labels == c)
        repeats, rest = divmod(target, int(count))
        rows.append(np.tile(members, repeats))
        rows.append(rng.choice(members, size=rest, replace=False))
    return np.sort(np.concatenate(rows))


def load_clip_datasets(
    dataset_dir: str | os.PathLike[str],
    task: str,
    splits: Sequence[str] = ("train", "validation", "test"),
    *,
    train_transform: Transform | None = None,
    any_position: bool = False,
    train_max_shift: int | None = None,
    train_rot90: bool | None = None,
    train_shift_margin: int = 8,
    balance_train_classes: bool = True,
    normalization: dict[str, Sequence[float]] | None = None,
) -> dict[str, Dataset]:
    """torch datasets of a build-dataset folder for one task.

    Args:
        dataset_dir: the build-dataset output folder (``store/``, ``index/``, JSON files).
        task: a stage of `medicane_hf.tasks.TASKS` (``specialization``, ``detection``, ``tracking``);
            its ``dataset_kind`` picks the builder in `DATASET_KINDS`.
        splits: which of ``train``, ``validation``, ``test`` to build. For ``specialization``,
            ``train`` is the unlabelled ``pretrain`` windows (random tile + multi-scale crop
            unless ``train_transform`` is given) and the others are the labelled clips without
            labels.
        train_transform: transform of the train split (0..1 units, before normalisation);
            detection and tracking default to none.
        any_position: specialization only: draw the tile anywhere on the frame instead of from
            the tile layout.
        train_max_shift: detection and tracking: random translation of the train tiles in pixels
            (see ``DetectionDataset`` and ``TrackingDataset``); None = ``DEFAULT_TRAIN_SHIFT_FRACTION``
            x tile side, 0 = off. Validation and test tiles never move.
        train_shift_margin: a shifted train tile keeps every centre this many pixels inside its edges.
        train_rot90: tracking only: random quarter turns of the train tiles, the target turning
            with them (see ``TrackingDataset``); None = on. Validation and test tiles never turn.
        balance_train_classes: detection only: repeat the rarer classes' train clips so every
            class is seen equally often (see ``balanced_oversampling``); validation and test
            are never resampled.
        normalization: ``{"image_mean": [C], "image_std": [C]}`` (0..1 units) the pixels are normalised with;
            None = the folder's own ``normalization.json`` (training). Inference passes the model's statistics:
            a model must see new data normalised as its training data was.

    Returns:
        ``{split: Dataset}`` in the order of ``splits``.

    Raises:
        ValueError: an unknown task or split, or a folder built without tracks (it has no labelled splits).
    """
    from medicane_hf.tasks import TASKS

    if task not in TASKS:
        raise ValueError(f"task must be one of {tuple(TASKS)}, got {task!r}")
    build = DATASET_KINDS[TASKS[task].dataset_kind]
    unknown = [s for s in splits if s not in ("train", "validation", "test")]
    if unknown:
        raise ValueError(f"unknown split(s) {unknown}; choose from train, validation, test")
    dataset_dir = Path(dataset_dir)
    contract = read_dataset_contract(dataset_dir)
    if normalization is not None:
        contract = dataclasses.replace(
            contract,
            image_mean=tuple(normalization["image_mean"]),
            image_std=tuple(normalization["image_std"]),
        )
    index = load_index(dataset_dir)
    if "train" not in index and UNLABELLED_SPLIT in index:
        raise ValueError(
            f"{dataset_dir} was built without tracks (build-dataset --no-tracks): its clips have no labels, so it "
            f"has no train/validation/test split, only {UNLABELLED_SPLIT!r} (for inference). Build the dataset "
            "with --tracks to train or evaluate on it."
        )
    store = FrameStore.open(dataset_dir / "store")
    options = _LoadOptions(
        train_transform, any_position, train_max_shift, train_rot90, balance_train_classes, train_shift_margin
    )
    return {split: build(split, index, store, contract, options) for split in splits}


@dataclass(frozen=True)
class _LoadOptions:
    """The keyword options of `load_clip_datasets`, handed to the dataset-kind builders."""

    train_transform: Transform | None
    any_position: bool
    train_max_shift: int | None
    train_rot90: bool | None
    balance_train_classes: bool
    train_shift_margin: int = 8


def _pretraining_split(
    split: str, index: Any, store: FrameStore, contract: DataContract, options: _LoadOptions
) -> Dataset:
    """Train: unlabelled windows, random tile + multi-scale crop; validation/test: labelled clips, no labels."""
    tile = contract.image_size
    if split != "train":
        return ClipVideoDataset(index[split], store, contract.normalization, None, tile)
    tiles = None if options.any_position else contract.tile_offsets(store.width, store.height)
    crop = options.train_transform if options.train_transform is not None else MultiScaleCrop(tile)
    return PretrainingDataset(index["pretrain"], store, contract.normalization, tile, tiles=tiles, crop=crop)


def _detection_split(
    split: str, index: Any, store: FrameStore, contract: DataContract, options: _LoadOptions
) -> Dataset:
    """Class labels; the train split shifted and (by default) oversampled to balance the classes."""
    tile = contract.image_size
    transform = options.train_transform if split == "train" else None
    shift = _train_shift(tile, options.train_max_shift) if split == "train" else 0
    detection = DetectionDataset(
        index[split],
        store,
        contract.normalization,
        transform,
        tile,
        max_shift=shift,
        shift_margin=options.train_shift_margin,
    )
    if split == "train" and options.balance_train_classes and len(detection) > 0:
        return Subset(detection, balanced_oversampling(detection.labels).tolist())
    return detection


def _tracking_split(
    split: str, index: Any, store: FrameStore, contract: DataContract, options: _LoadOptions
) -> Dataset:
    """(x, y) targets; the train split shifted and turned by quarter turns (by default)."""
    tile = contract.image_size
    train = split == "train"
    return TrackingDataset(
        index[split], store, contract.normalization, options.train_transform if train else None, tile,
        max_shift=_train_shift(tile, options.train_max_shift) if train else 0,
        shift_margin=options.train_shift_margin,
        rot90=train and (options.train_rot90 is None or options.train_rot90),
    )  # fmt: skip


# dataset kind (`TaskSpec.dataset_kind`) -> (split, index, store, contract, options) -> torch dataset
DATASET_KINDS: dict[str, Callable[[str, Any, FrameStore, DataContract, _LoadOptions], Dataset]] = {
    "pretraining": _pretraining_split,
    "detection": _detection_split,
    "tracking": _tracking_split,
}


def _train_shift(tile_size: int, train_max_shift: int | None) -> int:
    """The train split's translation in pixels: the given one, else the default fraction of the tile."""
    return int(DEFAULT_TRAIN_SHIFT_FRACTION * tile_size) if train_max_shift is None else int(train_max_shift)
