"""Convert old VideoMAE v2 ``.pth`` checkpoints and transformers ``VideoMAE*`` folders into medicane-hf models.

Two sources are understood:

* **VideoMAE v2 ``.pth`` files** (the MCG-NJU / OpenGVLab VideoMAEv2 layout, also
  what the old Medicane system saved): ``vit_g_hybrid_pt_1200e.pth`` (MAE with
  decoder), ``vit_s_k710_dl_from_giant.pth`` (fine-tuned with a Kinetics-710
  head), the old system's detectors. Weights sit under ``model`` / ``module`` /
  ``state_dict`` (or are the whole file), keys may carry ``module.``,
  ``_orig_mod.``, ``backbone.`` and ``encoder.`` prefixes.
* **transformers VideoMAE folders** (``config.json`` + ``model.safetensors`` or
  ``pytorch_model.bin``), e.g. a downloaded ``MCG-NJU/videomae-base``.

The conversion goes in four steps, each a small function: load the tensors
(``load_state_dict_file``, ``torch.load(weights_only=True)`` only), translate
the keys into transformers' VideoMAE names (``translate_videomae_v2`` /
``translate_transformers``), fit them to the task's head (drop or keep heads,
decoder, final norm), and load them into a freshly built model with every key
accounted for. Whatever is not mapped is dropped *with a reason* and listed in
``conversion_report.json``; anything else (an unknown key, a shape mismatch, a
model key with no source that is not a freshly initialised head) is an error
that names the keys.

Why the Namespace allow-list: VideoMAE v2 training scripts save ``args`` (an
``argparse.Namespace``) beside ``model``. Allowing that one plain container class
in the weights-only unpickler reads such files without running arbitrary code;
any other Python object is refused with a message that says how to re-save the
weights. ``allow_unsafe_pickle=True`` (``--allow-unsafe-pickle``) exists for
one's *own* old training outputs that hold more (numpy scalars, custom classes):
it runs the file's pickle code, so it is off by default and recorded in the report.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import pathlib
import pickle
import re
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from tqdm.auto import tqdm

if TYPE_CHECKING:
    from transformers import PreTrainedModel

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

Task = Literal["auto", "pretraining", "detection", "tracking"]
HeadPolicy = Literal["auto", "keep", "drop"]
TASKS: tuple[str, ...] = ("auto", "pretraining", "detection", "tracking")
REPORT_NAME = "conversion_report.json"

# Where training scripts put the weights inside a checkpoint dict, in the order tried.
WEIGHT_CONTAINERS: tuple[str, ...] = ("model", "module", "state_dict", "model_state_dict")
# Plain containers that training scripts save beside the weights (``args``, output folders). Building them
# runs no code of the file's choosing, so the weights-only unpickler may create them.
SAFE_METADATA_CLASSES: tuple[type, ...] = (argparse.Namespace, pathlib.PosixPath, pathlib.WindowsPath)
# Prefixes added by DataParallel/DDP (module.), torch.compile (_orig_mod.) and mmaction (backbone.).
WRAPPER_PREFIXES: tuple[str, ...] = ("module.", "_orig_mod.", "backbone.")
# Every VideoMAE v2 model uses partial(nn.LayerNorm, eps=1e-6); the eps shapes the outputs, so it is fixed.
VIDEOMAE_V2_LAYER_NORM_EPS = 1e-6
# Medicane detectors have 2 (background, medicane) or 3 (+ neighbouring) classes; other head sizes
# (400, 710 Kinetics classes) are pretraining heads that a detector does not want by default.
MEDICANE_CLASS_COUNTS = (2, 3)
# Attention heads of the published VideoMAE v2 / VideoMAE sizes, by width. The head count is not
# visible in the tensors, and a wrong one gives silently different outputs, so unknown widths are an error.
ENCODER_HEADS_BY_WIDTH = {96: 4, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
DECODER_HEADS_BY_WIDTH = {192: 3, 384: 6, 512: 8}

# Canonical placeholder prefixes for heads, resolved once the task is known.
_HEAD = "__head__."
_TRACK_MLP = "__tracking_mlp__."
_ENCODER_NORM = "videomae.layernorm."


class ConversionError(ValueError):
    """A checkpoint that cannot be converted; the message names the file and the keys concerned."""


@dataclass
class KeyNote:
    """One source key that was not mapped (or one model key that was newly initialised), and why."""

    key: str
    reason: str


@dataclass
class ConversionReport:
    """What happened to every key; written as ``conversion_report.json`` beside the converted model."""

    source: str
    source_format: str  # "videomae_v2" | "transformers"
    sha256: dict[str, str]  # file name -> hex digest of each weights file read
    task: str
    model_class: str
    mapped: dict[str, str] = field(default_factory=dict)  # model key -> source key
    dropped: list[KeyNote] = field(default_factory=list)
    newly_initialized: list[KeyNote] = field(default_factory=list)
    # top-level checkpoint entries that are not weights (optimizer, epoch, args, ...)
    ignored_entries: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    output_dir: str | None = None

    @property
    def mapped_count(self) -> int:
        return len(self.mapped)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["mapped_count"] = self.mapped_count
        return data

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    def summary(self) -> str:
        """A few lines for a person: what was converted into what, what was dropped or is new."""
        lines = [
            f"Converted {self.source} ({self.source_format}) -> {self.model_class} (task: {self.task})",
            f"  mapped: {self.mapped_count} tensors",
            f"  dropped: {len(self.dropped)} source keys",
        ]
        lines += [f"    - {note.key}: {note.reason}" for note in _collapse_notes(self.dropped)]
        lines.append(f"  newly initialised: {len(self.newly_initialized)} model keys")
        lines += [f"    - {note.key}: {note.reason}" for note in _collapse_notes(self.newly_initialized)]
        if self.ignored_entries:
            lines.append(
                f"  checkpoint entries that are not weights (ignored): {', '.join(self.ignored_entries)}"
            )
        lines += [f"  note: {note}" for note in self.notes]
        if self.output_dir:
            lines.append(f"  written to {self.output_dir} (report: {REPORT_NAME})")
        return "\n".join(lines)


def _collapse_notes(notes: list[KeyNote]) -> list[KeyNote]:
    """One line per reason: ``decoder.* (270 keys)`` rather than every key of a giant's decoder."""
    groups: dict[str, list[str]] = {}
    for note in notes:
        groups.setdefault(note.reason, []).append(note.key)
    collapsed = []
    for reason, keys in groups.items():
        if len(keys) <= 2:
            collapsed += [KeyNote(key, reason) for key in keys]
            continue
        parts = [key.split(".") for key in keys]
        common = []
        for level in zip(*parts):
            if len(set(level)) > 1:
                break
            common.append(level[0])
        collapsed.append(KeyNote(".".join([*common, "*"]) + f" ({len(keys)} keys)", reason))
    return collapsed


