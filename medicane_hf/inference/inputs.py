"""What batch inference predicts: a split of a build-dataset folder, or every clip of a folder of frames.

- `dataset_input`: a build-dataset folder and a split. A labelled split gives the stage's dataset kind (through
  `medicane_hf.data.datasets.load_clip_datasets`, never shifted, turned or resampled; tracking: the clips with a
  centre target) with its labels; the ``unlabelled`` split of a folder built with ``--no-tracks`` gives every clip,
  without labels.
- `build_frames_dataset`: a folder of frames and no tracks file -> ``build-dataset --no-tracks`` into a folder
  (the store is reused when the frames are unchanged, by the same fingerprint as ``build-dataset``), on the
  model's clip settings, grid and tiles; `dataset_input` then reads its ``unlabelled`` split.

Pixels are always normalised with the model's statistics. `contract_problems` lists every field of the model's
data contract that the input does not meet (`medicane_hf.processing_medicane.contract_differences`): the caller
refuses the input before the first batch.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset, Subset

from medicane_hf.data.build import build_dataset, find_grid_file, load_grid_file
from medicane_hf.data.clips import ClipSettings, TileLayout
from medicane_hf.data.dataset_arrays import base_and_indices, dataset_targets
from medicane_hf.data.datasets import ClipVideoDataset, load_clip_datasets
from medicane_hf.data.frames import DEFAULT_FRAME_PATTERN, FrameStore
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.data.index import UNLABELLED_SPLIT, load_index
from medicane_hf.data.splits import SPLITS
from medicane_hf.processing_medicane import (
    ContractMismatchError,
    DataContract,
    contract_differences,
    read_dataset_contract,
)
from medicane_hf.tasks import TaskSpec

__all__ = [
    "CLIP_COLUMNS",
    "InferenceInput",
    "InputError",
    "build_frames_dataset",
    "check_frames",
    "check_input",
    "contract_problems",
    "dataset_input",
    "frames_contract",
    "refuse_differences",
]

CLIP_COLUMNS = ("clip_id", "end_time", "x0", "y0", "tile_row", "tile_col")
"""The identity of a clip in every prediction table: id, end time (UTC), tile offset (grid px), tile position."""


class InputError(ValueError):
    """The input cannot be predicted on (no such split, no clips, not a build-dataset folder ...)."""


@dataclass
class InferenceInput:
    """A dataset to predict on and what is known about its clips.

    Attributes:
        dataset: items ``{"pixel_values": float32 [T, C, H, W], "labels": ...}`` (no ``labels`` when unlabelled),
            normalised with the model's statistics, in clip order.
        clips: one row per item of `dataset`, same order: `CLIP_COLUMNS` (+ ``storm_id`` for labelled input).
        contract: what the input provides (its grid, tiles, clip shape; the normalisation is the model's).
        labelled: the items carry labels (metrics can be computed).
        description: e.g. "the test split of data/synth-ds", for messages and the log.
        dataset_dir: the build-dataset folder read.
        split: the split read.
        baseline_xy: the train split's mean centre ``[2]`` (tile px) for a stage with a train-mean baseline.
        notes: what the log should say about the input (normalisation, fields not checked).
    """

    dataset: Dataset
    clips: pd.DataFrame
    contract: DataContract
    labelled: bool
    description: str
    dataset_dir: Path
    split: str
    baseline_xy: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)


def _read_info(dataset_dir: Path) -> dict[str, Any]:
    path = dataset_dir / "dataset_info.json"
    if not path.is_file():
        raise InputError(
            f"{dataset_dir} is not a build-dataset folder (no dataset_info.json); build one with "
            "`medicane-hf build-dataset`, or pass a folder of frames with --frames"
        )
    return json.loads(path.read_text())


def _spread(dataset: Dataset, limit: int | None) -> Dataset:
    """At most `limit` clips evenly spread over `dataset` (clips are in time order: the first N are one day)."""
    if limit is None or limit >= len(dataset):
        return dataset
    if limit < 1:
        raise InputError(f"--max_clips must be at least 1, got {limit}")
    return Subset(dataset, np.linspace(0, len(dataset) - 1, limit).round().astype(int).tolist())


def _clip_table(dataset: Dataset, index_split: Any) -> pd.DataFrame:
    """`CLIP_COLUMNS` (+ storm_id) of every item of `dataset`, in its order, from the index split it reads."""
    base, rows = base_and_indices(dataset)
    columns = [c for c in (*CLIP_COLUMNS, "storm_id") if c in index_split.column_names]
    table = index_split.select_columns(columns).to_pandas().set_index("clip_id")
    ids = list(base.clip_ids) if rows is None else [base.clip_ids[i] for i in rows]
    clips = table.loc[ids].reset_index()
    # the dataset reads its tiles at these offsets: a table that disagreed would mislabel every prediction
    offsets = np.stack([np.asarray(base.x0), np.asarray(base.y0)], axis=1)
    offsets = offsets if rows is None else offsets[rows]
    if not np.array_equal(clips[["x0", "y0"]].to_numpy(dtype=np.int64), offsets.astype(np.int64)):
        raise RuntimeError(
            "the clip table and the dataset disagree on tile offsets: the index is inconsistent"
        )
    clips["end_time"] = pd.to_datetime(clips["end_time"])
    return clips


def dataset_input(
    task: TaskSpec,
    dataset_dir: str | os.PathLike[str],
    split: str | None,
    normalization: dict[str, Sequence[float]],
    *,
    max_clips: int | None = None,
    description: str | None = None,
) -> InferenceInput:
    """The clips of one split of a build-dataset folder, normalised with `normalization` (the model's).

    Args:
        task: the stage (its dataset kind decides the clips and labels of a labelled split).
        dataset_dir: a build-dataset folder.
        split: ``train``, ``validation``, ``test`` or ``unlabelled``; None: ``test``, or ``unlabelled`` for a
            folder built without tracks.
        normalization: ``{"image_mean": [C], "image_std": [C]}``, 0..1 units.
        max_clips: predict at most this many clips, evenly spread (a quick look); None: all.
        description: how messages name the input (default: "the <split> split of <dir>").

    Raises:
        InputError: not a build-dataset folder, or no such split.
    """
    dataset_dir = Path(dataset_dir)
    info = _read_info(dataset_dir)
    labelled = bool(info.get("labelled", True))
    split = split or ("test" if labelled else UNLABELLED_SPLIT)
    index = load_index(dataset_dir)
    if split not in index or split == "pretrain":
        choices = [name for name in index if name != "pretrain"]
        raise InputError(
            f"{dataset_dir} has no split {split!r} to predict on; its splits: {', '.join(choices)}"
            + (" (pretrain holds windows without a tile)" if split == "pretrain" else "")
        )
    contract = read_dataset_contract(dataset_dir)
    description = description or f"the {split} split of {dataset_dir}"
    baseline_xy = None
    if split in SPLITS:
        # the constant-guess baseline of a stage that has one is the train split's mean target
        wanted = tuple(dict.fromkeys((split, "train"))) if task.train_mean_baseline else (split,)
        datasets = load_clip_datasets(
            dataset_dir,
            task.name,
            wanted,
            train_max_shift=0,
            train_rot90=False,
            balance_train_classes=False,
            normalization=normalization,
        )
        dataset = datasets[split]
        if task.train_mean_baseline and len(datasets["train"]):
            baseline_xy = dataset_targets(datasets["train"]).mean(axis=0)
        item_labelled = True
    else:
        store = FrameStore.open(dataset_dir / "store")
        dataset = ClipVideoDataset(
            index[split], store, normalization, tile_size=contract.image_size, with_tile_offset=True
        )
        item_labelled = False
    dataset = _spread(dataset, max_clips)
    return InferenceInput(
        dataset=dataset,
        clips=_clip_table(dataset, index[split]),
        contract=contract,
        labelled=item_labelled,
        description=description,
        dataset_dir=dataset_dir,
        split=split,
        baseline_xy=baseline_xy,
    )


def frames_contract(frames_dir: str | os.PathLike[str], model: DataContract) -> tuple[DataContract, str]:
    """What a folder of frames provides, before it is packed: the grid (and tiles) of its ``grid.json`` (at the
    root or its parent, as ``build-dataset`` finds it), else the model's; the clip shape is the model's (clips are
    cut to it). Returns (contract, where the grid came from)."""
    frames_dir = Path(frames_dir)
    if not frames_dir.is_dir():
        raise InputError(f"--frames {frames_dir}: no such folder")
    grid_file = find_grid_file(frames_dir)
    grid, tiles, source = model.grid, model.tiles, "the model's grid (no grid.json beside the frames)"
    if grid_file is not None:
        file_grid, layout = load_grid_file(grid_file)
        grid, source = file_grid.to_dict(), str(grid_file)
        tiles = layout.to_dict() if layout is not None else tiles
    if grid is None:
        grid, source = SeviriGrid().to_dict(), "the default SEVIRI grid (no grid.json, none in the model)"
    if tiles is None:
        raise InputError(
            f"the model records no tile layout and {frames_dir} has no grid.json with one: write a grid.json "
            '({"grid": {...}, "tiles": {"tile_size", "stride_x", "stride_y"}}) beside the frames'
        )
    contract = DataContract(
        num_frames=model.num_frames,
        frame_interval_minutes=model.frame_interval_minutes,
        image_size=int(tiles["tile_size"]),
        num_channels=model.num_channels,
        image_mean=model.image_mean,
        image_std=model.image_std,
        grid=grid,
        tiles=tiles,
        class_names=model.class_names,
    )
    return contract, source


def build_frames_dataset(
    frames_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    contract: DataContract,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    pattern: str = DEFAULT_FRAME_PATTERN,
    max_missing_frames: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Pack the frames into ``out_dir`` (``build-dataset --no-tracks`` on the clip settings, grid and tiles of
    `contract`, the frames' own; see `frames_contract`), reusing its store when the frames are unchanged.

    Clips end on the hour from `start` to `end` (inclusive; None: the frames' first / last). Returns the
    ``dataset_info.json`` content (``["store"]["action"]``: packed, reused, resumed or repacked).

    Raises:
        InputError: no complete clip in the period (with the counts of skipped clips by reason), or `out_dir`
            is a labelled build-dataset folder (its index is not replaced).
        FileNotFoundError, FrameSizeError: no frames, or frames of another size than the grid (from the build).
    """
    if contract.grid is None or contract.tiles is None:
        raise ValueError("the contract has no grid or tiles: make it with frames_contract")
    existing = Path(out_dir) / "dataset_info.json"
    if existing.is_file() and json.loads(existing.read_text()).get("labelled", True):
        # its index would be replaced by an unlabelled one: a labelled dataset is never given up silently
        raise InputError(
            f"{out_dir} holds a labelled build-dataset folder; predict on it with --dataset_dir, or pack the "
            "frames elsewhere (--store_dir)"
        )
    result = build_dataset(
        frames_dir,
        None,
        out_dir,
        grid=SeviriGrid.from_dict(contract.grid),
        **TileLayout.from_dict(contract.tiles).to_dict(),
        clip_settings=ClipSettings(
            num_frames=contract.num_frames,
            frame_interval_minutes=contract.frame_interval_minutes,
            max_missing_frames=max_missing_frames,
        ),
        period=None if start is None and end is None else (start, end),
        pattern=pattern,
        progress=progress,
    )
    info = result.info
    if info["counts"][UNLABELLED_SPLIT]["clips"] == 0:
        skipped = ", ".join(f"{k} {v:,}" for k, v in info["skipped"].items()) or "none"
        period = (
            ""
            if start is None and end is None
            else f" from {start or 'the first frame'} to {end or 'the last'}"
        )
        raise InputError(
            f"{frames_dir} holds no complete {contract.num_frames}-frame clip ending on the hour{period}: "
            f"{info['candidate_clips']:,} candidate tile-clips skipped ({skipped}); --max_missing_frames N "
            "fills up to N missing frames"
        )
    return info


def contract_problems(
    model: DataContract, data: DataContract, fields: Sequence[str], *, own_statistics: bool = True
) -> tuple[list[str], list[str]]:
    """(differences, notes): one ``"field: model X, dataset Y"`` line per field of `fields` the input does not meet,
    and what the log should say: a field the model does not record is not checked; with `own_statistics` (a
    build-dataset folder, whose statistics describe its own train split) that they are not the ones used."""
    notes = [
        f"the model records no {key}: the input's is used unchecked"
        for key in fields
        if getattr(model, key) is None
    ]
    checked = [key for key in fields if getattr(model, key) is not None]
    if own_statistics and contract_differences(model, data, ("image_mean", "image_std")):
        notes.append(
            "pixels are normalised with the model's statistics "
            f"(mean {list(model.image_mean)}, std {list(model.image_std)}), not the input folder's own"
        )
    return contract_differences(model, data, checked), notes


def refuse_differences(differences: list[str], what: str, model_name: str) -> None:
    """Raise `ContractMismatchError` naming the model, the input and every difference (nothing when none)."""
    if differences:
        raise ContractMismatchError(
            f"the model {model_name} cannot take {what} (its data contract differs): " + "; ".join(differences)
        )


def check_frames(
    frames_dir: str | os.PathLike[str], model: DataContract, fields: Sequence[str], model_name: str
) -> tuple[DataContract, str]:
    """`frames_contract`, refused before anything is packed when it differs from the model's in `fields`.

    Raises:
        InputError: no such folder, or no tile layout anywhere.
        ContractMismatchError: the frames' grid or tiles differ from the model's (every difference named).
    """
    expected, grid_source = frames_contract(frames_dir, model)
    refuse_differences(contract_problems(model, expected, fields)[0], f"the frames in {frames_dir}", model_name)
    return expected, grid_source


def check_input(
    task: TaskSpec,
    model: DataContract,
    source: InferenceInput,
    model_name: str,
    *,
    own_statistics: bool,
) -> None:
    """The model's contract (the stage's ``contract_fields``) against the input, before the first batch; the
    notes go into ``source.notes``. `own_statistics`: the input's statistics describe its own train split (a
    build-dataset folder), not frames packed for this run.

    Raises:
        ContractMismatchError: a field differs (every one named).
        InputError: the input holds no clip for the stage.
    """
    differences, notes = contract_problems(
        model, source.contract, task.inference.contract_fields, own_statistics=own_statistics
    )
    source.notes.extend(notes)
    refuse_differences(differences, source.description, model_name)
    if len(source.dataset) == 0:
        raise InputError(f"{source.description} has no clips for the {task.name} stage: nothing to predict")
