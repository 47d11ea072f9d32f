"""The Medicane VideoMAE family on the tiny preset: shapes, losses, loading, attention backends, data contract."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
    VideoMAEConfig,
    VideoMAEModel,
)
from transformers.models.videomae.modeling_videomae import get_sinusoid_encoding_table

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.masking import running_cell_mask, tube_mask
from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForTracking,
    MedicaneVideoMAEModel,
    patchify,
    sinusoid_position_table,
    unpatchify,
)

BATCH = 2
ALL_CLASSES = [
    MedicaneVideoMAEModel,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForTracking,
]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny(**overrides) -> MedicaneVideoMAEConfig:
    return MedicaneVideoMAEConfig.from_preset("tiny", **overrides)


def clip(config: MedicaneVideoMAEConfig, batch: int = BATCH, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    height, width = config.image_height_width
    return torch.randn(batch, config.num_frames, config.num_channels, height, width, generator=generator)


def fixed_masks(config: MedicaneVideoMAEConfig, batch: int = BATCH) -> dict[str, torch.Tensor]:
    grid_t, grid_h, grid_w = config.token_grid
    generator = torch.Generator().manual_seed(7)
    return {
        "bool_masked_pos": tube_mask(
            batch, grid_t, grid_h, grid_w, config.encoder_mask_ratio, generator=generator
        ),
        "decoder_mask": running_cell_mask(batch, grid_t, grid_h, grid_w, 0.5, generator=generator),
    }


def build(model_class: type, config: MedicaneVideoMAEConfig, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return model_class(config)


def run(model: torch.nn.Module, pixel_values: torch.Tensor, **kwargs):
    if isinstance(model, MedicaneVideoMAEForPreTraining) and "bool_masked_pos" not in kwargs:
        kwargs.update(fixed_masks(model.config, pixel_values.shape[0]))
    return model(pixel_values, **kwargs)


def main_output(model: torch.nn.Module, outputs) -> torch.Tensor:
    return outputs.last_hidden_state if isinstance(model, MedicaneVideoMAEModel) else outputs.logits


# ---------------------------------------------------------------------------------------------- shapes


def test_encoder_shapes_with_and_without_mask() -> None:
    config = tiny()
    model = build(MedicaneVideoMAEModel, config).eval()
    x = clip(config)
    assert model(x).last_hidden_state.shape == (BATCH, 128, 96)
    masks = fixed_masks(config)
    assert model(x, bool_masked_pos=masks["bool_masked_pos"]).last_hidden_state.shape == (BATCH, 32, 96)
    outputs = model(x, output_hidden_states=True)
    assert len(outputs.hidden_states) == config.num_hidden_layers + 1
    assert all(h.shape == (BATCH, 128, 96) for h in outputs.hidden_states)


def test_masked_encoder_equals_the_full_encoder_on_visible_tokens_in_the_first_layer() -> None:
    """Visible-only patch embedding (a matmul) gives the Conv3d's numbers at the visible positions."""
    config = tiny()
    model = build(MedicaneVideoMAEModel, config).eval()
    x = clip(config)
    mask = fixed_masks(config)["bool_masked_pos"]
    with torch.no_grad():
        full = model.embeddings(x)
        visible = model.embeddings(x, bool_masked_pos=mask)
    torch.testing.assert_close(visible, full[~mask].reshape(BATCH, -1, 96), atol=1e-5, rtol=1e-5)


def test_pretraining_output_shapes_and_masks() -> None:
    config = tiny(encoder_mask_ratio=0.75)
    model = build(MedicaneVideoMAEForPreTraining, config)
    outputs = model(clip(config), generator=torch.Generator().manual_seed(0))
    # 4x4 grid, 12 of 16 positions hidden in each of 8 time steps; the running cell keeps half of them.
    assert outputs.bool_masked_pos.shape == (BATCH, 128) and (outputs.bool_masked_pos.sum(1) == 96).all()
    assert outputs.logits.shape == (BATCH, 48, config.patch_dim) == (BATCH, 48, 2 * 16 * 16 * 3)
    assert (outputs.decoder_mask.sum(1) == 48).all()
    assert (outputs.decoder_mask & ~outputs.bool_masked_pos).sum() == 0
    assert outputs.decoded_positions.shape == (BATCH, 48)
    assert outputs.loss.ndim == 0 and torch.isfinite(outputs.loss)


