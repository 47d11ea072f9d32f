"""Model cards: a stage's template from the top-level ``model_cards/`` folder, filled with what a run measured.

`build_card` renders ``model_cards/<stage>.md`` with huggingface_hub's `ModelCard.from_template` (Jinja), the Hub
metadata built as `ModelCardData` (``library_name``, ``pipeline_tag``, ``tags``, ``license``, ``base_model``, and a
``model-index`` of `EvalResult` rows: only metrics the run computed); `write_card` saves it as ``README.md`` in a
model folder. Training (`medicane_hf.training.run`, ``best/`` and ``final/``) and ``medicane-hf convert`` call
`write_card`. A template that names a field the card does not give raises `CardTemplateError` with one line (Jinja
alone would print an empty string).

The card's how-to snippet loads the model by ``model_id = "..."``: the folder's path until it is pushed, then the
Hub id (`set_model_id`, used by `medicane_hf.hub.push`).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from medicane_hf.configuration_medicane import DETECTION_THRESHOLD_RULES

TEMPLATE_DIR = Path(__file__).resolve().parents[2] / "model_cards"
"""The templates: ``model_cards/<stage>.md`` at the top of the project (docs/DESIGN.md)."""
CARD_NAME = "README.md"
LICENSE = "apache-2.0"

# model class -> the stage whose template describes it (the encoder is described as the pretraining stage's)
STAGE_OF_CLASS = {
    "MedicaneVideoMAEModel": "specialization",
    "MedicaneVideoMAEForPreTraining": "specialization",
    "MedicaneVideoMAEForDetection": "detection",
    "MedicaneVideoMAEForTracking": "tracking",
}
# stage -> (Hub pipeline tag or None, the Auto class of the snippet, its model-index task name)
STAGE_HUB = {
    "specialization": (None, "AutoModelForPreTraining", None),
    "detection": ("video-classification", "AutoModelForVideoClassification", "Medicane detection"),
    "tracking": ("keypoint-detection", "AutoModelForKeypointDetection", "Medicane centre tracking"),
}
TAGS = ["medicane", "videomae", "video", "meteosat", "seviri", "airmass-rgb", "satellite", "medicane-hf"]
# run-time counters of an evaluation, not results
_NOT_METRICS = ("_runtime", "_samples_per_second", "_steps_per_second", "_epoch", "_global_step")

CITATIONS = """\
- VideoMAE: Z. Tong, Y. Song, J. Wang, L. Wang. *VideoMAE: Masked Autoencoders are Data-Efficient Learners for
  Self-Supervised Video Pre-Training.* NeurIPS 2022. arXiv:2203.12602.
- VideoMAE V2: L. Wang, B. Huang, Z. Zhao, Z. Tong, Y. He, Y. Wang, Y. Wang, Y. Qiao. *VideoMAE V2: Scaling Video
  Masked Autoencoders with Dual Masking.* CVPR 2023. arXiv:2303.16727.
