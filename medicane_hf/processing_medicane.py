"""The data contract of the Medicane VideoMAE models and the one path from frames to ``pixel_values``.

A model expects (`DataContract`): clips of ``num_frames`` frames ``frame_interval_minutes`` apart, square tiles
of ``image_size`` px with ``num_channels`` channels, cut at the ``tiles`` layout from frames of the ``grid``,
scaled to 0..1 and normalised per channel with ``image_mean`` / ``image_std`` (0..1 units, never ImageNet
values). A model's config carries its contract (`DataContract.from_config`), a build-dataset folder its own
(`read_dataset_contract`); `check_contract` refuses a model whose contract differs from the data's and names
every field that differs.

From frames to model input, for training and inference alike:

1. tiles: `cut_tiles` cuts full frames uint8 ``[T, H, W, C]`` at tile offsets ``(x0, y0)``; the frame store's
   `FrameStore.read_clip` gives the same pixels for one window without decoding whole frames (what the torch
   datasets of `medicane_hf.data.datasets` read);
2. `to_pixel_values`: uint8 clips ``[T, H, W, C]`` or ``[B, T, H, W, C]`` (numpy or torch) -> float32
   ``[T, C, H, W]`` / ``[B, T, C, H, W]``, scaled to 0..1, optionally augmented in 0..1 units, normalised.

`frames_to_pixel_values` does both for every tile of the layout. The torch datasets, training and batch inference
(`medicane_hf.inference`) use this module, and so does the video processor saved with every model
(`medicane_hf.video_processing_medicane`): `to_pixel_values` lives in `medicane_hf.pixels` (numpy and torch only, so
that a model folder's copy runs without this package) and is re-exported here. It imports neither
`medicane_hf.training` nor the model code.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from medicane_hf.data.clips import CLASS_NAMES, ClipSettings, TileLayout
from medicane_hf.pixels import ArrayOrTensor, clip_to_tensor, normalize, to_pixel_values

if TYPE_CHECKING:
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

__all__ = [
    "CONFIG_FIELDS",
    "CONTRACT_FIELDS",
    "INPUT_FIELDS",
    "SHAPE_FIELDS",
    "ContractMismatchError",
    "DataContract",
    "check_contract",
    "clip_to_tensor",
    "contract_differences",
    "cut_tiles",
    "frames_to_pixel_values",
    "normalize",
    "read_dataset_contract",
    "read_normalization",
    "to_pixel_values",
]

SHAPE_FIELDS = ("num_frames", "image_size", "num_channels")
"""What a model's weights fix: a checkpoint whose clip shape differs from the data's cannot be trained on it."""
CONFIG_FIELDS = ("image_mean", "image_std", "grid", "tiles", "frame_interval_minutes")
"""What training copies from the dataset into every model's config (with the class names), so it travels."""
CONTRACT_FIELDS = ("num_frames", "frame_interval_minutes", "image_size", "num_channels", "image_mean",
                   "image_std", "grid", "tiles")  # fmt: skip
"""Every field of the contract: the clips' shape and geometry, and the normalisation they are given."""
INPUT_FIELDS = ("num_frames", "frame_interval_minutes", "image_size", "num_channels", "grid", "tiles")
"""What inference checks new input against (`CONTRACT_FIELDS` but the normalisation): the clips' shape and geometry.
The normalisation is the model's own and is applied to any input (new frames have no statistics of their own
that could count, and a dataset folder's describe other data than the model was trained on)."""


class ContractMismatchError(ValueError):
    """The model expects clips of another shape (or other data) than the dataset provides."""


