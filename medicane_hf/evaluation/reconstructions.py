"""What a masked autoencoder saw and rebuilt, as videos for figures (`plots.plot_reconstructions` draws them).

Functions of a `MedicaneVideoMAEForPreTraining` model (its config and ``pixel_targets``) and of its forward
outputs (`MedicaneVideoMAEPreTrainingOutput`). Every video is ``[B, T, C, H, W]`` in 0..1 units (the clip
before normalisation), every pixel mask bool ``[B, T, H, W]``. Nothing here is needed to train or predict.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from medicane_hf.modeling_medicane import denormalize_patches, unpatchify

if TYPE_CHECKING:
    from medicane_hf.modeling_medicane import (
        MedicaneVideoMAEForPreTraining,
        MedicaneVideoMAEPreTrainingOutput,
    )

__all__ = ["input_video", "mask_to_video", "masked_video", "reconstruct_video", "reconstruction_views"]


def _to_video(model: MedicaneVideoMAEForPreTraining, tokens: torch.Tensor) -> torch.Tensor:
    """Tokens ``[B, N, patch_dim]`` in 0..1 units -> ``[B, T, C, H, W]``."""
    config = model.config
    return unpatchify(
        tokens, config.token_grid, config.tubelet_size, config.patch_height_width, config.num_channels
    )


@torch.no_grad()
def input_video(model: MedicaneVideoMAEForPreTraining, pixel_values: torch.Tensor) -> torch.Tensor:
    """The input clip back in 0..1 units (``pixel_values * image_std + image_mean``), clamped: ``[B, T, C, H, W]``."""
    return _to_video(model, model.pixel_targets(pixel_values).float()).clamp(0.0, 1.0)


@torch.no_grad()
def mask_to_video(model: MedicaneVideoMAEForPreTraining, mask: torch.Tensor) -> torch.Tensor:
    """A token mask bool ``[B, N]`` as a pixel mask bool ``[B, T, H, W]`` (each token covers its tubelet)."""
    config = model.config
    patch_h, patch_w = config.patch_height_width
    grid_t, grid_h, grid_w = config.token_grid
    pixels = mask.bool().reshape(-1, grid_t, grid_h, grid_w)
    pixels = pixels.repeat_interleave(config.tubelet_size, 1).repeat_interleave(patch_h, 2)
    return pixels.repeat_interleave(patch_w, 3)


@torch.no_grad()
def reconstruct_video(
    model: MedicaneVideoMAEForPreTraining,
    pixel_values: torch.Tensor,
    outputs: MedicaneVideoMAEPreTrainingOutput,
) -> torch.Tensor:
    """The input clip with every decoded token replaced by its reconstruction, clamped to 0..1: ``[B, T, C, H, W]``.

    Args:
        model: the model that produced `outputs`.
        pixel_values: its input, float ``[B, T, C, H, W]`` normalised with the config's statistics.
        outputs: its forward outputs (``logits`` ``[B, n_dec, patch_dim]`` at ``decoded_positions`` ``[B, n_dec]``).

    With ``norm_pix_loss`` the prediction is per-patch normalised; it is brought back to pixels with the true
    patch's mean and std (as the VideoMAE authors do for their figures).
    """
    patches = model.pixel_targets(pixel_values).float()
    index = outputs.decoded_positions.unsqueeze(-1).expand(-1, -1, patches.shape[-1])
    predicted = outputs.logits.float()
    if model.config.norm_pix_loss:
        predicted = denormalize_patches(predicted, patches.gather(1, index), model.config.num_channels)
    return _to_video(model, patches.scatter(1, index, predicted)).clamp(0.0, 1.0)


@torch.no_grad()
def masked_video(
    model: MedicaneVideoMAEForPreTraining,
    pixel_values: torch.Tensor,
    bool_masked_pos: torch.Tensor,
    fill: float = 0.5,
) -> torch.Tensor:
    """The input clip in 0..1 units with the tokens hidden from the encoder (bool ``[B, N]``) set to ``fill``.

    Returns ``[B, T, C, H, W]``, not clamped (so that a ``fill`` outside 0..1 stays recognisable).
    """
    patches = model.pixel_targets(pixel_values).float()
    patches = patches.masked_fill(bool_masked_pos.bool().unsqueeze(-1), fill)
    return _to_video(model, patches)


@torch.no_grad()
def reconstruction_views(
    model: MedicaneVideoMAEForPreTraining,
    pixel_values: torch.Tensor,
    outputs: MedicaneVideoMAEPreTrainingOutput,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input ``[B, T, C, H, W]``, reconstruction ``[B, T, C, H, W]``, pixels hidden from the encoder
    ``[B, T, H, W]``): the three arguments of `plots.plot_reconstructions`."""
    return (
        input_video(model, pixel_values),
        reconstruct_video(model, pixel_values, outputs),
        mask_to_video(model, outputs.bool_masked_pos),
    )
