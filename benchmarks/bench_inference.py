"""Batch inference throughput: the whole command against a bare loop of forwards and against transformers' VideoMAE.

For each detection architecture, on the test split of the embedded default (64-px clips, the tiny preset),
clips per second of

* ``command``: ``scripts/infer_classification.py`` as a user runs it (a fresh process: DataLoader workers reading
  clips from the frame store, ``gather_for_metrics``, the table, metrics and figures); ``loop`` is the rate its
  predict loop logs (first batch asked to last gathered), ``wall`` the whole process including Python, torch and
  model start-up and the files written;
* ``bare``: ``model(pixel_values)`` over the same clips already in memory, same batch size, ``inference_mode``;
* ``transformers``: ``transformers.VideoMAEForVideoClassification`` of the same size (hidden size, layers, heads,
  patches, mean pooling) on the same in-memory clips.

Architectures: ``recipe`` (the detection recipe: conv patch stem + heat-map pooling) and ``videomae`` (linear patch
embedding + mean pooling, transformers' own architecture, so the transformers column compares like with like).
Goals (issue 12): command loop >= 0.95 x bare, and >= 1.0 x transformers for the same architecture. One torch thread
by default (``--threads``), as the other CPU benchmarks: on a shared machine more threads measure the neighbours.
Writes the ``inference`` section of benchmarks/RESULTS.md.

    python benchmarks/bench_inference.py
    python benchmarks/bench_inference.py --repeats 1 --clips 96
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

ARCHITECTURES = {
    "recipe": {"patch_embedding": "conv", "detection_pooling": "heatmap"},
    "videomae": {"patch_embedding": "linear", "detection_pooling": "mean"},
}


def _save_models(dataset_dir: Path, folder: Path) -> dict[str, Path]:
    """A tiny detector per architecture on the dataset's contract (random weights: speed does not care)."""
    import torch

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.modeling_medicane import MedicaneVideoMAEForDetection
    from medicane_hf.processing_medicane import read_dataset_contract

    contract = read_dataset_contract(dataset_dir)
    folders = {}
    for name, settings in ARCHITECTURES.items():
        torch.manual_seed(0)
        config = MedicaneVideoMAEConfig.from_preset(
            "tiny", **contract.shape_settings(), **contract.config_settings(), **settings
        )
        folders[name] = folder / name
        MedicaneVideoMAEForDetection(config).save_pretrained(folders[name])
    return folders