@dataclass(frozen=True)
class DataContract:
    """What a model expects as input, and what a dataset provides.

    Attributes:
        num_frames: frames per clip.
        frame_interval_minutes: minutes between two frames of a clip.
        image_size: side of a square tile, pixels.
        num_channels: channels per frame (3 for Airmass RGB).
        image_mean, image_std: per-channel normalisation statistics, 0..1 units, ``num_channels`` values each.
        grid: the frames' grid (`medicane_hf.data.geo.SeviriGrid.to_dict()`); None when unknown (a model built
            from a preset without data).
        tiles: the tile layout (`medicane_hf.data.clips.TileLayout.to_dict()`); None when unknown.
        class_names: the detection classes, in label order.
    """

    num_frames: int
    frame_interval_minutes: int
    image_size: int
    num_channels: int
    image_mean: tuple[float, ...]
    image_std: tuple[float, ...]
    grid: dict[str, Any] | None = None
    tiles: dict[str, Any] | None = None
    class_names: tuple[str, ...] = CLASS_NAMES[:2]

    def __post_init__(self) -> None:
        # normalise the containers (lists from JSON, tuples from code) so that two equal contracts compare equal
        object.__setattr__(self, "image_mean", tuple(float(v) for v in self.image_mean))
        object.__setattr__(self, "image_std", tuple(float(v) for v in self.image_std))
        object.__setattr__(self, "class_names", tuple(str(v) for v in self.class_names))
        for key in ("image_mean", "image_std"):
            if len(getattr(self, key)) != self.num_channels:
                raise ValueError(
                    f"{key} has {len(getattr(self, key))} values but num_channels={self.num_channels}"
                )

    @classmethod
    def from_config(cls, config: MedicaneVideoMAEConfig) -> DataContract:
        """The contract a model's config records (`image_size`: the first side of a possibly (h, w) size)."""
        size = config.image_size
        id2label = {int(k): str(v) for k, v in dict(config.id2label).items()}
        return cls(
            num_frames=int(config.num_frames),
            frame_interval_minutes=int(config.frame_interval_minutes),
            image_size=int(size if isinstance(size, int) else size[0]),
            num_channels=int(config.num_channels),
            image_mean=tuple(config.image_mean),
            image_std=tuple(config.image_std),
            grid=None if config.grid is None else dict(config.grid),
            tiles=None if config.tiles is None else dict(config.tiles),
            class_names=tuple(id2label[i] for i in sorted(id2label)),
        )

    @property
    def id2label(self) -> dict[int, str]:
        """``{class id: class name}``."""
        return dict(enumerate(self.class_names))

    @property
    def label2id(self) -> dict[str, int]:
        """``{class name: class id}``."""
        return {name: i for i, name in enumerate(self.class_names)}

    @property
    def normalization(self) -> dict[str, list[float]]:
        """``{"image_mean": [C], "image_std": [C]}`` (0..1 units): the form of ``normalization.json``."""
        return {"image_mean": list(self.image_mean), "image_std": list(self.image_std)}

    def config_settings(self) -> dict[str, Any]:
        """Config fields a model takes from this contract: `CONFIG_FIELDS` plus ``id2label`` / ``label2id``."""
        settings: dict[str, Any] = {
            "image_mean": list(self.image_mean),
            "image_std": list(self.image_std),
            "grid": None if self.grid is None else dict(self.grid),
            "tiles": None if self.tiles is None else dict(self.tiles),
            "frame_interval_minutes": self.frame_interval_minutes,
        }
        settings["id2label"] = self.id2label
        settings["label2id"] = self.label2id
        return settings

    def shape_settings(self) -> dict[str, int]:
        """`SHAPE_FIELDS` as config keywords: what a new model must be built with to take these clips."""
        return {key: int(getattr(self, key)) for key in SHAPE_FIELDS}

    def tile_offsets(self, width: int, height: int) -> list[tuple[int, int]]:
        """Tile offsets ``(x0, y0)`` (pixels, row-major) of this contract's layout on ``width x height`` frames."""
        if self.tiles is None:
            raise ValueError("the contract has no tile layout (tiles=None): pass the tile offsets explicitly")
        return TileLayout.from_dict(self.tiles).offsets(width, height)


def _same(a: Any, b: Any) -> bool:
    """Equal values; float sequences (normalisation statistics) equal to a relative 1e-6 (JSON round trips)."""
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        if len(a) != len(b):
            return False
        return all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return bool(np.isclose(float(a), float(b), rtol=1e-6, atol=0.0))
    return a == b


def contract_differences(
    model: DataContract, data: DataContract, fields: Sequence[str] = SHAPE_FIELDS
) -> list[str]:
    """One ``"field: model X, dataset Y"`` line per field of `fields` where the two contracts differ, in order."""
    differences = []
    for key in fields:
        model_value, data_value = getattr(model, key), getattr(data, key)
        if not _same(model_value, data_value):
            shown = [list(v) if isinstance(v, tuple) else v for v in (model_value, data_value)]
            differences.append(f"{key}: model {shown[0]}, dataset {shown[1]}")
    return differences


def check_contract(
    config: MedicaneVideoMAEConfig,
    contract: DataContract,
    source: str,
    fields: Sequence[str] = SHAPE_FIELDS,
) -> None:
    """Refuse a model whose contract differs from the dataset's in `fields`, naming every field that differs.

    Training checks the clip shape (`SHAPE_FIELDS`: the other fields are then copied from the dataset into the
    model); inference on new data checks `INPUT_FIELDS`.

    Raises:
        ContractMismatchError: naming `source`, what the model expects and each differing field.
    """
    differences = contract_differences(DataContract.from_config(config), contract, fields)
    if differences:
        raise ContractMismatchError(
            f"{source} expects {config.describe_data_contract()}, which does not match the dataset "
            f"({'; '.join(differences)}). Rebuild the dataset with matching clip settings, or train a new model "
            "from a preset (leave --model_name_or_path empty)."
        )


# ---------------------------------------------------------------------------------------------- dataset files


