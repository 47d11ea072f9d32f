"""medicane_hf.convert: old VideoMAE v2 .pth files and transformers VideoMAE folders -> medicane-hf models.

The checkpoints are built here in the old layouts at tiny sizes (hidden 32, 2 layers, 4 heads, 8 px patches,
tubelet 2, 16 frames of 32 px = 128 tokens) and the converted models are compared with a plain-torch forward
pass of the OLD layout written in this file (fused qkv with q_bias / zero / v_bias, its own sin-cos table),
so the check does not lean on the code under test.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from medicane_hf.convert import ConversionError, convert_checkpoint, load_state_dict_file, main
from medicane_hf.modeling_medicane import (
    MedicaneVideoMAEForDetection,
    MedicaneVideoMAEForPreTraining,
    MedicaneVideoMAEForTracking,
)

HIDDEN, DEPTH, HEADS, MLP = 32, 2, 4, 64
PATCH, TUBELET, FRAMES, SIZE, CHANNELS = 8, 2, 16, 32, 3
TOKENS = (FRAMES // TUBELET) * (SIZE // PATCH) ** 2  # 128
DEC_HIDDEN, DEC_DEPTH, DEC_HEADS = 16, 1, 2
EPS = 1e-6  # VideoMAE v2's LayerNorm eps
SIZES = {"num_attention_heads": HEADS, "image_size": SIZE, "num_frames": FRAMES}


# ---------------------------------------------------------------------------------------------- old layout


def _randn(gen: torch.Generator, *shape: int, scale: float = 0.2, offset: float = 0.0) -> torch.Tensor:
    return torch.randn(*shape, generator=gen) * scale + offset


def _v2_block(gen: torch.Generator, prefix: str, dim: int, mlp: int) -> dict[str, torch.Tensor]:
    return {
        f"{prefix}norm1.weight": _randn(gen, dim, scale=0.1, offset=1.0),
        f"{prefix}norm1.bias": _randn(gen, dim, scale=0.1),
        f"{prefix}attn.qkv.weight": _randn(gen, 3 * dim, dim),
        f"{prefix}attn.q_bias": _randn(gen, dim, scale=0.1),
        f"{prefix}attn.v_bias": _randn(gen, dim, scale=0.1),
        f"{prefix}attn.proj.weight": _randn(gen, dim, dim),
        f"{prefix}attn.proj.bias": _randn(gen, dim, scale=0.1),
        f"{prefix}norm2.weight": _randn(gen, dim, scale=0.1, offset=1.0),
        f"{prefix}norm2.bias": _randn(gen, dim, scale=0.1),
        f"{prefix}mlp.fc1.weight": _randn(gen, mlp, dim),
        f"{prefix}mlp.fc1.bias": _randn(gen, mlp, scale=0.1),
        f"{prefix}mlp.fc2.weight": _randn(gen, dim, mlp),
        f"{prefix}mlp.fc2.bias": _randn(gen, dim, scale=0.1),
    }


def v2_encoder(seed: int = 0, prefix: str = "") -> dict[str, torch.Tensor]:
    """A VideoMAE v2 encoder state dict: Conv3d patch embedding and DEPTH blocks."""
    gen = torch.Generator().manual_seed(seed)
    state = {
        f"{prefix}patch_embed.proj.weight": _randn(gen, HIDDEN, CHANNELS, TUBELET, PATCH, PATCH, scale=0.05),
        f"{prefix}patch_embed.proj.bias": _randn(gen, HIDDEN, scale=0.1),
    }
    for i in range(DEPTH):
        state.update(_v2_block(gen, f"{prefix}blocks.{i}.", HIDDEN, MLP))
    return state


def v2_finetuned(seed: int = 0, num_classes: int = 2, head: str = "head") -> dict[str, torch.Tensor]:
    """A fine-tuned VideoMAE v2 classifier: encoder + fc_norm (mean pooling) + ``head`` or ``cls_head.fc_cls``."""
    gen = torch.Generator().manual_seed(seed + 1000)
    state = v2_encoder(seed)
    state["fc_norm.weight"] = _randn(gen, HIDDEN, scale=0.1, offset=1.0)
    state["fc_norm.bias"] = _randn(gen, HIDDEN, scale=0.1)
    state[f"{head}.weight"] = _randn(gen, num_classes, HIDDEN)
    state[f"{head}.bias"] = _randn(gen, num_classes, scale=0.1)
    return state


def v2_mae(seed: int = 0) -> dict[str, torch.Tensor]:
    """A VideoMAE v2 MAE: ``encoder.*`` (with its final norm), decoder, encoder_to_decoder, mask_token."""
    gen = torch.Generator().manual_seed(seed + 2000)
    state = v2_encoder(seed, prefix="encoder.")
    state["encoder.norm.weight"] = _randn(gen, HIDDEN, scale=0.1, offset=1.0)
    state["encoder.norm.bias"] = _randn(gen, HIDDEN, scale=0.1)
    state["encoder_to_decoder.weight"] = _randn(gen, DEC_HIDDEN, HIDDEN)
    state["mask_token"] = _randn(gen, 1, 1, DEC_HIDDEN, scale=0.02)
    for i in range(DEC_DEPTH):
        state.update(_v2_block(gen, f"decoder.blocks.{i}.", DEC_HIDDEN, 4 * DEC_HIDDEN))
    state["decoder.norm.weight"] = _randn(gen, DEC_HIDDEN, scale=0.1, offset=1.0)
    state["decoder.norm.bias"] = _randn(gen, DEC_HIDDEN, scale=0.1)
    state["decoder.head.weight"] = _randn(gen, CHANNELS * TUBELET * PATCH * PATCH, DEC_HIDDEN)
    state["decoder.head.bias"] = _randn(gen, CHANNELS * TUBELET * PATCH * PATCH, scale=0.1)
    return state


def sincos_table(num_positions: int, dim: int) -> torch.Tensor:
    """The VideoMAE sin-cos table ``[num_positions, dim]``, written out from its formula."""
    table = torch.empty(num_positions, dim, dtype=torch.float64)
    for pos in range(num_positions):
        for j in range(dim):
            angle = pos / 10000 ** (2 * (j // 2) / dim)
            table[pos, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
    return table.float()


def reference_tokens(state: dict[str, torch.Tensor], video: torch.Tensor) -> torch.Tensor:
    """VideoMAE v2 encoder forward from the old keys: ``[B, T, C, H, W]`` -> ``[B, N, HIDDEN]``."""
    weight = state["patch_embed.proj.weight"]
    x = F.conv3d(
        video.permute(0, 2, 1, 3, 4), weight, state["patch_embed.proj.bias"], stride=weight.shape[2:]
    )
    x = x.flatten(2).transpose(1, 2)
    batch, tokens, dim = x.shape
    x = x + sincos_table(tokens, dim)
    head_dim = dim // HEADS
    for i in range(DEPTH):
        p = f"blocks.{i}."
        h = F.layer_norm(x, (dim,), state[p + "norm1.weight"], state[p + "norm1.bias"], EPS)
        q_bias, v_bias = state[p + "attn.q_bias"], state[p + "attn.v_bias"]
        qkv = F.linear(h, state[p + "attn.qkv.weight"], torch.cat([q_bias, torch.zeros_like(q_bias), v_bias]))
        q, k, v = qkv.reshape(batch, tokens, 3, HEADS, head_dim).permute(2, 0, 3, 1, 4)
        attention = ((q * head_dim**-0.5) @ k.transpose(-2, -1)).softmax(dim=-1)
        context = (attention @ v).transpose(1, 2).reshape(batch, tokens, dim)
        x = x + F.linear(context, state[p + "attn.proj.weight"], state[p + "attn.proj.bias"])
        h = F.layer_norm(x, (dim,), state[p + "norm2.weight"], state[p + "norm2.bias"], EPS)
        h = F.gelu(F.linear(h, state[p + "mlp.fc1.weight"], state[p + "mlp.fc1.bias"]))
        x = x + F.linear(h, state[p + "mlp.fc2.weight"], state[p + "mlp.fc2.bias"])
    return x


def reference_logits(state: dict[str, torch.Tensor], video: torch.Tensor, head: str = "head") -> torch.Tensor:
    """Mean pooling + fc_norm + linear head, as VideoMAE v2's fine-tuned VisionTransformer."""
    pooled = reference_tokens(state, video).mean(dim=1)
    pooled = F.layer_norm(pooled, (HIDDEN,), state["fc_norm.weight"], state["fc_norm.bias"], EPS)
    return F.linear(pooled, state[f"{head}.weight"], state[f"{head}.bias"])


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return torch.randn(2, FRAMES, CHANNELS, SIZE, SIZE, generator=torch.Generator().manual_seed(7))


