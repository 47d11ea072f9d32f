"""The distributed predict loop: every clip through the model once, gathered in clip order on the main process.

Each process reads its share of the batches (Accelerate's sharded DataLoader, workers reading clips from the
frame store), runs the model under ``torch.inference_mode`` (and autocast with ``--bf16`` / ``--fp16``), and
``accelerator.gather_for_metrics`` brings every process's batch to all of them, without the samples a
distributed sampler repeats to even out the last batch. Every item carries its row number, and the main
process writes each gathered row at its own position and counts it: a row seen twice or never is an error,
never a silently wrong table. Arrays that may be large (logits, embeddings) go straight into ``.npy`` files
(memory-mapped), so no per-rank or per-batch shard is ever written.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

__all__ = ["ARRAY_OUTPUTS", "Predictions", "RowDataset", "predict"]

ARRAY_OUTPUTS = ("logits", "embeddings")
"""Model outputs that ``--save_<name>`` writes as ``<name>.npy``, ``[N, D]`` float32, rows aligned with the table:
the raw ``logits`` (detection: class scores before the temperature; tracking: the centre, tile px) and the
``embeddings`` (the pooled features the head reads)."""


class RowDataset(Dataset):
    """`dataset`'s items reduced to what the loop needs, each with its row number:
    ``{"pixel_values", "row": int64, "labels"?, "tile_offset"?}`` (the tile's grid offset, for a detector with
    ``detection_position``)."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        item = self.dataset[i]
        out = {"pixel_values": item["pixel_values"], "row": torch.tensor(i, dtype=torch.int64)}
        for key in ("labels", "tile_offset"):
            if key in item:
                out[key] = item[key]
        return out


@dataclass
class Predictions:
    """What the loop gathered, on the main process (None elsewhere), rows in dataset order.

    Attributes:
        predictions: float64 ``[N, ...]``, the stage's ``predictions_fn`` of the model outputs.
        labels: the dataset's labels ``[N, ...]`` (None for unlabelled input).
        arrays: ``{name: path}`` of the ``.npy`` files written (``logits``, ``embeddings``), ``[N, D]`` float32.
        seconds: wall time of the loop, from the first batch asked to the last gathered.
        num_processes: processes that shared the clips.
    """

    predictions: np.ndarray
    labels: np.ndarray | None
    arrays: dict[str, Path]
    seconds: float
    num_processes: int

    @property
    def clips_per_second(self) -> float:
        """Clips predicted per second by all processes together."""
        return len(self.predictions) / self.seconds if self.seconds > 0 else float("nan")


class _Rows:
    """Gathered batches written at their row numbers; every row must arrive exactly once."""

    def __init__(self, count: int, array_dir: Path | None, array_names: tuple[str, ...]) -> None:
        self.count = count
        self.array_dir = array_dir
        self.array_names = array_names
        self.seen = np.zeros(count, dtype=np.int64)
        self.values: dict[str, np.ndarray] = {}

    def _allocate(self, name: str, sample: np.ndarray) -> np.ndarray:
        shape = (self.count, *sample.shape[1:])
        if name in self.array_names and self.array_dir is not None:
            # straight into the run's .npy file: embeddings of a year of clips need not fit in memory
            return np.lib.format.open_memmap(
                self.array_dir / f"{name}.npy", mode="w+", dtype=np.float32, shape=shape
            )
        return np.empty(shape, dtype=sample.dtype)

    def add(self, batch: dict[str, np.ndarray]) -> None:
        rows = batch["row"]
        for name, values in batch.items():
            if name == "row":
                continue
            if name not in self.values:
                self.values[name] = self._allocate(name, values)
            self.values[name][rows] = values
        np.add.at(self.seen, rows, 1)

    def check(self) -> None:
        """Raise unless every row arrived exactly once."""
        twice, never = np.flatnonzero(self.seen > 1), np.flatnonzero(self.seen == 0)
        if twice.size or never.size:
            raise RuntimeError(
                f"distributed gathering lost the clip order: {twice.size} row(s) gathered more than once "
                f"(e.g. {twice[:5].tolist()}), {never.size} never (e.g. {never[:5].tolist()})"
            )
        for array in self.values.values():
            if isinstance(array, np.memmap):
                array.flush()


