"""Token masks for VideoMAE v2 dual masking: tube masks for the encoder, running-cell masks for the decoder.

Mask contract (every function here, and every model in `modeling_medicane`):

* a mask is a bool tensor of shape ``(batch, seq_len)`` with
  ``seq_len = (num_frames / tubelet_size) * (height / patch_size) * (width / patch_size)``;
* tokens are ordered time-major, then row (north to south), then column (west to east): token
  ``t * grid_h * grid_w + row * grid_w + col``. This is the order of transformers' VideoMAE patch embedding
  (a Conv3d over ``[B, C, T, H, W]`` whose output is flattened over ``(T', H', W')``);
* every sample of a batch has the same number of True values, so that ``x[~mask].reshape(batch, -1, dim)``
  keeps the batch rectangular.

`tube_mask` returns True = hidden from the encoder (transformers' ``bool_masked_pos``);
`running_cell_mask` returns True = reconstructed by the decoder.

All functions are vectorised over the batch (argsort of noise, index arithmetic); none loops in Python over
samples.
"""

from __future__ import annotations

import torch

# A running cell visits the four positions of a 2x2 cell in this (row, column) order: around the cell, so that
# the positions kept at one time step are always an edge-sharing pair and the pair turns by one position per step.
_CELL_CYCLE = ((0, 0), (0, 1), (1, 1), (1, 0))


def num_masked_per_frame(grid_h: int, grid_w: int, ratio: float) -> int:
    """Spatial positions a tube mask hides in each frame: ``round(ratio * grid_h * grid_w)``, halves rounded up."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(
            f"mask ratio {ratio} must be in [0, 1): the encoder needs at least one visible token"
        )
    return int(ratio * grid_h * grid_w + 0.5)


def _noise(
    shape: tuple[int, ...], generator: torch.Generator | None, device: torch.device | str | None
) -> torch.Tensor:
    """Uniform noise drawn on the generator's device (so a CPU generator gives the same masks everywhere)."""
    draw_device = generator.device if generator is not None else device
    return torch.rand(shape, generator=generator, device=draw_device).to(device)


def tube_mask(
    batch: int,
    num_frames_tokens: int,
    grid_h: int,
    grid_w: int,
    ratio: float,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Tube mask: one random spatial mask per sample, repeated over every time step.

    Args:
        batch: number of samples B.
        num_frames_tokens: T' = num_frames / tubelet_size.
        grid_h, grid_w: token rows H' = height / patch and columns W' = width / patch.
        ratio: fraction of the H' * W' positions to hide; exactly ``num_masked_per_frame`` of them per frame.
        generator: optional torch.Generator for reproducible masks.
        device: device of the returned mask.

    Returns:
        bool ``[B, T' * H' * W']``, True = hidden from the encoder; the same count in every sample.
    """
    num_positions = grid_h * grid_w
    num_masked = num_masked_per_frame(grid_h, grid_w, ratio)
    # The rank of each position in a random permutation; the lowest `num_masked` ranks are hidden.
    ranks = _noise((batch, num_positions), generator, device).argsort(dim=1).argsort(dim=1)
    spatial = ranks < num_masked
    return spatial.unsqueeze(1).expand(batch, num_frames_tokens, num_positions).reshape(batch, -1)


def running_cell_mask(
    batch: int,
    num_frames_tokens: int,
    grid_h: int,
    grid_w: int,
    ratio: float = 0.5,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Running-cell decoder mask (VideoMAE v2): which tokens the decoder reconstructs.

    The token grid is cut into 2x2 spatial cells. In every cell, ``4 * (1 - ratio)`` of the four positions are
    kept at each time step (2 for ratio 0.5), a run of consecutive positions along the cycle
    (0,0) -> (0,1) -> (1,1) -> (1,0); the run moves one position along the cycle per time step, so over any 4
    consecutive steps every position is kept exactly ``4 * (1 - ratio)`` times. Each sample starts at a random
    offset (0..3), shared by all its cells.

    Odd grid sizes: the last row (odd H') or column (odd W') belongs to cells cut in half by the edge; those
    positions follow the pattern of the uncut cell. A cut cell can then keep more or fewer than half its positions
    at one time step, so the per-step count varies between samples; the count over the whole clip is still equal
    across samples when T' is a multiple of 4 (every position is kept ``T' * (1 - ratio)`` times).

    Args:
        batch, num_frames_tokens, grid_h, grid_w: as in `tube_mask`.
        ratio: fraction of each cell NOT reconstructed: 0.25, 0.5 (VideoMAE v2) or 0.75.
        generator, device: as in `tube_mask`.

    Returns:
        bool ``[B, T' * H' * W']``, True = reconstructed (kept for the decoder).
    """
    num_dropped = round(4 * ratio)
    if num_dropped not in (1, 2, 3) or abs(4 * ratio - num_dropped) > 1e-9:
        raise ValueError(
            f"running-cell ratio {ratio} must be 0.25, 0.5 or 0.75 (a whole number of 2x2 positions)"
        )
    num_kept = 4 - num_dropped

    # Each token's place on the cell cycle (0..3), from its row and column parity.
    cycle_index = torch.empty(2, 2, dtype=torch.long)
    for step, (row, col) in enumerate(_CELL_CYCLE):
        cycle_index[row, col] = step
    rows = torch.arange(grid_h) % 2
    cols = torch.arange(grid_w) % 2
    place = cycle_index[rows[:, None], cols[None, :]].reshape(1, 1, -1)  # [1, 1, H'*W']

    offset = (_noise((batch,), generator, "cpu") * 4).long().clamp_(max=3).reshape(batch, 1, 1)
    time = torch.arange(num_frames_tokens).reshape(1, -1, 1)
    # Position `place` is kept at step t when it is within `num_kept` steps after the run's start.
    kept = (place - offset - time) % 4 < num_kept  # [B, T', H'*W']
    return kept.reshape(batch, -1).to(device)


def decoder_targets(
    encoder_mask: torch.Tensor, decoder_keep: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions the decoder processes as mask tokens, and which of them count in the loss.

    The loss covers tokens hidden from the encoder AND kept by the decoder mask. Their number can differ
    between samples (e.g. a user-given encoder mask, or T' not a multiple of 4); to keep the batch rectangular,
    samples with fewer are topped up with other encoder-masked tokens, which are decoded but weigh 0 in the loss.

    Args:
        encoder_mask: bool ``[B, N]``, True = hidden from the encoder.
        decoder_keep: bool ``[B, N]``, True = reconstructed; None reconstructs every masked token.

    Returns:
        positions: long ``[B, n_dec]``, token indices in ascending order;
        weights: bool ``[B, n_dec]``, True where the position counts in the loss.
    """
    scored = encoder_mask if decoder_keep is None else encoder_mask & decoder_keep
    num_decoded = int(scored.sum(dim=1).max())
    num_tokens = encoder_mask.shape[1]
    # Scored tokens first, then other masked tokens, then visible ones; ties by position (stable sort).
    priority = scored.long() * 2 + encoder_mask.long()
    order = torch.sort(priority, dim=1, descending=True, stable=True).indices[:, :num_decoded]
    positions = order.sort(dim=1).values
    if num_decoded and bool((encoder_mask.gather(1, positions) == 0).any()):
        raise ValueError(
            f"a sample has fewer than {num_decoded} masked tokens out of {num_tokens}: "
            "the encoder mask must hide the same number of tokens in every sample"
        )
    return positions, scored.gather(1, positions)


__all__ = ["decoder_targets", "num_masked_per_frame", "running_cell_mask", "tube_mask"]
