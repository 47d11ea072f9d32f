"""Key translation: VideoMAE v2 and transformers VideoMAE state dicts -> transformers' VideoMAE names.

The result is a `Translation`: tensors under canonical model names, heads under placeholder prefixes
(`HEAD`, `TRACK_MLP`) that `medicane_hf.convert.heads` resolves once the task is known, and every key
that was dropped (with a reason), unknown or unsupported.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

from medicane_hf.convert.report import KeyNote

# Canonical placeholder prefixes for heads, resolved once the task is known.
HEAD = "__head__."
TRACK_MLP = "__tracking_mlp__."
ENCODER_NORM = "videomae.layernorm."


@dataclass
class Translation:
    """Source tensors under canonical model names (heads under placeholder prefixes)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # canonical key -> source key
    dropped: list[KeyNote] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    unsupported: list[KeyNote] = field(default_factory=list)
    # "encoder" / "decoder" -> token count of a dropped sin-cos table, to compare with the model's
    pos_embed_tokens: dict[str, int] = field(default_factory=dict)

    def add(self, target: str, tensor: torch.Tensor, source: str) -> None:
        self.tensors[target] = tensor
        self.sources[target] = source


# Sub-keys of one VideoMAE v2 transformer block -> VideoMAELayer sub-keys.
_V2_BLOCK_RULES: tuple[tuple[str, str], ...] = (
    (r"norm1\.(weight|bias)", "layernorm_before.{}"),
    (r"norm2\.(weight|bias)", "layernorm_after.{}"),
    (r"attn\.q_bias", "attention.attention.query.bias"),
    (r"attn\.v_bias", "attention.attention.value.bias"),
    (r"attn\.proj\.(weight|bias)", "attention.output.dense.{}"),
    (r"mlp\.fc1\.(weight|bias)", "intermediate.dense.{}"),
    (r"mlp\.fc2\.(weight|bias)", "output.dense.{}"),
)
_V2_UNSUPPORTED_BLOCK_KEYS = {
    "gamma_1": "layer scale (init_values > 0) has no counterpart in VideoMAE layers",
    "gamma_2": "layer scale (init_values > 0) has no counterpart in VideoMAE layers",
    "attn.scale": "cosine attention (cos_attn=True) has no counterpart in VideoMAE attention",
}


def translate_videomae_v2(tensors: Mapping[str, torch.Tensor]) -> Translation:
    """Rename VideoMAE v2 keys (``blocks.{i}.attn.qkv.weight`` ...) to transformers' VideoMAE keys.

    The fused ``qkv`` weight ``[3 * D, D]`` is split into query/key/value ``[D, D]``; ``q_bias``/``v_bias``
    become the query/value biases (the key has none). Classification heads go to ``__head__.*`` and the old
    Medicane tracking head (``head.mlp.0`` LayerNorm + ``head.mlp.1`` Linear) to ``__tracking_mlp__.*``.
    Fixed sin-cos ``pos_embed`` tables are checked and dropped (the model rebuilds them).
    """
    out = Translation()
    mae_layout = any(k.startswith("encoder.") for k in tensors)
    for key, tensor in tensors.items():
        if not _translate_v2_key(key, tensor, out, mae_layout):
            out.unknown.append(key)
    return out


def _translate_v2_key(key: str, tensor: torch.Tensor, out: Translation, mae_layout: bool) -> bool:
    """Translate one key into ``out``; False when the key is not recognised."""
    if m := re.fullmatch(r"(?:encoder\.)?blocks\.(\d+)\.(.+)", key):
        return _translate_v2_block(key, m.group(2), tensor, f"videomae.encoder.layer.{m.group(1)}.", out)
    if m := re.fullmatch(r"decoder\.blocks\.(\d+)\.(.+)", key):
        return _translate_v2_block(key, m.group(2), tensor, f"decoder.decoder_layers.{m.group(1)}.", out)
    if m := re.fullmatch(r"(?:encoder\.)?patch_embed\.proj\.(weight|bias)", key):
        out.add(f"videomae.embeddings.patch_embeddings.projection.{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?norm\.(weight|bias)", key):
        out.add(f"{ENCODER_NORM}{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?fc_norm\.(weight|bias)", key):
        out.add(f"fc_norm.{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?(?:head|cls_head\.fc_cls)\.(weight|bias)", key):
        out.add(f"{HEAD}{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?head\.mlp\.([01])\.(weight|bias)", key):
        out.add(f"{TRACK_MLP}{m.group(1)}.{m.group(2)}", tensor, key)
    elif key in {
        "encoder_to_decoder.weight",
        "mask_token",
        "decoder.norm.weight",
        "decoder.norm.bias",
        "decoder.head.weight",
        "decoder.head.bias",
    }:
        out.add(key, tensor, key)
    elif key in {"pos_embed", "encoder.pos_embed", "decoder.pos_embed"}:
        part = "decoder" if key == "decoder.pos_embed" or (key == "pos_embed" and mae_layout) else "encoder"
        _check_sincos_table(key, tensor, part, out)
    else:
        return False
    return True


