"""Command-line and YAML arguments of the three training stages.

Four argument groups, parsed together by ``transformers.HfArgumentParser``:

- :class:`ModelArguments`: which model (preset or checkpoint) and the
  architecture knobs of the recipe (drop path, mask ratios);
- :class:`DataArguments`: the build-dataset folder and how much of it to use;
- :class:`RecipeArguments`: the parts of the recipe that ``TrainingArguments``
  has no field for (lr scaling, warmup in epochs, weight-decay schedule,
  layer decay, EMA, class weights);
- ``transformers.TrainingArguments``: everything else (batch size, epochs,
  optimiser betas, schedule, precision, logging, checkpoints).

Precedence, lowest first: dataclass defaults < the stage's defaults (see
``medicane_hf.tasks``: its recipe, or with no arguments at all the recipe plus
its short ``quick_run``) < the YAML file given as the first positional
argument < command-line flags. A YAML key that is not an argument is an error
naming the key and the file.

``--help`` shows as defaults what the run would use: the recipe (flags only),
or the file's values when a YAML file comes first; its closing lines list what a
run with no arguments changes (`help_epilog`).

Two arguments bring their companion unless that companion is given too, at the
same or a higher level (file < flag), and the run says so (`ParsedArguments.notes`):
a step count (``--eval_steps``, ``--save_steps``, ``--logging_steps``) sets its
strategy to ``steps`` (with the recipe's ``epoch`` it would do nothing), and
``--metric_for_best_model`` sets ``--greater_is_better`` to that metric's
direction (`TaskSpec.greater_is_better_for`; the recipe's ``True`` would keep the
highest loss). `validate_arguments` refuses values no run can use, by name,
before anything is built.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import yaml
from transformers import HfArgumentParser, TrainingArguments

from medicane_hf.configuration_medicane import DETECTION_THRESHOLD_RULES
from medicane_hf.jsonable import jsonable
from medicane_hf.tasks import TASKS, TaskSpec


@dataclass
class ModelArguments:
    """Which model to train and the architecture settings the recipe changes."""

    # HfArgumentParser lists a dataclass with this attribute under its own heading in --help
    _argument_group_name: ClassVar[str] = "model (medicane-hf)"

    model_name_or_path: str | None = field(
        default=None,
        metadata={
            "help": "Start from these weights: a save_pretrained folder (e.g. a specialization run's best/), a folder "
            "written by `medicane-hf convert`, or a Hub id. Detection and tracking load the encoder from it and "
            "report every key that did not load. Empty: a freshly initialised model of --preset."
        },
    )
    preset: str = field(
        default="tiny",
        metadata={"help": "Backbone size when starting from scratch: tiny, small, base or giant."},
    )
    drop_path_rate: float | None = field(
        default=None,
        metadata={
            "help": "Stochastic depth rate of the encoder (0.1 in the fine-tuning recipe). Empty: the model's."
        },
    )
    patch_embedding: str | None = field(
        default=None,
        metadata={
            "help": "New models only: `conv` (a 3x3 convolution stem inside each patch; the specialization recipe) "
            "or `linear` (VideoMAE's one linear map per patch, what converted checkpoints hold). A model loaded "
            "from --model_name_or_path keeps its own, and the run says so when this asks for another. Empty: "
            "`linear`."
        },
    )
    tracking_head: str | None = field(
        default=None,
        metadata={
            "help": "Tracking head: `heatmap` (full-resolution heat map and its soft arg-max; the tracking "
            "recipe), `token_argmax` (soft arg-max over the last frame's tokens) or `pooled` (mean pooling + "
            "Linear(2), the old system's). Empty: the model's."
        },
    )
    detection_pooling: str | None = field(
        default=None,
        metadata={
            "help": "Detection head pooling: `heatmap` (pixels of the last frames weighted by a per-pixel score, "
            "trained with the storm centre; the detection recipe), `attention` (learned per-token weights), "
            "`mean` (VideoMAE v2's) or `max`. Empty: the model's."
        },
    )
    detection_position: bool | None = field(
        default=None,
        metadata={
            "help": "Detection with `heatmap` pooling: also give the head where on the grid the heat map's storm "
            "is (the tile's offset plus the map's centre, land or sea; a Medicane is over sea). The model then "
            "needs each clip's tile offset at inference. Empty: the model's."
        },
    )
    detection_threshold_rule: str | None = field(
        default=None,
        metadata={
            "help": "Detection: the validation score the saved threshold maximises at the end of the run: `hss` "
            "(the Heidke skill score: fewer false alarms for a rare event; the detection recipe) or "
            "`balanced_accuracy` (Youden's J). Saved in config.json. Empty: the model's."
        },
    )
    tracking_loss: str | None = field(
        default=None,
        metadata={
            "help": "Tracking: `heatmap` (the heat map's negative log-likelihood of the labelled centre; the "
            "tracking recipe), `mse` or `huber` (on the read-out centre, plus the map's centre term). Empty: the "
            "model's."
        },
    )
    tracking_readout: str | None = field(
        default=None,
        metadata={
            "help": "Tracking, heat-map head: `peak` (the most likely pixel, refined within a few px; the tracking "
            "recipe) or `soft_argmax` (the whole map's expected position). Empty: the model's."
        },
    )
    heatmap_target_sigma: float | None = field(
        default=None,
        metadata={
            "help": "Detection and tracking heat maps: blur (px, sigma of a Gaussian) of the centre target, the "
            "label's own uncertainty; 0 = the exact pixel. Empty: the model's."
        },
    )
    heatmap_label_noise: float | None = field(
        default=None,
        metadata={
            "help": "Tracking, heat-map likelihood: the labels' own error against the centre the frames show "
            "(px, Gaussian sigma per axis; e.g. ERA5 tracks vs the satellite eye). The map is blurred by it "
            "before the likelihood, so it sharpens on the visible centre; 0 = labels exact. Empty: the model's."
        },
    )
    mask_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Specialization only: fraction of tokens hidden from the encoder by the tube mask (0.9)."
        },
    )
    decoder_mask_ratio: float | None = field(
        default=None,
        metadata={
            "help": "Specialization only: fraction of tokens the running-cell mask drops from the loss (0.5)."
        },
    )
    config_overrides: str | None = field(
        default=None,
        metadata={
            "help": "Other model config fields, `key=value,key=value` on the command line or a mapping in YAML "
            "(e.g. hidden_dropout_prob=0.0)."
        },
    )
    freeze_backbone: bool = field(
        default=False,
        metadata={
            "help": "Detection and tracking, from --model_name_or_path: train the head only; every encoder weight "
            "stays as loaded. The run records how many parameters trained (effective_settings.json)."
        },
    )
    lora_rank: int | None = field(
        default=None,
        metadata={
            "help": "Detection and tracking, from --model_name_or_path: fine-tune the encoder through LoRA "
            "matrices of this rank (peft), the head fully trainable, the rest frozen. best/ and final/ hold the "
            "merged model and, in adapter/, the adapter alone (PeftModel.from_pretrained(base, folder)). "
            "Empty: no LoRA."
        },
    )
    lora_alpha: float | None = field(
        default=None,
        metadata={"help": "LoRA scale numerator: the update is (alpha / rank) B A. Empty: the rank (scale 1)."},
    )
    lora_dropout: float = field(default=0.0, metadata={"help": "Dropout on the LoRA input, in [0, 1)."})
    lora_target_modules: str | None = field(
        default=None,
        metadata={
            "help": "The encoder's Linear layers LoRA adapts, comma-separated (a YAML list also works), matched "
            "like peft: a name or its end after a dot, among attention.attention.query, attention.attention.key, "
            "attention.attention.value, attention.output.dense, intermediate.dense, output.dense (`dense`: the "
            "last three). Empty: query,value."
        },
    )


@dataclass
class DataArguments:
    """Where the clips come from."""

    _argument_group_name: ClassVar[str] = "data (medicane-hf)"

    dataset_dir: str | None = field(
        default=None,
        metadata={
            "help": "A `medicane-hf build-dataset` output folder (store/, index/, normalization.json, "
            "dataset_info.json). Empty: the embedded default synthetic basin (built once in the cache)."
        },
    )
    train_max_shift: int | None = field(
        default=None,
        metadata={
            "help": "Detection and tracking: move each train tile by a random offset of up to N pixels per "
            "axis, keeping its label (detection) or its centre inside (tracking; the target follows). "
            "Empty: a quarter of the tile side; 0: off. Validation and test tiles never move."
        },
    )
    train_shift_margin: int = field(
        default=8,
        metadata={
            "help": "Detection and tracking: a shifted train tile keeps every storm centre at least N pixels inside "
            "its edges. 0 lets training see centres on the edge, as validation and test have them (a third of "
            "their tracking clips lie within 8 px of an edge); for detection keep N above the pixels a storm "
            "covers in 10 frames, or a moved clip may no longer have the 6 positive frames its label says."
        },
    )
    train_rot90: bool | None = field(
        default=None,
        metadata={
            "help": "Tracking: turn each train tile by a random multiple of 90 degrees (the target turns with it; "
            "a turned cyclone still turns counter-clockwise). Empty: on. Validation and test tiles never turn."
        },
    )
    max_train_samples: int | None = field(
        default=None,
        metadata={"help": "Use only N training clips, evenly spread over the split (quick runs, debugging)."},
    )
    max_eval_samples: int | None = field(
        default=None,
        metadata={
            "help": "Use only N validation and N test clips, evenly spread over each split (quick runs)."
        },
    )


@dataclass
class RecipeArguments:
    """The parts of the training recipe that TrainingArguments does not cover."""

    _argument_group_name: ClassVar[str] = "recipe (medicane-hf)"

    scale_lr: bool = field(
        default=False,
        metadata={
            "help": "Treat --learning_rate as a base rate for a total batch of 256 and use "
            "learning_rate x total_batch / 256 (total_batch = per-device batch x processes x accumulation)."
        },
    )
    warmup_epochs: float | None = field(
        default=None,
        metadata={"help": "Linear lr warmup length in epochs, used when --warmup_steps is 0."},
    )
    weight_decay_end: float | None = field(
        default=None,
        metadata={
            "help": "Weight decay at the last step; the decay follows a cosine from --weight_decay to this value. "
            "Empty: constant --weight_decay."
        },
    )
    layer_decay: float | None = field(
        default=None,
        metadata={
            "help": "Layer-wise lr decay: layer i of L gets lr x layer_decay^(L+1-i); embeddings the smallest, "
            "heads the full rate (BEiT / VideoMAE fine-tuning). Empty or 1.0: off."
        },
    )
    model_ema: bool = field(
        default=False,
        metadata={
            "help": "Keep an exponential moving average of the weights (timm ModelEmaV3). When on, evaluation, "
            "best/ and final/ use the averaged weights."
        },
    )
    model_ema_decay: float = field(default=0.9999, metadata={"help": "EMA decay per optimizer step."})
    class_weights: str | None = field(
        default=None,
        metadata={
            "help": "Detection only: weights of the cross-entropy per class. `balanced`: n_train / "
            "(n_classes x count of the class) from the train split; or a comma-separated list; empty: none."
        },
    )
    num_plot_examples: int = field(
        default=4, metadata={"help": "Specialization only: how many validation clips to plot reconstructed."}
    )


ARGUMENT_CLASSES = (ModelArguments, DataArguments, RecipeArguments, TrainingArguments)

GIVEN_IN_FILE = 1  # `ParsedArguments.given` levels: a key of the YAML file ...
GIVEN_AS_FLAG = 2  # ... or a command-line flag (which overrides the file)


@dataclass
class ParsedArguments:
    """The four argument groups of one run.

    ``given``: argument name -> where the user gave it (`GIVEN_IN_FILE`, `GIVEN_AS_FLAG`); absent: a default.
    ``notes``: what the parse settled on the user's behalf (a strategy a step count brought, a metric's
    direction), for the run to log.
    """

    model: ModelArguments
    data: DataArguments
    recipe: RecipeArguments
    training: TrainingArguments
    given: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stage: str | None = None  # the stage parsed for (`parse_stage_arguments`), for the checks that depend on it

    def groups(self) -> dict[str, Any]:
        """The groups by name, in parsing order."""
        return {"model": self.model, "data": self.data, "recipe": self.recipe, "training": self.training}


class ArgumentFileError(ValueError):
    """A YAML argument file that cannot be used; the message names the file and the key."""


class ArgumentValueError(ValueError):
    """Argument values no run can use; the message names each flag and its value."""


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """transformers' "(default: ...)" after every argument, and an epilog printed with its own line breaks."""


