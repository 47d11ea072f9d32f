"""Medicane VideoMAE v2 models: encoder, MAE pre-training with dual masking, detection and tracking heads.

Built on transformers' VideoMAE blocks (patch embedding, MLP, output projections, layer structure, attention
interface with SDPA / eager / flex, gradient checkpointing, output capturing). Written here because
transformers' VideoMAE lacks it:

* VideoMAE v2's separate ``q_bias`` / ``v_bias`` parameters (the key names of VideoMAE v2 checkpoints and of
  docs/DESIGN.md; transformers 5 keeps them inside ``query.bias`` / ``value.bias`` and renames on load);
* stochastic depth (`DropPath` on both residual branches, rising linearly over depth): timm's, in a few lines, so
  that a model folder's copy of this file needs no timm (transformers' own ``drop_path`` draws its random numbers
  differently, ``floor(keep + rand)``, and would change training runs with a given seed);
* the fixed sin-cos position table as a non-persistent buffer (not rebuilt in numpy each call), interpolated
  over the (time, row, column) grid for other tile sizes;
* dual masking for pre-training: the encoder sees visible tokens only, the decoder sees visible tokens plus mask
  tokens only at the positions it must reconstruct (running cell); MAE targets un-normalised with the data's own
  ``image_mean`` / ``image_std`` (never ImageNet values);
* a convolutional patch stem (``patch_embedding="conv"``), run inside each patch so that masking still works;
* detection (mean / max / attention pooling + ``fc_norm`` + ``classifier``) and tracking heads (mean pooling +
  ``fc_norm`` + ``regressor``; a soft arg-max over tokens; a full-resolution heat map).

Every class keeps the encoder under ``videomae`` with transformers' VideoMAE key names, so weights move freely
between heads: ``videomae.embeddings.patch_embeddings.projection.*``,
``videomae.encoder.layer.{i}.attention.attention.{query,key,value}.weight``, ``...attention.attention.q_bias``,
``...v_bias``, ``...attention.output.dense.*``, ``...intermediate.dense.*``, ``...output.dense.*``,
``...layernorm_before.*``, ``...layernorm_after.*``. The pre-training decoder uses ``encoder_to_decoder``,
``mask_token``, ``decoder.decoder_layers.{i}.*``, ``decoder.norm``, ``decoder.head`` as transformers'
``VideoMAEForPreTraining`` does.

Sharing: every class is registered for its Auto class (`register_for_auto_class`), so ``save_pretrained`` copies
this file, its relative imports (``configuration_medicane.py``, ``masking.py``) and an ``auto_map`` into the folder;
``save_pretrained`` also writes the video processor (`MedicaneVideoProcessor`, with ``pixels.py``) and sets the
``auto_map`` of every class (`AUTO_MAP`), so that any folder loads with ``trust_remote_code=True`` and nothing but
torch and transformers: ``AutoModel`` (encoder), ``AutoModelForPreTraining``, ``AutoModelForVideoClassification``
(detection), ``AutoModelForKeypointDetection`` (tracking: one key point, the centre). Hence this file imports only
torch, transformers and its relative modules. With the package installed, ``import medicane_hf`` registers the
same classes with those Auto classes (`medicane_hf._auto`), and no remote code runs.

Token order and masks follow the contract in `medicane_hf.masking`.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import BaseModelOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.models.videomae.modeling_videomae import (
    VideoMAEAttention,
    VideoMAEIntermediate,
    VideoMAELayer,
    VideoMAEOutput,
    VideoMAEPatchEmbeddings,
    VideoMAESelfAttention,
    VideoMAESelfOutput,
    eager_attention_forward,
)
from transformers.utils import ModelOutput
from transformers.utils.generic import can_return_tuple
from transformers.utils.output_capturing import capture_outputs

from .configuration_medicane import MedicaneVideoMAEConfig
from .masking import decoder_targets, running_cell_mask, tube_mask

# ---------------------------------------------------------------------------------------------------- outputs


@dataclass
class MedicaneVideoMAEPreTrainingOutput(ModelOutput):
    """Output of `MedicaneVideoMAEForPreTraining`.

    loss: scalar MSE over the tokens hidden from the encoder and kept by the decoder mask.
    logits: ``[B, n_dec, patch_dim]`` reconstruction of the decoded tokens, in target space (per-patch
        normalised pixels when ``norm_pix_loss``), ``patch_dim = tubelet * patch * patch * channels`` ordered
        (tubelet, row, column, channel); token ``j`` of sample ``b`` is position ``decoded_positions[b, j]``.
    bool_masked_pos: ``[B, N]`` encoder mask, True = hidden from the encoder.
    decoder_mask: ``[B, N]`` True = reconstructed and counted in the loss (hidden from the encoder AND kept by
        the decoder mask).
    decoded_positions: ``[B, n_dec]`` token index of each row of ``logits``, ascending.
    hidden_states, attentions: the encoder's, when asked for (visible tokens only).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    bool_masked_pos: torch.Tensor | None = None
    decoder_mask: torch.Tensor | None = None
    decoded_positions: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MedicaneVideoMAEDetectionOutput(ModelOutput):
    """Output of `MedicaneVideoMAEForDetection`.

    loss: scalar cross-entropy (label smoothing and class weights from the config), when labels are given.
    logits: ``[B, num_labels]`` class scores before softmax.
    embeddings: the classifier's input: ``[B, hidden_size]`` pooled tokens after ``fc_norm``, or with
        ``"heatmap"`` pooling ``[B, heatmap_channels]`` pooled pixel features (plus the position embedding with
        ``detection_position``).
    hidden_states, attentions: the encoder's, when asked for.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


@dataclass
class MedicaneVideoMAETrackingOutput(ModelOutput):
    """Output of `MedicaneVideoMAEForTracking`.

    loss: scalar MSE or Huber loss in normalised target space, when labels are given.
    logits: ``[B, 2]`` predicted centre (x, y) in tile pixels (x = column from the west edge, y = row from the
        top edge; a pixel centre is at an integer value).
    normalized_logits: ``[B, 2]`` the same in normalised target space (0 = tile centre, +-1 about the edges).
    centre_spread: ``[B]`` the centre's uncertainty with the heat-map head: the sigma (tile pixels) of an isotropic
        2-D Gaussian, ``config.tracking_spread_scale`` x the spread of the soft arg-max weights (the scale is
        fitted on validation at the end of training; `medicane_hf.evaluation.calibration.radius_for_share` turns
        it into a 50 % or 90 % radius). None with the other heads.
    embeddings: ``[B, hidden_size]`` mean-pooled tokens after ``fc_norm``.
    hidden_states, attentions: the encoder's, when asked for.
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    normalized_logits: torch.Tensor | None = None
    centre_spread: torch.Tensor | None = None
    embeddings: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    attentions: tuple[torch.Tensor, ...] | None = None


# ---------------------------------------------------------------------------------------------------- helpers


