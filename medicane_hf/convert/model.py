"""Building the model and loading the fitted tensors into it, every model key accounted for."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from tqdm.auto import tqdm

from medicane_hf.convert.heads import TaskFit
from medicane_hf.convert.report import ConversionError, KeyNote

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def _align_to_model(tensors: dict[str, torch.Tensor], sources: dict[str, str], model_keys: set[str]) -> None:
    """Follow the model's bias naming: transformers uses ``query.bias``, older code ``q_bias``."""
    for key in list(tensors):
        if key in model_keys:
            continue
        alias = re.sub(r"\.query\.bias$", ".q_bias", key)
        alias = re.sub(r"\.value\.bias$", ".v_bias", alias)
        if alias != key and alias in model_keys:
            tensors[alias] = tensors.pop(key)
            sources[alias] = sources.pop(key)


def load_into_model(model: torch.nn.Module, fit: TaskFit, source: str) -> dict[str, KeyNote]:
    """Copy ``fit.tensors`` into ``model``; returns the newly initialised model keys.

    Raises ``ConversionError`` listing unexpected keys, shape mismatches and model keys left without a
    source that are not a freshly initialised head.
    """
    model_state = model.state_dict()
    _align_to_model(fit.tensors, fit.sources, set(model_state))
    unexpected = sorted(k for k in fit.tensors if k not in model_state)
    mismatched = [
        f"{k} (from {fit.sources[k]}): checkpoint {tuple(v.shape)}, model {tuple(model_state[k].shape)}"
        for k, v in fit.tensors.items()
        if k in model_state and v.shape != model_state[k].shape
    ]
    fresh: dict[str, KeyNote] = {}
    missing: list[str] = []
    for key in model_state:
        if key in fit.tensors:
            continue
        reason = next((why for prefix, why in fit.fresh_allowed.items() if key.startswith(prefix)), None)
        if reason is None:
            missing.append(key)
        else:
            fresh[key] = KeyNote(key, reason)
    problems = []
    if unexpected:
        problems.append(
            "source keys with no place in the model: " + ", ".join(fit.sources[k] for k in unexpected)
        )
    if mismatched:
        problems.append("shape mismatches: " + "; ".join(mismatched))
    if missing:
        problems.append("model keys with no source: " + ", ".join(missing))
    if problems:
        raise ConversionError(f"{source}: " + " | ".join(problems))
    _initialise_fresh(model, fresh)
    parameters = model.state_dict(keep_vars=True)
    with torch.no_grad():
        for key, value in tqdm(fit.tensors.items(), desc="copying weights", disable=len(fit.tensors) < 500):
            parameters[key].copy_(value)
    return fresh


def new_model(model_cls: type, config: Any) -> PreTrainedModel:
    """``model_cls(config)`` without random initialisation (it takes ~35 s for the giant on CPU and the
    checkpoint overwrites it); ``_initialise_fresh`` then initialises only the keys the checkpoint lacks."""
    from transformers.initialization import no_init_weights

    with no_init_weights():
        return model_cls(config)


def _initialise_fresh(model: PreTrainedModel, fresh: Mapping[str, KeyNote]) -> None:
    """Run the model's own ``_init_weights`` on each module that owns a freshly initialised key.

    Runs before the checkpoint's tensors are copied in, so an init that touches more than the fresh keys
    cannot overwrite converted weights.
    """
    owners: dict[str, torch.nn.Module] = {}
    for key in fresh:
        owner = key.rsplit(".", 1)[0] if "." in key else ""
        owners.setdefault(owner, model.get_submodule(owner))
    for module in owners.values():
        model._init_weights(module)
