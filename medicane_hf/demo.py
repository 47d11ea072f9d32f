"""`make demo`: the whole pipeline on the embedded synthetic Mediterranean.

Runs, in order, what a user would run by hand:

1. synthesise the demo basin and build its dataset (``ensure_default_dataset``:
   ``medicane-hf synth`` + ``medicane-hf build-dataset``), once, in the cache;
2. ``scripts/train_specialization.py`` with no arguments (MAE specialization of a tiny model);
3. ``scripts/train_classification.py`` with no arguments (starts from 2.'s best model);
4. ``scripts/train_tracking.py`` with no arguments (starts from 2.'s best model);
5. ``scripts/infer_classification.py`` and ``scripts/infer_tracking.py`` with no arguments: batch
   inference of the best detector and tracker on the test split, the metrics beside the
   constant-guess baseline, and where every output is;
6. ``medicane-hf predict-track`` with no arguments: the product on the held-out days' frames with the
   models just trained, scored against the basin's tracks (POD, FAR, centre errors, each true storm), and
   the paths of the map and the animation.

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


def track_line(summary: dict) -> str:
    """Step 6's scores in one line: hourly POD / FAR, centre error, storms found, false tracks."""
    scores = summary["scores"]
    error = scores["centre_error_km"]
    return (
        f"{len(summary['tracks'])} tracks; POD {scores['pod']:.3f}, FAR {scores['far']:.3f} (within "
        f"{scores['match_radius_km']:g} km), centre error median {error['median']:.1f} km; "
        f"{scores['storms_found']} of {len(scores['storms'])} true storms found, {scores['false_tracks']} false tracks"
    )


def infer_all() -> dict[str, dict]:
    """Step 5: each inference script with no arguments (the test split, the no-argument training runs' best
    models; each prints its closing lines); returns ``{stage: metrics.json content}``."""
    from medicane_hf.inference.command import run as infer
    from medicane_hf.tasks import TASKS

    results: dict[str, dict] = {}
    for stage in STAGES:
        task = TASKS[stage]
        if task.inference is None:  # a stage without batch inference (the MAE specialization)
            continue
        print(f"\n$ python scripts/{task.inference.script}", flush=True)
        results[stage] = infer(stage, [])["metrics"] or {}
    return results


def main(argv: list[str] | None = None) -> int:
    """Run the demo; returns the exit code."""
    args = _parse(argv)
    os.chdir(args.output_dir)
    started = time.time()

    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.tasks import TASKS
    from medicane_hf.tracking.command import DEFAULT_OUT
    from medicane_hf.training.run import run

    _banner("1/6  synthetic basin -> frame store + clip index (medicane-hf synth, medicane-hf build-dataset)")
    dataset_dir = ensure_default_dataset()
    info = json.loads((dataset_dir / "dataset_info.json").read_text())
    print(f"dataset: {dataset_dir}")
    print(json.dumps(info.get("counts", {}), indent=1)[:2000])

    results: dict[str, dict] = {}
    for number, stage in enumerate(STAGES, start=2):
        _banner(f"{number}/6  {stage}: scripts/{TASKS[stage].script} (no arguments: the embedded default)")
        results[stage] = run(stage, [])

    _banner(
        "5/6  batch inference on the test split: scripts/infer_classification.py, scripts/infer_tracking.py"
    )
    inferred = infer_all()

    _banner("6/6  the product on the held-out days: medicane-hf predict-track (no arguments: the embedded default)")
    from medicane_hf.tracking.command import run as predict_track

    print("\n$ medicane-hf predict-track", flush=True)
    tracked = predict_track([])

    _banner(f"demo done in {time.time() - started:.0f} s: test-split figures of the best models")
    for stage in STAGES:
        print(_summary_line(stage, results[stage]))
    from medicane_hf.inference.metrics import summary_line

    print("\nBatch inference (each beside the constant guess where the stage has one):")
    for stage, metrics in inferred.items():
        print(f"{stage:<15} {summary_line(TASKS[stage], metrics)}")
    print("\nPredict and track on the held-out days (the true storms beside what was found):")
    print(f"  {track_line(tracked)}")
    print("\nOutputs (models, logs, TensorBoard runs, figures; inference/: predictions, metrics, plots):")
    for stage in STAGES:
        print(f"  {TASKS[stage].default_output_dir().resolve()}")
    print(f"  {DEFAULT_OUT.resolve()}  (predict-track: detections, tracks, summary; map.png, animation.gif)")
    print("The tiny model and the short schedules are for a quick look; see README.md for real runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