def make_parser(epilog: str | None = None, description: str | None = None) -> HfArgumentParser:
    """A parser for every argument of every group; `--help` opens with `description` and the usage with the
    optional YAML file, documents this project's groups, then transformers' TrainingArguments, then prints
    `epilog`."""
    parser = HfArgumentParser(
        ARGUMENT_CLASSES,
        epilog=epilog,
        description=description,
        usage="%(prog)s [CONFIG.yaml] [--flag value ...]",
        formatter_class=_HelpFormatter,
    )
    # argparse prints its default group ("options": -h and TrainingArguments' ~150 flags) first; this project's
    # own groups come first instead
    default = parser._optionals
    default.title = "transformers TrainingArguments (and -h)"
    parser._action_groups.remove(default)
    parser._action_groups.append(default)
    return parser


def _known_keys(parser: HfArgumentParser) -> set[str]:
    return {action.dest for action in parser._actions if action.dest != "help"}


def read_yaml_arguments(path: str | Path, known: set[str]) -> dict[str, Any]:
    """The mapping in the YAML file `path`, checked against the `known` argument names."""
    path = Path(path)
    if not path.is_file():
        raise ArgumentFileError(f"{path}: argument file not found")
    try:
        values = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise ArgumentFileError(f"{path}: not valid YAML ({error})") from error
    if not isinstance(values, dict):
        raise ArgumentFileError(f"{path}: expected a mapping of argument: value, got {type(values).__name__}")
    unknown = sorted(set(values) - known)
    if unknown:
        raise ArgumentFileError(
            f"{path}: unknown key {unknown[0]!r}" + (f" (and {unknown[1:]})" if unknown[1:] else "") + "; "
            "every key must be an argument of the training script (run it with --help for the list)"
        )
    return values


