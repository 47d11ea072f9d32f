"""Building the target config: the checkpoint's architecture (read from its tensors) on a base config.

The base is ``--config`` / ``--preset`` / the source folder's own config / the defaults; head counts,
which tensors cannot show, come from the caller or the standard VideoMAE size table.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from medicane_hf.convert.heads import TaskFit
from medicane_hf.convert.options import ConversionOptions
from medicane_hf.convert.report import ConversionError

if TYPE_CHECKING:
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

# Every VideoMAE v2 model uses partial(nn.LayerNorm, eps=1e-6); the eps shapes the outputs, so it is fixed.
VIDEOMAE_V2_LAYER_NORM_EPS = 1e-6
# Attention heads of the published VideoMAE v2 / VideoMAE sizes, by width. The head count is not
# visible in the tensors, and a wrong one gives silently different outputs, so unknown widths are an error.
ENCODER_HEADS_BY_WIDTH = {96: 4, 384: 6, 768: 12, 1024: 16, 1280: 16, 1408: 16}
DECODER_HEADS_BY_WIDTH = {192: 3, 384: 6, 512: 8}


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


# convert's --task names a model head; each is the model of one stage of the registry (medicane_hf.tasks).
# "pretraining" stays the CLI's word for the MAE model that the specialization stage trains.
CONVERT_TASK_STAGES = {"pretraining": "specialization", "detection": "detection", "tracking": "tracking"}


def config_classes() -> tuple[type, dict[str, type]]:
    """(the config class, convert task -> model class), the model classes read from the stage registry."""
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.tasks import TASKS

    classes = {task: TASKS[stage].model_class() for task, stage in CONVERT_TASK_STAGES.items()}
    return MedicaneVideoMAEConfig, classes


def build_config(
    request: ConversionOptions,
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
    config_cls, _ = config_classes()
    base, explicit = base_config(config_cls, request, hf_config)
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
    arch: dict[str, Any], request: ConversionOptions, task: str, notes: list[str]
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


def base_config(
    config_cls: type, request: ConversionOptions, hf_config: dict[str, Any] | None
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


def read_hints(metadata: dict[str, Any]) -> dict[str, Any]:
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