# ----------------------------------------------------------------------------------------------------
# Loading
# ----------------------------------------------------------------------------------------------------


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
    return _load_checkpoint(
        Path(path), allow_unsafe_pickle=allow_unsafe_pickle, weights_key=weights_key
    ).tensors


def _load_checkpoint(
    path: Path, *, allow_unsafe_pickle: bool = False, weights_key: str | None = None
) -> LoadedCheckpoint:
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


# ----------------------------------------------------------------------------------------------------
# Key translation into transformers' VideoMAE names
# ----------------------------------------------------------------------------------------------------


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
        out.add(f"{_ENCODER_NORM}{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?fc_norm\.(weight|bias)", key):
        out.add(f"fc_norm.{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?(?:head|cls_head\.fc_cls)\.(weight|bias)", key):
        out.add(f"{_HEAD}{m.group(1)}", tensor, key)
    elif m := re.fullmatch(r"(?:encoder\.)?head\.mlp\.([01])\.(weight|bias)", key):
        out.add(f"{_TRACK_MLP}{m.group(1)}.{m.group(2)}", tensor, key)
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


def sincos_position_table(num_positions: int, dim: int) -> torch.Tensor:
    """The fixed 1-D sin-cos table of VideoMAE: ``[num_positions, dim]`` float64.

    Column ``j`` uses the angle ``pos / 10000 ** (2 * (j // 2) / dim)``: sine on even, cosine on odd columns.
    """
    position = torch.arange(num_positions, dtype=torch.float64)[:, None]
    exponent = 2 * (torch.arange(dim, dtype=torch.float64) // 2) / dim
    angle = position / torch.pow(10000.0, exponent)[None, :]
    table = torch.empty_like(angle)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table


def _check_sincos_table(key: str, tensor: torch.Tensor, part: str, out: Translation) -> None:
    table = tensor.reshape(-1, tensor.shape[-1]) if tensor.dim() >= 2 else None
    tolerance = 1e-4 if tensor.dtype in (torch.float32, torch.float64) else 1e-2
    if table is None or not torch.allclose(
        table.double(), sincos_position_table(*table.shape), atol=tolerance, rtol=0
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
    _ENCODER_NORM,
    "fc_norm.",
    _HEAD,
    "encoder_to_decoder.",
    "decoder.",
)


def _canonical_transformers_key(key: str, bare_model: bool) -> str:
    if bare_model and key.startswith(("embeddings.", "encoder.", "layernorm.")):
        key = f"videomae.{key}"
    key = re.sub(r"attention\.attention\.q_bias$", "attention.attention.query.bias", key)
    key = re.sub(r"attention\.attention\.v_bias$", "attention.attention.value.bias", key)
    if m := re.fullmatch(r"(?:classifier|regressor)\.(weight|bias)", key):
        key = f"{_HEAD}{m.group(1)}"
    return key


# ----------------------------------------------------------------------------------------------------
# Architecture
# ----------------------------------------------------------------------------------------------------


def infer_architecture(tensors: Mapping[str, torch.Tensor]) -> dict[str, Any]:
    """VideoMAEConfig fields that the canonical tensors determine (sizes, depths, patch, tubelet).

    Head counts are not visible in tensors and are not returned here.
    """
    proj = tensors.get("videomae.embeddings.patch_embeddings.projection.weight")
    if proj is None or proj.dim() != 5:
        raise ConversionError("no Conv3d patch embedding (patch_embed.proj.weight, 5-D) among the weights")
    hidden, channels, tubelet, patch_h, patch_w = proj.shape
    if patch_h != patch_w:
        raise ConversionError(
            f"patch_embed.proj.weight {tuple(proj.shape)}: non-square patches are not supported"
        )
    arch: dict[str, Any] = {
        "hidden_size": hidden,
        "num_channels": channels,
        "tubelet_size": tubelet,
        "patch_size": patch_h,
        "num_hidden_layers": _count_layers(tensors, "videomae.encoder.layer."),
        "intermediate_size": tensors["videomae.encoder.layer.0.intermediate.dense.weight"].shape[0]
        if "videomae.encoder.layer.0.intermediate.dense.weight" in tensors
        else None,
        "qv_bias": "videomae.encoder.layer.0.attention.attention.query.bias" in tensors,
    }
    if "encoder_to_decoder.weight" in tensors:
        arch["decoder_hidden_size"] = tensors["encoder_to_decoder.weight"].shape[0]
        arch["decoder_num_hidden_layers"] = _count_layers(tensors, "decoder.decoder_layers.")
        fc1 = tensors.get("decoder.decoder_layers.0.intermediate.dense.weight")
        if fc1 is not None:
            arch["decoder_intermediate_size"] = fc1.shape[0]
    return {k: v for k, v in arch.items() if v is not None}


def _count_layers(tensors: Mapping[str, torch.Tensor], prefix: str) -> int:
    indices = {int(k[len(prefix) :].split(".", 1)[0]) for k in tensors if k.startswith(prefix)}
    if indices and indices != set(range(max(indices) + 1)):
        missing = sorted(set(range(max(indices) + 1)) - indices)
        raise ConversionError(f"layers {missing} are missing under {prefix!r} (found {sorted(indices)})")
    return len(indices)


def _heads_for(
    width: int, explicit: int | None, table: dict[int, int], flag: str, what: str
) -> tuple[int, str]:
    if explicit is not None:
        return explicit, f"{what} heads = {explicit} (given)"
    if width in table:
        return table[width], f"{what} heads = {table[width]} (standard VideoMAE size table, width {width})"
    raise ConversionError(
        f"the {what} width {width} is not a standard VideoMAE size and the head count cannot be read from "
        f"the tensors: pass {flag} (or a --preset/--config that sets it)"
    )


# ----------------------------------------------------------------------------------------------------
# Fitting the translated tensors to a task
# ----------------------------------------------------------------------------------------------------


@dataclass
class TaskFit:
    """The tensors under the target model's names, plus what was dropped and what may be new."""

    tensors: dict[str, torch.Tensor]
    sources: dict[str, str]
    dropped: list[KeyNote]
    fresh_allowed: dict[str, str]  # model key prefix -> why it may be freshly initialised
    use_mean_pooling: bool
    num_labels: int | None  # from a kept classification head
    notes: list[str]


def resolve_task(translation: Translation, task: Task) -> str:
    """``auto``: a decoder means pretraining, the old tracking head tracking, else detection."""
    if task not in TASKS:
        raise ConversionError(f"unknown task {task!r}; choose one of {TASKS}")
    if task != "auto":
        return task
    keys = translation.tensors
    if any(k.startswith(("decoder.", "encoder_to_decoder.")) for k in keys):
        return "pretraining"
    if any(k.startswith(_TRACK_MLP) for k in keys):
        return "tracking"
    return "detection"  # with the source's classifier, or a fresh head when it has none


def fit_to_task(
    translation: Translation,
    task: str,
    *,
    head: HeadPolicy = "auto",
    num_labels: int | None = None,
    source_head_kind: str = "classifier",
) -> TaskFit:
    """Keep, rename or drop heads, decoder and final norm for ``task``; every source key ends up mapped or dropped.

    ``source_head_kind`` says what ``__head__`` was in the source: ``classifier`` or ``regressor``.
    """
    tensors = dict(translation.tensors)
    sources = dict(translation.sources)
    dropped: list[KeyNote] = []
    fresh: dict[str, str] = {}
    notes: list[str] = []

    def drop(prefix: str, reason: str) -> None:
        for key in [k for k in tensors if k.startswith(prefix)]:
            tensors.pop(key)
            dropped.append(KeyNote(sources.pop(key), reason))

    parts = ("decoder.", "encoder_to_decoder.", "mask_token", _ENCODER_NORM, "fc_norm.", _HEAD, _TRACK_MLP)
    has = {part: any(k.startswith(part) for k in tensors) for part in parts}
    has_decoder = has["decoder."] or has["encoder_to_decoder."] or has["mask_token"]
    kept_labels: int | None = None

    if task == "pretraining":
        for prefix in ("fc_norm.", _HEAD, _TRACK_MLP):
            drop(prefix, "task head of a fine-tuned model; a pretraining model has none")
        if not has_decoder:
            for prefix in ("decoder.", "encoder_to_decoder.", "mask_token"):
                fresh[prefix] = "the source has no MAE decoder: freshly initialised"
            notes.append("the source has no MAE decoder: the decoder is freshly initialised")
        # An MAE encoder ends with a norm before encoder_to_decoder; the model has it iff not use_mean_pooling.
        return TaskFit(tensors, sources, dropped, fresh, not has[_ENCODER_NORM], None, notes)

    drop("decoder.", "MAE decoder; not part of a detection/tracking model")
    drop("encoder_to_decoder.", "MAE decoder input projection; not part of a detection/tracking model")
    drop("mask_token", "MAE mask token; not part of a detection/tracking model")
    target_head = "classifier" if task == "detection" else "regressor"

    if has[_TRACK_MLP]:
        if task == "tracking" and head != "drop":
            raise ConversionError(
                "the old Medicane tracking head (head.mlp.0 LayerNorm + head.mlp.1 Linear) applies a second "
                "LayerNorm after fc_norm, which MedicaneVideoMAEForTracking has no place for, so its outputs "
                "cannot be reproduced; pass --drop-head to convert the encoder and fc_norm with a fresh regressor"
            )
        drop(
            _TRACK_MLP,
            "old tracking regression head (LayerNorm + Linear); not representable, dropped on request"
            if task == "tracking"
            else "old tracking regression head; not part of a detection model",
        )

    if has[_HEAD]:
        rows = tensors[f"{_HEAD}weight"].shape[0]
        if _keep_head(head, rows, num_labels, task, source_head_kind):
            if has[_ENCODER_NORM] and not has["fc_norm."]:
                raise ConversionError(
                    "the source head reads the first token after a final norm (no mean pooling, no fc_norm); "
                    "medicane detection/tracking models mean-pool into fc_norm, so the head cannot be kept: "
                    "pass --drop-head to convert the encoder with a fresh head"
                )
            for key in [k for k in tensors if k.startswith(_HEAD)]:
                name = target_head + "." + key[len(_HEAD) :]
                tensors[name] = tensors.pop(key)
                sources[name] = sources.pop(key)
            kept_labels = rows if task == "detection" else None
        else:
            drop(_HEAD, _head_drop_reason(head, rows, num_labels, task, source_head_kind))

    drop(
        _ENCODER_NORM,
        "final encoder norm (MAE encoder / no mean pooling); the "
        f"{task} model mean-pools the tokens into fc_norm instead",
    )
    if not any(k.startswith(target_head + ".") for k in tensors):
        fresh[target_head + "."] = f"new {task} head: freshly initialised, needs training"
        if not has["fc_norm."]:
            fresh["fc_norm."] = f"new {task} head norm: freshly initialised, needs training"
        notes.append(f"the {task} head ({target_head}) is freshly initialised and needs training")
    return TaskFit(tensors, sources, dropped, fresh, True, kept_labels, notes)


def _keep_head(head: HeadPolicy, rows: int, num_labels: int | None, task: str, kind: str) -> bool:
    if head == "drop":
        return False
    if task == "tracking":
        if kind == "regressor" or (head == "keep" and rows == 2):
            return True
        if head == "keep":
            raise ConversionError(
                f"--keep-head: the source head has {rows} outputs, a tracking regressor has 2"
            )
        return False
    if kind == "regressor" and head != "keep":
        return False
    if head == "keep":
        if num_labels is not None and num_labels != rows:
            raise ConversionError(
                f"--keep-head: the source head has {rows} classes but num_labels={num_labels}"
            )
        return True
    return rows == num_labels if num_labels is not None else rows in MEDICANE_CLASS_COUNTS


def _head_drop_reason(head: HeadPolicy, rows: int, num_labels: int | None, task: str, kind: str) -> str:
    if head == "drop":
        return "source head dropped on request (--drop-head)"
    if task == "tracking":
        return (
            f"{kind} head with {rows} outputs is not a position regressor; --keep-head keeps a 2-output head"
        )
    if kind == "regressor":
        return "tracking regressor is not a classifier; --keep-head keeps it"
    wanted = f"num_labels={num_labels}" if num_labels is not None else "a Medicane detector (2 or 3 classes)"
    return f"{rows}-class head (e.g. Kinetics classes) does not fit {wanted}; --keep-head keeps it"


# ----------------------------------------------------------------------------------------------------
# Config and model
# ----------------------------------------------------------------------------------------------------

# Fields a preset or config must agree with the tensors on.
_HARD_FIELDS = (
    "hidden_size",
    "num_channels",
    "tubelet_size",
    "patch_size",
    "num_hidden_layers",
    "intermediate_size",
    "qv_bias",
    "decoder_hidden_size",
    "decoder_num_hidden_layers",
    "decoder_intermediate_size",
)
# VideoMAEConfig architecture fields copied from a transformers config.json.
_HF_ARCH_FIELDS = (
    "image_size",
    "num_frames",
    "num_attention_heads",
    "hidden_act",
    "layer_norm_eps",
    "decoder_num_attention_heads",
    "norm_pix_loss",
)


def _config_classes() -> tuple[type, Any]:
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.modeling_medicane import (
        MedicaneVideoMAEForDetection,
        MedicaneVideoMAEForPreTraining,
        MedicaneVideoMAEForTracking,
    )

    classes = {
        "pretraining": MedicaneVideoMAEForPreTraining,
        "detection": MedicaneVideoMAEForDetection,
        "tracking": MedicaneVideoMAEForTracking,
    }
    return MedicaneVideoMAEConfig, classes


@dataclass
class ConfigRequest:
    """What the caller fixed about the architecture; everything else is read from the checkpoint."""

    config: Any = None  # a MedicaneVideoMAEConfig, a folder/config.json path, or None
    preset: str | None = None
    num_attention_heads: int | None = None
    decoder_num_attention_heads: int | None = None
    image_size: int | None = None
    num_frames: int | None = None
    num_labels: int | None = None


def build_config(
    request: ConfigRequest,
    arch: dict[str, Any],
    *,
    task: str,
    fit: TaskFit,
    hf_config: dict[str, Any] | None,
    hints: dict[str, Any],
    notes: list[str],
) -> MedicaneVideoMAEConfig:
    """The target config: base (``--config``/``--preset``/source config/defaults) + the checkpoint's architecture.

    Sizes read from the tensors (``arch``) must agree with an explicit config or preset: a mismatch is an
    error naming the fields. ``hints`` (from a v2 file's training ``args``) fill image size and frames when
    no config or preset is given. The config is rebuilt through its class so that its checks and label
    maps run.
    """
    config_cls, _ = _config_classes()
    base, explicit = _base_config(config_cls, request, hf_config)
    if task != "pretraining":
        arch = {k: v for k, v in arch.items() if not k.startswith("decoder_")}
    if explicit:
        mismatches = [
            f"{name}: checkpoint {arch[name]}, config {getattr(base, name, None)}"
            for name in _HARD_FIELDS
            if name in arch and getattr(base, name, None) != arch[name]
        ]
        if mismatches:
            raise ConversionError(
                "the checkpoint does not match the given config/preset: " + "; ".join(mismatches)
            )
    values: dict[str, Any] = dict(arch)
    if hf_config is not None:
        if hf_config.get("model_type") != config_cls.model_type:
            values.update(
                {
                    k: hf_config[k]
                    for k in _HF_ARCH_FIELDS
                    if k in hf_config and (task == "pretraining" or not k.startswith("decoder_"))
                }
            )
            notes.append(
                "transformers' VideoMAE uses LayerNorm eps 1e-5 in fc_norm/decoder.norm; the medicane "
                f"model uses layer_norm_eps={values.get('layer_norm_eps', base.layer_norm_eps)} in every norm"
            )
        if fit.num_labels is not None and len(hf_config.get("id2label") or {}) == fit.num_labels:
            values["id2label"] = {int(k): v for k, v in hf_config["id2label"].items()}
    else:
        values["layer_norm_eps"] = VIDEOMAE_V2_LAYER_NORM_EPS
        values["hidden_act"] = "gelu"
        if not explicit:
            values.update(_v2_head_counts(arch, request, task, notes))
            for name in ("image_size", "num_frames"):
                if name in hints:
                    values[name] = hints[name]
                    notes.append(f"{name}={hints[name]} read from the checkpoint's training args")
    for name in ("num_attention_heads", "decoder_num_attention_heads", "image_size", "num_frames"):
        if getattr(request, name) is not None:
            values[name] = getattr(request, name)
    values["use_mean_pooling"] = fit.use_mean_pooling
    return _make_config(
        config_cls, base, values, fit.num_labels if fit.num_labels is not None else request.num_labels
    )


def _v2_head_counts(
    arch: dict[str, Any], request: ConfigRequest, task: str, notes: list[str]
) -> dict[str, int]:
    counts: dict[str, int] = {}
    counts["num_attention_heads"], why = _heads_for(
        arch["hidden_size"], request.num_attention_heads, ENCODER_HEADS_BY_WIDTH, "--num-heads", "encoder"
    )
    notes.append(why)
    if task == "pretraining" and "decoder_hidden_size" in arch:
        counts["decoder_num_attention_heads"], why = _heads_for(
            arch["decoder_hidden_size"],
            request.decoder_num_attention_heads,
            DECODER_HEADS_BY_WIDTH,
            "--decoder-num-heads",
            "decoder",
        )
        notes.append(why)
    return counts


def _make_config(config_cls: type, base: Any, values: dict[str, Any], num_labels: int | None) -> Any:
    data = base.to_dict()
    data.update(values)
    if data.get("num_channels") != base.num_channels:
        data["image_mean"] = data["image_std"] = None  # per-channel statistics no longer fit: the defaults
    if num_labels is not None and num_labels != base.num_labels and "id2label" not in values:
        data.update(num_labels=num_labels, id2label=None, label2id=None)
    elif "id2label" in values:
        data["label2id"] = {name: i for i, name in values["id2label"].items()}
    for stale in ("architectures", "_name_or_path", "transformers_version"):
        data.pop(stale, None)
    try:
        return config_cls.from_dict(data)
    except (ValueError, TypeError) as error:
        raise ConversionError(f"the converted config is not valid: {error}") from error


def _base_config(
    config_cls: type, request: ConfigRequest, hf_config: dict[str, Any] | None
) -> tuple[Any, bool]:
    """(config to start from, whether the caller fixed it). A medicane-hf source folder's own config counts as
    fixed: its data contract (normalisation, grid, tiles) must survive the conversion."""
    if request.config is not None and request.preset is not None:
        raise ConversionError("give either a config or a preset, not both")
    if request.config is None:
        if request.preset is not None:
            try:
                return config_cls.from_preset(request.preset), True
            except ValueError as error:
                raise ConversionError(str(error)) from error
        if hf_config is not None and hf_config.get("model_type") == config_cls.model_type:
            return config_cls.from_dict(dict(hf_config)), True
        return config_cls(), False
    if isinstance(request.config, config_cls):
        return request.config.__class__.from_dict(request.config.to_dict()), True
    path = Path(request.config)
    if path.is_file():
        return config_cls.from_json_file(str(path)), True
    if (path / "config.json").is_file():
        return config_cls.from_pretrained(str(path)), True
    raise ConversionError(f"config {request.config}: not a config.json file or a folder holding one")


def _read_hints(metadata: dict[str, Any]) -> dict[str, Any]:
    """Image size and frame count from a VideoMAE v2 ``args`` entry (``input_size``, ``num_frames``)."""
    args = metadata.get("args")
    if not isinstance(args, Mapping):
        return {}
    hints: dict[str, Any] = {}
    if isinstance(args.get("input_size"), int):
        hints["image_size"] = args["input_size"]
    if isinstance(args.get("num_frames"), int):
        hints["num_frames"] = args["num_frames"]
    return hints


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


# ----------------------------------------------------------------------------------------------------
# The whole conversion
# ----------------------------------------------------------------------------------------------------


def convert_checkpoint(
    path: str | Path,
    out_dir: str | Path | None = None,
    task: Task = "auto",
    config: Any = None,
    *,
    preset: str | None = None,
    num_attention_heads: int | None = None,
    decoder_num_attention_heads: int | None = None,
    image_size: int | None = None,
    num_frames: int | None = None,
    num_labels: int | None = None,
    head: HeadPolicy = "auto",
    allow_unsafe_pickle: bool = False,
    weights_key: str | None = None,
) -> tuple[PreTrainedModel, ConversionReport]:
    """Convert a VideoMAE v2 ``.pth`` file or a transformers VideoMAE folder into a medicane-hf model.

    Args:
        path: the checkpoint file, or a transformers folder (``config.json`` + weights).
        out_dir: if given, ``save_pretrained(out_dir)`` plus ``conversion_report.json``.
        task: ``pretraining`` | ``detection`` | ``tracking`` | ``auto`` (decoder -> pretraining; old tracking
            head -> tracking; otherwise detection, with a fresh head when the source has none).
        config: a ``MedicaneVideoMAEConfig`` or a path to one; its sizes must match the tensors.
        preset: a ``MedicaneVideoMAEConfig.from_preset`` name instead of ``config``.
        num_attention_heads, decoder_num_attention_heads: head counts for widths outside the standard table.
        image_size, num_frames: input size (pixels) and clip length (frames); the tensors cannot tell them.
        num_labels: detection classes; a source head of another size is dropped unless ``head="keep"``.
        head: ``auto`` keeps a source head that fits the task (2/3-class classifiers for detection),
            ``keep`` keeps it whatever its size, ``drop`` always starts a fresh head.
        allow_unsafe_pickle: unpickle arbitrary objects (only for files you trust).
        weights_key: the checkpoint entry holding the weights (e.g. ``model_ema``); default: the first of
            ``model``, ``module``, ``state_dict``, ``model_state_dict``, or the whole file.

    Returns:
        The model (eval mode) and the report of every key.
    """
    path = Path(path)
    if isinstance(config, str | Path):  # read it now: its num_labels decides whether a source head fits
        config = _base_config(_config_classes()[0], ConfigRequest(config=config, preset=preset), None)[0]
    loaded = _load_checkpoint(path, allow_unsafe_pickle=allow_unsafe_pickle, weights_key=weights_key)
    is_hf = loaded.hf_config is not None or any(
        k.startswith(("videomae.", "embeddings.")) for k in loaded.tensors
    )
    translation = translate_transformers(loaded.tensors) if is_hf else translate_videomae_v2(loaded.tensors)
    _raise_untranslatable(translation, path)
    resolved = resolve_task(translation, task)
    head_kind = (
        "regressor" if is_hf and any(k.startswith("regressor.") for k in loaded.tensors) else "classifier"
    )
    labels_wanted = num_labels if num_labels is not None else _explicit_num_labels(config)
    fit = fit_to_task(translation, resolved, head=head, num_labels=labels_wanted, source_head_kind=head_kind)
    notes = list(fit.notes) + _dtype_notes(loaded.tensors)
    request = ConfigRequest(
        config, preset, num_attention_heads, decoder_num_attention_heads, image_size, num_frames, num_labels
    )
    model_config = build_config(
        request,
        infer_architecture(translation.tensors),
        task=resolved,
        fit=fit,
        hf_config=loaded.hf_config,
        hints=_read_hints(loaded.metadata),
        notes=notes,
    )
    notes += _position_notes(translation, model_config)
    _, classes = _config_classes()
    model = new_model(classes[resolved], model_config)
    fresh = load_into_model(model, fit, str(path))
    model.eval()
    if loaded.unsafe_pickle_used:
        notes.append("loaded with allow_unsafe_pickle: the file's pickle code was run")
    report = ConversionReport(
        source=str(path),
        source_format="transformers" if is_hf else "videomae_v2",
        sha256={f.name: file_sha256(f) for f in loaded.files},
        task=resolved,
        model_class=type(model).__name__,
        mapped={key: _file_key(source, loaded) for key, source in sorted(fit.sources.items())},
        dropped=[KeyNote(_file_key(n.key, loaded), n.reason) for n in translation.dropped + fit.dropped],
        newly_initialized=list(fresh.values()),
        ignored_entries=loaded.ignored_entries,
        notes=notes,
        config=_config_summary(model_config, resolved),
    )
    if out_dir is not None:
        save_conversion(model, report, out_dir)
    return model, report


def _file_key(key: str, loaded: LoadedCheckpoint) -> str:
    """The key as written in the checkpoint file (``module.blocks.0...``), keeping a ``[part]`` suffix."""
    base, bracket, part = key.partition("[")
    return loaded.original_keys.get(base, base) + bracket + part


def _explicit_num_labels(config: Any) -> int | None:
    return None if config is None else config.num_labels


def _dtype_notes(tensors: Mapping[str, torch.Tensor]) -> list[str]:
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for t in tensors.values() if t.is_floating_point()})
    if dtypes and dtypes != ["float32"]:
        return [f"source tensors are {', '.join(dtypes)}; the model holds them as float32"]
    return []