def test_pretraining_without_decoder_mask_reconstructs_every_hidden_token() -> None:
    config = tiny(decoder_mask_type="none")
    outputs = build(MedicaneVideoMAEForPreTraining, config)(clip(config))
    assert outputs.logits.shape[1] == 96
    assert torch.equal(outputs.decoder_mask, outputs.bool_masked_pos)


def test_pretraining_draws_the_decoder_mask_from_the_config_when_only_the_encoder_mask_is_given() -> None:
    config = tiny()
    model = build(MedicaneVideoMAEForPreTraining, config)
    outputs = model(clip(config), bool_masked_pos=fixed_masks(config)["bool_masked_pos"])
    assert outputs.logits.shape[1] == 48 and (outputs.decoder_mask.sum(1) == 48).all()


def test_pretraining_with_unequal_dual_mask_counts_keeps_the_batch_rectangular() -> None:
    """4 frames = 2 time steps: the running cell keeps 1 or 2 steps of each hidden position, varying per sample."""
    config = tiny(num_frames=4)
    model = build(MedicaneVideoMAEForPreTraining, config)
    outputs = model(clip(config, batch=8), generator=torch.Generator().manual_seed(0))
    counts = outputs.decoder_mask.sum(1)
    assert counts.min() < counts.max() == outputs.logits.shape[1]
    assert torch.isfinite(outputs.loss)


def test_pretraining_signature_lets_trainer_evaluate_the_loss_without_labels() -> None:
    from transformers.utils.generic import can_return_loss, find_labels

    assert (
        can_return_loss(MedicaneVideoMAEForPreTraining) and find_labels(MedicaneVideoMAEForPreTraining) == []
    )
    assert find_labels(MedicaneVideoMAEForDetection) == ["labels"] == find_labels(MedicaneVideoMAEForTracking)
    config = tiny()
    outputs = build(MedicaneVideoMAEForPreTraining, config)(clip(config), return_loss=False)
    assert outputs.loss is None and outputs.logits.shape == (BATCH, 48, config.patch_dim)


def test_head_shapes_and_attentions_with_eager() -> None:
    config = tiny(num_labels=3)
    x = clip(config)
    detector = build(MedicaneVideoMAEForDetection, config)
    detector.set_attn_implementation("eager")
    outputs = detector(x, output_attentions=True, output_hidden_states=True)
    assert outputs.logits.shape == (BATCH, 3) and outputs.embeddings.shape == (BATCH, 96)
    assert len(outputs.attentions) == 4 and outputs.attentions[0].shape == (BATCH, 4, 128, 128)
    assert len(outputs.hidden_states) == 5
    tracker = build(MedicaneVideoMAEForTracking, config)
    outputs = tracker(x)
    assert outputs.logits.shape == (BATCH, 2) and outputs.embeddings.shape == (BATCH, 96)


def test_return_dict_false_gives_a_tuple_with_loss_first() -> None:
    config = tiny()
    outputs = build(MedicaneVideoMAEForDetection, config)(
        clip(config), labels=torch.tensor([0, 1]), return_dict=False
    )
    assert isinstance(outputs, tuple) and outputs[0].ndim == 0 and outputs[1].shape == (BATCH, 2)


# ---------------------------------------------------------------------------------------------- training


def _train_losses(model: torch.nn.Module, steps: int, lr: float, **batch) -> list[float]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(**batch).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_pretraining_loss_decreases_on_a_repeated_batch() -> None:
    config = tiny(image_size=32)  # 2x2 token grid: a few seconds even on a busy CPU
    model = build(MedicaneVideoMAEForPreTraining, config)
    losses = _train_losses(model, 15, 2e-3, pixel_values=clip(config), **fixed_masks(config))
    assert losses[-1] < 0.9 * losses[0]


