"""Random augmentation that does not depend on when a sample is loaded.

The data layer draws random tiles and crops from torch's global generator when
an item is fetched. DataLoaders fetch ahead (accelerate's loader holds the next
batch before yielding the current one), so after a resume the same batch would
be fetched at another point of the RNG stream and come out differently. Seeding
each item from (seed, epoch, index) makes a batch a function of the schedule
alone, so a resumed run sees the same data, and the global RNG (which draws the
MAE masks) is left untouched by loading.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.utils.data import Dataset
from transformers import TrainerCallback

_MODULUS = 2**63 - 1


class PerSampleSeeded(Dataset):
    """`dataset[i]` fetched under torch seed f(seed, epoch, i), in a forked RNG."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset = dataset
        self.seed = int(seed)
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.dataset)

    def item_seed(self, index: int) -> int:
        """The torch seed of item `index` in the current epoch."""
        return (self.seed * 1_000_003 + self.epoch * 998_244_353 + int(index) * 2_654_435_761) % _MODULUS

    def __getitem__(self, index: int) -> Any:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.item_seed(index))
            return self.dataset[index]


class SetEpochCallback(TrainerCallback):
    """Tell a `PerSampleSeeded` dataset which epoch is starting (also right after a mid-epoch resume)."""

    def __init__(self, dataset: PerSampleSeeded) -> None:
        self.dataset = dataset

    def on_epoch_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.dataset.epoch = int(state.epoch or 0)
        return control
