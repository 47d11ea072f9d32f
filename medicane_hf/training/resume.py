"""Whether a run continues what its output folder holds, and from where: the decision before any training.

Rerunning a command into its own output folder resumes it (docs/training.md, "Resuming"). Three things make
that safe, each a way the records of a run could otherwise lie:

- **The arguments must agree.** A checkpoint fixes the model, the optimizer and its schedule, and the data
  order. Resumed with another learning rate or model, Trainer restores the old ones, while
  ``training_arguments.yaml`` and ``effective_settings.json`` would record the new. So the arguments that
  shape a run are compared with the ones saved in the checkpoint; any difference is an error that lists the
  differences and the two ways on (another folder, or the checkpoint's own arguments file).
  `RESUME_FREE_KEYS` are the arguments a resumed run does apply, or that only say how it reports: where it
  logs, how often it evaluates and saves, how long it runs (a longer run continues), how it loads data,
  which device and precision it uses.
- **A finished run is finished.** Its test evaluation is in ``test_metrics.json`` (with the step it was
  made at); rerunning the same command says so and where the results are, and trains and logs nothing.
- **Damaged checkpoints are skipped by name.** See `medicane_hf.training.checkpoints.checkpoint_problem`;
  the newest checkpoint that can be resumed is used, each newer damaged one is named with its reason and
  set aside as ``corrupt-checkpoint-N``.

When a run resumes from step S, the records its interrupted predecessor logged after S (and an ending
that never reached ``test_metrics.json``) leave ``log.jsonl``: they are about to be written again, and
two records of one step would be two different claims about it.
"""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from medicane_hf.training.callbacks import LOG_FILE
from medicane_hf.training.checkpoints import (
    checkpoint_problem,
    newest_resumable_checkpoint,
    set_aside,
)

logger = logging.getLogger(__name__)

ARGUMENTS_FILE = "training_arguments.yaml"
EFFECTIVE_FILE = "effective_settings.json"
TEST_METRICS_FILE = "test_metrics.json"
# What a run derives from its arguments and the machine, compared too: the same arguments on another number of
# processes give another total batch and (with --scale_lr) another learning rate, which the resumed optimizer
# and scheduler would not take.
DERIVED_KEYS = ("total_train_batch_size", "learning_rate")

# Arguments that may differ between a checkpoint and the run that resumes it: the resumed steps apply the new
# value, or the value only says where and how often the run reports. Every other argument shapes the run (a new
# argument does too until it is listed here).
RESUME_FREE_KEYS: frozenset[str] = frozenset(
    {
        # where the run writes and how it reports
        "output_dir", "logging_strategy", "logging_steps", "logging_first_step", "log_on_each_node",
        "logging_nan_inf_filter", "log_level", "log_level_replica", "disable_tqdm", "report_to", "run_name",
        "project", "trackio_space_id", "trackio_bucket_id", "trackio_static_space_id",
        "include_num_input_tokens_seen", "skip_memory_metrics", "num_plot_examples", "debug",
        "push_to_hub", "hub_token", "hub_private_repo", "hub_model_id", "hub_strategy", "hub_always_push",
        "hub_revision",
        # how often it evaluates and saves
        "eval_strategy", "eval_steps", "eval_delay", "eval_on_start", "per_device_eval_batch_size",
        "eval_accumulation_steps", "eval_do_concat_batches", "eval_use_gather_object", "batch_eval_metrics",
        "save_strategy", "save_steps", "save_total_limit", "save_on_each_node", "save_only_model",
        "enable_jit_checkpoint",
        # how long it runs: a longer schedule continues the run
        "max_steps", "num_train_epochs",
        # how the data is loaded, not which
        "dataloader_num_workers", "dataloader_pin_memory", "dataloader_persistent_workers",
        "dataloader_prefetch_factor", "dataloader_multiprocessing_context",
        # the machine: device, precision, memory and speed, which the resumed steps use as given
        "use_cpu", "bf16", "fp16", "bf16_full_eval", "fp16_full_eval", "tf32", "torch_compile",
        "torch_compile_backend", "torch_compile_mode", "activation_checkpointing",
        "activation_checkpointing_kwargs", "gradient_checkpointing", "gradient_checkpointing_kwargs",
        "torch_empty_cache_steps", "ddp_find_unused_parameters", "ddp_bucket_cap_mb", "ddp_broadcast_buffers",
        "ddp_static_graph", "ddp_backend", "ddp_timeout", "local_rank", "accelerator_config",
        "parallelism_config", "fsdp", "fsdp_config", "deepspeed",
        # how this run was started
        "resume_from_checkpoint", "do_train", "do_eval", "do_predict",
    }
)  # fmt: skip

