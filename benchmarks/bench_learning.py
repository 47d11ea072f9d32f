"""Learning check: how far the CI learning bars sit from what the fast recipe reaches, over seeds and CPUs.

Runs the slow test's pipeline (`tests/test_training_learning.py`): specialization from scratch (120 steps),
detection from its best model and tracking from scratch (600 steps each), for several seeds and for one and two
torch threads (another thread count rounds floats differently, as another CPU does), plus the same
evaluation of an untrained model. Writes the "learning" section of benchmarks/RESULTS.md:

    python benchmarks/bench_learning.py [--seeds 0 1 2 3 4] [--threads 1 2] [--seeds_beyond_one_thread 0 1 2]
        [--work_dir DIR]

Each thread count runs in its own process, one after the other (``--parallel``: at once); figures per run land
in ``WORK_DIR/threads-N/results.json``, and a rerun with the same ``--work_dir`` keeps the runs already there. See medicane_hf/training/learning_check.py for what each figure is.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _results import write_section  # noqa: E402

SPECIALIZATION_STEPS = 120  # as the slow test
STAGE_STEPS = 600
# tracking starts from scratch, as in the slow test (why: module docstring)
FROM_SPECIALIZATION = {"detection"}


def sweep_one_thread_count(work_dir: Path, threads: int, seeds: list[int]) -> dict:
    """Specialization (seed 0), then detection (from it) and tracking (from scratch) per seed, all with
    `threads` torch threads."""
    import torch

    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.training.learning_check import LearningBudget, run_stage, untrained_figures

    torch.set_num_threads(threads)
    dataset = Path(ensure_default_dataset())
    spec_dir = work_dir / "specialization"
    # an interrupted sweep resumes: runs already in results.json are kept, not trained again
    done = (
        json.loads((work_dir / "results.json").read_text()) if (work_dir / "results.json").is_file() else {}
    )
    results: dict = {
        "threads": threads,
        "specialization": done.get("specialization")
        or run_stage(
            "specialization", dataset, spec_dir, SPECIALIZATION_STEPS, LearningBudget(max_eval_samples=48)
        ),
    }
    for stage in ("detection", "tracking"):
        runs = []
        for seed in seeds:
            previous = [r for r in done.get(f"{stage}_runs", []) if r["seed"] == seed]
            if previous:
                runs.append(previous[0])
                continue
            out = work_dir / f"{stage}-seed{seed}"
            start = time.time()
            start_from = spec_dir / "best" if stage in FROM_SPECIALIZATION else None
            figures = run_stage(stage, dataset, out, STAGE_STEPS, LearningBudget(), start_from, seed=seed)
            figures |= {"seed": seed, "seconds": time.time() - start}
            figures["untrained"] = untrained_figures(stage, out / "best", dataset, seed=seed)
            runs.append(figures)
            (work_dir / "results.json").write_text(json.dumps(results | {f"{stage}_runs": runs}, indent=2))
        results[f"{stage}_runs"] = runs
    (work_dir / "results.json").write_text(json.dumps(results, indent=2))
    return results


def run_minutes(all_results: list[dict]) -> float:
    """Minutes the detection and tracking runs took, added up (a resumed sweep's own wall time says less)."""
    runs = [r for res in all_results for stage in ("detection", "tracking") for r in res[f"{stage}_runs"]]
    return sum(r["seconds"] for r in runs) / 60


def _row(cells: list) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def markdown(all_results: list[dict], seconds: float, command: str) -> str:
    """The RESULTS.md section: one row per (threads, seed) run and the worst figure of each bar."""
    lines = [
        "## Learning check: spread over seeds and torch threads (tiny preset, embedded basin, CPU)",
        "",
        f"Command: `{command}` (detection and tracking runs {run_minutes(all_results):.0f} min of training and "
        f"evaluation in all; this call {seconds / 60:.1f} min, finished runs in `--work_dir` are kept). "
        "The slow test's pipeline: specialization from "
        f"scratch ({SPECIALIZATION_STEPS} steps, seed 0), detection from its best model and tracking from "
        f"scratch ({STAGE_STEPS} steps, batch 8) per seed, with 1 and 2 torch threads (another thread count rounds "
        "floats differently, as another CPU does). Recipe: conv patch stem, full-resolution heat-map heads, "
        "detection told the eye's pixel (`medicane_hf/training/learning_check.py`). Every figure is on storms "
        "no run trained on (55 Medicane clips among 600 held-out detection clips; 24 + 31 tracking clips); "
        '"untrained" = the same evaluation of a freshly initialised model of the same config.',
        "",
        "| threads | specialization: validation loss fall |",
        "|---|---|",
    ]
    lines += [_row([r["threads"], f"{r['specialization']['fall']:.3f}"]) for r in all_results]
    lines += [
        "",
        "Detection (held-out ROC AUC = validation + test pooled; balanced accuracy on the test storms at the "
        "threshold chosen on validation):",
        "",
        "| threads | seed | held-out ROC AUC | test balanced acc. | test POD / FAR | threshold | untrained AUC "
        "| untrained bal. acc. | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        for d in r["detection_runs"]:
            u = d["untrained"]
            lines.append(
                _row([
                    r["threads"], d["seed"], f"{d['held_out_roc_auc']:.3f}",
                    f"{d['test_balanced_accuracy_at_val_threshold']:.3f}",
                    f"{d['test_pod_at_val_threshold']:.2f} / {d['test_far_at_val_threshold']:.2f}",
                    f"{d['validation_threshold']:.3f}", f"{u['held_out_roc_auc']:.3f}",
                    f"{u['test_balanced_accuracy_at_val_threshold']:.3f}", f"{d['seconds']:.0f}",
                ])
            )  # fmt: skip
    lines += [
        "",
        "Tracking (median centre error in px, 1 px ~ 13 km, as measured in the skill section; guesses: the train split's mean centre and the tile "
        "centre; ratio = median / the better guess, worst of the two splits):",
        "",
        "| threads | seed | validation median (P90) | guesses train mean / tile centre | test median (P90) "
        "| guesses | worst ratio | untrained ratio | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in all_results:
        for t in r["tracking_runs"]:
            lines.append(
                _row([
                    r["threads"], t["seed"],
                    f"{t['validation_median_px']:.2f} ({t['validation_p90_px']:.2f})",
                    f"{t['validation_train_mean_median_px']:.1f} / {t['validation_tile_centre_median_px']:.1f}",
                    f"{t['test_median_px']:.2f} ({t['test_p90_px']:.2f})",
                    f"{t['test_train_mean_median_px']:.1f} / {t['test_tile_centre_median_px']:.1f}",
                    f"{t['worst_ratio']:.3f}", f"{t['untrained']['worst_ratio']:.2f}", f"{t['seconds']:.0f}",
                ])
            )  # fmt: skip
    det = [d for r in all_results for d in r["detection_runs"]]
    trk = [t for r in all_results for t in r["tracking_runs"]]
    lines += [
        "",
        "Worst over every run (the CI bars in `tests/test_training_learning.py` sit below these, margins there):",
        "",
        "| figure | worst trained | best untrained |",
        "|---|---|---|",
        _row(["specialization loss fall", f"{min(r['specialization']['fall'] for r in all_results):.3f}", "0"]),
        _row([
            "detection held-out ROC AUC", f"{min(d['held_out_roc_auc'] for d in det):.3f}",
            f"{max(d['untrained']['held_out_roc_auc'] for d in det):.3f}",
        ]),
        _row([
            "detection test balanced accuracy at the validation threshold",
            f"{min(d['test_balanced_accuracy_at_val_threshold'] for d in det):.3f}",
            f"{max(d['untrained']['test_balanced_accuracy_at_val_threshold'] for d in det):.3f}",
        ]),
        _row([
            "tracking worst ratio (lower is better)", f"{max(t['worst_ratio'] for t in trk):.3f}",
            f"{min(t['untrained']['worst_ratio'] for t in trk):.2f}",
        ]),
    ]  # fmt: skip
    lines += ["", EXPLORATION]
    return "\n".join(lines)


EXPLORATION = """How the recipe got here (2026-12-01, single runs from scratch, seed 0, 600 steps, one thread; not
reproduced by this command). Tracking, median error validation / test in px (P90): the previous recipe (16-px
linear patch embedding, soft arg-max over tokens) 17.8 px mean test median (200 km) over three seeds, worse than
the 19.0 px train-mean guess on validation; linear embedding + full-resolution heat-map head 0.59 / 0.75 (2.8 /
1.2); **conv stem + heat-map head 0.27 / 0.23 (0.43 / 0.40)**, i.e. 3.5 / 2.8 km. Detection, ROC AUC validation /
test: conv stem + attention pooling 0.86 / 0.68 (lr 3e-4), 0.84 / 0.65 (lr 1e-3); conv stem + heat-map pooling
0.90 / 0.66 and 0.88 / 0.65; the same started from the trained tracker 0.65 test (the clip label alone does not
teach a head where a 2-3 px eye is from ~130 Medicane clips, and a tracker's map peaks on every tile, held-out AUC
of its peak 0.59-0.65); **heat-map pooling + the centre loss (the head told the eye's pixel): held-out AUC 0.979,
test balanced accuracy 0.959 at the validation threshold (POD 0.94, FAR 0.15)**, the same from the 1200-step
specialization (0.979 / 0.959): specialization neither helps nor hurts at this budget. Tracking with the soft
arg-max's MSE alone was bimodal: from scratch seeds 0-2 reached 0.12-0.27 px but seeds 3 and 4 stayed at 8.2 /
6.8 and 11.8 / 13.0 px (validation / test; one thread), and from the 120-step specialization seed 0 stayed at
15.0 / 16.0 px (train loss 0.06 against 3e-5: the heat map never sharpened; from the 1200-step specialization
0.17 / 0.21 px). Adding the heat map's sub-pixel centre loss (`tracking_centre_loss_weight` 0.1) brought seeds
3 and 4 to 0.10 / 0.06 and 0.07 / 0.05 px; the tracking table above is with it. Tracking starts from scratch
here and in the slow test (the way its spread was measured)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work_dir", default=None, help="keep the runs here (default: a temporary folder)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--seeds_beyond_one_thread", type=int, nargs="+", default=[0, 1, 2],
        help="seeds run with more than one thread (a 2-thread run takes as long as a 1-thread one on 2 cores)",
    )  # fmt: skip
    parser.add_argument(
        "--parallel", action="store_true",
        help="run the thread counts at once (on 2 cores the 2-thread run then crawls: off by default)",
    )  # fmt: skip
    parser.add_argument("--one", type=int, default=None, help=argparse.SUPPRESS)  # a child: one thread count
    args = parser.parse_args(argv)
    if args.one is not None:
        sweep_one_thread_count(Path(args.work_dir), args.one, args.seeds)
        return 0
    start = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = Path(args.work_dir or tmp)
        children = []
        for n in args.threads:
            command = [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--work_dir",
                str(work_dir / f"threads-{n}"),
            ]
            seeds = args.seeds if n == 1 else args.seeds_beyond_one_thread
            children.append(subprocess.Popen(command + ["--seeds", *map(str, seeds)]))
            if not args.parallel and children[-1].wait():
                break
        if any(child.wait() for child in children):
            print("a sweep process failed; nothing written to RESULTS.md", file=sys.stderr)
            return 1
        results = [json.loads((work_dir / f"threads-{n}" / "results.json").read_text()) for n in args.threads]
    command = "python benchmarks/bench_learning.py"
    if args.seeds != [0, 1, 2, 3, 4]:
        command += " --seeds " + " ".join(map(str, args.seeds))
    if args.seeds_beyond_one_thread != [0, 1, 2]:
        command += " --seeds_beyond_one_thread " + " ".join(map(str, args.seeds_beyond_one_thread))
    if args.threads != [1, 2]:
        command += " --threads " + " ".join(map(str, args.threads))
    text = markdown(results, time.time() - start, command)
    print(text)
    print(f"written to {write_section('learning', text)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