def _save(
    path: Path, state: dict[str, torch.Tensor], container: str | None = None, prefix: str = "", **extra
) -> Path:
    weights = {prefix + k: v for k, v in state.items()}
    torch.save({container: weights, **extra} if container else weights, path)
    return path


def _dropped(report) -> dict[str, str]:
    return {note.key: note.reason for note in report.dropped}


def _new(report) -> set[str]:
    return {note.key for note in report.newly_initialized}


def _assert_every_key_accounted(report, state: dict[str, torch.Tensor], prefix: str = "") -> None:
    """Each key in the file is the source of a mapped tensor or dropped with a reason; nothing else is listed."""
    listed = set(report.mapped.values()) | {note.key.split("[")[0] for note in report.dropped}
    assert listed == {prefix + key for key in state}


# ---------------------------------------------------------------------------------------------- VideoMAE v2


@pytest.mark.parametrize(
    ("container", "prefix"),
    [
        ("model", "module."),
        ("module", "_orig_mod."),
        ("state_dict", "backbone."),
        (None, ""),
        ("model", "module._orig_mod."),
        ("model", "encoder."),  # a whole classifier saved under encoder.
    ],
)
def test_finetuned_checkpoint_reproduces_old_forward(tmp_path, video, container, prefix):
    state = v2_finetuned(seed=1)
    path = _save(tmp_path / "ft.pth", state, container, prefix)
    model, report = convert_checkpoint(path, **SIZES)
    assert isinstance(model, MedicaneVideoMAEForDetection) and report.task == "detection"
    with torch.no_grad():
        out = model(video)
        tokens = model.videomae(video).last_hidden_state
    torch.testing.assert_close(tokens, reference_tokens(state, video), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out.logits, reference_logits(state, video), atol=1e-5, rtol=1e-5)
    # 2 patch + 2 x 15 per block (qkv counted as q, k, v) + 2 fc_norm + 2 head; nothing dropped or new
    assert report.mapped_count == 36 and report.dropped == [] and report.newly_initialized == []
    key_weight = report.mapped["videomae.encoder.layer.1.attention.attention.key.weight"]
    assert key_weight == f"{prefix}blocks.1.attn.qkv.weight"  # the key as written in the file
    _assert_every_key_accounted(report, state, prefix)
    # LayerNorm eps is too small an effect for the tolerance above, so it is checked directly
    assert model.config.layer_norm_eps == EPS