def test_detection_loss_decreases_on_a_repeated_batch() -> None:
    config = tiny(image_size=32)
    model = build(MedicaneVideoMAEForDetection, config)
    losses = _train_losses(model, 8, 1e-3, pixel_values=clip(config), labels=torch.tensor([0, 1]))
    assert losses[-1] < 0.5 * losses[0]


def test_pretraining_target_is_unnormalised_pixels_with_config_statistics() -> None:
    """With norm_pix_loss off, the loss is the MSE against pixel_values * std + mean, patchified."""
    config = tiny(norm_pix_loss=False, image_mean=[0.1, 0.2, 0.3], image_std=[0.5, 0.6, 0.7])
    model = build(MedicaneVideoMAEForPreTraining, config).eval()
    x = clip(config)
    outputs = run(model, x)
    mean = torch.tensor(config.image_mean).view(1, 1, 3, 1, 1)
    std = torch.tensor(config.image_std).view(1, 1, 3, 1, 1)
    targets = patchify(x * std + mean, 2, (16, 16))
    index = outputs.decoded_positions.unsqueeze(-1).expand(-1, -1, targets.shape[-1])
    expected = F.mse_loss(outputs.logits, targets.gather(1, index))
    torch.testing.assert_close(outputs.loss, expected)


def test_patchify_round_trip() -> None:
    video = torch.randn(2, 4, 3, 32, 48)
    tokens = patchify(video, 2, (16, 16))
    assert tokens.shape == (2, 2 * 2 * 3, 2 * 16 * 16 * 3)
    assert torch.equal(unpatchify(tokens, (2, 2, 3), 2, (16, 16), 3), video)


# ---------------------------------------------------------------------------------------------- save / load


@pytest.mark.parametrize("model_class", ALL_CLASSES)
def test_save_load_round_trip_gives_identical_outputs(model_class: type, tmp_path: Path) -> None:
    config = tiny(drop_path_rate=0.1, label_smoothing=0.1)
    model = build(model_class, config).eval()
    x = clip(config)
    with torch.no_grad():
        before = main_output(model, run(model, x))
    model.save_pretrained(tmp_path)
    loaded, info = model_class.from_pretrained(tmp_path, output_loading_info=True)
    loaded.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"]
    with torch.no_grad():
        after = main_output(loaded, run(loaded, x))
    assert torch.equal(before, after)


def test_config_round_trip_keeps_the_data_contract(tmp_path: Path) -> None:
    grid = {
        "width": 384,
        "height": 128,
        "lower_left": [-7.0, 30.0],
        "upper_right": [46.0, 48.0],
        "lon_0": 9.5,
    }
    config = tiny(
        num_labels=3,
        image_mean=[0.4, 0.5, 0.6],
        image_std=[0.2, 0.3, 0.1],
        frame_interval_minutes=15,
        grid=grid,
        tiles={"tile_size": 64, "stride_x": 64, "stride_y": 64},
        class_weights=[1.0, 5.0, 2.0],
        label_smoothing=0.1,
        tracking_loss="huber",
        drop_path_rate=0.1,
        encoder_mask_ratio=0.9,
        decoder_mask_type="none",
    )
    config.save_pretrained(tmp_path)
    loaded = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(loaded, MedicaneVideoMAEConfig)
    for key in (
        "image_mean",
        "image_std",
        "frame_interval_minutes",
        "grid",
        "tiles",
        "class_weights",
        "label_smoothing",
        "tracking_loss",
        "drop_path_rate",
        "encoder_mask_ratio",
        "decoder_mask_type",
        "image_size",
        "num_frames",
        "num_channels",
    ):
        assert getattr(loaded, key) == getattr(config, key), key
    assert loaded.id2label == {0: "background", 1: "medicane", 2: "neighbouring"}


def test_auto_classes_round_trip(tmp_path: Path) -> None:
    config = tiny()
    build(MedicaneVideoMAEForPreTraining, config).save_pretrained(tmp_path / "pretrain")
    assert isinstance(
        AutoModelForPreTraining.from_pretrained(tmp_path / "pretrain"), MedicaneVideoMAEForPreTraining
    )
    assert isinstance(AutoModel.from_pretrained(tmp_path / "pretrain"), MedicaneVideoMAEModel)
    detector = AutoModelForVideoClassification.from_pretrained(tmp_path / "pretrain")
    assert isinstance(detector, MedicaneVideoMAEForDetection)


