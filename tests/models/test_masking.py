"""Tube and running-cell masks: counts, structure, determinism, token order, vectorisation."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode
from transformers import VideoMAEConfig
from transformers.models.videomae.modeling_videomae import VideoMAEPatchEmbeddings

from medicane_hf.masking import decoder_targets, num_masked_per_frame, running_cell_mask, tube_mask


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize(
    ("grid_h", "grid_w", "ratio", "expected"), [(4, 4, 0.75, 12), (14, 14, 0.9, 176), (3, 5, 0.5, 8)]
)
def test_tube_mask_hides_exact_count_per_frame(grid_h: int, grid_w: int, ratio: float, expected: int) -> None:
    mask = tube_mask(6, 8, grid_h, grid_w, ratio, generator=_gen())
    assert mask.shape == (6, 8 * grid_h * grid_w) and mask.dtype == torch.bool
    per_frame = mask.reshape(6, 8, grid_h * grid_w).sum(dim=-1)
    assert (per_frame == expected).all()
    assert num_masked_per_frame(grid_h, grid_w, ratio) == expected


def test_tube_mask_is_the_same_in_every_frame_and_differs_between_samples() -> None:
    mask = tube_mask(8, 8, 14, 14, 0.9, generator=_gen()).reshape(8, 8, -1)
    assert (mask == mask[:, :1]).all()
    assert not (mask[0, 0] == mask[1, 0]).all()


def test_tube_mask_is_reproducible_with_a_generator() -> None:
    assert torch.equal(
        tube_mask(4, 8, 4, 4, 0.75, generator=_gen(3)), tube_mask(4, 8, 4, 4, 0.75, generator=_gen(3))
    )
    assert not torch.equal(
        tube_mask(4, 8, 4, 4, 0.75, generator=_gen(3)), tube_mask(4, 8, 4, 4, 0.75, generator=_gen(4))
    )


def test_tube_mask_rejects_a_ratio_that_hides_everything() -> None:
    with pytest.raises(ValueError, match="mask ratio 1.0"):
        tube_mask(1, 8, 4, 4, 1.0)


def test_running_cell_keeps_two_per_cell_and_turns_each_step() -> None:
    batch, steps, grid_h, grid_w = 16, 8, 6, 8
    kept = running_cell_mask(batch, steps, grid_h, grid_w, 0.5, generator=_gen()).reshape(
        batch, steps, grid_h, grid_w
    )
    cells = kept.reshape(batch, steps, grid_h // 2, 2, grid_w // 2, 2).permute(0, 1, 2, 4, 3, 5)
    cells = cells.reshape(batch, steps, grid_h // 2, grid_w // 2, 4)
    assert (cells.sum(dim=-1) == 2).all()
    # Every cell of a sample follows the same pattern, and the pattern changes at every step ...
    assert (cells == cells[:, :, :1, :1]).all()
    assert not (cells[:, 1:, 0, 0] == cells[:, :-1, 0, 0]).all(dim=-1).any()
    # ... and returns after 4 steps, so every position is kept in 2 of any 4 consecutive steps.
    assert torch.equal(cells[:, 4:], cells[:, :4])
    assert (kept[:, :4].sum(dim=1) == 2).all()
    # The kept pair shares an edge (a row or a column of the cell), never a diagonal.
    pattern = cells[:, :, 0, 0]  # order (0,0), (0,1), (1,0), (1,1)
    diagonal = (pattern[..., 0] & pattern[..., 3]) | (pattern[..., 1] & pattern[..., 2])
    assert not diagonal.any()


def test_running_cell_start_offset_is_random_per_sample() -> None:
    kept = running_cell_mask(64, 8, 4, 4, generator=_gen()).reshape(64, -1)
    assert len({tuple(row.tolist()) for row in kept}) == 4


@pytest.mark.parametrize("ratio", [0.25, 0.75])
def test_running_cell_other_ratios_keep_the_matching_count(ratio: float) -> None:
    kept = running_cell_mask(4, 8, 4, 4, ratio, generator=_gen())
    assert (kept.sum(dim=1) == round(4 * (1 - ratio)) * 4 * 8).all()


def test_running_cell_rejects_a_ratio_that_is_not_a_quarter() -> None:
    with pytest.raises(ValueError, match="0.25, 0.5 or 0.75"):
        running_cell_mask(1, 8, 4, 4, 0.4)


def test_running_cell_on_odd_grid_keeps_equal_counts_over_four_steps() -> None:
    kept = running_cell_mask(32, 8, 5, 7, generator=_gen()).reshape(32, 8, 5 * 7)
    # Each position is kept in exactly 2 of every 4 steps, even in the cells cut by the grid edge.
    assert (kept[:, :4].sum(dim=1) == 2).all()
    assert (kept.sum(dim=(1, 2)) == 4 * 35).all()


def test_dual_mask_scores_half_of_the_hidden_tokens_in_every_sample() -> None:
    batch, steps, grid = 8, 8, 14
    encoder = tube_mask(batch, steps, grid, grid, 0.9, generator=_gen(1))
    decoder = running_cell_mask(batch, steps, grid, grid, 0.5, generator=_gen(2))
    positions, weights = decoder_targets(encoder, decoder)
    assert positions.shape == (batch, 176 * steps // 2)
    assert weights.all()
    assert encoder.gather(1, positions).all() and decoder.gather(1, positions).all()
    assert (positions.diff(dim=1) > 0).all()


def test_decoder_targets_top_up_unequal_counts_with_unscored_tokens() -> None:
    encoder = torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]], dtype=torch.bool)
    decoder = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1]], dtype=torch.bool)
    positions, weights = decoder_targets(encoder, decoder)
    assert positions.tolist() == [[0, 1], [0, 1]]
    assert weights.tolist() == [[True, True], [True, False]]
    every, all_scored = decoder_targets(encoder, None)
    assert every.tolist() == [[0, 1, 2], [0, 1, 2]] and all_scored.all()


def test_mask_order_matches_transformers_patch_embedding() -> None:
    """Token t*H'*W' + row*W' + col must be the tubelet at time t, row, column in the Conv3d flatten order."""
    config = VideoMAEConfig(
        image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=8, num_channels=1
    )
    embed = VideoMAEPatchEmbeddings(config)
    with torch.no_grad():
        embed.projection.weight.fill_(1.0)
        embed.projection.bias.zero_()
    video = torch.zeros(1, 4, 1, 32, 32)
    video[0, 2:4, 0, 16:32, 0:16] = 1.0  # time token 1, row 1, column 0
    tokens = embed(video)[0, :, 0]
    assert tokens.nonzero().flatten().tolist() == [1 * 2 * 2 + 1 * 2 + 0]


class _CountTorchCalls(TorchFunctionMode):
    """Counts every torch function call made while active (tensor methods included)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        self.calls += 1
        return func(*args, **(kwargs or {}))


def test_masks_are_vectorised_over_the_batch() -> None:
    """The number of torch calls does not grow with the batch: no Python loop over samples.

    Counted, not timed: a wall-clock bound fails on a busy machine and passes a slow loop on a fast one.
    """
    for make in (
        lambda batch: tube_mask(batch, 4, 2, 2, 0.5, generator=torch.Generator().manual_seed(0)),
        lambda batch: running_cell_mask(batch, 4, 2, 2, generator=torch.Generator().manual_seed(0)),
    ):
        counts = {}
        for batch in (2, 1_000):
            with _CountTorchCalls() as counter:
                mask = make(batch)
            counts[batch] = counter.calls
            assert mask.shape == (batch, 16)
        assert counts[2] > 0 and counts[1_000] == counts[2], counts