def position_inputs(model: torch.nn.Module, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
    """``{"tile_offset": ...}`` for a detector trained with the tile's grid position (``detection_position``)
    when the batch carries it, else nothing (other models take no such input; a model folder saved before the
    input existed would pass it on to its encoder)."""
    if "tile_offset" in batch and getattr(getattr(model, "config", None), "detection_position", False):
        return {"tile_offset": batch["tile_offset"]}
    return {}


def predict(
    model: torch.nn.Module,
    dataset: Dataset,
    predictions_fn: Callable[[Any], torch.Tensor],
    accelerator: Accelerator,
    *,
    batch_size: int = 16,
    num_workers: int = 2,
    save: tuple[str, ...] = (),
    array_dir: Path | None = None,
    progress: bool = True,
    description: str = "inference",
    on_progress: Callable[[int, float], None] | None = None,
) -> Predictions | None:
    """Run `model` on every clip of `dataset` on all processes; the gathered result on the main process.

    Args:
        model: a stage's model (moved to ``accelerator.device`` and put in eval mode here).
        dataset: items ``{"pixel_values": float32 [T, C, H, W], "labels"?: ..., "tile_offset"?: float32 [2]}``
            (the tile offset reaches a detector with ``detection_position``, which needs it).
        predictions_fn: the stage's ``TaskSpec.predictions_fn``: model outputs -> ``[B, ...]`` tensor.
        accelerator: the run's ``Accelerator`` (its mixed precision decides the autocast).
        batch_size: clips per forward, per process.
        num_workers: DataLoader worker processes per process (0: read in the main thread).
        save: names of `ARRAY_OUTPUTS` to write as ``array_dir/<name>.npy`` (main process).
        array_dir: where those files go (the run's staging folder).
        progress: a progress bar with clips per second (main process).
        description: the bar's label.
        on_progress: called on the main process after each batch with (clips done, seconds so far).

    Returns:
        `Predictions` on the main process, None on the others.

    Raises:
        RuntimeError: a row was gathered twice or never (the order of clips was lost).
    """
    device = accelerator.device
    model = model.to(device).eval()
    loader = DataLoader(
        RowDataset(dataset),
        batch_size=batch_size,
        shuffle=False,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    # even_batches (the default) repeats a few samples so every process gets whole batches; gather_for_metrics
    # drops them again
    loader = accelerator.prepare_data_loader(loader)
    main = accelerator.is_main_process
    unknown = [name for name in save if name not in ARRAY_OUTPUTS]
    if unknown:
        raise ValueError(f"cannot save {unknown}: the arrays are {ARRAY_OUTPUTS}")
    rows = _Rows(len(dataset), array_dir, tuple(save)) if main else None
    bar = tqdm(
        total=len(dataset), unit="clip", desc=description, disable=not (main and progress), smoothing=0.1
    )
    done, started = 0, time.perf_counter()
    with torch.inference_mode():
        for batch in loader:
            with accelerator.autocast():
                outputs = model(pixel_values=batch["pixel_values"], **position_inputs(model, batch))
            part = {"row": batch["row"], "predictions": predictions_fn(outputs).float()}
            if "labels" in batch:
                part["labels"] = batch["labels"]
            for name in save:
                part[name] = outputs[name].float()
            gathered = accelerator.gather_for_metrics(part)
            if rows is not None:
                rows.add({k: v.cpu().numpy() for k, v in gathered.items()})
                done += len(gathered["row"])
                bar.update(len(gathered["row"]))
                if on_progress is not None:
                    on_progress(done, time.perf_counter() - started)
    seconds = time.perf_counter() - started
    bar.close()
    if rows is None:
        return None
    rows.check()
    arrays = {name: array_dir / f"{name}.npy" for name in save} if array_dir is not None else {}
    labels = rows.values.get("labels")
    return Predictions(
        predictions=rows.values["predictions"].astype(np.float64),
        labels=labels,
        arrays=arrays,
        seconds=seconds,
        num_processes=accelerator.num_processes,
    )
