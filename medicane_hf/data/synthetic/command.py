"""``medicane-hf synth``: write a synthetic Mediterranean (frames, tracks, grid, truth, faults).

Example::

    medicane-hf synth --out data/synthetic --days 6 --preset demo --preview
"""

from __future__ import annotations

import argparse
import sys
import time

from medicane_hf.data.synthetic.basin import DEFAULT_DAYS, DEFAULT_SEED, DEFAULT_START, generate_basin
from medicane_hf.data.synthetic.config import PRESETS
from medicane_hf.data.synthetic.plans import PlanningError


def build_parser() -> argparse.ArgumentParser:
    """The flags of ``medicane-hf synth`` (what its ``--help`` prints)."""
    parser = argparse.ArgumentParser(
        prog="medicane-hf synth",
        description="Write a synthetic Mediterranean: Airmass RGB frames with Medicanes on tracks, "
        "look-alikes and sensor gaps, plus tracks.csv, grid.json, synthetic_truth.csv and faults.csv "
        "(and label_error.csv for the realistic preset).",
    )
    parser.add_argument(
        "--out", required=True, help="output folder (frames/ must be empty unless --overwrite)"
    )
    parser.add_argument(
        "--start", default=DEFAULT_START, help=f"first frame time, on the hour, UTC (default {DEFAULT_START})"
    )
    parser.add_argument(
        "--days", type=float, default=DEFAULT_DAYS, help=f"length in days, >= 0.25 (default {DEFAULT_DAYS})"
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=DEFAULT_SEED,
        help=f"random seed; same seed, same bytes (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="demo",
        help=f"demo: {PRESETS['demo'].width} x {PRESETS['demo'].height} px, the embedded default; "
        f"default: the full {PRESETS['default'].width} x {PRESETS['default'].height} SEVIRI grid; "
        "hard: full grid, faint storms, more look-alikes; realistic: the demo grid with label error, "
        "cloud-filled and missing eyes, lopsided cloud and look-alikes with an eye over sea and land "
        "(docs/synthetic.md) (default demo)",
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="processes rendering frames; output does not depend on it"
    )
    parser.add_argument(
        "--preview", action="store_true", help="also write OUT/preview.png: a mature storm with every track"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace frames already in OUT/frames")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command on ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = build_parser().parse_args(argv)
    began = time.perf_counter()
    try:
        basin = generate_basin(
            args.out,
            start=args.start,
            days=args.days,
            seed=args.seed,
            preset=args.preset,
            progress=not args.quiet,
            workers=args.workers,
            preview=args.preview,
            overwrite=args.overwrite,
        )
    except (ValueError, FileExistsError, PlanningError) as error:
        print(f"medicane-hf synth: {error}", file=sys.stderr)
        return 2
    elapsed = time.perf_counter() - began
    kinds = basin.objects["kind"].value_counts().to_dict()
    fault_counts = basin.faults["fault"].value_counts().to_dict()
    print(
        f"wrote {basin.n_frames_written} frames ({basin.grid.width} x {basin.grid.height} px, preset "
        f"{basin.config.name}) in {elapsed:.1f} s to {basin.frames_dir}\n"
        f"  {len(basin.storms)} Medicanes -> {basin.tracks_path}\n"
        f"  look-alikes: {', '.join(f'{n} {k}' for k, n in sorted(kinds.items()) if k != 'medicane') or 'none'}\n"
        f"  faults: {', '.join(f'{n} {k}' for k, n in sorted(fault_counts.items())) or 'none'} -> {basin.faults_path}\n"
        f"  grid + tiles -> {basin.grid_path}; truth -> {basin.truth_path}"
    )
    if basin.preview_path is not None:
        print(f"  preview -> {basin.preview_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