- Track data: E. Flaounas et al. *A composite approach to produce reference datasets for extratropical cyclone
  tracks: application to Mediterranean cyclones.* Weather and Climate Dynamics 4, 639-661, 2023 (the ERA5
  composite tracks, with the named Medicanes' hourly positions).
- The method: DeMeTrA, a 2026 preprint of VideoMAE v2 Medicane detection and tracking on SEVIRI Airmass RGB, which
  this package reimplements with transformers."""

_MODEL_ID_LINE = re.compile(r'^model_id = ".*"$', flags=re.MULTILINE)


class CardTemplateError(ValueError):
    """A card template that cannot be filled (missing file, or a field the card does not give)."""


@dataclass
class TrainingData:
    """What a model was trained on: per split its storms and clips per class (a build-dataset folder's summary)."""

    dataset: str
    synthetic: bool
    storms: dict[str, list[str]] = field(default_factory=dict)
    clips: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> class name -> clips

    @classmethod
    def from_dataset(cls, dataset_dir: str | Path) -> TrainingData:
        """From ``dataset_info.json``; synthetic when the frames come from ``medicane-hf synth`` (a recipe or a
        ``synthetic_truth.csv`` beside them)."""
        folder = Path(dataset_dir)
        info = json.loads((folder / "dataset_info.json").read_text())
        names = list(info.get("class_names", []))
        clips = {}
        for split, counts in info.get("counts", {}).items():
            per_class = {
                names[int(k.split("_")[1])]: int(v) for k, v in counts.items() if k.startswith("label_")
            }
            if per_class:
                clips[split] = per_class
        storms = {k: list(v) for k, v in info.get("storms", {}).items() if k in clips}
        frames = Path(info.get("inputs", {}).get("frames_dir") or folder)
        synthetic = any((frames.parent / name).is_file() for name in ("recipe.json", "synthetic_truth.csv"))
        return cls(dataset=str(folder), synthetic=synthetic, storms=storms, clips=clips)

    def markdown(self) -> str:
        classes = sorted({name for per in self.clips.values() for name in per})
        lines = [
            f"Built with `medicane-hf build-dataset` ({'the synthetic basin of `medicane-hf synth`' if self.synthetic else 'real frames and tracks'}); "
            "train, validation and test are split by storm and time block, never by clip.",
            "",
            "| split | storms | " + " | ".join(f"{c} clips" for c in classes) + " |",
            "|---|---|" + "---|" * len(classes),
        ]
        for split, per in self.clips.items():
            storms = ", ".join(self.storms.get(split, [])) or "none"
            lines.append(f"| {split} | {storms} | " + " | ".join(str(per.get(c, 0)) for c in classes) + " |")
        return "\n".join(lines)


@dataclass
class CardInputs:
    """Everything a card says. `metrics`: ``eval_*`` (validation) and ``test_*`` values a run computed;
    `training_data` None: not trained by this package (a conversion; `origin` says where the weights come from)."""

    model_class: str
    config: Any  # MedicaneVideoMAEConfig
    model_id: str
    origin: str
    metrics: Mapping[str, Any] = field(default_factory=dict)
    training_data: TrainingData | None = None
    hyperparameters: Mapping[str, Any] = field(default_factory=dict)
    base_model: str | None = None
    model_name: str | None = None

    @property
    def stage(self) -> str:
        if self.model_class not in STAGE_OF_CLASS:
            raise CardTemplateError(f"no model card for {self.model_class}; known: {sorted(STAGE_OF_CLASS)}")
        return STAGE_OF_CLASS[self.model_class]


def _metric_rows(metrics: Mapping[str, Any]) -> list[tuple[str, str, float]]:
    """(split, metric, value) for every finite number under ``eval_`` / ``test_``, in a stable order."""
    rows = []
    for key in sorted(metrics):
        value = metrics[key]
        split = "validation" if key.startswith("eval_") else "test" if key.startswith("test_") else None
        if split is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            continue
        if key.endswith(_NOT_METRICS) or not math.isfinite(value):
            continue
        rows.append((split, key.split("_", 1)[1], float(value)))
    return rows


def _metrics_markdown(rows: list[tuple[str, str, float]]) -> str:
    if not rows:
        return "No metrics were computed for this model (it was not evaluated by this package)."
    names = sorted({name for _, name, _ in rows})
    table = {(split, name): value for split, name, value in rows}
    splits = [s for s in ("validation", "test") if any(r[0] == s for r in rows)]
    lines = ["| metric | " + " | ".join(splits) + " |", "|---|" + "---|" * len(splits)]
    for name in names:
        cells = [f"{table[(s, name)]:.4g}" if (s, name) in table else "" for s in splits]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    note = (
        "\n\nValidation: the best model's evaluation that chose it; test: the held-out storms, once, at the end. "
        "Detection scores count a Medicane clip as the positive class (POD, FAR, CSI, HSS); tracking errors are "
        "great-circle km on the grid."
    )
    return "\n".join(lines) + note


def _contract_markdown(config: Any) -> str:
    tiles = config.tiles or {}
    grid = config.grid or {}
    rows = [
        ("clip", f"{config.num_frames} frames, {config.frame_interval_minutes} min apart, last frame on the hour"),
        ("tile", f"{config.image_size} x {config.image_size} px, {config.num_channels} channels (Airmass RGB)"),
        ("input", "uint8 frames [T, H, W, C] -> `pixel_values` float32 [B, T, C, H, W] = (pixel / 255 - mean) / std "
                  "(the saved video processor does this)"),
        ("image_mean", ", ".join(f"{v:.4f}" for v in config.image_mean)),
        ("image_std", ", ".join(f"{v:.4f}" for v in config.image_std)),
        ("grid", f"{grid.get('width')} x {grid.get('height')} px, lon/lat {grid.get('lower_left')} to "
                 f"{grid.get('upper_right')}" if grid else "not recorded"),
        ("tiles", f"size {tiles.get('tile_size')}, stride x {tiles.get('stride_x')}, stride y {tiles.get('stride_y')}"
                  if tiles else "not recorded"),
        ("classes", ", ".join(f"{i} {n}" for i, n in sorted((int(k), v) for k, v in config.id2label.items()))),
    ]  # fmt: skip
    return "| field | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in rows)


def _hyperparameters_markdown(values: Mapping[str, Any]) -> str:
    if not values:
        return "Not trained by this package (see above for where the weights come from)."
    return "| setting | value |\n|---|---|\n" + "\n".join(f"| {k} | {v} |" for k, v in values.items())


def card_snippet(stage: str, model_id: str, config: Any) -> str:
    """The card's how-to: load the model and its video processor, run one blank tile (a test runs it)."""
    _, auto_class, _ = STAGE_HUB[stage]
    shape = f"({config.num_frames}, {config.image_size}, {config.image_size}, {config.num_channels})"
    result = {
        "specialization": "print(outputs.logits.shape)  # the reconstruction of the masked tokens",
        "detection": "print(model.probabilities(outputs.logits))  # [1, classes], calibrated",
        "tracking": "print(outputs.logits, outputs.centre_spread)  # centre (x, y) in tile px, spread in px",
    }[stage]
    # a detector that places the storm on the grid needs each tile's top-left grid pixel (x0, y0)
    position = ", tile_offset=torch.tensor([[0.0, 0.0]])" if getattr(config, "detection_position", False) else ""
    imports = "import numpy as np\nimport torch" if position else "import numpy as np"
    return f"""```python
{imports}
from transformers import {auto_class}, AutoVideoProcessor

model_id = "{model_id}"
model = {auto_class}.from_pretrained(model_id, trust_remote_code=True).eval()
processor = AutoVideoProcessor.from_pretrained(model_id, trust_remote_code=True)
clip = np.zeros({shape}, dtype=np.uint8)  # one tile: uint8 [T, H, W, C]
outputs = model(**processor(clip){position})
{result}
```

With `medicane-hf` installed, `import medicane_hf` lets the same Auto classes load it without
`trust_remote_code`."""


def _architecture(config: Any) -> str:
    head = {
        "detection": f"`{config.detection_pooling}` pooling head",
        "tracking": f"`{config.tracking_head}` centre head",
    }
    stage = None
    for name in ("detection", "tracking"):
        if getattr(config, "architectures", None) and STAGE_OF_CLASS.get(config.architectures[0]) == name:
            stage = name
    parts = [
        f"hidden {config.hidden_size}, {config.num_hidden_layers} layers, {config.num_attention_heads} heads",
        f"patch {config.patch_size} px x tubelet {config.tubelet_size}, `{config.patch_embedding}` patch embedding",
    ]
    if stage:
        parts.append(head[stage])
    return "; ".join(parts)


def _limits(inputs: CardInputs) -> str:
    data = inputs.training_data
    if data is None:
        return (
            "These weights were converted, not trained, by this package: what they know comes from their source "
            "(above). Fine-tune and evaluate them on your data before trusting any output."
        )
    if data.synthetic:
        return (
            "**Trained on the synthetic basin of `medicane-hf synth`, not on satellite data: it is not for real "
            "forecasts or warnings.** It shows that the pipeline learns; its scores say nothing about real "
            "Medicanes."
        )
    return (
        "Trained on the few Medicanes of its training split: rare events, so expect misses and false alarms on new "
        "seasons; it is a research model, not an operational forecast or warning."
    )


def _card_data(inputs: CardInputs, rows: list[tuple[str, str, float]], name: str) -> ModelCardData:
    pipeline_tag, _, task_name = STAGE_HUB[inputs.stage]
    eval_results = None
    if task_name is not None and rows:
        dataset = inputs.training_data
        dataset_type = (
            "medicane-synthetic-basin" if dataset is not None and dataset.synthetic else "medicane-seviri"
        )
        dataset_name = Path(dataset.dataset).name if dataset is not None else "unknown"
        eval_results = [
            EvalResult(
                task_type=pipeline_tag,
                task_name=task_name,
                dataset_type=dataset_type,
                dataset_name=dataset_name,
                dataset_split=split,
                metric_type=metric,
                metric_name=f"{metric} ({split})",
                metric_value=value,
            )
            for split, metric, value in rows
        ]
    tags = [*TAGS, inputs.stage] + (
        ["synthetic-data"] if inputs.training_data and inputs.training_data.synthetic else []
    )
    return ModelCardData(
        model_name=name,
        library_name="transformers",
        pipeline_tag=pipeline_tag,
        tags=tags,
        license=LICENSE,
        base_model=inputs.base_model,
        eval_results=eval_results,
    )


def card_fields(inputs: CardInputs) -> dict[str, Any]:
    """The values the templates may use (beside ``card_data``)."""
    config = inputs.config
    name = inputs.model_name or f"medicane-hf {inputs.stage}"
    threshold = config.detection_threshold
    return {
        "model_name": name,
        "architecture": _architecture(config),
        "origin": inputs.origin,
        "limits": _limits(inputs),
        "num_frames": config.num_frames,
        "image_size": config.image_size,
        "num_tokens": config.num_tokens,
        "hidden_size": config.hidden_size,
        "class_names": ", ".join(str(v) for _, v in sorted((int(k), v) for k, v in config.id2label.items())),
        "temperature": f"{config.detection_temperature:.4g}",
        "threshold": ""
        if threshold is None
        else f"; a Medicane at or above probability {threshold:.4g} (chosen on validation to maximise "
        f"{DETECTION_THRESHOLD_RULES[config.detection_threshold_rule]})",
        "spread_scale": f"{config.tracking_spread_scale:.4g}",
        "data_contract": _contract_markdown(config),
        "training_data": inputs.training_data.markdown() if inputs.training_data else inputs.origin,
        "hyperparameters": _hyperparameters_markdown(inputs.hyperparameters),
        "metrics_table": _metrics_markdown(_metric_rows(inputs.metrics)),
        "snippet": card_snippet(inputs.stage, inputs.model_id, config),
        "citations": CITATIONS,
    }


def build_card(inputs: CardInputs, template_dir: str | Path | None = None) -> ModelCard:
    """The stage's template filled from `inputs`, with the Hub metadata as front matter.

    Raises:
        CardTemplateError: the template is missing, or uses a field `card_fields` does not give (one line).
    """
    import jinja2
    import jinja2.meta

    path = Path(template_dir or TEMPLATE_DIR) / f"{inputs.stage}.md"
    if not path.is_file():
        raise CardTemplateError(
            f"model card template {path} is not there (the model_cards/ folder of the project)"
        )
    text = path.read_text()
    fields = card_fields(inputs)
    used = jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(text))
    missing = sorted(used - set(fields) - {"card_data"})
    if missing:
        raise CardTemplateError(
            f"model card template {path} uses {', '.join(missing)}, which no card gives; the fields are "
            f"{', '.join(sorted(fields))}"
        )
    rows = _metric_rows(inputs.metrics)
    return ModelCard.from_template(
        _card_data(inputs, rows, fields["model_name"]), template_str=text, **fields
    )


def write_card(folder: str | Path, inputs: CardInputs, template_dir: str | Path | None = None) -> Path:
    """`build_card` saved as ``folder/README.md``; returns its path."""
    path = Path(folder) / CARD_NAME
    build_card(inputs, template_dir).save(path)
    return path


def set_model_id(card_path: str | Path, model_id: str) -> bool:
    """Point the card's snippet at `model_id` (a Hub id); False when the card has no ``model_id = "..."`` line."""
    path = Path(card_path)
    text = path.read_text()
    new, count = _MODEL_ID_LINE.subn(f'model_id = "{model_id}"', text)
    if count:
        path.write_text(new)
    return bool(count)


def write_folder_card(
    folder: str | Path,
    origin: str,
    training_data: TrainingData | None = None,
    hyperparameters: Mapping[str, Any] | None = None,
    base_model: str | None = None,
    model_id: str | None = None,
    template_dir: str | Path | None = None,
) -> Path:
    """The card of a saved model folder from its own ``config.json`` and ``metrics.json`` (when there); the snippet
    loads `model_id` (default: the folder's absolute path). Returns the README's path."""
    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

    folder = Path(folder)
    config = MedicaneVideoMAEConfig.from_pretrained(folder)
    metrics_path = folder / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    architectures = getattr(config, "architectures", None) or ["MedicaneVideoMAEModel"]
    inputs = CardInputs(
        model_class=architectures[0],
        config=config,
        model_id=model_id or str(folder.resolve()),
        origin=origin,
        metrics=metrics,
        training_data=training_data,
        hyperparameters=hyperparameters or {},
        base_model=base_model,
        # the Hub repo's name, else the run and folder (e.g. "detection-small/best")
        model_name=model_id.split("/")[-1] if model_id else f"{folder.resolve().parent.name}/{folder.name}",
    )
    return write_card(folder, inputs, template_dir)