def _config_summary(config: Any, task: str) -> dict[str, Any]:
    names = [
        "image_size",
        "patch_size",
        "num_channels",
        "num_frames",
        "tubelet_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "layer_norm_eps",
        "use_mean_pooling",
    ]
    if task == "pretraining":
        names += [
            "decoder_hidden_size",
            "decoder_num_hidden_layers",
            "decoder_num_attention_heads",
            "decoder_intermediate_size",
        ]
    elif task == "detection":
        names += ["num_labels"]
    return {name: getattr(config, name) for name in names}


def _raise_untranslatable(translation: Translation, path: Path) -> None:
    problems = []
    if translation.unknown:
        problems.append("unknown keys: " + ", ".join(sorted(translation.unknown)))
    if translation.unsupported:
        problems.append("unsupported: " + "; ".join(f"{n.key} ({n.reason})" for n in translation.unsupported))
    if problems:
        raise ConversionError(f"{path}: " + " | ".join(problems))


def _position_notes(translation: Translation, config: Any) -> list[str]:
    """A dropped table's length tells the clip shape the checkpoint was trained on; say so if it differs."""
    return [
        f"the checkpoint's {part} position table had {count} tokens, the model has {config.num_tokens} "
        f"({config.num_frames} frames of {config.image_size} px): check --image-size/--num-frames"
        for part, count in translation.pos_embed_tokens.items()
        if count != config.num_tokens
    ]