def sinusoid_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """VideoMAE's fixed 1-D sin-cos table over the flattened token index: float32 ``[1, num_positions, dim]``.

    Column ``2i`` holds ``sin(pos / 10000^(2i/dim))`` and column ``2i+1`` the matching cosine, exactly the values
    of VideoMAE v1/v2 checkpoints (computed in float64, as their numpy code does).
    """
    positions = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponents = 2 * (torch.arange(dim) // 2).to(torch.float64) / dim
    angles = positions / torch.pow(torch.tensor(10000.0, dtype=torch.float64), exponents)[None, :]
    table = torch.empty_like(angles)
    table[:, 0::2] = torch.sin(angles[:, 0::2])
    table[:, 1::2] = torch.cos(angles[:, 1::2])
    return table.to(torch.float32).unsqueeze(0)


def interpolate_position_table(
    table: torch.Tensor, grid: tuple[int, int, int], new_grid: tuple[int, int, int]
) -> torch.Tensor:
    """Resample a ``[1, T*H*W, D]`` position table over its (time, row, column) grid to ``new_grid``.

    Trilinear interpolation keeps each token's place in the clip (a new 1-D table would not: its index runs
    over rows of a different width). Returns ``[1, T'*H'*W', D]``.
    """
    if tuple(grid) == tuple(new_grid):
        return table
    dim = table.shape[-1]
    volume = table.reshape(1, *grid, dim).permute(0, 4, 1, 2, 3)
    volume = F.interpolate(volume.float(), size=new_grid, mode="trilinear", align_corners=False)
    return volume.permute(0, 2, 3, 4, 1).reshape(1, -1, dim).to(table.dtype)


def patchify(video: torch.Tensor, tubelet_size: int, patch_size: tuple[int, int]) -> torch.Tensor:
    """Video ``[B, T, C, H, W]`` -> tokens ``[B, N, tubelet * ph * pw * C]``.

    Tokens in the mask-contract order (time, row, column); values inside a token ordered (tubelet, row,
    column, channel), as transformers' VideoMAE targets are.
    """
    batch, frames, channels, height, width = video.shape
    patch_h, patch_w = patch_size
    grid_t, grid_h, grid_w = frames // tubelet_size, height // patch_h, width // patch_w
    x = video.reshape(batch, grid_t, tubelet_size, channels, grid_h, patch_h, grid_w, patch_w)
    x = x.permute(0, 1, 4, 6, 2, 5, 7, 3)  # B, t, h, w, tubelet, ph, pw, C
    return x.reshape(batch, grid_t * grid_h * grid_w, tubelet_size * patch_h * patch_w * channels)


def unpatchify(
    tokens: torch.Tensor,
    grid: tuple[int, int, int],
    tubelet_size: int,
    patch_size: tuple[int, int],
    num_channels: int,
) -> torch.Tensor:
    """Inverse of `patchify`: tokens ``[B, N, patch_dim]`` on the (time, row, column) ``grid`` -> ``[B, T, C, H, W]``."""
    batch = tokens.shape[0]
    grid_t, grid_h, grid_w = grid
    patch_h, patch_w = patch_size
    x = tokens.reshape(batch, grid_t, grid_h, grid_w, tubelet_size, patch_h, patch_w, num_channels)
    x = x.permute(0, 1, 4, 7, 2, 5, 3, 6)  # B, t, tubelet, C, h, ph, w, pw
    return x.reshape(batch, grid_t * tubelet_size, num_channels, grid_h * patch_h, grid_w * patch_w)


def normalize_patches(patches: torch.Tensor, num_channels: int, eps: float = 1e-6) -> torch.Tensor:
    """Per-token, per-channel standardisation of ``[B, N, patch_dim]`` (VideoMAE's ``norm_pix_loss`` target)."""
    values = patches.reshape(*patches.shape[:-1], -1, num_channels)
    mean = values.mean(dim=-2, keepdim=True)
    std = values.var(dim=-2, unbiased=True, keepdim=True).sqrt()
    return ((values - mean) / (std + eps)).reshape(patches.shape)


def denormalize_patches(
    predicted: torch.Tensor, reference: torch.Tensor, num_channels: int, eps: float = 1e-6
) -> torch.Tensor:
    """Undo `normalize_patches` on ``predicted`` with the mean/std of the true ``reference`` patches (same shape)."""
    values = reference.reshape(*reference.shape[:-1], -1, num_channels)
    mean = values.mean(dim=-2, keepdim=True)
    std = values.var(dim=-2, unbiased=True, keepdim=True).sqrt()
    out = predicted.reshape(values.shape) * (std + eps) + mean
    return out.reshape(predicted.shape)


def _gather_tokens(tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """``tokens[b, positions[b, j]]``: ``[B or 1, N, D]`` and ``[B, n]`` -> ``[B, n, D]``."""
    tokens = tokens.expand(positions.shape[0], -1, -1)
    return tokens.gather(1, positions.unsqueeze(-1).expand(-1, -1, tokens.shape[-1]))


def _decoder_config(config: MedicaneVideoMAEConfig) -> MedicaneVideoMAEConfig:
    """A copy of `config` with the decoder's width, depth, heads and MLP size (for building decoder layers)."""
    return MedicaneVideoMAEConfig(
        **{
            **config.to_dict(),
            "hidden_size": config.decoder_hidden_size,
            "num_hidden_layers": config.decoder_num_hidden_layers,
            "num_attention_heads": config.decoder_num_attention_heads,
            "intermediate_size": config.decoder_intermediate_size,
            "drop_path_rate": 0.0,
        }
    )


# ---------------------------------------------------------------------------------------------------- embeddings


class MedicaneVideoMAEPatchEmbeddings(VideoMAEPatchEmbeddings):
    """transformers' tubelet Conv3d embedding, without its size check (the config's data contract checks first).

    ``[B, T, C, H, W]`` -> ``[B, (T / tubelet) * (H / patch) * (W / patch), hidden]``, or only the visible
    tokens ``[B, N_visible, hidden]`` when a mask is given.
    """

    def forward(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None = None
    ) -> torch.Tensor:
        if bool_masked_pos is None:
            return self.projection(pixel_values.permute(0, 2, 1, 3, 4)).flatten(2).transpose(1, 2)
        # Embed the visible tubelets only, as a matmul with the Conv3d's own weights: the same numbers for a
        # tenth of the work at mask ratio 0.9. Conv weight [D, C, t, ph, pw] -> [D, (t, ph, pw, C)] = patch order.
        patches = patchify(pixel_values, self.tubelet_size, self.patch_size)
        batch, _, patch_dim = patches.shape
        visible = patches[~bool_masked_pos].reshape(batch, -1, patch_dim)
        weight = self.projection.weight.permute(0, 2, 3, 4, 1).reshape(self.projection.out_channels, -1)
        return F.linear(visible, weight, self.projection.bias)


class StemConv2d(nn.Conv2d):
    """A 3x3 convolution of the conv patch stem or of the heat-map head (He-initialised for the GELU after it)."""


class MedicaneVideoMAEConvPatchEmbeddings(nn.Module):
    """Conv stem per patch (``config.patch_embedding="conv"``): ``[B, T, C, H, W]`` -> ``[B, N, hidden]``.

    Each tubelet's ``patch x patch`` square, its ``tubelet_size`` frames stacked as ``tubelet x C`` input channels,
    goes through ``stem.0`` (3x3, stride 1, full resolution) and ``log2(patch)`` 3x3 convolutions of stride 2
    (``stem.1`` ...), each followed by GELU, down to one vector of ``stem_channels[-1]`` values, mapped to the
    hidden size by ``projection``. Zero padding at every patch border keeps a token's features a function of its
    own pixels only, as the linear embedding's are: masked pre-training embeds the visible tubelets alone and a
    masked patch cannot leak into a visible token. Tokens follow the mask contract's (time, row, column) order.
    """

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__()
        self.tubelet_size = config.tubelet_size
        self.patch_size = config.patch_height_width
        self.num_channels = config.num_channels
        self.num_patches = config.num_tokens
        channels = [config.tubelet_size * config.num_channels, *config.stem_channels]
        self.stem = nn.ModuleList(
            StemConv2d(c_in, c_out, 3, stride=1 if i == 0 else 2, padding=1)
            for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:]))
        )
        self.projection = nn.Linear(channels[-1], config.hidden_size)

    def forward(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None = None
    ) -> torch.Tensor:
        batch = pixel_values.shape[0]
        patch_h, patch_w = self.patch_size
        # [B, N, tubelet * ph * pw * C] in (tubelet, row, column, channel) order -> one image per tubelet-patch
        patches = patchify(pixel_values, self.tubelet_size, self.patch_size)
        if bool_masked_pos is not None:
            patches = patches[~bool_masked_pos].reshape(batch, -1, patches.shape[-1])
        tokens = patches.shape[1]
        images = patches.reshape(-1, self.tubelet_size, patch_h, patch_w, self.num_channels)
        images = images.permute(0, 1, 4, 2, 3).reshape(
            -1, self.tubelet_size * self.num_channels, patch_h, patch_w
        )
        for conv in self.stem:
            images = F.gelu(conv(images))
        return self.projection(images.reshape(batch, tokens, -1))  # [B * n, c, 1, 1] -> [B, n, hidden]