def _transformers_twin(config):
    """transformers' VideoMAEForVideoClassification with the sizes of `config` (mean pooling, 2 classes)."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    fields = {k: v for k, v in config.to_dict().items() if k in VideoMAEConfig.__dataclass_fields__}
    fields.pop("model_type", None)
    fields.update(num_labels=2, use_mean_pooling=True, id2label=None, label2id=None)
    return VideoMAEForVideoClassification(VideoMAEConfig(**fields)).eval()


def _bare_rate(model, clips, batch: int) -> float:
    """Clips per second of forwards over in-memory clips ``[N, T, C, H, W]`` (one warm-up batch first)."""
    import torch

    with torch.inference_mode():
        model(pixel_values=clips[:batch])
        start = time.perf_counter()
        for i in range(0, len(clips), batch):
            model(pixel_values=clips[i : i + batch])
        return len(clips) / (time.perf_counter() - start)


def _command_rate(model_dir: Path, dataset_dir: Path, out: Path, args) -> tuple[float, float]:
    """(loop clips/s from the run's log, whole-process clips/s) of one run of the inference script."""
    command = [
        sys.executable, str(REPO_ROOT / "scripts" / "infer_classification.py"),
        "--model_name_or_path", str(model_dir), "--dataset_dir", str(dataset_dir), "--split", "test",
        "--max_clips", str(args.clips), "--batch_size", str(args.batch), "--num_workers", str(args.workers),
        "--output_dir", str(out), "--overwrite", "--no_progress",
    ]  # fmt: skip
    env = {
        **os.environ,
        "OMP_NUM_THREADS": str(args.threads),
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
    }
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"inference command failed:\n{done.stderr[-3000:]}")
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    finished = next(r for r in records if r["event"] == "done")
    return float(finished["clips_per_second"]), finished["clips"] / wall


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--clips", type=int, default=312, help="test clips predicted (default: the whole split)"
    )
    parser.add_argument("--batch", type=int, default=32, help="clips per forward")
    parser.add_argument("--workers", type=int, default=1, help="DataLoader workers of the command")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    parser.add_argument(
        "--repeats", type=int, default=3, help="alternating repetitions; the best of each is kept"
    )
    args = parser.parse_args(argv)

    import torch

    from benchmarks._results import write_section
    from medicane_hf.data.synthetic.default import ensure_default_dataset
    from medicane_hf.inference.inputs import dataset_input
    from medicane_hf.inference.loading import load_model
    from medicane_hf.processing_medicane import DataContract
    from medicane_hf.tasks import TASKS

    torch.set_num_threads(args.threads)
    dataset_dir = Path(ensure_default_dataset())
    task = TASKS["detection"]
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folders = _save_models(dataset_dir, Path(tmp))
        for name, folder in folders.items():
            model = load_model(task, str(folder))
            source = dataset_input(
                task,
                dataset_dir,
                "test",
                DataContract.from_config(model.config).normalization,
                max_clips=args.clips,
            )
            clips = torch.stack([source.dataset[i]["pixel_values"] for i in range(len(source.dataset))])
            twin = _transformers_twin(model.config)
            best = {"loop": 0.0, "wall": 0.0, "bare": 0.0, "transformers": 0.0}
            for _ in range(args.repeats):  # alternate, so that a burst of other load hits every column alike
                loop, wall = _command_rate(folder, dataset_dir, Path(tmp) / f"out-{name}", args)
                best["loop"], best["wall"] = max(best["loop"], loop), max(best["wall"], wall)
                best["bare"] = max(best["bare"], _bare_rate(model, clips, args.batch))
                best["transformers"] = max(best["transformers"], _bare_rate(twin, clips, args.batch))
            results[name] = {**best, "clips": len(clips)}
            print(name, {k: round(v, 2) for k, v in results[name].items()}, flush=True)

    lines = [
        "## Batch inference: the whole command vs a bare forward loop vs transformers' VideoMAE",
        "",
        f"Detection, tiny preset on the embedded default's test split ({args.clips} clips of 16 x 64 x 64 px), CPU, "
        f"float32, {args.threads} torch thread(s), batch {args.batch}, {args.workers} DataLoader worker(s); best of "
        f"{args.repeats} alternating runs. `loop`: the rate `scripts/infer_classification.py` logs for its predict "
        "loop (store reads in workers, forwards, gathering); `wall`: the whole process (Python + torch start-up, model "
        "loading, table, metrics, figures); `bare`: forwards over the same clips already in memory; `transformers`: "
        "`VideoMAEForVideoClassification` of the same size on them. Goals: loop / bare >= 0.95, loop / transformers "
        ">= 1.0 (like with like: the `videomae` row). `python benchmarks/bench_inference.py`.",
        "",
        "| architecture | clips | loop clips/s | wall clips/s | bare clips/s | transformers clips/s "
        "| loop / bare | loop / transformers |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in results.items():
        lines.append(
            f"| {name} ({', '.join(f'{k}={v}' for k, v in ARCHITECTURES[name].items())}) | {int(row['clips'])} "
            f"| {row['loop']:.1f} | {row['wall']:.1f} | {row['bare']:.1f} | {row['transformers']:.1f} "
            f"| {row['loop'] / row['bare']:.2f}x | {row['loop'] / row['transformers']:.2f}x |"
        )
    print(f"wrote {write_section('inference', chr(10).join(lines))}")


if __name__ == "__main__":
    main()