def _flag_keys(parser: HfArgumentParser, argv: list[str]) -> set[str]:
    """The argument names the flags of `argv` set (``--key``, ``--key=value``, ``--key-name``, ``--no_key``)."""
    keys = set()
    for token in argv:
        if token.startswith("--"):
            action = parser._option_string_actions.get(token.split("=", 1)[0])
            if action is not None and action.dest != "help":
                keys.add(action.dest)
    return keys


def parse_arguments(
    argv: list[str],
    defaults: dict[str, Any] | None = None,
    epilog: str | None = None,
    settled: dict[str, Any] | None = None,
    description: str | None = None,
) -> ParsedArguments:
    """Parse `argv`: an optional YAML file first, then flags that override it.

    `defaults` (a stage's, `stage_defaults`) sit between the dataclass defaults and the file; `settled` (what
    `settle_companions` derived) sits above the file, below the flags; `description` opens `--help` and
    `epilog` closes it.
    """
    parser = make_parser(epilog, description)
    known = _known_keys(parser)
    if defaults:
        parser.set_defaults(**defaults)
    given: dict[str, int] = {}
    if _config_file(argv) is not None:
        file_values = read_yaml_arguments(argv[0], known)
        parser.set_defaults(**file_values)
        given.update(dict.fromkeys(file_values, GIVEN_IN_FILE))
        argv = argv[1:]
    if settled:
        parser.set_defaults(**settled)
    given.update(dict.fromkeys(_flag_keys(parser, argv), GIVEN_AS_FLAG))
    try:
        model, data, recipe, training, remaining = parser.parse_args_into_dataclasses(
            args=argv, return_remaining_strings=True, look_for_args_file=False
        )
    except ValueError as error:  # TrainingArguments' own checks (__post_init__): a message, not a traceback
        raise ArgumentValueError(f"invalid argument(s): {error}") from error
    if remaining:
        parser.error(f"unrecognised arguments: {' '.join(remaining)}")
    return ParsedArguments(model=model, data=data, recipe=recipe, training=training, given=given)


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)  # transformers' strategy enums -> their string


