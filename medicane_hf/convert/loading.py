"""Loading a checkpoint safely: find the weights inside it, strip wrapper prefixes, hash the files.

Why the Namespace allow-list: VideoMAE v2 training scripts save ``args`` (an ``argparse.Namespace``) beside
``model``. Allowing that one plain container class in the weights-only unpickler reads such files without
running arbitrary code; any other Python object is refused with a message that says how to re-save the
weights. ``allow_unsafe_pickle=True`` (``--allow-unsafe-pickle``) exists for one's *own* old training outputs
that hold more (numpy scalars, custom classes): it runs the file's pickle code, so it is off by default and
recorded in the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import pickle
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from medicane_hf.convert.report import ConversionError

# Where training scripts put the weights inside a checkpoint dict, in the order tried.
WEIGHT_CONTAINERS: tuple[str, ...] = ("model", "module", "state_dict", "model_state_dict")
# Plain containers that training scripts save beside the weights (``args``, output folders). Building them
# runs no code of the file's choosing, so the weights-only unpickler may create them.
SAFE_METADATA_CLASSES: tuple[type, ...] = (argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath)
# Prefixes added by DataParallel/DDP (module.), torch.compile (_orig_mod.) and mmaction (backbone.).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "backbone.")


@dataclass
class LoadedCheckpoint:
    """Flat weights of one checkpoint plus what surrounded them."""

    tensors: dict[str, torch.Tensor]  # keys without wrapper prefixes
    files: list[Path]
    original_keys: dict[str, str] = field(default_factory=dict)  # key in ``tensors`` -> key in the file
    ignored_entries: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)  # e.g. the training ``args`` of a VideoMAE v2 file
    hf_config: dict[str, Any] | None = None
    unsafe_pickle_used: bool = False


def load_state_dict_file(
    path: str | Path, *, allow_unsafe_pickle: bool = False, weights_key: str | None = None
) -> dict[str, torch.Tensor]:
    """Load the weights of a checkpoint as a flat ``{key: tensor}`` dict on the CPU.

    ``path`` is a ``.pth``/``.pt``/``.bin`` file (weights under ``model``/``module``/``state_dict`` or the
    whole file), a ``.safetensors`` file, or a transformers folder. Wrapper prefixes (``module.``,
    ``_orig_mod.``, ``backbone.``) are removed; ``encoder.`` only when every key has it (an encoder saved
    alone), since in an MAE checkpoint it separates the encoder from the decoder. ``weights_key`` picks
    another entry than the first of ``WEIGHT_CONTAINERS`` found, e.g. ``model_ema``.
    """
    return load_checkpoint(
        Path(path), allow_unsafe_pickle=allow_unsafe_pickle, weights_key=weights_key
    ).tensors


def load_checkpoint(
    path: Path, *, allow_unsafe_pickle: bool = False, weights_key: str | None = None
) -> LoadedCheckpoint:
    """`load_state_dict_file` plus what surrounded the weights (files, original keys, metadata, config)."""
    if not path.exists():
        raise ConversionError(f"{path}: no such file or folder")
    if weights_key is not None and (path.is_dir() or path.suffix == ".safetensors"):
        raise ConversionError(f"{path}: weights_key applies to torch.save files (.pth/.pt/.bin) only")
    if path.is_dir():
        return _load_transformers_folder(path)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        stripped, original = _strip_wrapper_prefixes(load_file(str(path)), path)
        return LoadedCheckpoint(stripped, [path], original)
    raw = _torch_load(path, allow_unsafe_pickle=allow_unsafe_pickle)
    tensors, ignored, metadata = _unwrap_weights(raw, path, weights_key)
    stripped, original = _strip_wrapper_prefixes(tensors, path)
    return LoadedCheckpoint(
        stripped, [path], original, ignored, metadata, unsafe_pickle_used=allow_unsafe_pickle
    )


def _torch_load(path: Path, *, allow_unsafe_pickle: bool) -> Any:
    """``torch.load`` that runs no pickle code unless asked; memory-maps when the file format allows it."""
    try:
        if allow_unsafe_pickle:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(list(SAFE_METADATA_CLASSES)):
            try:
                # mmap keeps a multi-GB giant checkpoint out of RAM until its tensors are copied.
                return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
            except RuntimeError as error:
                if "mmap" not in str(error):  # only the legacy (pre-zip) format cannot be memory-mapped
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        if "Weights only load failed" in str(error):
            raise ConversionError(_unsafe_pickle_message(path, error)) from None
        raise ConversionError(f"{path}: not a readable torch checkpoint ({error})") from error
    except Exception as error:  # a truncated or foreign file fails in torch.load with many exception types
        raise ConversionError(
            f"{path}: not a readable torch checkpoint ({type(error).__name__}: {error})"
        ) from error


def _unsafe_pickle_message(path: Path, error: Exception) -> str:
    try:
        offending = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:  # legacy (non-zip) files cannot be scanned statically; torch's message names the first
        offending = ", ".join(re.findall(r"GLOBAL ([\w.]+) was not an allowed global", str(error)))
    return (
        f"{path}: refusing to load: besides tensors the file holds Python objects ({offending or 'unknown'}) whose "
        "unpickling could run arbitrary code. If you trust the file, re-save only the weights:\n"
        f"    python -c \"import torch; ck = torch.load('{path}', map_location='cpu', weights_only=False); "
        f"torch.save(ck.get('model', ck), '{path.with_suffix('')}_weights.pth')\"\n"
        "and convert that file, or pass --allow-unsafe-pickle (allow_unsafe_pickle=True) for a file you made yourself."
    )


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping) and len(obj) > 0 and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


def _unwrap_weights(
    raw: Any, path: Path, weights_key: str | None = None
) -> tuple[dict[str, torch.Tensor], list[str], dict[str, Any]]:
    """Find the state dict in a checkpoint: the file itself, or under ``weights_key`` / one of
    ``WEIGHT_CONTAINERS`` (nested). Returns (weights, other top-level entries, metadata such as ``args``)."""
    if weights_key is not None:
        if not isinstance(raw, Mapping) or not isinstance(raw.get(weights_key), Mapping):
            found = list(raw.keys())[:20] if isinstance(raw, Mapping) else type(raw).__name__
            raise ConversionError(f"{path}: no weights under {weights_key!r}; the file holds {found}")
        inner, ignored, metadata = _unwrap_weights(raw[weights_key], path)
        others = [str(k) for k in raw if k != weights_key]
        if "args" in raw:
            metadata.setdefault("args", _plain_args(raw["args"]))
        return inner, others + [f"{weights_key}.{name}" for name in ignored], metadata
    ignored: list[str] = []
    metadata: dict[str, Any] = {}
    current = raw
    trail = ""
    for _ in range(4):  # checkpoints nest at most a couple of levels ({"state_dict": {"model": ...}})
        if _is_state_dict(current):
            return dict(current), ignored, metadata
        if not isinstance(current, Mapping):
            break
        container = next((name for name in WEIGHT_CONTAINERS if isinstance(current.get(name), Mapping)), None)
        if container is None:
            non_tensors = [str(k) for k, v in current.items() if not isinstance(v, torch.Tensor)]
            if non_tensors and any(isinstance(v, torch.Tensor) for v in current.values()):
                raise ConversionError(
                    f"{path}: the weights under {trail.lstrip('.') or 'the top level'} mix tensors with "
                    f"other values, under keys {non_tensors[:10]}"
                )
            break
        for name, value in current.items():
            if name != container:
                ignored.append(f"{trail}{name}".lstrip("."))
                if name == "args":
                    metadata["args"] = _plain_args(value)
        current = current[container]
        trail = f"{trail}.{container}"
    keys = list(current.keys())[:20] if isinstance(current, Mapping) else type(current).__name__
    raise ConversionError(
        f"{path}: no state dict found; expected tensors at the top level or under one of "
        f"{list(WEIGHT_CONTAINERS)}, found {keys}"
    )


def _plain_args(value: Any) -> Any:
    return vars(value) if isinstance(value, argparse.Namespace) else value


def _strip_wrapper_prefixes(
    tensors: dict[str, torch.Tensor], path: Path
) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors under keys without wrapper prefixes, short key -> key in the file)."""
    original: dict[str, str] = {}
    for key in tensors:
        short = key
        while short.startswith(WRAPPER_PREFIXES):
            short = short.split(".", 1)[1]
        if short in original:
            raise ConversionError(
                f"{path}: keys collide once prefixes are removed: {original[short]!r} and {key!r}"
            )
        original[short] = key
    if original and all(k.startswith("encoder.") for k in original):  # an encoder saved alone
        original = {k.removeprefix("encoder."): v for k, v in original.items()}
    return {short: tensors[key] for short, key in original.items()}, original


