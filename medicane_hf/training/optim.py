"""Optimizer parameter groups, learning-rate scaling and the weight-decay schedule.

- Weight decay applies to matrices only: biases, norm weights, the q/v
  biases, the mask token and any position table get none (they are scales
  and offsets, and decaying them towards zero hurts ViTs).
- Layer-wise lr decay (BEiT, VideoMAE fine-tuning): timm's
  ``group_parameters`` numbers the parameters by depth with a matcher for
  the VideoMAE key names (embeddings = 0, encoder layer i = i + 1, anything
  after the encoder = L + 1); a group at depth d gets ``lr x decay^(L+1-d)``.
  The scale is written into the group's ``lr`` so that the Trainer's
  scheduler (which multiplies each group's initial lr) keeps it.
"""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable

import torch
from timm.models import group_parameters
from torch import nn

# Never decayed, beside every parameter with at most one dimension.
NO_DECAY_PATTERNS: tuple[str, ...] = ("*mask_token*", "*position_embeddings*", "*pos_embed*", "*.bias")

# Depth of a parameter for layer decay: the transformers VideoMAE key names (see docs/DESIGN.md).
# A LoRA model (peft) holds the same names under ``base_model.model.``.
VIDEOMAE_GROUP_MATCHER: dict[str, str] = {
    "embeddings": r"^(?:base_model\.model\.)?videomae\.embeddings",
    "blocks": r"^(?:base_model\.model\.)?videomae\.encoder\.layer\.(\d+)\.",
}


def decays(name: str, parameter: torch.Tensor) -> bool:
    """Whether weight decay applies to parameter `name`."""
    if parameter.ndim <= 1:
        return False
    return not any(fnmatch.fnmatch(name, pattern) for pattern in NO_DECAY_PATTERNS)


def layer_ids(model: nn.Module) -> dict[str, int]:
    """Depth of every parameter: 0 for the embeddings, i + 1 for encoder layer i, the largest for the rest."""
    return group_parameters(model, VIDEOMAE_GROUP_MATCHER, reverse=True)


def parameter_groups(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    layer_decay: float | None = None,
) -> list[dict]:
    """AdamW parameter groups: (depth, decay or not), each with its own `lr` and `weight_decay`.

    Every group also records `lr_scale` and `base_weight_decay` (the value the
    weight-decay schedule starts from; 0 for the no-decay groups) and the
    parameter names (`param_names`, for logs and tests).
    """
    use_layer_decay = layer_decay is not None and layer_decay != 1.0
    depth = layer_ids(model) if use_layer_decay else {}
    num_depths = max(depth.values()) + 1 if depth else 1
    groups: dict[tuple[int, bool], dict] = {}
    for name, parameter in model.named_parameters():
        if not parameter.requires_grad:
            continue
        level = depth.get(name, num_depths - 1)
        with_decay = decays(name, parameter)
        key = (level, with_decay)
        if key not in groups:
            scale = layer_decay ** (num_depths - 1 - level) if use_layer_decay else 1.0
            wd = weight_decay if with_decay else 0.0
            groups[key] = {
                "params": [],
                "param_names": [],
                "lr": learning_rate * scale,
                "lr_scale": scale,
                "weight_decay": wd,
                "base_weight_decay": wd,
            }
        groups[key]["params"].append(parameter)
        groups[key]["param_names"].append(name)
    return [groups[key] for key in sorted(groups)]


def scaled_learning_rate(base_learning_rate: float, total_batch_size: int) -> float:
    """The linear scaling rule: base lr for a batch of 256, scaled to `total_batch_size`."""
    return base_learning_rate * total_batch_size / 256.0


def cosine_value(start: float, end: float, step: int, total_steps: int) -> float:
    """Cosine from `start` (step 0) to `end` (step `total_steps`), flat after."""
    if total_steps <= 0:
        return end
    progress = min(max(step / total_steps, 0.0), 1.0)
    return end + 0.5 * (start - end) * (1.0 + math.cos(math.pi * progress))


def set_weight_decay(
    param_groups: Iterable[dict], start: float, end: float, step: int, total_steps: int
) -> float:
    """Set the weight decay of every decayed group for optimizer step `step`; returns the value."""
    value = cosine_value(start, end, step, total_steps)
    for group in param_groups:
        if group.get("base_weight_decay", group.get("weight_decay", 0.0)) > 0:
            group["weight_decay"] = value
    return value
