"""predict-track per hour of frames: the whole command against the model forwards alone on the same clips.

On the embedded default's held-out days (the test split's hours: 12 tiles an hour, 64-px clips), with the
no-argument training runs' models when they are there (``outputs/<stage>-tiny-default/best``) or untrained tiny
models of the recipe's heads otherwise (the speed is the same; a random detector passes about half the tiles to
the tracker), it measures

* ``command``: ``medicane-hf predict-track`` in this process (``tracking.command.run``: packing the frames --
  reused by content after the first run -- both models' inputs, the hourly loop, merge, linking, scoring, every
  file with the map and the animation), seconds per hour;
* ``forwards``: the detector on every clip and the tracker on the clips the command passed to it, the clips
  already in memory, same batch size, ``torch.inference_mode``: what no pipeline can avoid;

and writes ``command / forwards`` (goal <= 1.2) to the ``predict_track`` section of benchmarks/RESULTS.md. The
first (cold: frames packed) run is reported beside the best of the warm ones. One torch thread (``--threads``),
as the other CPU benchmarks: on a shared machine more threads measure the neighbours.

    python benchmarks/bench_predict_track.py
    python benchmarks/bench_predict_track.py --repeats 1 --hours 4   # a quick check (writes its figure too)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))


def _models(root: Path) -> tuple[dict[str, Path], str]:
    """The no-argument runs' best models, else untrained tiny ones saved under `root`; (folders, which)."""
    import torch

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection, MedicaneVideoMAEForTracking
    from medicane_hf.processing_medicane import read_dataset_contract
    from medicane_hf.tasks import get_task

    best = {stage: get_task(stage).default_output_dir() / "best" for stage in ("detection", "tracking")}
    if all((folder / "config.json").is_file() for folder in best.values()):
        return best, "the no-argument training runs' best models"
    contract = read_dataset_contract(ensure_default_dataset())
    torch.manual_seed(0)

    def config(**heads):
        return MedicaneVideoMAEConfig.from_preset(
            "tiny", **contract.shape_settings(), **contract.config_settings(), patch_embedding="conv", **heads
        )

    folders = {stage: root / stage for stage in best}
    MedicaneVideoMAEForDetection(config(detection_pooling="heatmap")).save_pretrained(folders["detection"])
    MedicaneVideoMAEForTracking(config(tracking_head="heatmap")).save_pretrained(folders["tracking"])
    return folders, "untrained tiny models (conv stem, heat-map heads)"


def _forwards(models: dict[str, Path], out: Path, batch_size: int) -> float:
    """Seconds of the bare forwards over the clips the command predicted (in memory), detector then tracker."""
    import numpy as np
    import torch

    from medicane_hf.data.index import UNLABELLED_SPLIT
    from medicane_hf.inference.inputs import dataset_input
    from medicane_hf.inference.loading import load_model
    from medicane_hf.processing_medicane import DataContract
    from medicane_hf.tasks import get_task
    from medicane_hf.tracking.tables import read_detections

    chosen = set(read_detections(out / "detections.csv")["clip_id"])
    seconds = 0.0
    for stage in ("detection", "tracking"):
        task = get_task(stage)
        model = load_model(task, str(models[stage]))
        source = dataset_input(task, out / "frames_dataset", UNLABELLED_SPLIT,
                               DataContract.from_config(model.config).normalization)  # fmt: skip
        rows = np.arange(len(source.clips))
        if stage == "tracking":
            rows = np.flatnonzero(source.clips["clip_id"].isin(chosen).to_numpy())
        clips = torch.stack([source.dataset[int(i)]["pixel_values"] for i in rows])
        with torch.inference_mode():
            model(pixel_values=clips[:batch_size])  # warm-up, as the command's first batch
            started = time.perf_counter()
            for k in range(0, len(clips), batch_size):
                model(pixel_values=clips[k : k + batch_size])
            seconds += time.perf_counter() - started
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="warm runs (best kept)")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hours", type=int, help="only the first N held-out hours (a quick check of the script)")
    args = parser.parse_args(argv)

    import pandas as pd
    import torch

    from benchmarks._results import write_section
    from medicane_hf.data.index import load_index
    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.tracking.command import run

    torch.set_num_threads(args.threads)
    dataset = Path(ensure_default_dataset())
    held_out = pd.to_datetime(pd.Series(load_index(dataset)["test"]["end_time"])).sort_values()
    if args.hours is not None:
        held_out = held_out[held_out <= held_out.min() + pd.Timedelta(hours=args.hours - 1)]
    with tempfile.TemporaryDirectory() as scratch:
        models, which = _models(Path(scratch) / "models")
        out = Path(scratch) / "run"
        argv_run = [
            "--detector", str(models["detection"]), "--tracker", str(models["tracking"]),
            "--frames", str(dataset / "source" / "frames"), "--out", str(out),
            "--tracks", str(dataset / "source" / "tracks.csv"), "--start", str(held_out.min()),
            "--end", str(held_out.max()), "--batch-size", str(args.batch_size), "--overwrite", "--no-progress",
        ]  # fmt: skip
        runs = []
        for _ in range(1 + args.repeats):
            started = time.perf_counter()
            summary = run(argv_run)
            runs.append(time.perf_counter() - started)
        hours = summary["hours"]["processed"]
        forwards = min(_forwards(models, out, args.batch_size) for _ in range(args.repeats))
    cold, warm = runs[0] / hours, min(runs[1:]) / hours
    per_hour = forwards / hours
    markdown = "\n".join(
        [
            "## predict_track",
            "",
            f"`python benchmarks/bench_predict_track.py`: `medicane-hf predict-track` on the embedded default's "
            f"held-out days ({hours} hours x 12 tiles, {summary['detections']} tiles passed to the tracker), "
            f"{which}, batch {args.batch_size}, {args.threads} torch thread(s); seconds per hour of frames.",
            "",
            "| run | s / hour | x forwards alone |",
            "|---|---:|---:|",
            f"| forwards alone (detector on every tile, tracker on the passed ones, clips in memory) | {per_hour:.3f} | 1.00 |",
            f"| whole command, frames reused (best of {args.repeats}) | {warm:.3f} | {warm / per_hour:.2f} |",
            f"| whole command, first run (frames packed) | {cold:.3f} | {cold / per_hour:.2f} |",
            "",
            f"Goal (issue 14): whole command <= 1.2 x the forwards alone: "
            f"{'met' if warm / per_hour <= 1.2 else 'not met'} ({warm / per_hour:.2f}).",
        ]
    )
    print(markdown)
    write_section("predict_track", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