def test_fused_qkv_bias_with_zero_key_part(tmp_path, video):
    """timm-style checkpoints hold one qkv.bias; VideoMAE keys have no bias, so its key third must be zero."""
    state = v2_finetuned(seed=14)
    fused = dict(state)
    for i in range(DEPTH):
        q_bias, v_bias = fused.pop(f"blocks.{i}.attn.q_bias"), fused.pop(f"blocks.{i}.attn.v_bias")
        fused[f"blocks.{i}.attn.qkv.bias"] = torch.cat([q_bias, torch.zeros(HIDDEN), v_bias])
    model, report = convert_checkpoint(_save(tmp_path / "fused.pth", fused, "model"), **SIZES)
    with torch.no_grad():
        torch.testing.assert_close(model(video).logits, reference_logits(state, video), atol=1e-5, rtol=1e-5)
    _assert_every_key_accounted(report, fused)
    fused["blocks.1.attn.qkv.bias"][HIDDEN] = 0.5
    with pytest.raises(ConversionError, match=r"blocks\.1\.attn\.qkv\.bias.*not zero"):
        convert_checkpoint(_save(tmp_path / "fused.pth", fused, "model"), **SIZES)


def test_config_file_fixes_architecture_and_labels(tmp_path):
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

    config = MedicaneVideoMAEConfig.from_preset(
        "tiny",
        hidden_size=HIDDEN,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        intermediate_size=MLP,
        image_size=SIZE,
        patch_size=PATCH,
        num_labels=3,
        image_mean=[0.1, 0.2, 0.3],
    )
    config.to_json_file(tmp_path / "config.json")
    path = _save(tmp_path / "ft.pth", v2_finetuned(seed=15), "model")  # a 2-class head
    model, report = convert_checkpoint(path, config=tmp_path / "config.json")
    assert model.config.num_labels == 3 and model.config.image_mean == [0.1, 0.2, 0.3]
    assert "num_labels=3" in _dropped(report)["head.weight"]


