"""The detector's optional grid position (``detection_position``): the heat map's storm placed on the grid."""

from __future__ import annotations

import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.data.geo import SeviriGrid
from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForTracking,
    fourier_features,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

GRID = SeviriGrid(width=384, height=128).to_dict()


def _config(**overrides) -> MedicaneVideoMAEConfig:
    settings = {"patch_embedding": "conv", "detection_pooling": "heatmap", "grid": GRID, **overrides}
    return MedicaneVideoMAEConfig.from_preset("tiny", **settings)


def _clip(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 16, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def _pair(seed: int = 0) -> tuple[MedicaneVideoMAEForDetection, MedicaneVideoMAEForDetection]:
    """A pixel-only detector and a position detector with the same weights otherwise."""
    torch.manual_seed(seed)
    plain = MedicaneVideoMAEForDetection(_config()).eval()
    position = MedicaneVideoMAEForDetection(_config(detection_position=True)).eval()
    missing, unexpected = position.load_state_dict(plain.state_dict(), strict=False)
    assert sorted(missing) == ["position_embedding.bias", "position_embedding.weight"] and not unexpected
    return plain, position


def test_fourier_features_of_a_grid_position() -> None:
    features = fourier_features(torch.tensor([[0.25, 0.0]]))
    assert features.shape == (1, 16)
    # x = 0.25: sin(2 pi k 0.25) for k = 1, 2, 4, 8 is 1, 0, 0, 0; y = 0: every sine 0, every cosine 1
    torch.testing.assert_close(features[0, :4], torch.tensor([1.0, 0.0, 0.0, 0.0]), atol=1e-6, rtol=0)
    torch.testing.assert_close(features[0, 8:12], torch.zeros(4), atol=1e-6, rtol=0)
    torch.testing.assert_close(features[0, 12:], torch.ones(4))


@torch.no_grad()
def test_position_starts_as_the_pixel_only_head_and_then_depends_on_the_tile_offset() -> None:
    plain, position = _pair()
    clip = _clip()
    offsets = torch.tensor([[0.0, 0.0], [300.0, 40.0]])
    assert position.position_embedding.weight.abs().sum() == 0
    # zero-initialised: exactly the pixel-only model, wherever the tile lies
    expected = plain(clip).logits
    assert torch.equal(position(clip, tile_offset=offsets).logits, expected)
    assert torch.equal(position(clip, tile_offset=offsets.flip(0)).logits, expected)
    # once the position embedding has weights, the same pixels at another grid position score differently
    torch.nn.init.normal_(position.position_embedding.weight, std=1.0)
    here = position(clip, tile_offset=offsets).logits
    elsewhere = position(clip, tile_offset=offsets + torch.tensor([[100.0, 30.0]])).logits
    assert (here - elsewhere).abs().min() > 1e-4


def test_grid_position_is_the_heat_maps_centre_plus_the_offset_over_the_grid_size() -> None:
    _, model = _pair()
    heat = torch.full((1, 64, 64), -50.0)
    heat[0, 10, 40] = 50.0  # row 10, column 40 of the tile
    heat.requires_grad_(True)
    where = model.grid_position(heat, torch.tensor([[300.0, 40.0]]))
    torch.testing.assert_close(where, torch.tensor([[340.0 / 384, 50.0 / 128]]))
    assert not where.requires_grad  # detached: the position term does not shape the heat map


def test_position_embedding_learns_from_zero() -> None:
    _, model = _pair()
    model.train()
    output = model(
        _clip(), labels=torch.tensor([0, 1]), tile_offset=torch.tensor([[10.0, 5.0], [200.0, 60.0]])
    )
    output.loss.backward()
    assert model.position_embedding.weight.grad.abs().sum() > 0  # zero weights, non-zero gradient


def test_position_needs_the_tile_offset_the_heatmap_pooling_and_a_grid() -> None:
    _, model = _pair()
    with pytest.raises(ValueError, match=r"tile_offset.*\[B, 2\]"):
        model(_clip())
    with pytest.raises(ValueError, match="detection_position.*detection_pooling"):
        _config(detection_pooling="mean", detection_position=True)
    no_grid = MedicaneVideoMAEForDetection(_config(detection_position=True, grid=None)).eval()
    with pytest.raises(ValueError, match="no grid"):
        no_grid(_clip(), tile_offset=torch.zeros(2, 2))


@torch.no_grad()
def test_models_without_position_ignore_the_tile_offset() -> None:
    clip, offsets = _clip(), torch.tensor([[0.0, 0.0], [300.0, 40.0]])
    for pooling in ("heatmap", "mean"):
        torch.manual_seed(0)
        model = MedicaneVideoMAEForDetection(_config(detection_pooling=pooling)).eval()
        assert model.position_embedding is None
        assert torch.equal(model(clip, tile_offset=offsets).logits, model(clip).logits)
    # the tracker takes it too (a batch may carry it) and does not hand it to its encoder
    tracker = MedicaneVideoMAEForTracking(_config(tracking_head="heatmap")).eval()
    assert torch.equal(tracker(clip, tile_offset=offsets).logits, tracker(clip).logits)


@torch.no_grad()
def test_position_detector_round_trips_through_save_pretrained(tmp_path) -> None:
    _, model = _pair()
    torch.nn.init.normal_(model.position_embedding.weight, std=1.0)
    clip, offsets = _clip(), torch.tensor([[12.0, 3.0], [250.0, 60.0]])
    model.save_pretrained(tmp_path)
    loaded = MedicaneVideoMAEForDetection.from_pretrained(tmp_path).eval()
    assert loaded.config.detection_position is True and loaded.config.grid["width"] == 384
    torch.testing.assert_close(
        loaded(clip, tile_offset=offsets).logits, model(clip, tile_offset=offsets).logits
    )
