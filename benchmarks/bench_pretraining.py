"""Pre-training throughput: dual masking (ours) against transformers' VideoMAEForPreTraining.

For each backbone preset, forward + backward clips per second and peak memory of

* ``ours``: `MedicaneVideoMAEForPreTraining`, tube mask 0.9 for the encoder and running cell 0.5 for the
  decoder (the decoder sees visible tokens + the mask tokens it must reconstruct);
* ``transformers``: `transformers.VideoMAEForPreTraining` with the same sizes and the same encoder mask; its
  decoder runs over every token (visible + all masked) and reconstructs every masked token.

Each (preset, implementation) runs in a fresh Python process so that its peak resident memory
(`resource.getrusage(...).ru_maxrss`) is its own. Torch uses one thread by default (``--threads``): on a shared
machine multi-threaded CPU kernels slow down unpredictably when other processes compete for the cores, and the
comparison is what matters. Writes the ``pretraining`` section of benchmarks/RESULTS.md.

    python benchmarks/bench_pretraining.py                 # tiny and small presets
    python benchmarks/bench_pretraining.py --presets tiny --steps 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tqdm import tqdm

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(REPO_ROOT))

# preset -> (batch size, timed steps); small runs at 224 px on CPU, so a small batch and few steps.
DEFAULT_RUNS: dict[str, tuple[int, int]] = {"tiny": (8, 10), "small": (2, 3)}
ENCODER_MASK_RATIO = 0.9
DECODER_MASK_RATIO = 0.5
IMPLEMENTATIONS = ("ours", "transformers")


def _rss_mib() -> float:
    """Current resident memory of this process in MiB (Linux /proc), 0 where unavailable."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _peak_rss_mib() -> float:
    """Peak resident memory of this process in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _build(preset: str, implementation: str):
    """The model to time and the config it was built from."""
    import torch
    from transformers import VideoMAEConfig, VideoMAEForPreTraining

    from medicane_hf.configuration_medicane import MedicaneVideoMAEConfig
    from medicane_hf.modeling_medicane import MedicaneVideoMAEForPreTraining

    config = MedicaneVideoMAEConfig.from_preset(
        preset,
        encoder_mask_ratio=ENCODER_MASK_RATIO,
        decoder_mask_type="running_cell",
        decoder_mask_ratio=DECODER_MASK_RATIO,
    )
    torch.manual_seed(0)
    if implementation == "ours":
        return MedicaneVideoMAEForPreTraining(config), config
    fields = {k: v for k, v in config.to_dict().items() if k in VideoMAEConfig.__dataclass_fields__}
    fields.pop("model_type", None)
    return VideoMAEForPreTraining(VideoMAEConfig(**fields)), config


def worker(preset: str, implementation: str, batch: int, steps: int, threads: int) -> dict:
    """Time each of `steps` forward + backward passes after one warm-up; runs inside its own process."""
    import torch

    torch.set_num_threads(threads)
    from medicane_hf.masking import running_cell_mask, tube_mask

    model, config = _build(preset, implementation)
    model.train()
    height, width = config.image_height_width
    generator = torch.Generator().manual_seed(0)
    pixel_values = torch.randn(
        batch, config.num_frames, config.num_channels, height, width, generator=generator
    )
    grid_t, grid_h, grid_w = config.token_grid
    encoder_mask = tube_mask(batch, grid_t, grid_h, grid_w, ENCODER_MASK_RATIO, generator=generator)
    inputs = {"pixel_values": pixel_values, "bool_masked_pos": encoder_mask}
    if implementation == "ours":
        inputs["decoder_mask"] = running_cell_mask(
            batch, grid_t, grid_h, grid_w, DECODER_MASK_RATIO, generator=generator
        )
    rss_before = _rss_mib()

    def step() -> float:
        model.zero_grad(set_to_none=True)
        loss = model(**inputs).loss
        loss.backward()
        return float(loss.detach())

    step()  # warm-up: allocator, SDPA kernel choice
    step_seconds = []
    for _ in range(steps):
        start = time.perf_counter()
        step()
        step_seconds.append(time.perf_counter() - start)
    return {
        "step_seconds": step_seconds,
        "peak_rss_mib": _peak_rss_mib(),
        "rss_before_mib": rss_before,
        "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
        "tokens": config.num_tokens,
    }


def _run_in_subprocess(preset: str, implementation: str, batch: int, steps: int, threads: int) -> dict:
    """`worker` in a fresh interpreter, so ru_maxrss measures this configuration alone."""
    command = [
        sys.executable,
        __file__,
        "--worker",
        preset,
        implementation,
        str(batch),
        str(steps),
        str(threads),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker {preset}/{implementation} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _summarise(runs: list[dict], batch: int) -> dict[str, float]:
    """Merge repeated runs of one configuration: best and median step, the largest peak RSS."""
    seconds = sorted(t for run in runs for t in run["step_seconds"])
    peak = max(runs, key=lambda run: run["peak_rss_mib"])
    return {
        "best_clips_per_s": batch / seconds[0],
        "median_clips_per_s": batch / statistics.median(seconds),
        "best_s_per_step": seconds[0],
        "peak_rss_mib": peak["peak_rss_mib"],
        "growth_mib": peak["peak_rss_mib"] - peak["rss_before_mib"],
        "params_m": runs[0]["params_m"],
        "tokens": runs[0]["tokens"],
    }


def _markdown(
    results: dict[tuple[str, str], dict[str, float]], runs: dict[str, tuple[int, int]], args
) -> str:
    """The RESULTS.md section: one row per (preset, implementation) plus the speed-up and memory ratio."""
    lines = [
        "## Pre-training: dual masking vs transformers' VideoMAEForPreTraining",
        "",
        f"Forward + backward, CPU, float32, {args.threads} torch thread(s); encoder tube mask "
        f"{ENCODER_MASK_RATIO} for both; ours adds the running-cell decoder mask {DECODER_MASK_RATIO} (its "
        "decoder sees the visible tokens + the tokens it reconstructs), transformers' decoder runs over every "
        f"token. {args.repeats} alternating fresh processes per row; clips/s from the fastest step (robust to "
        "other load on a shared machine) and the median step; speed-up on the fastest step. Peak RSS "
        "(`ru_maxrss`) includes Python, torch and transformers (~1 GB before the model); growth = peak minus "
        "the RSS after building the model, i.e. activations + gradients. `python benchmarks/bench_pretraining.py`.",
        "",
        "| preset | tokens | batch | steps | implementation | params (M) | clips/s best | clips/s median "
        "| s/step best | peak RSS (MiB) | growth (MiB) | speed-up | growth ratio |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for preset, (batch, steps) in runs.items():
        baseline = results[(preset, "transformers")]
        for implementation in IMPLEMENTATIONS:
            row = results[(preset, implementation)]
            speedup = row["best_clips_per_s"] / baseline["best_clips_per_s"]
            growth = row["growth_mib"] / baseline["growth_mib"]
            lines.append(
                f"| {preset} | {int(row['tokens'])} | {batch} | {steps} | {implementation} | {row['params_m']:.1f} "
                f"| {row['best_clips_per_s']:.3g} | {row['median_clips_per_s']:.3g} | {row['best_s_per_step']:.3f} "
                f"| {row['peak_rss_mib']:.0f} | {row['growth_mib']:.0f} | {speedup:.2f}x | {growth:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--presets", nargs="+", default=list(DEFAULT_RUNS), choices=["tiny", "small", "base"])
    parser.add_argument(
        "--batch", type=int, default=None, help="batch size for every preset (default: per preset)"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="timed steps for every preset (default: per preset)"
    )
    parser.add_argument("--no-write", action="store_true", help="print the table without touching RESULTS.md")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1, see above)")
    parser.add_argument(
        "--repeats", type=int, default=2, help="fresh processes per configuration (default 2)"
    )
    parser.add_argument(
        "--worker", nargs=5, metavar=("PRESET", "IMPL", "BATCH", "STEPS", "THREADS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)

    if args.worker:
        preset, implementation, batch, steps, threads = args.worker
        print(json.dumps(worker(preset, implementation, int(batch), int(steps), int(threads))))
        return

    runs = {
        preset: (
            args.batch or DEFAULT_RUNS.get(preset, (2, 3))[0],
            args.steps or DEFAULT_RUNS.get(preset, (2, 3))[1],
        )
        for preset in args.presets
    }
    # Alternate implementations so that a burst of outside load hits both alike.
    jobs = [
        (preset, implementation)
        for preset in runs
        for _ in range(args.repeats)
        for implementation in IMPLEMENTATIONS
    ]
    measured: dict[tuple[str, str], list[dict]] = {}
    for preset, implementation in tqdm(jobs, desc="pretraining benchmark", unit="run"):
        run = _run_in_subprocess(preset, implementation, *runs[preset], args.threads)
        measured.setdefault((preset, implementation), []).append(run)
    results = {key: _summarise(value, runs[key[0]][0]) for key, value in measured.items()}
    table = _markdown(results, runs, args)
    print(table)
    if not args.no_write:
        from benchmarks._results import write_section

        print(f"wrote {write_section('pretraining', table)}")


if __name__ == "__main__":
    main()