def settle_companions(task: TaskSpec, args: ParsedArguments) -> tuple[dict[str, Any], list[str]]:
    """Values implied by what the user gave, and a note for each: ({name: value}, [notes]).

    A step count brings the `steps` strategy, and a best-model metric its direction, unless the companion was
    given at the same or a higher level (see the module docstring).
    """
    changes: dict[str, Any] = {}
    notes: list[str] = []
    training = args.training

    def level(key: str) -> int:
        return args.given.get(key, 0)

    for kind in ("eval", "save", "logging"):
        steps_key, strategy_key = f"{kind}_steps", f"{kind}_strategy"
        current = _plain(getattr(training, strategy_key))
        if level(steps_key) > level(strategy_key) and current != "steps":
            changes[strategy_key] = "steps"
            notes.append(
                f"--{steps_key} {getattr(training, steps_key)} given: {strategy_key} is steps (it was {current}, "
                f"with which --{steps_key} does nothing)"
            )
    metric = training.metric_for_best_model
    if metric is not None and level("metric_for_best_model") > level("greater_is_better"):
        wanted = task.greater_is_better_for(metric)
        if training.greater_is_better != wanted:
            changes["greater_is_better"] = wanted
            notes.append(
                f"--metric_for_best_model {metric}: best/ keeps the {'highest' if wanted else 'lowest'} value "
                f"(greater_is_better={wanted}; pass --greater_is_better to choose otherwise)"
            )
    return changes, notes


