"""The entry point of all three stages: ``main(stage, argv)``.

``scripts/train_specialization.py``, ``train_classification.py`` and
``train_tracking.py`` call it; ``accelerate launch`` runs it once per process.
The order is the one people expect from transformers' examples: arguments,
logging, data, model, trainer, train (resuming), save, test, figures.

Output folder::

    training_arguments.yaml, effective_settings.json   resolved arguments and what the run derived
    log.jsonl                                         train loss / lr records and every evaluation
    runs/                                             TensorBoard
    checkpoint-N/                                     resumable state (complete ones carry a marker)
    best/  final/                                     save_pretrained folders (code, weights, video processor)
                                                      with metrics.json and a model card (README.md)
    test_metrics.json, *.png                          the best model on the test split, figures

With ``--push_to_hub --hub_model_id ORG/NAME [--hub_private_repo]`` the chosen model folder (best/, else final/) is
pushed once the run has finished (`medicane_hf.hub.push`); the Trainer itself pushes nothing.

Rerunning into the same folder continues the run (`medicane_hf.training.resume`): only with the same
run-shaping arguments, from the newest checkpoint that passes its check, and not at all once it is finished.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import logging
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from accelerate import PartialState
from torch.utils.data import Dataset, Subset
from transformers import TrainerCallback, set_seed
from transformers.utils import logging as hf_logging

from medicane_hf.data.dataset_arrays import dataset_targets
from medicane_hf.jsonable import jsonable
from medicane_hf.processing_medicane import ContractMismatchError, DataContract, read_dataset_contract
from medicane_hf.tasks import TASKS, FigureInputs, MetricContext, TaskSpec, get_task
from medicane_hf.training.adapters import ADAPTER_DIR, load_saved_weights, parameter_counts
from medicane_hf.training.arguments import (
    ArgumentFileError,
    ArgumentValueError,
    ParsedArguments,
    arguments_as_dict,
    arguments_yaml,
    parse_stage_arguments,
    save_arguments,
    validate_arguments,
)
from medicane_hf.training.callbacks import LOG_FILE, JsonlLogCallback, WeightDecayScheduleCallback
from medicane_hf.training.checkpoints import newest_resumable_checkpoint, remove_incomplete_checkpoints
from medicane_hf.training.class_weights import parse_class_weights
from medicane_hf.training.models import EncoderNotLoadedError, ModelSourceError, build_model
from medicane_hf.training.optim import scaled_learning_rate
from medicane_hf.training.resume import (
    TEST_METRICS_FILE,
    CheckpointUnusableError,
    ResumeConflictError,
    ResumeDecision,
    apply_decision,
    decide_resume,
)
from medicane_hf.training.seeding import PerSampleSeeded, SetEpochCallback
from medicane_hf.training.trainer import MedicaneTrainer, NonFiniteLossError, save_model_folder

logger = logging.getLogger("medicane_hf.training")


class DatasetTooSmallError(ValueError):
    """The train split cannot fill one optimizer step."""


class DiskFullError(RuntimeError):
    """A write of the run failed for lack of space; the message names the last complete checkpoint."""


# errno values of a write that failed for lack of space: the device, or the user's quota
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}


@dataclass
class RunPlan:
    """What the run derived from its arguments and the data (saved as `effective_settings.json`)."""

    world_size: int
    total_train_batch_size: int
    base_learning_rate: float
    learning_rate: float
    updates_per_epoch: int
    total_steps: int
    warmup_steps: int
    num_train_clips: int
    num_validation_clips: int
    num_test_clips: int
    dataset_dir: str
    metric_for_best_model: str | None = None
    greater_is_better: bool | None = None
    resumed_from: str | None = None
    # what the optimizer trains: {"trainable", "total", "trainable_share"} (adapters.parameter_counts)
    parameters: dict[str, Any] = field(default_factory=dict)
    # what the run settled or changed on the user's behalf, each said in the log when it happened
    notes: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------- arguments


def check_processes_joined(args: ParsedArguments) -> None:
    """Refuse to go on when the launcher started several processes that did not form one group."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if launched > 1 and args.training.world_size != launched:
        raise RuntimeError(
            f"{launched} processes were launched but they did not join one process group (world size "
            f"{args.training.world_size}); on a CPU-only machine pass --use_cpu or launch with "
            "ACCELERATE_USE_CPU=1 (see accelerate_configs/cpu_ddp.yaml)"
        )


