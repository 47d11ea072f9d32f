"""The conv patch stem and the full-resolution heat-map heads (tracking and detection)."""

from __future__ import annotations

import pytest
import torch

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForTracking,
    soft_argmax_2d,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _config(**overrides) -> MedicaneVideoMAEConfig:
    return MedicaneVideoMAEConfig.from_preset("tiny", patch_embedding="conv", **overrides)


def _clip(batch: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.randn(batch, 16, 3, 64, 64, generator=torch.Generator().manual_seed(seed))


def test_conv_stem_channels_halve_down_to_one_value_per_patch() -> None:
    config = _config()
    # 16-px patch: full resolution + 4 halvings, capped at 96
    assert config.stem_channels == [8, 16, 32, 64, 96]
    stem = MedicaneVideoMAEForTracking(config).videomae.embeddings.patch_embeddings
    assert [conv.stride[0] for conv in stem.stem] == [1, 2, 2, 2, 2]
    assert stem(_clip()).shape == (2, config.num_tokens, config.hidden_size)


def test_conv_stem_token_sees_only_its_own_patch() -> None:
    # what keeps masked pre-training honest: a change inside one tubelet-patch moves exactly one token
    stem = MedicaneVideoMAEForTracking(_config()).videomae.embeddings.patch_embeddings
    clip = _clip()
    changed = clip.clone()
    changed[:, 2:4, :, 16:32, 32:48] += 1.0  # tubelet 1, row 1, column 2 of a 4 x 4 grid
    moved = (stem(clip) - stem(changed)).abs().sum(-1) > 0
    assert moved.sum(dim=1).tolist() == [1, 1]
    assert moved[0].nonzero().item() == 1 * 16 + 1 * 4 + 2


def test_conv_stem_embeds_visible_tokens_as_the_full_embedding_does() -> None:
    model = MedicaneVideoMAEForPreTraining(_config(encoder_mask_ratio=0.75))
    stem = model.videomae.embeddings.patch_embeddings
    clip = _clip()
    mask = model.make_encoder_mask(2, generator=torch.Generator().manual_seed(1))
    full = stem(clip)[~mask].reshape(2, -1, model.config.hidden_size)
    torch.testing.assert_close(stem(clip, mask), full)
    assert torch.isfinite(model(clip, bool_masked_pos=mask).loss)


def test_conv_stem_refuses_a_patch_that_does_not_halve_to_one_pixel() -> None:
    with pytest.raises(ValueError, match="power of two"):
        MedicaneVideoMAEConfig.from_preset("tiny", patch_embedding="conv", patch_size=12, image_size=48)


def test_soft_argmax_finds_a_sharp_peak_to_a_fraction_of_a_pixel() -> None:
    logits = torch.full((1, 64, 64), -50.0)
    logits[0, 10, 40] = 50.0  # row 10, column 40
    assert soft_argmax_2d(logits).tolist() == [[40.0, 10.0]]
    # two equal peaks: the expectation lies halfway, a sub-pixel position
    logits[0, 11, 40] = 50.0
    torch.testing.assert_close(soft_argmax_2d(logits), torch.tensor([[40.0, 10.5]]))


def test_heatmap_tracker_starts_near_the_tile_centre_and_learns_one_clip() -> None:
    torch.manual_seed(0)
    model = MedicaneVideoMAEForTracking(_config(tracking_head="heatmap"))
    clip, target = _clip(1), torch.tensor([[12.0, 50.0]])
    untrained = model(clip)
    start, start_spread = untrained.logits, untrained.centre_spread
    assert (start - 31.5).abs().max() < 2.0  # a near-flat map: the expectation is about the tile centre
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(60):
        optimizer.zero_grad()
        model(clip, labels=target).loss.backward()
        optimizer.step()
    # measured 0.04-0.12 px after 60 steps (init seeds 0-2) from 27 px untrained: a 3 px bar has a 25x margin
    assert (model(clip).logits - target).norm() < 3.0
    # the spread shrinks as the map sharpens (an untrained near-flat 64-px map spreads ~18 px) and scales with
    # the config's calibration factor
    trained = model(clip).centre_spread
    assert start_spread.shape == (1,) and start_spread.item() > 10.0 and trained.item() < 3.0
    model.config.tracking_spread_scale = 2.0
    torch.testing.assert_close(model(clip).centre_spread, 2.0 * trained)


def test_heatmap_heads_refuse_masked_tokens_and_share_keys_between_tracker_and_detector(tmp_path) -> None:
    tracker = MedicaneVideoMAEForTracking(_config(tracking_head="heatmap"))
    mask = torch.zeros(1, tracker.config.num_tokens, dtype=torch.bool)
    mask[:, :64] = True
    with pytest.raises(ValueError, match="needs every token"):
        tracker(_clip(1), bool_masked_pos=mask)
    tracker.save_pretrained(tmp_path)
    detector, info = MedicaneVideoMAEForDetection.from_pretrained(
        tmp_path, detection_pooling="heatmap", output_loading_info=True
    )
    assert not [k for k in info["missing_keys"] if "heatmap_head" in k]  # the pixel head carries over
    assert sorted(info["missing_keys"]) == ["classifier.bias", "classifier.weight"]
    torch.testing.assert_close(
        detector.heatmap_head.heatmap_fine[0].weight, tracker.heatmap_head.heatmap_fine[0].weight
    )
    output = detector(_clip(), labels=torch.tensor([0, 1]))
    assert output.logits.shape == (2, 2) and output.embeddings.shape == (2, detector.config.heatmap_channels)
    assert torch.isfinite(output.loss)


def test_subpixel_centre_loss_is_smallest_where_the_soft_argmax_is_the_centre() -> None:
    from medicane_hf.modeling_medicane import centre_loss

    centre = torch.tensor([[10.3, 20.7], [float("nan"), float("nan")]])  # the second row has no storm
    logits = torch.zeros(2, 64, 64, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        centre_loss(logits, centre, subpixel=True).backward()
        optimizer.step()
    # the bilinear target's expectation is the centre itself (500 steps of this optimiser: 10.304, 20.702)
    torch.testing.assert_close(soft_argmax_2d(logits[:1]), centre[:1], atol=0.05, rtol=0)
    assert logits.grad[1].abs().sum() == 0  # a row without a centre does not count
    # the one-pixel (detection) target puts every weight on the rounded pixel instead
    assert centre_loss(torch.zeros(1, 64, 64), centre[:1]).item() == pytest.approx(
        float(torch.log(torch.tensor(4096.0)))
    )


def test_gaussian_centre_target_is_learnt_where_its_peak_is() -> None:
    from medicane_hf.modeling_medicane import centre_loss, peak_readout_with_spread

    centre = torch.tensor([[10.3, 20.7]])
    logits = torch.zeros(1, 64, 64, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.5)
    for _ in range(300):
        optimizer.zero_grad()
        centre_loss(logits, centre, sigma=1.5).backward()
        optimizer.step()
    peak, spread = peak_readout_with_spread(logits.detach(), radius=3.0)
    torch.testing.assert_close(peak, centre, atol=0.1, rtol=0)
    # the map learnt the target's own blur: an isotropic Gaussian of sigma 1.5 has this spread (a little
    # less: the 3-px window and the optimiser's 300 steps), not a sharp peak
    assert 1.0 < spread.item() < 1.7


def _fit_map_to_scattered_labels(label_noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One 48x48 map fitted to 64 labels scattered (sigma 1.5 px per axis) about an eye at (30.4, 25.6): (peak, spread)."""
    from medicane_hf.modeling_medicane import centre_loss, peak_readout_with_spread

    eye = torch.tensor([30.4, 25.6])
    labels = eye + 1.5 * torch.randn(64, 2, generator=torch.Generator().manual_seed(0))
    logits = torch.zeros(1, 48, 48, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=0.3)
    for _ in range(150):
        optimizer.zero_grad()
        centre_loss(logits.expand(64, 48, 48), labels, sigma=0.5, label_noise=label_noise).backward()
        optimizer.step()
    return peak_readout_with_spread(logits.detach(), radius=3.0)


def test_label_noise_correction_fits_the_map_to_the_eye_not_to_the_labels_scatter() -> None:
    plain_peak, plain_spread = _fit_map_to_scattered_labels(0.0)
    corrected_peak, corrected_spread = _fit_map_to_scattered_labels(1.5)
    # uncorrected, the map learns the labels' scatter (sigma 1.6 px with the 0.5-px target); told the labels'
    # error, it keeps little more than the target's own width (measured 1.70 vs 0.83 px; 1.63 vs 0.72 with 256
    # labels and 400 steps)
    assert plain_spread.item() > 1.3 and corrected_spread.item() < 0.6 * plain_spread.item()
    # both still peak at the eye (the labels' mean is 0.15 px from it)
    for peak in (plain_peak, corrected_peak):
        torch.testing.assert_close(peak, torch.tensor([[30.4, 25.6]]), atol=0.3, rtol=0)


def test_label_noise_blur_keeps_mass_inside_and_has_the_noise_width() -> None:
    from medicane_hf.modeling_medicane import gaussian_blur_probabilities

    weights = torch.zeros(2, 64, 64)
    weights[0, 32, 20] = 1.0  # inside: all the mass stays on the tile
    weights[1, 0, 0] = 1.0  # in a corner: per axis the kernel's half past the edge is lost, (0.5 + k(0) / 2)^2
    blurred = gaussian_blur_probabilities(weights, 2.0)
    assert blurred[0].sum().item() == pytest.approx(1.0, abs=1e-5)
    assert blurred[1].sum().item() == pytest.approx(0.360, abs=0.002)
    xs = torch.arange(64.0)
    row_mass = blurred[0].sum(dim=0)
    assert (row_mass * (xs - 20) ** 2).sum().sqrt().item() == pytest.approx(2.0, abs=0.05)


def test_label_noise_must_not_be_negative() -> None:
    with pytest.raises(ValueError, match="heatmap_label_noise=-1.0"):
        _config(tracking_head="heatmap", tracking_loss="heatmap", heatmap_label_noise=-1.0)


def test_peak_readout_ignores_a_second_candidate_that_pulls_the_soft_argmax() -> None:
    from medicane_hf.modeling_medicane import peak_readout_with_spread, soft_argmax_with_spread

    logits = torch.full((1, 64, 64), -30.0)
    logits[0, 20, 10] = 0.0  # the storm: 60 % of the mass
    logits[0, 50, 50] = float(torch.log(torch.tensor(2 / 3)))  # a look-alike: 40 %
    soft, soft_spread = soft_argmax_with_spread(logits)
    peak, peak_spread = peak_readout_with_spread(logits, radius=3.0)
    torch.testing.assert_close(peak, torch.tensor([[10.0, 20.0]]), atol=1e-4, rtol=0)
    assert soft[0, 0].item() == pytest.approx(0.6 * 10 + 0.4 * 50, abs=1e-3)  # between the two: wrong for both
    # about the peak, the look-alike's 40 % at 50 px makes the spread large: the map says it is unsure
    assert peak_spread.item() > soft_spread.item() > 10


def test_likelihood_tracking_loss_and_peak_readout() -> None:
    model = MedicaneVideoMAEForTracking(
        _config(tracking_head="heatmap", tracking_loss="heatmap", tracking_readout="peak", heatmap_target_sigma=1.0)
    )
    labels = torch.tensor([[10.0, 50.0], [40.5, 3.25]])
    output = model(_clip(), labels=labels)
    assert output.logits.shape == (2, 2) and output.centre_spread.shape == (2,)
    # the loss is the heat map's negative log-likelihood alone: a nearly flat map at initialisation costs about
    # log(64 * 64) nats
    assert output.loss.item() == pytest.approx(float(torch.log(torch.tensor(4096.0))), rel=0.05)
    output.loss.backward()
    assert model.heatmap_head.heatmap_score.weight.grad.abs().sum() > 0


def test_likelihood_tracking_loss_needs_the_heatmap_head() -> None:
    with pytest.raises(ValueError, match="tracking_loss='heatmap'.*tracking_head='heatmap'"):
        _config(tracking_head="pooled", tracking_loss="heatmap")
    with pytest.raises(ValueError, match="tracking_readout"):
        _config(tracking_head="heatmap", tracking_readout="mode")