class MedicaneVideoMAEEmbeddings(nn.Module):
    """Patch embedding plus the fixed sin-cos position table; drops the masked tokens when a mask is given."""

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__()
        self.config = config
        self.patch_embeddings = (
            MedicaneVideoMAEConvPatchEmbeddings(config)
            if config.patch_embedding == "conv"
            else MedicaneVideoMAEPatchEmbeddings(config)
        )
        self.num_patches = self.patch_embeddings.num_patches
        # Fixed, not learned, and recomputable from the config: a non-persistent buffer moves with .to() and
        # stays out of checkpoints, as in VideoMAE v2.
        self.register_buffer(
            "position_embeddings",
            sinusoid_position_table(self.num_patches, config.hidden_size),
            persistent=False,
        )

    def positions_for(self, grid: tuple[int, int, int]) -> torch.Tensor:
        """The position table for a token grid (time, rows, columns), interpolated when it is not the config's."""
        return interpolate_position_table(self.position_embeddings, self.config.token_grid, grid)

    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
    ) -> torch.Tensor:
        """``[B, T, C, H, W]`` -> ``[B, N_visible, hidden]`` (all N tokens when ``bool_masked_pos`` is None)."""
        table = self.position_embeddings
        if interpolate_pos_encoding:
            _, frames, _, height, width = pixel_values.shape
            patch_h, patch_w = self.config.patch_height_width
            table = self.positions_for(
                (frames // self.config.tubelet_size, height // patch_h, width // patch_w)
            )
        embeddings = self.patch_embeddings(pixel_values, bool_masked_pos)
        table = table.to(embeddings.dtype)
        if bool_masked_pos is not None:
            table = table.expand(embeddings.shape[0], -1, -1)[~bool_masked_pos].reshape(embeddings.shape)
        return embeddings + table


# ---------------------------------------------------------------------------------------------------- layers


class MedicaneVideoMAESelfAttention(VideoMAESelfAttention):
    """transformers' VideoMAE self-attention with VideoMAE v2's separate ``q_bias`` / ``v_bias`` (k has none).

    ``attn_config`` is the model's top-level config, read at call time for ``_attn_implementation`` so that
    ``model.set_attn_implementation(...)`` also reaches layers built from a derived config (the decoder's).
    """

    def __init__(
        self, config: MedicaneVideoMAEConfig, attn_config: MedicaneVideoMAEConfig | None = None
    ) -> None:
        super().__init__(config)
        self.attn_config = attn_config if attn_config is not None else config
        if config.qv_bias:
            self.q_bias = nn.Parameter(torch.zeros(self.all_head_size))
            self.v_bias = nn.Parameter(torch.zeros(self.all_head_size))
            # The biases live in q_bias / v_bias: drop the Linear's own so that no key is held twice.
            self.query.bias = None
            self.value.bias = None
        else:
            self.q_bias = None
            self.v_bias = None

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``[B, n, hidden]`` -> (context ``[B, n, hidden]``, attention probabilities or None)."""
        hidden_shape = (*hidden_states.shape[:-1], -1, self.attention_head_size)
        # query / value called as modules, so that an adapter wrapping them (peft LoRA) applies; their biases
        # are q_bias / v_bias, added after
        queries, values = self.query(hidden_states), self.value(hidden_states)
        if self.q_bias is not None:
            queries, values = queries + self.q_bias, values + self.v_bias
        queries = queries.view(hidden_shape).transpose(1, 2)
        keys = self.key(hidden_states).view(hidden_shape).transpose(1, 2)
        values = values.view(hidden_shape).transpose(1, 2)

        attention_interface = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.attn_config._attn_implementation, eager_attention_forward
        )
        context, probabilities = attention_interface(
            self,
            queries,
            keys,
            values,
            None,
            is_causal=False,
            scaling=self.scaling,
            dropout=self.dropout_prob if self.training else 0.0,
        )
        return context.reshape(*context.shape[:-2], self.all_head_size), probabilities


class MedicaneVideoMAEAttention(VideoMAEAttention):
    """transformers' VideoMAE attention block (self-attention + output projection) with the v2 self-attention."""

    def __init__(
        self, config: MedicaneVideoMAEConfig, attn_config: MedicaneVideoMAEConfig | None = None
    ) -> None:
        # Not VideoMAEAttention.__init__: it would allocate a transformers self-attention only to replace it.
        nn.Module.__init__(self)
        self.attention = MedicaneVideoMAESelfAttention(config, attn_config)
        self.output = VideoMAESelfOutput(config)


class DropPath(nn.Module):
    """Stochastic depth per sample (timm's ``DropPath``, ``scale_by_keep=True``): in training, zero a sample's
    branch with probability `drop_prob` and scale the kept ones by ``1 / (1 - drop_prob)``; identity in eval.
    ``[B, ...]`` -> ``[B, ...]``. The same random draws as timm's (one ``bernoulli_`` per sample)."""

    def __init__(self, drop_prob: float = 0.0) -> None:
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep_prob = 1 - self.drop_prob
        shape = (x.shape[0],) + (1,) * (x.ndim - 1)
        random_tensor = x.new_empty(shape).bernoulli_(keep_prob)
        if keep_prob > 0.0:
            random_tensor.div_(keep_prob)
        return x * random_tensor

    def extra_repr(self) -> str:
        return f"drop_prob={round(self.drop_prob, 3):0.3f}"


class MedicaneVideoMAELayer(VideoMAELayer):
    """A pre-norm transformer block (transformers' VideoMAELayer) with DropPath on both residual branches."""

    def __init__(
        self,
        config: MedicaneVideoMAEConfig,
        drop_path_rate: float = 0.0,
        attn_config: MedicaneVideoMAEConfig | None = None,
    ) -> None:
        # Not VideoMAELayer.__init__: it would allocate transformers' attention weights only to replace them.
        GradientCheckpointingLayer.__init__(self)
        self.chunk_size_feed_forward = config.chunk_size_feed_forward
        self.seq_len_dim = 1
        self.attention = MedicaneVideoMAEAttention(config, attn_config)
        self.intermediate = VideoMAEIntermediate(config)
        self.output = VideoMAEOutput(config)
        self.layernorm_before = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.layernorm_after = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.drop_path = DropPath(drop_path_rate) if drop_path_rate > 0 else nn.Identity()

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> torch.Tensor:
        """``[B, n, hidden]`` -> ``[B, n, hidden]``."""
        attention_output = self.attention(self.layernorm_before(hidden_states), **kwargs)
        hidden_states = hidden_states + self.drop_path(attention_output)
        # VideoMAEOutput would add the residual itself; take its projection and dropout only, so DropPath can
        # scale the branch before the sum.
        mlp_output = self.output.dense(self.intermediate(self.layernorm_after(hidden_states)))
        return hidden_states + self.drop_path(self.output.dropout(mlp_output))


class MedicaneVideoMAEEncoder(nn.Module):
    """The stack of encoder layers; stochastic depth rises linearly from 0 to ``config.drop_path_rate``."""

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__()
        self.config = config
        num_layers = config.num_hidden_layers
        rates = [config.drop_path_rate * i / max(num_layers - 1, 1) for i in range(num_layers)]
        self.layer = nn.ModuleList([MedicaneVideoMAELayer(config, rate) for rate in rates])
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, **kwargs) -> BaseModelOutput:
        for layer_module in self.layer:
            hidden_states = layer_module(hidden_states, **kwargs)
        return BaseModelOutput(last_hidden_state=hidden_states)


class MedicaneVideoMAEDecoder(nn.Module):
    """The MAE decoder (transformers' VideoMAEDecoder layout): layers, LayerNorm, linear head to pixels."""

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__()
        decoder_config = _decoder_config(config)
        self.decoder_layers = nn.ModuleList(
            [
                MedicaneVideoMAELayer(decoder_config, attn_config=config)
                for _ in range(config.decoder_num_hidden_layers)
            ]
        )
        self.norm = nn.LayerNorm(config.decoder_hidden_size, eps=config.layer_norm_eps)
        self.head = nn.Linear(config.decoder_hidden_size, config.patch_dim)
        self.gradient_checkpointing = False

    def forward(self, hidden_states: torch.Tensor, return_token_num: int) -> torch.Tensor:
        """``[B, n_vis + n_dec, decoder_hidden]`` -> pixel predictions ``[B, n_dec, patch_dim]`` of the last tokens."""
        for layer_module in self.decoder_layers:
            hidden_states = layer_module(hidden_states)
        return self.head(self.norm(hidden_states[:, hidden_states.shape[1] - return_token_num :]))


# ---------------------------------------------------------------------------------------------------- models


