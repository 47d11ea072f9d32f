"""Augmentation of clips in 0..1 units. Pure torch.

A dataset turns a uint8 clip into ``pixel_values`` with `medicane_hf.processing_medicane.to_pixel_values`:
uint8 ``[T, H, W, C]`` -> float32 ``[T, C, H, W]`` in 0..1, then the optional augmentation here (0..1
units), then normalisation with the data's own per-channel mean/std (0..1 units; never ImageNet values).

No horizontal (or vertical) flips anywhere: a mirror image reverses a cyclone's sense of
rotation (counter-clockwise in the northern hemisphere), producing storms that cannot exist.

Randomness comes from torch's generator: in DataLoader workers torch seeds each worker from
the loader's base seed, so augmentations are reproducible given the loader's generator.
Pass ``generator=`` for explicit control.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = [
    "BrightnessJitter",
    "Compose",
    "MultiScaleCrop",
]

Transform = Callable[[torch.Tensor], torch.Tensor]


class Compose:
    """Apply transforms in order."""

    def __init__(self, transforms: Sequence[Transform]) -> None:
        self.transforms = list(transforms)

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        for t in self.transforms:
            video = t(video)
        return video

    def __repr__(self) -> str:
        return f"Compose({self.transforms})"


class MultiScaleCrop:
    """VideoMAE-style multi-scale crop: one random crop for all frames, resized back to ``size``.

    Crop height and width are ``scale x min(H, W)`` with scales drawn independently from
    ``scales`` but at most ``max_distort`` steps apart (so the aspect ratio stays moderate);
    the crop position is uniform. The crop is resized to ``size x size`` with bilinear
    interpolation. Input and output are float ``[T, C, H, W]``.
    """

    def __init__(
        self,
        size: int,
        scales: Sequence[float] = (1.0, 0.875, 0.75, 0.66),
        max_distort: int = 1,
        generator: torch.Generator | None = None,
    ) -> None:
        if not scales or min(scales) <= 0 or max(scales) > 1:
            raise ValueError(f"scales must be in (0, 1], got {scales}")
        self.size = int(size)
        self.scales = tuple(float(s) for s in scales)
        self.max_distort = int(max_distort)
        self.generator = generator
        self.pairs = [
            (i, j)
            for i in range(len(self.scales))
            for j in range(len(self.scales))
            if abs(i - j) <= self.max_distort
        ]

    def _randint(self, high: int) -> int:
        return int(torch.randint(high, (1,), generator=self.generator).item())

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        _, _, height, width = video.shape
        base = min(height, width)
        i, j = self.pairs[self._randint(len(self.pairs))]
        crop_h = max(1, round(base * self.scales[i]))
        crop_w = max(1, round(base * self.scales[j]))
        top = self._randint(height - crop_h + 1)
        left = self._randint(width - crop_w + 1)
        crop = video[:, :, top : top + crop_h, left : left + crop_w]
        if crop.shape[-2:] == (self.size, self.size):
            return crop.contiguous()
        return F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False)

    def __repr__(self) -> str:
        return f"MultiScaleCrop(size={self.size}, scales={self.scales}, max_distort={self.max_distort})"


class BrightnessJitter:
    """Add one random offset in ``[-max_delta, max_delta]`` (0..1 units) to every pixel of the clip, then clip to 0..1."""

    def __init__(self, max_delta: float = 0.05, generator: torch.Generator | None = None) -> None:
        if max_delta < 0:
            raise ValueError(f"max_delta must be >= 0, got {max_delta}")
        self.max_delta = float(max_delta)
        self.generator = generator

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        delta = (torch.rand((), generator=self.generator) * 2.0 - 1.0) * self.max_delta
        return (video + delta).clamp_(0.0, 1.0)

    def __repr__(self) -> str:
        return f"BrightnessJitter(max_delta={self.max_delta})"