def test_encoder_only_with_pos_embed_gets_fresh_head(tmp_path, video):
    state = v2_encoder(seed=2)
    state["pos_embed"] = sincos_table(TOKENS, HIDDEN)[None]
    path = _save(tmp_path / "enc.pth", state, "model", "module.encoder.")
    model, report = convert_checkpoint(path, **SIZES)
    assert isinstance(model, MedicaneVideoMAEForDetection)
    with torch.no_grad():
        tokens = model.videomae(video).last_hidden_state
    torch.testing.assert_close(tokens, reference_tokens(state, video), atol=1e-5, rtol=1e-5)
    assert "sin-cos" in _dropped(report)["module.encoder.pos_embed"]  # listed as written in the file
    assert not any("position table had" in note for note in report.notes)  # 128 tokens both sides
    assert {"classifier.weight", "classifier.bias", "fc_norm.weight", "fc_norm.bias"} == _new(report)
    assert any("freshly initialised" in note for note in report.notes)
    # fresh means the model's own init (normal, std initializer_range), not leftover memory
    assert 0.01 < model.classifier.weight.std().item() < 0.04 and not model.classifier.bias.any()
    assert torch.equal(model.fc_norm.weight, torch.ones(HIDDEN)) and not model.fc_norm.bias.any()


def test_encoder_only_into_pretraining_gets_fresh_decoder(tmp_path, video):
    path = _save(tmp_path / "enc.pth", v2_encoder(seed=3), "model")
    model, report = convert_checkpoint(path, task="pretraining", **SIZES)
    assert isinstance(model, MedicaneVideoMAEForPreTraining)
    assert {"mask_token", "encoder_to_decoder.weight", "decoder.head.weight"} <= _new(report)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert 0.0 < model.mask_token.std().item() < 0.04
    assert model.videomae.layernorm is None  # the source had no final norm: none is invented