def _translate_v2_block(key: str, rest: str, tensor: torch.Tensor, prefix: str, out: Translation) -> bool:
    if rest in _V2_UNSUPPORTED_BLOCK_KEYS:
        out.unsupported.append(KeyNote(key, _V2_UNSUPPORTED_BLOCK_KEYS[rest]))
        return True
    if rest == "attn.qkv.weight":
        if tensor.shape[0] % 3:
            out.unsupported.append(
                KeyNote(key, f"fused qkv weight of shape {tuple(tensor.shape)} is not 3 x D rows")
            )
            return True
        for name, part in zip(("query", "key", "value"), tensor.chunk(3, dim=0)):
            out.add(f"{prefix}attention.attention.{name}.weight", part, key)
        return True
    if rest == "attn.qkv.bias":  # timm-style fused bias: VideoMAE has no key bias, so it must be zero
        q_bias, k_bias, v_bias = tensor.chunk(3, dim=0)
        if torch.count_nonzero(k_bias):
            out.unsupported.append(
                KeyNote(key, "the key part of the fused qkv bias is not zero; VideoMAE keys have no bias")
            )
            return True
        out.add(f"{prefix}attention.attention.query.bias", q_bias, key)
        out.add(f"{prefix}attention.attention.value.bias", v_bias, key)
        out.dropped.append(KeyNote(f"{key}[key part]", "key bias is all zeros; VideoMAE keys have no bias"))
        return True
    for pattern, template in _V2_BLOCK_RULES:
        if m := re.fullmatch(pattern, rest):
            out.add(prefix + template.format(*m.groups()), tensor, key)
            return True
    return False


def _check_sincos_table(key: str, tensor: torch.Tensor, part: str, out: Translation) -> None:
    """Drop a fixed sin-cos ``pos_embed`` (the model rebuilds it); a learned table is unsupported."""
    # imported here: the model module pulls in transformers, which loading a checkpoint does not need
    from medicane_hf.modeling_medicane import sinusoid_position_table

    table = tensor.reshape(-1, tensor.shape[-1]) if tensor.dim() >= 2 else None
    tolerance = 1e-4 if tensor.dtype in (torch.float32, torch.float64) else 1e-2
    # the model's own table (float32, as it rebuilds it): float32 rounding is far below the tolerance
    if table is None or not torch.allclose(
        table.double(), sinusoid_position_table(*table.shape)[0].double(), atol=tolerance, rtol=0
    ):
        out.unsupported.append(
            KeyNote(
                key,
                f"position table of shape {tuple(tensor.shape)} is not the fixed sin-cos table (learned position "
                "embeddings?); VideoMAE models only use the fixed table",
            )
        )
        return
    out.pos_embed_tokens[part] = table.shape[0]
    out.dropped.append(
        KeyNote(
            key,
            f"fixed sin-cos position table of the {part} ({table.shape[0]} tokens); the model rebuilds it",
        )
    )


def translate_transformers(tensors: Mapping[str, torch.Tensor]) -> Translation:
    """Canonicalise a transformers VideoMAE (or medicane-hf) state dict.

    ``q_bias``/``v_bias`` become ``query.bias``/``value.bias``; a bare ``VideoMAEModel`` (keys starting with
    ``embeddings.``/``encoder.layer``) gets the ``videomae.`` prefix; ``classifier``/``regressor`` go to
    ``__head__.*``.
    """
    out = Translation()
    bare_model = any(k.startswith("embeddings.") for k in tensors)
    for key, tensor in tensors.items():
        name = _canonical_transformers_key(key, bare_model)
        if name.endswith("position_embeddings"):  # some old exports hold the sin-cos table; it is rebuilt
            out.dropped.append(KeyNote(key, "fixed sin-cos position table; the model rebuilds it"))
        elif name.startswith(_TRANSFORMERS_PREFIXES) or name == "mask_token":
            out.add(name, tensor, key)
        else:
            out.unknown.append(key)
    return out


_TRANSFORMERS_PREFIXES = (
    "videomae.embeddings.",
    "videomae.encoder.",
    ENCODER_NORM,
    "fc_norm.",
    HEAD,
    "encoder_to_decoder.",
    "decoder.",
)


def _canonical_transformers_key(key: str, bare_model: bool) -> str:
    if bare_model and key.startswith(("embeddings.", "encoder.", "layernorm.")):
        key = f"videomae.{key}"
    key = re.sub(r"attention\.attention\.q_bias$", "attention.attention.query.bias", key)
    key = re.sub(r"attention\.attention\.v_bias$", "attention.attention.value.bias", key)
    if m := re.fullmatch(r"(?:classifier|regressor)\.(weight|bias)", key):
        key = f"{HEAD}{m.group(1)}"
    return key