def _setup_logging(args: ParsedArguments) -> None:
    level = logging.INFO if args.training.should_log else logging.WARNING
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=level, force=True)
    # transformers at INFO prints every config and weight file it touches; like its own examples, follow
    # --log_level (default "passive": warnings only) so that our own INFO lines stay readable.
    hf_logging.set_verbosity(args.training.get_process_log_level())
    hf_logging.enable_default_handler()
    hf_logging.enable_explicit_format()


# ---------------------------------------------------------------------------------------------- data


def _spread_subset(dataset: Dataset, limit: int | None) -> Dataset:
    """`limit` clips evenly spread over `dataset` (clips are in time order: the first N would be one storm)."""
    if limit is None or limit >= len(dataset):
        return dataset
    return Subset(dataset, np.linspace(0, len(dataset) - 1, limit).round().astype(int).tolist())


def load_data(task: TaskSpec, args: ParsedArguments) -> tuple[Path, DataContract, dict[str, Dataset]]:
    """(dataset folder, data contract, {train, validation, test} datasets)."""
    from medicane_hf.data.datasets import load_clip_datasets

    if args.data.dataset_dir:
        dataset_dir = Path(args.data.dataset_dir)
    else:
        from medicane_hf.data.synthetic.default import ensure_default_dataset

        dataset_dir = Path(ensure_default_dataset())
        logger.warning("No --dataset_dir: using the embedded default synthetic basin at %s", dataset_dir)
    contract = read_dataset_contract(dataset_dir)
    splits = load_clip_datasets(
        dataset_dir,
        task.name,
        ("train", "validation", "test"),
        train_max_shift=args.data.train_max_shift,
        train_rot90=args.data.train_rot90,
        train_shift_margin=args.data.train_shift_margin,
    )
    splits["train"] = _spread_subset(splits["train"], args.data.max_train_samples)
    for name in ("validation", "test"):
        splits[name] = _spread_subset(splits[name], args.data.max_eval_samples)
    for name, dataset in splits.items():
        if len(dataset) == 0:
            raise DatasetTooSmallError(
                f"{dataset_dir}: the {name} split of the {task.name} data has no clips"
            )
    return dataset_dir, contract, splits


def choose_selection_metric(
    task: TaskSpec, args: ParsedArguments, contract: DataContract, validation: Dataset
) -> str | None:
    """Keep the best-model metric when the validation split can measure it; else switch to the validation loss
    (lower is better) and return why (`TaskSpec.selection_problem`), which the run logs and records."""
    training = args.training
    metric = training.metric_for_best_model
    if task.selection_problem is None or metric is None:
        return None
    context = MetricContext(class_names=list(contract.class_names))
    problem = task.selection_problem(metric, validation, context)
    if problem is None:
        return None
    training.metric_for_best_model, training.greater_is_better = "loss", False
    return (
        f"best/ is chosen on the validation loss, not {metric}: {problem}. Rebuild the dataset with Medicane "
        "storms in validation (build-dataset --val-storms), or give --max_eval_samples more clips"
    )


def check_train_size(num_train: int, args: ParsedArguments) -> int:
    """The global batch (per-device x processes x accumulation); an error if the train split cannot fill it."""
    training = args.training
    global_batch = (
        training.per_device_train_batch_size * training.world_size * training.gradient_accumulation_steps
    )
    if num_train < global_batch:
        raise DatasetTooSmallError(
            f"the train split has {num_train} clips, fewer than one optimizer step needs "
            f"({training.per_device_train_batch_size} per device x {training.world_size} processes x "
            f"{training.gradient_accumulation_steps} accumulation = {global_batch}); lower "
            "--per_device_train_batch_size or --gradient_accumulation_steps, or use more data"
        )
    return global_batch