def test_mae_checkpoint_becomes_pretraining_model(tmp_path, video):
    state = v2_mae(seed=3)
    state["pos_embed"] = sincos_table(TOKENS, DEC_HIDDEN)[None]  # the decoder's table, at the top level
    path = _save(tmp_path / "mae.pth", state, "model")
    model, report = convert_checkpoint(path, decoder_num_attention_heads=DEC_HEADS, **SIZES)
    assert isinstance(model, MedicaneVideoMAEForPreTraining) and report.task == "pretraining"
    layer = model.decoder.decoder_layers[0].attention.attention
    qkv = state["decoder.blocks.0.attn.qkv.weight"]
    torch.testing.assert_close(layer.value.weight, qkv[2 * DEC_HIDDEN :], rtol=0, atol=0)
    torch.testing.assert_close(layer.q_bias, state["decoder.blocks.0.attn.q_bias"], rtol=0, atol=0)
    torch.testing.assert_close(model.decoder.head.weight, state["decoder.head.weight"], rtol=0, atol=0)
    torch.testing.assert_close(model.mask_token, state["mask_token"], rtol=0, atol=0)
    # the MAE encoder ends with its norm: the converted encoder must too
    encoder_state = {k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")}
    expected = F.layer_norm(
        reference_tokens(encoder_state, video),
        (HIDDEN,),
        state["encoder.norm.weight"],
        state["encoder.norm.bias"],
        EPS,
    )
    with torch.no_grad():
        tokens = model.videomae(video).last_hidden_state
    torch.testing.assert_close(tokens, expected, atol=1e-5, rtol=1e-5)
    assert "decoder" in _dropped(report)["pos_embed"] and report.newly_initialized == []
    assert (
        model.config.decoder_hidden_size == DEC_HIDDEN and model.config.decoder_num_hidden_layers == DEC_DEPTH
    )


def test_mae_checkpoint_into_detector_drops_decoder(tmp_path):
    path = _save(tmp_path / "mae.pth", v2_mae(seed=4), "model")
    _, report = convert_checkpoint(path, task="detection", **SIZES)
    dropped = _dropped(report)
    assert "MAE decoder" in dropped["decoder.blocks.0.attn.qkv.weight"]
    assert "final encoder norm" in dropped["encoder.norm.weight"]
    assert "mask_token" in dropped and "encoder_to_decoder.weight" in dropped
    _assert_every_key_accounted(report, v2_mae(seed=4))
    assert {"classifier.weight", "fc_norm.weight"} <= _new(report)


def test_cls_head_fc_cls_weights_land_in_classifier(tmp_path, video):
    state = v2_finetuned(seed=5, head="cls_head.fc_cls")
    path = _save(tmp_path / "mm.pth", state, "state_dict", "backbone.")
    model, _ = convert_checkpoint(path, **SIZES)
    torch.testing.assert_close(model.classifier.weight, state["cls_head.fc_cls.weight"], rtol=0, atol=0)
    with torch.no_grad():
        logits = model(video).logits
    torch.testing.assert_close(
        logits, reference_logits(state, video, "cls_head.fc_cls"), atol=1e-5, rtol=1e-5
    )


def test_k710_head_dropped_by_default_and_kept_on_request(tmp_path):
    state = v2_finetuned(seed=6, num_classes=710)
    path = _save(tmp_path / "k710.pth", state, "module")
    model, report = convert_checkpoint(path, **SIZES)
    assert "710-class head" in _dropped(report)["head.weight"]
    assert model.config.num_labels == 2 and "classifier.weight" in _new(report)
    torch.testing.assert_close(model.fc_norm.weight, state["fc_norm.weight"], rtol=0, atol=0)
    kept, report = convert_checkpoint(path, head="keep", **SIZES)
    assert kept.config.num_labels == 710 and report.newly_initialized == []
    torch.testing.assert_close(kept.classifier.weight, state["head.weight"], rtol=0, atol=0)


def test_old_tracking_head_needs_drop_head(tmp_path):
    gen = torch.Generator().manual_seed(9)
    state = {k: v for k, v in v2_finetuned(seed=7).items() if not k.startswith("head.")}
    state.update(
        {
            "head.mlp.0.weight": torch.ones(HIDDEN),
            "head.mlp.0.bias": torch.zeros(HIDDEN),
            "head.mlp.1.weight": _randn(gen, 2, HIDDEN),
            "head.mlp.1.bias": torch.zeros(2),
        }
    )
    path = _save(tmp_path / "track.pth", state, "model")
    with pytest.raises(ConversionError, match="--drop-head"):
        convert_checkpoint(path, **SIZES)
    model, report = convert_checkpoint(path, head="drop", **SIZES)
    assert isinstance(model, MedicaneVideoMAEForTracking)
    torch.testing.assert_close(model.fc_norm.bias, state["fc_norm.bias"], rtol=0, atol=0)
    assert _new(report) == {"regressor.weight", "regressor.bias"}
    assert "head.mlp.1.weight" in _dropped(report)


def test_unknown_key_is_an_error_naming_it(tmp_path):
    state = v2_finetuned(seed=8)
    state["blocks.0.attn.relative_position_bias_table"] = torch.zeros(5, HEADS)
    with pytest.raises(ConversionError, match=r"unknown keys: blocks\.0\.attn\.relative_position_bias_table"):
        convert_checkpoint(_save(tmp_path / "x.pth", state, "model"), **SIZES)


def test_shape_mismatch_is_an_error_naming_it(tmp_path):
    state = v2_finetuned(seed=9)
    state["blocks.1.mlp.fc1.weight"] = torch.zeros(MLP // 2, HIDDEN)  # layer 0 sets intermediate_size = MLP
    with pytest.raises(ConversionError, match=r"from blocks\.1\.mlp\.fc1\.weight\): checkpoint \(32, 32\)"):
        convert_checkpoint(_save(tmp_path / "x.pth", state, "model"), **SIZES)


def test_preset_that_does_not_fit_is_an_error(tmp_path):
    with pytest.raises(ConversionError, match="hidden_size: checkpoint 32, config 96"):
        convert_checkpoint(_save(tmp_path / "x.pth", v2_finetuned(), "model"), preset="tiny")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"blocks.0.gamma_1": torch.ones(HIDDEN)}, "layer scale"),
        ({"pos_embed": torch.randn(1, TOKENS, HIDDEN)}, "not the fixed sin-cos table"),
    ],
)
def test_unsupported_features_are_refused(tmp_path, extra, message):
    state = {**v2_finetuned(), **extra}
    with pytest.raises(ConversionError, match=message):
        convert_checkpoint(_save(tmp_path / "x.pth", state, "model"), **SIZES)


