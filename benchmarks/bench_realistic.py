"""What the realistic basin holds, beside the embedded default; the "realistic basin" section of RESULTS.md.

Builds (or reuses) the two cached datasets of the standard eight episodes, seed 0:
``default-v2`` (demo preset) and ``realistic-v1`` (realistic preset), and measures

- the label error (tracks.csv vs the drawn centre, km): over every track row and over the targets
  of each split's tracking clips (what a tracker's error against the label cannot go below);
- clips per split: all, Medicane (label 1), tracking (has_target), and the Medicane clips whose
  eye is not visible at the last frame;
- eyeless storms, eye-free mature hours, look-alikes that show an eye over sea and over land;
- how unique the eye's colour is in its tile (``measure.eye_colour_uniqueness``) on both presets.

    python benchmarks/bench_realistic.py [--cache DIR] [--no-write]

About two minutes on 2 cores when both datasets must be built, a few seconds more otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._results import write_section  # noqa: E402
from medicane_hf.data.synthetic import (  # noqa: E402
    ensure_synthetic_dataset,
    grid_for,
    read_source_label_error,
    read_source_truth,
)
from medicane_hf.data.synthetic.config import get_preset  # noqa: E402
from medicane_hf.data.synthetic.default import DEFAULT_EPISODES, DEFAULT_NAME  # noqa: E402
from medicane_hf.data.synthetic.geography import get_geography  # noqa: E402
from medicane_hf.data.synthetic.measure import EyeColourStats, eye_colour_uniqueness  # noqa: E402
from medicane_hf.data.synthetic.plans import make_plan  # noqa: E402
from medicane_hf.data.synthetic.rendering import FrameRenderer  # noqa: E402

DATASETS = {"demo": DEFAULT_NAME, "realistic": "realistic-v1"}
SPLITS = ("train", "validation", "test")


def _stats_km(values: np.ndarray) -> str:
    """``median / RMS / P90`` of distances in km, one decimal."""
    if values.size == 0:
        return "-"
    return f"{np.median(values):.1f} / {np.sqrt(np.mean(values**2)):.1f} / {np.percentile(values, 90):.1f}"


def drawn_labels(clips: pd.DataFrame, truth: pd.DataFrame, info: dict[str, object]) -> np.ndarray:
    """The label each clip would have if tracks.csv gave the drawn centre (0/1 per clip).

    The build's own rule (``clips.py``): a tile ``(x0, y0)`` holds a point when
    ``x0 - 0.5 <= x < x0 + tile - 0.5`` (same in y); a clip is a Medicane when at least
    ``min_positive_frames`` of its frames have a Medicane inside its window in the tile.
    """
    settings = info["settings"]["clips"]  # type: ignore[index]
    tiles = info["tiles"]  # type: ignore[index]
    size = int(tiles["tile_size"])
    if not int(tiles["stride_x"]) == int(tiles["stride_y"]) == size:
        raise ValueError("drawn_labels assumes abutting tiles (stride = tile size), as the demo grid has")
    mature = truth[(truth["kind"] == "medicane") & truth["in_window"]]
    occupied = pd.DataFrame(
        {
            "time": mature["time"].to_numpy(),
            "x0": (np.floor((mature["x"].to_numpy() + 0.5) / size) * size).astype(np.int64),
            "y0": (np.floor((mature["y"].to_numpy() + 0.5) / size) * size).astype(np.int64),
        }
    ).drop_duplicates()
    keys = set(zip(occupied["time"], occupied["x0"], occupied["y0"]))
    step = pd.Timedelta(minutes=int(settings["frame_interval_minutes"]))
    n = int(settings["num_frames"])
    positive = np.zeros(len(clips), dtype=np.int64)
    for j, (end, x0, y0) in enumerate(zip(pd.to_datetime(clips["end_time"]), clips["x0"], clips["y0"])):
        positive[j] = sum((end - k * step, int(x0), int(y0)) in keys for k in range(n))
    return (positive >= int(settings["min_positive_frames"])).astype(np.int64)


def dataset_figures(folder: Path) -> dict[str, object]:
    """Label error, clips per split and eye visibility of one cached synthetic dataset."""
    from datasets import load_from_disk

    index = load_from_disk(str(folder / "index"))
    info = json.loads((folder / "dataset_info.json").read_text())
    errors = read_source_label_error(folder).set_index(["storm_id", "time"])["offset_km"]
    truth = read_source_truth(folder)
    vortices = truth[truth["kind"].isin(["medicane", "sea_vortex", "land_vortex"])]
    has_eye_columns = "eye_opacity" in truth.columns
    eye = vortices.set_index(["object_id", "time"])["eye_opacity"] if has_eye_columns else None
    rows: dict[str, dict[str, object]] = {}
    for split in SPLITS:
        clips = index[split].to_pandas()
        medicane = clips[clips["label"] == 1]
        tracking = clips[clips["has_target"]]
        keys = list(zip(tracking["storm_id"], pd.to_datetime(tracking["end_time"])))
        target_error = errors.reindex(keys).to_numpy(dtype=np.float64)
        eyeless_clips = 0
        if eye is not None:
            seen = eye.reindex(list(zip(medicane["storm_id"], pd.to_datetime(medicane["end_time"]))))
            eyeless_clips = int((seen.to_numpy(dtype=np.float64) < 0.5).sum())
        drawn = drawn_labels(clips, truth, info)
        label = clips["label"].to_numpy()
        rows[split] = {
            "lost": int(((drawn == 1) & (label == 0)).sum()),
            "gained": int(((drawn == 0) & (label == 1)).sum()),
            "clips": len(clips),
            "medicane": len(medicane),
            "tracking": len(tracking),
            "storms": int(medicane["storm_id"].nunique()),
            "no_eye": eyeless_clips,
            "target_error": _stats_km(target_error),
        }
    mature = truth[(truth["kind"] == "medicane") & truth["in_window"] & (truth["time"].dt.minute == 0)]
    figures: dict[str, object] = {
        "splits": rows,
        "label_error_all": _stats_km(errors.to_numpy(dtype=np.float64)),
        "label_error_median": float(np.median(errors)),
        "label_error_rms": float(np.sqrt(np.mean(errors.to_numpy() ** 2))),
        "storms": int(truth.loc[truth["kind"] == "medicane", "object_id"].nunique()),
    }
    if has_eye_columns:
        eyeless = set(truth.loc[truth["eyeless"].astype(bool), "object_id"])
        with_eye = mature[~mature["object_id"].isin(eyeless)]
        look = vortices[(vortices["kind"] != "medicane") & (vortices["eye_opacity"] >= 0.5)]
        figures.update(
            eyeless_storms=len(eyeless),
            filled_share=float((with_eye["eye_fill"] >= 0.5).mean()),
            no_eye_share=float((mature["eye_opacity"] < 0.5).mean()),
            sea_lookalikes=int(look.loc[look["kind"] == "sea_vortex", "object_id"].nunique()),
            land_lookalikes=int(look.loc[look["kind"] == "land_vortex", "object_id"].nunique()),
        )
    return figures


def eye_colour(preset: str) -> EyeColourStats:
    """Eye-colour uniqueness over the standard eight episodes (seed 0 + k), planned and rendered here."""
    config = get_preset(preset)
    grid = grid_for(config)
    parts = []
    for k, (start, days) in enumerate(DEFAULT_EPISODES):
        start_ts = pd.Timestamp(start)
        n_frames = int(round(days * config.frames_per_day))
        plan = make_plan(np.random.default_rng(k), config, grid, get_geography(), start_ts, days)
        parts.append(
            eye_colour_uniqueness(FrameRenderer(config, grid, plan, start_ts, n_frames, k), n_frames)
        )
    return EyeColourStats.combine(parts)


def report(cache: Path) -> str:
    """Build or reuse both datasets, measure, and return the markdown section."""
    started = time.perf_counter()
    figures = {}
    for preset, name in DATASETS.items():
        folder = ensure_synthetic_dataset(name, preset=preset, seed=0, cache_dir=cache, progress=False)
        figures[preset] = dataset_figures(folder)
    colours = {preset: eye_colour(preset) for preset in DATASETS}
    setting = get_preset("realistic")
    lines = [
        "## Realistic basin: label error, clips, eyes (`benchmarks/bench_realistic.py`)",
        "",
        f"Standard eight 1.5-day episodes, seed 0: `{DATASETS['demo']}` (demo preset) and "
        f"`{DATASETS['realistic']}` (realistic preset: label error {setting.label_error_rms_km:g} km RMS with "
        f"{setting.label_error_correlation_h:g} h correlation, {setting.eye_fill_fraction:.0%} of eye hours "
        f"filled, {setting.eyeless_medicane_fraction:.0%} of storms eyeless; docs/synthetic.md).",
        "",
        "Label error (tracks.csv vs the drawn centre), median / RMS / P90 in km:",
        "",
        "| preset | storms | all track rows | train targets | validation targets | test targets |",
        "|---|---|---|---|---|---|",
    ]
    for preset, f in figures.items():
        s = f["splits"]  # type: ignore[index]
        lines.append(
            f"| {preset} | {f['storms']} | {f['label_error_all']} | "
            + " | ".join(s[split]["target_error"] for split in SPLITS)  # type: ignore[index]
            + " |"
        )
    lines += [
        "",
        "Clips per split: all / Medicane (label 1) / tracking (has_target); Medicane storms; Medicane "
        "clips with no visible eye at the last frame (drawn eye opacity < 0.5; realistic only):",
        "",
        "| preset | train | validation | test |",
        "|---|---|---|---|",
    ]
    for preset, f in figures.items():
        s = f["splits"]  # type: ignore[index]
        cells = [
            f"{s[x]['clips']} / {s[x]['medicane']} / {s[x]['tracking']}; {s[x]['storms']} storms"  # type: ignore[index]
            + (f"; {s[x]['no_eye']} no eye" if preset == "realistic" else "")  # type: ignore[index]
            for x in SPLITS
        ]
        lines.append(f"| {preset} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Clips whose label the label error changes (the label a drawn-centre track would give vs the "
        "label from tracks.csv; `drawn Medicane, labelled background` / `labelled Medicane, drawn "
        "elsewhere`): a detector that sees the storm perfectly still gets these wrong.",
        "",
        "| preset | train | validation | test |",
        "|---|---|---|---|",
    ]
    for preset, f in figures.items():
        s = f["splits"]  # type: ignore[index]
        lines.append(
            f"| {preset} | " + " | ".join(f"{s[x]['lost']} / {s[x]['gained']}" for x in SPLITS) + " |"  # type: ignore[index]
        )
    r = figures["realistic"]
    lines += [
        "",
        f"Realistic eyes: {r['eyeless_storms']} of {r['storms']} Medicanes eyeless; of the mature hours of "
        f"the others {r['filled_share']:.0%} have a filled eye (setting {setting.eye_fill_fraction:.0%}); "
        f"{r['no_eye_share']:.0%} of all mature Medicane hours show no eye. Look-alikes showing an eye "
        f"(opacity >= 0.5): {r['sea_lookalikes']} sea vortices, {r['land_lookalikes']} land vortices.",
        "",
        "Eye colour in its tile (hourly frames of mature Medicanes whose eye shows; distance = largest "
        "channel difference in uint8 counts to the nearest colour elsewhere in the tile):",
        "",
        "| preset | frames | eye px | unique (exact) | unique within 2 | unique within 4 | median nearest | "
        "other px unique within 2 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for preset, c in colours.items():
        lines.append(
            f"| {preset} | {c.frames} | {c.eye_pixels} | {c.eye_unique_share(0):.3f} | {c.eye_unique_share(2):.3f} | "
            f"{c.eye_unique_share(4):.3f} | {np.median(c.eye_nearest):.0f} | {c.other_unique_share(2):.3f} |"
        )
    lines += ["", f"Wall time {time.perf_counter() - started:.0f} s (builds included when not cached)."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=None, help="cache root (default: the package's cache)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    from medicane_hf.data.synthetic.default import default_cache_dir

    markdown = report(args.cache if args.cache is not None else default_cache_dir())
    print(markdown)
    if not args.no_write:
        print(f"wrote {write_section('realistic', markdown)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