# keys of the records a run logs at its very end (after training): the train summary, calibration, test
_END_RECORD = re.compile(r"^(test_|best_validation_|train_runtime$)")


class ResumeConflictError(ValueError):
    """The output folder holds a run of other arguments than the ones given; the message lists them."""


class CheckpointUnusableError(ValueError):
    """`--resume_from_checkpoint` names a checkpoint that cannot be resumed from (the message says why)."""


@dataclass
class ResumeDecision:
    """What a run does with its output folder.

    Attributes:
        checkpoint: resume from it (None: start from scratch).
        skipped: damaged checkpoints newer than `checkpoint`, with the reason each is unusable.
        finished_step: the step of the finished test evaluation when the folder holds the finished run of
            these arguments (then nothing trains); None otherwise.
    """

    checkpoint: Path | None = None
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    finished_step: int | None = None

    @property
    def finished(self) -> bool:
        """Whether the folder already holds this run's finished results."""
        return self.finished_step is not None


def _step(checkpoint: Path) -> int:
    return int(checkpoint.name.rsplit("-", 1)[1])


def read_saved_arguments(path: Path) -> dict[str, Any] | None:
    """The mapping of a saved `training_arguments.yaml`, or None when there is none (or it is unreadable)."""
    if not path.is_file():
        return None
    try:
        values = yaml.safe_load(path.read_text())
    except yaml.YAMLError:
        return None
    return values if isinstance(values, dict) else None


def _normalised(values: Mapping[str, Any]) -> dict[str, Any]:
    # compare as the YAML file holds them: tuples become lists, numbers keep their YAML type
    return yaml.safe_load(yaml.safe_dump(dict(values), sort_keys=True)) or {}