def validate_arguments(args: ParsedArguments) -> None:
    """Refuse values no run can use, each named with its flag and value as given (before any scaling).

    Raises:
        ArgumentValueError: listing every such value.
    """
    model, data, recipe, training = args.model, args.data, args.recipe, args.training
    problems: list[str] = []

    def check(ok: bool, name: str, value: Any, why: str) -> None:
        if not ok:
            problems.append(f"--{name} {value}: {why}")

    def in_range(value: float | None, low: float, high: float, low_open: bool, high_open: bool) -> bool:
        if value is None:
            return True
        if not math.isfinite(value):
            return False
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        return above and below

    lr = training.learning_rate
    check(math.isfinite(lr) and lr > 0, "learning_rate", lr, "the learning rate must be a positive number")
    if training.max_steps == 0:
        problems.append(
            "--max_steps 0: trains nothing; give the number of optimizer steps, or -1 to train "
            "--num_train_epochs epochs"
        )
    elif training.max_steps < 0:
        epochs = training.num_train_epochs
        check(epochs > 0, "num_train_epochs", epochs, "must be positive (or give --max_steps N)")
    check(
        recipe.warmup_epochs is None or recipe.warmup_epochs >= 0, "warmup_epochs", recipe.warmup_epochs,
        "must be 0 or more",
    )  # fmt: skip
    check(training.weight_decay >= 0, "weight_decay", training.weight_decay, "must be 0 or more")
    check(
        recipe.weight_decay_end is None or recipe.weight_decay_end >= 0, "weight_decay_end",
        recipe.weight_decay_end, "must be 0 or more",
    )  # fmt: skip
    check(
        in_range(recipe.layer_decay, 0, 1, True, False),
        "layer_decay",
        recipe.layer_decay,
        "must be in (0, 1]",
    )
    check(
        in_range(recipe.model_ema_decay, 0, 1, True, True), "model_ema_decay", recipe.model_ema_decay,
        "must be in (0, 1)",
    )  # fmt: skip
    check(
        in_range(training.label_smoothing_factor, 0, 1, False, True), "label_smoothing_factor",
        training.label_smoothing_factor, "must be in [0, 1)",
    )  # fmt: skip
    check(
        in_range(model.drop_path_rate, 0, 1, False, True), "drop_path_rate", model.drop_path_rate,
        "must be in [0, 1)",
    )  # fmt: skip
    check(in_range(model.mask_ratio, 0, 1, True, True), "mask_ratio", model.mask_ratio, "must be in (0, 1)")
    rules = DETECTION_THRESHOLD_RULES
    check(
        model.detection_threshold_rule is None or model.detection_threshold_rule in rules,
        "detection_threshold_rule", model.detection_threshold_rule, f"must be one of {', '.join(rules)}",
    )  # fmt: skip
    for name in ("heatmap_target_sigma", "heatmap_label_noise"):
        check(in_range(getattr(model, name), 0, math.inf, False, True), name, getattr(model, name),
              "must be 0 (off) or more px")  # fmt: skip
    check(
        in_range(model.decoder_mask_ratio, 0, 1, False, True), "decoder_mask_ratio", model.decoder_mask_ratio,
        "must be in [0, 1)",
    )  # fmt: skip
    for name in ("max_train_samples", "max_eval_samples"):
        value = getattr(data, name)
        check(value is None or value >= 1, name, value, "must be 1 or more (leave it out for every clip)")
    check(data.train_max_shift is None or data.train_max_shift >= 0, "train_max_shift", data.train_max_shift,
          "must be 0 (off) or more")  # fmt: skip
    check(data.train_shift_margin >= 0, "train_shift_margin", data.train_shift_margin, "must be 0 or more")
    for name in ("per_device_train_batch_size", "per_device_eval_batch_size", "gradient_accumulation_steps"):
        check(getattr(training, name) >= 1, name, getattr(training, name), "must be 1 or more")
    check(training.max_grad_norm >= 0, "max_grad_norm", training.max_grad_norm, "must be 0 (off) or more")
    for name in ("adam_beta1", "adam_beta2"):
        check(
            in_range(getattr(training, name), 0, 1, False, True),
            name,
            getattr(training, name),
            "must be in [0, 1)",
        )
    check(training.adam_epsilon > 0, "adam_epsilon", training.adam_epsilon, "must be positive")
    problems += adapter_problems(args)
    problems += config_override_problems(model)
    if problems:
        raise ArgumentValueError("invalid argument(s); nothing was built:\n  " + "\n  ".join(problems))