def save_conversion(model: PreTrainedModel, report: ConversionReport, out_dir: str | Path) -> Path:
    """``save_pretrained(out_dir)`` and write the report beside it; returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    report.output_dir = str(out)
    report.save(out / REPORT_NAME)
    return out


# ----------------------------------------------------------------------------------------------------
# Command line
# ----------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="medicane-hf convert",
        description="Convert an old VideoMAE v2 .pth checkpoint or a transformers VideoMAE folder into a "
        "medicane-hf save_pretrained folder, with a report of every key.",
    )
    parser.add_argument(
        "--checkpoint", required=True, type=Path, help=".pth/.safetensors file or transformers folder"
    )
    parser.add_argument("--out", required=True, type=Path, help="output folder (save_pretrained + report)")
    parser.add_argument(
        "--task",
        default="auto",
        choices=TASKS,
        help="auto: decoder -> pretraining, old tracking head -> tracking, else detection",
    )
    arch = parser.add_mutually_exclusive_group()
    arch.add_argument(
        "--preset", choices=("tiny", "small", "base", "giant"), help="MedicaneVideoMAEConfig preset"
    )
    arch.add_argument(
        "--config", type=Path, help="config.json (or a folder holding one) fixing the architecture"
    )
    parser.add_argument(
        "--num-heads", type=int, help="encoder attention heads (needed for non-standard widths)"
    )
    parser.add_argument("--decoder-num-heads", type=int, help="decoder attention heads (non-standard widths)")
    parser.add_argument(
        "--image-size", type=int, help="input tile size in pixels (default: config/preset, 224)"
    )
    parser.add_argument("--num-frames", type=int, help="frames per clip (default: config/preset, 16)")
    parser.add_argument("--num-labels", type=int, help="detection classes")
    heads = parser.add_mutually_exclusive_group()
    heads.add_argument("--keep-head", action="store_true", help="keep the source head whatever its size")
    heads.add_argument("--drop-head", action="store_true", help="drop the source head; start a fresh one")
    parser.add_argument(
        "--allow-unsafe-pickle",
        action="store_true",
        help="unpickle arbitrary Python objects; ONLY for checkpoints you made yourself",
    )
    parser.add_argument(
        "--weights-key",
        help="checkpoint entry holding the weights, e.g. model_ema (default: model/module/...)",
    )
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty --out folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``medicane-hf convert``: returns 0 on success, 1 on a conversion error (printed to stderr)."""
    args = _parser().parse_args(argv)
    if args.out.exists() and not args.out.is_dir():
        print(f"medicane-hf convert: --out {args.out} is a file, not a folder", file=sys.stderr)
        return 1
    if args.out.is_dir() and any(args.out.iterdir()) and not args.overwrite:
        print(f"medicane-hf convert: {args.out} is not empty (pass --overwrite)", file=sys.stderr)
        return 1
    try:
        _, report = convert_checkpoint(
            args.checkpoint,
            args.out,
            task=args.task,
            config=args.config,
            preset=args.preset,
            num_attention_heads=args.num_heads,
            decoder_num_attention_heads=args.decoder_num_heads,
            image_size=args.image_size,
            num_frames=args.num_frames,
            num_labels=args.num_labels,
            head="keep" if args.keep_head else "drop" if args.drop_head else "auto",
            allow_unsafe_pickle=args.allow_unsafe_pickle,
            weights_key=args.weights_key,
        )
    except ConversionError as error:
        print(f"medicane-hf convert: {error}", file=sys.stderr)
        return 1
    print(report.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