@pytest.mark.parametrize(
    "head_class", [MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking, MedicaneVideoMAEModel]
)
def test_pretraining_checkpoint_loads_every_encoder_tensor_into_heads(
    head_class: type, tmp_path: Path
) -> None:
    config = tiny()
    pretrained = build(MedicaneVideoMAEForPreTraining, config, seed=1)
    pretrained.save_pretrained(tmp_path)
    head, info = head_class.from_pretrained(tmp_path, output_loading_info=True)
    source = {
        k.removeprefix("videomae."): v
        for k, v in pretrained.state_dict().items()
        if k.startswith("videomae.")
    }
    target = head.state_dict()
    prefix = "" if head_class is MedicaneVideoMAEModel else "videomae."
    encoder_keys = [k for k in target if k.startswith(prefix) and k.removeprefix(prefix) in source]
    assert len(encoder_keys) == len(source) > 60
    for key in encoder_keys:
        assert torch.equal(target[key], source[key.removeprefix(prefix)]), key
    expected_missing = {
        MedicaneVideoMAEForDetection: {
            "fc_norm.weight",
            "fc_norm.bias",
            "classifier.weight",
            "classifier.bias",
        },
        MedicaneVideoMAEForTracking: {"fc_norm.weight", "fc_norm.bias", "regressor.weight", "regressor.bias"},
        MedicaneVideoMAEModel: set(),
    }[head_class]
    assert set(info["missing_keys"]) == expected_missing
    assert "mask_token" in info["unexpected_keys"] and "encoder_to_decoder.weight" in info["unexpected_keys"]
    assert not any(k.startswith("videomae.") for k in info["unexpected_keys"])


def test_transformers_videomae_checkpoint_loads_with_identical_outputs(tmp_path: Path) -> None:
    hf_config = VideoMAEConfig(
        image_size=64,
        patch_size=16,
        hidden_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=384,
    )
    torch.manual_seed(0)
    reference = VideoMAEModel(hf_config).eval()
    with torch.no_grad():  # non-zero q/v biases, so a lost bias would show
        for layer in reference.encoder.layer:
            layer.attention.attention.query.bias.normal_()
            layer.attention.attention.value.bias.normal_()
    reference.save_pretrained(tmp_path)
    model, info = MedicaneVideoMAEModel.from_pretrained(tmp_path, output_loading_info=True)
    assert not any(info[k] for k in ("missing_keys", "unexpected_keys", "mismatched_keys"))
    x = clip(tiny())
    with torch.no_grad():
        torch.testing.assert_close(model.eval()(x).last_hidden_state, reference(x).last_hidden_state)


def test_position_table_is_a_buffer_equal_to_videomae_and_refilled_after_loading(tmp_path: Path) -> None:
    torch.testing.assert_close(sinusoid_position_table(128, 96), get_sinusoid_encoding_table(128, 96))
    model = build(MedicaneVideoMAEForPreTraining, tiny())
    assert "videomae.embeddings.position_embeddings" not in model.state_dict()
    model.save_pretrained(tmp_path)
    loaded = MedicaneVideoMAEForDetection.from_pretrained(tmp_path)
    assert torch.equal(loaded.videomae.embeddings.position_embeddings, sinusoid_position_table(128, 96))


# ---------------------------------------------------------------------------------------------- backends


@pytest.mark.parametrize("model_class", [MedicaneVideoMAEForPreTraining, MedicaneVideoMAEForDetection])
def test_sdpa_and_eager_give_the_same_outputs(model_class: type) -> None:
    config = tiny()
    model = build(model_class, config).eval()
    x = clip(config)
    model.set_attn_implementation("sdpa")
    with torch.no_grad():
        sdpa = main_output(model, run(model, x))
    model.set_attn_implementation("eager")
    assert model.config._attn_implementation == "eager"
    with torch.no_grad():
        eager = main_output(model, run(model, x))
    torch.testing.assert_close(sdpa, eager, atol=1e-5, rtol=1e-4)


