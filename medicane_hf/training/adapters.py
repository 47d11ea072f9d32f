"""Small adapters for fine-tuning: train the head only (`--freeze_backbone`), or LoRA through peft (`--lora_rank`).

Both adapt a detection or tracking model built from a checkpoint (`medicane_hf.training.models.build_model`):

- ``--freeze_backbone``: every encoder weight (under ``base_model_prefix``, ``videomae.``) stops taking
  gradients; the head (everything else) trains. The model stays a plain model and saves as one.
- ``--lora_rank R``: the model is wrapped in a ``peft.PeftModel`` with LoRA on the encoder's Linear layers named
  by ``--lora_target_modules`` (matched like peft: a name, or the end of one after a dot, e.g. ``query``,
  ``attention.output.dense``; only the encoder's layers are candidates) and the head fully trainable
  (peft ``modules_to_save``). Everything else of the encoder is frozen.

A LoRA model saves (`save_pretrained_folder`) as the full model with the adapter merged into it
(``merge_and_unload`` of a copy: a folder ``from_pretrained`` loads with this package alone) and, beside it in
``ADAPTER_DIR``, the adapter alone: ``adapter_config.json`` (peft's; ``base_model_name_or_path`` is the
``--model_name_or_path`` the run started from), ``adapter_model.safetensors`` (the LoRA matrices and the head)
and ``config.json`` (the model config the adapter was trained with: data contract, head, classes), so that
``PeftModel.from_pretrained(base, folder)`` rebuilds the fine-tuned model from the base checkpoint::

    config = MedicaneVideoMAEConfig.from_pretrained(folder)
    base = MedicaneVideoMAEForDetection.from_pretrained(PeftConfig.from_pretrained(folder).base_model_name_or_path,
                                                        config=config)
    model = PeftModel.from_pretrained(base, folder)
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from torch import nn

from medicane_hf.training.arguments import ArgumentValueError

ADAPTER_DIR = "adapter"
"""The adapter folder inside every model folder a LoRA run writes (``best/adapter/``, ``final/adapter/``)."""

DEFAULT_LORA_TARGETS = "query,value"
"""LoRA's own choice (Hu et al. 2021): the attention's query and value projections."""


class AdapterError(ArgumentValueError):
    """An adapter the arguments ask for that cannot be built on this model (a target naming no layer of the
    encoder): unusable input, like any argument value no run can use."""


def encoder_prefix(model: nn.Module) -> str:
    """The name the encoder's parameters start with (``base_model_prefix``, ``videomae``)."""
    return getattr(model, "base_model_prefix", "videomae")


def head_modules(model: nn.Module) -> list[str]:
    """The top-level modules that make up the head: every child holding weights, except the encoder.

    Raises:
        AdapterError: a weight held by the model itself rather than a child (it would be neither adapted
            nor saved with the adapter).
    """
    own = [name for name, _ in model.named_parameters(recurse=False)]
    if own:
        raise AdapterError(
            f"{type(model).__name__} holds weights outside any module ({own}): cannot adapt it"
        )
    prefix = encoder_prefix(model)
    return [
        name
        for name, child in model.named_children()
        if name != prefix and any(True for _ in child.parameters())
    ]


def parse_targets(raw: str | list[str] | None) -> list[str]:
    """`--lora_target_modules` (comma-separated, or a YAML list) as names; empty: `DEFAULT_LORA_TARGETS`."""
    if raw is None or raw == "" or raw == []:
        raw = DEFAULT_LORA_TARGETS
    names = raw.split(",") if isinstance(raw, str) else [str(name) for name in raw]
    return [name.strip() for name in names if name.strip()]


def lora_target_names(model: nn.Module, targets: list[str]) -> list[str]:
    """The full names of the encoder's Linear layers that `targets` name (each target must name one at least).

    Raises:
        AdapterError: naming the target that matches no Linear layer of the encoder, and the names that do.
    """
    layers = f"{encoder_prefix(model)}.encoder.layer."
    linear = [
        name
        for name, module in model.named_modules()
        if name.startswith(layers) and isinstance(module, nn.Linear)
    ]
    chosen: set[str] = set()
    for target in targets:
        matched = [name for name in linear if name == target or name.endswith("." + target)]
        if not matched:
            known = sorted({name.split(".", 4)[-1] for name in linear})  # after "videomae.encoder.layer.N."
            raise AdapterError(
                f"--lora_target_modules {target}: names no Linear layer of the encoder; its Linear layers are "
                f"(per encoder layer) {', '.join(known)}"
            )
        chosen.update(matched)
    return sorted(chosen)


