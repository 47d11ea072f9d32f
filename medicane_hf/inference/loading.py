"""The model of a stage for inference: a ``save_pretrained`` folder or a Hub id, or one clear line saying why not.

Each refusal is a `ModelFolderError` whose message names the folder and what was expected: a folder that does
not exist, a file, a folder without ``config.json``, another model family (``model_type``), another stage's model
(``architectures``: e.g. a tracker given to the detection script, with the script that takes it), no weight file,
or weights that leave part of the model unloaded (a head that was never trained would predict noise).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from transformers import PretrainedConfig, PreTrainedModel

from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
from medicane_hf.tasks import TASKS, TaskSpec

__all__ = ["WEIGHT_FILES", "ModelFolderError", "load_model", "read_model_config"]

WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
"""The weight files `from_pretrained` reads (one suffices)."""

# owner/name of a Hub repository; anything else that is not on disk is a folder that does not exist
_HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")


class ModelFolderError(ValueError):
    """``--model_name_or_path`` is not a model of the stage (the message names it and what was expected)."""


def _expected(task: TaskSpec) -> str:
    return f"a save_pretrained folder of a {task.model_class_name} (the {task.name} stage's model)"


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def read_model_config(task: TaskSpec, name_or_path: str) -> dict[str, Any]:
    """The ``config.json`` of a local folder or a Hub id, checked to be a model of `task`.

    Raises:
        ModelFolderError: see the module docstring.
    """
    path = Path(name_or_path).expanduser()
    expected = _expected(task)
    if path.exists():
        if not path.is_dir():
            raise ModelFolderError(f"{path} is a file; expected {expected}")
        if not (path / "config.json").is_file():
            raise ModelFolderError(
                f"{path} has no config.json, so it is not a save_pretrained folder; expected {expected}"
            )
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, json.JSONDecodeError) as error:
            raise ModelFolderError(
                f"{path / 'config.json'} cannot be read ({_first_line(error)}); expected {expected}"
            ) from None
    elif _HUB_ID.fullmatch(name_or_path) and not name_or_path.startswith((".", "~")):
        try:
            config, _ = PretrainedConfig.get_config_dict(name_or_path)
        except (OSError, ValueError) as error:
            raise ModelFolderError(
                f"{name_or_path}: no such folder, and no Hub model of that id could be read ({_first_line(error)}); "
                f"expected {expected}"
            ) from None
    else:
        raise ModelFolderError(f"{path}: no such folder; expected {expected}")
    _check_family_and_stage(task, name_or_path, config)
    if path.is_dir() and not any((path / name).is_file() for name in WEIGHT_FILES):
        raise ModelFolderError(
            f"{path} holds no weights (none of {', '.join(WEIGHT_FILES)}): only a config; expected {expected}"
        )
    return config


def _check_family_and_stage(task: TaskSpec, name: str, config: dict[str, Any]) -> None:
    """Refuse another model family, and another stage's model with the script (or training) that takes it."""
    model_type = config.get("model_type")
    if model_type != MedicaneVideoMAEConfig.model_type:
        raise ModelFolderError(
            f"{name} is a {model_type or 'model without a model_type'} model, not a "
            f"{MedicaneVideoMAEConfig.model_type} one; expected {_expected(task)} (an HF VideoMAE folder or an old "
            "VideoMAE v2 .pth is converted first with `medicane-hf convert`, then trained)"
        )
    architectures = list(config.get("architectures") or [])
    if not architectures or task.model_class_name in architectures:
        return  # no record: loading decides (a head that does not load is refused there)
    other = next((t for t in TASKS.values() if t.model_class_name in architectures), None)
    if other is None:
        raise ModelFolderError(f"{name} holds a {architectures[0]}; expected {_expected(task)}")
    if other.inference is not None:
        hint = f"predict with scripts/{other.inference.script} instead"
    else:
        hint = f"fine-tune it first: scripts/{task.script} --model_name_or_path {name}"
    script = task.inference.script if task.inference is not None else task.name
    raise ModelFolderError(
        f"{name} holds a {other.model_class_name} (the {other.name} stage's model), but scripts/{script} expects a "
        f"{task.model_class_name}: {hint}"
    )


def load_model(task: TaskSpec, name_or_path: str) -> PreTrainedModel:
    """The stage's model from a folder or Hub id, in eval mode, every weight loaded from the checkpoint.

    Raises:
        ModelFolderError: see the module docstring.
    """
    read_model_config(task, name_or_path)
    model_class = task.model_class()
    try:
        model, info = model_class.from_pretrained(name_or_path, output_loading_info=True)
    except (
        Exception
    ) as error:  # a damaged or foreign weight file: any library error says the same to the user
        raise ModelFolderError(
            f"{name_or_path}: the weights could not be loaded ({_first_line(error)}); expected {_expected(task)}"
        ) from None
    not_loaded = sorted(info.get("missing_keys", [])) + sorted(
        str(item[0] if isinstance(item, tuple | list) else item) for item in info.get("mismatched_keys", [])
    )
    if not_loaded:
        raise ModelFolderError(
            f"{name_or_path}: {len(not_loaded)} weights of the {task.model_class_name} are not in the checkpoint "
            f"(e.g. {', '.join(not_loaded[:3])}), so they would predict from random values; expected "
            f"{_expected(task)}, trained"
        )
    return model.eval()