def test_attn_implementation_argument_of_from_pretrained(tmp_path: Path) -> None:
    config = tiny()
    build(MedicaneVideoMAEForDetection, config).save_pretrained(tmp_path)
    x = clip(config)
    outputs = []
    for implementation in ("sdpa", "eager"):
        model = MedicaneVideoMAEForDetection.from_pretrained(
            tmp_path, attn_implementation=implementation
        ).eval()
        assert model.config._attn_implementation == implementation
        with torch.no_grad():
            outputs.append(model(x).logits)
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-4)


def test_gradient_checkpointing_gives_the_same_gradients() -> None:
    config = tiny(drop_path_rate=0.2)
    x = clip(config)
    grads = []
    for checkpointing in (False, True):
        model = build(MedicaneVideoMAEForPreTraining, config)
        if checkpointing:
            model.activation_checkpointing_enable()
            assert model.videomae.encoder.layer[0].gradient_checkpointing
        torch.manual_seed(123)  # same DropPath draws in both runs (checkpointing replays the RNG state)
        run(model.train(), x).loss.backward()
        grads.append({name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 50
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], atol=1e-6, rtol=1e-5, msg=name)


def test_drop_path_zero_is_deterministic_in_train_mode_and_positive_is_not() -> None:
    x = clip(tiny())
    deterministic = build(MedicaneVideoMAEForDetection, tiny(drop_path_rate=0.0)).train()
    torch.testing.assert_close(deterministic(x).logits, deterministic(x).logits, atol=0, rtol=0)
    stochastic = build(MedicaneVideoMAEForDetection, tiny(drop_path_rate=0.5)).train()
    assert not torch.equal(stochastic(x).embeddings, stochastic(x).embeddings)
    stochastic.eval()
    assert torch.equal(stochastic(x).embeddings, stochastic(x).embeddings)
    # Linear over depth: 0 (no DropPath at all) in the first layer, the config's rate in the last.
    rates = [getattr(layer.drop_path, "drop_prob", 0.0) for layer in stochastic.videomae.encoder.layer]
    assert rates == pytest.approx([0.0, 0.5 / 3, 1.0 / 3, 0.5])


# ---------------------------------------------------------------------------------------------- losses


def test_detection_loss_matches_torch_cross_entropy_with_smoothing_and_weights() -> None:
    x = clip(tiny(num_labels=3), batch=4)
    labels = torch.tensor([0, 1, 2, 1])
    plain = build(MedicaneVideoMAEForDetection, tiny(num_labels=3)).eval()
    outputs = plain(x, labels=labels)
    torch.testing.assert_close(outputs.loss, F.cross_entropy(outputs.logits, labels))
    shaped = tiny(num_labels=3, label_smoothing=0.1, class_weights=[1.0, 10.0, 2.0])
    model = build(MedicaneVideoMAEForDetection, shaped).eval()
    weighted = model(x, labels=labels)
    expected = F.cross_entropy(
        weighted.logits, labels, weight=torch.tensor([1.0, 10.0, 2.0]), label_smoothing=0.1
    )
    torch.testing.assert_close(weighted.loss, expected)
    assert not torch.isclose(weighted.loss, F.cross_entropy(weighted.logits, labels))