def plan_run(task: TaskSpec, args: ParsedArguments, splits: dict[str, Dataset], dataset_dir: Path) -> RunPlan:
    """Scale the lr, turn warmup epochs into steps, write both into the TrainingArguments; return the plan."""
    training, recipe = args.training, args.recipe
    global_batch = check_train_size(len(splits["train"]), args)
    batches_per_epoch = len(splits["train"]) // (training.per_device_train_batch_size * training.world_size)
    if not training.dataloader_drop_last:
        batches_per_epoch = math.ceil(
            len(splits["train"]) / (training.per_device_train_batch_size * training.world_size)
        )
    updates_per_epoch = max(batches_per_epoch // training.gradient_accumulation_steps, 1)
    base_lr = training.learning_rate
    if recipe.scale_lr:
        training.learning_rate = scaled_learning_rate(base_lr, global_batch)
    if recipe.warmup_epochs is not None and training.warmup_steps == 0:
        training.warmup_steps = int(round(recipe.warmup_epochs * updates_per_epoch))
    total_steps = (
        training.max_steps
        if training.max_steps > 0
        else math.ceil(training.num_train_epochs * updates_per_epoch)
    )
    notes = []
    warmup = training.get_warmup_steps(total_steps)
    if warmup > total_steps:
        # a warmup past the end keeps the learning rate near zero for the whole run (5 epochs of the recipe
        # with --max_steps 6: 2,125 steps, lr ~9e-9)
        notes.append(
            f"warmup of {warmup} steps is longer than the run's {total_steps} steps: cut to {total_steps}"
        )
        logger.warning("The %s", notes[-1])
        training.warmup_steps = total_steps
    plan = RunPlan(
        world_size=training.world_size,
        total_train_batch_size=global_batch,
        base_learning_rate=base_lr,
        learning_rate=training.learning_rate,
        updates_per_epoch=updates_per_epoch,
        total_steps=total_steps,
        warmup_steps=training.get_warmup_steps(total_steps),
        num_train_clips=len(splits["train"]),
        num_validation_clips=len(splits["validation"]),
        num_test_clips=len(splits["test"]),
        dataset_dir=str(dataset_dir),
        metric_for_best_model=training.metric_for_best_model,
        greater_is_better=training.greater_is_better,
        notes=notes,
    )
    logger.warning(
        "Effective learning rate %.4g (%s), total batch %d (%d process(es)), %d updates per epoch, %d warmup steps",
        plan.learning_rate,
        f"base {base_lr:.4g} x {global_batch}/256" if recipe.scale_lr else "not scaled",
        global_batch,
        plan.world_size,
        updates_per_epoch,
        plan.warmup_steps,
    )
    return plan


# ---------------------------------------------------------------------------------------------- trainer


def metric_context(task: TaskSpec, contract: DataContract, splits: dict[str, Dataset]) -> MetricContext:
    """Class names, grid and (tracking) the train-mean baseline for the stage's metrics."""
    from medicane_hf.data.geo import SeviriGrid

    context = MetricContext(class_names=list(contract.class_names), grid=SeviriGrid.from_dict(contract.grid))
    if task.train_mean_baseline:
        context.baseline_xy = dataset_targets(splits["train"]).mean(axis=0)
    return context


DEFAULT_OUTPUT_ROOT = Path(
    "outputs"
)  # where configs/ and the recipes put every run (tasks.TaskSpec.output_dir)


def resolve_under_output_root(model_path: str, args: ParsedArguments) -> str:
    """`model_path` as given, or, when it is a missing ``outputs/...`` path (what configs/ name, e.g.
    ``outputs/specialization-small/best``) and the run writes under another root (``--output_dir ROOT/run``),
    the same path under ROOT when that exists there: the stages of one pipeline share their output root."""
    given = Path(model_path)
    if given.is_absolute() or given.exists() or given.parts[:1] != DEFAULT_OUTPUT_ROOT.parts:
        return model_path
    root = Path(args.training.output_dir).parent
    candidate = root / given.relative_to(DEFAULT_OUTPUT_ROOT)
    if root == DEFAULT_OUTPUT_ROOT or not candidate.exists():
        return model_path
    logger.warning(
        "--model_name_or_path %s is not here; using %s, under this run's output root", given, candidate
    )
    return str(candidate)


def prepare_output_dir(
    task: TaskSpec,
    args: ParsedArguments,
    recorded: dict[str, Any],
    total_steps: int,
    effective: dict[str, Any] | None = None,
) -> ResumeDecision:
    """Decide what this run does with its output folder (`medicane_hf.training.resume`) and act on it.

    Every process decides from the same files (so all raise, or none does); the main process then removes
    incomplete checkpoints, sets damaged ones aside and trims the log, and the others wait for it.
    """
    output_dir = Path(args.training.output_dir)
    given = args.training.resume_from_checkpoint
    state = PartialState()
    if args.training.should_save and not given:
        remove_incomplete_checkpoints(output_dir)
    state.wait_for_everyone()
    decision = decide_resume(output_dir, recorded, total_steps, f"scripts/{task.script}", given, effective)
    if args.training.should_save:
        apply_decision(decision, output_dir)
    state.wait_for_everyone()
    return decision


def make_trainer(
    task: TaskSpec,
    args: ParsedArguments,
    model: torch.nn.Module,
    splits: dict[str, Dataset],
    context: MetricContext,
    callbacks: list[TrainerCallback] | None = None,
    recorded: dict[str, Any] | None = None,
    effective: dict[str, Any] | None = None,
) -> MedicaneTrainer:
    """The stage's trainer with the recipe's callbacks; `recorded` (default: `args` now) is the arguments file
    and `effective` the derived settings written beside every checkpoint and model folder (what a rerun
    compares before resuming)."""
    output_dir = Path(args.training.output_dir)
    recipe = args.recipe
    all_callbacks: list[TrainerCallback] = []
    if recipe.weight_decay_end is not None:
        all_callbacks.append(WeightDecayScheduleCallback(args.training.weight_decay, recipe.weight_decay_end))
    all_callbacks.append(JsonlLogCallback(output_dir / LOG_FILE))
    train_dataset = PerSampleSeeded(splits["train"], args.training.seed)
    all_callbacks.append(SetEpochCallback(train_dataset))
    all_callbacks.extend(callbacks or [])
    metrics_fn = None
    if task.metrics_fn is not None:
        metrics_fn = functools.partial(task.metrics_fn, context=context)
    saved_arguments = arguments_yaml(arguments_as_dict(args) if recorded is None else recorded)
    return MedicaneTrainer(
        model=model,
        args=args.training,
        train_dataset=train_dataset,
        eval_dataset=splits["validation"],
        callbacks=all_callbacks,
        layer_decay=recipe.layer_decay,
        ema_decay=recipe.model_ema_decay if recipe.model_ema else None,
        predictions_fn=task.predictions_fn,
        metrics_fn=metrics_fn,
        best_dir=output_dir / "best",
        extra_files={
            "training_arguments.yaml": saved_arguments,
            **(
                {"effective_settings.json": json.dumps(jsonable(effective), indent=2, sort_keys=True)}
                if effective
                else {}
            ),
        },
    )


# ---------------------------------------------------------------------------------------------- the end of a run


def _load_weights_from(model: torch.nn.Module, folder: Path, model_class: type) -> None:
    load_saved_weights(model, folder, model_class)  # a LoRA model takes the folder's adapter


def calibrate_best(
    task: TaskSpec,
    trainer: MedicaneTrainer,
    model: torch.nn.Module,
    validation: Dataset,
    context: MetricContext,
) -> dict[str, Any]:
    """Choose the stage's calibration (`TaskSpec.calibrate_fn`) on the validation split with the best model, set it
    in the model's config and in `context` (so the test metrics use it); returns the settings chosen ({} if none).

    The validation predictions are logged like any evaluation, prefixed ``best_validation``.
    """
    if task.calibrate_fn is None or len(validation) == 0:
        return {}
    _, prediction = trainer.evaluate_with_prediction(validation, metric_key_prefix="best_validation")
    if prediction is None:
        return {}
    chosen = task.calibrate_fn(prediction, context, model.config)
    if not chosen:
        logger.warning(
            "Calibration: the validation split cannot choose one (a class is missing); the defaults stay"
        )
    for key, value in chosen.items():
        setattr(model.config, key, value)
        if hasattr(context, key):
            setattr(context, key, value)
    if chosen:
        logger.warning("Calibrated on validation and saved with best/: %s", chosen)
    return chosen


def finish(
    task: TaskSpec,
    trainer: MedicaneTrainer,
    splits: dict[str, Dataset],
    num_plot_examples: int = 4,
    context: MetricContext | None = None,
) -> dict[str, Any]:
    """Save `final/`, calibrate the best model on validation (saved in ``best/config.json``), evaluate it once on
    the test split, write metrics and figures. `final/` keeps the uncalibrated defaults."""
    args = trainer.args
    output_dir = Path(args.output_dir)
    unwrapped = trainer.accelerator.unwrap_model(trainer.model)
    if trainer.ema is not None:
        # With EMA on, the averaged weights are what evaluation measured: they become the model.
        unwrapped.load_state_dict(trainer.ema.module.state_dict())
        trainer.ema = None
    final_metrics = {"global_step": trainer.state.global_step, "best_metric": trainer.state.best_metric}
    if args.should_save:
        save_model_folder(unwrapped, output_dir / "final", final_metrics, trainer.extra_files)
    trainer.accelerator.wait_for_everyone()

    best_dir = output_dir / "best"
    evaluated = "final"
    if (best_dir / "config.json").is_file():
        _load_weights_from(unwrapped, best_dir, type(unwrapped))
        evaluated = "best"
    calibration = {}
    if evaluated == "best" and context is not None:
        calibration = calibrate_best(task, trainer, unwrapped, splits["validation"], context)
        if calibration and args.should_save:
            unwrapped.config.save_pretrained(best_dir)
            if (best_dir / ADAPTER_DIR).is_dir():
                unwrapped.config.save_pretrained(best_dir / ADAPTER_DIR)
    test_metrics, details = trainer.evaluate_with_details(splits["test"], metric_key_prefix="test")
    # the step tells a rerun that this folder's run is finished (`medicane_hf.training.resume`)
    summary = {"evaluated_model": evaluated, "global_step": trainer.state.global_step, **test_metrics}
    if calibration:
        summary["calibration"] = calibration
    if args.should_save:
        _write_json(output_dir / TEST_METRICS_FILE, summary)
        if evaluated == "best":
            best_metrics = json.loads((best_dir / "metrics.json").read_text())
            best_metrics.update(test_metrics)
            if calibration:
                best_metrics["calibration"] = calibration
            _write_json(best_dir / "metrics.json", best_metrics)
        _draw_figures(task, FigureInputs(details, trainer, splits, num_plot_examples), output_dir)
    return summary


def _write_json(path: Path, values: dict[str, Any]) -> None:
    """Metrics and reports as JSON: NaN (undefined here, e.g. POD without a Medicane) becomes null."""
    path.write_text(json.dumps(jsonable(values, non_finite_as_null=True), indent=2, sort_keys=True))


# The series worth a curve: the rest of the log (confusion counts, timings, test_*) stays in log.jsonl.
CURVE_KEYS = (
    "loss", "learning_rate", "grad_norm", "weight_decay", "eval_loss",
    "eval_balanced_accuracy", "eval_pod", "eval_far", "eval_csi", "eval_hss", "eval_average_precision",
    "eval_median_km", "eval_mean_km", "eval_p90_km", "eval_baseline_median_km",
)  # fmt: skip


def _curve_records(log_path: Path) -> list[dict[str, Any]]:
    """The training log reduced to `step` and the `CURVE_KEYS` series."""
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    kept = [{k: v for k, v in r.items() if k in CURVE_KEYS or k == "step"} for r in records]
    return [r for r in kept if len(r) > 1]


def _draw_figures(task: TaskSpec, inputs: FigureInputs, output_dir: Path) -> None:
    """Training curves, plus the stage's own files (`TaskSpec.figures`); one that fails is logged, not fatal."""
    from medicane_hf.evaluation import plots

    jobs: list[tuple[str, Any]] = [
        (
            "training_curves.png",
            lambda p: plots.plot_training_curves(_curve_records(output_dir / LOG_FILE), p),
        )
    ]
    for figure in task.figures:
        if figure.needs is None or figure.needs in inputs.details:
            jobs.append((figure.file_name, functools.partial(figure.draw, inputs)))
    for name, draw in jobs:
        try:
            draw(output_dir / name)
        except Exception as error:  # a figure must not lose a finished run
            logger.warning("Could not draw %s: %s", name, error)


# ---------------------------------------------------------------------------------------------- sharing


@dataclass(frozen=True)
class HubSettings:
    """Where a finished run pushes its chosen model folder (Trainer's --push_to_hub flags)."""

    repo_id: str
    private: bool
    revision: str | None


def take_hub_settings(args: ParsedArguments) -> HubSettings | None:
    """The run's push settings (None: no push). Raises `ArgumentValueError` for --push_to_hub without
    --hub_model_id. `run` then turns the Trainer's own push off: it would push checkpoints, not the chosen folder."""
    training = args.training
    if not training.push_to_hub:
        return None
    if not training.hub_model_id:
        raise ArgumentValueError("--push_to_hub needs --hub_model_id ORG/NAME: the Hub repo to push the best model to")
    return HubSettings(training.hub_model_id, bool(training.hub_private_repo), training.hub_revision)


def _hyperparameters(args: ParsedArguments, plan: RunPlan) -> dict[str, Any]:
    """What a model card lists of a run's settings (the derived values, as the run used them)."""
    training, recipe = args.training, args.recipe
    return {
        "model preset": args.model.preset,
        "started from": args.model.model_name_or_path or "random initialisation",
        "optimizer steps": plan.total_steps,
        "warmup steps": plan.warmup_steps,
        "learning rate (effective)": f"{plan.learning_rate:.3g}",
        "schedule": str(getattr(training.lr_scheduler_type, "value", training.lr_scheduler_type)),
        "total batch size": plan.total_train_batch_size,
        "weight decay": training.weight_decay,
        "layer decay": recipe.layer_decay,
        "EMA of the weights": recipe.model_ema,
        "label smoothing": training.label_smoothing_factor,
        "seed": training.seed,
        "processes": plan.world_size,
        "best model chosen on": f"validation {plan.metric_for_best_model}",
        "clips used (train / validation / test)": (
            f"{plan.num_train_clips} / {plan.num_validation_clips} / {plan.num_test_clips}"
        ),
    }


def share_run(
    task: TaskSpec,
    args: ParsedArguments,
    plan: RunPlan,
    summary: dict[str, Any],
    hub: HubSettings | None,
) -> None:
    """Main process, after `finish`: a model card in best/ and final/, then the push of the chosen folder.

    Neither may lose a finished run: a card or push that fails is logged with what to run instead."""
    from medicane_hf.hub.cards import CardTemplateError, TrainingData, write_folder_card

    output_dir = Path(args.training.output_dir)
    start = args.model.model_name_or_path
    base_model = start if start and not Path(start).exists() else None  # a Hub id, not a local folder
    origin = (
        f"trained by medicane-hf (scripts/{task.script}, {plan.total_steps} steps) "
        f"{'from ' + start if start else 'from a random initialisation'}"
    )
    data = TrainingData.from_dataset(plan.dataset_dir)
    for name in ("best", "final"):
        folder = output_dir / name
        if not (folder / "config.json").is_file():
            continue
        try:
            write_folder_card(folder, origin, data, _hyperparameters(args, plan), base_model, hub.repo_id if hub else None)
        except (CardTemplateError, OSError) as error:
            logger.warning("No model card in %s: %s", folder, error)
    if hub is not None:
        push_run(output_dir, summary, hub)


def push_run(output_dir: Path, summary: dict[str, Any], hub: HubSettings) -> None:
    """Main process: push the run's chosen folder (the one its test metrics were computed with) to `hub`; a push
    that fails is logged with the command that pushes it later."""
    from medicane_hf.hub.push import push_model_folder

    chosen = output_dir / ("best" if summary.get("evaluated_model") == "best" else "final")
    try:
        push_model_folder(chosen, hub.repo_id, private=hub.private, revision=hub.revision)
    except Exception as error:  # the run is finished and saved: say how to push it later
        logger.error(
            "The push to %s failed (%s): the run is saved; push it with: medicane-hf push %s --repo %s",
            hub.repo_id, error, chosen, hub.repo_id,
        )  # fmt: skip
        return
    logger.warning("Pushed %s to https://huggingface.co/%s", chosen, hub.repo_id)


# ---------------------------------------------------------------------------------------------- main


def run(stage: str, argv: list[str], callbacks: list[TrainerCallback] | None = None) -> dict[str, Any]:
    """Train stage `stage` with arguments `argv`; returns the test metrics. Raises on errors.

    A folder that holds the finished run of these arguments trains nothing: its test metrics are returned.
    """
    started = time.time()
    task = get_task(stage)
    quick = len(argv) == 0
    args = parse_stage_arguments(task, argv)
    _setup_logging(args)
    validate_arguments(args)
    hub = take_hub_settings(args)
    check_processes_joined(args)
    for note in args.notes:
        logger.warning("%s", note)
    if quick:
        logger.warning(
            "No arguments: running the embedded default (synthetic basin, %s preset, %d steps) into %s. "
            "Pass a YAML file from configs/ and/or flags for a real run; --help lists them.",
            args.model.preset,
            args.training.max_steps,
            args.training.output_dir,
        )
        if task.starts_from is not None and args.model.model_name_or_path is None:
            pretrained = TASKS[task.starts_from].default_output_dir() / "best"
            if (pretrained / "config.json").is_file():
                args.model.model_name_or_path = str(pretrained)
                logger.warning("Starting from the default %s model %s", task.starts_from, pretrained)
            else:
                logger.warning(
                    "No default %s model at %s (relative to this folder): the encoder starts from random weights. "
                    "Run scripts/%s here first to start from it.",
                    task.starts_from, pretrained.resolve(), TASKS[task.starts_from].script,
                )  # fmt: skip
    elif args.model.model_name_or_path:
        args.model.model_name_or_path = resolve_under_output_root(args.model.model_name_or_path, args)
    dataset_dir, contract, splits = load_data(task, args)
    selection_note = choose_selection_metric(task, args, contract, splits["validation"])
    if selection_note is not None:
        logger.warning("%s", selection_note)
    # The arguments as given, before plan_run writes the effective (scaled) learning rate and warmup steps into
    # them: what training_arguments.yaml records, so that a rerun with that file derives the same values.
    recorded = arguments_as_dict(args)
    plan = plan_run(task, args, splits, dataset_dir)
    plan.notes = [*args.notes, *([selection_note] if selection_note else []), *plan.notes]
    output_dir = Path(args.training.output_dir)
    decision = prepare_output_dir(task, args, recorded, plan.total_steps, vars(plan))
    if decision.finished:
        summary = _report_finished(task, output_dir, decision, plan.total_steps)
        if hub is not None and args.training.should_save:
            push_run(output_dir, summary, hub)  # a finished run rerun with --push_to_hub: pushed, not retrained
        return summary
    class_weights = None
    if task.class_weights:
        class_weights = parse_class_weights(
            args.recipe.class_weights, splits["train"], len(contract.class_names)
        )
    # Seed before building the model, so that the seed covers the initialisation of new weights.
    set_seed(args.training.seed)
    model, report = build_model(
        task,
        args.model,
        contract,
        label_smoothing=args.training.label_smoothing_factor,
        class_weights=class_weights,
    )
    plan.parameters = parameter_counts(model)
    context = metric_context(task, contract, splits)
    plan.resumed_from = None if decision.checkpoint is None else str(decision.checkpoint)
    args.training.push_to_hub = False  # the finished run pushes its chosen folder (share_run), not the Trainer
    trainer = make_trainer(task, args, model, splits, context, callbacks, recorded, vars(plan))
    if trainer.args.should_save:
        save_arguments(args, output_dir, effective=vars(plan), values=recorded)
        if report is not None:
            _write_json(output_dir / "loading_report.json", report.to_dict())
    if plan.resumed_from:
        logger.warning("Resuming from %s", plan.resumed_from)
    training_started = time.time()
    with _disk_full_said(output_dir):
        trainer.train(resume_from_checkpoint=plan.resumed_from)
        trained = time.time() - training_started
        summary = finish(task, trainer, splits, args.recipe.num_plot_examples, context)
        if trainer.args.should_save:
            share_run(task, args, plan, summary, hub)
    if trainer.args.should_save:
        print(_closing_lines(task, output_dir, summary, time.time() - started, trained), flush=True)
    return summary


@contextlib.contextmanager
def _disk_full_said(output_dir: Path) -> Iterator[None]:
    """Turn a write that failed for lack of space into a `DiskFullError` naming what is still there to resume.

    Checkpoints count only with their completeness marker, written last, and best/ and final/ are swapped in
    whole (`medicane_hf.training.checkpoints`), so the previous complete state survives a failed write.
    """
    try:
        yield
    except OSError as error:
        if error.errno not in _NO_SPACE:
            raise
        checkpoint, _ = newest_resumable_checkpoint(output_dir)
        kept = (
            f"the last complete checkpoint, {checkpoint}, is intact: free space, then rerun the same command to "
            "resume from it"
            if checkpoint is not None
            else "no complete checkpoint was written yet: free space, then rerun the same command"
        )
        raise DiskFullError(f"no space left while writing in {output_dir} ({error}); {kept}") from error


def _duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


def _score(task: TaskSpec, summary: dict[str, Any]) -> str:
    """The test score of the best-model metric, and the constant guess's beside it when the stage has one."""
    key = f"test_{task.metric_for_best_model}"
    if not isinstance(summary.get(key), float):
        return ""
    baseline = summary.get(f"test_baseline_{task.metric_for_best_model}")
    beside = f" (constant guess: {baseline:.4g})" if isinstance(baseline, float) else ""
    return f"{key} = {summary[key]:.4g}{beside}"


def _result_paths(output_dir: Path) -> str:
    return (
        f"  outputs:     {output_dir.resolve()}\n"
        f"  best model:  {(output_dir / 'best').resolve()}\n"
        f"  last model:  {(output_dir / 'final').resolve()}\n"
        f"  log:         {(output_dir / LOG_FILE).resolve()}  (TensorBoard: tensorboard --logdir {output_dir})"
    )


def _closing_lines(
    task: TaskSpec, output_dir: Path, summary: dict[str, Any], seconds: float, trained: float
) -> str:
    """What a finished run prints: how long it took (all of it, and the training), its score, its files."""
    return (
        f"\n{task.name}: done in {_duration(seconds)} ({_duration(trained)} training). {_score(task, summary)} "
        f"({summary['evaluated_model']} model)\n" + _result_paths(output_dir)
    )


def _report_finished(
    task: TaskSpec, output_dir: Path, decision: ResumeDecision, total_steps: int
) -> dict[str, Any]:
    """Say that the folder holds this run, finished, and where; return its test metrics (nothing is trained or
    logged)."""
    summary = json.loads((output_dir / TEST_METRICS_FILE).read_text())
    if PartialState().is_main_process:
        print(
            f"\n{task.name}: the run in {output_dir.resolve()} already finished (step {decision.finished_step} "
            f"of {total_steps}); nothing to train. {_score(task, summary)}\n"
            f"  test metrics: {(output_dir / TEST_METRICS_FILE).resolve()}\n"
            + _result_paths(output_dir)
            + "\n"
            "  To train it longer, rerun with a larger --max_steps (or --num_train_epochs); to train it again, "
            "choose another --output_dir.",
            flush=True,
        )
    return summary


# What `main` turns into a message and an exit code rather than a traceback: unusable input.
USAGE_ERRORS: tuple[type[Exception], ...] = (
    ArgumentFileError,
    ArgumentValueError,
    ContractMismatchError,
    EncoderNotLoadedError,
    ModelSourceError,
    DatasetTooSmallError,
    FileNotFoundError,
    ResumeConflictError,
    CheckpointUnusableError,
)


def _report_to_launcher(error: Exception) -> None:
    """Keep a clean error visible under `accelerate launch`, which prints its own traceback after the script's.

    Several processes (torchrun underneath): the error goes into the error file torchrun names, so that its
    closing summary shows it as the root cause. One process: a last line that points back at the error, above
    the CalledProcessError traceback accelerate prints (unless launched with ``-q``).
    """
    if "ACCELERATE_DYNAMO_BACKEND" not in os.environ:  # set by every accelerate launcher; not a plain run
        return
    if os.environ.get("TORCHELASTIC_ERROR_FILE"):
        from torch.distributed.elastic.multiprocessing.errors import ErrorHandler

        ErrorHandler().record_exception(error)
        return
    print(
        f"(The {type(error).__name__} above stopped the run. accelerate launch, unless given -q, now prints its "
        "own CalledProcessError traceback, which says only that the script exited with an error.)",
        file=sys.stderr,
        flush=True,
    )


def main(stage: str, argv: list[str] | None = None, callbacks: list[TrainerCallback] | None = None) -> int:
    """Command-line entry: 0 on success; 1 for a run stopped on a non-finite loss or a full disk (its last
    complete state kept); 2 for unusable input
    (argument file, dataset, checkpoint, model path), each with a one-paragraph message instead of a
    traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        run(stage, argv, callbacks)
    except (NonFiniteLossError, DiskFullError) as error:
        logger.error("%s: %s", type(error).__name__, error)
        _report_to_launcher(error)
        return 1
    except USAGE_ERRORS as error:
        logger.error("%s: %s", type(error).__name__, error)
        _report_to_launcher(error)
        return 2
    return 0