def config_override_problems(model_args: ModelArguments) -> list[str]:
    """`--config_overrides` keys that are no setting of `MedicaneVideoMAEConfig` (one line each, with the closest
    names): a config takes any keyword and would carry a misspelt key along silently, changing nothing."""
    import difflib

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig

    try:
        overrides = config_overrides(model_args)
    except ValueError as error:
        return [str(error)]
    known = set(MedicaneVideoMAEConfig().to_dict())
    problems = []
    for key in overrides:
        if key not in known:
            close = difflib.get_close_matches(key, sorted(known), n=3)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            problems.append(f"--config_overrides {key}: no such setting of MedicaneVideoMAEConfig{hint}")
    return problems


FINE_TUNING_STAGES = ("detection", "tracking")
"""The stages an adapter (--freeze_backbone, --lora_rank) fine-tunes: they start from an encoder and add a head."""


def adapter_problems(args: ParsedArguments) -> list[str]:
    """Why `--freeze_backbone` / `--lora_*` cannot be used as given (one line each; [] when they can)."""
    model = args.model
    lora = model.lora_rank is not None
    wanted = [name for name, on in (("freeze_backbone", model.freeze_backbone), ("lora_rank", lora)) if on]
    problems = []
    if not lora:
        for name in ("lora_alpha", "lora_target_modules"):
            if getattr(model, name) not in (None, "", []):
                problems.append(f"--{name} {getattr(model, name)}: LoRA is off; give --lora_rank R with it")
        if model.lora_dropout != 0.0:
            problems.append(f"--lora_dropout {model.lora_dropout}: LoRA is off; give --lora_rank R with it")
    if not wanted:
        return problems
    flag = f"--{wanted[0]}" + (f" {model.lora_rank}" if wanted[0] == "lora_rank" else "")
    if len(wanted) == 2:
        problems.append(
            f"--freeze_backbone with --lora_rank {model.lora_rank}: LoRA already keeps the encoder's weights as "
            "loaded (it trains its low-rank updates and the head); give one of the two"
        )
    if args.stage is not None and args.stage not in FINE_TUNING_STAGES:
        problems.append(
            f"{flag}: the {args.stage} stage trains the encoder itself; adapters fine-tune "
            f"{' and '.join(FINE_TUNING_STAGES)} from a trained encoder"
        )
    elif model.model_name_or_path is None:
        problems.append(f"{flag}: adapts a trained encoder; give it with --model_name_or_path (e.g. a "
                        "specialization run's best/)")  # fmt: skip
    if lora:
        if model.lora_rank <= 0:
            problems.append(f"--lora_rank {model.lora_rank}: must be 1 or more")
        if model.lora_alpha is not None and not (math.isfinite(model.lora_alpha) and model.lora_alpha > 0):
            problems.append(f"--lora_alpha {model.lora_alpha}: must be a positive number")
        if not (math.isfinite(model.lora_dropout) and 0 <= model.lora_dropout < 1):
            problems.append(f"--lora_dropout {model.lora_dropout}: must be in [0, 1)")
    return problems