def freeze_backbone(model: nn.Module) -> None:
    """Stop gradients to every encoder weight; the head's weights keep theirs."""
    for parameter in getattr(model, encoder_prefix(model)).parameters():
        parameter.requires_grad_(False)


def add_lora(
    model: nn.Module,
    source: str,
    rank: int,
    alpha: float | None = None,
    dropout: float = 0.0,
    targets: str | list[str] | None = None,
) -> nn.Module:
    """`model` wrapped in a ``peft.PeftModel``: LoRA of rank `rank` on `targets`, the head fully trainable.

    `alpha` (None: `rank`, a scale alpha / rank of 1) and `dropout` are LoRA's; `source` (the checkpoint the
    base model came from) is recorded as the adapter's ``base_model_name_or_path``.
    """
    from peft import LoraConfig, get_peft_model

    heads = head_modules(model)
    config = LoraConfig(
        r=rank,
        lora_alpha=rank if alpha is None else alpha,
        lora_dropout=dropout,
        target_modules=lora_target_names(model, parse_targets(targets)),
        modules_to_save=heads,
        bias="none",
    )
    adapted = get_peft_model(model, config)
    adapted.peft_config["default"].base_model_name_or_path = source
    # Activation checkpointing (reentrant) passes gradients into a checkpointed layer only when its input
    # requires them; the frozen patch embedding's output does not, which would leave LoRA in those layers
    # untrained. peft's remedy: mark the input embeddings' output as requiring gradients.
    adapted.get_base_model().enable_input_require_grads()
    _check_trainable(adapted, heads)
    return adapted


def _check_trainable(adapted: nn.Module, heads: list[str]) -> None:
    """Every head weight trains, and of the encoder only the LoRA matrices do (else: an error naming them)."""
    prefix = f"base_model.model.{encoder_prefix(adapted.get_base_model())}."
    wrong = []
    for name, parameter in adapted.named_parameters():
        if name.startswith(prefix):
            should_train = "lora_" in name
        else:  # the head: its trained copy (peft keeps the original beside it, frozen, dropped on merging)
            should_train = ".original_module." not in name
        if parameter.requires_grad != should_train:
            wrong.append(name)
    if wrong:
        raise AdapterError(
            f"LoRA did not leave exactly the adapter and the head ({heads}) trainable: {wrong[:5]}"
        )


def is_lora(model: nn.Module) -> bool:
    """Whether `model` is a peft-wrapped (LoRA) model."""
    try:
        from peft import PeftModel
    except ImportError:
        return False
    return isinstance(model, PeftModel)


def parameter_counts(model: nn.Module) -> dict[str, Any]:
    """What the optimizer trains: ``{"trainable": n, "total": n, "trainable_share": 0..1}`` (parameters).

    For a LoRA model the total counts the base model once (a head's frozen original copy, which peft keeps
    beside the trained one and drops on merging, is left out) plus the LoRA matrices.
    """
    trainable = total = 0
    for name, parameter in model.named_parameters():
        if ".original_module." in name:
            continue
        total += parameter.numel()
        trainable += parameter.numel() if parameter.requires_grad else 0
    return {"trainable": trainable, "total": total, "trainable_share": trainable / total if total else 0.0}


def save_pretrained_folder(model: nn.Module, folder: Path) -> None:
    """``save_pretrained`` of `model` into `folder`; a LoRA model: merged weights there, the adapter in
    `ADAPTER_DIR` (see the module docstring)."""
    if not is_lora(model):
        model.save_pretrained(folder)
        return
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(folder)
    adapter = Path(folder) / ADAPTER_DIR
    model.save_pretrained(adapter)
    (adapter / "README.md").unlink(missing_ok=True)  # peft's blank card template: no claim about this model
    model.get_base_model().config.save_pretrained(adapter)


def load_saved_weights(model: nn.Module, folder: Path, model_class: type) -> None:
    """Load the weights of the model folder `folder` (written by `save_pretrained_folder`) into `model`: a LoRA
    model takes its adapter (``folder/ADAPTER_DIR``), a plain one the folder's weights."""
    if is_lora(model):
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        state = load_file(str(Path(folder) / ADAPTER_DIR / "adapter_model.safetensors"))
        result = set_peft_model_state_dict(model, state)
        missing = [key for key in result.missing_keys if "lora_" in key or "modules_to_save" in key]
        if result.unexpected_keys or missing:
            raise AdapterError(
                f"{folder / ADAPTER_DIR}: the adapter does not fit this model (missing {missing[:3]}, "
                f"unexpected {list(result.unexpected_keys)[:3]})"
            )
        return
    model.load_state_dict(model_class.from_pretrained(folder).state_dict())