def test_position_table_of_another_clip_shape_is_reported(tmp_path):
    state = {**v2_finetuned(), "pos_embed": sincos_table(TOKENS // 2, HIDDEN)[None]}  # trained on 8 frames
    _, report = convert_checkpoint(_save(tmp_path / "x.pth", state, "model"), **SIZES)
    assert any("position table had 64 tokens, the model has 128" in note for note in report.notes)


def test_unknown_width_needs_num_heads(tmp_path):
    with pytest.raises(ConversionError, match="--num-heads"):
        convert_checkpoint(
            _save(tmp_path / "x.pth", v2_finetuned(), "model"), image_size=SIZE, num_frames=FRAMES
        )


def test_training_args_beside_weights_are_read_safely(tmp_path):
    """VideoMAE v2 saves an argparse.Namespace under ``args``: allowed, ignored, and its sizes used."""
    args = argparse.Namespace(input_size=SIZE, num_frames=FRAMES, model="vit_tiny_test", lr=1e-3)
    path = _save(tmp_path / "ckpt.pth", v2_finetuned(), "model", args=args, epoch=3)
    model, report = convert_checkpoint(path, num_attention_heads=HEADS)
    assert sorted(report.ignored_entries) == ["args", "epoch"]
    assert model.config.image_size == SIZE and model.config.num_frames == FRAMES


def test_half_precision_checkpoint_is_widened_and_noted(tmp_path):
    state = {k: v.half() for k, v in v2_finetuned(seed=19).items()}
    state["pos_embed"] = sincos_table(TOKENS, HIDDEN)[None].half()  # fp16 table: checked at fp16 precision
    model, report = convert_checkpoint(_save(tmp_path / "fp16.pth", state, "model"), **SIZES)
    assert model.classifier.weight.dtype == torch.float32
    torch.testing.assert_close(model.classifier.weight, state["head.weight"].float(), rtol=0, atol=0)
    assert any("float16" in note for note in report.notes)


def test_weights_key_picks_ema_weights(tmp_path):
    main_state, ema_state = v2_finetuned(seed=16), v2_finetuned(seed=17)
    args = argparse.Namespace(output_dir=Path("/runs/old"), input_size=SIZE)  # paths are plain metadata too
    path = _save(tmp_path / "ckpt.pth", main_state, "model", model_ema=ema_state, args=args)
    model, report = convert_checkpoint(path, **SIZES)
    assert sorted(report.ignored_entries) == ["args", "model_ema"]
    torch.testing.assert_close(model.classifier.weight, main_state["head.weight"], rtol=0, atol=0)
    ema, report = convert_checkpoint(path, weights_key="model_ema", **SIZES)
    assert sorted(report.ignored_entries) == ["args", "model"]
    torch.testing.assert_close(ema.classifier.weight, ema_state["head.weight"], rtol=0, atol=0)
    with pytest.raises(ConversionError, match="no weights under 'ema'"):
        convert_checkpoint(path, weights_key="ema", **SIZES)


def test_other_python_objects_are_refused_unless_allowed(tmp_path):
    path = _save(tmp_path / "ckpt.pth", v2_finetuned(), "model", best=Fraction(1, 3))
    with pytest.raises(ConversionError, match=r"refusing to load.*fractions\.Fraction.*re-save"):
        load_state_dict_file(path)
    assert "patch_embed.proj.weight" in load_state_dict_file(path, allow_unsafe_pickle=True)


# ---------------------------------------------------------------------------------------------- transformers


def _hf_config(**extra):
    from transformers import VideoMAEConfig

    return VideoMAEConfig(
        image_size=SIZE,
        patch_size=PATCH,
        num_frames=FRAMES,
        tubelet_size=TUBELET,
        hidden_size=HIDDEN,
        num_hidden_layers=DEPTH,
        num_attention_heads=HEADS,
        intermediate_size=MLP,
        decoder_hidden_size=DEC_HIDDEN,
        decoder_num_hidden_layers=DEC_DEPTH,
        decoder_num_attention_heads=DEC_HEADS,
        decoder_intermediate_size=4 * DEC_HIDDEN,
        **extra,
    )


def _randomize(model: torch.nn.Module, seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            is_norm_weight = "norm" in name and name.endswith("weight")
            param.copy_(
                _randn(gen, *param.shape, scale=0.1 if is_norm_weight else 0.2, offset=float(is_norm_weight))
            )


def test_transformers_classifier_folder_gives_same_outputs(tmp_path, video):
    from transformers import VideoMAEForVideoClassification

    # eps 1e-5 everywhere: transformers' fc_norm is a default nn.LayerNorm (1e-5), the medicane model uses one eps
    source = VideoMAEForVideoClassification(_hf_config(num_labels=2, layer_norm_eps=1e-5)).eval()
    _randomize(source, seed=11)
    source.save_pretrained(tmp_path / "hf")
    model, report = convert_checkpoint(tmp_path / "hf")
    assert report.source_format == "transformers" and isinstance(model, MedicaneVideoMAEForDetection)
    with torch.no_grad():
        expected = source(video)
        got = model(video).logits
        tokens = model.videomae(video).last_hidden_state
        expected_tokens = source.videomae(video).last_hidden_state
    torch.testing.assert_close(tokens, expected_tokens, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got, expected.logits, atol=1e-5, rtol=1e-5)
    assert report.mapped["videomae.encoder.layer.0.attention.attention.q_bias"].endswith("q_bias")


def test_transformers_pretraining_folder_keeps_decoder(tmp_path, video):
    from transformers import VideoMAEForPreTraining

    source = VideoMAEForPreTraining(_hf_config(use_mean_pooling=False, layer_norm_eps=1e-6)).eval()
    _randomize(source, seed=12)
    source.save_pretrained(tmp_path / "hf")
    model, report = convert_checkpoint(tmp_path / "hf")
    assert isinstance(model, MedicaneVideoMAEForPreTraining) and report.newly_initialized == []
    torch.testing.assert_close(
        model.decoder.decoder_layers[0].attention.attention.v_bias,
        source.decoder.decoder_layers[0].attention.attention.value.bias,
        rtol=0,
        atol=0,
    )
    with torch.no_grad():
        torch.testing.assert_close(
            model.videomae(video).last_hidden_state,
            source.videomae(video).last_hidden_state,
            atol=1e-5,
            rtol=1e-5,
        )


def test_transformers_bare_encoder_folder(tmp_path, video):
    from transformers import VideoMAEModel

    source = VideoMAEModel(_hf_config(layer_norm_eps=1e-6)).eval()  # mean pooling: no final norm
    _randomize(source, seed=13)
    source.save_pretrained(tmp_path / "hf")
    model, report = convert_checkpoint(tmp_path / "hf")
    assert isinstance(model, MedicaneVideoMAEForDetection) and "classifier.weight" in _new(report)
    assert report.mapped["videomae.embeddings.patch_embeddings.projection.weight"] == (
        "embeddings.patch_embeddings.projection.weight"
    )
    with torch.no_grad():
        torch.testing.assert_close(
            model.videomae(video).last_hidden_state, source(video).last_hidden_state, atol=1e-5, rtol=1e-5
        )


def test_medicane_detector_moves_to_tracking_with_its_data_contract(tmp_path):
    state = v2_finetuned(seed=18)
    detector, _ = convert_checkpoint(_save(tmp_path / "ft.pth", state, "model"), **SIZES)
    detector.config.image_mean = [0.3, 0.4, 0.5]  # as training would have set it
    detector.save_pretrained(tmp_path / "detector")
    tracker, report = convert_checkpoint(tmp_path / "detector", task="tracking")
    assert isinstance(tracker, MedicaneVideoMAEForTracking)
    assert tracker.config.image_mean == [0.3, 0.4, 0.5]
    torch.testing.assert_close(tracker.fc_norm.weight, state["fc_norm.weight"], rtol=0, atol=0)
    assert "not a position regressor" in _dropped(report)["classifier.weight"]
    assert _new(report) == {"regressor.weight", "regressor.bias"}


# ---------------------------------------------------------------------------------------------- command line


def test_cli_writes_folder_and_report_that_reload(tmp_path, video, capsys):
    state = v2_finetuned(seed=13)
    path = _save(tmp_path / "old.pth", state, "model", "module.")
    out = tmp_path / "converted"
    argv = [
        "--checkpoint",
        str(path),
        "--out",
        str(out),
        "--num-heads",
        str(HEADS),
        "--image-size",
        str(SIZE),
        "--num-frames",
        str(FRAMES),
    ]
    assert main(argv) == 0
    assert "mapped: 36 tensors" in capsys.readouterr().out
    report = json.loads((out / "conversion_report.json").read_text())
    assert report["sha256"] == {"old.pth": hashlib.sha256(path.read_bytes()).hexdigest()}
    assert report["mapped_count"] == 36 and report["task"] == "detection"
    reloaded = MedicaneVideoMAEForDetection.from_pretrained(out).eval()
    with torch.no_grad():
        torch.testing.assert_close(
            reloaded(video).logits, reference_logits(state, video), atol=1e-5, rtol=1e-5
        )
    assert main(argv) == 1  # the folder is not empty now
    assert "--overwrite" in capsys.readouterr().err


def test_cli_reports_conversion_errors(tmp_path, capsys):
    state = {**v2_finetuned(), "blocks.0.attn.mystery": torch.zeros(1)}
    path = _save(tmp_path / "bad.pth", state, "model")
    assert main(["--checkpoint", str(path), "--out", str(tmp_path / "o"), "--num-heads", "4"]) == 1
    assert "blocks.0.attn.mystery" in capsys.readouterr().err