def _load_transformers_folder(folder: Path) -> LoadedCheckpoint:
    config_file = folder / "config.json"
    if not config_file.is_file():
        raise ConversionError(f"{folder}: a transformers folder needs config.json")
    hf_config = json.loads(config_file.read_text())
    files = _weight_files(folder)
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            part = load_file(str(file))
        else:
            part = _unwrap_weights(_torch_load(file, allow_unsafe_pickle=False), file)[0]
        tensors.update(part)
    stripped, original = _strip_wrapper_prefixes(tensors, folder)
    return LoadedCheckpoint(stripped, files, original, hf_config=hf_config)


def _weight_files(folder: Path) -> list[Path]:
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index = folder / index_name
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            return [folder / shard for shard in shards]
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            return [folder / name]
    raise ConversionError(f"{folder}: no model.safetensors or pytorch_model.bin (or their .index.json)")


def file_sha256(path: Path, chunk_bytes: int = 1 << 24) -> str:
    """Hex SHA-256 of a file, with a progress bar for big checkpoints."""
    digest = hashlib.sha256()
    size = path.stat().st_size
    with (
        path.open("rb") as handle,
        tqdm(
            total=size, unit="B", unit_scale=True, desc=f"sha256 {path.name}", disable=size < (256 << 20)
        ) as bar,
    ):
        while chunk := handle.read(chunk_bytes):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()
