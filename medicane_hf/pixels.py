"""uint8 clips -> the models' ``pixel_values``: the one function every path from frames to model input calls.

The torch datasets, training, batch inference and the video processor saved with every model
(`medicane_hf.video_processing_medicane.MedicaneVideoProcessor`) all call `to_pixel_values`. This module imports
only numpy and torch, because a model folder carries a copy of it: transformers copies the files that its custom
code imports relatively (``dynamic_module_utils.custom_object_save``), and that copy must run without this
package installed. `medicane_hf.processing_medicane` re-exports these functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

__all__ = ["clip_to_tensor", "normalize", "to_pixel_values"]

Transform = Callable[[torch.Tensor], torch.Tensor]
ArrayOrTensor = np.ndarray | torch.Tensor


def clip_to_tensor(clips: ArrayOrTensor) -> torch.Tensor:
    """uint8 ``[T, H, W, C]`` or ``[B, T, H, W, C]`` -> float32 ``[T, C, H, W]`` / ``[B, T, C, H, W]`` in 0..1."""
    if isinstance(clips, np.ndarray):
        # torch.as_tensor refuses negative strides (flipped or sliced views): copy those once
        clips = torch.as_tensor(np.ascontiguousarray(clips))
    tensor = torch.as_tensor(clips)
    if tensor.ndim not in (4, 5):
        raise ValueError(
            f"expected a clip [T, H, W, C] or a batch [B, T, H, W, C], got shape {tuple(tensor.shape)}"
        )
    if tensor.dtype != torch.uint8:
        # a float clip would be divided by 255 a second time: say so instead of returning a black clip
        raise ValueError(f"expected uint8 pixels (0..255), got {tensor.dtype}")
    lead = tuple(range(tensor.ndim - 4))
    t, h, w, c = (tensor.ndim - 4 + i for i in range(4))
    return tensor.permute(*lead, t, c, h, w).to(torch.float32).div_(255.0).contiguous()


def normalize(video: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """``(video - mean) / std`` per channel; ``video`` is float ``[..., C, H, W]`` in 0..1 units."""
    channels = video.shape[-3]
    if len(mean) != channels or len(std) != channels:
        raise ValueError(f"normalisation has {len(mean)}/{len(std)} values for a {channels}-channel clip")
    m = torch.as_tensor(mean, dtype=video.dtype).view(-1, 1, 1)
    s = torch.as_tensor(std, dtype=video.dtype).view(-1, 1, 1)
    return (video - m) / s


def to_pixel_values(
    clips: ArrayOrTensor,
    image_mean: Sequence[float],
    image_std: Sequence[float],
    transform: Transform | None = None,
) -> torch.Tensor:
    """uint8 clips -> the models' ``pixel_values``: normalised float32, channels before height and width.

    Args:
        clips: uint8 ``[T, H, W, C]`` (one clip) or ``[B, T, H, W, C]`` (a batch), numpy or torch.
        image_mean, image_std: per-channel statistics, 0..1 units (a contract's or config's).
        transform: applied to each clip as float ``[T, C, H, W]`` in 0..1 units before normalisation
            (augmentation, `medicane_hf.data.transforms`).

    Returns:
        float32 ``[T, C, H, W]`` or ``[B, T, C, H, W]``: ``(pixel / 255 - image_mean) / image_std``.
    """
    video = clip_to_tensor(clips)
    if transform is not None:
        video = transform(video) if video.ndim == 4 else torch.stack([transform(clip) for clip in video])
    return normalize(video, image_mean, image_std)
