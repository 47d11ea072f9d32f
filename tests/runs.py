"""Helpers of short training runs on the embedded default dataset, shared by tests/training/ and the reliability probes (docs/RELIABILITY.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from medicane_hf.training.callbacks import LOG_FILE


def quick_flags(dataset_dir: Path, output_dir: Path, steps: int = 4) -> list[str]:
    """A few-second detection / tracking / specialization run: tiny model, 16 train and 8 eval clips."""
    return [
        "--dataset_dir", str(dataset_dir),
        "--output_dir", str(output_dir),
        "--max_steps", str(steps),
        "--per_device_train_batch_size", "2",
        "--per_device_eval_batch_size", "8",
        "--max_train_samples", "16",
        "--max_eval_samples", "8",
        "--eval_strategy", "steps", "--eval_steps", "2",
        "--save_strategy", "steps", "--save_steps", "2",
        "--logging_steps", "1",
        "--warmup_steps", "1",
        "--report_to", "none",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
    ]  # fmt: skip


def log_records(output_dir: Path) -> list[dict]:
    """The records of a run's log.jsonl."""
    return [json.loads(line) for line in (output_dir / LOG_FILE).read_text().splitlines() if line.strip()]


def copy_run(run: tuple[Path, list[str]], target: Path) -> tuple[Path, list[str]]:
    """A copy of a finished run in `target`, with its flags pointing there."""
    source, flags = run
    shutil.copytree(source, target)
    return target, [str(target) if value == str(source) else value for value in flags]
