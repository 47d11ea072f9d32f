"""Does training learn? Short runs of the three stages on the embedded default (tiny preset, CPU).

Used by the slow test ``tests/test_training_learning.py`` (small budget) and by
``benchmarks/bench_learning.py`` (larger budget, figures into RESULTS.md).
What is measured, each on data the run did not train on:

- specialization: validation MAE loss before training (``eval_on_start``) and
  after; the check asks for a fall of at least 30%. The check trains on raw
  0..1 pixel targets (``norm_pix_loss=false``): with per-patch normalised targets
  the loss of a short CPU run stays near 1 (the per-patch variance) and says
  little;
- detection (from the specialized encoder, as in the real pipeline): balanced
  accuracy (chance = 0.5), POD and FAR on the validation storms, on the test
  storms, and on both together ("held-out": one confusion matrix over the two
  splits). The run evaluates once, at its end, so the validation storms choose
  nothing and are as unseen as the test storms; with two storms per split the
  pooled figure is the steadier one. Detection and tracking run for several
  seeds (balanced accuracy moves by +-0.07, the median error by +-20 km). The train clips are oversampled to
  balanced classes (``load_clip_datasets``), without which a short run learns
  "always background" (balanced accuracy exactly 0.5), and translated (see
  ``DetectionDataset``); the head pools the tokens with attention;
- tracking (from the specialized encoder): median centre error on the test
  storms against a constant guess (the train split's mean centre); train tiles are
  randomly translated by up to a quarter tile and turned by multiples of 90
  degrees (``TrackingDataset``).

Besides, `train_loss_fall` of every stage: the mean train loss of the last
three log records against the first three (does the optimizer fit the data).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medicane_hf.training.run import run


@dataclass(frozen=True)
class LearningBudget:
    """Optimizer steps per stage (batch 8), the seeds of the detection and tracking runs, evaluation sizes."""

    specialization_steps: int = 1200
    detection_steps: int = 600
    tracking_steps: int = 600
    seeds: tuple[int, ...] = (0, 1, 2)
    max_eval_samples: int | None = None


def _common_flags(
    dataset_dir: Path, output_dir: Path, steps: int, budget: LearningBudget, seed: int
) -> list[str]:
    flags = [
        "--dataset_dir", str(dataset_dir),
        "--output_dir", str(output_dir),
        "--max_steps", str(steps),
        "--per_device_train_batch_size", "8",
        "--per_device_eval_batch_size", "32",
        "--scale_lr", "false",
        "--warmup_steps", "20",
        "--lr_scheduler_type", "cosine",
        "--eval_strategy", "steps", "--eval_steps", str(steps),
        "--save_strategy", "no",
        "--logging_steps", "10",
        "--report_to", "none",
        "--dataloader_num_workers", "0",
        "--disable_tqdm", "true",
        "--seed", str(seed),
    ]  # fmt: skip
    if budget.max_eval_samples is not None:
        flags += ["--max_eval_samples", str(budget.max_eval_samples)]
    return flags


STAGE_FLAGS: dict[str, list[str]] = {
    "specialization": [
        "--learning_rate",
        "1.5e-3",
        "--eval_on_start",
        "true",
        "--config_overrides",
        "norm_pix_loss=false",
    ],
    "detection": [
        # 1e-3 fitted the (class-balanced) train clips faster but transferred no better to the
        # validation storms than 3e-4, which is steadier
        "--learning_rate",
        "3e-4",
        "--layer_decay",
        "1.0",
        "--drop_path_rate",
        "0",
        "--label_smoothing_factor",
        "0",
    ],
    "tracking": ["--learning_rate", "1e-3", "--drop_path_rate", "0"],
}


def _records(output_dir: Path, key: str) -> list[dict[str, Any]]:
    lines = (output_dir / "log.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if key in r]


def train_loss_fall(output_dir: Path) -> float:
    """1 - mean(last three logged train losses) / mean(first three)."""
    losses = [r["loss"] for r in _records(output_dir, "loss")]
    return 1.0 - sum(losses[-3:]) / sum(losses[:3])


def held_out_figures(validation: dict[str, Any], test: dict[str, Any]) -> dict[str, float]:
    """Balanced accuracy, POD and FAR of the validation and test clips together (one confusion matrix).

    Args:
        validation: the last evaluation record (``eval_cm_i_j`` counts, true class i, predicted j).
        test: the test metrics (``test_cm_i_j``).
    """
    cm = {
        (i, j): float(validation[f"eval_cm_{i}_{j}"]) + float(test[f"test_cm_{i}_{j}"])
        for i in (0, 1)
        for j in (0, 1)
    }
    pod = cm[1, 1] / (cm[1, 1] + cm[1, 0])
    specificity = cm[0, 0] / (cm[0, 0] + cm[0, 1])
    predicted = cm[1, 1] + cm[0, 1]
    return {
        "held_out_balanced_accuracy": (pod + specificity) / 2,
        "held_out_pod": pod,
        "held_out_far": cm[0, 1] / predicted if predicted else 0.0,
        "held_out_medicane_clips": cm[1, 1] + cm[1, 0],
        "held_out_clips": sum(cm.values()),
    }


def run_stage(
    stage: str,
    dataset_dir: Path,
    output_dir: Path,
    steps: int,
    budget: LearningBudget,
    start_from: Path | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Train one stage and return its figures (see the module docstring)."""
    flags = _common_flags(dataset_dir, output_dir, steps, budget, seed) + STAGE_FLAGS[stage]
    if start_from is not None:
        flags += ["--model_name_or_path", str(start_from)]
    test = run(stage, flags)
    figures: dict[str, float] = {"steps": steps, "train_loss_fall": train_loss_fall(output_dir)}
    if stage == "specialization":
        evals = _records(output_dir, "eval_loss")
        first, last = evals[0]["eval_loss"], evals[-1]["eval_loss"]
        figures.update(val_loss_start=first, val_loss_end=last, fall=1 - last / first)
    elif stage == "detection":
        keys = ("balanced_accuracy", "pod", "far", "average_precision", "accuracy")
        figures.update({k: float(test[f"test_{k}"]) for k in keys})
        validation = _records(output_dir, "eval_balanced_accuracy")[-1]
        figures.update({f"val_{k}": float(validation[f"eval_{k}"]) for k in keys})
        figures.update(held_out_figures(validation, test))
    else:
        keys = ("median_km", "mean_km", "baseline_median_km", "baseline_mean_km", "median_px")
        figures.update({k: float(test[f"test_{k}"]) for k in keys})
    return figures


def run_learning_check(
    dataset_dir: str | Path, work_dir: str | Path, budget: LearningBudget = LearningBudget()
) -> dict:
    """Specialization from scratch, then detection and tracking from its best model, once per seed each.

    Returns:
        ``{"specialization": {...}, "detection_runs": [{..., "seed"}, ...], "tracking_runs": [...]}``.
    """
    dataset_dir, work_dir = Path(dataset_dir), Path(work_dir)
    results = {
        "specialization": run_stage(
            "specialization", dataset_dir, work_dir / "specialization", budget.specialization_steps, budget
        )
    }
    encoder = work_dir / "specialization" / "best"
    for stage, steps in (("detection", budget.detection_steps), ("tracking", budget.tracking_steps)):
        results[f"{stage}_runs"] = [
            run_stage(stage, dataset_dir, work_dir / f"{stage}-seed{seed}", steps, budget, encoder, seed=seed)
            | {"seed": seed}
            for seed in budget.seeds
        ]
    return results
