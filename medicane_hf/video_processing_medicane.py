"""`MedicaneVideoProcessor`: the transformers video processor saved with every model (``AutoVideoProcessor``).

It turns uint8 clips ``[T, H, W, C]`` (or a batch ``[B, T, H, W, C]``, or a list of clips) into the model's
``pixel_values`` float32 ``[B, T, C, H, W]`` by calling `medicane_hf.pixels.to_pixel_values`, the function the
torch datasets, training and batch inference call: one path from frames to model input. Its settings are the
model's data contract (`image_mean`, `image_std` in 0..1 units, `num_frames`, `num_channels`, `size` = the tile),
taken from the config by `MedicaneVideoProcessor.from_model_config`; a clip of another shape is refused with one
line naming every difference. It neither resizes nor crops: tiles are cut from the full frames at the model's
layout beforehand (`medicane_hf.processing_medicane.frames_to_pixel_values`).

Written here rather than configuring transformers' `VideoMAEVideoProcessor`: that one needs torchvision, resizes
and crops, and fuses rescaling into the normalisation (``(x - 255 m) / (255 s)``), which differs from
``(x / 255 - m) / s`` in the last bits of float32. This class builds on `VideoProcessorMixin` (the save / load /
Hub machinery, no torchvision) and keeps numpy / torch / transformers imports only, because every model folder
carries a copy of this file and of `pixels.py` for ``trust_remote_code`` loading without this package.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from transformers.image_processing_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin

from .pixels import to_pixel_values

__all__ = ["MedicaneVideoProcessor"]


class MedicaneVideoProcessor(VideoProcessorMixin):
    """uint8 clips -> ``pixel_values`` ``[B, T, C, H, W]`` = ``(pixel / 255 - image_mean) / image_std``.

    Args:
        image_mean, image_std: per-channel statistics in 0..1 units (the model config's).
        num_frames: frames per clip the model takes.
        num_channels: channels per frame (3 for Airmass RGB).
        size: ``{"height": tile, "width": tile}`` in pixels.
    """

    model_input_names = ["pixel_values"]
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_resize = False
    do_center_crop = False
    do_sample_frames = False

    def __init__(
        self,
        image_mean: Sequence[float] = (0.5, 0.5, 0.5),
        image_std: Sequence[float] = (0.25, 0.25, 0.25),
        num_frames: int = 16,
        num_channels: int = 3,
        size: dict[str, int] | None = None,
        **kwargs: Any,
    ) -> None:
        for key in ("do_rescale", "rescale_factor", "do_normalize", "do_resize", "do_center_crop"):
            kwargs.pop(key, None)  # class constants of the data contract, never settings
        super().__init__(**kwargs)
        self.image_mean = [float(v) for v in image_mean]
        self.image_std = [float(v) for v in image_std]
        self.num_frames = int(num_frames)
        self.num_channels = int(num_channels)
        self.size = dict(size) if size is not None else {"height": 224, "width": 224}

    @classmethod
    def from_model_config(cls, config: Any) -> MedicaneVideoProcessor:
        """The processor of a `MedicaneVideoMAEConfig` (its data contract)."""
        height, width = (
            (config.image_size, config.image_size)
            if isinstance(config.image_size, int)
            else config.image_size
        )
        return cls(
            image_mean=config.image_mean,
            image_std=config.image_std,
            num_frames=config.num_frames,
            num_channels=config.num_channels,
            size={"height": int(height), "width": int(width)},
        )

    def _batch(self, videos: Any) -> np.ndarray | torch.Tensor:
        """One clip, a batch or a list of clips -> a batch ``[B, T, H, W, C]``; refuses another shape."""
        if isinstance(videos, (list, tuple)):
            items = [v if isinstance(v, (np.ndarray, torch.Tensor)) else np.asarray(v) for v in videos]
            videos = torch.stack([torch.as_tensor(np.ascontiguousarray(v)) if isinstance(v, np.ndarray) else v
                                  for v in items])  # fmt: skip
        if videos.ndim == 4:
            videos = videos[None]
        if videos.ndim != 5:
            raise ValueError(
                f"expected a clip [T, H, W, C] or a batch [B, T, H, W, C] of uint8 pixels, got shape "
                f"{tuple(videos.shape)}"
            )
        expected = (self.num_frames, self.size["height"], self.size["width"], self.num_channels)
        got = tuple(int(s) for s in videos.shape[1:])
        if got != expected:
            names = ("frames", "height", "width", "channels")
            differences = [f"{n} {g} instead of {e}" for n, g, e in zip(names, got, expected) if g != e]
            raise ValueError(
                f"clip [T, H, W, C] = {list(got)} does not fit the model: {'; '.join(differences)} (cut tiles "
                "from full frames first: medicane_hf.processing_medicane.frames_to_pixel_values)"
            )
        return videos

    def preprocess(self, videos: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        """uint8 clips ``[T, H, W, C]`` / ``[B, T, H, W, C]`` / a list of ``[T, H, W, C]`` -> ``pixel_values``.

        Returns:
            `BatchFeature` with ``pixel_values`` float32 ``[B, T, C, H, W]`` (torch, or ``return_tensors``).
        """
        if kwargs:
            raise ValueError(
                f"MedicaneVideoProcessor takes no options {sorted(kwargs)}: its settings are the model's data contract"
            )
        pixel_values = to_pixel_values(self._batch(videos), self.image_mean, self.image_std)
        return BatchFeature(data={"pixel_values": pixel_values}, tensor_type=return_tensors)

    def __call__(self, videos: Any, return_tensors: str | None = "pt", **kwargs: Any) -> BatchFeature:
        return self.preprocess(videos, return_tensors=return_tensors, **kwargs)


MedicaneVideoProcessor.register_for_auto_class()
