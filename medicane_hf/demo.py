"""`make demo`: the whole pipeline on the embedded synthetic Mediterranean.

Runs, in order, what a user would run by hand:

1. synthesise the demo basin and build its dataset (``ensure_default_dataset``:
   ``medicane-hf synth`` + ``medicane-hf build-dataset``), once, in the cache;
2. ``scripts/train_specialization.py`` with no arguments (MAE specialization of a tiny model);
3. ``scripts/train_classification.py`` with no arguments (starts from 2.'s best model);
4. ``scripts/train_tracking.py`` with no arguments (starts from 2.'s best model);
5. reloads the detector and the tracker with ``from_pretrained`` and prints what each
   step produced and where.

Usage: ``python -m medicane_hf.demo [--output-dir DIR]`` (default ``outputs/``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

# the stages in the order they build on each other (specialization first: the others start from it)
STAGES = ("specialization", "detection", "tracking")


def _banner(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m medicane_hf.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output-dir", default=".", help="folder in which outputs/ is written (default: here)"
    )
    return parser.parse_args(argv)


def _summary_line(stage: str, metrics: dict) -> str:
    from medicane_hf.tasks import TASKS

    parts = [
        f"{key.removeprefix('test_')} {metrics[key]:.3f}"
        for key in TASKS[stage].summary_metrics
        if isinstance(metrics.get(key), float)
    ]
    return f"{stage:<15} " + ", ".join(parts)


def _predict_a_few(detector, tracker, dataset_dir, count: int = 6) -> None:
    """Run the reloaded models on a few test clips that hold a storm, as a user would."""
    import torch

    from medicane_hf.data.datasets import load_clip_datasets
    from medicane_hf.data.geo import SeviriGrid
    from medicane_hf.evaluation import tracking_errors

    clips = load_clip_datasets(dataset_dir, "tracking", splits=("test",))["test"]
    picks = list(range(0, len(clips), max(1, len(clips) // count)))[:count]
    batch = torch.stack([clips[i]["pixel_values"] for i in picks])
    targets = torch.stack([clips[i]["labels"] for i in picks]).numpy()
    with torch.no_grad():
        probability = detector(pixel_values=batch).logits.softmax(-1)[:, 1].numpy()
        centres = tracker(pixel_values=batch).logits.numpy()
    offsets = [[int(clips.x0[i]), int(clips.y0[i])] for i in picks]
    print(f"\n{'clip':>5} {'P(medicane)':>12} {'predicted x,y':>15} {'true x,y':>15}")
    for row, i in enumerate(picks):
        predicted = f"{centres[row, 0]:.1f},{centres[row, 1]:.1f}"
        true = f"{targets[row, 0]:.1f},{targets[row, 1]:.1f}"
        print(f"{i:>5} {probability[row]:>12.3f} {predicted:>15} {true:>15}")
    errors = tracking_errors(centres, targets, offsets, SeviriGrid.from_dict(tracker.config.grid))
    print(f"centre error on these clips: median {errors['err_km'].median():.0f} km")


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = _parse(argv)
    os.chdir(args.output_dir)
    started = time.time()

    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.tasks import TASKS
    from medicane_hf.training.run import run

    _banner("1/5  synthetic basin -> frame store + clip index (medicane-hf synth, medicane-hf build-dataset)")
    dataset_dir = ensure_default_dataset()
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    print(f"dataset: {dataset_dir}")
    print(json.dumps(info.get("counts", {}), indent=1)[:2000])

    results: dict[str, dict] = {}
    for number, stage in enumerate(STAGES, start=2):
        _banner(f"{number}/5  {stage}: scripts/{TASKS[stage].script} (no arguments: the embedded default)")
        results[stage] = run(stage, [])

    _banner("5/5  reload the shared models with from_pretrained")
    from medicane_hf import MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking

    detector_dir = TASKS["detection"].default_output_dir() / "best"
    tracker_dir = TASKS["tracking"].default_output_dir() / "best"
    detector = MedicaneVideoMAEForDetection.from_pretrained(detector_dir).eval()
    tracker = MedicaneVideoMAEForTracking.from_pretrained(tracker_dir).eval()
    print(f"detector: {detector_dir.resolve()}  classes {detector.config.id2label}")
    print(f"tracker:  {tracker_dir.resolve()}")
    print(f"data contract: {detector.config.describe_data_contract()}")
    _predict_a_few(detector, tracker, dataset_dir)

    _banner(f"demo done in {time.time() - started:.0f} s: test-split figures of the best models")
    for stage in STAGES:
        print(_summary_line(stage, results[stage]))
    print("\nOutputs (models, logs, TensorBoard runs, figures):")
    for stage in STAGES:
        print(f"  {TASKS[stage].default_output_dir().resolve()}")
    print("The tiny model and the short schedules are for a quick look; see README.md for real runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