def stage_defaults(task: TaskSpec, quick: bool) -> dict[str, Any]:
    """Argument defaults of a stage: its recipe; for the no-argument run, its preset's departures from the recipe
    and the short schedule."""
    defaults = {
        **task.recipe,
        **device_defaults(),
        "metric_for_best_model": task.metric_for_best_model,
        "greater_is_better": task.greater_is_better,
        "output_dir": str(task.output_dir()),
    }
    if quick:
        preset = task.quick_run.get("preset", "tiny")
        # the no-argument run is that preset's recipe (what configs/<stage>/<preset>.yaml states), shortened
        defaults.update(task.preset_recipe.get(preset, {}))
        defaults.update(task.quick_run)
        defaults["output_dir"] = str(task.default_output_dir(preset))
    return defaults


def device_defaults() -> dict[str, Any]:
    """`use_cpu` when the launcher asks for the CPU (ACCELERATE_USE_CPU), or starts several processes on a
    machine without GPUs.

    Without it, processes started by `accelerate launch` on a CPU-only machine do not join one process
    group: each would train alone on the whole data.
    """
    asked = os.environ.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    several = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return {"use_cpu": True} if asked or (several and not torch.cuda.is_available()) else {}


def no_argument_changes(task: TaskSpec) -> dict[str, Any]:
    """What a run with no arguments uses where a run with flags only (the recipe) has another default."""
    parser = make_parser()
    parser.set_defaults(**stage_defaults(task, quick=False))
    changes = {
        key: value
        for key, value in stage_defaults(task, quick=True).items()
        if parser.get_default(key) != value
    }
    return dict(sorted(changes.items()))


HELP_WIDTH = 100


def _wrapped(text: str, indent: str = "") -> list[str]:
    # argparse prints the epilog as given (RawDescriptionHelpFormatter): wrap it here, at the help's width
    return textwrap.wrap(text, width=HELP_WIDTH, initial_indent=indent, subsequent_indent=indent)


def help_epilog(task: TaskSpec, config_file: str | None = None) -> str:
    """The closing lines of a stage's `--help`: where the defaults shown come from and what other runs use.

    The no-argument paragraph lists `no_argument_changes` as ``key=value`` (a test reads it back against
    what such a run parses to).
    """
    if config_file is None:
        source = (
            f"the {task.name} recipe (medicane_hf/tasks.py), what a run with flags and no config file uses"
        )
    else:
        source = f"{config_file}, and the {task.name} recipe (medicane_hf/tasks.py) for what it leaves out"
    lines = _wrapped(f"Defaults above: {source}.")
    lines += [
        "",
        *_wrapped("A run with no arguments at all (the embedded default: synthetic basin, tiny model) uses:"),
    ]
    changes = no_argument_changes(task)
    lines += _wrapped(" ".join(f"{key}={value}" for key, value in changes.items()), indent="  ")
    if task.starts_from is not None:
        start = TASKS[task.starts_from].default_output_dir() / "best"
        lines += _wrapped(f"It starts from {start} when that exists.", indent="  ")
    lines += [""]
    lines += _wrapped(
        f"A config file given first (configs/{task.name}/<preset>.yaml) makes its values the defaults; "
        "put --help after it to see them:"
    )
    lines += [f"  scripts/{task.script} configs/{task.name}/small.yaml --help"]
    if task.preset_recipe:
        departures = "; ".join(
            f"{preset}: " + ", ".join(f"{key}={value}" for key, value in departing.items())
            for preset, departing in task.preset_recipe.items()
        )
        lines += _wrapped(f"Backbone sizes whose config files depart from the recipe: {departures}.")
    lines += _wrapped(
        "With scale_lr=True the rate applied is learning_rate x total batch / 256 (per-device batch x "
        "processes x gradient accumulation); the run writes it to effective_settings.json."
    )
    return "\n".join(lines)