def argument_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key: checkpoint A, now B"`` for every run-shaping argument that differs (keys a saved file lacks,
    written by an older version, are not compared)."""
    saved, current = _normalised(saved), _normalised(current)
    return [
        f"{key}: checkpoint {saved[key]}, now {current[key]}"
        for key in sorted(set(saved) & set(current))
        if key not in RESUME_FREE_KEYS and saved[key] != current[key]
    ]


def derived_differences(saved: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """``"key (derived): checkpoint A, now B"`` for each of `DERIVED_KEYS` that both hold and that differs."""
    lines = []
    for key in DERIVED_KEYS:
        old, new = saved.get(key), current.get(key)
        if (
            isinstance(old, (int, float))
            and isinstance(new, (int, float))
            and not math.isclose(old, new, rel_tol=1e-9)
        ):
            lines.append(
                f"{key} (derived: per-device batch x processes x accumulation, and the lr scaled by it): "
                f"checkpoint {old:.6g}, now {new:.6g}"
            )
    return lines


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        values = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return values if isinstance(values, dict) else None


def finished_test_step(output_dir: Path) -> int | None:
    """The step the folder's test evaluation was made at (``test_metrics.json``), or None without one.

    Files from before the step was recorded there take it from ``final/metrics.json``."""
    path = output_dir / TEST_METRICS_FILE
    if not path.is_file():
        return None
    try:
        step = json.loads(path.read_text()).get("global_step")
        if step is None:
            step = json.loads((output_dir / "final" / "metrics.json").read_text()).get("global_step")
    except (OSError, ValueError):
        return None
    return int(step) if isinstance(step, (int, float)) else None


def _conflict_message(
    output_dir: Path, what: str, differences: list[str], arguments_file: Path, script: str, weights: Path
) -> str:
    lines = [f"{output_dir} holds {what}, trained with other arguments than these:"]
    lines += [f"  {line}" for line in differences]
    lines += [
        "Resuming would continue that run while this run's records claimed the new values. Either",
        "  - train with these arguments from the start in another folder: add --output_dir NEW_FOLDER "
        f"(or delete {output_dir});",
        f"  - or resume the run as it was: {script} {arguments_file} (add --max_steps N to run it longer);",
        f"  - or start a new run from its weights: --model_name_or_path {weights} --output_dir NEW_FOLDER.",
    ]
    return "\n".join(lines)


def decide_resume(
    output_dir: str | Path,
    arguments: Mapping[str, Any],
    total_steps: int,
    script: str,
    resume_from_checkpoint: str | None = None,
    effective: Mapping[str, Any] | None = None,
) -> ResumeDecision:
    """What this run does with `output_dir`; reads only (`apply_decision` acts on it).

    Args:
        output_dir: the run's output folder.
        arguments: this run's arguments as recorded (`arguments_as_dict`).
        total_steps: the optimizer steps this run is to reach.
        script: how the user starts this stage (`scripts/train_<stage>.py`), for the messages.
        resume_from_checkpoint: an explicit checkpoint (`--resume_from_checkpoint`), checked the same way.
        effective: what this run derived (`effective_settings.json`), whose `DERIVED_KEYS` must agree too.

    Raises:
        ResumeConflictError: the checkpoint to resume, or the folder's finished results, came from other
            run-shaping arguments.
        CheckpointUnusableError: an explicit checkpoint that is missing or damaged.
    """
    output_dir = Path(output_dir)
    if resume_from_checkpoint:
        checkpoint = Path(resume_from_checkpoint)
        if not checkpoint.is_dir():
            raise CheckpointUnusableError(f"--resume_from_checkpoint {checkpoint}: no such folder")
        problem = checkpoint_problem(checkpoint)
        if problem is not None:
            raise CheckpointUnusableError(f"--resume_from_checkpoint {checkpoint}: {problem}")
        decision = ResumeDecision(checkpoint=checkpoint)
    else:
        checkpoint, skipped = newest_resumable_checkpoint(output_dir)
        decision = ResumeDecision(checkpoint=checkpoint, skipped=skipped)

    test_step = finished_test_step(output_dir)
    if decision.checkpoint is not None:
        folder, what = decision.checkpoint, decision.checkpoint.name
    else:
        folder, what = output_dir, "the finished results of a run"
    saved_file = folder / ARGUMENTS_FILE
    saved = read_saved_arguments(saved_file)
    if saved is not None and (decision.checkpoint is not None or test_step is not None):
        differences = argument_differences(saved, arguments)
        saved_effective = _read_json(folder / EFFECTIVE_FILE)
        if saved_effective is not None and effective is not None:
            differences += derived_differences(saved_effective, effective)
        if differences:
            weights = decision.checkpoint if decision.checkpoint is not None else output_dir / "best"
            raise ResumeConflictError(
                _conflict_message(output_dir, what, differences, saved_file, script, weights)
            )
    elif decision.checkpoint is not None:
        logger.warning(
            "%s has no readable %s: resuming it without checking that it was trained with these arguments",
            decision.checkpoint,
            ARGUMENTS_FILE,
        )
    newest_step = _step(decision.checkpoint) if decision.checkpoint is not None else None
    if (
        test_step is not None
        and test_step >= total_steps
        and (newest_step is None or newest_step <= test_step)
        and resume_from_checkpoint is None
    ):
        decision.finished_step = test_step
    return decision


def apply_decision(decision: ResumeDecision, output_dir: str | Path) -> None:
    """Act on `decision` (main process only): set damaged checkpoints aside, naming each and why, and keep in
    ``log.jsonl`` only the records of the run being continued."""
    output_dir = Path(output_dir)
    for path, reason in decision.skipped:
        moved = set_aside(path)
        logger.warning("Skipping %s: %s. Moved it to %s.", path, reason, moved)
    if decision.finished:
        return
    log = output_dir / LOG_FILE
    if decision.checkpoint is None:
        # nothing to continue: an earlier attempt's records would mix with this run's in one log and its curves
        if log.is_file() and log.stat().st_size:
            kept = _free_name(log)
            log.rename(kept)
            logger.warning(
                "Starting from scratch: the log of the earlier attempt in this folder is now %s", kept
            )
        return
    step = _step(decision.checkpoint)
    ending_kept = finished_test_step(output_dir) == step
    dropped = trim_log(log, step, keep_ending=ending_kept)
    if dropped:
        logger.warning(
            "Resuming from step %d: removed %d record(s) of the interrupted run after it from %s "
            "(they are written again as the run continues)",
            step,
            dropped,
            log,
        )


def _free_name(log: Path) -> Path:
    n = 1
    while (candidate := log.with_name(f"log.earlier-{n}.jsonl")).exists():
        n += 1
    return candidate


def trim_log(log: Path, step: int, keep_ending: bool) -> int:
    """Remove from `log` the records after optimizer step `step` and, unless `keep_ending`, the end-of-run
    records (train summary, calibration, test) at `step`; returns how many were removed."""
    if not log.is_file():
        return 0
    kept, dropped = [], 0
    for line in log.read_text().splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1  # a line cut by a kill: not a record
            continue
        record_step = record.get("step", 0)
        ending = any(_END_RECORD.match(key) for key in record)
        if record_step > step or (ending and record_step >= step and not keep_ending):
            dropped += 1
        else:
            kept.append(line)
    if dropped:
        tmp = log.with_name(log.name + ".tmp")
        tmp.write_text("".join(line + "\n" for line in kept))
        tmp.replace(log)
    return dropped
