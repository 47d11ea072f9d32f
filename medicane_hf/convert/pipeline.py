"""The whole conversion: load, translate, fit to the task, build the config and model, report.

Two sources are understood:

* **VideoMAE v2 ``.pth`` files** (the MCG-NJU / OpenGVLab VideoMAEv2 layout, also what the old Medicane
  system saved): ``vit_g_hybrid_pt_1200e.pth`` (MAE with decoder), ``vit_s_k710_dl_from_giant.pth``
  (fine-tuned with a Kinetics-710 head), the old system's detectors. Weights sit under ``model`` /
  ``module`` / ``state_dict`` (or are the whole file), keys may carry ``module.``, ``_orig_mod.``,
  ``backbone.`` and ``encoder.`` prefixes.
* **transformers VideoMAE folders** (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``),
  e.g. a downloaded ``MCG-NJU/videomae-base``.

Each step is a module of this package: ``loading`` (``torch.load(weights_only=True)`` only), ``keys``
(translation into transformers' VideoMAE names), ``heads`` (drop or keep heads, decoder, final norm),
``config``, ``model`` (load with every key accounted for) and ``report``. Whatever is not mapped is
dropped *with a reason* and listed in ``conversion_report.json``; anything else (an unknown key, a shape
mismatch, a model key with no source that is not a freshly initialised head) is an error naming the keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medicane_hf.convert.config import (
    base_config,
    build_config,
    config_classes,
    infer_architecture,
    read_hints,
)
from medicane_hf.convert.heads import fit_to_task, resolve_task
from medicane_hf.convert.keys import Translation, translate_transformers, translate_videomae_v2
from medicane_hf.convert.loading import LoadedCheckpoint, file_sha256, load_checkpoint
from medicane_hf.convert.model import load_into_model, new_model
from medicane_hf.convert.options import ConversionOptions, Task
from medicane_hf.convert.report import REPORT_NAME, ConversionError, ConversionReport, KeyNote

if TYPE_CHECKING:
    from transformers import PreTrainedModel


def convert_checkpoint(
    path: str | Path,
    out_dir: str | Path | None = None,
    task: Task = "auto",
    config: Any = None,
    **options: Any,
) -> tuple[PreTrainedModel, ConversionReport]:
    """Convert a VideoMAE v2 ``.pth`` file or a transformers VideoMAE folder into a medicane-hf model.

    Args:
        path: the checkpoint file, or a transformers folder (``config.json`` + weights).
        out_dir: if given, ``save_pretrained(out_dir)`` plus ``conversion_report.json``.
        task: ``pretraining`` | ``detection`` | ``tracking`` | ``auto`` (decoder -> pretraining; old tracking
            head -> tracking; otherwise detection, with a fresh head when the source has none).
        config: a ``MedicaneVideoMAEConfig`` or a path to one; its sizes must match the tensors.
        **options: the other fields of `ConversionOptions` (declared and documented there once):
            preset: a ``MedicaneVideoMAEConfig.from_preset`` name instead of ``config``.
            num_attention_heads, decoder_num_attention_heads: head counts for non-standard widths.
            image_size, num_frames: input size (pixels) and clip length (frames); the tensors cannot tell.
            num_labels: detection classes; a source head of another size is dropped unless ``head="keep"``.
            head: ``auto`` keeps a source head that fits the task (2/3-class classifiers for detection),
                ``keep`` keeps it whatever its size, ``drop`` always starts a fresh head.
            allow_unsafe_pickle: unpickle arbitrary objects (only for files you trust).
            weights_key: the checkpoint entry holding the weights (e.g. ``model_ema``); default: the first
                of ``model``, ``module``, ``state_dict``, ``model_state_dict``, or the whole file.

    Returns:
        The model (eval mode) and the report of every key.

    Raises:
        TypeError: an option that `ConversionOptions` does not declare.
    """
    return convert_with_options(path, out_dir, ConversionOptions(task=task, config=config, **options))


def convert_with_options(
    path: str | Path, out_dir: str | Path | None, options: ConversionOptions
) -> tuple[PreTrainedModel, ConversionReport]:
    """`convert_checkpoint` with its options as one `ConversionOptions` (what the command line builds)."""
    path = Path(path)
    config = options.config
    if isinstance(config, str | Path):  # read it now: its num_labels decides whether a source head fits
        config = base_config(
            config_classes()[0], ConversionOptions(config=config, preset=options.preset), None
        )[0]
        options = replace(options, config=config)
    loaded = load_checkpoint(
        path, allow_unsafe_pickle=options.allow_unsafe_pickle, weights_key=options.weights_key
    )
    is_hf = loaded.hf_config is not None or any(
        k.startswith(("videomae.", "embeddings.")) for k in loaded.tensors
    )
    translation = translate_transformers(loaded.tensors) if is_hf else translate_videomae_v2(loaded.tensors)
    _raise_untranslatable(translation, path)
    resolved = resolve_task(translation, options.task)
    head_kind = (
        "regressor" if is_hf and any(k.startswith("regressor.") for k in loaded.tensors) else "classifier"
    )
    labels_wanted = options.num_labels if options.num_labels is not None else _explicit_num_labels(config)
    fit = fit_to_task(
        translation, resolved, head=options.head, num_labels=labels_wanted, source_head_kind=head_kind
    )
    notes = list(fit.notes) + _dtype_notes(loaded.tensors)
    model_config = build_config(
        options,
        infer_architecture(translation.tensors),
        task=resolved,
        fit=fit,
        hf_config=loaded.hf_config,
        hints=read_hints(loaded.metadata),
        notes=notes,
    )
    notes += _position_notes(translation, model_config)
    _, classes = config_classes()
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
    """``save_pretrained(out_dir)`` (weights, config, the code and video processor for loading anywhere), a model
    card (``README.md``, `medicane_hf.hub.cards`) and the report beside them; returns the folder."""
    from medicane_hf.hub.cards import CardTemplateError, write_folder_card

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    origin = f"converted by `medicane-hf convert` from {Path(report.source).name} ({report.source_format} weights)"
    try:
        write_folder_card(out, origin)
    except CardTemplateError as error:  # the weights are converted: say why there is no card, keep them
        report.notes.append(f"no model card: {error}")
    report.output_dir = str(out)
    report.save(out / REPORT_NAME)
    return out