class MedicaneVideoMAEPreTrainedModel(PreTrainedModel):
    """Weight initialisation and shared settings; the encoder lives under ``videomae`` in every head."""

    config_class = MedicaneVideoMAEConfig
    config: MedicaneVideoMAEConfig
    base_model_prefix = "videomae"
    main_input_name = "pixel_values"
    input_modalities = "video"
    supports_gradient_checkpointing = True
    _no_split_modules = ["MedicaneVideoMAEEmbeddings", "MedicaneVideoMAELayer"]
    _supports_sdpa = True
    _supports_flash_attn = True
    _supports_flex_attn = True
    _supports_attention_backend = True
    _can_record_outputs = {
        "hidden_states": MedicaneVideoMAELayer,
        "attentions": MedicaneVideoMAESelfAttention,
    }

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        super()._init_weights(module)
        if isinstance(module, MedicaneVideoMAESelfAttention) and module.q_bias is not None:
            init.zeros_(module.q_bias)
            init.zeros_(module.v_bias)
        elif isinstance(module, MedicaneVideoMAEEmbeddings):
            # Buffers are not in checkpoints: refill them after a (meta-device) from_pretrained.
            table = sinusoid_position_table(module.num_patches, module.position_embeddings.shape[-1])
            init.copy_(module.position_embeddings, table)
        elif isinstance(module, MedicaneVideoMAEForPreTraining):
            init.trunc_normal_(module.mask_token, std=0.02)
            table = sinusoid_position_table(module.config.num_tokens, module.config.decoder_hidden_size)
            init.copy_(module.position_embeddings, table)
        elif isinstance(module, StemConv2d):
            init.kaiming_normal_(module.weight, nonlinearity="relu")
            init.zeros_(module.bias)
        elif isinstance(module, (TokenScore, PositionEmbedding)):
            # equal scores: attention pooling starts out as mean pooling; no position term: the position
            # detector starts out as the pixel-only one
            init.zeros_(module.weight)
            init.zeros_(module.bias)

    def save_pretrained(self, save_directory: str | os.PathLike, *args: Any, **kwargs: Any) -> None:
        """transformers' ``save_pretrained`` (config, weights, this code and its ``auto_map``), with the ``auto_map``
        of every Auto class (`AUTO_MAP`) and the video processor of the model's data contract beside them."""
        from .video_processing_medicane import MedicaneVideoProcessor

        self.config.auto_map = dict(AUTO_MAP)
        super().save_pretrained(save_directory, *args, **kwargs)
        if kwargs.get("is_main_process", True):
            MedicaneVideoProcessor.from_model_config(self.config).save_pretrained(save_directory)

    def _pooled_embeddings(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None, **kwargs
    ) -> tuple[torch.Tensor, BaseModelOutput]:
        """For the heads (which define ``fc_norm``): mean-pooled tokens after ``fc_norm`` ``[B, hidden]``, and the
        encoder output. VideoMAE v2 has no CLS token; pooling runs over the visible tokens when a mask is given."""
        outputs = self.videomae(pixel_values, bool_masked_pos=bool_masked_pos, **kwargs)
        return self.fc_norm(outputs.last_hidden_state.mean(dim=1)), outputs


class MedicaneVideoMAEModel(MedicaneVideoMAEPreTrainedModel):
    """The VideoMAE v2 encoder: ``[B, T, C, H, W]`` -> tokens ``[B, N or N_visible, hidden]``."""

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__(config)
        self.embeddings = MedicaneVideoMAEEmbeddings(config)
        self.encoder = MedicaneVideoMAEEncoder(config)
        # VideoMAE v2 has no final norm on the tokens when heads mean-pool (they apply fc_norm instead).
        self.layernorm = (
            None if config.use_mean_pooling else nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        )
        self.post_init()

    def get_input_embeddings(self) -> nn.Module:
        return self.embeddings.patch_embeddings

    @capture_outputs(tie_last_hidden_states=False)
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        interpolate_pos_encoding: bool = False,
        **kwargs,
    ) -> BaseModelOutput:
        r"""Encode a batch of clips.

        Args:
            pixel_values: float ``[B, T, C, H, W]``, normalised with the config's ``image_mean``/``image_std``.
            bool_masked_pos: optional bool ``[B, N]``, True = hidden from the encoder (same count per sample;
                see `medicane_hf.masking`); the encoder then sees only the visible tokens.
            interpolate_pos_encoding: accept another tile size (a multiple of the patch size) and interpolate the
                position table; frames and channels must still match the config.
            output_hidden_states, output_attentions: return every layer's tokens / attention maps (attention maps
                need ``attn_implementation="eager"``).

        Returns:
            `BaseModelOutput` with ``last_hidden_state`` ``[B, N_visible, hidden]``.
        """
        self.config.validate_clip_shape(pixel_values.shape, allow_other_size=interpolate_pos_encoding)
        embeddings = self.embeddings(pixel_values, bool_masked_pos, interpolate_pos_encoding)
        hidden_states = self.encoder(embeddings, **kwargs).last_hidden_state
        if self.layernorm is not None:
            hidden_states = self.layernorm(hidden_states)
        return BaseModelOutput(last_hidden_state=hidden_states)


