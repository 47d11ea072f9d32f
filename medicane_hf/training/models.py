"""Build the model of a stage: from a preset or a checkpoint, with the dataset's contract and a loading report.

- From scratch: ``MedicaneVideoMAEConfig.from_preset(preset)`` with the clip
  shape (frames, tile size, channels) taken from the dataset.
- From a checkpoint (a ``save_pretrained`` folder, a ``medicane-hf convert``
  output, or a Hub id): first checked to be one (`check_model_source`: a folder
  that exists, with a config.json of a VideoMAE and weights; one line each when
  not, before transformers' OSError traceback); its clip shape must match the dataset's,
  else the run is refused with what differs. Every key is accounted for: the
  report lists what loaded, what is new (a fresh head) and what the checkpoint
  had that this head does not use (e.g. the MAE decoder); an encoder weight
  that did not load is an error (the old system silently trained from random
  encoder weights because of a key prefix).
- Either way the data contract (normalisation statistics, grid, tiles, frame
  interval, class names) is copied from the dataset into the config, so it
  travels with the saved model.

The contract and its check live in `medicane_hf.processing_medicane` (inference needs them without
importing training).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn
from transformers.utils import logging as hf_logging

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.processing_medicane import DataContract, check_contract
from medicane_hf.tasks import TaskSpec
from medicane_hf.training import adapters
from medicane_hf.training.arguments import ModelArguments, config_overrides

logger = logging.getLogger(__name__)

ARCHITECTURE_KEYS = ("patch_embedding", "stem_width")
"""Config keys a checkpoint's weights decide: a loaded model keeps its own (a recipe's value is for new models)."""


class EncoderNotLoadedError(RuntimeError):
    """A checkpoint left encoder weights uninitialised."""


class ModelSourceError(ValueError):
    """`--model_name_or_path` is not a model this run can load; the message says what it is instead."""


# model_type values whose weights follow transformers' VideoMAE key names (docs/DESIGN.md, "Models")
VIDEOMAE_MODEL_TYPES = ("medicane_videomae", "videomae")
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")


def check_model_source(source: str) -> None:
    """Refuse a `--model_name_or_path` that is not a loadable VideoMAE model, in one line that says what it is.

    A local folder must hold a config.json whose ``model_type`` is a VideoMAE's and a weights file; a name that
    is no folder here must look like a Hub id (``name`` or ``owner/name``); whether the Hub has it is found out
    when loading (`build_model`).

    Raises:
        ModelSourceError: a folder that does not exist, has no config.json, a config of another model family,
            or a config but no weights.
    """
    path = Path(source).expanduser()
    flag = f"--model_name_or_path {source}"
    if not path.exists():
        if _HUB_ID.match(source) and not source.startswith((".", "~")) and source.count("/") <= 1:
            return  # a Hub id: tried when loading
        raise ModelSourceError(f"{flag}: no such folder")
    if not path.is_dir():
        raise ModelSourceError(
            f"{flag}: a file, not a model folder (an old VideoMAE .pth checkpoint? convert it first: "
            f"medicane-hf convert --checkpoint {source} --out FOLDER)"
        )
    config = path / "config.json"
    if not config.is_file():
        raise ModelSourceError(
            f"{flag}: holds no config.json, so it is not a save_pretrained folder (for an old VideoMAE .pth "
            "checkpoint, make one with medicane-hf convert)"
        )
    try:
        model_type = json.loads(config.read_text()).get("model_type")
    except (OSError, ValueError) as error:
        raise ModelSourceError(f"{flag}: config.json is unreadable ({error})") from error
    if model_type not in VIDEOMAE_MODEL_TYPES:
        raise ModelSourceError(
            f"{flag}: is a {model_type} model, not a VideoMAE (config.json model_type {model_type!r}; "
            f"expected one of {list(VIDEOMAE_MODEL_TYPES)})"
        )
    if (path / "adapter_config.json").is_file() and not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelSourceError(
            f"{flag}: is a LoRA adapter folder, not a model; give the merged model beside it ({path.parent}), "
            "or load the adapter onto its base with peft's PeftModel.from_pretrained"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelSourceError(
            f"{flag}: has a config.json but no weights (none of {', '.join(WEIGHT_FILES)}); was it copied "
            "or saved only in part?"
        )


@dataclass
class LoadingReport:
    """What happened to every key when a checkpoint was loaded."""

    source: str
    loaded: int = 0
    newly_initialised: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    mismatched: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the log."""

        def short(keys: list[str]) -> str:
            prefixes = sorted({k.split(".")[0] for k in keys})
            return f"{len(keys)} ({', '.join(prefixes)})" if keys else "0"

        return (
            f"Loaded {self.loaded} weights from {self.source}; newly initialised {short(self.newly_initialised)}; "
            f"in the checkpoint but unused {short(self.unused)}; shape mismatch {short(self.mismatched)}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (written to `loading_report.json`)."""
        return {
            "source": self.source,
            "loaded": self.loaded,
            "newly_initialised": self.newly_initialised,
            "unused": self.unused,
            "mismatched": self.mismatched,
        }


def recipe_settings(
    model_args: ModelArguments, label_smoothing: float, class_weights: list[float] | None
) -> dict:
    """Config fields set by the recipe (only those given), then `--config_overrides`."""
    settings: dict[str, Any] = {"label_smoothing": float(label_smoothing), "class_weights": class_weights}
    for arg, key in (
        ("patch_embedding", "patch_embedding"),
        ("drop_path_rate", "drop_path_rate"),
        ("tracking_head", "tracking_head"),
        ("detection_pooling", "detection_pooling"),
        ("detection_position", "detection_position"),
        ("detection_threshold_rule", "detection_threshold_rule"),
        ("tracking_loss", "tracking_loss"),
        ("tracking_readout", "tracking_readout"),
        ("heatmap_target_sigma", "heatmap_target_sigma"),
        ("heatmap_label_noise", "heatmap_label_noise"),
        ("mask_ratio", "encoder_mask_ratio"),
        ("decoder_mask_ratio", "decoder_mask_ratio"),
    ):
        value = getattr(model_args, arg)
        if value is not None:
            settings[key] = value
    settings.update(config_overrides(model_args))
    return settings


def _encoder_parameter_names(model: nn.Module) -> list[str]:
    prefix = getattr(model, "base_model_prefix", "videomae") + "."
    return [name for name, _ in model.named_parameters() if name.startswith(prefix)]


def loading_report(model: nn.Module, info: dict[str, Any], source: str) -> LoadingReport:
    """Check the `output_loading_info` of `from_pretrained`; raise when encoder weights did not load."""
    missing = sorted(info.get("missing_keys", []))
    mismatched = sorted(
        str(item[0] if isinstance(item, (tuple, list)) else item) for item in info.get("mismatched_keys", [])
    )
    encoder = _encoder_parameter_names(model)
    not_loaded = [name for name in encoder if name in set(missing) | set(mismatched)]
    if not_loaded:
        if len(not_loaded) == len(encoder):
            what = f"none of the {len(encoder)} encoder weights loaded"
        else:
            what = f"{len(not_loaded)} of the {len(encoder)} encoder weights did not load"
        raise EncoderNotLoadedError(
            f"{source}: {what} (e.g. {not_loaded[:3]}). The checkpoint's keys do not follow the "
            "`videomae.encoder.layer.N...` names: convert it first with `medicane-hf convert`."
        )
    total = len(dict(model.named_parameters()))
    return LoadingReport(
        source=source,
        loaded=total - len(set(missing) | set(mismatched)),
        newly_initialised=missing,
        unused=sorted(info.get("unexpected_keys", [])),
        mismatched=mismatched,
    )


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Hide transformers' key table and progress bar while a checkpoint loads into another head.

    For the expected load of a specialization model into a detection or tracking head, transformers prints
    every decoder key as UNEXPECTED and every head key as MISSING, as warnings; `LoadingReport` says the same
    in one line (and `loading_report` stops the run when an encoder weight did not load).
    """
    verbosity = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def build_model(
    task: TaskSpec,
    model_args: ModelArguments,
    contract: DataContract,
    *,
    label_smoothing: float = 0.0,
    class_weights: list[float] | None = None,
) -> tuple[nn.Module, LoadingReport | None]:
    """The stage's model with the dataset's contract; the loading report when it came from a checkpoint.

    Raises:
        ModelSourceError: `model_args.model_name_or_path` is not a VideoMAE model folder or reachable Hub id.
        ContractMismatchError: the checkpoint expects clips of another shape than the dataset's.
        EncoderNotLoadedError: encoder weights of the checkpoint did not load.
    """
    model_class = task.model_class()
    settings = {**contract.config_settings(), **recipe_settings(model_args, label_smoothing, class_weights)}
    source = model_args.model_name_or_path
    if not source:
        config = MedicaneVideoMAEConfig.from_preset(
            model_args.preset, **contract.shape_settings(), **settings
        )
        logger.info(
            "New %s (preset %s): %s", model_class.__name__, model_args.preset, config.describe_data_contract()
        )
        return model_class(config), None

    check_model_source(source)
    try:
        config = MedicaneVideoMAEConfig.from_pretrained(source)
    except OSError as error:  # a Hub id not found, or the Hub not reachable
        if os.environ.get("HF_HUB_OFFLINE") == "1":
            where = "and with HF_HUB_OFFLINE=1 the Hub is not asked"
        else:
            where = "and the Hub has no such model (or cannot be reached)"
        raise ModelSourceError(f"--model_name_or_path {source}: not a folder here, {where}") from error
    check_contract(config, contract, source)
    for key in ARCHITECTURE_KEYS:
        # the checkpoint's weights fix its patch embedding: another would leave the encoder's input unloaded
        wanted = settings.pop(key, None)
        if wanted is not None and wanted != getattr(config, key):
            logger.warning(
                "%s has %s=%s; kept it (the requested %s applies to new models only)",
                source, key, getattr(config, key), wanted,
            )  # fmt: skip
    for key, value in settings.items():
        setattr(config, key, value)
    config.num_labels = len(config.id2label)
    config._check_settings()
    with _quiet_loading():
        model, info = model_class.from_pretrained(
            source, config=config, output_loading_info=True, ignore_mismatched_sizes=True
        )
    report = loading_report(model, info, source)
    # a new head and an unused decoder are what loading into another head means; a shape mismatch is not
    logger.log(logging.WARNING if report.mismatched else logging.INFO, "%s", report.summary())
    return adapt(model, model_args), report


def adapt(model: nn.Module, model_args: ModelArguments) -> nn.Module:
    """`model` with the adapter the arguments ask for (`medicane_hf.training.adapters`): the encoder frozen
    (``--freeze_backbone``), LoRA (``--lora_rank``: a ``peft.PeftModel``), or as it is. Logs what trains."""
    if model_args.freeze_backbone:
        adapters.freeze_backbone(model)
    elif model_args.lora_rank is not None:
        model = adapters.add_lora(
            model,
            str(model_args.model_name_or_path),
            model_args.lora_rank,
            model_args.lora_alpha,
            model_args.lora_dropout,
            model_args.lora_target_modules,
        )
    counts = adapters.parameter_counts(model)
    logger.warning(
        "Training %d of %d parameters (%.2f%%)%s",
        counts["trainable"], counts["total"], 100 * counts["trainable_share"],
        " (encoder frozen: head only)" if model_args.freeze_backbone
        else f" (LoRA rank {model_args.lora_rank} + head)" if model_args.lora_rank is not None else "",
    )  # fmt: skip
    return model