def help_description(task: TaskSpec) -> str:
    """The opening lines of a stage's `--help`: what the script does and the two ways to run it."""
    default_dir = task.default_output_dir()
    lines = _wrapped(f"Train the {task.name} stage. {task.description}")
    lines += ["", "Two ways to run it:"]
    lines += [f"  python scripts/{task.script}"]
    lines += _wrapped(
        f"no arguments: the embedded default (a synthetic basin, the tiny model, {task.quick_run['max_steps']} "
        f"steps) into {default_dir}/; it shows the pipeline works, not a useful model.",
        indent="      ",
    )
    lines += [
        "  accelerate launch --config_file accelerate_configs/<cfg>.yaml \\",
        f"      scripts/{task.script} [configs/{task.name}/<preset>.yaml] [--flag value ...]",
    ]
    lines += _wrapped(
        "a real run: an optional YAML file first (its values become the defaults), then flags that override "
        "it; rerun the same command to resume.",
        indent="      ",
    )
    lines += ["", *_wrapped("This project's arguments come first, then transformers' TrainingArguments.")]
    return "\n".join(lines)


def _config_file(argv: list[str]) -> str | None:
    """The YAML argument file when `argv` starts with one (the rule `parse_arguments` applies)."""
    if argv and not argv[0].startswith("-") and argv[0].endswith((".yaml", ".yml")):
        return argv[0]
    return None


def parse_stage_arguments(task: TaskSpec, argv: list[str]) -> ParsedArguments:
    """The arguments a training script of `task` runs with, from its command line `argv` (nothing trains).

    No arguments at all: the recipe plus the stage's short no-argument run; else the recipe, then an optional
    YAML file first, then flags. `--help` prints every argument with the default this would use.
    """
    epilog = help_epilog(task, _config_file(argv))
    description = help_description(task)
    defaults = stage_defaults(task, quick=len(argv) == 0)
    args = parse_arguments(argv, defaults, epilog, description=description)
    changes, notes = settle_companions(task, args)
    if changes:
        # parsed again rather than patched, so that TrainingArguments checks the settled values as its own
        args = parse_arguments(argv, defaults, epilog, settled=changes, description=description)
    args.notes = notes
    args.stage = task.name
    return args


def config_overrides(model_args: ModelArguments) -> dict[str, Any]:
    """`--config_overrides` as a dict; values are parsed as YAML scalars (numbers, booleans, strings)."""
    raw = model_args.config_overrides
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        return dict(raw)
    overrides: dict[str, Any] = {}
    for item in str(raw).split(","):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--config_overrides: expected key=value, got {item!r}")
        overrides[key.strip()] = yaml.safe_load(value)
    return overrides


def arguments_as_dict(args: ParsedArguments) -> dict[str, Any]:
    """Every init argument of every group, flat (the form a YAML argument file takes)."""
    flat: dict[str, Any] = {}
    for group in args.groups().values():
        # TrainingArguments.to_dict turns its objects (accelerator config, enums) back into plain values
        # and hides tokens.
        values = group.to_dict() if isinstance(group, TrainingArguments) else dataclasses.asdict(group)
        for f in dataclasses.fields(group):
            if f.init and not f.name.startswith("_") and f.name in values:
                value = values[f.name]
                if isinstance(value, str) and value.startswith("<") and value.endswith(">"):
                    continue  # a hidden secret: never written, never read back
                flat[f.name] = jsonable(value)
    return flat


def arguments_yaml(values: dict[str, Any]) -> str:
    """The text of a `training_arguments.yaml` holding `values` (`arguments_as_dict`)."""
    header = "# Resolved arguments of this run; rerun with: train_<stage>.py THIS_FILE [--flag value ...]\n"
    return header + yaml.safe_dump(values, sort_keys=True)


def save_arguments(
    args: ParsedArguments,
    folder: str | Path,
    effective: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> None:
    """Write `training_arguments.yaml` (re-runnable: pass it back as the YAML file) and, when given,
    `effective_settings.json` (what the run derived: effective lr, total batch, warmup steps, world size).

    `values`: the arguments as the run was given them (`arguments_as_dict` before the run derived its
    effective learning rate and warmup); default: `args` as they are now.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "training_arguments.yaml").write_text(
        arguments_yaml(arguments_as_dict(args) if values is None else values)
    )
    if effective is not None:
        (folder / "effective_settings.json").write_text(
            json.dumps(jsonable(effective), indent=2, sort_keys=True)
        )