class MedicaneVideoMAEForPreTraining(MedicaneVideoMAEPreTrainedModel):
    """VideoMAE v2 masked autoencoder with dual masking (tube mask for the encoder, running cell for the decoder).

    The encoder sees the visible tokens; the decoder sees them plus one mask token (with its position) for each
    token it must reconstruct, and the loss is the MSE over the tokens hidden from the encoder and kept by the
    decoder mask. Targets are the clip's pixels in 0..1 (``pixel_values * image_std + image_mean``), per patch
    normalised when ``norm_pix_loss``.
    """

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__(config)
        self.videomae = MedicaneVideoMAEModel(config)
        self.encoder_to_decoder = nn.Linear(config.hidden_size, config.decoder_hidden_size, bias=False)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, config.decoder_hidden_size))
        self.register_buffer(
            "position_embeddings",
            sinusoid_position_table(config.num_tokens, config.decoder_hidden_size),
            persistent=False,
        )
        self.decoder = MedicaneVideoMAEDecoder(config)
        self.post_init()

    # -------------------------------------------------------------- masks and targets

    def make_encoder_mask(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Tube mask from the config: bool ``[B, N]``, True = hidden from the encoder."""
        grid_t, grid_h, grid_w = self.config.token_grid
        ratio = self.config.encoder_mask_ratio
        return tube_mask(batch_size, grid_t, grid_h, grid_w, ratio, generator=generator, device=device)

    def make_decoder_mask(
        self,
        batch_size: int,
        device: torch.device | str | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | None:
        """Running-cell mask from the config, bool ``[B, N]`` True = reconstructed; None = every masked token."""
        if self.config.decoder_mask_type == "none" or self.config.decoder_mask_ratio == 0:
            return None
        grid_t, grid_h, grid_w = self.config.token_grid
        ratio = self.config.decoder_mask_ratio
        return running_cell_mask(
            batch_size, grid_t, grid_h, grid_w, ratio, generator=generator, device=device
        )

    def pixel_targets(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """The clip in 0..1 units, patchified: ``[B, N, patch_dim]`` (not yet per-patch normalised)."""
        shape = (1, 1, -1, 1, 1)
        mean = torch.tensor(self.config.image_mean, device=pixel_values.device, dtype=pixel_values.dtype)
        std = torch.tensor(self.config.image_std, device=pixel_values.device, dtype=pixel_values.dtype)
        pixels = pixel_values * std.view(shape) + mean.view(shape)
        return patchify(pixels, self.config.tubelet_size, self.config.patch_height_width)

    # -------------------------------------------------------------- forward

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        bool_masked_pos: torch.Tensor | None = None,
        decoder_mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        return_loss: bool = True,
        **kwargs,
    ) -> MedicaneVideoMAEPreTrainingOutput:
        r"""Reconstruct masked tokens of a batch of clips.

        Args:
            pixel_values: float ``[B, T, C, H, W]``, normalised with the config's ``image_mean``/``image_std``.
            bool_masked_pos: bool ``[B, N]``, True = hidden from the encoder, same count per sample; drawn from
                the config (tube mask) when None.
            decoder_mask: bool ``[B, N]``, True = reconstructed; drawn from the config when None (running cell;
                every masked token for ``decoder_mask_type="none"`` or ``decoder_mask_ratio=0``).
            generator: optional torch.Generator for reproducible masks.
            return_loss: compute the loss (default). There is no ``labels`` argument: the targets are the clip's
                own pixels; ``return_loss=True`` in the signature is what tells `transformers.Trainer` that the
                model returns a loss without labels.

        Returns:
            `MedicaneVideoMAEPreTrainingOutput`.
        """
        if kwargs.get("interpolate_pos_encoding"):
            raise ValueError(
                "pre-training runs at the config's tile size; interpolate_pos_encoding is for the heads"
            )
        batch, device = pixel_values.shape[0], pixel_values.device
        if bool_masked_pos is None:
            bool_masked_pos = self.make_encoder_mask(batch, device, generator)
        if decoder_mask is None:
            decoder_mask = self.make_decoder_mask(batch, device, generator)
        bool_masked_pos = bool_masked_pos.to(device=device, dtype=torch.bool)
        if decoder_mask is not None:
            decoder_mask = decoder_mask.to(device=device, dtype=torch.bool)
        positions, weights = decoder_targets(bool_masked_pos, decoder_mask)

        outputs = self.videomae(pixel_values, bool_masked_pos=bool_masked_pos, **kwargs)
        visible = self.encoder_to_decoder(outputs.last_hidden_state)  # [B, n_vis, D_dec]
        table = self.position_embeddings.to(visible.dtype)
        visible = visible + table.expand(batch, -1, -1)[~bool_masked_pos].reshape(visible.shape)
        mask_tokens = self.mask_token.to(visible.dtype) + _gather_tokens(table, positions)
        logits = self.decoder(torch.cat([visible, mask_tokens], dim=1), positions.shape[1])

        loss = self.reconstruction_loss(pixel_values, logits, positions, weights) if return_loss else None
        scored = torch.zeros_like(bool_masked_pos).scatter(1, positions, weights)
        return MedicaneVideoMAEPreTrainingOutput(
            loss=loss,
            logits=logits,
            bool_masked_pos=bool_masked_pos,
            decoder_mask=scored,
            decoded_positions=positions,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def reconstruction_loss(
        self, pixel_values: torch.Tensor, logits: torch.Tensor, positions: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """Mean squared error over the scored decoded tokens (float32 scalar).

        ``logits`` ``[B, n_dec, patch_dim]`` predict the tokens at ``positions`` ``[B, n_dec]``; ``weights``
        ``[B, n_dec]`` (bool) marks those that count. Targets: the clip's 0..1 pixels, per patch normalised when
        ``norm_pix_loss``.
        """
        with torch.no_grad():
            targets = _gather_tokens(self.pixel_targets(pixel_values), positions).float()
            if self.config.norm_pix_loss:
                targets = normalize_patches(targets, self.config.num_channels)
        per_token = (logits.float() - targets).pow(2).mean(dim=-1)
        weight = weights.to(per_token.dtype)
        return (per_token * weight).sum() / weight.sum().clamp(min=1.0)


class TokenScore(nn.Linear):
    """Linear(hidden, 1) scoring each token for attention pooling; initialised to zero (uniform weights)."""


POSITION_FREQUENCIES = (1.0, 2.0, 4.0, 8.0)
"""Frequencies k of the Fourier features of a grid position p in [0, 1]: sin / cos of 2 pi k p, per axis."""


def fourier_features(
    position: torch.Tensor, frequencies: tuple[float, ...] = POSITION_FREQUENCIES
) -> torch.Tensor:
    """Fixed Fourier features of positions ``[B, 2]`` in [0, 1]^2 -> float32 ``[B, 2 * 2 * len(frequencies)]``:
    (sin, cos) of ``2 pi k p`` for every k, x then y."""
    k = torch.tensor(frequencies, dtype=torch.float32, device=position.device)
    angles = 2 * torch.pi * position.float()[:, :, None] * k  # [B, 2, K]
    return torch.cat([angles.sin(), angles.cos()], dim=-1).flatten(1)


class PositionEmbedding(nn.Linear):
    """Linear(Fourier features, heatmap_channels) of the storm's grid position, added to the detector's pooled
    features; initialised to zero (training starts as the pixel-only head)."""


class MedicaneVideoMAEForDetection(MedicaneVideoMAEPreTrainedModel):
    """Clip classification (background / medicane [/ neighbouring]): pooling + ``fc_norm`` + ``classifier``.

    The pooling is ``config.detection_pooling``: mean (VideoMAE v2), max, or attention (``pool_score`` gives each
    token a weight; zero-initialised, so it starts as mean pooling).
    """

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__(config)
        self.num_labels = config.num_labels
        self.videomae = MedicaneVideoMAEModel(config)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        pixels = config.detection_pooling == "heatmap"
        self.heatmap_head = PixelHead(config) if pixels else None
        self.classifier = nn.Linear(
            config.heatmap_channels if pixels else config.hidden_size, config.num_labels
        )
        self.pool_score = (
            TokenScore(config.hidden_size, 1) if config.detection_pooling == "attention" else None
        )
        self.position_embedding = (
            PositionEmbedding(4 * len(POSITION_FREQUENCIES), config.heatmap_channels)
            if config.detection_position
            else None
        )
        self.post_init()

    def grid_position(self, heat_logits: torch.Tensor, tile_offset: torch.Tensor) -> torch.Tensor:
        """Where the storm is on the grid, in [0, 1]^2: the heat map's soft arg-max (detached, tile px) plus
        `tile_offset` ``[B, 2]`` (x0, y0, grid px), divided by the grid's (width, height): float32 ``[B, 2]``."""
        width, height = self.config.grid_width_height
        size = torch.tensor([width, height], dtype=torch.float32, device=heat_logits.device)
        return (soft_argmax_2d(heat_logits.detach()) + tile_offset.to(heat_logits.device).float()) / size

    def _detection_embeddings(
        self, pixel_values: torch.Tensor, bool_masked_pos: torch.Tensor | None, **kwargs
    ) -> tuple[torch.Tensor, BaseModelOutput, torch.Tensor | None]:
        """Pooled tokens after ``fc_norm`` ``[B, hidden]`` by ``config.detection_pooling``, the encoder output, and
        the heat-map logits ``[B, H, W]`` (``"heatmap"`` pooling only, else None).

        ``"heatmap"`` pools pixels instead: `PixelHead`'s features ``[B, heatmap_channels]`` weighted by the softmax
        of its per-pixel scores (the most storm-like pixels of the last frames decide).
        """
        if self.config.detection_pooling == "mean":
            return (*self._pooled_embeddings(pixel_values, bool_masked_pos, **kwargs), None)
        outputs = self.videomae(pixel_values, bool_masked_pos=bool_masked_pos, **kwargs)
        tokens = outputs.last_hidden_state
        if self.heatmap_head is not None:
            _, grid_h, grid_w = self.config.token_grid
            if tokens.shape[1] != self.config.num_tokens:
                raise ValueError(
                    f"detection_pooling='heatmap' needs every token ({self.config.num_tokens}), got "
                    f"{tokens.shape[1]}: do not pass bool_masked_pos"
                )
            features, logits = self.heatmap_head(self.fc_norm(tokens[:, -grid_h * grid_w :]), pixel_values)
            weights = logits.float().flatten(1).softmax(dim=-1).to(features.dtype)
            return torch.einsum("bn,bcn->bc", weights, features.flatten(2)), outputs, logits
        if self.config.detection_pooling == "max":
            pooled = tokens.amax(dim=1)
        else:
            weights = torch.softmax(self.pool_score(tokens).float(), dim=1).to(tokens.dtype)
            pooled = (weights * tokens).sum(dim=1)
        return self.fc_norm(pooled), outputs, None

    def compute_loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy with the config's label smoothing and class weights (labels: int ``[B]``).

        ``problem_type="multi_label_classification"`` uses binary cross-entropy on float labels
        ``[B, num_labels]`` instead.
        """
        if self.config.problem_type == "multi_label_classification":
            return F.binary_cross_entropy_with_logits(logits.float(), labels.to(torch.float32))
        if self.config.problem_type not in (None, "single_label_classification"):
            raise ValueError(
                f"problem_type={self.config.problem_type!r} is not a detection task: use "
                "'single_label_classification' or 'multi_label_classification'"
            )
        if labels.dim() != 1 or labels.dtype.is_floating_point:
            raise ValueError(
                f"detection labels must be int class ids of shape [batch], got {labels.dtype} {list(labels.shape)}"
            )
        weight = None
        if self.config.class_weights is not None:
            weight = torch.tensor(self.config.class_weights, dtype=torch.float32, device=logits.device)
        return F.cross_entropy(
            logits.float(), labels, weight=weight, label_smoothing=float(self.config.label_smoothing)
        )

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        centre: torch.Tensor | None = None,
        tile_offset: torch.Tensor | None = None,
        **kwargs,
    ) -> MedicaneVideoMAEDetectionOutput:
        r"""Classify a batch of clips.

        Args:
            pixel_values: float ``[B, T, C, H, W]``, normalised with the config's statistics.
            labels: optional int ``[B]`` class ids (see ``config.id2label``).
            centre: optional float ``[B, 2]`` storm centre (x, y) in tile pixels at the last frame, NaN where the
                clip has none. With ``detection_pooling="heatmap"`` and labels, the loss adds
                ``detection_centre_loss_weight`` x `centre_loss` of the heat map: the head is told where the eye
                is, not only that there is one (with ~130 Medicane train clips the clip label alone did not
                teach it: held-out ROC AUC 0.65). Ignored by the other poolings.
            tile_offset: float ``[B, 2]`` (x0, y0), the grid pixel of the tile's top-left corner. Needed with
                ``config.detection_position`` (the storm's grid position, `grid_position`, is encoded by
                `fourier_features` and ``position_embedding`` and added to the pooled features); ignored
                otherwise (datasets always give it).
            bool_masked_pos: optional encoder mask (True = hidden), e.g. for masked-input experiments.

        Returns:
            `MedicaneVideoMAEDetectionOutput` (``logits`` ``[B, num_labels]``, ``embeddings`` ``[B, hidden]``).
        """
        if self.position_embedding is not None and tile_offset is None:
            raise ValueError(
                "this detector was trained with the tile's grid position (detection_position=True) and must be "
                "given tile_offset: float [B, 2], the (x0, y0) grid pixel of each tile's top-left corner"
            )
        embeddings, outputs, heat = self._detection_embeddings(pixel_values, bool_masked_pos, **kwargs)
        if self.position_embedding is not None:
            position = fourier_features(self.grid_position(heat, tile_offset))
            embeddings = embeddings + self.position_embedding(position.to(embeddings.dtype))
        logits = self.classifier(embeddings)
        loss = None if labels is None else self.compute_loss(logits, labels.to(logits.device))
        if loss is not None and heat is not None and centre is not None:
            loss = loss + self.config.detection_centre_loss_weight * centre_loss(
                heat, centre.to(heat.device), sigma=float(self.config.heatmap_target_sigma)
            )
        return MedicaneVideoMAEDetectionOutput(
            loss=loss,
            logits=logits,
            embeddings=embeddings,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )

    def probabilities(self, logits: torch.Tensor) -> torch.Tensor:
        """Calibrated class probabilities ``softmax(logits / config.detection_temperature)``: ``[B, C]`` -> ``[B, C]``."""
        return (logits.float() / self.config.detection_temperature).softmax(dim=-1)


def gaussian_blur_probabilities(weights: torch.Tensor, sigma: float) -> torch.Tensor:
    """``[B, H, W]`` per-pixel probabilities convolved with an isotropic Gaussian of `sigma` px (separable, zero
    outside the tile: mass blurred off the tile is lost), float32.

    Written here, not taken from torchvision's ``gaussian_blur``: that one pads by reflection, which would fold
    the mass of labels that fall off the tile back onto it, and torchvision is not a dependency of this package.
    """
    radius = max(1, int(math.ceil(3.0 * sigma)))
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float32, device=weights.device)
    kernel = torch.exp(-0.5 * (offsets / sigma) ** 2)
    kernel = kernel / kernel.sum()
    planes = weights.float()[:, None]  # [B, 1, H, W]
    planes = F.conv2d(planes, kernel.reshape(1, 1, 1, -1), padding=(0, radius))
    planes = F.conv2d(planes, kernel.reshape(1, 1, -1, 1), padding=(radius, 0))
    return planes[:, 0]


def centre_loss(
    heat_logits: torch.Tensor,
    centre: torch.Tensor,
    subpixel: bool = False,
    sigma: float = 0.0,
    label_noise: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of a heat map's pixel softmax against the centre (float32 scalar).

    Args:
        heat_logits: ``[B, H, W]`` per-pixel logits.
        centre: ``[B, 2]`` (x, y) in tile pixels; rows with NaN (no storm) and centres off the tile do not count.
        subpixel: the target is the centre's four neighbouring pixels with bilinear weights, whose expected
            position is the centre itself, so the loss agrees with a soft arg-max (tracking); else the one
            pixel holding the centre (detection: where, not exactly where).
        sigma: > 0: the target is instead an isotropic Gaussian of this sigma (px) around the centre, cut to the
            tile and normalised (a label known to that precision only); overrides `subpixel`.
        label_noise: > 0: the labelled centre is the visible one plus a Gaussian error of this sigma (px per axis).
            The map's softmax is blurred by that error (and renormalised over the tile: only labels on the tile
            count) before its likelihood is taken, so the map itself is fitted to the visible centre and the blur
            to the labels' scatter around it ("forward correction" for label noise); without it, the map learns
            the scatter and its peak is as unsteady as the labels are wide.

    Returns:
        The mean over counted rows, 0 when none counts (the term then adds nothing to the loss). Under DDP the
        mean is over each process's own rows (as detection frameworks normalise by the positives per device), so
        for detection, whose rows with a centre vary per batch, 1 and N processes weigh the term slightly
        differently; tracking rows all carry a centre.
    """
    batch, height, width = heat_logits.shape
    pixel = centre.round()
    counted = torch.isfinite(centre).all(dim=-1)
    counted &= (pixel[:, 0] >= 0) & (pixel[:, 0] < width) & (pixel[:, 1] >= 0) & (pixel[:, 1] < height)
    if not counted.any():
        return heat_logits.float().sum() * 0.0  # keeps the graph (DDP needs every parameter used)
    logits = heat_logits.float().reshape(batch, -1)[counted]
    if label_noise > 0:
        blurred = gaussian_blur_probabilities(logits.softmax(dim=-1).reshape(-1, height, width), label_noise)
        blurred = blurred.reshape(logits.shape).clamp_min(1e-30)
        # log of the blurred map renormalised over the tile; the targets below take it like a log-softmax
        logits = blurred.log() - blurred.sum(dim=-1, keepdim=True).log()
    if sigma > 0:
        xy = centre[counted].float()
        xs = torch.arange(width, dtype=torch.float32, device=logits.device)
        ys = torch.arange(height, dtype=torch.float32, device=logits.device)
        gx = torch.exp(-0.5 * ((xs[None] - xy[:, :1]) / sigma) ** 2)  # [n, W]
        gy = torch.exp(-0.5 * ((ys[None] - xy[:, 1:]) / sigma) ** 2)  # [n, H]
        target = (gy[:, :, None] * gx[:, None, :]).reshape(logits.shape)
        target = target / target.sum(dim=-1, keepdim=True)
        return -(target * logits.log_softmax(dim=-1)).sum(dim=-1).mean()
    if not subpixel:
        return F.cross_entropy(logits, (pixel[counted, 1] * width + pixel[counted, 0]).long())
    xy = centre[counted].float()
    x = xy[:, 0].clamp(0, width - 1)
    y = xy[:, 1].clamp(0, height - 1)
    x0 = x.floor().clamp(max=width - 2) if width > 1 else x.floor()
    y0 = y.floor().clamp(max=height - 2) if height > 1 else y.floor()
    fx, fy = x - x0, y - y0
    target = torch.zeros_like(logits)
    rows = torch.arange(logits.shape[0], device=logits.device)
    for dx, dy, weight in (
        (0, 0, (1 - fx) * (1 - fy)),
        (1, 0, fx * (1 - fy)),
        (0, 1, (1 - fx) * fy),
        (1, 1, fx * fy),
    ):
        index = ((y0 + dy).clamp(max=height - 1) * width + (x0 + dx).clamp(max=width - 1)).long()
        target.index_put_((rows, index), weight, accumulate=True)
    return -(target * logits.log_softmax(dim=-1)).sum(dim=-1).mean()


def _marginals(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The softmax of ``[B, H, W]`` logits summed over rows and columns: (weights over x ``[B, W]``, over y
    ``[B, H]``, pixel columns ``[W]``, rows ``[H]``), float32."""
    batch, height, width = logits.shape
    weights = logits.float().reshape(batch, -1).softmax(dim=-1).reshape(batch, height, width)
    xs = torch.arange(width, dtype=torch.float32, device=logits.device)
    ys = torch.arange(height, dtype=torch.float32, device=logits.device)
    return weights.sum(dim=1), weights.sum(dim=2), xs, ys


def soft_argmax_2d(logits: torch.Tensor) -> torch.Tensor:
    """Expected pixel position under the softmax of a map: logits ``[B, H, W]`` -> float32 ``[B, 2]`` (x, y).

    x = column, y = row, pixel centres at integers; continuous, so sub-pixel, and differentiable.
    """
    weights_x, weights_y, xs, ys = _marginals(logits)
    return torch.stack([(weights_x * xs).sum(-1), (weights_y * ys).sum(-1)], dim=-1)


def soft_argmax_with_spread(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`soft_argmax_2d` and the isotropic spread of the same softmax about it, from one softmax.

    Returns:
        centre ``[B, 2]`` (x, y) px, differentiable; spread ``[B]`` px, ``sqrt((var_x + var_y) / 2)``, with the
        centre held fixed in the variance (the spread is a read-out, calibrated later, not a training signal
        for the position).
    """
    weights_x, weights_y, xs, ys = _marginals(logits)
    centre = torch.stack([(weights_x * xs).sum(-1), (weights_y * ys).sum(-1)], dim=-1)
    return centre, _spread_about(weights_x, weights_y, xs, ys, centre)


def _spread_about(
    weights_x: torch.Tensor, weights_y: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor, centre: torch.Tensor
) -> torch.Tensor:
    """``sqrt((E[(x - cx)^2] + E[(y - cy)^2]) / 2)`` ``[B]`` px under a map's marginals (`_marginals`), the centre
    ``[B, 2]`` held fixed (detached): a read-out, not a training signal for the position."""
    mean = centre.detach()
    var_x = (weights_x * (xs[None] - mean[:, :1]) ** 2).sum(-1)
    var_y = (weights_y * (ys[None] - mean[:, 1:]) ** 2).sum(-1)
    return torch.sqrt(0.5 * (var_x + var_y)).clamp_min(1e-6)


def peak_readout_with_spread(logits: torch.Tensor, radius: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The map's mode refined to sub-pixel, and the whole map's spread about it.

    The centre is the expected position under the softmax restricted to the square window of half-width
    `radius` px around the most likely pixel (differentiable in the logits; the window is chosen without
    gradient); a second candidate elsewhere on the map does not pull it. The spread is
    ``sqrt((E[(x - cx)^2] + E[(y - cy)^2]) / 2)`` over the whole map with the centre held fixed: a map split
    between candidates reads as uncertain.

    Args:
        logits: ``[B, H, W]`` per-pixel logits.
        radius: window half-width in px (0: the arg-max pixel itself).

    Returns:
        centre ``[B, 2]`` (x, y) px, float32; spread ``[B]`` px.
    """
    batch, height, width = logits.shape
    weights = logits.float().reshape(batch, -1).softmax(dim=-1).reshape(batch, height, width)
    flat = weights.reshape(batch, -1).argmax(dim=-1)
    peak_y, peak_x = (flat // width).float(), (flat % width).float()
    xs = torch.arange(width, dtype=torch.float32, device=logits.device)
    ys = torch.arange(height, dtype=torch.float32, device=logits.device)
    in_x = ((xs[None] - peak_x[:, None]).abs() <= radius).float()  # [B, W]
    in_y = ((ys[None] - peak_y[:, None]).abs() <= radius).float()  # [B, H]
    local = weights * in_y[:, :, None] * in_x[:, None, :]
    mass = local.sum(dim=(1, 2)).clamp_min(1e-30)
    centre = torch.stack(
        [(local.sum(dim=1) * xs).sum(-1) / mass, (local.sum(dim=2) * ys).sum(-1) / mass], dim=-1
    )
    return centre, _spread_about(weights.sum(dim=1), weights.sum(dim=2), xs, ys, centre)


class PixelHead(nn.Module):
    """Full-resolution features and a score per pixel, from the last frame's tokens and the clip's last frames.

    ``heatmap_fine`` computes features of the clip's last ``heatmap_frames`` frames at full resolution (two 3x3
    convolutions over the frames' channels stacked); ``heatmap_coarse`` projects each last-frame token to the
    same width, upsampled bilinearly to the tile; their sum goes through ``heatmap_mix`` (3x3 convolution, GELU)
    to the pixel features, and ``heatmap_score`` (1x1 convolution) gives one logit per pixel. The tokens say
    which storm (context over the whole clip), the full-resolution features say which pixel: position is kept
    below a token, which a 16-px patch embedding alone loses.
    """

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__()
        width, frames = config.heatmap_channels, config.heatmap_frames
        self.frames = frames
        self.token_grid = config.token_grid[1:]
        self.heatmap_fine = nn.Sequential(
            StemConv2d(frames * config.num_channels, width, 3, padding=1),
            nn.GELU(),
            StemConv2d(width, width, 3, padding=1),
            nn.GELU(),
        )
        self.heatmap_coarse = nn.Linear(config.hidden_size, width)
        self.heatmap_mix = StemConv2d(width, width, 3, padding=1)
        self.heatmap_score = nn.Conv2d(width, 1, 1)

    def forward(
        self, last_tokens: torch.Tensor, pixel_values: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel features ``[B, heatmap_channels, H, W]`` and logits ``[B, H, W]``.

        Args:
            last_tokens: ``[B, grid_h * grid_w, hidden]``, the last temporal slice of tokens after ``fc_norm``.
            pixel_values: the clip ``[B, T, C, H, W]``.
        """
        batch, _, _, height, width = pixel_values.shape
        grid_h, grid_w = self.token_grid
        recent = pixel_values[:, -self.frames :].reshape(batch, -1, height, width)
        coarse = self.heatmap_coarse(last_tokens).transpose(1, 2).reshape(batch, -1, grid_h, grid_w)
        coarse = F.interpolate(coarse, size=(height, width), mode="bilinear", align_corners=False)
        features = F.gelu(self.heatmap_mix(self.heatmap_fine(recent) + coarse))
        return features, self.heatmap_score(features).squeeze(1)


class MedicaneVideoMAEForTracking(MedicaneVideoMAEPreTrainedModel):
    """Storm-centre regression: mean pooling + ``fc_norm`` (LayerNorm) + ``regressor`` Linear(hidden, 2); with
    ``config.tracking_head="token_argmax"``, a soft arg-max over the last frame's tokens (``heatmap`` scores,
    ``regressor`` offsets from each patch centre); with ``"heatmap"``, a full-resolution heat map
    (`PixelHead`, ``heatmap_head``) and its soft arg-max.

    Trains in normalised target space, ``(xy - centre) / scale`` with the tile centre ``((W-1)/2, (H-1)/2)`` and
    scale ``(W/2, H/2)`` (see the config's ``tracking_target_centre`` / ``tracking_target_scale``), and returns
    pixels.
    """

    def __init__(self, config: MedicaneVideoMAEConfig) -> None:
        super().__init__(config)
        self.videomae = MedicaneVideoMAEModel(config)
        self.fc_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.regressor = nn.Linear(config.hidden_size, 2) if config.tracking_head != "heatmap" else None
        self.heatmap = nn.Linear(config.hidden_size, 1) if config.tracking_head == "token_argmax" else None
        self.heatmap_head = PixelHead(config) if config.tracking_head == "heatmap" else None
        self.post_init()

    def _patch_centres(self, reference: torch.Tensor) -> torch.Tensor:
        """Centres of the token grid's patches in normalised target space, float32 ``[grid_h * grid_w, 2]``."""
        _, grid_h, grid_w = self.config.token_grid
        patch_h, patch_w = self.config.patch_height_width
        ys, xs = torch.meshgrid(
            torch.arange(grid_h, dtype=torch.float32, device=reference.device),
            torch.arange(grid_w, dtype=torch.float32, device=reference.device),
            indexing="ij",
        )
        pixels = torch.stack([xs * patch_w + (patch_w - 1) / 2, ys * patch_h + (patch_h - 1) / 2], dim=-1)
        return self.normalize_targets(pixels.reshape(-1, 2))

    def _token_argmax(self, tokens: torch.Tensor) -> torch.Tensor:
        """Soft arg-max head: tokens ``[B, N, hidden]`` (all of them) -> normalised centre ``[B, 2]``.

        Only the last temporal slice is used: the target is the centre at the clip's last frame, which lies in the
        last tubelet. A token's offset is bounded (tanh) to one patch around its own patch centre.
        """
        _, grid_h, grid_w = self.config.token_grid
        self._require_every_token(tokens)
        last = self.fc_norm(tokens[:, -grid_h * grid_w :])
        weights = self.heatmap(last).squeeze(-1).float().softmax(dim=-1)
        _, scale = self._target_affine(tokens)
        patch_h, patch_w = self.config.patch_height_width
        patch = torch.tensor([patch_w, patch_h], dtype=torch.float32, device=tokens.device)
        offsets = torch.tanh(self.regressor(last).float()) * (patch / scale)
        return torch.einsum("bn,bnk->bk", weights, self._patch_centres(tokens) + offsets)

    def _require_every_token(self, tokens: torch.Tensor) -> None:
        """The position-keeping heads read the last frame's token grid: refuse a masked (shortened) sequence."""
        if tokens.shape[1] != self.config.num_tokens:
            raise ValueError(
                f"tracking_head={self.config.tracking_head!r} needs every token ({self.config.num_tokens}), got "
                f"{tokens.shape[1]}: do not pass bool_masked_pos"
            )

    def _target_affine(self, reference: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(centre, scale) as float32 ``[2]`` tensors on ``reference``'s device."""
        centre = torch.tensor(
            self.config.tracking_target_centre, dtype=torch.float32, device=reference.device
        )
        scale = torch.tensor(self.config.tracking_target_scale, dtype=torch.float32, device=reference.device)
        return centre, scale

    def normalize_targets(self, xy: torch.Tensor) -> torch.Tensor:
        """Tile pixels ``[..., 2]`` (x, y) -> normalised target space."""
        centre, scale = self._target_affine(xy)
        return (xy.float() - centre) / scale

    def denormalize_targets(self, normalized: torch.Tensor) -> torch.Tensor:
        """Normalised target space ``[..., 2]`` -> tile pixels (x, y)."""
        centre, scale = self._target_affine(normalized)
        return normalized.float() * scale + centre

    def compute_loss(
        self,
        normalized_prediction: torch.Tensor,
        labels: torch.Tensor,
        heat_logits: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """MSE or Huber (``config.tracking_loss``) between the prediction and ``labels`` (pixels ``[B, 2]``), plus
        ``tracking_centre_loss_weight`` x the sub-pixel `centre_loss` of the heat map when ``heat_logits``
        ``[B, H, W]`` are given (the ``"heatmap"`` head)."""
        if labels.shape[-1] != 2:
            raise ValueError(
                f"tracking labels must be (x, y) tile pixels of shape [batch, 2], got {list(labels.shape)}"
            )
        target = self.normalize_targets(labels)
        sigma = float(self.config.heatmap_target_sigma)
        noise = float(self.config.heatmap_label_noise)
        if self.config.tracking_loss == "heatmap":
            return centre_loss(heat_logits, labels.float(), subpixel=True, sigma=sigma, label_noise=noise)
        if heat_logits is not None and self.config.tracking_centre_loss_weight > 0:
            extra = self.config.tracking_centre_loss_weight * centre_loss(
                heat_logits, labels.float(), subpixel=True, sigma=sigma, label_noise=noise
            )
        else:
            extra = 0.0
        if self.config.tracking_loss == "huber":
            return extra + F.huber_loss(
                normalized_prediction.float(), target, delta=self.config.tracking_huber_delta
            )
        return extra + F.mse_loss(normalized_prediction.float(), target)

    @can_return_tuple
    def forward(
        self,
        pixel_values: torch.Tensor,
        labels: torch.Tensor | None = None,
        bool_masked_pos: torch.Tensor | None = None,
        tile_offset: torch.Tensor | None = None,
        **kwargs,
    ) -> MedicaneVideoMAETrackingOutput:
        r"""Predict the storm centre at the clip's last frame.

        Args:
            pixel_values: float ``[B, T, C, H, W]``, normalised with the config's statistics.
            labels: optional float ``[B, 2]`` true centre (x, y) in tile pixels.
            bool_masked_pos: optional encoder mask (True = hidden).
            tile_offset: accepted and ignored (the detector's grid position input; datasets may give it).

        Returns:
            `MedicaneVideoMAETrackingOutput` (``logits`` = centre in tile pixels ``[B, 2]``).
        """
        embeddings, outputs = self._pooled_embeddings(pixel_values, bool_masked_pos, **kwargs)
        if self.heatmap_head is not None:
            self._require_every_token(outputs.last_hidden_state)
            _, grid_h, grid_w = self.config.token_grid
            last = self.fc_norm(outputs.last_hidden_state[:, -grid_h * grid_w :])
            heat_logits = self.heatmap_head(last, pixel_values)[1]
            if self.config.tracking_readout == "peak":
                centre, raw_spread = peak_readout_with_spread(heat_logits, self.config.tracking_peak_radius)
            else:
                centre, raw_spread = soft_argmax_with_spread(heat_logits)
            normalized = self.normalize_targets(centre)
            spread = self.config.tracking_spread_scale * raw_spread
        elif self.heatmap is None:
            heat_logits, normalized, spread = None, self.regressor(embeddings), None
        else:
            heat_logits, normalized, spread = None, self._token_argmax(outputs.last_hidden_state), None
        loss = (
            None
            if labels is None
            else self.compute_loss(normalized, labels.to(normalized.device), heat_logits)
        )
        return MedicaneVideoMAETrackingOutput(
            loss=loss,
            logits=self.denormalize_targets(normalized),
            normalized_logits=normalized,
            centre_spread=spread,
            embeddings=embeddings,
            hidden_states=outputs.hidden_states,
            attentions=outputs.attentions,
        )


# Which Auto class loads which class, in every saved folder's config.json (the model's own one and the others, so
# that e.g. AutoModel gives the encoder of a detector folder).
AUTO_CLASSES: dict[str, type[MedicaneVideoMAEPreTrainedModel]] = {
    "AutoModel": MedicaneVideoMAEModel,
    "AutoModelForPreTraining": MedicaneVideoMAEForPreTraining,
    "AutoModelForVideoClassification": MedicaneVideoMAEForDetection,
    "AutoModelForKeypointDetection": MedicaneVideoMAEForTracking,
}
AUTO_MAP: dict[str, str] = {
    "AutoConfig": "configuration_medicane.MedicaneVideoMAEConfig",
    **{auto: f"modeling_medicane.{model_class.__name__}" for auto, model_class in AUTO_CLASSES.items()},
}
for _auto_class, _model_class in AUTO_CLASSES.items():
    _model_class.register_for_auto_class(_auto_class)

__all__ = [
    "AUTO_CLASSES",
    "AUTO_MAP",
    "DropPath",
    "MedicaneVideoMAEDetectionOutput",
    "MedicaneVideoMAEForDetection",
    "MedicaneVideoMAEForPreTraining",
    "MedicaneVideoMAEForTracking",
    "MedicaneVideoMAEModel",
    "MedicaneVideoMAEPreTrainedModel",
    "MedicaneVideoMAEPreTrainingOutput",
    "MedicaneVideoMAETrackingOutput",
    "centre_loss",
    "denormalize_patches",
    "fourier_features",
    "interpolate_position_table",
    "normalize_patches",
    "patchify",
    "sinusoid_position_table",
    "soft_argmax_2d",
    "soft_argmax_with_spread",
    "unpatchify",
]