def test_detection_pooling_summarises_the_tokens_as_configured(tmp_path: Path) -> None:
    x = clip(tiny())
    models = {pool: build(MedicaneVideoMAEForDetection, tiny(detection_pooling=pool)).eval() for pool in
              ("mean", "max", "attention")}  # fmt: skip
    with torch.no_grad():
        tokens = models["max"].videomae(x).last_hidden_state
        torch.testing.assert_close(models["max"](x).embeddings, models["max"].fc_norm(tokens.amax(dim=1)))
        # attention pooling starts as mean pooling (zero scores): same weights, same logits
        attention = models["attention"]
        score = {k: v for k, v in attention.state_dict().items() if k.startswith("pool_score.")}
        assert set(score) == {"pool_score.weight", "pool_score.bias"}
        assert all(bool((v == 0).all()) for v in score.values())
        attention.load_state_dict({**models["mean"].state_dict(), **score})
        torch.testing.assert_close(attention(x).logits, models["mean"](x).logits)
        # with scores, the embedding is the softmax-weighted mean of the tokens
        attention.pool_score.weight.normal_(0.0, 1.0)
        weights = torch.softmax(attention.pool_score(tokens), dim=1)
        assert weights.amax() > 2.0 / tokens.shape[1]  # far from uniform
        expected = attention.fc_norm((weights * tokens).sum(dim=1))
        torch.testing.assert_close(attention(x).embeddings, expected)
    assert models["mean"].pool_score is None
    attention.save_pretrained(tmp_path)
    loaded = MedicaneVideoMAEForDetection.from_pretrained(tmp_path).eval()
    assert loaded.config.detection_pooling == "attention"
    with torch.no_grad():
        torch.testing.assert_close(loaded(x).logits, attention(x).logits)


def test_tracking_returns_pixels_and_trains_in_normalised_space() -> None:
    config = tiny()
    model = build(MedicaneVideoMAEForTracking, config).eval()
    with torch.no_grad():
        model.regressor.weight.zero_()
        model.regressor.bias.zero_()
    labels = torch.tensor([[31.5, 31.5], [63.5, 0.0]])
    outputs = model(clip(config), labels=labels)
    torch.testing.assert_close(outputs.logits, torch.full((BATCH, 2), 31.5))
    # Normalised: (xy - 31.5) / 32 -> sample 1 is (1, -0.984375); MSE over the 4 values.
    expected = (1.0**2 + (31.5 / 32) ** 2) / 4
    torch.testing.assert_close(outputs.loss, torch.tensor(expected))
    huber = build(MedicaneVideoMAEForTracking, tiny(tracking_loss="huber")).eval()
    with torch.no_grad():
        huber.regressor.weight.zero_()
        huber.regressor.bias.zero_()
    expected_huber = F.huber_loss(torch.zeros(2, 2), (labels - 31.5) / 32, delta=0.1)
    torch.testing.assert_close(huber(clip(config), labels=labels).loss, expected_huber)


# ---------------------------------------------------------------------------------------------- data contract


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((2, 8, 3, 64, 64), "got 8 frames instead of 16"),
        ((2, 16, 1, 64, 64), "got 1 channels instead of 3"),
        ((2, 16, 3, 224, 224), "got 224x224 px instead of 64x64 px"),
        ((16, 3, 64, 64), "got a tensor of shape \\[16, 3, 64, 64\\]"),
    ],
)
def test_forward_refuses_clips_that_break_the_data_contract(shape: tuple[int, ...], message: str) -> None:
    model = build(MedicaneVideoMAEForDetection, tiny())
    with pytest.raises(ValueError, match="model expects 16 frames of 64x64 px with 3 channels") as error:
        model(torch.zeros(shape))
    assert error.match(message)


def test_interpolated_positions_accept_another_tile_size() -> None:
    config = tiny()
    model = build(MedicaneVideoMAEModel, config).eval()
    x = torch.randn(1, 16, 3, 96, 128)
    with torch.no_grad():
        outputs = model(x, interpolate_pos_encoding=True)
        assert outputs.last_hidden_state.shape == (1, 8 * 6 * 8, 96)
        same = model(clip(config, batch=1), interpolate_pos_encoding=True).last_hidden_state
        torch.testing.assert_close(same, model(clip(config, batch=1)).last_hidden_state)