def read_normalization(dataset_dir: str | os.PathLike[str]) -> dict[str, list[float]]:
    """``DIR/normalization.json`` -> ``{"image_mean": [C], "image_std": [C]}`` (0..1 units)."""
    path = Path(dataset_dir) / "normalization.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {dataset_dir} is not a complete build-dataset folder")
    with open(path) as f:
        stats = json.load(f)
    for key in ("image_mean", "image_std"):
        if key not in stats:
            raise ValueError(f"{path} has no {key!r}")
    return {"image_mean": list(stats["image_mean"]), "image_std": list(stats["image_std"])}


def read_dataset_contract(dataset_dir: str | os.PathLike[str]) -> DataContract:
    """What a model trained on a build-dataset folder must expect (training copies it into the model config).

    Reads ``dataset_info.json`` (grid, tiles, clip settings, class names) and ``normalization.json``.
    """
    path = Path(dataset_dir) / "dataset_info.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: {dataset_dir} is not a complete build-dataset folder")
    with open(path) as f:
        info = json.load(f)
    settings = ClipSettings.from_dict(info["settings"]["clips"])
    norm = read_normalization(dataset_dir)
    return DataContract(
        num_frames=settings.num_frames,
        frame_interval_minutes=settings.frame_interval_minutes,
        image_size=int(info["tiles"]["tile_size"]),
        num_channels=int(info.get("num_channels", len(norm["image_mean"]))),
        image_mean=tuple(norm["image_mean"]),
        image_std=tuple(norm["image_std"]),
        grid=info["grid"],
        tiles=info["tiles"],
        class_names=tuple(info.get("class_names", settings.class_names)),
    )


# ---------------------------------------------------------------------------------------------- pixels


def cut_tiles(frames: ArrayOrTensor, offsets: Sequence[tuple[int, int]], tile_size: int) -> ArrayOrTensor:
    """Square tiles of full frames: ``[T, H, W, C]`` -> ``[N, T, tile_size, tile_size, C]``, same type and dtype.

    Tile ``n`` is ``frames[:, y0:y0 + tile_size, x0:x0 + tile_size]`` for ``offsets[n] = (x0, y0)`` (pixels,
    x = column from the west edge, y = row from the top), the window `FrameStore.read_clip` reads.

    Raises:
        ValueError: frames not 4-D, no offsets, or a tile not inside the frame (naming its offset).
    """
    if frames.ndim != 4:
        raise ValueError(f"expected frames [T, H, W, C], got shape {tuple(frames.shape)}")
    if len(offsets) == 0:
        raise ValueError("no tile offsets given")
    height, width = int(frames.shape[1]), int(frames.shape[2])
    tiles = []
    for x0, y0 in offsets:
        x0, y0 = int(x0), int(y0)
        if x0 < 0 or y0 < 0 or x0 + tile_size > width or y0 + tile_size > height:
            raise ValueError(
                f"tile (x0={x0}, y0={y0}) of {tile_size} px is not inside the {width} x {height} px frames"
            )
        tiles.append(frames[:, y0 : y0 + tile_size, x0 : x0 + tile_size])
    if isinstance(frames, torch.Tensor):
        return torch.stack(tiles)
    return np.stack(tiles)


def frames_to_pixel_values(
    frames: ArrayOrTensor,
    contract: DataContract,
    offsets: Sequence[tuple[int, int]] | None = None,
) -> tuple[torch.Tensor, list[tuple[int, int]]]:
    """Full frames of one clip -> ``pixel_values`` of its tiles, as the model of `contract` expects them.

    Args:
        frames: uint8 ``[T, H, W, C]``, the clip's ``num_frames`` consecutive frames on the contract's grid.
        contract: the model's contract (`DataContract.from_config(model.config)`).
        offsets: tile offsets ``(x0, y0)``; default: every tile of the contract's layout.

    Returns:
        (float32 ``[N, T, C, image_size, image_size]``, the N offsets in the same order).

    Raises:
        ContractMismatchError: naming every way the frames differ from the contract (frames, channels, size).
    """
    shape = tuple(int(s) for s in frames.shape)
    if len(shape) != 4:
        raise ValueError(f"expected frames [T, H, W, C], got shape {list(shape)}")
    count, height, width, channels = shape
    problems = []
    if count != contract.num_frames:
        problems.append(f"{count} frames instead of {contract.num_frames}")
    if channels != contract.num_channels:
        problems.append(f"{channels} channels instead of {contract.num_channels}")
    if contract.grid is not None:
        grid_w, grid_h = int(contract.grid["width"]), int(contract.grid["height"])
        if (width, height) != (grid_w, grid_h):
            problems.append(f"{width} x {height} px frames instead of the grid's {grid_w} x {grid_h} px")
    if problems:
        raise ContractMismatchError(
            f"frames {list(shape)} [T, H, W, C] do not fit the model: {'; '.join(problems)}"
        )
    chosen = (
        contract.tile_offsets(width, height) if offsets is None else [(int(x), int(y)) for x, y in offsets]
    )
    tiles = cut_tiles(frames, chosen, contract.image_size)
    return to_pixel_values(tiles, contract.image_mean, contract.image_std), chosen
