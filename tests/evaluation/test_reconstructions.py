"""MAE figure views (medicane_hf/evaluation/reconstructions.py) from a tiny pretraining model's outputs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.evaluation.plots import plot_reconstructions
from medicane_hf.evaluation.reconstructions import (
    input_video,
    mask_to_video,
    masked_video,
    reconstruct_video,
    reconstruction_views,
)
from medicane_hf.masking import running_cell_mask, tube_mask
from medicane_hf.modeling_medicane import MedicaneVideoMAEForPreTraining, patchify

pytestmark = pytest.mark.usefixtures("one_torch_thread")
BATCH = 2


def model_and_outputs(
    norm_pix_loss: bool = True,
) -> tuple[MedicaneVideoMAEForPreTraining, torch.Tensor, torch.Tensor, object]:
    """A tiny pretraining model, a clip in 0..1 units, its normalised pixel_values, the outputs (fixed masks)."""
    config = MedicaneVideoMAEConfig.from_preset("tiny", norm_pix_loss=norm_pix_loss)
    torch.manual_seed(0)
    model = MedicaneVideoMAEForPreTraining(config).eval()
    pixels01 = torch.rand(BATCH, 16, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mean = torch.tensor(config.image_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(config.image_std).view(1, 1, 3, 1, 1)
    x = (pixels01 - mean) / std
    generator = torch.Generator().manual_seed(7)
    masks = {
        "bool_masked_pos": tube_mask(
            BATCH, *config.token_grid, config.encoder_mask_ratio, generator=generator
        ),
        "decoder_mask": running_cell_mask(BATCH, *config.token_grid, 0.5, generator=generator),
    }
    with torch.no_grad():
        outputs = model(x, **masks)
    return model, pixels01, x, outputs


def test_a_perfect_prediction_reconstructs_the_input() -> None:
    model, pixels01, x, outputs = model_and_outputs(norm_pix_loss=True)
    true_patches = patchify(pixels01, 2, (16, 16))
    index = outputs.decoded_positions.unsqueeze(-1).expand(-1, -1, true_patches.shape[-1])
    chosen = true_patches.gather(1, index).reshape(BATCH, 48, -1, 3)
    perfect = (chosen - chosen.mean(2, keepdim=True)) / (chosen.var(2, keepdim=True).sqrt() + 1e-6)
    outputs.logits = perfect.reshape(BATCH, 48, -1)
    torch.testing.assert_close(reconstruct_video(model, x, outputs), pixels01, atol=1e-5, rtol=0)
    torch.testing.assert_close(input_video(model, x), pixels01, atol=1e-6, rtol=0)
    masked = masked_video(model, x, outputs.bool_masked_pos, fill=0.5)
    hidden = mask_to_video(model, outputs.bool_masked_pos)  # [B, T, H, W]
    assert hidden.shape == (BATCH, 16, 64, 64) and hidden.float().mean() == 0.75
    torch.testing.assert_close(masked, torch.where(hidden.unsqueeze(2), 0.5, pixels01), atol=1e-6, rtol=0)


def test_the_figure_views_are_the_input_its_reconstruction_and_the_hidden_pixels(tmp_path: Path) -> None:
    model, pixels01, x, outputs = model_and_outputs(norm_pix_loss=False)
    original, reconstruction, hidden = reconstruction_views(model, x, outputs)
    assert original.shape == reconstruction.shape == (BATCH, 16, 3, 64, 64) and hidden.shape == (
        BATCH,
        16,
        64,
        64,
    )
    torch.testing.assert_close(original, pixels01, atol=1e-6, rtol=0)
    # the tokens the decoder did not rebuild keep the input's pixels; the rebuilt ones are clamped predictions
    decoded = torch.zeros_like(outputs.bool_masked_pos).scatter(1, outputs.decoded_positions, True)
    rebuilt = mask_to_video(model, decoded)
    assert torch.equal(
        reconstruction.permute(0, 1, 3, 4, 2)[~rebuilt], original.permute(0, 1, 3, 4, 2)[~rebuilt]
    )
    assert reconstruction.min() >= 0 and reconstruction.max() <= 1
    # the same hidden pixels as the clip with the hidden tokens filled below 0 (how the figure found them before)
    assert torch.equal(hidden, (masked_video(model, x, outputs.bool_masked_pos, fill=-1.0) < 0).all(dim=2))
    path = plot_reconstructions(original, reconstruction, hidden, tmp_path / "reconstructions.png")
    assert path.stat().st_size > 0