def test_config_rejects_bad_settings_naming_the_key() -> None:
    with pytest.raises(ValueError, match="image_mean has 2 values but num_channels=3"):
        tiny(image_mean=[0.5, 0.5])
    with pytest.raises(ValueError, match="class_weights has 3 values"):
        tiny(class_weights=[1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="decoder_mask_ratio=0.3"):
        tiny(decoder_mask_ratio=0.3)
    with pytest.raises(ValueError, match="unknown model preset 'huge'"):
        MedicaneVideoMAEConfig.from_preset("huge")
    with pytest.raises(ValueError, match="detection_pooling='cls'"):
        tiny(detection_pooling="cls")


def test_presets_match_videomae_v2_sizes() -> None:
    giant = MedicaneVideoMAEConfig.from_preset("giant")
    assert (giant.hidden_size, giant.num_hidden_layers, giant.num_attention_heads) == (1408, 40, 16)
    assert (giant.intermediate_size, giant.patch_size, giant.num_tokens) == (6144, 14, 8 * 16 * 16)
    small = MedicaneVideoMAEConfig.from_preset("small")
    assert (small.hidden_size, small.num_hidden_layers, small.num_attention_heads, small.image_size) == (
        384,
        12,
        6,
        224,
    )
    assert (
        small.decoder_hidden_size,
        small.decoder_num_hidden_layers,
        small.decoder_num_attention_heads,
    ) == (512, 4, 8)
    assert tiny().num_tokens == 128 and tiny().id2label == {0: "background", 1: "medicane"}


# ---------------------------------------------------------------------------------------------- token arg-max head


def test_token_argmax_head_points_where_its_scores_point() -> None:
    """With zero offsets, all weight on one token gives that patch's centre; uniform weights give the tile centre."""
    config = tiny(tracking_head="token_argmax")
    model = build(MedicaneVideoMAEForTracking, config).eval()
    torch.nn.init.zeros_(model.regressor.weight)
    torch.nn.init.zeros_(model.regressor.bias)
    torch.nn.init.zeros_(model.heatmap.weight)
    torch.nn.init.zeros_(model.heatmap.bias)
    pixel_values = clip(config)
    with torch.no_grad():
        uniform = model(pixel_values).logits
    height, width = config.image_height_width
    assert torch.allclose(
        uniform, torch.tensor([(width - 1) / 2, (height - 1) / 2]).expand_as(uniform), atol=1e-4
    )

    _, grid_h, grid_w = config.token_grid
    patch = config.patch_size
    chosen_row, chosen_col = 2, 1
    tokens = torch.zeros(pixel_values.shape[0], config.num_tokens, config.hidden_size)
    last_slice = tokens[:, -grid_h * grid_w :]
    last_slice[:, chosen_row * grid_w + chosen_col, 0] = 1.0
    with torch.no_grad():
        model.fc_norm.weight.fill_(1.0)
        model.fc_norm.bias.zero_()
        model.heatmap.weight[0, 0] = 1000.0  # the marked token's normalised feature 0 is large and positive
        centre = model.denormalize_targets(model._token_argmax(tokens))
    expected = torch.tensor([chosen_col * patch + (patch - 1) / 2, chosen_row * patch + (patch - 1) / 2])
    assert torch.allclose(centre, expected.expand_as(centre), atol=1e-3)


def test_token_argmax_head_trains_saves_and_refuses_a_mask(tmp_path: Path) -> None:
    config = tiny(tracking_head="token_argmax")
    model = build(MedicaneVideoMAEForTracking, config)
    pixel_values = clip(config)
    labels = torch.tensor([[10.0, 50.0], [40.0, 20.0]])[: pixel_values.shape[0]]
    losses = _train_losses(model, steps=8, lr=1e-3, pixel_values=pixel_values, labels=labels)
    assert losses[-1] < losses[0]
    model.eval().save_pretrained(tmp_path)
    reloaded = MedicaneVideoMAEForTracking.from_pretrained(tmp_path).eval()
    assert reloaded.config.tracking_head == "token_argmax" and reloaded.heatmap is not None
    with torch.no_grad():
        assert torch.allclose(reloaded(pixel_values).logits, model(pixel_values).logits)
    grid_t, grid_h, grid_w = config.token_grid
    mask = tube_mask(pixel_values.shape[0], grid_t, grid_h, grid_w, 0.5)
    with pytest.raises(ValueError, match="needs every token"):
        model(pixel_values, bool_masked_pos=mask)
    with pytest.raises(ValueError, match="tracking_head"):
        tiny(tracking_head="centroid")
